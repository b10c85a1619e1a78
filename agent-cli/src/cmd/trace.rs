//! `agent trace summarize FILE.jsonl`: what a recorded session did, how fast, and what it cost.
//!
//! Reads this project's traces (`agent run --trace`) and other recorders' plain JSONL dumps (one
//! server event a line); see `agent_core::trace_summary` for what is counted and how.

use std::{
    io::BufReader,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use agent_core::{
    cost::{PriceTable, format_usd},
    latency::format_latency,
    trace_summary::{TraceSummarizer, TraceSummary},
};
use anyhow::Context;

use crate::summary::{describe_tokens, group};

/// Arguments of `agent trace`.
#[derive(Debug, clap::Args)]
pub struct TraceArgs {
    #[command(subcommand)]
    command: TraceCommand,
}

#[derive(Debug, clap::Subcommand)]
enum TraceCommand {
    /// Print event counts, turns, tool calls, latency percentiles, tokens and cost.
    Summarize(SummarizeArgs),
    /// Turn a recorded session into a scenarios file for `agent test`.
    ToScenario(super::to_scenario::ToScenarioArgs),
}

#[derive(Debug, clap::Args)]
struct SummarizeArgs {
    /// Trace files: `agent run --trace` output, or plain JSONL (one server event a line).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Price usage as this model (when the trace does not name it, or to compare).
    #[arg(long)]
    model: Option<String>,
    /// A price table merged over the published prices.
    #[arg(long, value_name = "FILE.toml", env = "AGENT_PRICES")]
    prices: Option<PathBuf>,
}

/// Runs `agent trace ...`.
pub fn run(args: TraceArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        TraceCommand::Summarize(args) => summarize(args),
        TraceCommand::ToScenario(args) => super::to_scenario::run(args),
    }
}

fn summarize(args: SummarizeArgs) -> anyhow::Result<ExitCode> {
    let prices = Arc::new(match &args.prices {
        Some(path) => PriceTable::builtin_with(path)?,
        None => PriceTable::builtin().clone(),
    });
    for (index, path) in args.files.iter().enumerate() {
        if index > 0 {
            crate::output::outln!();
        }
        let summary = summarize_file(path, prices.clone(), args.model.clone())?;
        crate::output::out!("{}", render(path, &summary));
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads one trace file.
pub fn summarize_file(
    path: &Path,
    prices: Arc<PriceTable>,
    model: Option<String>,
) -> anyhow::Result<TraceSummary> {
    // Traces are streamed (each line held at most `MAX_TRACE_LINE_BYTES`), but only from a
    // regular file: a device or FIFO could feed it forever or block.
    let file = agent_core::fs_limits::open_regular(path, "trace file")?;
    TraceSummarizer::new(prices, model)
        .read(BufReader::new(file))
        .with_context(|| format!("cannot read the trace {}", path.display()))
}

/// The printed summary of one file.
pub fn render(path: &Path, s: &TraceSummary) -> String {
    let mut out = format!("── {} ──\n", path.display());
    let notes: u64 = s.notes.values().sum();
    out.push_str(&format!(
        "lines    {} ({} events, {} notes{}){}\n",
        group(s.lines),
        group(s.events),
        group(notes),
        if s.timestamps {
            ", timestamped"
        } else {
            ", no timestamps: no latency"
        },
        if s.malformed > 0 {
            format!(
                "; {} malformed line(s) skipped (line {})",
                s.malformed,
                s.malformed_examples
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        }
    ));
    out.push_str("events   sent  received  type\n");
    for (kind, count) in &s.by_type {
        let unknown = if s.unknown_types.contains_key(kind) {
            "  (unknown type)"
        } else {
            ""
        };
        out.push_str(&format!(
            "       {:>6}  {:>8}  {kind}{unknown}\n",
            count.sent, count.received
        ));
    }
    if !s.unknown_types.is_empty() {
        let total: u64 = s.unknown_types.values().sum();
        out.push_str(&format!(
            "         {total} event(s) of {} unknown type(s), counted and skipped\n",
            s.unknown_types.len()
        ));
    }
    if !s.notes.is_empty() {
        let kinds: Vec<String> = s.notes.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        out.push_str(&format!("notes    {}\n", kinds.join(", ")));
    }
    out.push_str(&format!(
        "turns    {}   responses {}\n",
        s.turns, s.responses
    ));
    if s.tool_calls.is_empty() {
        out.push_str("tools    no calls\n");
    } else {
        out.push_str(&format!("tools    {} call(s)\n", s.tool_calls.len()));
        for call in &s.tool_calls {
            let took = match (call.answered, call.duration) {
                (true, Some(d)) if s.timestamps => format_latency(d),
                (true, _) => "answered".to_owned(),
                (false, _) => "no output in the trace".to_owned(),
            };
            out.push_str(&format!(
                "         {:<24} {:<14} {took}\n",
                call.name, call.call_id
            ));
        }
    }
    if s.latency.is_empty() {
        out.push_str("latency  not measured (no timestamps or no turns)\n");
    } else {
        out.push_str(&format!("latency  {} turns\n", s.latency.turns));
        for line in s.latency.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    let u = &s.usage;
    if u.responses == 0 && u.transcriptions == 0 {
        out.push_str("tokens   no usage reported\n");
    } else {
        out.push_str(&format!(
            "tokens   {} responses: {}\n",
            u.responses,
            describe_tokens(&u.tokens)
        ));
        if u.transcriptions > 0 {
            out.push_str(&format!(
                "         {} transcriptions: {} in / {} out tokens, {:.1} s\n",
                u.transcriptions,
                group(u.transcription.input_tokens),
                group(u.transcription.output_tokens),
                u.transcription.seconds
            ));
        }
        let model = s.model.as_deref().unwrap_or("(not named in the trace)");
        let taken = s
            .prices_taken
            .as_deref()
            .map(|d| format!(" of {d}"))
            .unwrap_or_default();
        match (&s.priced_as, u.known_cost()) {
            (Some(entry), Some(cost)) => out.push_str(&format!(
                "cost     {} (model {model}, at {entry} prices{taken})\n",
                format_usd(cost)
            )),
            (Some(entry), None) => out.push_str(&format!(
                "cost     at least {} (model {model}, at {entry} prices{taken}; some usage has no price)\n",
                format_usd(u.cost_usd)
            )),
            (None, _) => out.push_str(&format!(
                "cost     unknown: no price for model {model}; pass --model or --prices\n"
            )),
        }
    }
    out
}
