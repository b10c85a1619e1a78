//! Recorded sessions become tests, end to end: `agent mock` plays the support scenarios,
//! `agent run --url ... --trace` records each session, `agent trace to-scenario` turns each
//! trace into a scenarios file, and `agent test --scenarios` passes on every one.

mod common;

use std::{path::Path, time::Duration};

use agent_testkit::scenario::ScenarioFile;
use common::{agent, agent_with_input, start_mock, text, workspace};

/// How long any one process here may take.
const LIMIT: Duration = Duration::from_secs(60);

/// `agent run --url URL --trace TRACE` with the user's lines piped in.
fn record(url: &str, lines: &[String], trace: &Path, dir: &Path) {
    let trace = trace.to_str().expect("UTF-8 path");
    let args = [
        "run",
        "agents/support.toml",
        "--url",
        url,
        "--no-history",
        "--trace",
        trace,
    ];
    let out = agent_with_input(&args, &(lines.join("\n") + "\n"), dir, LIMIT);
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
    let mock = start_mock(&[], dir.path(), LIMIT);
    let url = mock.url.clone();
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
            // Input a guardrail withheld never reached the wire: the recording holds the
            // placeholder that went instead.
            let withheld = theirs.expect.iter().any(|e| e.guardrail.is_some())
                && mine
                    .user
                    .as_deref()
                    .is_some_and(|u| u.starts_with("[withheld by the guardrail"));
            if !withheld {
                assert_eq!(mine.user, theirs.user);
            }
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
