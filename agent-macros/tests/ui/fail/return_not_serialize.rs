use agent_tool::tool;

struct Opaque;

/// Returns something the model cannot read.
#[tool]
fn opaque() -> Opaque {
    Opaque
}

/// Fails with something that cannot be shown.
#[tool]
fn hidden_error() -> Result<String, Opaque> {
    Err(Opaque)
}

fn main() {}
