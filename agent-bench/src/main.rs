//! `agent-bench`: benchmarks of the Realtime agent runtime, on loopback only, written to
//! BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release -p agent-bench            # everything, 15–45 minutes on 2 cores (46 on a busy one)
//! cargo run --release -p agent-bench -- --quick # fewer turns and sessions, for a smoke run
//! cargo run --release -p agent-bench -- --only callgrind --out /tmp/profile.md
//! ```
//!
//! 1. decode throughput of server events (agent-testkit's frames, audio deltas included);
//! 2. dispatch overhead: `response.done` with 1 and 8 no-op calls → `response.create` on the
//!    wire, over 10,000 turns each, measured by a raw WebSocket peer, against the floor of a
//!    bare WebSocket client on the same path (targets: p50 ≤ 1.25× / 1.5× the floor);
//! 3. concurrency: 8 tools × 200 ms in one response, the turn's total time;
//! 4. scale: 1,000 / 5,000 / 10,000 sessions in one process, RSS per idle session, and the
//!    dispatch overhead while every session runs one tool turn a second;
//! 5. three clients side by side on the turns scenario (`agent-bench/scenarios/`): the
//!    `agent` CLI with its defaults, `--no-history` and `--trace`, the library,
//!    openai-agents-python and openai-agents-js (each installed into a throwaway folder under
//!    `target/`), against one agent-testkit server: CPU per turn with start-up excluded, start-up
//!    apart, totals, and equal work checked from the server's side; medians of 5 runs;
//! 6. session memory per turn: live heap bytes of a library session (counting allocator, in
//!    the `agent-bench-memory` probe) between two checkpoints, with and without history;
//! 7. the shipped (`dist`) `agent` binary's size;
//! 8. an instruction-count profile of `agent run` under callgrind (the `profiling` build), per
//!    turn, in buckets (decode, dispatch, encode, history, trace, console, ...); run it alone
//!    with `--only callgrind`;
//! 9. telephony: simulated Twilio calls through the shipped `agent serve` at 100, 250, 500 and
//!    1,000 concurrent calls (frames in real time, a tool turn every 10 s per call), serve CPU
//!    per call-second, RSS per call, frame and audio latencies, frames lost, next to
//!    openai-agents-js's Twilio transport; about 5 minutes, alone with `--only telephony`;
//! 10. the missed targets, each explained with the numbers above;
//! 11. takeover: two `agent serve` nodes (the release binary) share a PostgreSQL history and
//!     answer 1,000 simulated SIP calls from the fake platform; one is killed (SIGKILL) mid-run
//!     and the other takes its calls over: calls completed, takeover time, duplicate tool runs,
//!     and the history's write throughput on PostgreSQL against SQLite. It needs a PostgreSQL
//!     server (`--postgres`, else `AGENT_POSTGRES_URL`, else the local one); about 3 minutes,
//!     alone with `--only takeover --out FILE` (the file then holds only that section).
//!
//! Benchmarks report numbers; nothing here asserts a timing, and CI does not run this. Each
//! benchmark's module says what exactly it measures. The bench builds the `agent` binaries it
//! runs (`binaries.rs`) into its own target directory, so they match the checkout.

mod binaries;
mod binary_size;
mod callgrind;
mod callgrind_parse;
mod child;
mod clients;
mod common;
mod concurrency;
mod decode;
mod dispatch;
mod history_writes;
mod library_client;
mod machine;
mod memory;
mod peer;
mod peer_install;
mod pg;
mod report;
mod report_missed;
mod report_profile;
mod report_sdk;
mod report_takeover;
mod report_telephony;
mod scale;
mod sdk;
mod server_work;
mod takeover;
mod takeover_caller;
mod takeover_check;
mod takeover_measure;
mod takeover_monitor;
mod takeover_node;
mod takeover_orders;
mod telephony;
mod telephony_load;
mod telephony_probe;
mod telephony_serve;
mod turns;

use std::{path::PathBuf, time::Duration};

use clap::Parser;

/// Benchmarks of the Realtime agent runtime; writes BENCHMARKS.md.
#[derive(Debug, Parser)]
#[command(name = "agent-bench")]
struct Args {
    /// Fewer turns and sessions: a smoke run (the file says so).
    #[arg(long)]
    quick: bool,
    /// Where to write the report (default: BENCHMARKS.md at the workspace root).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Do not install or run the peer SDKs (Python and JavaScript).
    #[arg(long, alias = "skip-python")]
    skip_peers: bool,
    /// Do not run the 1,000–10,000 session benchmark.
    #[arg(long)]
    skip_scale: bool,
    /// Session counts for the scale benchmark (default 1000,5000,10000; --quick: 100,500).
    #[arg(long, value_delimiter = ',')]
    sessions: Vec<usize>,
    /// Run only these benchmarks (comma-separated: decode, dispatch, concurrency, scale, sdk,
    /// memory, size, callgrind, telephony, takeover); the report then holds only them.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The PostgreSQL server of the takeover benchmark (it makes schemas of its own there).
    #[arg(long, env = "AGENT_POSTGRES_URL", default_value = takeover::DEFAULT_POSTGRES)]
    postgres: String,
    /// Concurrent calls of the takeover benchmark (default 1000; --quick: 100).
    #[arg(long)]
    takeover_calls: Option<usize>,
    /// Takeover benchmark: keep every sideband frame and write those of the calls that did
    /// not complete next to the nodes' logs (a diagnosis; costs memory).
    #[arg(long)]
    takeover_frames: bool,
    /// Internal: serve the raw peer for the scale benchmark (child process).
    #[arg(long, hide = true)]
    serve_peer: bool,
    /// Internal: the library client of the comparison (child process): URL TURNS.
    #[arg(long, hide = true, num_args = 2, value_names = ["URL", "TURNS"])]
    library_client: Option<Vec<String>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.serve_peer {
        return scale::serve_peer();
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    if let Some(client) = &args.library_client {
        let url = client.first().map(String::as_str).unwrap_or_default();
        let turns = client.get(1).and_then(|t| t.parse().ok()).unwrap_or(1);
        return library_client::main(&workspace, url, turns);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| workspace.join("BENCHMARKS.md"));
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; run with --release for meaningful numbers");
    }
    let machine = machine::Machine::probe();
    let started = std::time::Instant::now();
    let (turns, mut levels, load) = if args.quick {
        (1_000, vec![100, 500], Duration::from_secs(3))
    } else {
        (10_000, vec![1_000, 5_000, 10_000], Duration::from_secs(10))
    };

