//! Turning the model's argument string into something a tool can use.
//!
//! The model sends arguments as a JSON string. In strict mode it sends `null` for every
//! optional parameter it leaves out; `null` and "absent" mean the same thing to a tool, so
//! nulls inside objects are removed before deserializing (array elements are left alone). That
//! lets `#[serde(default)]` fields work in strict mode too.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{ToolError, schema};

/// Parses the model's argument string for `tool`: empty means `{}`, anything that is not a
/// JSON object is an [`ToolError::InvalidArguments`] that says what `parameters` expects.
pub fn parse_arguments(
    tool: &str,
    arguments: &str,
    parameters: &Value,
) -> Result<Value, ToolError> {
    let trimmed = arguments.trim();
    if trimmed.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value = serde_json::from_str(trimmed).map_err(|err| {
        ToolError::invalid_arguments(
            tool,
            format!("the arguments are not valid JSON ({err})"),
            schema::describe_expected(parameters),
        )
    })?;
    check_object(tool, value, parameters)
}

/// Checks that `value` is an object and strips its nulls (strict mode's "absent"); an error
/// says what `parameters` expects. For hand-written tools whose arguments arrive as a `Value`.
pub fn check_object(tool: &str, mut value: Value, parameters: &Value) -> Result<Value, ToolError> {
    if !value.is_object() {
        return Err(ToolError::invalid_arguments(
            tool,
            format!(
                "the arguments must be a JSON object, not {}",
                kind_of(&value)
            ),
            schema::describe_expected(parameters),
        ));
    }
    strip_nulls(&mut value);
    Ok(value)
}

/// Deserializes checked arguments into `A`; errors name the argument at fault (`address.zip`)
/// and what was expected there.
pub fn deserialize_arguments<A: DeserializeOwned>(
    tool: &str,
    arguments: Value,
    parameters: &Value,
) -> Result<A, ToolError> {
    let arguments = check_object(tool, arguments, parameters)?;
    serde_path_to_error::deserialize(arguments).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = if path == "." || path.is_empty() {
            inner.to_string()
        } else {
            format!("argument `{path}`: {inner}")
        };
        ToolError::invalid_arguments(tool, message, schema::describe_expected(parameters))
    })
}

fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// "a string", "an object", ...: how an error message names a JSON value's type.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Args {
        city: String,
        days: Option<u8>,
        #[serde(default)]
        verbose: bool,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        zip: u32,
    }

    fn params() -> Value {
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
    }

    #[test]
    fn not_json_and_not_objects_are_invalid_arguments() {
        for bad in ["{city:", "[1]", "\"x\"", "3"] {
            let err = parse_arguments("weather", bad, &params()).unwrap_err();
            let ToolError::InvalidArguments {
                message, expected, ..
            } = err
            else {
                panic!("{bad}")
            };
            assert!(!message.is_empty());
            assert!(expected.contains("city"), "{expected}");
        }
        assert_eq!(parse_arguments("t", "  ", &params()).unwrap(), json!({}));
    }

    #[test]
    fn nulls_mean_absent() {
        let args = parse_arguments(
            "t",
            r#"{"city":"Oslo","days":null,"verbose":null}"#,
            &params(),
        )
        .unwrap();
        let args: Args = deserialize_arguments("t", args, &params()).unwrap();
        assert_eq!(args.city, "Oslo");
        assert_eq!(args.days, None);
    }

    #[test]
    fn errors_name_the_argument() {
        let cases = [
            (
                json!({"city": 3}),
                "argument `city`: invalid type: integer `3`, expected a string",
            ),
            (json!({"city": "x", "days": 300}), "argument `days`"),
            (
                json!({"city": "x", "inner": {"zip": "a"}}),
                "argument `inner.zip`",
            ),
            (json!({}), "missing field `city`"),
            (json!({"city": "x", "colour": 1}), "unknown field `colour`"),
        ];
        for (args, want) in cases {
            let err = deserialize_arguments::<Args>("t", args, &params()).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{err} does not contain {want}"
            );
        }
    }
}
