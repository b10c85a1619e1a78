//! `agent run FILE`: talk to an agent live, or play its scenarios `--offline`.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
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
    /// Send the API key and `[connection.headers]` to a --url on this machine too. Without it
    /// a loopback test server never receives them.
    #[arg(long, requires = "url")]
    pub send_key: bool,
    /// Write every wire event, both directions, to this JSONL file (secrets redacted).
    #[arg(long, value_name = "FILE.jsonl")]
    pub trace: Option<PathBuf>,
    /// Include audio payloads in the trace.
    #[arg(long, requires = "trace")]
    pub trace_audio: bool,
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

/// How long each of the two steps of closing down may take once the user pressed Ctrl-C (the
/// session's goodbye, then the history's last writes), so that with the runtime's shutdown the
/// process ends within a second.
const INTERRUPTED_CLOSE: Duration = Duration::from_millis(350);
/// How long the history's last writes may take at the end of a normal run.
const FINISH_WAIT: Duration = Duration::from_secs(10);

/// Runs the agent. Exit code 0 means every turn completed; any other code comes with the
/// reason on stderr (130 after Ctrl-C).
pub fn run(args: RunArgs, verbose: bool) -> anyhow::Result<ExitCode> {
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
    // Voice runs keep the multi-thread runtime: the offline voice driver decides between the
    // spoken turn and the script's next typed one by timing, and one thread changes which comes
    // first (a known race, noted for the voice driver).
    let voice =
        args.audio.wanted() || agent.spec().kind == agent_core::agent::AgentKind::Transcription;
    let runtime = if voice {
        super::runtime()?
    } else {
        super::session_runtime()?
    };
    // The agent's MCP servers start with the run and stop with it; their tools join its own.
    let mcp = runtime.block_on(agent.connect_mcp())?;
    let result = runtime.block_on(async {
        if voice {
            let target = if args.offline {
                crate::voice::Target::Offline(load_scenarios(&args.file, args.scenario.as_deref())?)
            } else {
                crate::voice::Target::Live(live_overrides(&args))
            };
            crate::voice::run(
                &agent,
                target,
                &args.audio,
                observer,
                verbose,
                &args.history,
            )
            .await
        } else if args.offline {
            let scenarios = load_scenarios(&args.file, args.scenario.as_deref())?;
            offline(&agent, &scenarios, observer, verbose, &args.history).await
        } else {
            live(
                &agent,
                &live_overrides(&args),
                observer,
                verbose,
                &args.history,
            )
            .await
        }
    });
    runtime.block_on(mcp.shutdown());
    // Nothing the run left behind (a stdin reader, a slow disk) may hold the process.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

fn live_overrides(args: &RunArgs) -> ConnectOverrides {
    ConnectOverrides {
        key_optional: args
            .url
            .as_deref()
            .is_some_and(agent_core::session::transport::is_loopback_url),
        url: args.url.clone(),
        send_key: args.send_key,
    }
}

/// The scenarios beside `agent_file`, optionally only the one named `only`.
pub fn load_scenarios(agent_file: &Path, only: Option<&str>) -> anyhow::Result<Vec<Scenario>> {
    load_scenarios_from(&ScenarioFile::beside(agent_file), only)
}

/// Loads the scenarios of the file at `path`, or only the one called `only`.
pub fn load_scenarios_from(path: &Path, only: Option<&str>) -> anyhow::Result<Vec<Scenario>> {
    let file = ScenarioFile::load(path).with_context(|| {
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
    let plan = crate::persist::offline_plan(scenarios, history, agent)?;
    let mut failed = Vec::new();
    for (scenario, skip, persistence) in plan {
        let persistence = match persistence {
            Some(p) => Some(p),
            None => history.open(agent)?,
        };
        let server = ScriptedServer::start(ServerConfig::new(scenario.clone()))
            .context("cannot start the scripted server on 127.0.0.1")?;
        let overrides = ConnectOverrides {
            url: Some(server.url()),
            key_optional: true,
            ..Default::default()
        };
        let mut console = Console::new(verbose);
        console.note(&format!("── scenario: {} ──", scenario.name));
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
        for (index, turn) in scenario.turns.iter().enumerate().skip(skip) {
            if conversation.stats.budget_exhausted {
                if let Some(console) = &mut conversation.console {
                    console.note("(the budget is spent: the rest of this scenario is skipped)");
                }
                break;
            }
            if let Err(err) = conversation.play(turn).await {
                // A failed turn is in the session's stats already; the scenario goes on.
                if err
                    .downcast_ref::<crate::conversation::TurnFailed>()
                    .is_none()
                {
                    failed.push(format!(
                        "scenario `{}`, turn {}: {err:#}",
                        scenario.name,
                        index + 1
                    ));
                    break;
                }
            }
        }
        let stats = conversation.close(Duration::from_secs(5)).await;
        failed.extend(stats.problems());
        summary.add(&stats);
        server.shutdown().await;
        if let Some(p) = persistence {
            let id = p.id.clone();
            p.finish(FINISH_WAIT).await?;
            crate::output::outln!("(conversation stored as {id}; continue it with --resume {id})");
        }
        crate::output::outln!();
    }
    crate::output::out!(
        "{}",
        summary.render(&agent.spec().model, &agent.cost_settings()?)
    );
    Ok(report_failures(&failed))
}

/// Prints why the run did not fully succeed; exit code 0 only when nothing failed.
pub fn report_failures(failed: &[String]) -> ExitCode {
    if failed.is_empty() {
        return ExitCode::SUCCESS;
    }
    crate::output::errln!(
        "error: {} turn(s) or session(s) did not complete:",
        failed.len()
    );
    for problem in failed {
        crate::output::errln!("  - {problem}");
    }
    ExitCode::FAILURE
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
            crate::output::errln!("resuming {}: {} item(s) restored", p.id, p.resumed_items());
        }
    }
    let mut interrupts = crate::terminal::interrupts();
    let mut conversation = tokio::select! {
        started = Conversation::start_with(config, Some(Console::new(verbose))) => started?,
        _ = interrupts.recv() => {
            crate::output::errln!("\ninterrupted while connecting");
            if let Some(p) = persistence {
                let _ = p.finish(INTERRUPTED_CLOSE).await;
            }
            return Ok(interrupted_exit());
        }
    };
    if interactive {
        crate::output::errln!(
            "connected as `{}`. Type a message and press Enter; Ctrl-C or Ctrl-D to quit.",
            agent.name()
        );
    }
    let lines = crate::terminal::stdin_lines();
    let interrupted = converse(&mut conversation, lines, &mut interrupts).await;
    let close_wait = if interrupted {
        INTERRUPTED_CLOSE
    } else {
        Duration::from_secs(5)
    };
    let stats = conversation.close(close_wait).await;
    let mut failed = stats.problems();
    let mut summary = RunSummary::default();
    summary.add(&stats);
    crate::output::out!(
        "{}",
        summary.render(&agent.spec().model, &agent.cost_settings()?)
    );
    if let Some(p) = persistence {
        let id = p.id.clone();
        let wait = if interrupted {
            INTERRUPTED_CLOSE
        } else {
            FINISH_WAIT
        };
        match p.finish(wait).await {
            Ok(()) => {
                crate::output::errln!("conversation stored as {id}; continue it with --resume {id}")
            }
            Err(err) => failed.push(format!("{err:#}")),
        }
    }
    if interrupted {
        return Ok(interrupted_exit());
    }
    Ok(report_failures(&failed))
}

/// Answers the approval `id` with the user's `line`: `y` or `yes` approves; `n` or `no` denies;
/// any other text denies with that text as the reason the model reads.
fn answer_approval(handle: &agent_core::session::SessionHandle, id: &str, line: &str) {
    let answered = match line.to_ascii_lowercase().as_str() {
        "y" | "yes" => handle.approve(id),
        "n" | "no" => handle.deny(id, None),
        _ => handle.deny(id, Some(line.to_owned())),
    };
    if !answered {
        crate::output::errln!("  (too late: that call no longer waits for an answer)");
    }
}

/// The exit status of a run that Ctrl-C, or a closed stdout, ended.
fn interrupted_exit() -> ExitCode {
    if crate::output::stdout_closed() {
        return ExitCode::from(crate::output::CLOSED_STDOUT_EXIT);
    }
    crate::output::errln!("interrupted: the run was stopped with Ctrl-C");
    ExitCode::from(crate::terminal::INTERRUPTED)
}

/// Sends each line of input as a user turn and renders the session until the input ends and
/// the conversation is quiet, the session closes, or Ctrl-C. Returns whether it was Ctrl-C.
///
/// A line is read only while the conversation is quiet, or while a call waits for approval:
/// then the line is the answer (`y` approves; `n`, or any other text as the reason, denies).
/// Lines typed during a reply wait their turn, as the session would queue them anyway, and a
/// piped script can answer an approval on the line after its message.
async fn converse(
    conversation: &mut Conversation,
    mut lines: tokio::sync::mpsc::Receiver<String>,
    interrupts: &mut tokio::sync::mpsc::Receiver<()>,
) -> bool {
    let mut stdin_open = true;
    let mut busy = false;
    // Calls waiting for the user's approval, oldest first: the next line answers the first.
    let mut approvals: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    // An `Idle` already on its way when a line is sent belongs to the turn before: only one
    // that follows a sign of the new turn counts.
    let mut awaiting_turn = false;
    loop {
        let session = conversation.session_mut();
        tokio::select! {
            line = lines.recv(), if stdin_open && (!busy || !approvals.is_empty()) => match line {
                Some(line) => {
                    let line = line.trim().to_owned();
                    if line.is_empty() {
                        continue;
                    }
                    if let Some(id) = approvals.pop_front() {
                        answer_approval(&session.handle, &id, &line);
                        continue;
                    }
                    busy = true;
                    awaiting_turn = true;
                    if session.handle.send_text(line).await.is_err() {
                        return false;
                    }
                }
                None => {
                    stdin_open = false;
                    if !busy {
                        return false;
                    }
                }
            },
            event = session.events.recv() => {
                let Some(event) = event else { return false };
                conversation.render(&event);
                match event {
                    SessionEvent::ResponseStarted { .. } | SessionEvent::TurnFailed { .. } => {
                        awaiting_turn = false;
                    }
                    SessionEvent::Idle if !awaiting_turn => {
                        busy = false;
                        if !stdin_open {
                            return false;
                        }
                    }
                    SessionEvent::ApprovalRequested { id, .. } => approvals.push_back(id),
                    // Answered, timed out or cancelled: no line answers it any more.
                    SessionEvent::ApprovalDecided { id, .. } => approvals.retain(|a| *a != id),
                    SessionEvent::Closed { .. } => return false,
                    _ => {}
                }
            },
            _ = interrupts.recv() => {
                crate::output::errln!("\nclosing the session…");
                return true;
            }
        }
    }
}
