//! `#[tool]` as a user sees it: generated tools register, describe themselves with the right
//! schema, deserialize arguments with errors that name the field, and convert every return shape.

use std::fmt;

use agent_core::tool::ToolRegistry;
use agent_tool::{ToolContext, ToolError, tool};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Temperature unit.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Degrees Celsius.
    Celsius,
    /// Degrees Fahrenheit.
    Fahrenheit,
}

/// A place.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct Place {
    /// City name.
    pub city: String,
    /// ISO country code.
    pub country: Option<String>,
}

/// What the weather tool returns.
#[derive(Debug, Serialize)]
pub struct Weather {
    city: String,
    degrees: i32,
    unit: &'static str,
}

/// Why the weather is unknown.
#[derive(Debug)]
pub struct NoWeather(String);

impl fmt::Display for NoWeather {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no weather for {}", self.0)
    }
}

/// Current weather for a place.
///
/// Use it when the user asks about the weather.
#[tool]
pub async fn get_weather(
    /// Where.
    place: Place,
    /// Celsius unless the user asks otherwise.
    unit: Option<Unit>,
    /// How many days ahead.
    #[schemars(range(min = 0, max = 7))]
    days: u8,
    ctx: ToolContext,
) -> Result<Weather, NoWeather> {
    if place.city == "Atlantis" {
        return Err(NoWeather(place.city));
    }
    let _ = ctx.call_id();
    let unit = unit.unwrap_or(Unit::Celsius);
    Ok(Weather {
        city: place.city,
        degrees: 20 + i32::from(days),
        unit: if unit == Unit::Celsius { "C" } else { "F" },
    })
}

/// Says hello; sync, returns a plain string (sent as is).
#[tool(name = "say-hello")]
fn greet(name: String, ctx: &ToolContext) -> String {
    format!("hello {name} from {}", ctx.agent())
}

#[tool(description = "Does nothing, successfully.")]
fn noop() {}

/// Fails with a ToolError, which keeps its kind.
#[tool]
fn picky(r#type: String) -> Result<u32, ToolError> {
    Err(ToolError::invalid_arguments(
        "picky",
        format!("`{type}` is not a type I know", type = r#type),
        "`int` or `str`",
    ))
}

/// Panics, to prove the session survives.
#[tool]
fn explode(tags: Vec<String>) -> usize {
    panic!("kaboom with {} tags", tags.len())
}

/// Takes a `serde(default)` field: strict mode sends null, which must mean "use the default".
#[tool]
async fn with_default(#[serde(default)] verbose: bool) -> bool {
    verbose
}

fn registry() -> ToolRegistry {
    ToolRegistry::from_inventory().expect("no duplicate tools")
}

fn ctx() -> ToolContext {
    ToolContext::standalone()
}

#[test]
fn tools_register_with_names_and_sources() {
    let registry = registry();
    let names = registry.names();
    for name in [
        "get_weather",
        "greet_with",
        "say-hello",
        "noop",
        "picky",
        "explode",
        "with_default",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name} missing from {names:?}"
        );
    }
    let source = registry.source("get_weather").unwrap();
    assert!(
        source.starts_with("tools (") && source.contains("tests/tools.rs:"),
        "{source}"
    );
}

#[test]
fn descriptions_come_from_docs_or_the_attribute() {
    let registry = registry();
    assert_eq!(
        registry.get("get_weather").unwrap().description(),
        "Current weather for a place.\n\nUse it when the user asks about the weather."
    );
    assert_eq!(
        registry.get("noop").unwrap().description(),
        "Does nothing, successfully."
    );
}

