//! `agent check FILE`: validate an agent file completely and show the `session.update` it sends;
//! or, given a `serve.toml` (a file with `[[route]]`s), check it and every agent it routes to.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use agent_core::{agent::AgentFile, protocol::ClientEvent};

/// Arguments of `agent check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The agent file (TOML), or a `serve.toml`.
    pub file: PathBuf,
}

/// Checks the file and prints the `session.update` it would send.
///
/// Every problem is reported at once, each at its `file:line:col`: after the file parses, its
/// own checks, tool resolution (with "did you mean"), `[tool_config.NAME]` settings and the
/// tools strict mode cannot express (errors here, since the server would reject them) all run.
/// The agent's `[[mcp_clients]]` are connected, so their tools are checked and shown too.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(text) = serve_config_text(&args.file) {
        return check_serve(&args.file, &text);
    }
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
    for target in &agent.handoffs {
        crate::output::errln!(
            "  hands off to `{}` ({}) with `{}`",
            target.name,
            target.path.display(),
            target.tool
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The text of `path` when it is a `serve.toml` rather than an agent file: it has
/// `[[route]]`s, which no agent file has. A file that does not parse is left to the agent
/// file's checks, which report where.
fn serve_config_text(path: &Path) -> Option<String> {
    let text =
        agent_core::fs_limits::read_text(path, agent_server::config::MAX_CONFIG_BYTES, "the file")
            .ok()?;
    let is_serve = text
        .parse::<toml::Table>()
        .is_ok_and(|table| table.contains_key("route"));
    is_serve.then_some(text)
}

/// Checks a `serve.toml` as `agent serve` would before it listens (secrets aside), and lists
/// each route with its agent and how calls reach it.
fn check_serve(path: &Path, text: &str) -> anyhow::Result<ExitCode> {
    let config = agent_server::ServeConfig::parse(path, text)?;
    let registry = agent_tools::registry()?;
    let runtime = super::runtime()?;
    let agents = runtime.block_on(agent_server::check_routes(&config, &registry))?;
    for (route, agent) in config.routes.iter().zip(&agents) {
        let mut reached = Vec::new();
        reached.extend(route.numbers.iter().cloned());
        reached.extend(route.sip_users.iter().map(|u| format!("sip:{u}")));
        reached.extend(route.path.iter().map(|p| format!("/twilio/voice/{p}")));
        if route.browser {
            reached.push(format!("browsers (/agents/{})", agent.name()));
        }
        crate::output::outln!(
            "{}: agent `{}`, {} tool(s), reached by {}",
            route.agent_path.display(),
            agent.name(),
            agent.tools.len(),
            reached.join(", ")
        );
    }
    crate::output::errln!(
        "{}: ok — {} route(s) on {}",
        path.display(),
        config.routes.len(),
        config.listen
    );
    Ok(ExitCode::SUCCESS)
}
