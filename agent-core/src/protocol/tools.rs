//! Tool definitions and tool choice, as the session and `response.create` carry them.
//!
//! Function tools are flat (`{"type": "function", "name", "description", "parameters"}`), not
//! nested under `function` as in Chat Completions. MCP tools let the server call a remote MCP
//! server itself (GA only).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::string_enum::string_enum;

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolDefinition {
    /// A function the client runs and answers with a `function_call_output` item.
    Function(FunctionTool),
    /// A remote MCP server the Realtime server calls itself (GA only).
    Mcp(McpTool),
    /// A tool type this version does not know, kept verbatim.
    Other(Value),
}

impl ToolDefinition {
    /// A function tool with a JSON Schema for its arguments.
    pub fn function(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> Self {
        ToolDefinition::Function(FunctionTool {
            name: name.into(),
            description: Some(description.into()),
            parameters,
        })
    }

    /// An MCP tool reaching the server at `server_url` under the label `server_label`.
    pub fn mcp(server_label: impl Into<String>, server_url: impl Into<String>) -> Self {
        ToolDefinition::Mcp(McpTool {
            server_label: server_label.into(),
            server_url: Some(server_url.into()),
            ..McpTool::default()
        })
    }

    /// The function or MCP server name, for logs and lookups.
    pub fn name(&self) -> Option<&str> {
        match self {
            ToolDefinition::Function(function) => Some(&function.name),
            ToolDefinition::Mcp(mcp) => Some(&mcp.server_label),
            ToolDefinition::Other(raw) => raw.get("name").and_then(Value::as_str),
        }
    }
}

/// A function tool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionTool {
    /// The function's name, as the model will call it.
    #[serde(default)]
    pub name: String,
    /// When and how to call the function; the model reads this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments object (`Value::Null` leaves it out).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub parameters: Value,
}

/// A remote MCP server offered to the model (GA).
///
/// Its `Debug` shows `authorization` and the header values as `[redacted]`: they are tokens.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpTool {
    /// Label identifying the server in tool calls.
    pub server_label: String,
    /// URL of the MCP server (or use `connector_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
    /// A built-in connector such as `connector_gmail`, instead of a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
    /// A tunnel to a private MCP server (`tunnel_...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_id: Option<String>,
    /// OAuth access token for the server or connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<String>,
    /// What the server offers; the model reads this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_description: Option<String>,
    /// Extra HTTP headers sent to the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
    /// Which of the server's tools the model may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<McpAllowedTools>,
    /// Who may call the tools (`direct`, `programmatic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_callers: Option<Vec<String>>,
    /// Which calls need the client's approval first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_approval: Option<McpApproval>,
    /// Load the tool list only when first needed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defer_loading: Option<bool>,
}

impl std::fmt::Debug for McpTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = crate::redact::REDACTED;
        let headers = self.headers.as_ref().map(|headers| {
            headers
                .keys()
                .map(|name| (name.as_str(), redacted))
                .collect::<BTreeMap<_, _>>()
        });
        f.debug_struct("McpTool")
            .field("server_label", &self.server_label)
            .field("server_url", &self.server_url)
            .field("connector_id", &self.connector_id)
            .field("tunnel_id", &self.tunnel_id)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| redacted),
            )
            .field("server_description", &self.server_description)
            .field("headers", &headers)
            .field("allowed_tools", &self.allowed_tools)
            .field("allowed_callers", &self.allowed_callers)
            .field("require_approval", &self.require_approval)
            .field("defer_loading", &self.defer_loading)
            .finish()
    }
}

/// `allowed_tools` of an MCP tool: a list of names or a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum McpAllowedTools {
    /// Only these tool names.
    Names(Vec<String>),
    /// Tools matching a filter.
    Filter(McpToolFilter),
}

/// Selects MCP tools by name or by their read-only hint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpToolFilter {
    /// Tool names to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_names: Option<Vec<String>>,
    /// Match tools that declare themselves read-only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

string_enum! {
    /// Blanket approval policy of an MCP tool.
    pub enum McpApprovalMode {
        /// Every call needs approval.
        Always = "always",
        /// No call needs approval.
        Never = "never",
    }
}

/// `require_approval` of an MCP tool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum McpApproval {
    /// The same policy for every tool.
    Mode(McpApprovalMode),
    /// Per-tool policies.
    Filters {
        /// Tools that always need approval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        always: Option<McpToolFilter>,
        /// Tools that never need approval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        never: Option<McpToolFilter>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToolRef<'a> {
    Function(&'a FunctionTool),
    Mcp(&'a McpTool),
}

impl Serialize for ToolDefinition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolDefinition::Function(function) => ToolRef::Function(function).serialize(serializer),
            ToolDefinition::Mcp(mcp) => ToolRef::Mcp(mcp).serialize(serializer),
            ToolDefinition::Other(raw) => raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ToolDefinition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Value::deserialize(deserializer)?;
        match raw.get("type").and_then(Value::as_str) {
            Some("function") => FunctionTool::deserialize(&raw)
                .map(ToolDefinition::Function)
                .map_err(D::Error::custom),
            Some("mcp") => McpTool::deserialize(&raw)
                .map(ToolDefinition::Mcp)
                .map_err(D::Error::custom),
            _ => Ok(ToolDefinition::Other(raw)),
        }
    }
}

