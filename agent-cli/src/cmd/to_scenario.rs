//! `agent trace to-scenario TRACE.jsonl [-o FILE]`: a recorded session becomes a scenario for
//! `agent test`.
//!
//! The model's side is replayed from the trace; the tools run for real when it is played; the
//! expectations are the recorded calls (tool and arguments) and the outputs of the tools marked
//! deterministic (`#[tool(deterministic)]`). See `agent_testkit::scenario::Recording`.

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::ExitCode,
};

use agent_testkit::scenario::{Recording, ScenarioFile, WriteOptions};
use anyhow::Context;

/// Arguments of `agent trace to-scenario`.
#[derive(Debug, clap::Args)]
pub struct ToScenarioArgs {
    /// A trace written by `agent run --trace` (live or against `agent mock`).
    pub trace: PathBuf,
    /// Write the scenarios file here (default: stdout). Name it NAME.scenarios.toml beside
    /// the agent file, or pass it to `agent test --scenarios`.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// The scenario's name (default: the trace file's name).
    #[arg(long)]
    pub name: Option<String>,
}

/// Converts the trace and writes the scenario file.
pub fn run(args: ToScenarioArgs) -> anyhow::Result<ExitCode> {
    let recording = read(&args.trace)?;
    if recording.turns() == 0 {
        anyhow::bail!(
            "{} holds no response to replay; record a session with `agent run AGENT.toml --trace FILE`",
            args.trace.display()
        );
    }
    let registry = agent_tools::registry()?;
    let deterministic = |name: &str| registry.get(name).is_some_and(|tool| tool.deterministic());
    let name = args.name.clone().unwrap_or_else(|| stem(&args.trace));
    let text = recording.to_scenario_toml(&WriteOptions {
        name,
        source: args.trace.display().to_string(),
        deterministic: &deterministic,
    });
    // What is written must be what `agent test` reads.
    ScenarioFile::from_str(&text, "the converted trace")
        .context("the converted scenario does not check; please report this with the trace")?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write {}", path.display()))?;
            crate::output::errln!(
                "wrote {} ({} turn(s)); check it with: agent test AGENT.toml --scenarios {}",
                path.display(),
                recording.turns(),
                path.display()
            );
        }
        None => crate::output::out!("{text}"),
    }
    if recording.skipped_lines() > 0 {
        crate::output::errln!(
            "note: {} line(s) of {} were not JSON and were skipped",
            recording.skipped_lines(),
            args.trace.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a trace, streamed, from a regular file only; each line is held at most
/// `MAX_TRACE_LINE_BYTES` (longer lines, such as audio frames, are skipped).
fn read(path: &Path) -> anyhow::Result<Recording> {
    let file = agent_core::fs_limits::open_regular(path, "trace file")?;
    let mut reader = BufReader::new(file);
    let limit = agent_core::fs_limits::MAX_TRACE_LINE_BYTES;
    let mut recording = Recording::default();
    let failed = |err| anyhow::anyhow!("cannot read {}: {err}", path.display());
    loop {
        let mut line = Vec::new();
        let read = (&mut reader)
            .take(limit + 1)
            .read_until(b'\n', &mut line)
            .map_err(failed)?;
        if read == 0 {
            return Ok(recording);
        }
        if line.len() as u64 > limit {
            skip_line(&mut reader).map_err(failed)?;
            recording.push_line("");
            continue;
        }
        recording.push_line(&String::from_utf8_lossy(&line));
    }
}

/// Skips the rest of an over-long line without holding it.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        if let Some(end) = buf.iter().position(|&b| b == b'\n') {
            reader.consume(end + 1);
            return Ok(());
        }
        let n = buf.len();
        reader.consume(n);
    }
}

fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recorded".to_owned());
    name.strip_suffix(".jsonl").unwrap_or(&name).to_owned()
}
