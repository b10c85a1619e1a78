//! One measured client process: CPU (user + system, from the kernel's accounting of
//! waited-for children, with the two apart and the wake-ups and file writes beside them), wall
//! time, its output, and a deadline.
//!
//! A client that reads typed lines (`agent run` with piped input) is paced like a person at a
//! terminal: the next line is written only once the reply to the previous one has been printed,
//! so it does one turn at a time, as the SDK clients do, and the input closes after the last
//! line (the CLI then exits once the conversation is quiet). The bench's own threads that do
//! this are not counted: only the child's CPU is.

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, ChildStdin, Command, Stdio},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::common;

/// How long one client run may take before it is killed.
pub const DEADLINE: Duration = Duration::from_secs(900);

/// Typed input, one line per turn, each after the previous reply.
#[derive(Debug, Clone)]
pub struct Paced {
    /// The line typed each turn.
    pub line: String,
    /// How many turns.
    pub turns: usize,
    /// A reply is complete when a stdout line starts with this.
    pub reply_marker: String,
}

/// What one run of a client gave.
#[derive(Debug, Clone, Default)]
pub struct ChildRun {
    /// CPU seconds of the child, user + system.
    pub cpu: f64,
    /// The child's usage in detail (user and system apart, wake-ups, file writes).
    pub usage: common::Usage,
    /// Wall seconds from spawn to exit.
    pub wall: f64,
    /// The last JSON line the client printed (its own report), or counts read off its output.
    pub report: Value,
}

/// Runs `command` to the end (or kills it at [`DEADLINE`]) and measures it.
pub fn run(mut command: Command, paced: Option<Paced>) -> anyhow::Result<ChildRun> {
    command
        .stdin(if paced.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let before = common::children_usage();
    let started = Instant::now();
    let mut child = command.spawn()?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || read_stdout(stdout, stdin, paced));
    let err_thread: JoinHandle<String> = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    });
    let status = wait_with_deadline(&mut child)?;
    let wall = started.elapsed().as_secs_f64();
    let usage = common::children_usage().since(&before);
    let cpu = usage.cpu();
    let (report, lines) = out_thread.join().unwrap_or((Value::Null, 0));
    let stderr = err_thread.join().unwrap_or_default();
    if !status.success() {
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        anyhow::bail!(
            "exited with {status} after {lines} line(s) of output: {}",
            tail.join("\n")
        );
    }
    Ok(ChildRun {
        cpu,
        usage,
        wall,
        report,
    })
}

/// Waits for the child, killing it (it is ours) when the deadline passes.
fn wait_with_deadline(child: &mut Child) -> anyhow::Result<std::process::ExitStatus> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("did not finish within {} s", DEADLINE.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads the child's output to its end, typing paced lines; returns its report and how many
/// lines it printed.
fn read_stdout(
    stdout: Option<impl Read>,
    mut stdin: Option<ChildStdin>,
    paced: Option<Paced>,
) -> (Value, usize) {
    let mut typed = 0usize;
    let mut type_line = |stdin: &mut Option<ChildStdin>, paced: &Paced| {
        if typed < paced.turns
            && let Some(input) = stdin.as_mut()
        {
            let _ = writeln!(input, "{}", paced.line);
            typed += 1;
        }
        if typed >= paced.turns {
            // The last line is typed: end of input, as a shell pipe would end.
            *stdin = None;
        }
    };
    if let Some(p) = &paced {
        type_line(&mut stdin, p);
    }
    let Some(stdout) = stdout else {
        return (Value::Null, 0);
    };
    let (mut last_json, mut lines, mut replies, mut tools) = (Value::Null, 0, 0u64, 0u64);
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        lines += 1;
        if let Some(p) = &paced {
            if line.starts_with(&p.reply_marker) {
                replies += 1;
                type_line(&mut stdin, p);
            } else if line.trim_start().starts_with('←') {
                tools += 1;
            }
        } else if let Ok(value) = serde_json::from_str::<Value>(&line) {
            last_json = value;
        }
    }
    if paced.is_some() {
        last_json = serde_json::json!({"answers": replies, "tool_calls": tools});
    }
    (last_json, lines)
}
