//! (6) Session memory per turn: how much the heap of a process running one library session
//! grows with each turn of the turns scenario, with and without history.
//!
//! The measuring process is `agent-bench-memory` (`src/bin/memory_probe.rs`), this package's
//! second binary: its global allocator counts live heap bytes (allocated − freed, through
//! Rust's allocator, with `stats_alloc`). It is a separate binary so that no other section pays
//! for the counting. It runs the library client (`Session`, the turns agent, the built-in
//! tools) against a scripted server in the bench process, so the server's memory is not
//! counted. It reads the live bytes at checkpoints (e.g. after 500, 2,000 and 4,000 turns),
//! each once the session is idle and its history writer has caught up; growth per turn = the
//! difference between the last two / the turns between them. Buffers that have reached their
//! size by then do not count, so what remains is what the session keeps per turn. SQLite's page
//! cache is allocated by SQLite's own allocator (C `malloc`) and bounded by its cache size: it is
//! not in the count, but the process's RSS is reported beside it.

use std::{path::Path, process::Command};

use agent_testkit::server::{ScriptScope, ScriptedServer, ServerConfig};
use serde_json::Value;

use crate::{binaries, child, turns::Turns};

/// A checkpoint: turns played, live heap bytes, RSS bytes.
pub type Checkpoint = (usize, i64, u64);

/// One configuration's growth.
#[derive(Debug, Clone)]
pub struct Growth {
    /// History on (a SQLite store, as `agent run` keeps by default).
    pub history: bool,
    /// Checkpoints: (turns played, live heap bytes, RSS bytes).
    pub checkpoints: Vec<Checkpoint>,
}

impl Growth {
    /// The last two checkpoints (the first one is a warm-up).
    fn span(&self) -> Option<(&Checkpoint, &Checkpoint)> {
        let n = self.checkpoints.len();
        Some((
            self.checkpoints.get(n.checked_sub(2)?)?,
            self.checkpoints.get(n - 1)?,
        ))
    }

    /// Live heap bytes per turn between the last two checkpoints.
    pub fn per_turn(&self) -> f64 {
        match self.span() {
            Some((a, b)) if b.0 > a.0 => (b.1 - a.1) as f64 / (b.0 - a.0) as f64,
            _ => 0.0,
        }
    }

    /// RSS bytes per turn between the last two checkpoints.
    pub fn rss_per_turn(&self) -> f64 {
        match self.span() {
            Some((a, b)) if b.0 > a.0 => (b.2 as f64 - a.2 as f64) / (b.0 - a.0) as f64,
            _ => 0.0,
        }
    }
}

/// Measures both configurations; `checkpoints` are turn counts, ascending.
pub fn run(workspace: &Path, checkpoints: &[usize]) -> anyhow::Result<Vec<Growth>> {
    let turns = Turns::load(workspace)?;
    let last = checkpoints.iter().copied().max().unwrap_or(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let config = ServerConfig::new(turns.repeated(last))
        .script_scope(ScriptScope::PerConnection)
        .record_frames(false);
    let server = rt.block_on(async { ScriptedServer::start(config) })?;
    let list: Vec<String> = checkpoints.iter().map(usize::to_string).collect();
    let mut results = Vec::new();
    for history in [true, false] {
        let mut cmd = Command::new(binaries::memory_probe()?);
        cmd.arg(workspace)
            .arg(server.url())
            .arg(list.join(","))
            .arg(if history { "history" } else { "no-history" });
        let run = child::run(cmd, None)?;
        let checkpoints = run
            .report
            .get("checkpoints")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(parse_checkpoint).collect())
            .unwrap_or_default();
        results.push(Growth {
            history,
            checkpoints,
        });
    }
    rt.block_on(server.shutdown());
    Ok(results)
}

fn parse_checkpoint(v: &Value) -> Option<Checkpoint> {
    Some((
        v.get("turns")?.as_u64()? as usize,
        v.get("live")?.as_i64()?,
        v.get("rss")?.as_u64()?,
    ))
}
