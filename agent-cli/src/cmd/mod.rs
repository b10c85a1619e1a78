//! One module per subcommand, plus what several of them share.

pub mod call;
pub mod check;
pub mod completions;
pub mod history;
pub mod mock;
pub mod mock_mcp;
pub mod mock_phone;
pub mod new;
pub mod run;
pub mod schema;
pub mod serve;
pub mod test;
pub mod to_scenario;
pub mod tools;
pub mod trace;
pub mod web_console;

use std::path::Path;

use agent_core::agent::{Agent, AgentFile};

/// Loads, checks and resolves an agent file against the built-in and linked tools.
pub fn load_agent(path: &Path) -> anyhow::Result<Agent> {
    let registry = agent_tools::registry()?;
    let agent = AgentFile::load(path)?.resolve(&registry)?;
    Ok(agent)
}

/// The runtime of one conversation (`agent run`): a single thread. The session task, its
/// tools and the console then hand events to each other without waking another thread,
/// which was a third of a turn's CPU; blocking tools still run on the blocking pool.
pub fn session_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// The async runtime the other commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
