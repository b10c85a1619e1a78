//! Checking a call's arguments against the schema its tool advertises, before the tool runs.
//!
//! The model is told a schema (ranges, enums, patterns, lengths, required and unknown
//! properties); serde alone only checks types, so a `#[schemars(range(max = 7))] days: u8`
//! would accept 30. Every call through [`super::ToolRegistry::invoke`] is checked here first,
//! so a tool only ever sees arguments its own schema allows, and the model gets an error that
//! names the argument and what was wrong, which lets it correct itself.
//!
//! The schema checked is the tool's relaxed one (`parameters(false)`), adjusted to accept
//! everything the model may legally send in either mode once nulls are stripped (see
//! [`super::parse_arguments`]): a property whose schema accepts `null` is not required (null and
//! absent mean the same thing), and `oneOf` is checked as `anyOf` (strict mode turns one into
//! the other, and deserialization picks the branch anyway).

use std::fmt::Write as _;

use jsonschema::{ValidationError, error::ValidationErrorKind, paths::LocationSegment};
use serde_json::Value;

use super::{ToolError, schema};

/// At most this many problems are reported for one call; the rest would only cost tokens.
const MAX_PROBLEMS: usize = 5;
/// Each problem is cut to this many characters: messages quote the offending value, which the
/// model may have made very long.
const MAX_PROBLEM_CHARS: usize = 300;

/// A tool's parameters schema, compiled once, that checks arguments before each call.
pub struct ArgumentValidator {
    validator: jsonschema::Validator,
    expected: String,
}

impl std::fmt::Debug for ArgumentValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArgumentValidator")
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

impl ArgumentValidator {
    /// Compiles the checker for a tool whose relaxed parameters schema is `parameters`. An error
    /// says why the schema is not a valid JSON Schema.
    pub fn new(parameters: &Value) -> Result<Self, String> {
        let mut checked = parameters.clone();
        accept_what_the_model_may_send(&mut checked);
        let validator = jsonschema::options()
            .build(&checked)
            .map_err(|err| format!("it is not a valid JSON Schema: {err}"))?;
        Ok(ArgumentValidator {
            validator,
            expected: schema::describe_expected(parameters),
        })
    }

    /// Checks `args` (an object with nulls already stripped) for the tool called `tool`. The
    /// error names each argument at fault (`days`, `place.city`, `tags[0]`) and what was wrong.
    pub fn check(&self, tool: &str, args: &Value) -> Result<(), ToolError> {
        if self.validator.is_valid(args) {
            return Ok(());
        }
        let mut problems: Vec<String> = Vec::new();
        for error in self.validator.iter_errors(args) {
            for problem in describe(&error) {
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
            if problems.len() >= MAX_PROBLEMS {
                break;
            }
        }
        problems.truncate(MAX_PROBLEMS);
        if problems.is_empty() {
            problems.push("the arguments do not match the tool's schema".to_owned());
        }
        Err(ToolError::invalid_arguments(
            tool,
            problems.join("; "),
            self.expected.clone(),
        ))
    }
}

/// The adjustments described in the [module docs](self), applied to every subschema.
fn accept_what_the_model_may_send(node: &mut Value) {
    schema::for_each_subschema(node, &mut accept_what_the_model_may_send);
    let Value::Object(map) = node else { return };
    if !map.contains_key("anyOf")
        && let Some(one_of) = map.remove("oneOf")
    {
        map.insert("anyOf".into(), one_of);
    }
    let nullable: Vec<String> = match map.get("properties") {
        Some(Value::Object(properties)) => properties
            .iter()
            .filter(|(_, schema)| schema.as_object().is_some_and(schema::accepts_null))
            .map(|(name, _)| name.clone())
            .collect(),
        _ => return,
    };
    if let Some(Value::Array(required)) = map.get_mut("required") {
        required.retain(|name| {
            !name
                .as_str()
                .is_some_and(|n| nullable.iter().any(|x| x == n))
        });
    }
}

/// One line per problem in `error`, naming the argument.
fn describe(error: &ValidationError<'_>) -> Vec<String> {
    let at = argument_path(error);
    let inside = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            vec![format!("missing argument `{}`", inside(&name))]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|name| format!("unknown argument `{}`", inside(name)))
            .collect(),
        ValidationErrorKind::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter(|v| !v.is_null())
                        .map(Value::to_string)
                        .collect()
                })
                .unwrap_or_default();
            vec![clip(format!(
                "{}: {} is not allowed; use one of {}",
                name_of(&at),
                error.instance(),
                allowed.join(", ")
            ))]
        }
        _ => vec![clip(format!("{}: {error}", name_of(&at)))],
    }
}

