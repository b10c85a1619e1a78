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
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let registry = agent_tools::registry()?;
    let agent = AgentFile::check_all(&args.file, &registry)?;
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
