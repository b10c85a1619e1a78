//! (1) Decode throughput of server events, audio deltas included.
//!
//! The corpus is what agent-testkit actually sends in a spoken conversation with tool calls:
//! `session.*`, `response.*` with 100 ms PCM16 audio deltas (6,400 base64 characters each),
//! transcript deltas, function calls and `response.done` with usage. Each frame is decoded with
//! `ServerEvent::decode` (what the session loop does), and separately with the audio's base64
//! turned into PCM bytes as well (what it does for audio deltas).

use std::{hint::black_box, time::Instant};

use agent_core::protocol::ServerEvent;
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{Direction, ScriptedServer, ServerConfig},
};
use serde_json::json;

use crate::common;

/// Decode results.
#[derive(Debug, Clone)]
pub struct DecodeResult {
    /// Frames in the corpus, and of them audio deltas.
    pub frames: usize,
    /// Audio deltas in the corpus.
    pub audio_frames: usize,
    /// Corpus bytes.
    pub bytes: usize,
    /// Whole corpus: MB/s and events/s (typed decode only).
    pub all: (f64, f64),
    /// Audio deltas alone: MB/s and events/s (typed decode only).
    pub audio: (f64, f64),
    /// Whole corpus with audio turned into PCM: MB/s and events/s.
    pub all_with_pcm: (f64, f64),
    /// Frames that failed to decode (should be 0).
    pub errors: usize,
}

/// Records a spoken conversation with agent-testkit and returns the frames it sent.
pub async fn corpus() -> anyhow::Result<Vec<String>> {
    let tools = [("lookup", std::time::Duration::ZERO)];
    let agent = common::agent(&tools, true)?;
    let mut scenario = Scenario::new("decode corpus");
    for i in 0..6 {
        scenario = scenario.turn(
            Turn::user(format!("question {i}"))
                .model(ModelStep::calls([ScriptedCall::new(
                    "lookup",
                    json!({"order": format!("A{i:04}")}),
                )]))
                .model(
                    ModelStep::say(
                        "Your order has shipped and should arrive by Tuesday; is there anything else I can help with today?",
                    )
                    .audio_ms(3000),
                ),
        );
    }
    let server = ScriptedServer::start(ServerConfig::new(scenario.clone()))?;
    let mut session = common::start(&agent, &server.url()).await?;
    for turn in &scenario.turns {
        let text = turn.user.clone().unwrap_or_default();
        session.handle.send_text(text).await?;
        loop {
            match session.events.recv().await {
                Some(agent_core::session::SessionEvent::Idle) => break,
                Some(_) => {}
                None => anyhow::bail!("the corpus session ended early"),
            }
        }
    }
    let _ = session.handle.close().await;
    let frames: Vec<String> = server
        .log()
        .await
        .into_iter()
        .filter(|f| f.direction == Direction::FromServer)
        .map(|f| f.raw)
        .collect();
    server.shutdown().await;
    Ok(frames)
}

/// Decodes the corpus repeatedly for about `seconds` per measure.
pub fn run(corpus: &[String], seconds: f64) -> DecodeResult {
    let audio: Vec<String> = corpus
        .iter()
        .filter(|f| f.contains("\"response.output_audio.delta\""))
        .cloned()
        .collect();
    let errors = corpus
        .iter()
        .filter(|f| ServerEvent::decode(f).is_err())
        .count();
    DecodeResult {
        frames: corpus.len(),
        audio_frames: audio.len(),
        bytes: corpus.iter().map(String::len).sum(),
        all: measure(corpus, seconds, false),
        audio: measure(&audio, seconds, false),
        all_with_pcm: measure(corpus, seconds, true),
        errors,
    }
}

fn measure(frames: &[String], seconds: f64, pcm: bool) -> (f64, f64) {
    if frames.is_empty() {
        return (0.0, 0.0);
    }
    let bytes: usize = frames.iter().map(String::len).sum();
    // Warm up caches and the allocator.
    for frame in frames {
        black_box(decode(frame, pcm));
    }
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        for frame in frames {
            black_box(decode(frame, pcm));
        }
        rounds += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    let total_bytes = bytes as f64 * rounds as f64;
    let events = frames.len() as f64 * rounds as f64;
    (total_bytes / secs / 1e6, events / secs)
}

fn decode(frame: &str, pcm: bool) -> usize {
    match ServerEvent::decode(frame) {
        Ok(ServerEvent::ResponseOutputAudioDelta(e)) if pcm => {
            agent_core::audio::decode_base64(&e.delta).map_or(0, |bytes| bytes.len())
        }
        Ok(_) => 1,
        Err(_) => 0,
    }
}
