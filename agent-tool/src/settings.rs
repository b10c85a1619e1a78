//! Checking a tool's settings (the agent file's `[tool_config.NAME]` table) when the agent file
//! loads, rather than when the model first calls the tool.
//!
//! A tool declares the type of its settings with `#[tool(settings = MySettings)]` (or by
//! implementing [`super::Tool::check_settings`] by hand); the loader calls the check for every
//! `[tool_config.NAME]` table, so `allowed_hosts = [...]` (for `allow_hosts`) fails `agent
//! check` with the file's line and column. The check deserializes the table exactly as
//! [`super::ToolContext::setting`] will at call time, so what passes here also works there.

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a tool's settings table cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    /// The setting at fault, as a dotted path (`allow_hosts`, `limits.max`), when one is to
    /// blame; the loader points at it in the agent file.
    pub field: Option<String>,
    /// What is wrong, naming the setting.
    pub message: String,
}

impl SettingsError {
    /// A problem with the table as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        SettingsError {
            field: None,
            message: message.into(),
        }
    }

    /// A problem with the setting at `field` (a dotted path).
    pub fn at(field: impl Into<String>, message: impl Into<String>) -> Self {
        SettingsError {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

/// Checks `settings` by deserializing it as `T`, the way [`super::ToolContext::setting`] reads
/// it. Give `T` `#[serde(deny_unknown_fields)]`, or misspelled keys pass unnoticed.
pub fn check_settings_as<T: DeserializeOwned>(settings: &Value) -> Result<(), SettingsError> {
    match serde_path_to_error::deserialize::<_, T>(settings) {
        Ok(_) => Ok(()),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner().to_string();
            let parent = (path != "." && !path.is_empty()).then_some(path);
            if let Some(unknown) = unknown_field(&inner) {
                // The path usually ends at the unknown key already; add it when it does not.
                let field = match &parent {
                    Some(path) if path == unknown || path.ends_with(&format!(".{unknown}")) => {
                        path.clone()
                    }
                    Some(path) => format!("{path}.{unknown}"),
                    None => unknown.to_owned(),
                };
                return Err(SettingsError::at(field, inner));
            }
            Err(match parent {
                Some(field) => SettingsError::at(field.clone(), format!("`{field}`: {inner}")),
                None => SettingsError::new(inner),
            })
        }
    }
}

/// The key serde names in an "unknown field `x`, expected ..." error.
fn unknown_field(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
}

/// A settings check for a tool that reads no settings: any key is a mistake. Hand-written tools
/// call it from [`super::Tool::check_settings`].
pub fn no_settings(tool: &str, settings: &Value) -> Result<(), SettingsError> {
    match settings.as_object().and_then(|table| table.keys().next()) {
        None => Ok(()),
        Some(key) => Err(SettingsError::at(
            key.clone(),
            format!("tool `{tool}` takes no settings, but `[tool_config.{tool}]` sets `{key}`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Settings {
        #[serde(default)]
        allow_hosts: Vec<String>,
        limits: Option<Limits>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Limits {
        max: u32,
    }

    #[test]
    fn problems_name_the_setting() {
        check_settings_as::<Settings>(&json!({"allow_hosts": ["a"]})).unwrap();
        check_settings_as::<Settings>(&json!({})).unwrap();
        let cases = [
            (
                json!({"allowed_hosts": []}),
                Some("allowed_hosts"),
                "unknown field `allowed_hosts`, expected",
            ),
            (
                json!({"allow_hosts": 3}),
                Some("allow_hosts"),
                "`allow_hosts`: invalid type: integer `3`",
            ),
            (
                json!({"limits": {"mx": 1}}),
                Some("limits.mx"),
                "unknown field `mx`",
            ),
            (
                json!({"limits": {"max": -1}}),
                Some("limits.max"),
                "`limits.max`: invalid value",
            ),
            (json!(3), None, "invalid type"),
        ];
        for (settings, field, want) in cases {
            let err = check_settings_as::<Settings>(&settings).unwrap_err();
            assert_eq!(err.field.as_deref(), field, "{settings}: {err}");
            assert!(
                err.message.contains(want),
                "{settings}: `{err}` lacks `{want}`"
            );
        }
    }

    #[test]
    fn tools_without_settings_refuse_any() {
        no_settings("t", &json!({})).unwrap();
        let err = no_settings("t", &json!({"bogus": 1})).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("bogus"));
        assert!(err.message.contains("takes no settings"), "{err}");
    }
}
