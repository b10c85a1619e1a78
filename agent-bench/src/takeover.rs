//! (11) Takeover: two `agent serve` nodes share one PostgreSQL history and answer simulated
//! SIP calls from the fake OpenAI platform; one node is killed (SIGKILL) in the middle of the
//! run, and the other takes its calls over. Then the history write throughput of PostgreSQL
//! against SQLite ([`crate::history_writes`]).
//!
//! Roles and processes:
//! - **the nodes**: two release `agent` binaries (`agent serve`), each a child process with
//!   its own serve.toml (`max_calls` = every call of the run, so one node can hold them all),
//!   both on one fresh PostgreSQL schema, the default lease unless the plan says otherwise;
//! - **the fake platform** (this process, threads `tko-platform`): agent-testkit's
//!   `FakePlatform`, each call playing its own script (greeting, tool turns, goodbye), its
//!   call kept when its sideband drops (`SidebandDrop::CallSurvives`), with the HTTP tool's
//!   endpoint ([`crate::takeover_orders`]), which counts requests by idempotency key;
//! - **the callers** (this process, threads `tko-callers`): one task per call
//!   ([`crate::takeover_caller`]). Calls come in evenly over the ramp, alternately to node A
//!   and node B; after a settle, each call says one tool turn every `turn_every` (spread over
//!   the period, so turns run all the time), then goodbye, then hangs up.
//!
//! Node A is killed halfway through the second round of tool turns, with tool requests in
//! flight. Takeover time is, per call of node A alive at the kill, the kill → the platform's
//! record of the call's next sideband attaching. Completion is judged twice: by the caller
//! (every turn answered, hang-up accepted) and by the shared history
//! ([`crate::takeover_check`]); [`crate::takeover_measure`] reads the rest off the run.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use agent_testkit::{
    ModelStep, Scenario, ScriptedCall, Turn,
    platform::{FakePlatform, SidebandDrop},
    postgres::TestSchema,
    server::{ScriptScope, ServerConfig},
};
use serde_json::json;

use crate::{
    common::{named_runtime, sleep_until},
    history_writes::{self, StoreRun, Workload},
    takeover_caller::{CallOutcome, CallScript},
    takeover_check::HistoryCheck,
    takeover_monitor::{Monitor, PgSamples},
    takeover_node::{Node, NodeSetup},
    takeover_orders::Orders,
};

/// `[history] lease_secs` when serve.toml leaves it out (agent-server's `HistoryConfig`).
pub const DEFAULT_LEASE_SECS: f64 = 10.0;
/// The server used when `AGENT_POSTGRES_URL` is not set: the project machines' own.
pub const DEFAULT_POSTGRES: &str = "postgres://root@127.0.0.1:5432/test";

pub(crate) const GREETING: &str = "Hello, shop here.";
pub(crate) const GOODBYE: &str = "Goodbye.";

pub(crate) fn answer(turn: usize) -> String {
    format!("Order {turn} is placed.")
}

/// How much to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent calls.
    pub calls: usize,
    /// Calls come in evenly over this.
    pub ramp: Duration,
    /// Wait after the ramp before the first round of tool turns.
    pub settle: Duration,
    /// Each call says one tool turn this often.
    pub turn_every: Duration,
    /// Tool turns per call.
    pub tool_turns: usize,
    /// `[history] lease_secs`; `None`: the default ([`DEFAULT_LEASE_SECS`]).
    pub lease_secs: Option<f64>,
    /// How long the tool's endpoint takes to answer.
    pub tool_latency: Duration,
    /// How long a caller waits, past its last scheduled turn, before it gives up.
    pub patience: Duration,
    /// The history write throughput workloads.
    pub writes: Workload,
    /// Keep every sideband frame, and write those of the calls that did not complete next to
    /// the nodes' logs (a diagnosis: it costs the platform memory and time).
    pub record_frames: bool,
}

