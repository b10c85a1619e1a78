//! The set of tools an agent can call: built from `inventory` plus tools added at run time.

use std::{collections::BTreeMap, fmt, panic::AssertUnwindSafe, sync::Arc};

use futures_util::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ArgumentValidator, RegistryError, Tool, ToolContext, ToolError, ToolOutput, ToolRegistration,
    is_valid_name, parse_arguments, schema,
};

/// A tool as the model sees it: what `agent tools --json` prints, and what the runtime turns
/// into a `session.update` function tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDescription {
    /// The name the model calls it by.
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// Its parameters schema, strict or relaxed.
    pub parameters: Value,
}

#[derive(Clone)]
struct Entry {
    tool: Arc<dyn Tool>,
    source: String,
    /// The tool's schema, compiled when it was registered; every call is checked against it.
    validator: Arc<ArgumentValidator>,
}

/// Tools by name. Cheap to clone (tools are shared `Arc`s).
///
/// Names are unique: registering a second tool under a taken name is a
/// [`RegistryError::Duplicate`] naming both sources, never a silent replacement.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Entry>,
}

impl ToolRegistry {
    /// An empty registry, for tests and for programs that pick their tools by hand.
    pub fn new() -> Self {
        ToolRegistry::default()
    }

    /// Every tool that `#[tool]` submitted in any crate linked into this program.
    ///
    /// A crate's submissions are only linked if the program uses the crate; the built-in tools
    /// are reached through `agent_tools::registry()`, which makes that impossible to get wrong,
    /// and a binary names a tool crate it only depends on with `use my_tools as _;`.
    pub fn from_inventory() -> Result<Self, RegistryError> {
        let mut registry = ToolRegistry::new();
        let mut registrations: Vec<&ToolRegistration> =
            inventory::iter::<ToolRegistration>.into_iter().collect();
        // Link order is arbitrary; sort so duplicate errors read the same on every run.
        registrations.sort_by_key(|r| r.source());
        for registration in registrations {
            registry.register(registration.construct(), registration.source())?;
        }
        Ok(registry)
    }

    /// Adds a tool. `source` says where it comes from (a module path, `agent.toml:12`, ...).
    pub fn register(
        &mut self,
        tool: Arc<dyn Tool>,
        source: impl Into<String>,
    ) -> Result<(), RegistryError> {
        let source = source.into();
        let name = tool.name().to_owned();
        if !is_valid_name(&name) {
            return Err(RegistryError::InvalidName {
                name,
                origin: source,
            });
        }
        let parameters = tool.parameters(false);
        if parameters.get("type") != Some(&Value::from("object")) {
            return Err(RegistryError::InvalidSchema {
                name,
                origin: source,
                problem: "the root must be `\"type\": \"object\"`".into(),
            });
        }
        if let Some(first) = self.tools.get(&name) {
            return Err(RegistryError::Duplicate {
                name,
                first_source: first.source.clone(),
                second_source: source,
            });
        }
        let validator = match ArgumentValidator::new(parameters) {
            Ok(validator) => Arc::new(validator),
            Err(problem) => {
                return Err(RegistryError::InvalidSchema {
                    name,
                    origin: source,
                    problem,
                });
            }
        };
        self.tools.insert(
            name,
            Entry {
                tool,
                source,
                validator,
            },
        );
        Ok(())
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.get(name).map(|entry| Arc::clone(&entry.tool))
    }

    /// Where the tool called `name` was registered from.
    pub fn source(&self, name: &str) -> Option<&str> {
        self.tools.get(name).map(|entry| entry.source.as_str())
    }

