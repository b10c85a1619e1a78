//! (4) Scale: 1,000, 5,000 and 10,000 concurrent sessions in this process, against the raw peer
//! in a child process (so its sockets and memory are not counted here).
//!
//! Idle RSS per session is measured first, growing the session count level by level with no
//! traffic: (RSS at the level − RSS before any session) / sessions. Each session has its runner
//! task, its WebSocket and a task reading its events, as an application would. Then, from the
//! largest level down (closing sessions in between), every session runs one tool turn a second
//! for a while, and the peer reports the dispatch overhead it saw (`response.done` flushed →
//! `response.create` received), next to the runtime's own measure.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use agent_core::session::{SessionEvent, SessionHandle};
use serde_json::Value;
use tokio::task::JoinSet;

use crate::common;

/// One level's results.
#[derive(Debug, Clone, Default)]
pub struct ScaleLevel {
    /// Concurrent sessions.
    pub sessions: usize,
    /// How long connecting the sessions added at this level took.
    pub connect: Duration,
    /// RSS with all sessions idle, bytes.
    pub rss_idle: u64,
    /// (rss_idle − RSS before any session) / sessions.
    pub rss_per_session: f64,
    /// RSS at the end of the load phase, bytes.
    pub rss_loaded: u64,
    /// Turns the peer measured in the load phase.
    pub turns: u64,
    /// Seconds of load.
    pub load_secs: f64,
    /// Peer-side overhead percentiles, µs: p50, p99, max.
    pub server_us: (f64, f64, f64),
    /// The runtime's own overhead percentiles, µs: p50, p99.
    pub client_us: (f64, f64),
    /// Turns with incomplete outputs at the create (must be 0).
    pub anomalies: u64,
    /// CPU cores this process (the sessions) used during the load phase.
    pub client_cores: f64,
    /// CPU cores the peer process used during the load phase.
    pub peer_cores: f64,
}

struct PeerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl PeerProcess {
    fn spawn() -> anyhow::Result<(PeerProcess, u16)> {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("--serve-peer")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stdin"))?;
        let mut stdout = BufReader::new(
            child
                .stdout
                .take()
                .ok_or_else(|| anyhow::anyhow!("no stdout"))?,
        );
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("the peer said {line:?} instead of its port"))?;
        Ok((
            PeerProcess {
                child,
                stdin,
                stdout,
            },
            port,
        ))
    }

    fn command(&mut self, command: &str) -> anyhow::Result<Value> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        Ok(serde_json::from_str(line.trim())?)
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let _ = self.child.wait();
    }
}

/// Runs the scale benchmark at `levels` (ascending), `load` seconds of traffic each.
pub fn run(levels: &[usize], load: Duration) -> anyhow::Result<Vec<ScaleLevel>> {
    let (mut peer, port) = PeerProcess::spawn()?;
    let url = format!("ws://127.0.0.1:{port}/v1/realtime");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let agent = common::agent(&[("noop", Duration::ZERO)], false)?;
    let overhead: Arc<Mutex<Vec<Duration>>> = Default::default();
    let mut handles: Vec<SessionHandle> = Vec::new();
    let mut results: Vec<ScaleLevel> = Vec::new();
    // Settle the runtime and allocator before the baseline.
    rt.block_on(async { tokio::time::sleep(Duration::from_millis(200)).await });
    let baseline = common::rss_bytes();

    for &level in levels {
        let started = Instant::now();
        let missing = level.saturating_sub(handles.len());
        let new = rt.block_on(connect(&agent, &url, missing, overhead.clone()))?;
        handles.extend(new);
        let connect = started.elapsed();
        rt.block_on(async { tokio::time::sleep(Duration::from_secs(2)).await });
        let rss_idle = common::rss_bytes();
        results.push(ScaleLevel {
            sessions: level,
            connect,
            rss_idle,
            rss_per_session: rss_idle.saturating_sub(baseline) as f64 / level as f64,
            ..ScaleLevel::default()
        });
        eprintln!(
            "  scale: {level} sessions idle, {:.1} KB RSS each",
            results.last().map_or(0.0, |r| r.rss_per_session / 1024.0)
        );
    }

    for result in results.iter_mut().rev() {
        // Close sessions down to this level.
        while handles.len() > result.sessions {
            if let Some(handle) = handles.pop() {
                let _ = rt.block_on(handle.close());
            }
        }
        rt.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });
        if let Ok(mut o) = overhead.lock() {
            o.clear();
        }
        peer.command("reset")?;
        let peer_pid = peer.child.id().to_string();
        let (client_cpu, peer_cpu) = (common::cpu_seconds("self"), common::cpu_seconds(&peer_pid));
        peer.command("go")?;
        let started = Instant::now();
        rt.block_on(async { tokio::time::sleep(load).await });
        let report = peer.command("report")?;
        result.load_secs = started.elapsed().as_secs_f64();
        result.client_cores = (common::cpu_seconds("self") - client_cpu) / result.load_secs;
        result.peer_cores = (common::cpu_seconds(&peer_pid) - peer_cpu) / result.load_secs;
        peer.command("stop")?;
        result.rss_loaded = common::rss_bytes();
        let us = |key: &str| report.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        result.turns = report.get("count").and_then(Value::as_u64).unwrap_or(0);
        result.server_us = (us("p50_us"), us("p99_us"), us("max_us"));
        result.anomalies = report.get("anomalies").and_then(Value::as_u64).unwrap_or(0);
        let client = overhead.lock().map(|o| o.clone()).unwrap_or_default();
        result.client_us = (
            common::pct(&client, 50.0).as_secs_f64() * 1e6,
            common::pct(&client, 99.0).as_secs_f64() * 1e6,
        );
        eprintln!(
            "  scale: {} sessions under load: {} turns, peer p99 {:.0} µs",
            result.sessions, result.turns, result.server_us.1
        );
    }
    for handle in handles.drain(..) {
        let _ = rt.block_on(handle.close());
    }
    drop(rt);
    drop(peer);
    Ok(results)
}

