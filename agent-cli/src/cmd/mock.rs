//! `agent mock FILE`: serve an agent's scenarios on loopback, for any Realtime client.
//!
//! The same scripted server that backs `--offline`, left running so another program (or
//! `agent run FILE --url ...`) can connect to it. It listens on 127.0.0.1 only.

use std::{path::PathBuf, process::ExitCode};

use agent_testkit::server::{DialectMode, ScriptScope, ScriptedServer, ServerConfig};
use anyhow::Context;

/// Arguments of `agent mock`.
#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// The agent file whose scenarios (NAME.scenarios.toml beside it) are served.
    pub file: PathBuf,
    /// Serve this scenario (default: the first).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Port on 127.0.0.1 (default: a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Speak the beta dialect to every client (by default only to clients that ask for it).
    #[arg(long)]
    pub beta: bool,
}

/// Serves until Ctrl-C.
pub fn run(args: MockArgs) -> anyhow::Result<ExitCode> {
    let scenarios = super::run::load_scenarios(&args.file, args.scenario.as_deref())?;
    let scenario = scenarios[0].clone();
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let config = ServerConfig::new(scenario.clone())
            .port(args.port)
            // Each client gets the conversation from the start.
            .script_scope(ScriptScope::PerConnection)
            .dialect(if args.beta {
                DialectMode::Beta
            } else {
                DialectMode::Auto
            });
        let server = ScriptedServer::start(config)
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
        crate::output::outln!("{}", server.url());
        crate::output::errln!(
            "serving scenario `{}` ({} turn(s)); connect with: agent run {} --url {}\nCtrl-C to stop.",
            scenario.name,
            scenario.turns.len(),
            args.file.display(),
            server.url()
        );
        tokio::signal::ctrl_c().await?;
        for violation in server.violations().await {
            crate::output::errln!("client mistake: {violation}");
        }
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
