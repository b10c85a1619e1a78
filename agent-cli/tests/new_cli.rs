//! `agent new` end to end, as a user would go: scaffold a tool crate, build it and its binary
//! with cargo, run the tool's unit test, and then, through the user's own binary, see the tool
//! in `agent tools` beside the built-ins, pass a scenario that calls it with `agent test`, and
//! call it from `agent run` against `agent mock`. The same checks run on the out-of-tree
//! example in `examples/temperature-tools`, so it cannot rot; and `agent new agent` makes an
//! agent that `agent test` passes.
//!
//! The generated crates build into this workspace's own target directory, offline: their
//! Cargo.lock is the framework's, so nothing is downloaded and the dependencies already built
//! for the framework are reused rather than compiled a second time. One test function does the
//! whole sequence, so each crate is built once.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
};

use common::{agent, output_with_input, text, workspace};

/// How long one `run` of the user's binary against the mock may take: it ends after one reply.
const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// The target directory this test was built into: `CARGO_TARGET_DIR` when set, else the parent
/// of the `tmp` folder cargo gives integration tests.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .to_owned(),
    }
}

/// `cargo ARGS` in `dir`, into the shared target directory; panics with cargo's output when it
/// fails. Builds pass `--offline`: tests never reach the network.
fn cargo(dir: &Path, args: &[&str]) -> Output {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo {args:?} in {} failed:\n{}\n{}",
        dir.display(),
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

fn rustfmt_installed() -> bool {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    Command::new(cargo)
        .args(["fmt", "--version"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// A user's binary, run from the folder of its crate with its data in `data`.
fn user_binary(bin: &str, crate_dir: &Path, data: &Path) -> Command {
    let mut command = Command::new(target_dir().join("debug").join(bin));
    command
        .current_dir(crate_dir)
        .env("AGENT_DATA_DIR", data)
        .env("AGENT_HISTORY_DB", data.join("history.sqlite3"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("AGENT_PRICES");
    command
}

fn run_ok(mut command: Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Kills the mock server when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Everything a user does with a tool crate and its binary, from the build to a conversation.
fn check_tool_crate(crate_dir: &Path, bin: &str, tool: &str, agent_file: &str, user: &str) {
    let data = tempfile::tempdir().unwrap();
    let tests = text(&cargo(crate_dir, &["test", "--offline"]).stdout);
    assert!(tests.contains("test result: ok"), "{tests}");
    cargo(crate_dir, &["build", "--offline", "-p", bin]);
    // What `agent new` writes is formatted as rustfmt would (CI installs rustfmt; a toolchain
    // without it skips this check, and says so).
    if rustfmt_installed() {
        cargo(crate_dir, &["fmt", "--all", "--check"]);
    } else {
        eprintln!("rustfmt is not installed: skipped `cargo fmt --check` of the generated crate");
    }

    // `agent tools`: the new tool beside every built-in.
    let mut tools = user_binary(bin, crate_dir, data.path());
    tools.args(["tools", "--json"]);
    let listed: Vec<serde_json::Value> = serde_json::from_str(&run_ok(tools)).unwrap();
    let names: Vec<&str> = listed.iter().filter_map(|t| t["name"].as_str()).collect();
    for name in [tool, "calculate", "current_time", "lookup_order"] {
        assert!(names.contains(&name), "{name} is missing from {names:?}");
    }

    // `agent test`: the scenario calls the tool, which runs for real.
    let mut test = user_binary(bin, crate_dir, data.path());
    test.args(["test", agent_file]);
    let report = run_ok(test);
    assert!(report.contains(&format!("`{tool}` called")), "{report}");
    assert!(report.contains(", 0 failed"), "{report}");

    // `agent mock` serves the scenario; `agent run --url` talks to it and calls the tool.
    let mut mock = user_binary(bin, crate_dir, data.path());
    mock.args(["mock", agent_file])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut mock = KillOnDrop(mock.spawn().expect("agent mock starts"));
    let mut url = String::new();
    BufReader::new(mock.0.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim();
    assert!(url.starts_with("ws://127.0.0.1:"), "{url}");
    let mut run = user_binary(bin, crate_dir, data.path());
    run.args(["run", agent_file, "--url", url]);
    let out = output_with_input(run, &format!("{user}\n"), RUN_LIMIT);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains(&format!("→ {tool}(")), "{stdout}");
    assert!(stdout.contains(&format!("← {tool} ")), "{stdout}");
}

#[test]
fn a_new_tool_runs_in_the_users_own_agent_binary() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = dir.path().join("greeter");
    let crate_arg = crate_dir.to_str().unwrap();
    let out = agent(
        &["new", "tool", "greeter-e2e", "--dir", crate_arg],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for next in [
        "cargo test",
        "cargo run -p greeter-e2e-agent -- tools",
        "cargo run -p greeter-e2e-agent -- test agents/greeter-e2e.toml",
    ] {
        assert!(
            stdout.contains(next),
            "the next steps lack `{next}`: {stdout}"
        );
    }
    check_tool_crate(
        &crate_dir,
        "greeter-e2e-agent",
        "greeter-e2e",
        "agents/greeter-e2e.toml",
        "Hi, I'm Ada.",
    );

    // Running it again overwrites nothing.
    let again = agent(
        &["new", "tool", "greeter-e2e", "--dir", crate_arg],
        dir.path(),
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("refusing to overwrite"),
        "{}",
        text(&again.stderr)
    );

    // The example in the repository has the same shape and goes through the same checks.
    check_tool_crate(
        &workspace().join("examples/temperature-tools"),
        "temperature-agent",
        "convert_temperature",
        "agents/temperature.toml",
        "What is 100 degrees Celsius in Fahrenheit?",
    );
}

#[test]
fn a_new_agent_passes_agent_test() {
    let dir = tempfile::tempdir().unwrap();
    let agents = dir.path().join("agents");
    let out = agent(
        &["new", "agent", "helper", "--dir", agents.to_str().unwrap()],
        dir.path(),
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let file = agents.join("helper.toml");
    assert!(
        stdout.contains(&format!("agent test {}", file.display())),
        "{stdout}"
    );
    let test = agent(&["test", file.to_str().unwrap()], dir.path());
    let report = text(&test.stdout);
    assert!(test.status.success(), "{report}\n{}", text(&test.stderr));
    assert!(report.contains("`calculate` called"), "{report}");

    let bad = agent(&["new", "agent", "../escape"], dir.path());
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("not a valid name"));
}
