//! Watches PostgreSQL while the takeover benchmark runs: how many connections each node
//! holds (`pg_stat_activity`, by the `application_name` each node's URL sets), the longest
//! statement and the longest pause inside a transaction seen on them (what a stalled history
//! writer was waiting for), and the CPU of the server processes that serve them
//! (/proc/PID/stat), sampled every [`EVERY`].

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use crate::pg::Pg;

/// How often the monitor samples.
const EVERY: Duration = Duration::from_millis(250);

/// What the samples showed.
#[derive(Debug, Clone, Default)]
pub struct PgSamples {
    /// The most connections seen at once, per node (`bench-node-a`, ...).
    pub connections: BTreeMap<String, usize>,
    /// CPU seconds the nodes' server processes used while watched.
    pub backend_cpu: f64,
    /// The longest-running statement seen: seconds, node, what it waited on, its start.
    pub longest_statement: Option<Stuck>,
    /// The longest a node's transaction sat idle between two statements (the node, not the
    /// server, was slow): seconds, node, its last statement.
    pub longest_idle_in_transaction: Option<Stuck>,
    /// Samples that failed (the first error).
    pub error: Option<String>,
}

/// One statement or transaction caught taking long.
#[derive(Debug, Clone, Default)]
pub struct Stuck {
    /// How long, seconds, when sampled.
    pub secs: f64,
    /// `bench-node-a`, ...
    pub node: String,
    /// `wait_event_type:wait_event`, or empty when it was running.
    pub waiting_on: String,
    /// The first characters of the statement.
    pub query: String,
}

/// The sampling thread; [`Monitor::finish`] stops it.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<PgSamples>,
}

impl Monitor {
    /// Starts sampling the server at `url`.
    pub fn start(url: &str) -> anyhow::Result<Monitor> {
        let pg = Pg::connect(&format!("{url}&application_name=agent-bench-monitor"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name("tko-monitor".into())
            .spawn(move || sample(&pg, &stopped))?;
        Ok(Monitor { stop, thread })
    }

    /// Stops sampling; what it saw.
    pub fn finish(self) -> PgSamples {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap_or_default()
    }
}

fn sample(pg: &Pg, stop: &AtomicBool) -> PgSamples {
    let mut samples = PgSamples::default();
    // Per server process: its first and its latest CPU reading.
    let mut cpu: HashMap<String, (f64, f64)> = HashMap::new();
    while !stop.load(Ordering::SeqCst) {
        let rows = pg.rows(
            "SELECT application_name, pid, state, \
             coalesce(wait_event_type || ':' || wait_event, ''), \
             extract(epoch FROM now() - query_start), \
             extract(epoch FROM now() - state_change), left(query, 70) \
             FROM pg_stat_activity WHERE application_name LIKE 'bench-node-%'",
        );
        match rows {
            Ok(rows) => {
                let mut now: BTreeMap<String, usize> = BTreeMap::new();
                for row in &rows {
                    let (Some(name), Some(pid)) = (row.first(), row.get(1)) else {
                        continue;
                    };
                    *now.entry(name.clone()).or_default() += 1;
                    note_stuck(&mut samples, row);
                    let seconds = crate::common::cpu_seconds(pid);
                    if seconds > 0.0 {
                        let entry = cpu.entry(pid.clone()).or_insert((seconds, seconds));
                        entry.1 = entry.1.max(seconds);
                    }
                }
                for (name, count) in now {
                    let most = samples.connections.entry(name).or_default();
                    *most = (*most).max(count);
                }
            }
            Err(error) => {
                samples.error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
        std::thread::sleep(EVERY);
    }
    samples.backend_cpu = cpu.values().map(|(first, last)| last - first).sum();
    samples
}

/// Keeps the longest statement and the longest pause inside a transaction seen so far.
fn note_stuck(samples: &mut PgSamples, row: &[String]) {
    let field = |i: usize| row.get(i).cloned().unwrap_or_default();
    let secs = |i: usize| field(i).parse::<f64>().unwrap_or(0.0);
    let (slot, secs) = match field(2).as_str() {
        "active" => (&mut samples.longest_statement, secs(4)),
        "idle in transaction" => (&mut samples.longest_idle_in_transaction, secs(5)),
        _ => return,
    };
    if slot.as_ref().is_none_or(|s| s.secs < secs) {
        *slot = Some(Stuck {
            secs,
            node: field(0),
            waiting_on: field(3),
            query: field(6),
        });
    }
}
