//! Tools: the [`Tool`] trait, the [`ToolRegistry`], parameter [`schema`]s, and plugin tools
//! declared in agent files ([`HttpTool`], [`McpToolSpec`]).
//!
//! The tool layer itself — [`Tool`], [`ToolContext`], [`ToolOutput`], [`ToolError`],
//! [`schema`], argument and settings checks, [`ToolRegistration`] — lives in the small
//! `agent-tool` crate, so a crate that defines tools compiles without the runtime; it is
//! re-exported here unchanged. What needs the runtime's dependencies stays here: the registry
//! and its JSON Schema [`ArgumentValidator`], HTTP tools, MCP specs and `${ENV}` templates.
//!
//! Most tools are plain Rust functions with `#[tool]` (from `agent-tool`), which generates a
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

mod env_template;
pub mod http;
mod mcp;
mod registry;
mod validate;

pub use agent_tool::{
    PhoneCall, RegistryError, SettingsError, Tool, ToolConfig, ToolContext, ToolError, ToolOutput,
    ToolRegistration, check_object, check_settings_as, deserialize_arguments, is_valid_name,
    kind_of, no_settings, parse_arguments, schema,
};
pub use env_template::{EnvTemplate, EnvTemplateError, MissingEnvVar};
pub use http::{HttpMethod, HttpTool, HttpToolError, HttpToolSpec};
pub use mcp::{McpApproval, McpToolSpec};
pub use registry::{ToolDescription, ToolRegistry};
pub use validate::ArgumentValidator;
