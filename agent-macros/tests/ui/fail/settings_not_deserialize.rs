use agent_tool::tool;

struct Settings {
    #[allow(dead_code)]
    greeting: String,
}

/// The settings type must be `Deserialize`.
#[tool(settings = Settings)]
fn greet(name: String) -> String {
    name
}

fn main() {}
