//! The library client of §5 (and of the memory measure, §6): a `Session` of the turns agent
//! file with the same built-in tools `agent` links, driven turn by turn from code, with no
//! console and no history. It runs as a child process of the bench so its CPU is counted on
//! its own, like every other client's.

use std::path::Path;

use agent_core::{
    agent::{Agent, AgentFile},
    session::{Session, SessionEvent},
};
use serde_json::json;

use crate::{common, turns::Turns};

/// The turns agent, resolved with the built-in tools (`calculate`).
pub fn agent(turns: &Turns) -> anyhow::Result<Agent> {
    let registry = agent_tools::registry()?;
    Ok(AgentFile::load(&turns.agent_file)?.resolve(&registry)?)
}

/// What one client saw over its turns.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen {
    /// Responses done.
    pub responses: u64,
    /// Audio deltas received.
    pub audio_chunks: u64,
    /// Tool calls finished.
    pub tool_calls: u64,
    /// Error events.
    pub errors: u64,
}

/// Types the turn's message and reads events until the session is idle again.
pub async fn play_turn(session: &mut Session, text: &str, seen: &mut Seen) -> anyhow::Result<()> {
    session.handle.send_text(text.to_owned()).await?;
    loop {
        match session.events.recv().await {
            Some(SessionEvent::ResponseDone { .. }) => seen.responses += 1,
            Some(SessionEvent::Audio { .. }) => seen.audio_chunks += 1,
            Some(SessionEvent::ToolCallFinished { .. }) => seen.tool_calls += 1,
            Some(SessionEvent::Error { .. }) => seen.errors += 1,
            Some(SessionEvent::Idle) => return Ok(()),
            Some(SessionEvent::Closed { reason }) => {
                anyhow::bail!("the session closed: {reason:?}")
            }
            Some(_) => {}
            None => anyhow::bail!("the session ended"),
        }
    }
}

/// The child process: `turns` turns against `url`, then one JSON line with what it saw.
pub fn main(workspace: &Path, url: &str, turns: usize) -> anyhow::Result<()> {
    let scenario = Turns::load(workspace)?;
    let agent = agent(&scenario)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut session = common::start(&agent, url).await?;
        let mut seen = Seen::default();
        let started = std::time::Instant::now();
        for _ in 0..turns {
            play_turn(&mut session, &scenario.user_text, &mut seen).await?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let _ = session.handle.close().await;
        println!(
            "{}",
            json!({
                "turns": turns,
                "responses": seen.responses,
                "audio_chunks": seen.audio_chunks,
                "tool_calls": seen.tool_calls,
                "errors": seen.errors,
                "seconds": seconds,
            })
        );
        anyhow::Ok(())
    })
}
