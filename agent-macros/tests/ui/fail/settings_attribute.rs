use agent_tool::tool;

#[derive(serde::Deserialize)]
struct Settings {}

/// A string where a type belongs.
#[tool(settings = "Settings")]
fn quoted() {}

/// Given twice.
#[tool(settings = Settings, settings = Settings)]
fn twice() {}

/// Not a type at all.
#[tool(settings = 3)]
fn number() {}

fn main() {}
