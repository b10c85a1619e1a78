//! The `agent` binary run as a user would: the offline demo, `agent test`, `agent check` errors,
//! the missing-key message, and a live-mode run against a loopback server with piped input and
//! a trace file that must not contain the API key.

mod common;
/// In this binary rather than its own: each test binary is another link of the whole CLI.
#[path = "e2e/idempotent_retry.rs"]
mod idempotent_retry;

use common::{agent, text, workspace};

use std::{
    io::Write,
    process::{Command, Stdio},
};

#[test]
fn offline_demo_shows_the_conversation_with_real_tools() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(&["run", "agents/support.toml", "--offline"], data.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for expected in [
        "you › Hi! Where is my order A1001?",
        "→ lookup_order({\"order_id\":\"A1001\"})",
        "\"status\":\"shipped\"",
        "→ search_help_center(",
        "✗ lookup_order",
        "not found",
        "→ create_ticket(",
        "assistant › ",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // The ticket tool really wrote its store under the data directory.
    let tickets = std::fs::read_to_string(data.path().join("tickets.jsonl")).unwrap();
    assert_eq!(tickets.lines().count(), 2, "{tickets}");
}

#[test]
fn agent_test_passes_the_support_scenarios() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(&["test", "agents/support.toml"], data.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn agent_test_passes_the_billing_scenarios() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(&["test", "agents/billing.toml"], data.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

#[test]
fn agent_test_fails_when_an_expectation_fails() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.toml"),
        "name = \"a\"\ninstructions = \"x\"\ntools = [\"calculate\"]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.scenarios.toml"),
        r#"
[[scenario]]
name = "math"
[[scenario.turn]]
user = "2+2?"
  [[scenario.turn.model]]
  calls = [{ name = "calculate", arguments = { expression = "2+2" } }]
  [[scenario.turn.model]]
  say = "It is 4."
  [[scenario.turn.expect]]
  tool = "calculate"
  output_contains = "5"
"#,
    )
    .unwrap();
    let file = dir.path().join("a.toml");
    let out = agent(&["test", file.to_str().unwrap()], dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("0 passed, 1 failed"), "{stdout}");
}

#[test]
fn check_reports_file_line_col_and_close_tool_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "name = \"bad\"\ntools = [\"lookup_ordr\", \"current_time\"]\n",
    )
    .unwrap();
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("bad.toml:2:10: unknown tool `lookup_ordr`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `lookup_order`"), "{stderr}");

    std::fs::write(&file, "name = \"bad\"\n[limits]\nmax_cost = 3\n").unwrap();
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.toml:3:1: unknown field `max_cost`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn check_locates_invalid_utf8_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("latin1.toml");
    std::fs::write(&file, b"name = \"x\"\ninstructions = \"Caf\xE9\"\n").unwrap();
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    let location = format!("{}:2:20: agent file is not valid UTF-8", file.display());
    assert!(stderr.contains(&location), "{stderr}");
    assert_eq!(stderr.matches("not valid UTF-8").count(), 1, "{stderr}");
}

#[cfg(target_os = "linux")]
#[test]
fn check_refuses_a_device_as_instructions_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("zero.toml");
    std::fs::write(&file, "name = \"x\"\ninstructions_file = \"/dev/zero\"\n").unwrap();
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("zero.toml:2:21: instructions file /dev/zero is a character device"),
        "{stderr}"
    );
}

#[test]
fn check_prints_the_session_update() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(&["check", "agents/support.toml"], data.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let event: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(event["type"], "session.update");
    assert_eq!(event["session"]["type"], "realtime");
    let tools = event["session"]["tools"].as_array().unwrap();
    // Four tools, and the handoff to billing.toml.
    assert_eq!(tools.len(), 5);
    assert_eq!(tools[4]["name"], "transfer_to_billing");
}

