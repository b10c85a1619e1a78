//! Every supported signature shape compiles, and the function stays callable.

use agent_tool::{ToolContext, ToolError};
use agent_tool::tool;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum Priority {
    Low,
    High,
}

#[derive(Serialize)]
struct Ticket {
    id: u64,
}

/// Sync, plain return.
#[tool]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

/// Async, `Result` with a `String` error, context by value.
#[tool]
async fn file_ticket(subject: String, priority: Option<Priority>, ctx: ToolContext) -> Result<Ticket, String> {
    let _ = (subject, priority, ctx.call_id());
    Ok(Ticket { id: 1 })
}

/// Context by reference, `mut` binding, a `Vec`, a `ToolError` error.
#[tool(name = "count-words")]
fn count_words(mut words: Vec<String>, ctx: &ToolContext) -> Result<usize, ToolError> {
    words.retain(|w| !w.is_empty());
    let _ = ctx.is_cancelled();
    Ok(words.len())
}

/// A `Result` alias with one argument.
type MyResult<T> = std::result::Result<T, std::io::Error>;

/// No parameters, alias return.
#[tool]
fn nothing() -> MyResult<&'static str> {
    Ok("ok")
}

/// `impl Serialize` return and a unit return.
#[tool]
fn opaque() -> impl Serialize {
    vec![1, 2, 3]
}

#[tool(description = "Returns nothing.")]
async fn unit_return(#[schemars(range(min = 1, max = 3))] level: u8) {
    let _ = level;
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GreetingSettings {
    #[allow(dead_code)]
    greeting: Option<String>,
}

/// Declares the type of its `[tool_config.greet]` table.
#[tool(settings = GreetingSettings)]
fn greet(name: String, ctx: ToolContext) -> Result<String, ToolError> {
    let settings: Option<GreetingSettings> = ctx.setting("greet")?;
    let greeting = settings.and_then(|s| s.greeting).unwrap_or_else(|| "hello".into());
    Ok(format!("{greeting} {name}"))
}

mod reexport {
    pub use agent_tool as tool_again;
}

/// The crate path can be overridden for crates that reach agent-tool by another path.
#[tool(crate = "crate::reexport::tool_again")]
fn via_reexport(r#type: String) -> String {
    r#type
}

/// Code that names only agent-core keeps working: it re-exports agent-tool.
#[tool(crate = "agent_core")]
fn via_agent_core(text: String) -> String {
    text
}

fn main() {
    assert_eq!(add(1, 2), 3);
    assert_eq!(count_words(vec!["a".into(), String::new()], &ToolContext::standalone()).ok(), Some(1));
    let _ = (file_ticket, nothing, opaque, unit_return, via_reexport, via_agent_core, greet);
}
