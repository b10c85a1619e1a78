//! The core of the Realtime agent framework: everything that knows the wire.
//!
//! `agent-core` holds the typed OpenAI Realtime protocol (GA and the beta dialect that Azure
//! OpenAI and many compatible servers still speak), the tool registry with its argument
//! validation, HTTP and MCP plugin tools, agent definitions, the session runtime and its
//! transports, audio, history, usage and cost. The terminal belongs to `agent-cli`.
//!
//! The tool layer ([`tool::Tool`], its context, output, errors and schemas) is the small
//! `agent-tool` crate, re-exported as [`tool`]: a crate that only defines tools depends on
//! `agent-tool` and compiles none of the runtime. `#[tool(crate = "agent_core")]` still works
//! for code that names only this crate, through [`__private`].
//!
//! Modules stay small and say what they hold; library errors are `thiserror` enums whose
//! messages say what went wrong and what to do about it. Nothing here panics on input.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod agent;
pub mod audio;
mod batch_queue;
pub mod cost;
pub mod data_dir;
pub mod fs_limits;
pub mod guardrail;
pub mod history;
pub mod latency;
pub mod mcp;
pub mod private_file;
pub mod protocol;
pub mod redact;
pub mod session;
pub mod tls;
pub mod tool;
pub mod trace;
mod trace_scan;
pub mod trace_summary;

/// Re-exports used by code that `#[tool(crate = "agent_core")]` generates: agent-tool's. Not a
/// public API: it may change at any time.
#[doc(hidden)]
pub use agent_tool::__private;
