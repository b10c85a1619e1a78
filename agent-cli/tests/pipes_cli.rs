//! A reader that goes away early (`agent schema | head`) ends every command quietly: no panic,
//! no "Broken pipe" message, and the exit status a shell reports for a program ended by a
//! closed pipe (141 = 128 + SIGPIPE).

mod common;

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use common::{command, text};

/// How long one command may take to notice the closed pipe.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `agent ARGS` with its stdout closed before it writes anything; returns its exit code
/// and stderr.
fn with_closed_stdout(args: &[&str]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(args, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the agent binary runs");
    // The read end goes away at once: every write to stdout fails with EPIPE.
    drop(child.stdout.take());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            panic!("`agent {}` did not end within {DEADLINE:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code(), stderr)
}

#[test]
fn every_printing_command_ends_quietly_on_a_closed_pipe() {
    let cases: &[&[&str]] = &[
        &["schema"],
        &["tools"],
        &["tools", "--json"],
        &["check", "agents/support.toml"],
        &["completions", "bash"],
        &["run", "agents/support.toml", "--offline"],
        &["test", "agents/support.toml"],
    ];
    for args in cases {
        let (code, stderr) = with_closed_stdout(args);
        let stderr = text(stderr.as_bytes());
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "`agent {}` complained about the closed pipe: {stderr}",
            args.join(" ")
        );
        assert_eq!(
            code,
            Some(141),
            "`agent {}` should end with 141; stderr: {stderr}",
            args.join(" ")
        );
    }
}

/// A session must not end abruptly when its reader goes away: the run closes as on Ctrl-C,
/// its history is written, and only then does it exit with 141.
#[test]
fn a_session_whose_stdout_closes_keeps_its_history() {
    use std::io::Write as _;
    let mock_dir = tempfile::tempdir().expect("temp dir");
    let mock = common::start_mock(&[], mock_dir.path(), DEADLINE);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = command(
        &["run", "agents/support.toml", "--url", &mock.url],
        dir.path(),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("the agent binary runs");
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"Hi! Where is my order A1001?\n")
        .expect("write");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < DEADLINE, "the run did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(stdin);
    let output = child.wait_with_output().expect("output");
    let stderr = text(&output.stderr);
    assert_eq!(status.code(), Some(141), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("conversation stored as"), "{stderr}");
    let listed = common::agent(&["history", "list", "--json"], dir.path());
    let listing = text(&listed.stdout);
    assert!(
        listing.contains("conv_"),
        "{listing}\n{}",
        text(&listed.stderr)
    );
}
