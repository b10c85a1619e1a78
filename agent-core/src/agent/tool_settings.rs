//! Checking the agent file's `[tool_config.NAME]` tables against the agent's tools, when the
//! file is resolved: NAME must be one of the agent's tools, and its table must pass that tool's
//! [`Tool::check_settings`](crate::tool::Tool::check_settings). Without this a misspelled key
//! (`allowed_hosts` for `allow_hosts`) passed `agent check` and failed only when the model
//! called the tool.

use std::{collections::BTreeMap, ops::Range};

use serde::{Deserialize, de::IgnoredAny};
use serde_json::Value;
use toml::Spanned;

use super::{
    diagnostic::{Diagnostic, closest},
    load::AgentFile,
};
use crate::tool::{SettingsError, Tool, ToolRegistry};

/// Where each `tool_config` table and each of its keys is written. `AgentSpec` keeps plain
/// tables (and is shared with other checks), so the spans come from a second, narrow parse of
/// the same text.
#[derive(Deserialize, Default)]
struct Located {
    #[serde(default)]
    tool_config: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, IgnoredAny>>,
}

/// Where one table is written: its name, and each of its keys.
struct Place<'a> {
    name: Range<usize>,
    keys: BTreeMap<&'a str, Range<usize>>,
}

impl Located {
    fn parse(source: &str) -> Self {
        toml::from_str(source).unwrap_or_default()
    }

    /// Where the table called `name` is written.
    fn table(&self, name: &str) -> Option<Place<'_>> {
        let (key, table) = self
            .tool_config
            .iter()
            .find(|(key, _)| key.get_ref() == name)?;
        let keys = table
            .keys()
            .map(|k| (k.get_ref().as_str(), k.span()))
            .collect();
        Some(Place {
            name: key.span(),
            keys,
        })
    }
}

impl AgentFile {
    /// Every problem with the file's `[tool_config.NAME]` tables, given the agent's own `tools`
    /// and the whole `registry` (to tell a tool the agent forgot to list from a typo).
    pub(super) fn check_tool_config(
        &self,
        tools: &ToolRegistry,
        registry: &ToolRegistry,
    ) -> Vec<Diagnostic> {
        if self.spec.tool_config.is_empty() {
            return Vec::new();
        }
        let located = Located::parse(&self.source);
        let mut problems = Vec::new();
        for (name, table) in &self.spec.tool_config {
            let Place {
                name: name_span,
                keys,
            } = located.table(name).unwrap_or_else(|| Place {
                name: self.table_span(name),
                keys: BTreeMap::new(),
            });
            let Some(tool) = tools.get(name) else {
                problems.push(self.diagnostic(
                    name_span,
                    format!("`[tool_config.{name}]` configures `{name}`, which is not one of this agent's tools"),
                    Some(unknown_tool_hint(name, tools, registry)),
                ));
                continue;
            };
            let settings = match serde_json::to_value(table) {
                Ok(settings) => settings,
                Err(err) => {
                    problems.push(self.diagnostic(
                        name_span,
                        format!("`[tool_config.{name}]` cannot be read: {err}"),
                        None,
                    ));
                    continue;
                }
            };
            for err in settings_problems(tool.as_ref(), settings) {
                let span = err
                    .field
                    .as_deref()
                    .and_then(top_key)
                    .and_then(|key| keys.get(key).cloned())
                    .unwrap_or_else(|| name_span.clone());
                problems.push(self.diagnostic(
                    span,
                    format!("`[tool_config.{name}]`: {}", err.message),
                    Some(settings_hint(name, &err)),
                ));
            }
        }
        problems.sort_by_key(|d| (d.line, d.column));
        problems
    }

    /// Where `[tool_config.NAME]` is written, for a table the narrow parse could not place.
    fn table_span(&self, name: &str) -> Range<usize> {
        let header = format!("tool_config.{name}");
        self.source
            .find(&header)
            .map_or(0..0, |start| start..start + header.len())
    }
}

/// Every problem the tool finds in `settings`. A check stops at its first problem, so an
/// unknown key is removed and the check run again, until it passes or fails for another
/// reason: all misspelled keys are reported at once.
fn settings_problems(tool: &dyn Tool, mut settings: Value) -> Vec<SettingsError> {
    let mut problems = Vec::new();
    let rounds = settings.as_object().map_or(0, serde_json::Map::len);
    for _ in 0..=rounds {
        let Err(err) = tool.check_settings(&settings) else {
            break;
        };
        let unknown = err
            .message
            .starts_with("unknown field")
            .then(|| err.field.as_deref().and_then(top_key).map(str::to_owned))
            .flatten();
        problems.push(err);
        let removed = match (unknown, settings.as_object_mut()) {
            (Some(key), Some(table)) => table.shift_remove(&key).is_some(),
            _ => false,
        };
        if !removed {
            break;
        }
    }
    problems
}

/// The table key a dotted setting path starts with (`limits` for `limits.max`).
fn top_key(field: &str) -> Option<&str> {
    field.split(['.', '[']).next().filter(|key| !key.is_empty())
}

