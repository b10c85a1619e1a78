//! The `#[tool]` attribute: turns a plain Rust function into a tool the model can call.
//!
//! Tool crates use it through `agent-tool`, which re-exports it beside everything the generated
//! code needs:
//!
//! ```ignore
//! use agent_tool::{ToolContext, tool};
//!
//! /// Current weather for a city.
//! #[tool]
//! async fn get_weather(
//!     /// The city, e.g. "Oslo".
//!     city: String,
//!     /// Celsius unless asked otherwise.
//!     unit: Option<Unit>,
//!     ctx: ToolContext,
//! ) -> Result<Weather, WeatherError> { ... }
//! ```
//!
//! The function stays an ordinary function. Next to it, inside `const _: () = { ... };`, the
//! macro emits a `#[derive(Deserialize, JsonSchema)]` struct of the parameters (doc comments
//! become property descriptions; `#[schemars(...)]` and `#[serde(...)]` on a parameter move to
//! its field), a type implementing `agent_tool::Tool`, and an `inventory` registration.
//! Generated code reaches its dependencies only through `::agent_tool::__private`; a crate that
//! reaches agent-tool by another path says so with `#[tool(crate = "path::to::agent_tool")]`
//! (`agent_core` works too: it re-exports agent-tool).
//!
//! The crate is split like serde_derive: `attr` parses the attribute, `classify` checks the
//! signature and collects *every* error at its exact span, `expand` generates code. When there
//! are errors the user's function is still emitted (with parameter attributes removed) next to
//! the `compile_error!`s, so IDEs keep working.

mod attr;
mod classify;
mod expand;

use proc_macro::TokenStream;

/// Makes a free `fn` or `async fn` a tool.
///
/// - `name = "..."` overrides the tool name (the function's name by default);
/// - `description = "..."` overrides the description (the doc comment by default);
/// - `settings = Type` declares the type of the agent file's `[tool_config.NAME]` table, so the
///   loader checks it when the agent file loads (`agent check` reports a misspelled key with
///   its line and column); `Type` must implement `Deserialize` and should use
///   `#[serde(deny_unknown_fields)]`. The tool reads it with `ctx.setting::<Type>("NAME")`;
/// - `deterministic` says the same arguments always give the same output (a lookup in fixed
///   data, a calculation; not the clock, the network, or a tool that creates something), so
///   `agent trace to-scenario` expects its recorded output verbatim;
/// - `needs_approval` makes every call wait for a person's approval before it runs (a
///   denial, or no answer in time, reaches the model as the call's output);
/// - `background` makes calls answer "started" at once, so the model goes on talking, and
///   deliver the result to the conversation when it is ready (a long report, a slow search);
/// - `crate = "..."` sets the path to agent-tool (`::agent_tool` by default; `"agent_core"`
///   works as well, since agent-core re-exports it).
///
/// Calls through the registry are checked against the schema the tool advertises (ranges from
/// `#[schemars(range(...))]`, enums, patterns, lengths, required and unknown properties)
/// before the function runs, so the function never sees arguments its schema rules out.
///
/// Parameters must be owned types implementing `Deserialize` + `JsonSchema`; `Option<T>`
/// parameters are optional; one parameter may be `ToolContext`, which is not part of the schema.
/// The return type is `T` or `Result<T, E>` with `T: Serialize` and `E: Display`. Synchronous
/// functions run on tokio's blocking pool, so they may block.
#[proc_macro_attribute]
pub fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = proc_macro2::TokenStream::from(args);
    let item = proc_macro2::TokenStream::from(item);
    expand::tool(args, item).into()
}
