//! `[[mcp_clients]]` through the `agent` binary: a stdio MCP server (`agent mock-mcp`, the
//! testkit's server) started by the agent file, its tools listed by `agent tools --agent`,
//! shown by `agent check`, and called by the scripted model in `agent test` and
//! `agent run --offline`, the outputs carrying the server's results. Then the hostile cases
//! with short deadlines (a call that hangs, a server that dies mid-call, junk on stdout, too
//! much output, a start that hangs or fails), an environment that keeps the API key away from
//! the server, and an HTTP server whose secret header never shows.

mod common;

use std::path::{Path, PathBuf};

use agent_testkit::mcp::{McpFaults, McpHttpServer, McpServer};
use common::{agent, command, text};

/// The `[[mcp_clients]]` entry that starts the testkit's server through this very binary.
fn stdio_server(name: &str, extra: &str) -> String {
    format!(
        "[[mcp_clients]]\nname = \"{name}\"\ncommand = {}\nargs = [\"mock-mcp\"]\n{extra}\n",
        serde_json::to_string(env!("CARGO_BIN_EXE_agent")).unwrap()
    )
}

/// Writes `NAME.toml` (with `body` after the header) and its scenarios into `dir`.
fn write_agent(dir: &Path, name: &str, body: &str, scenarios: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!("name = \"{name}\"\ninstructions = \"Use the tools.\"\n\n{body}"),
    )
    .unwrap();
    std::fs::write(dir.join(format!("{name}.scenarios.toml")), scenarios).unwrap();
    path
}

const HAPPY_SCENARIOS: &str = r#"
[[scenario]]
name = "mcp tools"

[[scenario.turn]]
user = "Echo hi and add 2 and 3."

  [[scenario.turn.model]]
  calls = [
    { name = "kit_echo", arguments = { text = "hi" } },
    { name = "kit_add", arguments = { a = 2, b = 3 } },
  ]

  [[scenario.turn.model]]
  say = "Echoed and added: 5."

  [[scenario.turn.expect]]
  tool = "kit_echo"
  arguments = { text = "hi" }
  output_contains = "echo: hi"
  output_is_error = false

  [[scenario.turn.expect]]
  tool = "kit_add"
  output_contains = "5"
  output_is_error = false
"#;

#[test]
fn a_stdio_mcp_servers_tools_are_listed_checked_tested_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_agent(
        dir.path(),
        "kit",
        &stdio_server("kit", "prefix = \"kit_\"\ntools = [\"echo\", \"add\"]"),
        HAPPY_SCENARIOS,
    );
    let file = file.to_str().unwrap();

    let tools = agent(&["tools", "--agent", file], dir.path());
    let listing = text(&tools.stdout);
    assert!(tools.status.success(), "{}", text(&tools.stderr));
    assert!(
        listing.contains("kit_echo  (MCP server `kit` (")
            && listing.contains("its tool `echo`)")
            && listing.contains("Echoes the text back.")
            && listing.contains("text: string (required) — What to echo."),
        "{listing}"
    );
    assert!(
        listing.contains("kit_add") && !listing.contains("kit_hang"),
        "{listing}"
    );
    let json = agent(&["tools", "--agent", file, "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);

    let check = agent(&["check", file], dir.path());
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("\"kit_echo\""));
    assert!(
        text(&check.stderr).contains("2 tool(s)"),
        "{}",
        text(&check.stderr)
    );

    let test = agent(&["test", file], dir.path());
    let report = text(&test.stdout);
    assert!(test.status.success(), "{report}\n{}", text(&test.stderr));
    assert!(report.contains("2 passed, 0 failed"), "{report}");

    let run = agent(&["run", file, "--offline", "--no-history"], dir.path());
    let shown = text(&run.stdout);
    assert!(run.status.success(), "{shown}\n{}", text(&run.stderr));
    assert!(
        shown.contains("echo: hi") && shown.contains("Echoed and added: 5."),
        "{shown}"
    );
}

#[test]
fn a_stdio_server_sees_its_own_environment_not_the_agents_key() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = r#"
[[scenario]]
name = "env"

[[scenario.turn]]
user = "Who are you?"

  [[scenario.turn.model]]
  calls = [{ name = "whoami", arguments = {} }]

  [[scenario.turn.model]]
  say = "ok"

  [[scenario.turn.expect]]
  tool = "whoami"
  output_contains = "MCP_MODE=read-only"
