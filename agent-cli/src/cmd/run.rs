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

use crate::{console::Console, conversation::Conversation, summary::RunSummary};

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
    /// Show warnings such as skipped malformed frames, and each response's tokens and cost.
    #[arg(long, short)]
    pub verbose: bool,
    /// A price table (TOML, like agent-core/prices.toml) merged over the published prices;
    /// overrides `price_table` under [limits].
    #[arg(long, value_name = "FILE.toml", env = "AGENT_PRICES")]
    pub prices: Option<PathBuf>,
    /// Audio in and out (see `audio_io`).
    #[command(flatten)]
    pub audio: crate::audio_io::AudioArgs,
    /// Conversation history and `--resume` (see `persist`).
    #[command(flatten)]
    pub history: crate::persist::HistoryArgs,
}

/// Runs the agent.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut agent = super::load_agent(&args.file)?;
    if let Some(prices) = &args.prices {
        let path = std::path::absolute(prices)
            .with_context(|| format!("cannot resolve the path {}", prices.display()))?;
        agent.file.spec.limits.price_table = Some(path.display().to_string());
    }
    // Checks the price table now, so a bad file fails before any connection.
    agent.cost_settings()?;
    let observer = match &args.trace {
        Some(path) => Some(Arc::new(
            TraceWriter::create(path, args.trace_audio)
                .with_context(|| format!("cannot create the trace file {}", path.display()))?,
        ) as Arc<dyn WireObserver>),
        None => None,
    };
    let runtime = super::runtime()?;
    if args.audio.wanted() || agent.spec().kind == agent_core::agent::AgentKind::Transcription {
        let target = if args.offline {
            crate::voice::Target::Offline(load_scenarios(&args.file, args.scenario.as_deref())?)
        } else {
            crate::voice::Target::Live(ConnectOverrides {
                key_optional: args.url.as_deref().is_some_and(is_loopback_url),
                url: args.url.clone(),
            })
        };
        return runtime.block_on(crate::voice::run(
            &agent,
            target,
            &args.audio,
            observer,
            args.verbose,
        ));
    }
    if args.offline {
        let scenarios = load_scenarios(&args.file, args.scenario.as_deref())?;
        runtime.block_on(offline(
            &agent,
            &scenarios,
            observer,
            args.verbose,
            &args.history,
        ))
    } else {
        let overrides = ConnectOverrides {
            key_optional: args.url.as_deref().is_some_and(is_loopback_url),
            url: args.url.clone(),
        };
        runtime.block_on(live(
            &agent,
            &overrides,
            observer,
            args.verbose,
            &args.history,
        ))
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
    history: &crate::persist::HistoryArgs,
) -> anyhow::Result<ExitCode> {
    let mut summary = RunSummary::default();
    // A resumed conversation continues the scenario it started, from its next turn.
    let resumed = match &history.resume {
        Some(_) => {
            let persistence = history.open(agent)?;
            let said = persistence
                .as_ref()
                .map(crate::persist::Persistence::resumed_user_texts)
                .unwrap_or_default();
            let (scenario, done) = crate::persist::continue_point(scenarios, &said)?;
            Some((scenario, done, persistence))
        }
        None => None,
    };
    let plan: Vec<(Scenario, usize)> = match &resumed {
        Some((scenario, done, _)) => vec![(scenario.clone(), *done)],
        None => scenarios.iter().map(|s| (s.clone(), 0)).collect(),
    };
    let mut resumed_store = resumed.and_then(|(_, _, p)| p);
    for (scenario, skip) in &plan {
        let server = ScriptedServer::start(ServerConfig::new(scenario.clone()))
            .context("cannot start the scripted server on 127.0.0.1")?;
        let overrides = ConnectOverrides {
            url: Some(server.url()),
            key_optional: true,
        };
        let mut console = Console::new(verbose);
        console.note(&format!("── scenario: {} ──", scenario.name));
        let persistence = match resumed_store.take() {
            Some(p) => Some(p),
            None if history.resume.is_some() => None,
            None => history.open(agent)?,
        };
        let mut config = agent.session_config(&overrides, observer.clone())?;
        if let Some(p) = &persistence {
            p.apply(&mut config);
            if p.resumed_items() > 0 {
                console.note(&format!(
                    "(resuming {}: {} item(s) restored, continuing at turn {})",
                    p.id,
                    p.resumed_items(),
                    skip + 1
                ));
            }
        }
        let mut conversation = Conversation::start_with(config, Some(console)).await?;
        for turn in scenario.turns.iter().skip(*skip) {
            if conversation.stats.budget_exhausted {
                if let Some(console) = &mut conversation.console {
                    console.note("(the budget is spent: the rest of this scenario is skipped)");
                }
                break;
            }
            conversation.turn(turn.user.as_deref()).await?;
        }
        summary.add(&conversation.close().await);
        server.shutdown().await;
        if let Some(p) = persistence {
            let id = p.id.clone();
            p.finish().await?;
            println!("(conversation stored as {id}; continue it with --resume {id})");
        }
        println!();
    }
    print!(
        "{}",
        summary.render(&agent.spec().model, &agent.cost_settings()?)
    );
    Ok(ExitCode::SUCCESS)
}

async fn live(
    agent: &Agent,
    overrides: &ConnectOverrides,
    observer: Option<Arc<dyn WireObserver>>,
    verbose: bool,
    history: &crate::persist::HistoryArgs,
) -> anyhow::Result<ExitCode> {
    let interactive = std::io::stdin().is_terminal();
    let persistence = history.open(agent)?;
    let mut config = agent.session_config(overrides, observer)?;
    if let Some(p) = &persistence {
        p.apply(&mut config);
        if p.resumed_items() > 0 {
            eprintln!("resuming {}: {} item(s) restored", p.id, p.resumed_items());
        }
    }
    let mut conversation = Conversation::start_with(config, Some(Console::new(verbose))).await?;
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
                        failed = !matches!(
                            reason,
                            agent_core::session::CloseReason::Requested
                                | agent_core::session::CloseReason::BudgetExhausted
                        );
                        break;
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
    let mut summary = RunSummary::default();
    summary.add(&conversation.close().await);
    print!(
        "{}",
        summary.render(&agent.spec().model, &agent.cost_settings()?)
    );
    if let Some(p) = persistence {
        let id = p.id.clone();
        p.finish().await?;
        eprintln!("conversation stored as {id}; continue it with --resume {id}");
    }
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