    /// Whether a tool called `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.tools.contains_key(name)
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    /// Registered tools, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Tool>> + '_ {
        self.tools.values().map(|entry| &entry.tool)
    }

    /// How many tools are registered.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether no tool is registered.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// A registry with only `names`; an unknown name is an error that suggests the closest
    /// registered ones.
    pub fn select<S: AsRef<str>>(&self, names: &[S]) -> Result<ToolRegistry, RegistryError> {
        let mut selected = ToolRegistry::new();
        for name in names {
            let name = name.as_ref();
            let Some(entry) = self.tools.get(name) else {
                return Err(RegistryError::UnknownTool {
                    name: name.to_owned(),
                    suggestions: self.suggest(name),
                });
            };
            selected.tools.insert(name.to_owned(), entry.clone());
        }
        Ok(selected)
    }

    /// The registered names closest to `name` (typos, case, a missing prefix), best first; at
    /// most three. The rule is [`closest`](crate::agent::closest)'s, shared by every hint.
    pub fn suggest(&self, name: &str) -> Vec<String> {
        crate::agent::closest(name, self.tools.keys().map(String::as_str))
    }

    /// The definitions to send in `session.update`, in name order.
    pub fn definitions(&self, strict: bool) -> Vec<ToolDescription> {
        self.iter()
            .map(|tool| ToolDescription {
                name: tool.name().to_owned(),
                description: tool.description().to_owned(),
                parameters: tool.parameters(strict).clone(),
            })
            .collect()
    }

    /// Every tool whose strict schema breaks strict mode's rules, with the problems. `agent
    /// check` reports these when an agent has `tool_options.strict = true`.
    pub fn strict_problems(&self) -> Vec<(String, schema::StrictSchemaError)> {
        self.iter()
            .filter_map(|tool| {
                schema::check_strict(tool.parameters(true))
                    .err()
                    .map(|err| (tool.name().to_owned(), err))
            })
            .collect()
    }

    /// Calls the tool `name` with the model's argument string.
    ///
    /// The arguments are checked against the tool's own schema before it runs (see
    /// [`ArgumentValidator`]), so a tool never sees values its schema rules out.
    ///
    /// Never panics: unknown names, arguments that are not a JSON object or break the schema, a
    /// tool's panic and cancellation all come back as [`ToolError`]s. If `ctx` is cancelled first (the user
    /// interrupted), the call is dropped — or, when already cancelled, never started — and the
    /// result is [`ToolError::Cancelled`].
    pub async fn invoke(
        &self,
        name: &str,
        arguments_json: &str,
        ctx: ToolContext,
    ) -> Result<ToolOutput, ToolError> {
        let Some(entry) = self.tools.get(name) else {
            return Err(ToolError::UnknownTool {
                name: name.to_owned(),
                available: self.names(),
                suggestions: self.suggest(name),
            });
        };
        let tool = Arc::clone(&entry.tool);
        let args = parse_arguments(tool.name(), arguments_json, tool.parameters(false))?;
        entry.validator.check(tool.name(), &args)?;
        let token = ctx.token().clone();
        if token.is_cancelled() {
            return Err(ToolError::Cancelled);
        }
        let call = AssertUnwindSafe(tool.call(args, ctx)).catch_unwind();
        tokio::select! {
            biased;
            () = token.cancelled() => Err(ToolError::Cancelled),
            result = call => match result {
                Ok(result) => result,
                Err(panic) => Err(ToolError::from_panic(panic.as_ref())),
            },
        }
    }
}

