//! What every benchmark shares: tools that do (almost) nothing, an agent that uses them,
//! sessions against a loopback URL, and the process's own RSS and CPU time.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use agent_core::{
    agent::{Agent, AgentFile, ConnectOverrides},
    latency::TurnLatency,
    session::{Session, SessionEvent},
    tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry},
};
use anyhow::Context;
use async_trait::async_trait;
use serde_json::{Value, json};

/// A tool that sleeps for a fixed time (zero: returns at once) and answers `ok`.
struct FixedTool {
    name: String,
    sleep: Duration,
    schema: Value,
}

#[async_trait]
impl Tool for FixedTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        "a benchmark tool"
    }

    fn parameters(&self, _strict: bool) -> &Value {
        &self.schema
    }

    async fn call(&self, _args: Value, _ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        if !self.sleep.is_zero() {
            tokio::time::sleep(self.sleep).await;
        }
        Ok(ToolOutput::text("ok"))
    }
}

/// An agent whose tools are `tools` (name, how long each call takes).
pub fn agent(tools: &[(&str, Duration)], audio_out: bool) -> anyhow::Result<Agent> {
    let mut registry = ToolRegistry::new();
    let schema = json!({"type": "object", "properties": {}, "additionalProperties": false});
    for (name, sleep) in tools {
        let tool = FixedTool {
            name: (*name).to_owned(),
            sleep: *sleep,
            schema: schema.clone(),
        };
        registry
            .register(Arc::new(tool), "agent-bench")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let names: Vec<String> = tools.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    let modalities = if audio_out { "audio" } else { "text" };
    let text = format!(
        "name = \"bench\"\ninstructions = \"A benchmark agent.\"\noutput_modalities = [\"{modalities}\"]\n\
         tools = [{}]\n[tool_options]\ntimeout_secs = 10\n",
        names.join(", ")
    );
    AgentFile::parse("bench.toml", text)
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .resolve(&registry)
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Starts a session of `agent` against a loopback `url`.
pub async fn start(agent: &Agent, url: &str) -> anyhow::Result<Session> {
    let overrides = ConnectOverrides {
        url: Some(url.to_owned()),
        key_optional: true,
        ..Default::default()
    };
    let config = agent.session_config(&overrides, None)?;
    Session::start(config)
        .await
        .with_context(|| format!("cannot start a session at {url}"))
}

/// Like [`start`], with the history `agent run` keeps by default: a SQLite store (power-loss
/// durability) in a temporary folder, leased, with every call recorded before it runs. The
/// folder lives as long as the process.
pub async fn start_with_history(agent: &Agent, url: &str) -> anyhow::Result<Session> {
    use agent_core::history::{HistoryStore, HistoryWriter};
    let dir = tempfile::tempdir()?.keep();
    let mut store = HistoryStore::open(dir.join("history.sqlite3"))?;
    let id = store.create_conversation(agent.name(), &agent.spec().model)?;
    store.acquire_lease(&id, "bench", Duration::from_secs(3600))?;
    let writer = HistoryWriter::spawn(store)?;
    let overrides = ConnectOverrides {
        url: Some(url.to_owned()),
        key_optional: true,
        ..Default::default()
    };
    let mut config = agent.session_config(&overrides, None)?;
    config.history_sink = Some(Arc::new(writer.leased_conversation(id, "bench")));
    Session::start(config)
        .await
        .with_context(|| format!("cannot start a session at {url}"))
}

/// Turn latencies the sessions measured themselves, shared by drain tasks.
pub type TurnLog = Arc<Mutex<Vec<TurnLatency>>>;

/// Reads a session's events until it closes, keeping its turn latencies.
pub async fn drain(mut session_events: tokio::sync::mpsc::Receiver<SessionEvent>, log: TurnLog) {
    while let Some(event) = session_events.recv().await {
        if let SessionEvent::TurnLatency(turn) = event
            && let Ok(mut log) = log.lock()
        {
            log.push(turn);
        }
    }
}

/// This process's resident set size, bytes (`VmRSS` of /proc/self/status).
pub fn rss_bytes() -> u64 {
    rss_of("self")
}

/// The resident set size of process `pid` ("self" for this one), bytes.
pub fn rss_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// What the kernel accounted to this process's waited-for children so far: the difference
/// between two readings is what the children in between used.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// User-space CPU seconds.
    pub user: f64,
    /// Kernel CPU seconds (system calls: sockets, pipes, file writes and syncs).
    pub system: f64,
    /// Voluntary context switches: each is a wait that ended in a wake-up (a frame arrived, a
    /// writer thread was woken, a sync returned).
    pub voluntary_switches: f64,
    /// Blocks the file system wrote on the children's behalf (512-byte units).
    pub blocks_written: f64,
}

impl Usage {
    /// User + system.
    pub fn cpu(&self) -> f64 {
        self.user + self.system
    }

    /// What was used between `earlier` and `self`.
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
            voluntary_switches: self.voluntary_switches - earlier.voluntary_switches,
            blocks_written: self.blocks_written - earlier.blocks_written,
        }
    }
}

/// The children's usage so far (`getrusage(RUSAGE_CHILDREN)`).
pub fn children_usage() -> Usage {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(Usage::default(), |u| {
        let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
        Usage {
            user: seconds(u.user_time()),
            system: seconds(u.system_time()),
            voluntary_switches: u.voluntary_context_switches() as f64,
            blocks_written: u.block_writes() as f64,
        }
    })
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for this one).
pub fn cpu_seconds(pid: &str) -> f64 {
    stat_cpu_seconds(pid, 11)
}

/// Two adjacent tick counters of /proc/PID/stat, from `first` (0 = field 3), in seconds.
fn stat_cpu_seconds(pid: &str, first: usize) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime/stime are fields 14/15, cutime/cstime 16/17.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(first) + ticks(first + 1)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// `12.3 µs`, `1.20 ms`, `210.4 ms`.
pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.1} µs")
    } else if us < 1_000_000.0 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{:.2} s", us / 1e6)
    }
}

/// Nearest-rank percentile of unsorted samples.
pub fn pct(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    agent_core::latency::percentile(&sorted, p)
}

/// A two-thread runtime whose threads are named `name`, so their CPU can be read apart
/// (`telephony::threads_cpu`).
pub fn named_runtime(name: &str) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
}

/// Sleeps until `at` (not at all once it is past).
pub fn sleep_until(at: Instant) {
    if let Some(wait) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}
