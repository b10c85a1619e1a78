//! `agent run FILE`: talk to an agent live, or play its scenarios `--offline`.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use agent_core::{
    agent::{Agent, ConnectOverrides},
    session::{SessionEvent, WireObserver},
    trace::TraceWriter,
};
use agent_testkit::{
    scenario::{Scenario, ScenarioFile},
    server::{ScriptedServer, ServerConfig},
};
use anyhow::{Context, bail};
use tokio::io::AsyncBufReadExt;

use crate::{console::Console, conversation::Conversation};

/// Arguments of `agent run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The agent file (TOML).
    pub file: PathBuf,
    /// Play the agent's scenarios (NAME.scenarios.toml beside the file) against the built-in
    /// scripted server; the tools run for real, no API key needed.
    #[arg(long)]
    pub offline: bool,
    /// With --offline: play only the scenario with this name.
    #[arg(long, requires = "offline")]
    pub scenario: Option<String>,
    /// Connect to this Realtime-compatible WebSocket URL instead of the agent file's.
    #[arg(long, conflicts_with = "offline")]
    pub url: Option<String>,
    /// Write every wire event, both directions, to this JSONL file (secrets redacted).
    #[arg(long, value_name = "FILE.jsonl")]
    pub trace: Option<PathBuf>,
    /// Include audio payloads in the trace.
    #[arg(long, requires = "trace")]
    pub trace_audio: bool,
    /// Show warnings such as skipped malformed frames.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Runs the agent.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let agent = super::load_agent(&args.file)?;
    let observer = match &args.trace {
        Some(path) => Some(Arc::new(
            TraceWriter::create(path, args.trace_audio)
                .with_context(|| format!("cannot create the trace file {}", path.display()))?,
        ) as Arc<dyn WireObserver>),
        None => None,
    };
    let runtime = super::runtime()?;
    if args.offline {
        let scenarios = load_scenarios(&args.file, args.scenario.as_deref())?;
        runtime.block_on(offline(&agent, &scenarios, observer, args.verbose))
    } else {
        let overrides = ConnectOverrides {
            key_optional: args.url.as_deref().is_some_and(is_loopback_url),
            url: args.url.clone(),
        };
        runtime.block_on(live(&agent, &overrides, observer, args.verbose))
    }
}

/// The scenarios beside `agent_file`, optionally only the one named `only`.
pub fn load_scenarios(agent_file: &Path, only: Option<&str>) -> anyhow::Result<Vec<Scenario>> {
    let path = ScenarioFile::beside(agent_file);
    let file = ScenarioFile::load(&path).with_context(|| {
        format!(
            "offline runs play scenarios from {}; create it (see agents/support.scenarios.toml)",
            path.display()
        )
    })?;
    let scenarios: Vec<Scenario> = match only {
        Some(name) => match file.get(name) {
            Some(s) => vec![s.clone()],
            None => bail!(
                "no scenario named `{name}` in {}; it has: {}",
                path.display(),
                file.scenarios
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => file.scenarios,
    };
    if scenarios.is_empty() {
        bail!("{} holds no scenarios", path.display());
    }
    Ok(scenarios)
}

async fn offline(
    agent: &Agent,
    scenarios: &[Scenario],
    observer: Option<Arc<dyn WireObserver>>,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    for scenario in scenarios {
        let server = ScriptedServer::start(ServerConfig::new(scenario.clone()))
            .context("cannot start the scripted server on 127.0.0.1")?;
        let overrides = ConnectOverrides {
            url: Some(server.url()),
            key_optional: true,
        };
        let mut console = Console::new(verbose);
        console.note(&format!("── scenario: {} ──", scenario.name));
        let mut conversation =
            Conversation::start(agent, &overrides, observer.clone(), Some(console)).await?;
        for turn in &scenario.turns {
            conversation.turn(turn.user.as_deref()).await?;
        }
        conversation.close().await;
        server.shutdown().await;
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

async fn live(
    agent: &Agent,
    overrides: &ConnectOverrides,
    observer: Option<Arc<dyn WireObserver>>,
    verbose: bool,
) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let mut conversation =
        Conversation::start(agent, overrides, observer, Some(Console::new(verbose))).await?;
    if interactive {
        eprintln!(
            "connected as `{}`. Type a message and press Enter; Ctrl-C or Ctrl-D to quit.",
            agent.name()
        );
    }
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut busy = false;
    let mut failed = false;
    loop {
        let session = conversation.session_mut();
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    let line = line.trim().to_owned();
                    if line.is_empty() {
                        continue;
                    }
                    busy = true;
                    if session.handle.send_text(line).await.is_err() {
                        break;
                    }
                }
                Ok(None) | Err(_) => {
                    stdin_open = false;
                    if !busy {
                        break;
                    }
                }
            },
            event = session.events.recv() => {
                let Some(event) = event else { break };
                conversation.render(&event);
                match event {
                    SessionEvent::Idle => {
                        busy = false;
                        if !stdin_open {
                            break;
                        }
                    }
                    SessionEvent::Closed { reason } => {
                        failed = !matches!(reason, agent_core::session::CloseReason::Requested);
                        return Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS });
                    }
                    _ => {}
                }
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\nclosing the session…");
                break;
            }
        }
    }
    conversation.close().await;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Whether `url` points at this machine, where servers usually need no key.
fn is_loopback_url(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_urls_need_no_key() {
        assert!(is_loopback_url("ws://127.0.0.1:9000/v1/realtime"));
        assert!(is_loopback_url("ws://localhost:9000"));
        assert!(is_loopback_url("ws://[::1]:9000"));
        assert!(!is_loopback_url("wss://api.openai.com/v1/realtime"));
        assert!(!is_loopback_url("not a url"));
    }
}