async fn connect(
    agent: &agent_core::agent::Agent,
    url: &str,
    count: usize,
    overhead: Arc<Mutex<Vec<Duration>>>,
) -> anyhow::Result<Vec<SessionHandle>> {
    const PARALLEL: usize = 128;
    let mut handles = Vec::with_capacity(count);
    let mut pending = JoinSet::new();
    let mut started = 0;
    while handles.len() < count {
        while started < count && pending.len() < PARALLEL {
            let agent = agent.clone();
            let url = url.to_owned();
            pending.spawn(async move { common::start(&agent, &url).await });
            started += 1;
        }
        let Some(joined) = pending.join_next().await else {
            break;
        };
        let session = joined??;
        let overhead = overhead.clone();
        let mut events = session.events;
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let SessionEvent::TurnLatency(turn) = event
                    && !turn.overhead.is_empty()
                    && let Ok(mut o) = overhead.lock()
                {
                    o.extend(turn.overhead);
                }
            }
        });
        handles.push(session.handle);
    }
    Ok(handles)
}

/// The child process: serves the peer and obeys `go`, `stop`, `reset`, `report`, `quit` on
/// stdin (one JSON line answers each).
pub fn serve_peer() -> anyhow::Result<()> {
    use crate::peer::{PeerConfig, PeerStats, serve};
    use std::sync::atomic::Ordering;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stats = Arc::new(PeerStats::default());
    let (go_tx, go_rx) = tokio::sync::watch::channel(false);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let port = listener.local_addr()?.port();
    let config = PeerConfig {
        calls: 1,
        interval: Some(Duration::from_secs(1)),
        gap: Duration::from_millis(1),
    };
    rt.spawn(serve(listener, config, stats.clone(), go_rx));
    println!("port {port}");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rt.block_on(async move {
        while let Some(line) = rx.recv().await {
            let answer = match line.trim() {
                "go" => {
                    let _ = go_tx.send(true);
                    serde_json::json!({"ok": true})
                }
                "stop" => {
                    let _ = go_tx.send(false);
                    serde_json::json!({"ok": true})
                }
                "reset" => {
                    if let Ok(mut s) = stats.samples.lock() {
                        s.clear();
                    }
                    stats.anomalies.store(0, Ordering::Relaxed);
                    serde_json::json!({"ok": true})
                }
                "report" => {
                    let samples = stats.samples.lock().map(|s| s.clone()).unwrap_or_default();
                    let us = |p: f64| common::pct(&samples, p).as_secs_f64() * 1e6;
                    serde_json::json!({
                        "count": samples.len(),
                        "p50_us": us(50.0),
                        "p99_us": us(99.0),
                        "max_us": samples.iter().max().map_or(0.0, |d| d.as_secs_f64() * 1e6),
                        "anomalies": stats.anomalies.load(Ordering::Relaxed),
                        "ready": stats.ready.load(Ordering::Relaxed),
                    })
                }
                _ => break,
            };
            println!("{answer}");
        }
    });
    Ok(())
}
