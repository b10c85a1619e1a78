//! One MCP tool as a [`Tool`]: it sits in the agent's registry like any other, so its calls go
//! through the same dispatcher, argument check, timeout and cancellation.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use rmcp::{
    Peer, RoleClient, ServiceError,
    model::{CallToolRequestParams, ErrorCode},
};
use serde_json::{Map, Value};

use super::{content, describe::error_chain, state::ServerState};
use crate::tool::{Tool, ToolContext, ToolError, ToolOutput, schema};

/// A tool of an `[[mcp_clients]]` server.
pub(crate) struct McpTool {
    /// The name the model calls it by (prefixed, made acceptable).
    pub(crate) name: String,
    /// The server's own name for it.
    pub(crate) remote: String,
    pub(crate) description: String,
    pub(crate) strict: Value,
    pub(crate) relaxed: Value,
    pub(crate) peer: Peer<RoleClient>,
    pub(crate) server: String,
    pub(crate) state: Arc<ServerState>,
    pub(crate) call_timeout: Option<Duration>,
    pub(crate) max_output_bytes: usize,
}

impl std::fmt::Debug for McpTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTool")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self, strict: bool) -> &Value {
        if strict { &self.strict } else { &self.relaxed }
    }

    async fn call(&self, args: Value, ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        if let Some(why) = self.state.ended() {
            return Err(self.unavailable(&why));
        }
        let mut params = CallToolRequestParams::new(self.remote.clone());
        params.arguments = Some(match args {
            Value::Object(map) => map,
            _ => Map::new(),
        });
        let deadline = async {
            match self.call_timeout {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        // Dropping the call (cancelled, or past its deadline) makes rmcp send
        // `notifications/cancelled`, so the server can stop too.
        tokio::select! {
            biased;
            () = ctx.cancelled() => Err(ToolError::Cancelled),
            () = deadline => Err(ToolError::Timeout {
                after: self.call_timeout.unwrap_or_default(),
            }),
            result = self.peer.call_tool(params) => match result {
                Ok(result) => {
                    let result = serde_json::to_value(&result).map_err(|err| {
                        ToolError::failed(format!("the result of `{}` could not be read: {err}", self.name))
                    })?;
                    content::to_output(&self.server, &self.name, &result, self.max_output_bytes)
                }
                Err(err) => Err(self.service_error(err)),
            },
        }
    }
}

impl McpTool {
    fn unavailable(&self, why: &str) -> ToolError {
        ToolError::failed(scrubbed(format!(
            "MCP server `{}` is not available: {why}{}",
            self.server,
            self.state.details()
        )))
    }

    fn service_error(&self, err: ServiceError) -> ToolError {
        match err {
            ServiceError::McpError(data) if data.code == ErrorCode::INVALID_PARAMS => {
                ToolError::invalid_arguments(
                    &self.name,
                    scrubbed(format!("the MCP server refused them: {}", data.message)),
                    schema::describe_expected(&self.relaxed),
                )
            }
            ServiceError::McpError(data) => ToolError::failed(scrubbed(format!(
                "MCP server `{}` answered the call with error {}: {}",
                self.server, data.code.0, data.message
            ))),
            ServiceError::TransportClosed => {
                // The transport records why the server went away before the call fails.
                let why = self
                    .state
                    .ended()
                    .unwrap_or_else(|| "the connection closed".to_owned());
                self.unavailable(&why)
            }
            ServiceError::TransportSend(_) => match self.state.ended() {
                Some(why) => self.unavailable(&why),
                None => ToolError::failed(format!(
                    "calling `{}` on MCP server `{}` failed: {}",
                    self.remote,
                    self.server,
                    error_chain(&err)
                )),
            },
            ServiceError::Timeout { timeout } => ToolError::Timeout { after: timeout },
            ServiceError::UnexpectedResponse => ToolError::failed(format!(
                "MCP server `{}` answered `{}` with something other than a result (a task, or a request for more input, which this client does not support)",
                self.server, self.remote
            )),
            other => ToolError::failed(format!(
                "calling `{}` on MCP server `{}` failed: {}",
                self.remote,
                self.server,
                error_chain(&other)
            )),
        }
    }
}

/// A message the model will read, with every known secret removed (servers echo tokens).
fn scrubbed(message: String) -> String {
    crate::redact::scrub(&message).into_owned()
}
