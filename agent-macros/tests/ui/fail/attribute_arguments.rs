use agent_tool::tool;

#[tool(nmae = "x")]
fn typo() {}

/// Bad name.
#[tool(name = "has spaces")]
fn spaced() {}

#[tool]
fn undocumented() {}

#[tool(description = "")]
fn empty_description() {}

/// Given twice.
#[tool(name = "a", name = "b")]
fn twice() {}

#[tool]
struct NotAFunction;

fn main() {}
