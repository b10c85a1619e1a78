//! Why an MCP server's tools could not be added to an agent.

use std::time::Duration;

/// Why connecting an `[[mcp_clients]]` server failed, or why its tools cannot be offered.
/// Each message names the server and says what to do; none holds a secret (texts from the
/// server are scrubbed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The process could not be started.
    #[error("MCP server `{server}`: cannot start `{command}`: {reason}")]
    Spawn {
        /// The server's name.
        server: String,
        /// The command as declared.
        command: String,
        /// The operating system's reason.
        reason: String,
    },
    /// Start-up (process or connection, handshake, tool list) took longer than
    /// `startup_timeout_secs`.
    #[error(
        "MCP server `{server}` did not finish starting within {:.1} s (it was {stage}){details}",
        after.as_secs_f64()
    )]
    StartupTimeout {
        /// The server's name.
        server: String,
        /// The deadline that ran out.
        after: Duration,
        /// What it was doing ("waiting for the answer to `initialize`").
        stage: &'static str,
        /// Its last stderr lines and skipped output, if any.
        details: String,
    },
    /// Start-up failed: the server refused the handshake, closed the connection, exited...
    #[error("MCP server `{server}` failed to start: {reason}")]
    Startup {
        /// The server's name.
        server: String,
        /// What went wrong, with the server's last words when it had any.
        reason: String,
    },
    /// The server lists a tool that cannot be offered to the model.
    #[error("MCP server `{server}`: {problem}")]
    BadTool {
        /// The server's name.
        server: String,
        /// What is wrong with which tool.
        problem: String,
    },
    /// `tools = [...]` names a tool the server does not have.
    #[error("MCP server `{server}` has no tool `{tool}` (listed in `tools`); it has: {available}")]
    UnknownTool {
        /// The server's name.
        server: String,
        /// The name in the allow-list.
        tool: String,
        /// The server's tools, comma-separated.
        available: String,
    },
    /// Two tools would reach the model under one name.
    #[error("two tools are named `{name}`: one from {first}, one from {second}")]
    Collision {
        /// The shared name.
        name: String,
        /// Where the first comes from.
        first: String,
        /// Where the second comes from.
        second: String,
    },
    /// The program was built without the `mcp` feature of agent-core.
    #[error(
        "MCP server `{server}`: this program was built without MCP client support (agent-core's `mcp` feature)"
    )]
    Unsupported {
        /// The server's name.
        server: String,
    },
}

impl McpError {
    /// The server the error is about (the first one, for a collision between two servers).
    pub fn server(&self) -> Option<&str> {
        match self {
            McpError::Spawn { server, .. }
            | McpError::StartupTimeout { server, .. }
            | McpError::Startup { server, .. }
            | McpError::BadTool { server, .. }
            | McpError::UnknownTool { server, .. }
            | McpError::Unsupported { server } => Some(server),
            McpError::Collision { .. } => None,
        }
    }

    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            McpError::Spawn { .. } => {
                "check `command`, `args` and `cwd`; the command must be installed".to_owned()
            }
            McpError::StartupTimeout { .. } => {
                "check that the server starts on its own (run the command by hand), or raise `startup_timeout_secs`".to_owned()
            }
            McpError::Startup { .. } => "check the server's declaration and its logs".to_owned(),
            McpError::BadTool { .. } => {
                "leave the tool out with `tools = [...]` (the tools to keep), or fix the server"
                    .to_owned()
            }
            McpError::UnknownTool { .. } => "fix the name in `tools`".to_owned(),
            McpError::Collision { .. } => {
                "give the MCP server a `prefix`, or leave the tool out with `tools = [...]`"
                    .to_owned()
            }
            McpError::Unsupported { .. } => {
                "build with agent-core's default features, or remove the [[mcp_clients]] entry"
                    .to_owned()
            }
        }
    }
}