#[test]
fn schema_describes_agent_files() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(&["schema"], data.path());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "name",
        "tools",
        "turn_detection",
        "connection",
        "limits",
        "handoffs",
        "handoff_description",
        "guardrails",
    ] {
        assert!(
            schema["properties"].get(key).is_some(),
            "no {key} in the schema"
        );
    }
    // The settings inside tables, through their definitions.
    let defined = |section: &str| {
        let reference = schema["properties"][section]["$ref"].as_str().unwrap();
        let name = reference.trim_start_matches("#/$defs/");
        schema["$defs"][name].clone()
    };
    let tool_options = defined("tool_options");
    for key in [
        "needs_approval",
        "approval_timeout_secs",
        "background",
        "background_timeout_secs",
        "filler_after_ms",
        "filler_instructions",
    ] {
        assert!(
            tool_options["properties"].get(key).is_some(),
            "no tool_options.{key} in the schema"
        );
    }
    let guardrails = defined("guardrails");
    for key in ["input", "output", "input_mode"] {
        assert!(
            guardrails["properties"].get(key).is_some(),
            "no guardrails.{key} in the schema: {guardrails}"
        );
    }
    let kinds: Vec<&str> = schema["$defs"]["GuardrailSpec"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|kind| kind["properties"]["type"]["const"].as_str())
        .collect();
    for kind in ["blocklist", "regex", "max_length", "rust"] {
        assert!(kinds.contains(&kind), "no guardrail kind {kind}: {kinds:?}");
    }
}

#[test]
fn live_mode_without_a_key_suggests_offline() {
    let data = tempfile::tempdir().unwrap();
    let out = agent(&["run", "agents/support.toml"], data.path());
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert!(stderr.contains("--offline"), "{stderr}");
}

#[test]
fn live_mode_against_a_loopback_server_with_piped_input_and_a_redacted_trace() {
    use agent_testkit::{
        scenario::ScenarioFile,
        server::{ScriptedServer, ServerConfig},
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scenarios = ScenarioFile::load(workspace().join("agents/support.scenarios.toml")).unwrap();
    let scenario = scenarios.get("follow-up and ticket").unwrap().clone();
    let server = runtime
        .block_on(async { ScriptedServer::start(ServerConfig::new(scenario)) })
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let trace = data.path().join("trace.jsonl");
    let secret = "sk-test-must-never-appear-0123456789";
    let mut child = Command::new(env!("CARGO_BIN_EXE_agent"))
        .args([
            "run",
            "agents/support.toml",
            "--url",
            &server.url(),
            // A loopback --url gets the key only when asked.
            "--send-key",
            "--trace",
        ])
        .arg(&trace)
        .current_dir(workspace())
        .env("AGENT_DATA_DIR", data.path())
        .env("OPENAI_API_KEY", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"What's the status of order A1003?\nIs that the backpack? Could it come sooner?\n\
              It's already late and I need it for a trip. Please have someone contact me.\n",
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    // Exits after the last reply, having run every tool of the conversation, and ends with
    // the usage summary.
    assert!(stdout.contains("→ create_ticket("), "{stdout}");
    let last_reply = stdout
        .find("a colleague will contact you soon.")
        .expect("the last reply is shown");
    let summary = stdout
        .find("── usage, cost and latency ──")
        .expect("a summary");
    assert!(last_reply < summary, "{stdout}");

    let requests = runtime.block_on(server.requests());
    assert!(
        requests[0].has_authorization,
        "the key is sent in the Authorization header"
    );
    let trace_text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        !trace_text.contains(secret),
        "the API key leaked into the trace"
    );
    let lines: Vec<serde_json::Value> = trace_text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["dir"] == "sent" && l["event"]["type"] == "session.update")
    );
    assert!(
        lines
            .iter()
            .any(|l| l["dir"] == "received" && l["event"]["type"] == "response.done")
    );
    assert!(lines.iter().all(|l| l["ts_ms"].is_u64()));
    assert!(!text(&out.stderr).contains(secret));
    runtime.block_on(server.shutdown());
}

#[test]
fn completions_are_written_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().expect("temp dir");
    for shell in ["bash", "zsh", "fish"] {
        let output = common::agent(&["completions", shell], dir.path());
        assert!(
            output.status.success(),
            "{shell}: {}",
            common::text(&output.stderr)
        );
        let script = common::text(&output.stdout);
        assert!(script.len() > 200, "{shell}: a script, not {script:?}");
        assert!(script.contains("agent"), "{shell}: {script}");
        // The subcommands are in it.
        assert!(
            script.contains("history") && script.contains("mock"),
            "{shell}"
        );
    }
    let unknown = common::agent(&["completions", "tcsh"], dir.path());
    assert!(!unknown.status.success());
}