/// How the model chooses tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// Never call tools.
    None,
    /// Call tools when useful (the default).
    Auto,
    /// Always call at least one tool.
    Required,
    /// Call this function (GA only).
    Function {
        /// The function's name.
        name: String,
    },
    /// Call a tool of this MCP server (GA only).
    Mcp {
        /// The MCP server's label.
        server_label: String,
        /// A specific tool of that server.
        name: Option<String>,
    },
}

impl ToolChoice {
    /// The plain-string form (`none`, `auto`, `required`), or `None` for a forced tool.
    pub fn as_mode(&self) -> Option<&'static str> {
        match self {
            ToolChoice::None => Some("none"),
            ToolChoice::Auto => Some("auto"),
            ToolChoice::Required => Some("required"),
            ToolChoice::Function { .. } | ToolChoice::Mcp { .. } => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToolChoiceTagged {
    Function {
        name: String,
    },
    Mcp {
        server_label: String,
        #[serde(default)]
        name: Option<String>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToolChoiceTaggedRef<'a> {
    Function {
        name: &'a str,
    },
    Mcp {
        server_label: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
    },
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolChoice::None => serializer.serialize_str("none"),
            ToolChoice::Auto => serializer.serialize_str("auto"),
            ToolChoice::Required => serializer.serialize_str("required"),
            ToolChoice::Function { name } => {
                ToolChoiceTaggedRef::Function { name }.serialize(serializer)
            }
            ToolChoice::Mcp { server_label, name } => ToolChoiceTaggedRef::Mcp {
                server_label,
                name: name.as_deref(),
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Mode(String),
            Tagged(ToolChoiceTagged),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Mode(mode) => match mode.as_str() {
                "none" => Ok(ToolChoice::None),
                "auto" => Ok(ToolChoice::Auto),
                "required" => Ok(ToolChoice::Required),
                other => Err(serde::de::Error::custom(format_args!(
                    "tool_choice must be none, auto, required or an object, not \"{other}\""
                ))),
            },
            Wire::Tagged(ToolChoiceTagged::Function { name }) => Ok(ToolChoice::Function { name }),
            Wire::Tagged(ToolChoiceTagged::Mcp { server_label, name }) => {
                Ok(ToolChoice::Mcp { server_label, name })
            }
        }
    }
}

#[cfg(test)]
mod debug_tests {
    use super::*;

    #[test]
    fn debug_hides_mcp_tokens_and_header_values() {
        let tool = McpTool {
            server_label: "crm".into(),
            authorization: Some("oauth-token-value".into()),
            headers: Some(BTreeMap::from([(
                "X-Key".to_owned(),
                "header-secret".to_owned(),
            )])),
            ..McpTool::default()
        };
        let shown = format!(
            "{:?}",
            crate::protocol::Session {
                tools: Some(vec![ToolDefinition::Mcp(tool)]),
                ..Default::default()
            }
        );
        assert!(
            !shown.contains("oauth-token-value") && !shown.contains("header-secret"),
            "{shown}"
        );
        assert!(
            shown.contains("X-Key") && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tools_round_trip() {
        let cases = [
            json!({"type": "function", "name": "lookup", "description": "Find an order.",
                   "parameters": {"type": "object", "properties": {}}}),
            json!({"type": "mcp", "server_label": "docs", "server_url": "https://example.com/mcp",
                   "allowed_tools": ["search"], "require_approval": "never",
                   "headers": {"X-Key": "1"}}),
            json!({"type": "mcp", "server_label": "docs",
                   "allowed_tools": {"read_only": true},
                   "require_approval": {"never": {"tool_names": ["search"]}}}),
            json!({"type": "web_search", "name": "future"}),
        ];
        for case in cases {
            let tool: ToolDefinition = serde_json::from_value(case.clone()).unwrap();
            assert_eq!(serde_json::to_value(&tool).unwrap(), case);
        }
    }

    #[test]
    fn tool_choice_round_trips() {
        let cases = [
            json!("none"),
            json!("auto"),
            json!("required"),
            json!({"type": "function", "name": "lookup"}),
            json!({"type": "mcp", "server_label": "docs", "name": "search"}),
            json!({"type": "mcp", "server_label": "docs"}),
        ];
        for case in cases {
            let choice: ToolChoice = serde_json::from_value(case.clone()).unwrap();
            assert_eq!(serde_json::to_value(&choice).unwrap(), case);
        }
        assert!(serde_json::from_value::<ToolChoice>(json!("sometimes")).is_err());
    }
}
