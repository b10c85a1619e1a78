//! (8) Instruction-count profile: the CLI under valgrind's callgrind, which counts
//! instructions and so repeats on a noisy machine, for N turns of the turns scenario and for
//! 1 turn; per turn = (N-turn run − 1-turn run) / (N − 1), so start-up drops out. The binary is
//! the `profiling` build (the shipped `dist` code with line tables and symbols kept). Run with the
//! defaults (history on), and again with `--trace`. Callgrind sees user-space instructions
//! only: time in the kernel (syscalls, loopback TCP, fsync) is not in these counts, and it
//! runs the program's threads one at a time. Instructions are sorted into buckets by function
//! path (see [`crate::callgrind_parse`]). Without valgrind the section says so.

use std::{path::Path, process::Command};

use agent_testkit::server::{ScriptScope, ScriptedServer, ServerConfig};

use crate::{
    binaries::{self, Profile},
    callgrind_parse::{self, Buckets},
    child::{self, Paced},
    turns::Turns,
};

/// The valgrind the bench uses.
const VALGRIND: &str = "valgrind";

/// Both profiles.
#[derive(Debug, Clone)]
pub struct CallgrindResult {
    /// Turns of the long runs.
    pub turns: usize,
    /// Defaults: the N-turn run and the 1-turn run.
    pub defaults: (Buckets, Buckets),
    /// With `--trace`: the N-turn run and the 1-turn run.
    pub trace: (Buckets, Buckets),
    /// `valgrind --version`.
    pub valgrind: String,
}

impl CallgrindResult {
    /// Per turn, start-up excluded, for one pair of runs: (total, self per bucket, inclusive
    /// per bucket).
    pub fn per_turn(&self, pair: &(Buckets, Buckets)) -> (f64, Vec<f64>, Vec<f64>) {
        let n = self.turns.saturating_sub(1).max(1) as f64;
        let diff = |a: &[u64], b: &[u64]| -> Vec<f64> {
            a.iter()
                .zip(b)
                .map(|(x, y)| (*x as f64 - *y as f64) / n)
                .collect()
        };
        (
            (pair.0.total as f64 - pair.1.total as f64) / n,
            diff(&pair.0.self_cost, &pair.1.self_cost),
            diff(&pair.0.inclusive, &pair.1.inclusive),
        )
    }
}

impl CallgrindResult {
    /// The `n` functions of the "other" bucket with the most self instructions per turn
    /// (defaults), so the remainder is not a black box.
    pub fn top_others(&self, n: usize) -> Vec<(String, f64)> {
        let (long, short) = &self.defaults;
        let turns = self.turns.saturating_sub(1).max(1) as f64;
        let mut top: Vec<(String, f64)> = long
            .others
            .iter()
            .map(|(name, cost)| {
                let start = short.others.get(name).copied().unwrap_or(0);
                (name.clone(), (*cost as f64 - start as f64) / turns)
            })
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        top.truncate(n);
        top
    }
}

/// `valgrind --version`, or why it cannot run.
pub fn valgrind_version() -> Result<String, String> {
    Command::new(VALGRIND)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .ok_or_else(|| "valgrind is not installed (apt-get install valgrind)".to_owned())
}

/// Profiles the CLI; `Err` says why the section did not run.
pub fn run(workspace: &Path, turns: usize) -> Result<CallgrindResult, String> {
    let valgrind = valgrind_version()?;
    let agent = binaries::agent(Profile::Profiling).map_err(|e| format!("{e:#}"))?;
    let scenario = Turns::load(workspace).map_err(|e| format!("{e:#}"))?;
    let profile = |trace: bool, n: usize| {
        profile_once(&agent, &scenario, trace, n).map_err(|e| format!("{e:#}"))
    };
    eprintln!("  callgrind: defaults, 1 turn and {turns} turns");
    let defaults = (profile(false, turns)?, profile(false, 1)?);
    eprintln!("  callgrind: --trace, 1 turn and {turns} turns");
    let trace = (profile(true, turns)?, profile(true, 1)?);
    Ok(CallgrindResult {
        turns,
        defaults,
        trace,
        valgrind,
    })
}

/// One run of `agent run` under callgrind against a fresh scripted server.
fn profile_once(
    agent: &Path,
    scenario: &Turns,
    trace: bool,
    turns: usize,
) -> anyhow::Result<Buckets> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let config = ServerConfig::new(scenario.repeated(turns))
        .script_scope(ScriptScope::PerConnection)
        .record_frames(false);
    let server = rt.block_on(async { ScriptedServer::start(config) })?;
    let scratch = tempfile::tempdir()?;
    let out = scratch.path().join("callgrind.out");
    let mut cmd = Command::new(VALGRIND);
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(agent)
        .arg("run")
        .arg(&scenario.agent_file)
        .args(["--url", &server.url()])
        .env("XDG_DATA_HOME", scratch.path())
        .env_remove("AGENT_HISTORY_DB")
        .env_remove("RUST_LOG");
    if trace {
        cmd.arg("--trace").arg(scratch.path().join("trace.jsonl"));
    }
    let paced = Paced {
        line: scenario.user_text.clone(),
        turns,
        reply_marker: "assistant › ".to_owned(),
    };
    child::run(cmd, Some(paced))?;
    let violations = rt.block_on(server.violations());
    anyhow::ensure!(
        violations.is_empty(),
        "the profiled run broke the protocol: {}",
        violations.join("; ")
    );
    rt.block_on(server.shutdown());
    let text = std::fs::read_to_string(&out)?;
    callgrind_parse::parse(&text)
}
