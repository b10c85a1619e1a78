//! Connecting an agent's `[[mcp_clients]]` and owning the connections while it runs.

#[cfg(feature = "mcp")]
use std::{path::Path, sync::Arc, time::Duration};

use super::McpError;
use crate::agent::{Agent, AgentError, AgentFile, Diagnostic};

/// How long stopping all servers may take: each gets its input closed, a moment to exit, and
/// then its process group is killed.
#[cfg(feature = "mcp")]
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// The MCP servers an agent is connected to ([`Agent::connect_mcp`]). Keep it for as long as
/// the agent's sessions run: the servers' tools work only while it lives.
///
/// [`McpClients::shutdown`] stops them within a deadline; dropping it stops them too (stdio
/// servers' process groups are killed on drop, even without a runtime), so no server outlives
/// the run that started it.
#[derive(Default)]
pub struct McpClients {
    #[cfg(feature = "mcp")]
    servers: Vec<(
        String,
        rmcp::service::RunningService<rmcp::RoleClient, rmcp::model::ClientConfig>,
    )>,
}

impl std::fmt::Debug for McpClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpClients")
            .field("servers", &self.names())
            .finish()
    }
}

impl McpClients {
    /// The names of the connected servers.
    pub fn names(&self) -> Vec<&str> {
        #[cfg(feature = "mcp")]
        {
            self.servers.iter().map(|(name, _)| name.as_str()).collect()
        }
        #[cfg(not(feature = "mcp"))]
        {
            Vec::new()
        }
    }

    /// Whether no server is connected.
    pub fn is_empty(&self) -> bool {
        self.names().is_empty()
    }

    /// Stops every server (all at once), within a couple of seconds whatever they do: stdio
    /// servers get their input closed and a moment to exit, then their process group is
    /// killed; HTTP sessions are closed.
    pub async fn shutdown(self) {
        #[cfg(feature = "mcp")]
        {
            let stops = self.servers.into_iter().map(|(name, service)| async move {
                if tokio::time::timeout(SHUTDOWN_WAIT, service.cancel())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        "MCP server `{name}` did not stop within {} s; it is being killed",
                        SHUTDOWN_WAIT.as_secs()
                    );
                }
            });
            futures_util::future::join_all(stops).await;
        }
    }
}

impl Agent {
    /// Connects every server the agent file declares under `[[mcp_clients]]`, all at once and
    /// each within its `startup_timeout_secs`, and adds their tools to the agent's tools, so
    /// the session offers them and the dispatcher calls them like any other tool.
    ///
    /// Every problem is reported, each at its server's `name` in the file: a server that cannot
    /// start, hangs, or lists tools that cannot be offered (a bad schema, a name over 64
    /// characters, a clash with another tool). On an error no server is left running.
    ///
    /// Keep the returned [`McpClients`] while the agent runs. Without `[[mcp_clients]]` this
    /// returns at once with nothing to keep.
    pub async fn connect_mcp(&mut self) -> Result<McpClients, AgentError> {
        if self.file.spec.mcp_clients.is_empty() || self.mcp_attached {
            self.mcp_attached = true;
            return Ok(McpClients::default());
        }
        let (clients, problems) = self.connect_declared().await;
        if !problems.is_empty() {
            clients.shutdown().await;
            return Err(AgentError::Invalid(problems));
        }
        self.mcp_attached = true;
        if let Some(problem) = self.check_choice_after_mcp() {
            clients.shutdown().await;
            return Err(AgentError::Invalid(vec![problem]));
        }
        Ok(clients)
    }

    #[cfg(not(feature = "mcp"))]
    async fn connect_declared(&mut self) -> (McpClients, Vec<Diagnostic>) {
        let problems = self
            .file
            .spec
            .mcp_clients
            .iter()
            .map(|spec| {
                mcp_diagnostic(
                    &self.file,
                    spec,
                    &McpError::Unsupported {
                        server: spec.name().to_owned(),
                    },
                )
            })
            .collect();
        (McpClients::default(), problems)
    }

    #[cfg(feature = "mcp")]
    async fn connect_declared(&mut self) -> (McpClients, Vec<Diagnostic>) {
        let base = self
            .file
            .path
            .parent()
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let specs = self.file.spec.mcp_clients.clone();
        let connections = futures_util::future::join_all(
            specs.iter().map(|spec| super::server::connect(spec, &base)),
        )
        .await;
        let mut problems = Vec::new();
        let mut clients = McpClients::default();
        let mut registry = (*self.tools).clone();
        for (spec, connection) in specs.iter().zip(connections) {
            let connected = match connection {
                Ok(connected) => connected,
                Err(err) => {
                    problems.push(mcp_diagnostic(&self.file, spec, &err));
                    continue;
                }
            };
            match connected.agent_tools(spec) {
                Ok(tools) => {
                    for tool in tools {
                        let source = self.tool_source(spec, &tool.remote);
                        if let Err(err) = registry.register(Arc::new(tool), source) {
                            problems.push(mcp_diagnostic(
                                &self.file,
                                spec,
                                &registry_error(spec, err),
                            ));
                        }
                    }
                }
                Err(errors) => problems.extend(
                    errors
                        .iter()
                        .map(|err| mcp_diagnostic(&self.file, spec, err)),
                ),
            }
            clients
                .servers
                .push((spec.name().to_owned(), connected.service));
        }
        if problems.is_empty() {
            self.tools = Arc::new(registry);
        }
        (clients, problems)
    }

    /// Where an MCP tool comes from, as `agent tools` shows it and a clash names it.
    #[cfg(feature = "mcp")]
    fn tool_source(&self, spec: &super::McpClientSpec, remote: &str) -> String {
        let (line, _) = crate::agent::line_col(&self.file.source, spec.name.span().start);
        format!(
            "MCP server `{}` ({}:{line}), its tool `{remote}`",
            spec.name(),
            self.file.path.display()
        )
    }

    /// A `tool_options.choice` naming a tool is checked once the MCP tools are known.
    fn check_choice_after_mcp(&self) -> Option<Diagnostic> {
        let choice = &self.file.spec.tool_options.choice;
        let name = choice.get_ref().as_str();
        if matches!(name, "auto" | "none" | "required") || self.tools.contains(name) {
            return None;
        }
        Some(self.file.diagnostic(
            choice.span(),
            format!("tool choice `{name}` is neither a mode nor one of this agent's tools"),
            Some(format!(
                "use auto, none, required, or one of: {}",
                self.tools.names().join(", ")
            )),
        ))
    }
}

#[cfg(feature = "mcp")]
fn registry_error(spec: &super::McpClientSpec, err: crate::tool::RegistryError) -> McpError {
    match err {
        crate::tool::RegistryError::Duplicate {
            name,
            first_source,
            second_source,
        } => McpError::Collision {
            name,
            first: first_source,
            second: second_source,
        },
        other => McpError::BadTool {
            server: spec.name().to_owned(),
            problem: other.to_string(),
        },
    }
}

/// An MCP problem at the server's `name` in the agent file.
fn mcp_diagnostic(file: &AgentFile, spec: &super::McpClientSpec, err: &McpError) -> Diagnostic {
    file.diagnostic(spec.name.span(), err.to_string(), Some(err.hint()))
}
