//! `agent check FILE`: validate an agent file completely and show the `session.update` it sends.

use std::{path::PathBuf, process::ExitCode};

use agent_core::{agent::AgentFile, protocol::ClientEvent};

/// Arguments of `agent check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The agent file (TOML).
    pub file: PathBuf,
}

/// Checks the file and prints the `session.update` it would send.
///
/// Every problem is reported at once, each at its `file:line:col`: after the file parses, its
/// own checks, tool resolution (with "did you mean"), `[tool_config.NAME]` settings and the
/// tools strict mode cannot express (errors here, since the server would reject them) all run.
/// The agent's `[[mcp_clients]]` are connected, so their tools are checked and shown too.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let registry = agent_tools::registry()?;
    let mut agent = AgentFile::check_all(&args.file, &registry)?;
    // MCP servers are started (and stopped) to learn their tools: part of what is sent.
    let runtime = super::runtime()?;
    let mcp = runtime.block_on(agent.connect_mcp())?;
    runtime.block_on(mcp.shutdown());
    // Only the MCP servers' tools can add problems now: the rest were checked above.
    let problems = agent.strict_mode_problems();
    if !problems.is_empty() {
        return Err(agent_core::agent::AgentError::Invalid(problems).into());
    }
    let event = ClientEvent::session_update(agent.session());
    let value = event.to_value(agent.dialect())?;
    crate::output::outln!("{}", serde_json::to_string_pretty(&value)?);
    crate::output::errln!(
        "{}: ok — agent `{}`, {} tool(s), {:?} dialect",
        args.file.display(),
        agent.name(),
        agent.tools.len(),
        agent.dialect()
    );
    Ok(ExitCode::SUCCESS)
}
