//! `agent mock`: every scenario of the file, one per connection in order (or the one
//! `--scenario` picks), and the fault knobs as flags — checked with `agent run --url` as the
//! client, as a user would.

mod common;

use std::{process::Output, time::Duration};

use common::{Mock, agent_with_input, start_mock, text};

/// How long any one process here may take.
const LIMIT: Duration = Duration::from_secs(30);

/// `agent mock` with `args`, and a place for its data.
fn mock(args: &[&str]) -> (Mock, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    (start_mock(args, dir.path(), LIMIT), dir)
}

/// `agent run agents/support.toml --url URL` with one typed line.
fn run(mock: &Mock, line: &str) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    agent_with_input(
        &[
            "run",
            "agents/support.toml",
            "--url",
            &mock.url,
            "--no-history",
        ],
        &format!("{line}\n"),
        dir.path(),
        LIMIT,
    )
}

fn assert_replied(out: &Output, expected: &str) {
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains(expected),
        "missing {expected:?} in:\n{stdout}"
    );
}

#[test]
fn every_scenario_is_served_one_per_connection_in_order() {
    let (mock, _dir) = mock(&[]);
    let first = run(&mock, "Hi! Where is my order A1001?");
    assert_replied(&first, "the mechanical keyboard, has shipped");
    let second = run(
        &mock,
        "Has order A1002 shipped yet? And what is your return policy?",
    );
    assert_replied(&second, "the headphones and cable, has been delivered");
    let third = run(&mock, "Can you check order Z9999 for me?");
    assert_replied(&third, "I couldn't find an order with the id Z9999");
}

#[test]
fn scenario_picks_one_for_every_connection() {
    let (mock, _dir) = mock(&["--scenario", "unknown order"]);
    for _ in 0..2 {
        let out = run(&mock, "Can you check order Z9999 for me?");
        assert_replied(&out, "I couldn't find an order with the id Z9999");
    }
}

#[test]
fn fault_flags_break_the_connections_they_name() {
    // The first connection drops mid-conversation; the client reconnects to a healthy one.
    let (mock, _dir) = mock(&[
        "--scenario",
        "order status",
        "--drop-after",
        "4",
        "--fault-connection",
        "0",
    ]);
    let out = run(&mock, "Hi! Where is my order A1001?");
    assert_replied(&out, "has shipped");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("reconnecting"), "{stderr}");
}

#[test]
fn an_unknown_scenario_names_the_ones_there_are() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = common::agent(
        &["mock", "agents/support.toml", "--scenario", "nope"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("order status"),
        "{}",
        text(&out.stderr)
    );
}
