//! Connecting one server: start or reach it, the MCP handshake, its tool list, all within
//! `startup_timeout_secs`; then its tools as [`McpTool`]s.

use std::{path::Path, sync::Arc};

use rmcp::{
    RoleClient, ServiceExt,
    model::{ClientCapabilities, ClientConfig, Implementation},
    service::RunningService,
};
use serde_json::Value;

use super::{
    McpError,
    describe::error_chain,
    http, names,
    spec::{MAX_MESSAGE_BYTES, McpClientSpec, McpTransportKind},
    state::ServerState,
    stdio,
    tool::McpTool,
};
use crate::tool::schema;

/// How long a failed start waits for the process's last stderr lines.
const STDERR_WAIT: std::time::Duration = std::time::Duration::from_millis(300);

/// A server that finished its handshake, with the tools it listed.
pub(crate) struct Connected {
    pub(crate) service: RunningService<RoleClient, ClientConfig>,
    pub(crate) state: Arc<ServerState>,
    pub(crate) tools: Vec<rmcp::model::Tool>,
}

/// How this client introduces itself.
fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("realtime-agents", env!("CARGO_PKG_VERSION")),
    )
}

/// Starts (or reaches) the server, shakes hands and lists its tools, within its startup
/// deadline. On any failure the server is stopped (its process group killed) before this
/// returns.
pub(crate) async fn connect(spec: &McpClientSpec, base: &Path) -> Result<Connected, McpError> {
    let deadline = spec.startup_timeout();
    let state = Arc::new(ServerState::new(spec.name()));
    let start = async {
        let service = match spec.transport() {
            Some(McpTransportKind::Stdio) => {
                let transport = stdio::spawn(spec, base, state.clone(), MAX_MESSAGE_BYTES)?;
                state.set_stage("waiting for the answer to `initialize`");
                client_config().serve(transport).await
            }
            Some(McpTransportKind::Http) => {
                let transport = http::transport(spec, deadline, MAX_MESSAGE_BYTES)?;
                state.set_stage("waiting for the answer to `initialize`");
                client_config().serve(transport).await
            }
            None => {
                return Err(McpError::Startup {
                    server: spec.name().to_owned(),
                    reason: "set `command` or `url`".to_owned(),
                });
            }
        };
        let service = match service {
            Ok(service) => service,
            Err(err) => {
                // A process that failed its handshake is usually exiting: let its status and
                // last words in.
                if state.ended().is_none()
                    && let Some(status) = state.exit_within(STDERR_WAIT).await
                {
                    state.set_ended(format!("it exited ({status})"));
                }
                state.stderr_read(STDERR_WAIT).await;
                return Err(startup_error(spec, &state, &error_chain(&err)));
            }
        };
        state.set_stage("waiting for the answer to `tools/list`");
        let tools = service.peer().list_all_tools().await.map_err(|err| {
            startup_error(
                spec,
                &state,
                &format!("listing its tools: {}", error_chain(&err)),
            )
        })?;
        Ok(Connected {
            service,
            state: state.clone(),
            tools,
        })
    };
    match tokio::time::timeout(deadline, start).await {
        Ok(result) => result,
        Err(_) => Err(McpError::StartupTimeout {
            server: spec.name().to_owned(),
            after: deadline,
            stage: state.stage(),
            details: state.details(),
        }),
    }
}

fn startup_error(spec: &McpClientSpec, state: &ServerState, reason: &str) -> McpError {
    let ended = state
        .ended()
        .map(|why| format!(" ({why})"))
        .unwrap_or_default();
    McpError::Startup {
        server: spec.name().to_owned(),
        reason: crate::redact::scrub(&format!("{reason}{ended}{}", state.details())).into_owned(),
    }
}

impl Connected {
    /// The server's tools as this agent offers them: filtered by `tools = [...]`, renamed with
    /// the prefix, with normalized schemas. Every problem is reported, not only the first.
    pub(crate) fn agent_tools(&self, spec: &McpClientSpec) -> Result<Vec<McpTool>, Vec<McpError>> {
        let server = spec.name().to_owned();
        let mut errors = Vec::new();
        if let Some(wanted) = &spec.tools {
            for name in wanted {
                if !self.tools.iter().any(|tool| tool.name == name.as_str()) {
                    let available: Vec<&str> =
                        self.tools.iter().map(|tool| tool.name.as_ref()).collect();
                    errors.push(McpError::UnknownTool {
                        server: server.clone(),
                        tool: name.clone(),
                        available: if available.is_empty() {
                            "no tools at all".to_owned()
                        } else {
                            available.join(", ")
                        },
                    });
                }
            }
        }
        let mut tools = Vec::new();
        for listed in &self.tools {
            let remote = listed.name.to_string();
            if spec
                .tools
                .as_ref()
                .is_some_and(|wanted| !wanted.contains(&remote))
            {
                continue;
            }
            let bad = |problem: String| McpError::BadTool {
                server: server.clone(),
                problem,
            };
            let name = match names::exposed_name(spec.prefix.as_deref(), &remote) {
                Ok(name) => name,
                Err(problem) => {
                    errors.push(bad(problem));
                    continue;
                }
            };
            let parameters = match parameters_schema(&listed.input_schema) {
                Ok(parameters) => parameters,
                Err(problem) => {
                    errors.push(bad(format!("tool `{remote}` {problem}")));
                    continue;
                }
            };
            let description = listed
                .description
                .as_deref()
                .filter(|d| !d.trim().is_empty())
                .or(listed.title.as_deref())
                .map_or_else(
                    || format!("`{remote}` from the MCP server `{server}`."),
                    str::to_owned,
                );
            tools.push(McpTool {
                name,
                remote,
                description,
                strict: schema::normalize(parameters.clone(), true),
                relaxed: schema::normalize(parameters, false),
                peer: self.service.peer().clone(),
                server: server.clone(),
                state: self.state.clone(),
                call_timeout: spec.call_timeout(),
                max_output_bytes: spec.max_output_bytes,
            });
        }
        if errors.is_empty() {
            Ok(tools)
        } else {
            Err(errors)
        }
    }
}

/// The tool's input schema as a function-parameters schema: an object schema (a missing
/// `type` means one, as some servers leave it out).
fn parameters_schema(input: &serde_json::Map<String, Value>) -> Result<Value, String> {
    let mut schema = input.clone();
    match schema.get("type") {
        None => {
            schema.insert("type".into(), Value::from("object"));
        }
        Some(kind) if kind == "object" => {}
        Some(other) => {
            return Err(format!(
                "has an input schema of type {other}; a tool's parameters must be an object"
            ));
        }
    }
    if !schema.contains_key("properties") {
        schema.insert("properties".into(), Value::Object(serde_json::Map::new()));
    }
    Ok(Value::Object(schema))
}
