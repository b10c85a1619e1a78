//! (3) Concurrency: one response asks for 8 tools that take 200 ms each; the turn should take
//! about 200 ms, not 1.6 s. Played by agent-testkit: the user's text goes out, the first
//! response carries the 8 calls, the outputs go back with one `response.create`, and the answer
//! follows. The turn's time is the user's text sent → the session idle again.

use std::time::{Duration, Instant};

use agent_core::session::SessionEvent;
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ScriptedServer, ServerConfig},
};
use serde_json::json;

use crate::common;

/// The tool's own time.
pub const TOOL_TIME: Duration = Duration::from_millis(200);

/// Concurrency results.
#[derive(Debug, Clone)]
pub struct ConcurrencyResult {
    /// Whole turns: text sent → idle.
    pub turns: Vec<Duration>,
    /// The slowest tool round trip of each turn (the runtime's measure).
    pub slowest_tool: Vec<Duration>,
    /// Protocol mistakes the server saw (must be none).
    pub violations: usize,
}

/// Plays `turns` turns of 8 × 200 ms tools.
pub async fn run(turns: usize) -> anyhow::Result<ConcurrencyResult> {
    let names: Vec<String> = (1..=8).map(|i| format!("slow_{i}")).collect();
    let tools: Vec<(&str, Duration)> = names.iter().map(|n| (n.as_str(), TOOL_TIME)).collect();
    let agent = common::agent(&tools, false)?;
    let mut scenario = Scenario::new("8 x 200 ms");
    for i in 0..turns {
        scenario = scenario.turn(
            Turn::user(format!("run all eight, round {i}"))
                .model(ModelStep::calls(
                    names
                        .iter()
                        .map(|n| ScriptedCall::new(n.clone(), json!({}))),
                ))
                .model(ModelStep::say("All eight are done.")),
        );
    }
    let server = ScriptedServer::start(ServerConfig::new(scenario.clone()))?;
    let mut session = common::start(&agent, &server.url()).await?;
    let mut result = ConcurrencyResult {
        turns: Vec::new(),
        slowest_tool: Vec::new(),
        violations: 0,
    };
    for turn in &scenario.turns {
        let started = Instant::now();
        session
            .handle
            .send_text(turn.user.clone().unwrap_or_default())
            .await?;
        loop {
            match session.events.recv().await {
                Some(SessionEvent::TurnLatency(latency)) => {
                    if let Some(max) = latency.tools.iter().map(|t| t.round_trip).max() {
                        result.slowest_tool.push(max);
                    }
                }
                Some(SessionEvent::Idle) => break,
                Some(SessionEvent::Closed { reason }) => {
                    anyhow::bail!("the session closed: {reason:?}")
                }
                Some(_) => {}
                None => anyhow::bail!("the session ended"),
            }
        }
        result.turns.push(started.elapsed());
    }
    let _ = session.handle.close().await;
    result.violations = server.violations().await.len();
    server.shutdown().await;
    Ok(result)
}