#[test]
fn schema_is_exact() {
    let tool = registry().get("get_weather").unwrap();
    let strict = tool.parameters(true);
    assert_eq!(
        *strict,
        json!({
            "type": "object",
            "properties": {
                "place": {
                    "description": "Where.",
                    "type": "object",
                    "properties": {
                        "city": {"description": "City name.", "type": "string"},
                        "country": {"description": "ISO country code.", "type": ["string", "null"]}
                    },
                    "required": ["city", "country"],
                    "additionalProperties": false
                },
                "unit": {
                    "description": "Celsius unless the user asks otherwise. Values: \"celsius\": Degrees Celsius; \"fahrenheit\": Degrees Fahrenheit.",
                    "type": ["string", "null"],
                    "enum": ["celsius", "fahrenheit", null]
                },
                "days": {"description": "How many days ahead.", "type": "integer", "minimum": 0, "maximum": 7}
            },
            "required": ["place", "unit", "days"],
            "additionalProperties": false
        }),
        "{strict:#}"
    );
    agent_tool::schema::check_strict(strict).unwrap();
    // Computed once: the same allocation every time.
    assert!(std::ptr::eq(strict, tool.parameters(true)));
    let relaxed = tool.parameters(false);
    assert_eq!(relaxed["required"], json!(["place", "days"]));
}

