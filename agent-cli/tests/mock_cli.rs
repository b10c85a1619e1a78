//! `agent mock`: every scenario of the file, one per connection in order (or the one
//! `--scenario` picks), and the fault knobs as flags — checked with `agent run --url` as the
//! client, as a user would.

mod common;

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use common::{command, text};

/// How long any one process here may take.
const LIMIT: Duration = Duration::from_secs(30);

/// A running `agent mock`, killed when dropped.
struct Mock {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Mock {
    fn start(args: &[&str]) -> Mock {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut full = vec!["mock", "agents/support.toml"];
        full.extend_from_slice(args);
        let mut child = command(&full, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent mock runs");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let url = match rx.recv_timeout(LIMIT) {
            Ok(line) if line.starts_with("ws://") => line.trim().to_owned(),
            other => {
                let _ = child.kill();
                panic!("agent mock printed no URL: {other:?}");
            }
        };
        Mock {
            child,
            url,
            _dir: dir,
        }
    }

    /// `agent run agents/support.toml --url URL` with one typed line.
    fn run(&self, line: &str) -> Output {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = command(
            &[
                "run",
                "agents/support.toml",
                "--url",
                &self.url,
                "--no-history",
            ],
            dir.path(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent run runs");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
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
        child.wait_with_output().expect("output")
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let mock = Mock::start(&[]);
    let first = mock.run("Hi! Where is my order A1001?");
    assert_replied(&first, "the mechanical keyboard, has shipped");
    let second = mock.run("Has order A1002 shipped yet? And what is your return policy?");
    assert_replied(&second, "the headphones and cable, has been delivered");
    let third = mock.run("Can you check order Z9999 for me?");
    assert_replied(&third, "I couldn't find an order with the id Z9999");
}

#[test]
fn scenario_picks_one_for_every_connection() {
    let mock = Mock::start(&["--scenario", "unknown order"]);
    for _ in 0..2 {
        let out = mock.run("Can you check order Z9999 for me?");
        assert_replied(&out, "I couldn't find an order with the id Z9999");
    }
}

#[test]
fn fault_flags_break_the_connections_they_name() {
    // The first connection drops mid-conversation; the client reconnects to a healthy one.
    let mock = Mock::start(&[
        "--scenario",
        "order status",
        "--drop-after",
        "4",
        "--fault-connection",
        "0",
    ]);
    let out = mock.run("Hi! Where is my order A1001?");
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