impl fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.tools.iter().map(|(name, entry)| (name, &entry.source)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    struct Echo {
        name: &'static str,
        schema: Value,
    }

    impl Echo {
        fn named(name: &'static str) -> Arc<dyn Tool> {
            Arc::new(Echo {
                name,
                schema: json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"], "additionalProperties": false}),
            })
        }
    }

    #[async_trait]
    impl Tool for Echo {
        fn name(&self) -> &str {
            self.name
        }
        fn description(&self) -> &str {
            "Echoes."
        }
        fn parameters(&self, _strict: bool) -> &Value {
            &self.schema
        }
        async fn call(&self, args: Value, ctx: ToolContext) -> Result<ToolOutput, ToolError> {
            match args["text"].as_str() {
                Some("panic") => panic!("asked to"),
                Some("wait") => {
                    ctx.cancelled().await;
                    Ok(ToolOutput::text("late"))
                }
                Some(text) => Ok(ToolOutput::text(text)),
                None => Err(ToolError::invalid_arguments(
                    self.name,
                    "missing `text`",
                    "text",
                )),
            }
        }
    }

    fn registry() -> ToolRegistry {
        let mut registry = ToolRegistry::new();
        for name in ["echo", "lookup_order", "search_help_center", "calculate"] {
            registry
                .register(Echo::named(name), format!("test::{name}"))
                .unwrap();
        }
        registry
    }

    #[test]
    fn duplicates_name_both_sources() {
        let mut registry = registry();
        let err = registry
            .register(Echo::named("echo"), "plugin.toml:3")
            .unwrap_err();
        assert_eq!(
            err,
            RegistryError::Duplicate {
                name: "echo".into(),
                first_source: "test::echo".into(),
                second_source: "plugin.toml:3".into()
            }
        );
        assert!(
            err.to_string().contains("test::echo") && err.to_string().contains("plugin.toml:3")
        );
    }

    #[test]
    fn invalid_names_are_rejected() {
        let mut registry = ToolRegistry::new();
        for bad in ["", "has space", "dot.ted", &"x".repeat(65)] {
            let tool: Arc<dyn Tool> = Arc::new(Echo {
                name: Box::leak(bad.to_owned().into_boxed_str()),
                schema: json!({"type": "object"}),
            });
            assert!(
                matches!(
                    registry.register(tool, "t"),
                    Err(RegistryError::InvalidName { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn lookups_and_suggestions() {
        let registry = registry();
        assert_eq!(registry.len(), 4);
        assert!(registry.get("echo").is_some());
        assert_eq!(
            registry.names(),
            ["calculate", "echo", "lookup_order", "search_help_center"]
        );
        assert_eq!(registry.suggest("calculater"), ["calculate"]);
        assert_eq!(registry.suggest("lookup"), ["lookup_order"]);
        assert_eq!(registry.suggest("Echo"), ["echo"]);
        assert_eq!(registry.suggest("help_center"), ["search_help_center"]);
        assert!(registry.suggest("zzzzzzzz").is_empty());
        let err = registry.select(&["echo", "lookup_ordr"]).unwrap_err();
        assert_eq!(
            err,
            RegistryError::UnknownTool {
                name: "lookup_ordr".into(),
                suggestions: vec!["lookup_order".into()]
            }
        );
        assert_eq!(registry.select(&["echo"]).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn invoke_handles_every_failure() {
        let registry = registry();
        let ctx = ToolContext::standalone;
        assert_eq!(
            registry
                .invoke("echo", r#"{"text":"hi"}"#, ctx())
                .await
                .unwrap()
                .as_str(),
            "hi"
        );
        assert!(matches!(
            registry.invoke("echo", "not json", ctx()).await,
            Err(ToolError::InvalidArguments { .. })
        ));
        let err = registry.invoke("ecko", "{}", ctx()).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "there is no tool named `ecko`; did you mean `echo`?"
        );
        assert_eq!(
            registry.invoke("echo", r#"{"text":"panic"}"#, ctx()).await,
            Err(ToolError::Panicked {
                message: "asked to".into()
            })
        );

        let token = CancellationToken::new();
        let waiting = registry.invoke(
            "echo",
            r#"{"text":"wait"}"#,
            ToolContext::new("c", "a", "s", token.clone()),
        );
        let cancel = async {
            tokio::task::yield_now().await;
            token.cancel();
        };
        let (result, ()) = tokio::join!(waiting, cancel);
        assert_eq!(result, Err(ToolError::Cancelled));
        // Already cancelled: the tool does not run at all.
        assert_eq!(
            registry
                .invoke(
                    "echo",
                    r#"{"text":"hi"}"#,
                    ToolContext::new("c", "a", "s", token)
                )
                .await,
            Err(ToolError::Cancelled)
        );
    }

    /// A tool whose schema has a range, an enum and a pattern, and that counts its calls: the
    /// registry must refuse arguments outside the schema before the tool runs.
    struct Forecast {
        schema: Value,
        calls: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl Tool for Forecast {
        fn name(&self) -> &str {
            "forecast"
        }
        fn description(&self) -> &str {
            "Forecast."
        }
        fn parameters(&self, _strict: bool) -> &Value {
            &self.schema
        }
        async fn call(&self, _args: Value, _ctx: ToolContext) -> Result<ToolOutput, ToolError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(ToolOutput::text("sunny"))
        }
    }

    #[tokio::test]
    async fn invoke_checks_arguments_against_the_tools_schema() {
        let tool = Arc::new(Forecast {
            schema: json!({
                "type": "object",
                "properties": {
                    "days": {"type": "integer", "minimum": 1, "maximum": 7},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                    "airport": {"type": "string", "pattern": "^[A-Z]{3}$"}
                },
                "required": ["days"],
                "additionalProperties": false
            }),
            calls: std::sync::atomic::AtomicUsize::new(0),
        });
        let mut registry = ToolRegistry::new();
        registry.register(tool.clone(), "test").unwrap();
        let ctx = ToolContext::standalone;
        let ok = registry
            .invoke(
                "forecast",
                r#"{"days":7,"unit":"celsius","airport":"OSL"}"#,
                ctx(),
            )
            .await;
        assert_eq!(ok.unwrap().as_str(), "sunny");
        // Strict mode's nulls mean "absent" and pass.
        let ok = registry
            .invoke(
                "forecast",
                r#"{"days":1,"unit":null,"airport":null}"#,
                ctx(),
            )
            .await;
        assert!(ok.is_ok(), "{ok:?}");
        for (args, want) in [
            (
                r#"{"days":30}"#,
                "argument `days`: 30 is greater than the maximum of 7",
            ),
            (r#"{"days":1,"unit":"kelvin"}"#, "argument `unit`"),
            (
                r#"{"days":1,"airport":"Oslo"}"#,
                "argument `airport`: \"Oslo\" does not match",
            ),
            (r#"{"unit":"celsius"}"#, "missing argument `days`"),
            (r#"{"days":1,"hours":2}"#, "unknown argument `hours`"),
        ] {
            let err = registry.invoke("forecast", args, ctx()).await.unwrap_err();
            let ToolError::InvalidArguments {
                message, expected, ..
            } = &err
            else {
                panic!("{args}: {err:?}");
            };
            assert!(message.contains(want), "{args}: `{message}` lacks `{want}`");
            assert!(expected.contains("days: integer (1..=7)"), "{expected}");
        }
        assert_eq!(tool.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn unusable_schemas_are_refused_at_registration() {
        let mut registry = ToolRegistry::new();
        let tool: Arc<dyn Tool> = Arc::new(Echo {
            name: "broken",
            schema: json!({"type": "object", "properties": {"a": {"type": 12}}}),
        });
        let err = registry.register(tool, "test").unwrap_err();
        assert!(
            matches!(err, RegistryError::InvalidSchema { .. })
                && err.to_string().contains("not a valid JSON Schema"),
            "{err}"
        );
    }

    #[test]
    fn definitions_in_name_order() {
        let defs = registry().definitions(true);
        assert_eq!(defs[0].name, "calculate");
        assert_eq!(defs[0].parameters["type"], "object");
    }
}