#[tokio::test]
async fn calls_convert_outputs_and_errors() {
    let registry = registry();
    let out = registry
        .invoke(
            "get_weather",
            r#"{"place":{"city":"Oslo","country":null},"unit":null,"days":2}"#,
            ctx(),
        )
        .await
        .unwrap();
    let out: Value = serde_json::from_str(out.as_str()).unwrap();
    assert_eq!(out, json!({"city": "Oslo", "degrees": 22, "unit": "C"}));

    let err = registry
        .invoke(
            "get_weather",
            r#"{"place":{"city":"Atlantis"},"days":0}"#,
            ctx(),
        )
        .await
        .unwrap_err();
    assert_eq!(err, ToolError::failed("no weather for Atlantis"));

    let out = registry
        .invoke("say-hello", r#"{"name":"Ada"}"#, ctx())
        .await
        .unwrap();
    assert_eq!(out.as_str(), "hello Ada from ");
    assert_eq!(
        registry.invoke("noop", "", ctx()).await.unwrap().as_str(),
        "done"
    );
    assert_eq!(
        registry
            .invoke("with_default", r#"{"verbose":null}"#, ctx())
            .await
            .unwrap()
            .as_str(),
        "false"
    );

    let err = registry
        .invoke("picky", r#"{"type":"x"}"#, ctx())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_arguments");
}

#[tokio::test]
async fn bad_arguments_name_the_field_and_the_expectation() {
    let registry = registry();
    // The schema is checked before deserialization, so these messages come from it.
    let cases = [
        (
            r#"{"place":{"city":"Oslo"},"days":9000}"#,
            "argument `days`: 9000 is greater than the maximum of 7",
        ),
        (
            r#"{"place":{"city":5},"days":1}"#,
            "argument `place.city`: 5 is not of type \"string\"",
        ),
        (
            r#"{"place":{"city":"x"},"days":1,"unit":"kelvin"}"#,
            "argument `unit`: \"kelvin\" is not allowed; use one of \"celsius\", \"fahrenheit\"",
        ),
        (r#"{"place":{"city":"x"}}"#, "missing argument `days`"),
        (
            r#"{"place":{"city":"x"},"days":1,"hours":2}"#,
            "unknown argument `hours`",
        ),
        (
            r#"{"place":{"city":"x","zip":1},"days":1}"#,
            "unknown argument `place.zip`",
        ),
        (r#"{"place":"#, "not valid JSON"),
    ];
    for (args, want) in cases {
        let err = registry
            .invoke("get_weather", args, ctx())
            .await
            .unwrap_err();
        let ToolError::InvalidArguments {
            tool,
            message,
            expected,
        } = &err
        else {
            panic!("{args}: {err:?}");
        };
        assert_eq!(tool, "get_weather");
        assert!(message.contains(want), "{args}: `{message}` lacks `{want}`");
        assert!(
            expected.contains("`days: integer (0..=7) (required)`"),
            "{expected}"
        );
        assert!(
            err.to_model_output()
                .contains("\"kind\":\"invalid_arguments\"")
        );
    }
}

/// Counts its runs, to prove that arguments outside the schema never reach the function.
static FORECAST_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A forecast for the next few days.
#[tool]
fn forecast(
    /// How many days ahead; at most a week.
    #[schemars(range(max = 7))]
    days: u8,
    /// Three capital letters, like OSL.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    airport: Option<String>,
) -> u8 {
    FORECAST_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let _ = airport;
    days
}

#[tokio::test]
async fn arguments_outside_the_advertised_schema_never_reach_the_function() {
    let registry = registry();
    let ok = registry
        .invoke("forecast", r#"{"days":7,"airport":null}"#, ctx())
        .await
        .unwrap();
    assert_eq!(ok.as_str(), "7");
    for (args, want) in [
        (
            r#"{"days":30}"#,
            "argument `days`: 30 is greater than the maximum of 7",
        ),
        (
            r#"{"days":1,"airport":"Oslo"}"#,
            "argument `airport`: \"Oslo\" does not match",
        ),
    ] {
        let err = registry.invoke("forecast", args, ctx()).await.unwrap_err();
        let ToolError::InvalidArguments { message, .. } = &err else {
            panic!("{args}: {err:?}");
        };
        assert!(message.contains(want), "{args}: `{message}` lacks `{want}`");
        assert!(
            err.to_model_output()
                .contains("\"kind\":\"invalid_arguments\""),
            "{err:?}"
        );
    }
    assert_eq!(
        FORECAST_RUNS.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the function ran with invalid arguments"
    );
}

/// `[tool_config.greet_with]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreetSettings {
    /// What to say before the name.
    pub greeting: String,
}

/// Greets with the agent's configured greeting.
#[tool(settings = GreetSettings)]
fn greet_with(name: String, ctx: ToolContext) -> Result<String, ToolError> {
    let settings: Option<GreetSettings> = ctx.setting("greet_with")?;
    let greeting = settings.map_or_else(|| "hello".to_owned(), |s| s.greeting);
    Ok(format!("{greeting} {name}"))
}

#[test]
fn declared_settings_are_checked_and_others_accept_anything() {
    let registry = registry();
    let tool = registry.get("greet_with").unwrap();
    tool.check_settings(&json!({"greeting": "hi"})).unwrap();
    let err = tool.check_settings(&json!({"greting": "hi"})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("greting"));
    assert!(err.message.contains("unknown field `greting`"), "{err}");
    let err = tool.check_settings(&json!({"greeting": 3})).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("greeting"));
    // Without `settings = ...`, a tool accepts any table.
    let noop = registry.get("noop").unwrap();
    noop.check_settings(&json!({"anything": 1})).unwrap();
}

/// Doubles a number: the same argument always gives the same output.
#[tool(deterministic)]
fn double(n: i64) -> i64 {
    n * 2
}

#[test]
fn deterministic_is_declared_and_defaults_to_false() {
    let registry = registry();
    assert!(registry.get("double").unwrap().deterministic());
    assert!(!registry.get("greet_with").unwrap().deterministic());
    assert!(!registry.get("noop").unwrap().deterministic());
}

/// Builds a long report: slower than a conversational pause.
#[tool(background)]
fn long_report(topic: String) -> String {
    format!("report on {topic}")
}

#[test]
fn background_is_declared_and_defaults_to_false() {
    let registry = registry();
    assert!(registry.get("long_report").unwrap().background());
    assert!(!registry.get("double").unwrap().background());
}

/// Refunds an order: money leaves the business, so a person approves each call.
#[tool(needs_approval)]
fn refund_order(order_id: String) -> String {
    format!("refunded {order_id}")
}

#[test]
fn needs_approval_is_declared_and_defaults_to_false() {
    let registry = registry();
    assert!(registry.get("refund_order").unwrap().needs_approval());
    assert!(!registry.get("long_report").unwrap().needs_approval());
    assert!(!registry.get("double").unwrap().needs_approval());
}

#[tokio::test]
async fn panics_become_errors() {
    let err = registry()
        .invoke("explode", r#"{"tags":["a","b"]}"#, ctx())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ToolError::Panicked {
            message: "kaboom with 2 tags".into()
        }
    );
}

#[tokio::test]
async fn the_function_stays_callable() {
    let weather = get_weather(
        Place {
            city: "Rome".into(),
            country: None,
        },
        Some(Unit::Fahrenheit),
        1,
        ctx(),
    )
    .await
    .unwrap();
    assert_eq!(weather.degrees, 21);
    assert_eq!(greet("Bo".into(), &ctx()), "hello Bo from ");
}