impl Plan {
    /// What the issue asks for: 1,000 calls, the default lease.
    pub fn full() -> Plan {
        Plan {
            calls: 1_000,
            ramp: Duration::from_secs(20),
            settle: Duration::from_secs(5),
            turn_every: Duration::from_secs(10),
            tool_turns: 3,
            lease_secs: None,
            tool_latency: Duration::from_millis(200),
            patience: Duration::from_secs(150),
            writes: Workload {
                conversations: 1_000,
                turns: 10,
                sequential: 1_000,
            },
            record_frames: false,
        }
    }

    /// A smoke run.
    pub fn quick() -> Plan {
        Plan {
            calls: 100,
            ramp: Duration::from_secs(5),
            writes: Workload {
                conversations: 100,
                turns: 5,
                sequential: 200,
            },
            ..Plan::full()
        }
    }

    /// The lease the nodes run with, seconds.
    pub fn lease(&self) -> f64 {
        self.lease_secs.unwrap_or(DEFAULT_LEASE_SECS)
    }

    /// When node A is killed, after the first round of tool turns starts: halfway through
    /// the second round, and halfway between two calls' turns (not on one call's turn).
    pub fn kill_after(&self) -> Duration {
        self.turn_every.mul_f64(1.5) + self.turn_every / (2 * self.calls.max(1) as u32)
    }
}

/// CPU seconds each part used from the first call to the last caller's end.
#[derive(Debug, Clone, Default)]
pub struct Cpu {
    /// Wall seconds of that window.
    pub wall: f64,
    /// Seconds from the first call to the kill.
    pub until_kill: f64,
    /// Node A, until its kill.
    pub node_a: f64,
    /// Node B.
    pub node_b: f64,
    /// The fake platform and the tool's endpoint.
    pub platform: f64,
    /// The callers.
    pub callers: f64,
}

/// What the tool's endpoint saw.
#[derive(Debug, Clone, Default)]
pub struct ToolCounts {
    /// Requests received.
    pub requests: usize,
    /// Distinct idempotency keys among them.
    pub keys: usize,
    /// Keys seen more than once: tools that ran twice.
    pub duplicated: usize,
    /// Requests of node A's calls that arrived before the kill and were not answered before
    /// it (in flight when their node died).
    pub in_flight_at_kill: usize,
    /// Requests whose conversation the history does not know (their call is not stored).
    pub unmatched: usize,
    /// How long before the kill node A's calls sent their last tool request (their turns
    /// come every few milliseconds: a long quiet means node A was stalled).
    pub a_quiet_before_kill: Option<Duration>,
}

