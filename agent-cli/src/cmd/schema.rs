//! `agent schema`: the JSON Schema of agent files, for editor completion.

use std::process::ExitCode;

use agent_core::agent::AgentSpec;

/// Prints the schema.
pub fn run() -> anyhow::Result<ExitCode> {
    let schema = schemars::schema_for!(AgentSpec);
    crate::output::outln!("{}", serde_json::to_string_pretty(&schema)?);
    Ok(ExitCode::SUCCESS)
}
