//! The tool layer of the Realtime agent framework: everything a crate that defines tools needs,
//! and nothing it does not.
//!
//! A tool is a plain Rust function with [`#[tool]`](tool). This crate holds what that function
//! and its generated code use: the [`Tool`] trait, the per-call [`ToolContext`] and the agent's
//! [`ToolConfig`], the [`ToolOutput`] the model reads or the [`ToolError`] it reads instead,
//! parameter [`schema`]s in the shape OpenAI function calling expects, argument
//! deserialization whose errors name the argument ([`deserialize_arguments`]), settings checks
//! ([`check_settings_as`]), and the [`ToolRegistration`] that `#[tool]` submits to `inventory`.
//!
//! ```
//! use agent_tool::{ToolContext, tool};
//!
//! /// Greets someone by name.
//! #[tool]
//! fn greet(
//!     /// Who to greet.
//!     name: String,
//!     ctx: ToolContext,
//! ) -> String {
//!     format!("Hello, {name}! (call {})", ctx.call_id())
//! }
//!
//! // It stays a normal function.
//! assert_eq!(greet("Ada".into(), ToolContext::standalone()), "Hello, Ada! (call local)");
//! ```
//!
//! **Why a crate of its own.** The runtime (`agent-core`) speaks the Realtime wire: WebSockets,
//! TLS, HTTP, SQLite, JSON Schema validation. A tool crate needs none of that, so it depends on
//! this crate alone, which pulls in serde, schemars, a minimal tokio and the macro, and builds
//! in seconds. `agent-core` builds on it: its `ToolRegistry` collects every registered tool,
//! checks each call's arguments against the tool's schema, and runs it; `agent_core::tool`
//! re-exports everything here, so code written against either path keeps working.
//!
//! Generated code reaches serde, schemars and inventory only through `__private`, so a tool
//! crate needs no direct dependency on them unless its own types derive their traits.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

mod arguments;
mod context;
mod error;
mod guardrail;
#[doc(hidden)]
pub mod macro_support;
mod output;
mod phone;
mod registration;
pub mod schema;
mod settings;

use async_trait::async_trait;
use serde_json::Value;

pub use agent_macros::tool;
pub use arguments::{check_object, deserialize_arguments, kind_of, parse_arguments};
pub use context::{ToolConfig, ToolContext};
pub use error::{RegistryError, ToolError};
pub use guardrail::{Guardrail, GuardrailRegistration, GuardrailStage};
pub use output::ToolOutput;
pub use phone::PhoneCall;
pub use registration::{ToolRegistration, is_valid_name};
pub use settings::{SettingsError, check_settings_as, no_settings};
/// The cancellation signal a [`ToolContext`] carries (tokio-util's), for tools that hand it to
/// tasks of their own and for runtimes that build contexts.
pub use tokio_util::sync::CancellationToken;

/// A function the model can call.
///
/// Dyn-compatible: a registry holds `Arc<dyn Tool>`. Implement it by hand for tools built at
/// run time (like agent-core's HTTP tools); `#[tool]` implements it for plain functions.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The name the model calls it by (`^[a-zA-Z0-9_-]{1,64}$`, see [`is_valid_name`]).
    fn name(&self) -> &str;

    /// What it does and when to use it; the model decides from this.
    fn description(&self) -> &str;

    /// Its parameters as a function-parameters JSON Schema (see [`schema`]), strict or relaxed.
    /// Computed once per tool and mode, so calling it per session is free.
    fn parameters(&self, strict: bool) -> &Value;

    /// Runs the tool. `args` is the JSON object the model sent (already checked to be an
    /// object, with `null`s removed, and checked against [`Tool::parameters`] when it came
    /// through agent-core's `ToolRegistry::invoke`).
    async fn call(&self, args: Value, ctx: ToolContext) -> Result<ToolOutput, ToolError>;

    /// Checks the agent file's `[tool_config.NAME]` table for this tool (as JSON) when the file
    /// loads, so a misspelled or mistyped setting fails `agent check` instead of the first call.
    ///
    /// The default accepts anything, for tools that read no settings or read them loosely.
    /// `#[tool(settings = MySettings)]` generates a check that deserializes into `MySettings`
    /// (see [`check_settings_as`]); [`no_settings`] refuses every key.
    fn check_settings(&self, settings: &Value) -> Result<(), SettingsError> {
        let _ = settings;
        Ok(())
    }

    /// Whether the same arguments always give the same output (a lookup in fixed data, a
    /// calculation), unlike the clock, the network or a tool that creates something. `agent
    /// trace to-scenario` expects a recorded output verbatim only from such tools. The default
    /// is `false`; `#[tool(deterministic)]` says `true`.
    fn deterministic(&self) -> bool {
        false
    }

    /// Whether each call waits for a person's approval before it runs (a refund, a
    /// transfer, anything hard to undo). The runtime asks (the terminal, an approval event,
    /// `agent serve`'s approvals endpoint); a denial or no answer in time becomes the call's
    /// output, so the model can tell the user. The default is `false`;
    /// `#[tool(needs_approval)]` says `true`, and an agent file can require approval for any
    /// tool (`[tool_options] needs_approval = [...]`).
    fn needs_approval(&self) -> bool {
        false
    }

    /// Whether calls run in the background: the model reads "started" at once and can go on
    /// talking, and the result joins the conversation when it is ready (a report, a long
    /// search). For tools slower than a conversational pause. The default is `false`;
    /// `#[tool(background)]` says `true`, and an agent file can name any tool
    /// (`[tool_options] background = [...]`).
    fn background(&self) -> bool {
        false
    }
}

/// Re-exports used by code that `#[tool]` generates. Not a public API: it may change at any time.
#[doc(hidden)]
pub mod __private {
    /// Helpers the generated `Tool` implementations call.
    pub use crate::macro_support as tool;
    pub use async_trait;
    pub use inventory;
    pub use schemars;
    pub use serde;
    pub use serde_json;
}
