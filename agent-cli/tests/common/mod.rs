//! Helpers shared by the CLI's integration tests: run the built `agent` binary as a user would,
//! but isolated from the user's own data — tools' files and the history database live in the
//! test's temporary folder, and no API key or price override leaks in from the environment.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// The workspace root, where `agents/` lives.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `agent ARGS` run from the workspace root, with its data in `dir`; stdin, stdout and stderr
/// are left to the caller.
pub fn command(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent"));
    command
        .args(args)
        .current_dir(workspace())
        .env("AGENT_DATA_DIR", dir)
        .env("AGENT_HISTORY_DB", dir.join("history.sqlite3"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("AGENT_PRICES")
        // No trace leaves for a collector of the developer's (tests/otel_cli.rs sets its own).
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    command
}

/// `agent ARGS` with no input, its output collected.
pub fn agent(args: &[&str], dir: &Path) -> Output {
    command(args, dir)
        .stdin(Stdio::null())
        .output()
        .expect("the agent binary runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `agent mock agents/support.toml ARGS`, killed when dropped.
pub type Mock = Background;

/// A long-running `agent` command, killed when dropped.
pub struct Background {
    child: std::process::Child,
    /// The URL it printed first.
    pub url: String,
}

/// Starts `agent mock agents/support.toml ARGS` with its data in `dir` and waits (within
/// `limit`) for the WebSocket URL it prints.
pub fn start_mock(args: &[&str], dir: &Path, limit: std::time::Duration) -> Mock {
    let mut full = vec!["mock", "agents/support.toml"];
    full.extend_from_slice(args);
    Background::start(&full, "ws://", dir, limit)
}

impl Background {
    /// Starts `agent ARGS` with its data in `dir` and waits (within `limit`) for the first
    /// line of its output, which must start with `prefix` (its URL).
    pub fn start(args: &[&str], prefix: &str, dir: &Path, limit: std::time::Duration) -> Self {
        use std::io::BufRead as _;
        let mut child = command(args, dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the agent binary runs");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut started = Background {
            child,
            url: String::new(),
        };
        match rx.recv_timeout(limit) {
            Ok(line) if line.starts_with(prefix) => started.url = line.trim().to_owned(),
            other => panic!("`agent {}` printed no URL: {other:?}", args.join(" ")),
        }
        started
    }

    /// Ends it as Ctrl-C would and returns its exit status (killed, failing, past `limit`).
    #[cfg(unix)]
    pub fn interrupt(mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -INT {pid}");
        let began = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                began.elapsed() < limit,
                "it did not stop within {limit:?} of Ctrl-C"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `agent ARGS` with `input` piped in, its output collected; killed (failing the test) past
/// `limit`.
pub fn agent_with_input(
    args: &[&str],
    input: &str,
    dir: &Path,
    limit: std::time::Duration,
) -> Output {
    output_with_input(command(args, dir), input, limit)
}

/// Runs `command` (any program: the `agent` binary or a user's own) with `input` piped in and
/// its output collected; killed (failing the test) past `limit`.
pub fn output_with_input(mut command: Command, input: &str, limit: std::time::Duration) -> Output {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the program runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write");
    drop(stdin);
    let began = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if began.elapsed() > limit {
            let _ = child.kill();
            panic!("`{command:?}` did not end within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}