fn unknown_tool_hint(name: &str, tools: &ToolRegistry, registry: &ToolRegistry) -> String {
    if registry.contains(name) {
        return format!("add `{name}` to `tools`, or remove the table");
    }
    let near = tools.suggest(name);
    if !near.is_empty() {
        let options: Vec<String> = near
            .iter()
            .map(|n| format!("`[tool_config.{n}]`"))
            .collect();
        return format!(
            "did you mean {}? A table is named after the tool it configures",
            options.join(" or ")
        );
    }
    if tools.is_empty() {
        "this agent has no tools; remove the table".to_owned()
    } else {
        format!(
            "this agent's tools are {}; rename the table to one of them or remove it",
            tools
                .names()
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// "did you mean" for an unknown setting, from the names serde lists as expected.
fn settings_hint(tool: &str, err: &SettingsError) -> String {
    let message = &err.message;
    if message.contains("unknown field")
        && let Some((unknown, expected)) = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
    {
        let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return match closest(unknown, names.iter().copied()).first() {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("remove `{unknown}`; `{tool}` has no such setting"),
        };
    }
    format!("fix the setting; the documentation of `{tool}` lists its settings")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_keys_are_located() {
        let source = "name = \"x\"\n[tool_config.http_get]\nallow_hosts = []\n\n[tool_config]\ncurrent_time = { timezone = \"UTC\" }\n";
        let located = Located::parse(source);
        let place = located.table("http_get").unwrap();
        assert_eq!(&source[place.name], "http_get");
        assert_eq!(&source[place.keys["allow_hosts"].clone()], "allow_hosts");
        let place = located.table("current_time").unwrap();
        assert_eq!(&source[place.name], "current_time");
        assert_eq!(&source[place.keys["timezone"].clone()], "timezone");
        assert!(located.table("absent").is_none());
    }

    /// A tool with typed settings, as `#[tool(settings = FetchSettings)]` would declare it.
    struct Fetch;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct FetchSettings {
        #[serde(default)]
        allow_hosts: Vec<String>,
        timeout_secs: Option<f64>,
    }

    #[async_trait::async_trait]
    impl Tool for Fetch {
        fn name(&self) -> &str {
            "fetch"
        }
        fn description(&self) -> &str {
            "Fetches."
        }
        fn parameters(&self, _strict: bool) -> &Value {
            static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
            SCHEMA.get_or_init(|| serde_json::json!({"type": "object", "properties": {}}))
        }
        async fn call(
            &self,
            _args: Value,
            _ctx: crate::tool::ToolContext,
        ) -> Result<crate::tool::ToolOutput, crate::tool::ToolError> {
            Ok(crate::tool::ToolOutput::text("ok"))
        }
        fn check_settings(&self, settings: &Value) -> Result<(), SettingsError> {
            crate::tool::check_settings_as::<FetchSettings>(settings)
        }
    }

    fn resolve(source: &str) -> Result<super::super::Agent, super::super::AgentError> {
        let mut registry = ToolRegistry::new();
        registry
            .register(std::sync::Arc::new(Fetch), "test")
            .unwrap();
        AgentFile::parse("agents/t.toml", source.to_owned())
            .unwrap()
            .resolve(&registry)
    }

    #[test]
    fn settings_are_checked_with_line_and_column() {
        let source = "name = \"x\"\ntools = [\"fetch\"]\n\n[tool_config.fetch]\nallowed_hosts = [\"example.com\"]\n  bogus = 1\ntimeout_secs = \"soon\"\n";
        let err = resolve(source).unwrap_err();
        let shown: Vec<String> = err.diagnostics().iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(
            shown[0].starts_with(
                "agents/t.toml:5:1: `[tool_config.fetch]`: unknown field `allowed_hosts`"
            ),
            "{shown:#?}"
        );
        assert!(
            shown[0].contains("hint: did you mean `allow_hosts`?"),
            "{shown:#?}"
        );
        assert!(
            shown[1].starts_with("agents/t.toml:6:3: `[tool_config.fetch]`: unknown field `bogus`"),
            "{shown:#?}"
        );
        assert!(
            shown[2].starts_with(
                "agents/t.toml:7:1: `[tool_config.fetch]`: `timeout_secs`: invalid type"
            ),
            "{shown:#?}"
        );

        let ok = "name = \"x\"\ntools = [\"fetch\"]\n[tool_config]\nfetch = { allow_hosts = [\"example.com\"] }\n";
        resolve(ok).unwrap();
    }

    #[test]
    fn tables_must_name_one_of_the_agents_tools() {
        let source = "name = \"x\"\ntools = [\"fetch\"]\n[tool_config.fecth]\nallow_hosts = []\n";
        let err = resolve(source).unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!((d.line, d.column), (3, 14), "{d}");
        assert!(
            d.message
                .contains("`fecth`, which is not one of this agent's tools"),
            "{d}"
        );
        assert!(
            d.hint
                .as_deref()
                .unwrap()
                .contains("did you mean `[tool_config.fetch]`?"),
            "{d}"
        );

        let source = "name = \"x\"\n[tool_config.fetch]\nallow_hosts = []\n";
        let d = &resolve(source).unwrap_err().diagnostics()[0].clone();
        assert_eq!(
            d.hint.as_deref(),
            Some("add `fetch` to `tools`, or remove the table")
        );
    }

    #[test]
    fn unknown_settings_suggest_the_closest_name() {
        let err = SettingsError::at(
            "allowed_hosts",
            "unknown field `allowed_hosts`, expected one of `allow_hosts`, `timeout_secs`",
        );
        assert_eq!(
            settings_hint("http_get", &err),
            "did you mean `allow_hosts`?"
        );
        let err = SettingsError::at("bogus", "unknown field `bogus`, expected `timezone`");
        assert_eq!(
            settings_hint("current_time", &err),
            "remove `bogus`; `current_time` has no such setting"
        );
    }
}
