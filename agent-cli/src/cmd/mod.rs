//! One module per subcommand, plus what several of them share.

pub mod check;
pub mod completions;
pub mod history;
pub mod mock;
pub mod mock_mcp;
pub mod new;
pub mod run;
pub mod schema;
pub mod serve;
pub mod test;
pub mod to_scenario;
pub mod tools;
pub mod trace;

use std::path::Path;

use agent_core::agent::{Agent, AgentFile};

/// Loads, checks and resolves an agent file against the built-in and linked tools.
pub fn load_agent(path: &Path) -> anyhow::Result<Agent> {
    let registry = agent_tools::registry()?;
    let agent = AgentFile::load(path)?.resolve(&registry)?;
    Ok(agent)
}

/// The async runtime the commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
