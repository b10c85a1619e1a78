//! `agent test FILE`: run every scenario against the scripted server and check expectations.

use std::{path::PathBuf, process::ExitCode};

use agent_core::agent::ConnectOverrides;
use agent_testkit::server::{ScriptedServer, ServerConfig};
use anyhow::Context;

use crate::{console::Console, conversation::Conversation};

/// Arguments of `agent test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The agent file (TOML); its scenarios are NAME.scenarios.toml beside it.
    pub file: PathBuf,
    /// Run only the scenario with this name.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Read the scenarios from this file instead (e.g. one `agent trace to-scenario` wrote).
    #[arg(long, value_name = "FILE")]
    pub scenarios: Option<PathBuf>,
}

/// Runs the scenarios; exit code 1 when any expectation fails. `verbose` shows the
/// conversations, not only the results.
pub fn run(args: TestArgs, verbose: bool) -> anyhow::Result<ExitCode> {
    let mut agent = super::load_agent(&args.file)?;
    let scenarios = match &args.scenarios {
        Some(path) => super::run::load_scenarios_from(path, args.scenario.as_deref())?,
        None => super::run::load_scenarios(&args.file, args.scenario.as_deref())?,
    };
    let runtime = super::runtime()?;
    // The agent's MCP servers serve every scenario of the run; they stop with it.
    let mcp = runtime.block_on(agent.connect_mcp())?;
    let outcome = runtime.block_on(async {
        let mut passed = 0usize;
        let mut failed = 0usize;
        for scenario in &scenarios {
            crate::output::outln!("scenario `{}`", scenario.name);
            let server = ScriptedServer::start(ServerConfig::new(scenario.clone()))
                .context("cannot start the scripted server on 127.0.0.1")?;
            let overrides = ConnectOverrides {
                url: Some(server.url()),
                key_optional: true,
                ..Default::default()
            };
            if scenario.transcription {
                // Spoken with synthetic speech; each turn's transcript must be its `user` text.
                let (p, f) =
                    crate::voice::check_transcription(&agent, &overrides, scenario, verbose).await;
                passed += p;
                failed += f;
                for violation in server.violations().await {
                    failed += 1;
                    crate::output::outln!("  ✗ protocol: {violation}");
                }
                server.shutdown().await;
                continue;
            }
            let console = verbose.then(|| Console::new(true));
            let mut conversation = Conversation::start(&agent, &overrides, None, console).await?;
            for (index, turn) in scenario.turns.iter().enumerate() {
                let observed = match conversation.play(turn).await {
                    Ok(observed) => observed,
                    Err(err) => {
                        crate::output::outln!("  ✗ turn {}: {err:#}", index + 1);
                        failed += turn.expect.len().max(1);
                        break;
                    }
                };
                for expectation in &turn.expect {
                    match expectation.check(&observed) {
                        Ok(()) => {
                            passed += 1;
                            crate::output::outln!(
                                "  ✓ turn {}: {}",
                                index + 1,
                                expectation.description()
                            );
                        }
                        Err(why) => {
                            failed += 1;
                            crate::output::outln!(
                                "  ✗ turn {}: {}\n      {why}",
                                index + 1,
                                expectation.description()
                            );
                        }
                    }
                }
            }
            conversation.close(std::time::Duration::from_secs(5)).await;
            let violations = server.violations().await;
            for violation in &violations {
                failed += 1;
                crate::output::outln!("  ✗ protocol: {violation}");
            }
            server.shutdown().await;
        }
        anyhow::Ok((passed, failed))
    });
    runtime.block_on(mcp.shutdown());
    let (passed, failed) = outcome?;
    crate::output::outln!("\n{passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
