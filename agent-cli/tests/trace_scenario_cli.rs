//! Recorded sessions become tests, end to end: `agent mock` plays the support scenarios,
//! `agent run --url ... --trace` records each session, `agent trace to-scenario` turns each
//! trace into a scenarios file, and `agent test --scenarios` passes on every one.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    path::Path,
    process::{Child, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use agent_testkit::scenario::ScenarioFile;
use common::{agent, command, text, workspace};

/// How long any one process here may take.
const LIMIT: Duration = Duration::from_secs(60);

/// `agent mock agents/support.toml`, killed when dropped.
struct Mock(Child);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_mock(dir: &Path) -> (Mock, String) {
    let mut child = command(&["mock", "agents/support.toml"], dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent mock runs");
    let stdout = child.stdout.take().expect("stdout");
    let mock = Mock(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let url = rx.recv_timeout(LIMIT).expect("agent mock prints its URL");
    assert!(url.starts_with("ws://"), "{url:?}");
    (mock, url.trim().to_owned())
}

/// `agent run --url URL --trace TRACE` with the user's lines piped in.
fn record(url: &str, lines: &[String], trace: &Path, dir: &Path) {
    let mut child = command(
        &[
            "run",
            "agents/support.toml",
            "--url",
            url,
            "--no-history",
            "--trace",
            trace.to_str().expect("UTF-8 path"),
        ],
        dir,
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("agent run runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all((lines.join("\n") + "\n").as_bytes())
        .expect("write");
    drop(stdin);
    let began = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if began.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("agent run did not end within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn recorded_sessions_replay_as_passing_tests() {
    let dir = tempfile::tempdir().expect("temp dir");
    let scenarios = ScenarioFile::load(workspace().join("agents/support.scenarios.toml"))
        .expect("the support scenarios load");
    let (_mock, url) = start_mock(dir.path());
    // The mock serves the scenarios one per connection, in file order: record each.
    for (index, scenario) in scenarios.scenarios.iter().enumerate() {
        let lines: Vec<String> = scenario
            .turns
            .iter()
            .filter_map(|t| t.user.clone())
            .collect();
        let trace = dir.path().join(format!("session{index}.jsonl"));
        record(&url, &lines, &trace, dir.path());

        let converted = dir.path().join(format!("session{index}.scenarios.toml"));
        let out = agent(
            &[
                "trace",
                "to-scenario",
                trace.to_str().expect("UTF-8 path"),
                "-o",
                converted.to_str().expect("UTF-8 path"),
                "--name",
                &scenario.name,
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let written = std::fs::read_to_string(&converted).expect("the file was written");
        let replay = ScenarioFile::from_str(&written, "converted").expect(&written);
        let original = &scenario.turns;
        let recorded = &replay.scenarios[0].turns;
        assert_eq!(recorded.len(), original.len(), "{written}");
        for (mine, theirs) in recorded.iter().zip(original) {
            assert_eq!(mine.user, theirs.user);
            let calls = |t: &agent_testkit::scenario::Turn| -> Vec<String> {
                t.model
                    .iter()
                    .flat_map(|s| s.calls.iter().map(|c| c.name.clone()))
                    .collect()
            };
            assert_eq!(calls(mine), calls(theirs), "{written}");
        }
        // Outputs are expected verbatim only from deterministic tools.
        if written.contains("tool = \"create_ticket\"")
            || written.contains("tool = \"current_time\"")
        {
            assert!(
                written.contains("# output not expected: the tool is not deterministic"),
                "{written}"
            );
        }
        if written.contains("tool = \"lookup_order\"") {
            assert!(written.contains("output_contains = \"{"), "{written}");
        }

        let tested = agent(
            &[
                "test",
                "agents/support.toml",
                "--scenarios",
                converted.to_str().expect("UTF-8 path"),
            ],
            dir.path(),
        );
        let report = text(&tested.stdout);
        assert!(
            tested.status.success(),
            "scenario `{}` replayed:\n{report}\n{}\n{written}",
            scenario.name,
            text(&tested.stderr)
        );
        assert!(report.contains("0 failed"), "{report}");
    }
}

#[test]
fn a_trace_without_responses_is_refused_with_advice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("empty.jsonl");
    std::fs::write(&trace, "not json\n").expect("write");
    let out = agent(
        &["trace", "to-scenario", trace.to_str().expect("UTF-8 path")],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--trace"),
        "{}",
        text(&out.stderr)
    );
}