"#;
    let file = write_agent(
        dir.path(),
        "env",
        &stdio_server(
            "kit",
            "tools = [\"whoami\"]\nenv = { MCP_MODE = \"read-only\", MCP_TOKEN = \"${AGENT_TEST_MCP_TOKEN}\" }\ninherit_env = [\"AGENT_TEST_PASSED_THROUGH\"]",
        ),
        scenarios,
    );
    let trace = dir.path().join("trace.jsonl");
    let out = command(
        &[
            "run",
            file.to_str().unwrap(),
            "--offline",
            "--no-history",
            "--trace",
            trace.to_str().unwrap(),
        ],
        dir.path(),
    )
    .env("OPENAI_API_KEY", "sk-must-not-reach-the-mcp-server")
    .env("AGENT_TEST_MCP_TOKEN", "mcp-token-for-the-server-123")
    .env("AGENT_TEST_PASSED_THROUGH", "passed-through-value")
    .env("AGENT_TEST_NOT_PASSED", "not-passed-value")
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let trace = std::fs::read_to_string(&trace).unwrap();
    let output = trace
        .lines()
        .find(|l| l.contains("function_call_output"))
        .unwrap();
    assert!(output.contains("MCP_MODE=read-only"), "{output}");
    assert!(output.contains("PATH="), "{output}");
    assert!(
        output.contains("AGENT_TEST_PASSED_THROUGH=passed-through-value"),
        "{output}"
    );
    // Its token arrived (and is scrubbed from the trace like every secret).
    assert!(output.contains("MCP_TOKEN=[redacted]"), "{output}");
    assert!(!output.contains("mcp-token-for-the-server-123"), "{output}");
    for absent in ["OPENAI_API_KEY", "AGENT_TEST_NOT_PASSED", "AGENT_DATA_DIR"] {
        assert!(
            !output.contains(absent),
            "{absent} reached the server: {output}"
        );
    }
}

const HOSTILE_SCENARIOS: &str = r#"
[[scenario]]
name = "hostile"

[[scenario.turn]]
user = "Break it."

  [[scenario.turn.model]]
  calls = [
    { name = "hang", arguments = {} },
    { name = "garbage", arguments = {} },
    { name = "huge", arguments = { bytes = 100000 } },
    { name = "echo", arguments = { text = "before" } },
  ]

  [[scenario.turn.model]]
  say = "Some failed."

  [[scenario.turn.expect]]
  tool = "hang"
  output_contains = "did not finish within 0.5 s"
  output_is_error = true

  [[scenario.turn.expect]]
  tool = "garbage"
  output_contains = "did not finish within 0.5 s"
  output_is_error = true

  [[scenario.turn.expect]]
  tool = "huge"
  output_contains = "100000 bytes, over this agent's limit of 65536"
  output_is_error = true

  [[scenario.turn.expect]]
  tool = "echo"
  output_contains = "echo: before"

[[scenario.turn]]
user = "Crash it."

  [[scenario.turn.model]]
  calls = [{ name = "crash", arguments = {} }]

  [[scenario.turn.model]]
  calls = [{ name = "echo", arguments = { text = "after" } }]

  [[scenario.turn.model]]
  say = "It is gone."

  [[scenario.turn.expect]]
  tool = "crash"
  output_contains = "MCP server `kit` is not available: it exited (exit status: 3)"
  output_is_error = true

  [[scenario.turn.expect]]
  tool = "echo"
  output_contains = "crashing mid-call, as asked"
  output_is_error = true
"#;

#[test]
fn a_misbehaving_stdio_server_gives_error_outputs_within_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_agent(
        dir.path(),
        "hostile",
        &stdio_server("kit", "call_timeout_secs = 0.5"),
        HOSTILE_SCENARIOS,
    );
    let started = std::time::Instant::now();
    let test = agent(&["test", file.to_str().unwrap()], dir.path());
    let (stdout, stderr) = (text(&test.stdout), text(&test.stderr));
    assert!(test.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("6 passed, 0 failed"), "{stdout}");
    // The junk line was reported where a person sees it.
    assert!(
        stderr.contains(
            "MCP server `kit` sent a line that is not a JSON-RPC message: `this is not json {`"
        ),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn startup_failures_are_errors_at_the_servers_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "--hang-initialize",
            "did not finish starting within 0.5 s (it was waiting for the answer to `initialize`)",
        ),
        (
            "--exit-at-start=7",
            "its last words on stderr: `agent-testkit MCP server: exiting at start with status 7, as asked`",
        ),
        ("--bogus-tools", "70 characters long"),
    ];
    for (fault, want) in cases {
        let file = write_agent(
            dir.path(),
            "broken",
            &format!(
                "[[mcp_clients]]\nname = \"kit\"\ncommand = {}\nargs = [\"mock-mcp\", \"{fault}\"]\nstartup_timeout_secs = 0.5\n",
                serde_json::to_string(env!("CARGO_BIN_EXE_agent")).unwrap()
            ),
            HAPPY_SCENARIOS,
        );
        for subcommand in ["check", "test"] {
            let out = agent(&[subcommand, file.to_str().unwrap()], dir.path());
            let stderr = text(&out.stderr);
            assert!(!out.status.success(), "{fault} {subcommand}: {stderr}");
            assert!(
                stderr.contains("broken.toml:5:8") && stderr.contains(want),
                "{fault} {subcommand}: {stderr}"
            );
        }
    }
}

