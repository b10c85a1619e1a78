//! Tools: the [`Tool`] trait, the [`ToolRegistry`], parameter [`schema`]s, and plugin tools
//! declared in agent files ([`HttpTool`], [`McpToolSpec`]).
//!
//! Most tools are plain Rust functions with `#[tool]` (from `agent-macros`), which generates a
//! `Tool` implementation and submits it to `inventory`; [`ToolRegistry::from_inventory`]
//! collects them. Plugins and tests add tools at run time with [`ToolRegistry::register`].
//!
//! A call flows: the model's argument string → [`ToolRegistry::invoke`] (JSON check, then the
//! tool's own schema: ranges, enums, patterns, required and unknown properties, through an
//! [`ArgumentValidator`] compiled once per tool) → [`Tool::call`] (typed deserialization; errors
//! name the argument) → a [`ToolOutput`] or a
//! [`ToolError`] whose [`ToolError::to_model_output`] the model reads. Per-agent settings reach
//! tools through [`ToolContext::setting`], [`ToolContext::data_dir`] and
//! [`ToolContext::extension`] (see [`ToolConfig`]).

mod arguments;
mod context;
mod env_template;
mod error;
pub mod http;
#[doc(hidden)]
pub mod macro_support;
mod mcp;
mod output;
mod registry;
pub mod schema;
mod settings;
mod validate;

use async_trait::async_trait;
use serde_json::Value;

pub(crate) use arguments::kind_of;
pub use arguments::{deserialize_arguments, parse_arguments};
pub use context::{ToolConfig, ToolContext};
pub use env_template::{EnvTemplate, EnvTemplateError, MissingEnvVar};
pub use error::{RegistryError, ToolError};
pub use http::{HttpMethod, HttpTool, HttpToolError, HttpToolSpec};
pub use mcp::{McpApproval, McpToolSpec};
pub use output::ToolOutput;
pub use registry::{ToolDescription, ToolRegistration, ToolRegistry, is_valid_name};
pub use settings::{SettingsError, check_settings_as};
pub use validate::ArgumentValidator;

/// A function the model can call.
///
/// Dyn-compatible: the registry holds `Arc<dyn Tool>`. Implement it by hand for tools built at
/// run time (like [`HttpTool`]); `#[tool]` implements it for plain functions.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The name the model calls it by (`^[a-zA-Z0-9_-]{1,64}$`).
    fn name(&self) -> &str;

    /// What it does and when to use it; the model decides from this.
    fn description(&self) -> &str;

    /// Its parameters as a function-parameters JSON Schema (see [`schema`]), strict or relaxed.
    /// Computed once per tool and mode, so calling it per session is free.
    fn parameters(&self, strict: bool) -> &Value;

    /// Runs the tool. `args` is the JSON object the model sent (already checked to be an
    /// object, with `null`s removed, and checked against [`Tool::parameters`] when it came
    /// through [`ToolRegistry::invoke`]).
    async fn call(&self, args: Value, ctx: ToolContext) -> Result<ToolOutput, ToolError>;

    /// Checks the agent file's `[tool_config.NAME]` table for this tool (as JSON) when the file
    /// loads, so a misspelled or mistyped setting fails `agent check` instead of the first call.
    ///
    /// The default accepts anything, for tools that read no settings or read them loosely.
    /// `#[tool(settings = MySettings)]` generates a check that deserializes into `MySettings`
    /// (see [`check_settings_as`]).
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
}