/// The section's results.
#[derive(Debug, Clone)]
pub struct TakeoverResult {
    /// The plan run.
    pub plan: Plan,
    /// The command that produced it.
    pub command: String,
    /// When it ran (UTC).
    pub date: String,
    /// The machine's load averages at the start and at the end.
    pub load: (String, String),
    /// `SHOW server_version`, and the durability settings.
    pub postgres: String,
    /// Each node's start-up: spawn → listening.
    pub startup: Vec<(&'static str, Duration)>,
    /// Every call, as its caller saw it.
    pub calls: Vec<CallOutcome>,
    /// Calls placed on node A.
    pub on_a: usize,
    /// Node A's calls alive at the kill (connected, not hung up).
    pub alive_at_kill: usize,
    /// Per such call that got a sideband again: kill → next attach.
    pub takeover: Vec<Duration>,
    /// Node B's own calls that got a second sideband (should be none: B never lost them).
    pub b_reattached: usize,
    /// Node B's log of its takeovers: how many, and the first and the last, seconds after
    /// the kill.
    pub b_took_over: Option<(usize, f64, f64)>,
    /// Calls left waiting for an answer: when their unanswered turn was said, and when the
    /// sideband it was said to had attached (none: said before any attached after the kill),
    /// seconds after the kill (negative: before it).
    pub unanswered: Vec<(f64, Option<f64>)>,
    /// Turn latencies (said → answered): before the kill; node B's own calls after it; node
    /// A's calls after their takeover.
    pub turns: [Vec<Duration>; 3],
    /// The tool's endpoint.
    pub tool: ToolCounts,
    /// The shared history, checked at the end (or why it could not be read).
    pub history: Result<HistoryCheck, String>,
    /// PostgreSQL while the nodes ran.
    pub pg: PgSamples,
    /// CPU by part.
    pub cpu: Cpu,
    /// Lines at WARN or ERROR in each node's log, with the first few.
    pub log_lines: Vec<(&'static str, usize, Vec<String>)>,
    /// Protocol mistakes the fake platform saw (the first few) and how many.
    pub violations: (usize, Vec<String>),
    /// Calls the platform got a second `function_call_output` for (one of the violations).
    pub second_outputs: usize,
    /// History write throughput: PostgreSQL, then SQLite (or why it did not run).
    pub writes: Result<(StoreRun, StoreRun), String>,
}

/// Runs the section against the PostgreSQL server at `server`.
pub fn run(plan: &Plan, server: &str, command: String) -> anyhow::Result<TakeoverResult> {
    // Each call: a sideband here and on a node, its webhook, REST and tool connections.
    raise_open_files((plan.calls * 6 + 1_000) as u64)?;
    let agent = crate::binaries::agent(crate::binaries::Profile::Release)?;
    let date = jiff::Timestamp::now()
        .strftime("%Y-%m-%d %H:%M UTC")
        .to_string();
    let load_start = crate::machine::load_average();
    let pg = crate::pg::Pg::connect(server)?;
    let postgres = format!(
        "PostgreSQL {} (synchronous_commit = {}, fsync = {}, max_connections = {})",
        pg.value("SHOW server_version")?,
        pg.value("SHOW synchronous_commit")?,
        pg.value("SHOW fsync")?,
        pg.value("SHOW max_connections")?,
    );
    drop(pg);
    eprintln!(
        "  {} calls on two nodes, node A killed after {:.0} s of tool turns",
        plan.calls,
        plan.kill_after().as_secs_f64()
    );
    let mut result = two_nodes(plan, server, &agent)?;
    // After the nodes, so the pages this writes are not the server's to flush during them.
    eprintln!("  history write throughput: PostgreSQL and SQLite");
    let writes = write_throughput(server, plan.writes).map_err(|e| format!("{e:#}"));
    result.command = command;
    result.date = date;
    result.load = (load_start, crate::machine::load_average());
    result.postgres = postgres;
    result.writes = writes;
    Ok(result)
}

/// The same workloads on a fresh PostgreSQL schema and a fresh SQLite file.
fn write_throughput(server: &str, workload: Workload) -> anyhow::Result<(StoreRun, StoreRun)> {
    let schema =
        TestSchema::create_on(server, "bench_writes").map_err(|e| anyhow::anyhow!("{e}"))?;
    let postgres = history_writes::run(schema.url(), workload)?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("history.sqlite3");
    let sqlite = history_writes::run(&file.to_string_lossy(), workload)?;
    Ok((postgres, sqlite))
}

/// Every call plays: greeting, the tool turns, goodbye.
fn scenario(tool_turns: usize) -> Scenario {
    let scenario =
        Scenario::new("takeover").turn(Turn::model_first().model(ModelStep::say(GREETING)));
    (1..=tool_turns)
        .fold(scenario, |scenario, turn| {
            scenario.turn(
                Turn::user(format!("Order number {turn}, please."))
                    .model(ModelStep::calls([ScriptedCall::new(
                        "record_order",
                        json!({"item": format!("item {turn}")}),
                    )]))
                    .model(ModelStep::say(answer(turn))),
            )
        })
        .turn(Turn::user("Thanks, bye.").model(ModelStep::say(GOODBYE)))
}

/// The platform's and the callers' runtimes, on threads named apart so their CPU can be read
/// apart.
struct Runtimes {
    platform: tokio::runtime::Runtime,
    callers: tokio::runtime::Runtime,
}

const PLATFORM_THREADS: &str = "tko-platform";
const CALLER_THREADS: &str = "tko-callers";

impl Runtimes {
    fn new() -> anyhow::Result<Runtimes> {
        Ok(Runtimes {
            platform: named_runtime(PLATFORM_THREADS)?,
            callers: named_runtime(CALLER_THREADS)?,
        })
    }
}

/// What a run holds while it runs: the schema, the runtimes, the platform, the tool's
/// endpoint and the nodes' folder.
struct Bench {
    schema: TestSchema,
    runtimes: Runtimes,
    platform: Arc<FakePlatform>,
    orders: Orders,
    dir: tempfile::TempDir,
}

impl Bench {
    fn start(plan: &Plan, server: &str) -> anyhow::Result<Bench> {
        let schema =
            TestSchema::create_on(server, "bench_takeover").map_err(|e| anyhow::anyhow!("{e}"))?;
        let runtimes = Runtimes::new()?;
        let platform = runtimes.platform.block_on(async {
            FakePlatform::start(
                ServerConfig::new(scenario(plan.tool_turns))
                    .script_scope(ScriptScope::PerConnection)
                    .record_frames(plan.record_frames),
                SidebandDrop::CallSurvives,
                crate::takeover_node::WEBHOOK_SECRET,
                None,
            )
        })?;
        let orders = runtimes
            .platform
            .block_on(Orders::start(plan.tool_latency))?;
        let dir = tempfile::tempdir()?;
        crate::takeover_node::write_agent(dir.path(), orders.addr)?;
        Ok(Bench {
            schema,
            runtimes,
            platform: Arc::new(platform),
            orders,
            dir,
        })
    }
}

/// What happened while the nodes ran.
pub(crate) struct Driven {
    pub scripts: Vec<CallScript>,
    pub calls: Vec<CallOutcome>,
    pub nodes: [std::net::SocketAddr; 2],
    pub killed: Instant,
    pub killed_wall: jiff::Timestamp,
    pub cpu: Cpu,
    pub startup: Vec<(&'static str, Duration)>,
    pub pg: PgSamples,
}

fn two_nodes(plan: &Plan, server: &str, agent: &std::path::Path) -> anyhow::Result<TakeoverResult> {
    let bench = Bench::start(plan, server)?;
    let driven = drive(plan, &bench, agent)?;
    let result = crate::takeover_measure::measure(
        plan,
        &bench.platform,
        &bench.orders,
        &bench.schema,
        bench.dir.path(),
        &driven,
    );
    let all_done = driven.calls.iter().all(CallOutcome::completed)
        && result
            .history
            .as_ref()
            .is_ok_and(|h| h.complete == plan.calls);
    if !all_done && plan.record_frames {
        let failed: Vec<&str> = driven
            .calls
            .iter()
            .filter(|c| !c.completed())
            .map(|c| c.call_id.as_str())
            .collect();
        let frames = bench
            .runtimes
            .platform
            .block_on(crate::takeover_measure::failed_frames(
                &bench.platform,
                &failed,
                driven.killed,
            ));
        std::fs::write(bench.dir.path().join("frames.txt"), frames)?;
    }
    let Bench {
        runtimes,
        platform,
        dir,
        ..
    } = bench;
    if !all_done {
        // Not in the report: a temporary path means nothing to its readers.
        eprintln!(
            "  a call did not complete; the nodes' logs are kept in {}",
            dir.keep().display()
        );
    }
    let violations = runtimes.platform.block_on(platform.sideband().violations());
    if let Ok(platform) = Arc::try_unwrap(platform) {
        runtimes.platform.block_on(platform.shutdown());
    }
    Ok(TakeoverResult {
        second_outputs: violations
            .iter()
            .filter(|v| v.contains("a second function_call_output"))
            .count(),
        violations: (violations.len(), violations.into_iter().take(3).collect()),
        ..result
    })
}

/// Starts both nodes, plays every call, kills node A on time, waits for every caller, then
/// stops node B (it records every end and flushes its history as it drains).
fn drive(plan: &Plan, bench: &Bench, agent: &std::path::Path) -> anyhow::Result<Driven> {
    let setup = NodeSetup {
        agent,
        dir: bench.dir.path(),
        db: bench.schema.url(),
        realtime_url: bench.platform.realtime_url(),
        api_base: bench.platform.api_base(),
        max_calls: plan.calls,
        lease_secs: plan.lease_secs,
    };
    let mut a = Node::start(&setup, "a")?;
    let b = Node::start(&setup, "b")?;
    let monitor = Monitor::start(bench.schema.url())?;
    let begin = Instant::now() + Duration::from_secs(1);
    let rounds = begin + plan.ramp + plan.settle;
    let scripts = scripts(plan, begin, rounds, [a.addr, b.addr]);
    let tasks: Vec<_> = scripts
        .iter()
        .cloned()
        .map(|script| {
            let platform = bench.platform.clone();
            bench
                .runtimes
                .callers
                .spawn(crate::takeover_caller::run(platform, script))
        })
        .collect();
    sleep_until(begin);
    let threads = || {
        (
            crate::telephony::threads_cpu(PLATFORM_THREADS),
            crate::telephony::threads_cpu(CALLER_THREADS),
        )
    };
    let (cpu_a, cpu_b, cpu_threads) = (a.cpu_seconds(), b.cpu_seconds(), threads());
    sleep_until(rounds + plan.kill_after());
    let node_a = a.cpu_seconds() - cpu_a;
    let killed = Instant::now();
    let killed_wall = jiff::Timestamp::now();
    a.kill();
    eprintln!("  node A killed; waiting for every call to end");
    let calls: Vec<CallOutcome> = bench.runtimes.callers.block_on(async {
        let mut calls = Vec::with_capacity(tasks.len());
        for (task, script) in tasks.into_iter().zip(&scripts) {
            calls.push(task.await.unwrap_or_else(|e| CallOutcome {
                call_id: script.call_id.clone(),
                failed: Some(format!("{}: the caller's task: {e}", script.call_id)),
                ..CallOutcome::default()
            }));
        }
        calls
    });
    let (platform_cpu, callers_cpu) = threads();
    let cpu = Cpu {
        wall: begin.elapsed().as_secs_f64(),
        until_kill: (killed - begin).as_secs_f64(),
        node_a,
        node_b: b.cpu_seconds() - cpu_b,
        platform: platform_cpu - cpu_threads.0,
        callers: callers_cpu - cpu_threads.1,
    };
    let (startup, nodes) = (vec![("a", a.startup), ("b", b.startup)], [a.addr, b.addr]);
    b.stop(Duration::from_secs(15));
    Ok(Driven {
        scripts,
        calls,
        nodes,
        killed,
        killed_wall,
        cpu,
        startup,
        pg: monitor.finish(),
    })
}

/// Each call's script: placed evenly over the ramp, alternately on each node; its tool turns
/// one period apart, each call at its own offset within the period, then goodbye.
fn scripts(
    plan: &Plan,
    begin: Instant,
    rounds: Instant,
    nodes: [std::net::SocketAddr; 2],
) -> Vec<CallScript> {
    let n = plan.calls.max(1) as f64;
    let last = plan.turn_every.mul_f64(plan.tool_turns as f64 + 1.0);
    (0..plan.calls)
        .map(|i| {
            let offset = plan.turn_every.mul_f64(i as f64 / n);
            CallScript {
                call_id: format!("rtc_bench{i:05}"),
                node: nodes[i % 2],
                place_at: begin + plan.ramp.mul_f64(i as f64 / n),
                turns_at: (0..=plan.tool_turns)
                    .map(|k| rounds + offset + plan.turn_every * k as u32)
                    .collect(),
                steps: (0..=plan.tool_turns)
                    .map(|k| if k < plan.tool_turns { 2 } else { 1 })
                    .collect(),
                give_up: rounds + last + plan.patience,
            }
        })
        .collect()
}

/// Raises the soft open-files limit to `needed` (up to the hard limit) for this process and
/// the nodes it starts; fails saying what to raise when the hard limit is lower.
fn raise_open_files(needed: u64) -> anyhow::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= needed {
        return Ok(());
    }
    anyhow::ensure!(
        hard >= needed,
        "the takeover benchmark needs {needed} open files and the hard limit is {hard}: raise it (ulimit -Hn)"
    );
    setrlimit(Resource::RLIMIT_NOFILE, needed, hard)?;
    Ok(())
}