#[test]
fn declarations_are_checked_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_agent(
        dir.path(),
        "typo",
        "[[mcp_clients]]\nname = \"kit\"\ncommand = \"x\"\nstartup_timeout = 3\n",
        HAPPY_SCENARIOS,
    );
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("typo.toml:7:1") && stderr.contains("unknown field `startup_timeout`"),
        "{stderr}"
    );
    let file = write_agent(
        dir.path(),
        "both",
        "[[mcp_clients]]\nname = \"kit\"\ncommand = \"x\"\nurl = \"https://h/mcp\"\n",
        HAPPY_SCENARIOS,
    );
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("both.toml:5:8") && stderr.contains("not both"),
        "{stderr}"
    );
}

#[test]
fn an_http_servers_secret_header_never_shows_even_when_the_server_echoes_it() {
    const SECRET: &str = "mcp-client-secret-9f8e7d6c5b4a";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenarios = r#"
[[scenario]]
name = "echoes"

[[scenario.turn]]
user = "Who am I?"

  [[scenario.turn.model]]
  calls = [{ name = "whoami", arguments = {} }]

  [[scenario.turn.model]]
  say = "Done."

  [[scenario.turn.expect]]
  tool = "whoami"
  output_contains = "x-api-key: "
"#;
    for (server_wants, expect_ok) in [(SECRET, true), ("another-value-entirely", false)] {
        let server = runtime
            .block_on(async {
                McpHttpServer::start(
                    McpServer::new(McpFaults {
                        require_header: Some(("x-api-key".into(), server_wants.into())),
                        ..McpFaults::default()
                    }),
                    0,
                )
            })
            .unwrap();
        let file = write_agent(
            dir.path(),
            "secret",
            &format!(
                "[[mcp_clients]]\nname = \"kit\"\nurl = \"{}\"\nheaders = {{ X-Api-Key = \"${{AGENT_TEST_MCP_KEY}}\" }}\ntools = [\"whoami\"]\nstartup_timeout_secs = 5\n",
                server.url()
            ),
            scenarios,
        );
        let trace = dir.path().join("trace.jsonl");
        let db = dir.path().join("history.sqlite3");
        let mut outputs = Vec::new();
        for args in [
            vec!["check", file.to_str().unwrap(), "-vv"],
            vec!["tools", "--agent", file.to_str().unwrap()],
            vec!["test", file.to_str().unwrap(), "-vv"],
            vec![
                "run",
                file.to_str().unwrap(),
                "--offline",
                "-vv",
                "--trace",
                trace.to_str().unwrap(),
                "--history-db",
                db.to_str().unwrap(),
            ],
        ] {
            let out = command(&args, dir.path())
                .env("AGENT_TEST_MCP_KEY", SECRET)
                .output()
                .unwrap();
            assert_eq!(
                out.status.success(),
                expect_ok,
                "{args:?}: {}",
                text(&out.stderr)
            );
            outputs.push((format!("{args:?} stdout"), text(&out.stdout)));
            outputs.push((format!("{args:?} stderr"), text(&out.stderr)));
        }
        if expect_ok {
            // The server really got the header, and really echoed it back.
            let got = server.requests();
            assert!(got.iter().any(|r| r.header("x-api-key") == Some(SECRET)));
            let test_report = &outputs[4].1;
            assert!(test_report.contains("1 passed, 0 failed"), "{test_report}");
            outputs.push(("trace".into(), std::fs::read_to_string(&trace).unwrap()));
        } else {
            // The server's 401 echoes the header: the error is shown, the value is not.
            assert!(outputs[1].1.contains("401"), "{}", outputs[1].1);
        }
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let bytes = std::fs::read(file.path()).unwrap();
            if file.path() != dir.path().join("secret.toml") {
                outputs.push((
                    file.path().display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
        for (what, output) in &outputs {
            assert!(
                !output.contains(SECRET),
                "the secret leaked in {what}:\n{output}"
            );
        }
        runtime.block_on(server.shutdown());
    }
}
