//! Hosted MCP servers declared in an agent file. The Realtime API calls these tools itself
//! (session tool type `mcp`); the runtime only passes the declaration through `session.update`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{EnvTemplate, EnvTemplateError};
use crate::protocol::{McpAllowedTools, McpApproval as WireApproval, McpApprovalMode, McpTool};

/// A hosted MCP server as declared in an agent file (`[[mcp_servers]]`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpToolSpec {
    /// A short label the model and the logs use for the server.
    pub server_label: String,
    /// The server's URL (https).
    pub server_url: String,
    /// What the server offers, to help the model choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_description: Option<String>,
    /// Only these of the server's tools are offered; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
    /// Whether calls wait for approval; the server's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<McpApproval>,
    /// Headers sent to the server; values may use `${ENV_VAR}` for secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// An OAuth access token for the server; may use `${ENV_VAR}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
}

/// When the API asks for approval before calling an MCP tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum McpApproval {
    /// Every call waits for approval.
    Always,
    /// No call waits.
    Never,
}

impl McpToolSpec {
    /// Checks the parts a load-time check can: the label, the URL and the `${...}` templates.
    pub fn validate(&self) -> Result<(), String> {
        if self.server_label.is_empty()
            || !self
                .server_label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "mcp server label `{}` must be letters, digits, `_` or `-`",
                self.server_label
            ));
        }
        let url = url::Url::parse(&self.server_url).map_err(|err| {
            format!(
                "mcp server `{}`: invalid server_url: {err}",
                self.server_label
            )
        })?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!(
                "mcp server `{}`: server_url must be https",
                self.server_label
            ));
        }
        self.templates()
            .map(|_| ())
            .map_err(|err| format!("mcp server `{}`: {err}", self.server_label))
    }

    fn templates(&self) -> Result<Vec<(Option<&str>, EnvTemplate)>, EnvTemplateError> {
        let mut templates = Vec::new();
        for (name, value) in &self.headers {
            templates.push((Some(name.as_str()), EnvTemplate::parse(value)?));
        }
        if let Some(token) = &self.authorization {
            templates.push((None, EnvTemplate::parse(token)?));
        }
        Ok(templates)
    }

    /// The environment variables the headers and `authorization` need that are not set now.
    /// Check it when loading the agent: [`McpToolSpec::to_wire`] cannot fail.
    pub fn missing_env_vars(&self) -> Vec<String> {
        let Ok(templates) = self.templates() else {
            return Vec::new();
        };
        templates
            .iter()
            .filter_map(|(_, template)| template.expand().err())
            .map(|missing| missing.name)
            .collect()
    }

    /// The `{"type": "mcp", ...}` entry for `session.update` as JSON, with `${ENV_VAR}`s
    /// expanded; an unset variable or a malformed template is an error naming it. The result
    /// holds secrets: send it, never log it.
    pub fn to_session_tool(&self) -> Result<Value, String> {
        let templates = self
            .templates()
            .map_err(|err| format!("mcp server `{}`: {err}", self.server_label))?;
        if let Some(missing) = templates.iter().find_map(|(_, t)| t.expand().err()) {
            return Err(format!(
                "mcp server `{}`: environment variable `{}` is not set",
                self.server_label, missing.name
            ));
        }
        let mut value = serde_json::to_value(self.to_wire())
            .map_err(|err| format!("mcp server `{}`: {err}", self.server_label))?;
        if let Value::Object(map) = &mut value {
            let mut tagged = serde_json::Map::new();
            tagged.insert("type".into(), Value::from("mcp"));
            tagged.extend(std::mem::take(map));
            *map = tagged;
        }
        Ok(value)
    }

    /// The `mcp` tool for `session.update`, with `${ENV_VAR}`s expanded from the environment.
    ///
    /// The result holds secrets: send it, never log it. A template that does not parse or names
    /// an unset variable is passed on unexpanded (never a secret); [`McpToolSpec::validate`] and
    /// [`McpToolSpec::missing_env_vars`] report those before a session starts.
    pub fn to_wire(&self) -> McpTool {
        let expand = |template: &str| {
            EnvTemplate::parse(template)
                .ok()
                .and_then(|t| t.expand().ok())
                .unwrap_or_else(|| template.to_owned())
        };
        McpTool {
            server_label: self.server_label.clone(),
            server_url: Some(self.server_url.clone()),
            server_description: self.server_description.clone(),
            allowed_tools: self.allowed_tools.clone().map(McpAllowedTools::Names),
            require_approval: self.require_approval.map(|approval| {
                WireApproval::Mode(match approval {
                    McpApproval::Always => McpApprovalMode::Always,
                    McpApproval::Never => McpApprovalMode::Never,
                })
            }),
            headers: (!self.headers.is_empty()).then(|| {
                self.headers
                    .iter()
                    .map(|(name, value)| (name.clone(), expand(value)))
                    .collect()
            }),
            authorization: self.authorization.as_deref().map(expand),
            ..McpTool::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn passes_through_to_session_update() {
        let spec: McpToolSpec = serde_json::from_value(json!({
            "server_label": "docs",
            "server_url": "https://mcp.example.com/sse",
            "allowed_tools": ["search"],
            "require_approval": "never",
        }))
        .unwrap();
        spec.validate().unwrap();
        assert_eq!(
            serde_json::to_value(spec.to_wire()).unwrap(),
            json!({"server_label": "docs", "server_url": "https://mcp.example.com/sse", "allowed_tools": ["search"], "require_approval": "never"})
        );
        let mut secret = spec.clone();
        secret.headers.insert(
            "Authorization".into(),
            "Bearer ${AGENT_TEST_SURELY_UNSET_VAR}".into(),
        );
        assert_eq!(secret.missing_env_vars(), ["AGENT_TEST_SURELY_UNSET_VAR"]);
        secret
            .headers
            .insert("Authorization".into(), "${PATH}".into());
        assert!(secret.missing_env_vars().is_empty());
        assert_eq!(secret.to_session_tool().unwrap()["type"], "mcp",);
        secret.authorization = Some("${AGENT_TEST_SURELY_UNSET_VAR}".into());
        assert!(
            secret
                .to_session_tool()
                .unwrap_err()
                .contains("AGENT_TEST_SURELY_UNSET_VAR")
        );
        let wire = secret.to_wire();
        assert_ne!(wire.headers.unwrap()["Authorization"], "${PATH}");
        let mut bad = spec;
        bad.server_label = "has space".into();
        assert!(bad.validate().is_err());
    }
}