    if !args.sessions.is_empty() {
        levels = args.sessions.clone();
        levels.sort_unstable();
    }
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let decode = if wanted("decode") {
        eprintln!("1/9 decode throughput");
        let corpus = rt.block_on(decode::corpus())?;
        Some(decode::run(&corpus, if args.quick { 0.5 } else { 2.0 }))
    } else {
        None
    };
    let dispatch = if wanted("dispatch") {
        eprintln!("2/9 dispatch overhead (1 and 8 calls, {turns} turns each)");
        let warmup = turns / 20;
        let mut results = Vec::new();
        for calls in [1, 8] {
            results.push(dispatch::run(
                dispatch::Client::Framework,
                calls,
                turns,
                warmup,
            )?);
            // Every item is fsynced with history on: fewer turns keep the run short.
            results.push(dispatch::run(
                dispatch::Client::FrameworkWithHistory,
                calls,
                (turns / 5).max(50),
                warmup / 5,
            )?);
            results.push(dispatch::run(dispatch::Client::Bare, calls, turns, warmup)?);
        }
        results
    } else {
        Vec::new()
    };
    let concurrency = if wanted("concurrency") {
        eprintln!("3/9 concurrency: 8 tools x 200 ms");
        Some(rt.block_on(concurrency::run(if args.quick { 5 } else { 20 }))?)
    } else {
        None
    };
    drop(rt);
    let scale = if args.skip_scale || !wanted("scale") {
        None
    } else {
        eprintln!("4/9 scale: {levels:?} sessions");
        Some(scale::run(&levels, load)?)
    };
    let plan = if args.quick { Plan::QUICK } else { Plan::FULL };
    let sdk = if wanted("sdk") {
        eprintln!("5/9 three clients side by side");
        Some(sdk::run(plan.sdk, &workspace, args.skip_peers)?)
    } else {
        None
    };
    let memory = if wanted("memory") {
        eprintln!("6/9 session memory per turn");
        Some(memory::run(&workspace, &plan.memory)?)
    } else {
        None
    };
    let size = if wanted("size") {
        eprintln!("7/9 binary size (dist)");
        Some(binary_size::run()?)
    } else {
        None
    };
    let callgrind = if wanted("callgrind") {
        eprintln!("8/9 callgrind profile of agent run");
        Some(callgrind::run(&workspace, plan.callgrind_turns))
    } else {
        None
    };
    let telephony = if wanted("telephony") {
        let plan = if args.quick {
            telephony::Plan::quick()
        } else {
            telephony::Plan::full()
        };
        eprintln!("9/9 telephony: {:?} concurrent calls", plan.levels);
        Some(telephony::run(&plan, &workspace, args.skip_peers)?)
    } else {
        None
    };
    let takeover = if wanted("takeover") {
        let mut plan = if args.quick {
            takeover::Plan::quick()
        } else {
            takeover::Plan::full()
        };
        if let Some(calls) = args.takeover_calls {
            plan.calls = calls;
        }
        plan.record_frames = args.takeover_frames;
        eprintln!("11 takeover: {} calls, two nodes, one killed", plan.calls);
        // Without a database the section says why instead of failing the whole run.
        Some(takeover::run(&plan, &args.postgres, command_line()).map_err(|e| format!("{e:#}")))
    } else {
        None
    };

    let report = report::Report {
        machine,
        quick: args.quick,
        command: command_line(),
        elapsed: started.elapsed(),
        decode,
        dispatch,
        concurrency,
        scale,
        sdk,
        memory,
        size,
        callgrind,
        telephony,
        takeover,
        partial: !args.only.is_empty(),
    };
    std::fs::write(&out, report.render())?;
    eprintln!(
        "wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// How much the sections that run the turns scenario do.
struct Plan {
    sdk: sdk::Plan,
    memory: [usize; 3],
    callgrind_turns: usize,
}

impl Plan {
    /// What the targets ask for: ≥ 2,000 turns for our clients, medians of 5 runs.
    const FULL: Plan = Plan {
        sdk: sdk::Plan {
            ours: 2_000,
            peers: 200,
            repeats: 5,
        },
        memory: [500, 2_000, 4_000],
        callgrind_turns: 200,
    };
    /// A smoke run.
    const QUICK: Plan = Plan {
        sdk: sdk::Plan {
            ours: 100,
            peers: 10,
            repeats: 1,
        },
        memory: [50, 100, 200],
        callgrind_turns: 10,
    };
}

/// The command as it was run, for the report.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        "cargo run --release -p agent-bench".to_owned()
    } else {
        format!("cargo run --release -p agent-bench -- {}", args.join(" "))
    }
}
