//! Usage, cost and latency as a user sees them: the end of `agent run --offline`, the budget,
//! `--prices`, and `agent trace summarize` on a trace the CLI wrote, on hostile input, and on
//! every recorded transcript of the Realtime spec folder.

mod common;

use common::{agent, text, workspace};

use std::path::PathBuf;

#[test]
fn offline_run_ends_with_usage_cost_and_latency_and_its_trace_summarizes() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("session.jsonl");
    let trace_arg = trace.to_str().unwrap();
    let out = agent(
        &[
            "run",
            "agents/support.toml",
            "--offline",
            "--trace",
            trace_arg,
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let summary = stdout
        .split("── usage, cost and latency ──")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary at the end:\n{stdout}"));
    for expected in [
        "usage    21 responses in 7 sessions",
        "cached",
        "cost     $",
        "at gpt-realtime prices of ",
        "end of user turn → first delta",
        "tool round trip (all tools)",
        "lookup_order",
        "framework overhead (done → create)",
        "p50",
        "p95",
        "max",
    ] {
        assert!(
            summary.contains(expected),
            "missing {expected:?} in:\n{summary}"
        );
    }

    // The trace holds the usage and latency records beside the frames...
    let written = std::fs::read_to_string(&trace).unwrap();
    for kind in [
        "\"kind\":\"usage\"",
        "\"kind\":\"latency\"",
        "\"kind\":\"session_summary\"",
        // The support -> billing scenario's handoffs, and billing's guardrail.
        "\"kind\":\"handoff\"",
        "\"kind\":\"guardrail_tripped\"",
    ] {
        assert!(written.contains(kind), "no {kind} note in the trace");
    }
    // ... and `agent trace summarize` reads it back.
    let out = agent(&["trace", "summarize", trace_arg], dir.path());
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    for expected in [
        "response.done",
        "response.create",
        "turns    10   responses 21",
        "tools    11 call(s)",
        "create_ticket",
        "framework overhead",
        "21 responses:",
        "cost     $",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in:\n{report}"
        );
    }
}

#[test]
fn trace_summarize_counts_unknown_and_malformed_lines_without_failing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("odd.jsonl");
    std::fs::write(
        &file,
        concat!(
            "{\"type\":\"session.created\",\"session\":{\"model\":\"gpt-realtime-mini\"}}\n",
            "{\"type\":\"totally.new.event\",\"x\":1}\n",
            "this is not json\n",
            "[\"an array\"]\n",
            "{\"type\":\"response.done\",\"response\":{\"id\":\"r\",\"output\":[],",
            "\"usage\":{\"input_tokens\":1000,\"output_tokens\":10}}}\n",
            "{\"truncated\": \n",
        ),
    )
    .unwrap();
    let out = agent(&["trace", "summarize", file.to_str().unwrap()], dir.path());
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", text(&out.stderr));
    assert!(
        report.contains("3 malformed line(s) skipped (line 3, 4, 6)"),
        "{report}"
    );
    assert!(
        report.contains("totally.new.event  (unknown type)"),
        "{report}"
    );
    assert!(report.contains("at gpt-realtime-mini prices"), "{report}");

    let missing = agent(&["trace", "summarize", "/nonexistent.jsonl"], dir.path());
    assert!(!missing.status.success());
    let stderr = text(&missing.stderr);
    assert!(
        stderr.contains("cannot read trace file /nonexistent.jsonl"),
        "{stderr}"
    );
    // A device never ends: it is refused, not streamed.
    if cfg!(target_os = "linux") {
        let device = agent(&["trace", "summarize", "/dev/zero"], dir.path());
        assert!(!device.status.success());
        let stderr = text(&device.stderr);
        assert!(
            stderr.contains("trace file /dev/zero is a character device, not a regular file"),
            "{stderr}"
        );
    }
}

#[test]
fn trace_summarize_reads_every_recorded_transcript_of_the_spec() {
    let Some(dir) = spec_dir() else { return };
    let transcripts = dir.join("transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&transcripts)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", transcripts.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no transcripts in {}",
        transcripts.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    for file in files {
        let out = agent(&["trace", "summarize", file.to_str().unwrap()], tmp.path());
        let report = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}: {report}\n{}",
            file.display(),
            text(&out.stderr)
        );
        assert!(report.contains("events   sent  received  type"), "{report}");
        assert!(
            !report.contains("malformed"),
            "{}: {report}",
            file.display()
        );
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        assert!(
            report.contains(&format!("({lines} events")),
            "{}: every line is an event:\n{report}",
            file.display()
        );
    }
}

#[test]
fn the_budget_ends_the_session_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.toml"),
        "name = \"b\"\ninstructions = \"x\"\ntools = [\"calculate\"]\n[limits]\nmax_cost_usd = 0.5\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.scenarios.toml"),
        r#"
[[scenario]]
name = "expensive"
[[scenario.turn]]
user = "one"
  [[scenario.turn.model]]
  say = "first answer"
  usage = { input_tokens = 100000 }
[[scenario.turn]]
user = "two"
  [[scenario.turn.model]]
  say = "second answer"
  usage = { input_tokens = 100000 }
[[scenario.turn]]
user = "three"
  [[scenario.turn.model]]
  say = "never said"
"#,
    )
    .unwrap();
    let file = dir.path().join("b.toml");
    let out = agent(
        &["run", file.to_str().unwrap(), "--offline", "-v"],
        dir.path(),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("! budget: $0.4"), "{stderr}");
    assert!(stderr.contains("! budget reached"), "{stderr}");
    assert!(
        stderr.contains("the spending limit was reached"),
        "{stderr}"
    );
    assert!(stdout.contains("second answer"), "{stdout}");
    assert!(!stdout.contains("you › three"), "{stdout}");
    assert!(stdout.contains("(budget $0.50 per session)"), "{stdout}");
}

#[test]
fn prices_can_be_overridden_and_bad_tables_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let free = dir.path().join("free.toml");
    std::fs::write(
        &free,
        "taken = \"2099-01-01\"\n[models.gpt-realtime]\ntext_in = 0\ntext_cached_in = 0\n\
         text_out = 0\naudio_in = 0\naudio_cached_in = 0\naudio_out = 0\n",
    )
    .unwrap();
    let out = agent(
        &[
            "run",
            "agents/support.toml",
            "--offline",
            "--scenario",
            "order status",
            "--prices",
            free.to_str().unwrap(),
        ],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("cost     $0.00 at gpt-realtime prices of 2099-01-01"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[models.gpt-realtime]\ntext_in = \"four\"\n").unwrap();
    let out = agent(
        &[
            "run",
            "agents/support.toml",
            "--offline",
            "--prices",
            bad.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml is not a valid price table"),
        "{stderr}"
    );
}

/// The Realtime spec folder, or `None` (after one line saying so) when it is missing and not
/// required (`REALTIME_SPEC_REQUIRED=1` makes a missing folder a failure).
fn spec_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("REALTIME_SPEC_DIR") {
        Some(dir) => workspace().join(dir),
        None => workspace().join("../shared/realtime-spec"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("REALTIME_SPEC_REQUIRED").is_ok_and(|v| v == "1") {
        panic!(
            "REALTIME_SPEC_REQUIRED=1 but the Realtime spec folder {} is missing; set REALTIME_SPEC_DIR",
            dir.display()
        );
    }
    eprintln!(
        "skipped: the Realtime spec folder {} is missing (set REALTIME_SPEC_DIR)",
        dir.display()
    );
    None
}
