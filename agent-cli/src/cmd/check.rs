//! `agent check FILE`: validate an agent file completely and show the `session.update` it sends.

use std::{path::PathBuf, process::ExitCode};

use agent_core::{agent::AgentError, protocol::ClientEvent};

/// Arguments of `agent check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The agent file (TOML).
    pub file: PathBuf,
}

/// Checks the file and prints the `session.update` it would send.
///
/// Beyond loading (which already checks keys, tools and `[tool_config.NAME]` settings), this
/// reports tools whose schema strict mode cannot express when `tool_options.strict` is on: the
/// server would reject them, so they are errors here. The agent's `[[mcp_clients]]` are
/// connected, so their tools are checked and shown too.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut agent = super::load_agent(&args.file)?;
    // MCP servers are started (and stopped) to learn their tools: part of what is sent.
    let runtime = super::runtime()?;
    let mcp = runtime.block_on(agent.connect_mcp())?;
    runtime.block_on(mcp.shutdown());
    let problems = agent.strict_mode_problems();
    if !problems.is_empty() {
        return Err(AgentError::Invalid(problems).into());
    }
    let event = ClientEvent::session_update(agent.session());
    let value = event.to_value(agent.dialect())?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    eprintln!(
        "{}: ok — agent `{}`, {} tool(s), {:?} dialect",
        args.file.display(),
        agent.name(),
        agent.tools.len(),
        agent.dialect()
    );
    Ok(ExitCode::SUCCESS)
}
