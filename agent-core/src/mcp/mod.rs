//! MCP servers that the framework itself calls: tools without recompiling.
//!
//! An agent file declares them under `[[mcp_clients]]` ([`McpClientSpec`]): a program to start
//! that speaks MCP on stdin and stdout (`command`, `args`, `env`, `cwd`), or a streamable HTTP
//! endpoint (`url`, `headers`, `bearer_token`). [`Agent::connect_mcp`](crate::agent::Agent)
//! connects them all within their startup deadlines, lists their tools and adds each one to
//! the agent's [`ToolRegistry`](crate::tool::ToolRegistry) under its own name, description and
//! schema. From there an MCP tool is a tool like any other: the same dispatcher, argument
//! validation, timeout and cancellation. The returned [`McpClients`] owns the connections;
//! shutting it down (or dropping it) stops the servers, stdio ones with their whole process
//! group.
//!
//! These are not the `[[mcp_servers]]` of an agent file, which the Realtime API calls itself
//! (`crate::tool::McpToolSpec`).
//!
//! The protocol is rmcp's (the official Rust SDK, client side only). This module adds what a
//! voice agent needs around it: deadlines on every wait, limits on every message, clear errors
//! when a server misbehaves, and no secret in any of them. The pieces:
//!
//! - `spec`: the declaration and its load-time checks;
//! - `names`: the names the model calls MCP tools by;
//! - `content`: an MCP result as the text the model reads; `describe`: SDK errors as text;
//! - `state`: a server's health record (stderr tail, skipped output, why it ended);
//! - `stdio` and `http`: the two transports;
//! - `server`: connecting one server; `tool`: one of its tools as a `Tool`;
//! - `clients`: [`Agent::connect_mcp`](crate::agent::Agent) and [`McpClients`].
//!
//! Without the `mcp` feature (on by default) the declarations still parse and check, and
//! connecting an agent that has any fails with a message saying the feature is missing.

mod clients;
#[cfg(feature = "mcp")]
mod content;
#[cfg(feature = "mcp")]
mod describe;
mod error;
#[cfg(feature = "mcp")]
mod http;
#[cfg(feature = "mcp")]
mod names;
#[cfg(feature = "mcp")]
mod server;
mod spec;
#[cfg(feature = "mcp")]
mod state;
#[cfg(feature = "mcp")]
mod stdio;
#[cfg(feature = "mcp")]
mod tool;

pub use clients::McpClients;
pub use error::McpError;
pub use spec::{
    DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_STARTUP_TIMEOUT_SECS, INHERITED_ENV, MAX_MESSAGE_BYTES,
    MAX_OUTPUT_BYTES_LIMIT, McpClientSpec, McpTransportKind,
};

use crate::agent::{AgentFile, Diagnostic};

/// The load-time problems of every `[[mcp_clients]]` entry (see [`McpClientSpec::problems`]),
/// each at the entry's `name`, plus names used twice.
pub(crate) fn check_declarations(file: &AgentFile) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for spec in &file.spec.mcp_clients {
        let name = spec.name();
        if seen.contains(&name) {
            problems.push(file.diagnostic(
                spec.name.span(),
                format!("two MCP servers are named `{name}`"),
                Some("give each [[mcp_clients]] entry its own name".to_owned()),
            ));
        }
        seen.push(name);
        for problem in spec.problems() {
            problems.push(file.diagnostic(
                spec.name.span(),
                format!("MCP server `{name}`: {problem}"),
                Some("fix the [[mcp_clients]] entry".to_owned()),
            ));
        }
    }
    problems
}
