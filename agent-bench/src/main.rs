//! `agent-bench`: benchmarks of the Realtime agent runtime, on loopback only, written to
//! BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release -p agent-bench            # everything, about 3–5 minutes on 2 cores
//! cargo run --release -p agent-bench -- --quick # fewer turns and sessions, for a smoke run
//! ```
//!
//! 1. decode throughput of server events (agent-testkit's frames, audio deltas included);
//! 2. dispatch overhead: `response.done` with 1 and 8 no-op calls → `response.create` on the
//!    wire, over 10,000 turns each, measured by a raw WebSocket peer;
//! 3. concurrency: 8 tools × 200 ms in one response, the turn's total time;
//! 4. scale: 1,000 / 5,000 / 10,000 sessions in one process, RSS per idle session, and the
//!    dispatch overhead while every session runs one tool turn a second;
//! 5. side by side with the reference Python SDK (`openai-agents`, installed into a throwaway
//!    venv): the same 100-turn conversation against the same agent-testkit server, CPU and wall
//!    time of both.
//!
//! Benchmarks report numbers; nothing here asserts a timing. Each benchmark's module says what
//! exactly it measures.

mod common;
mod concurrency;
mod decode;
mod dispatch;
mod machine;
mod peer;
mod report;
mod scale;
mod sdk;

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
    /// Do not install or run the Python SDK.
    #[arg(long)]
    skip_python: bool,
    /// Do not run the 1,000–10,000 session benchmark.
    #[arg(long)]
    skip_scale: bool,
    /// Session counts for the scale benchmark (default 1000,5000,10000; --quick: 100,500).
    #[arg(long, value_delimiter = ',')]
    sessions: Vec<usize>,
    /// Run only these benchmarks (comma-separated: decode, dispatch, concurrency, scale, sdk).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Internal: serve the raw peer for the scale benchmark (child process).
    #[arg(long, hide = true)]
    serve_peer: bool,
    /// Internal: run this framework's side of the SDK comparison (child process): URL TURNS.
    #[arg(long, hide = true, num_args = 2, value_names = ["URL", "TURNS"])]
    sdk_rust_client: Option<Vec<String>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.serve_peer {
        return scale::serve_peer();
    }
    if let Some(client) = &args.sdk_rust_client {
        let url = client.first().map(String::as_str).unwrap_or_default();
        let turns = client.get(1).and_then(|t| t.parse().ok()).unwrap_or(100);
        return sdk::rust_client(url, turns);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
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
        eprintln!("1/5 decode throughput");
        let corpus = rt.block_on(decode::corpus())?;
        Some(decode::run(&corpus, if args.quick { 0.5 } else { 2.0 }))
    } else {
        None
    };
    let dispatch = if wanted("dispatch") {
        eprintln!("2/5 dispatch overhead (1 and 8 calls, {turns} turns each)");
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
        eprintln!("3/5 concurrency: 8 tools x 200 ms");
        Some(rt.block_on(concurrency::run(if args.quick { 5 } else { 20 }))?)
    } else {
        None
    };
    drop(rt);
    let scale = if args.skip_scale || !wanted("scale") {
        None
    } else {
        eprintln!("4/5 scale: {levels:?} sessions");
        Some(scale::run(&levels, load)?)
    };
    let sdk = if wanted("sdk") {
        eprintln!("5/5 side by side with the Python SDK");
        Some(sdk::run(100, &workspace, args.skip_python)?)
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
    };
    std::fs::write(&out, report.render())?;
    eprintln!(
        "wrote {} in {:.0} s",
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
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
