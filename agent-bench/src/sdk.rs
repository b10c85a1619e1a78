//! (5) Side by side with the reference Python SDK (`openai-agents`).
//!
//! One agent-testkit server plays the same scripted conversation to both clients, one after the
//! other: 100 turns, each a typed message, a response with three function calls, the outputs and
//! one `response.create`, then a spoken answer (audio deltas). Each client runs in its own
//! process; its CPU time (user + system, from the kernel's accounting of waited-for children)
//! and wall time are measured, and its own report (responses, audio chunks, tool calls) checks
//! that both did the same work. The SDK is installed into a throwaway venv under `target/`.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use agent_core::session::SessionEvent;
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ScriptScope, ScriptedServer, ServerConfig},
};
use serde_json::{Value, json};

use crate::common;

/// The SDK version the bench installs (pinned so runs compare).
pub const SDK_VERSION: &str = "0.24.0";

/// The three tools each turn calls.
const TOOLS: [&str; 3] = ["tool_a", "tool_b", "tool_c"];

/// One client's run.
#[derive(Debug, Clone)]
pub struct Side {
    /// Wall time of the whole process, seconds.
    pub wall: f64,
    /// CPU seconds, user + system.
    pub cpu: f64,
    /// What the client reported (JSON).
    pub report: Value,
    /// Protocol mistakes the server recorded for this client's connection.
    pub violations: Vec<String>,
}

/// Both runs.
#[derive(Debug, Clone)]
pub struct SdkResult {
    /// Turns played.
    pub turns: usize,
    /// This framework.
    pub rust: Side,
    /// The Python SDK, or why it did not run.
    pub python: Result<Side, String>,
}

/// The scripted conversation both clients play.
pub fn scenario(turns: usize) -> Scenario {
    let mut scenario = Scenario::new("side by side");
    for i in 0..turns {
        scenario = scenario.turn(
            Turn::user(format!("turn {i}"))
                .model(ModelStep::calls(
                    TOOLS.iter().map(|t| ScriptedCall::new(*t, json!({}))),
                ))
                .model(
                    ModelStep::say("All three lookups are done; here is your answer.")
                        .audio_ms(2000),
                ),
        );
    }
    scenario
}

/// Runs both clients against one server.
pub fn run(turns: usize, workspace: &Path, skip_python: bool) -> anyhow::Result<SdkResult> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let config = ServerConfig::new(scenario(turns))
        .script_scope(ScriptScope::PerConnection)
        .record_frames(false);
    let server = rt.block_on(async { ScriptedServer::start(config) })?;
    let url = server.url();

    let exe = std::env::current_exe()?;
    let mut rust_cmd = Command::new(exe);
    rust_cmd
        .arg("--sdk-rust-client")
        .arg(&url)
        .arg(turns.to_string());
    let mut rust = measure(rust_cmd)?;
    let python = if skip_python {
        Err("skipped (--skip-python)".to_owned())
    } else {
        match venv_python(workspace) {
            Ok(python) => {
                let mut cmd = Command::new(python);
                cmd.arg(workspace.join("agent-bench/python/sdk_client.py"))
                    .arg(&url)
                    .arg(turns.to_string());
                measure(cmd).map_err(|e| format!("the SDK client failed: {e:#}"))
            }
            Err(e) => Err(format!("{e:#}")),
        }
    };
    let violations = rt.block_on(server.violations());
    let of = |connection: usize| -> Vec<String> {
        let prefix = format!("connection {connection}:");
        violations
            .iter()
            .filter(|v| v.starts_with(&prefix))
            .cloned()
            .collect()
    };
    rust.violations = of(0);
    let python = python.map(|mut side| {
        side.violations = of(1);
        side
    });
    rt.block_on(server.shutdown());
    Ok(SdkResult {
        turns,
        rust,
        python,
    })
}

fn measure(mut command: Command) -> anyhow::Result<Side> {
    let cpu_before = common::children_cpu_seconds();
    let started = Instant::now();
    let output = command.output()?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = common::children_cpu_seconds() - cpu_before;
    if !output.status.success() {
        anyhow::bail!(
            "exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .unwrap_or(Value::Null);
    Ok(Side {
        wall,
        cpu,
        report,
        violations: Vec::new(),
    })
}

/// The venv's python with `openai-agents` installed, creating the venv if needed.
fn venv_python(workspace: &Path) -> anyhow::Result<PathBuf> {
    let venv = workspace.join("target/bench-venv");
    let python = venv.join("bin/python");
    let installed = || {
        Command::new(&python)
            .args([
                "-c",
                "import importlib.metadata as m, agents.realtime; print(m.version('openai-agents'))",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if installed().as_deref() == Some(SDK_VERSION) {
        return Ok(python);
    }
    eprintln!(
        "  sdk: installing openai-agents=={SDK_VERSION} into {}",
        venv.display()
    );
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run python3 -m venv: {e}; install Python 3.9+"))?;
    anyhow::ensure!(
        status.success(),
        "python3 -m venv {} failed",
        venv.display()
    );
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("openai-agents=={SDK_VERSION}"))
        .status()?;
    anyhow::ensure!(
        status.success(),
        "pip install openai-agents=={SDK_VERSION} failed (is PyPI reachable?)"
    );
    installed()
        .filter(|v| v == SDK_VERSION)
        .map(|_| python.clone())
        .ok_or_else(|| anyhow::anyhow!("openai-agents does not import after installing it"))
}

/// The child process: this framework's side of the conversation.
pub fn rust_client(url: &str, turns: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let tools: Vec<(&str, Duration)> = TOOLS.iter().map(|t| (*t, Duration::ZERO)).collect();
        let agent = common::agent(&tools, true)?;
        let mut session = common::start(&agent, url).await?;
        let (mut responses, mut audio_chunks, mut tool_calls, mut errors) =
            (0u64, 0u64, 0u64, 0u64);
        let started = Instant::now();
        for turn in 0..turns {
            session.handle.send_text(format!("turn {turn}")).await?;
            loop {
                match session.events.recv().await {
                    Some(SessionEvent::ResponseDone { .. }) => responses += 1,
                    Some(SessionEvent::Audio { .. }) => audio_chunks += 1,
                    Some(SessionEvent::ToolCallFinished { .. }) => tool_calls += 1,
                    Some(SessionEvent::Error { .. }) => errors += 1,
                    Some(SessionEvent::Idle) => break,
                    Some(SessionEvent::Closed { reason }) => {
                        anyhow::bail!("the session closed: {reason:?}")
                    }
                    Some(_) => {}
                    None => anyhow::bail!("the session ended"),
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        let _ = session.handle.close().await;
        println!(
            "{}",
            json!({
                "turns": turns,
                "responses": responses,
                "audio_chunks": audio_chunks,
                "tool_calls": tool_calls,
                "errors": errors,
                "seconds": seconds,
            })
        );
        anyhow::Ok(())
    })
}
