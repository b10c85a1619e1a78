//! What a tool returns to the model.

use std::fmt;

use serde::Serialize;

use super::ToolError;

/// The text the model reads as a `function_call_output`.
///
/// Strings are sent as they are; any other value is sent as compact JSON, so a tool can return
/// a struct and the model sees its fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ToolOutput(String);

impl ToolOutput {
    /// Output that is exactly this text.
    pub fn text(text: impl Into<String>) -> Self {
        ToolOutput(text.into())
    }

    /// Output from any serializable value: a string is sent as is, anything else as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, ToolError> {
        match serde_json::to_value(value) {
            Ok(serde_json::Value::String(text)) => Ok(ToolOutput(text)),
            Ok(other) => Ok(ToolOutput(other.to_string())),
            Err(err) => Err(ToolError::failed(format!(
                "the tool's result could not be turned into JSON: {err}"
            ))),
        }
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text as sent, by value.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for ToolOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ToolOutput {
    fn from(text: String) -> Self {
        ToolOutput(text)
    }
}

impl From<&str> for ToolOutput {
    fn from(text: &str) -> Self {
        ToolOutput(text.to_owned())
    }
}

/// Serializes as the plain string, so a tool may return a `ToolOutput` and have it sent as is.
impl Serialize for ToolOutput {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_as_is_everything_else_as_json() {
        assert_eq!(ToolOutput::json("hi").unwrap().as_str(), "hi");
        assert_eq!(
            ToolOutput::json(&String::from("a \"b\"")).unwrap().as_str(),
            "a \"b\""
        );
        assert_eq!(ToolOutput::json(&42).unwrap().as_str(), "42");
        assert_eq!(
            ToolOutput::json(&serde_json::json!({"a": [1, 2]}))
                .unwrap()
                .as_str(),
            r#"{"a":[1,2]}"#
        );
        assert_eq!(
            ToolOutput::json(&ToolOutput::text("x")).unwrap().as_str(),
            "x"
        );
    }

    #[test]
    fn unserializable_values_are_errors_not_panics() {
        let mut map = std::collections::BTreeMap::new();
        map.insert(vec![1u8], 1);
        assert!(matches!(
            ToolOutput::json(&map),
            Err(ToolError::Failed { .. })
        ));
    }
}