fn name_of(at: &str) -> String {
    if at.is_empty() {
        "the arguments".to_owned()
    } else {
        format!("argument `{at}`")
    }
}

/// `place.city`, `tags[0]`: the instance path as the argument errors of serde spell it.
fn argument_path(error: &ValidationError<'_>) -> String {
    let mut path = String::new();
    for segment in error.instance_path().segments() {
        match segment {
            LocationSegment::Index(i) => {
                let _ = write!(path, "[{i}]");
            }
            LocationSegment::Property(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&name);
            }
        }
    }
    path
}

fn clip(mut text: String) -> String {
    if let Some((cut, _)) = text.char_indices().nth(MAX_PROBLEM_CHARS) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn validator() -> ArgumentValidator {
        ArgumentValidator::new(&json!({
            "type": "object",
            "properties": {
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "unit": {"type": ["string", "null"], "enum": ["celsius", "fahrenheit", null]},
                "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "place": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false},
                "tags": {"type": "array", "items": {"type": "string", "maxLength": 3}},
                "note": {"type": ["string", "null"]}
            },
            "required": ["days", "note"],
            "additionalProperties": false
        }))
        .unwrap()
    }

    fn message(args: Value) -> String {
        match validator().check("t", &args) {
            Err(ToolError::InvalidArguments { message, .. }) => message,
            other => panic!("{args}: {other:?}"),
        }
    }

    #[test]
    fn valid_arguments_pass() {
        let v = validator();
        v.check("t", &json!({"days": 3})).unwrap();
        v.check(
            "t",
            &json!({"days": 7, "unit": "celsius", "code": "OSL", "place": {"city": "Oslo"}, "tags": ["a"]}),
        )
        .unwrap();
    }

    #[test]
    fn each_violation_names_the_argument() {
        let cases = [
            (
                json!({"days": 30}),
                "argument `days`: 30 is greater than the maximum of 7",
            ),
            (
                json!({"days": 1, "unit": "kelvin"}),
                "argument `unit`: \"kelvin\" is not allowed; use one of \"celsius\", \"fahrenheit\"",
            ),
            (
                json!({"days": 1, "code": "osl"}),
                "argument `code`: \"osl\" does not match",
            ),
            (json!({}), "missing argument `days`"),
            (json!({"days": 1, "colour": 1}), "unknown argument `colour`"),
            (
                json!({"days": 1, "place": {}}),
                "missing argument `place.city`",
            ),
            (
                json!({"days": 1, "place": {"city": 5}}),
                "argument `place.city`: 5 is not of type \"string\"",
            ),
            (json!({"days": 1, "tags": ["long"]}), "argument `tags[0]`"),
        ];
        for (args, want) in cases {
            let got = message(args.clone());
            assert!(got.contains(want), "{args}: `{got}` lacks `{want}`");
        }
    }

    #[test]
    fn several_problems_are_reported_together_and_clipped() {
        let got = message(json!({"days": 0, "code": "x".repeat(1000)}));
        assert!(got.contains("argument `days`"), "{got}");
        assert!(got.contains("argument `code`"), "{got}");
        assert!(got.len() < 2 * MAX_PROBLEM_CHARS + 100, "{}", got.len());
    }

    #[test]
    fn invalid_schemas_are_reported() {
        let err =
            ArgumentValidator::new(&json!({"type": "object", "properties": {"a": {"type": 12}}}))
                .unwrap_err();
        assert!(err.contains("not a valid JSON Schema"), "{err}");
    }

    #[test]
    fn one_of_is_checked_as_any_of() {
        let v = ArgumentValidator::new(&json!({"type": "object", "properties": {
            "x": {"oneOf": [{"type": "number"}, {"type": "integer"}]}
        }}))
        .unwrap();
        v.check("t", &json!({"x": 3})).unwrap();
    }
}
