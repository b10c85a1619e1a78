//! The core of the Realtime agent framework: everything that knows the wire.
//!
//! `agent-core` holds the typed OpenAI Realtime protocol (GA and the beta dialect that Azure
//! OpenAI and many compatible servers still speak), the [`tool::Tool`] trait and its registry,
//! PCM16 audio helpers, and — as the runtime lands — agent definitions, the session runtime and
//! its transports. The terminal belongs to `agent-cli`; the `#[tool]` macro lives in
//! `agent-macros` and reaches serde, schemars and inventory through [`__private`], so a crate
//! that defines tools depends on `agent-core` and `agent-macros` only.
//!
//! Modules stay small and say what they hold; library errors are `thiserror` enums whose
//! messages say what went wrong and what to do about it. Nothing here panics on input.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod agent;
pub mod audio;
pub mod cost;
pub mod fs_limits;
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
pub mod trace_summary;

/// Re-exports used by code that `#[tool]` generates. Not a public API: it may change at any time.
#[doc(hidden)]
pub mod __private {
    /// Helpers the generated `Tool` implementations call.
    pub use crate::tool::macro_support as tool;
    pub use async_trait;
    pub use inventory;
    pub use schemars;
    pub use serde;
    pub use serde_json;
    pub use tokio;
}
