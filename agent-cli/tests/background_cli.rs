//! Background tools from the command line: `agent test` plays a scenario whose tool runs in
//! the background (the model says it started, then answers with the result), and `agent
//! check` refuses a `background` that names no tool.

mod common;

use common::{agent, text};

const AGENT: &str = "name = \"desk\"\ninstructions = \"Open tickets.\"\ntools = [\"create_ticket\"]\n\n[tool_options]\nbackground = [\"create_ticket\"]\nbackground_timeout_secs = 30\nfiller_after_ms = 1500\n";

const SCENARIOS: &str = r#"
[[scenario]]
name = "a ticket opened in the background"

[[scenario.turn]]
user = "Open a ticket about my late order."

  [[scenario.turn.model]]
  calls = [{ name = "create_ticket", arguments = { subject = "Late order", description = "Order A1003 is late.", priority = "high" } }]

  [[scenario.turn.model]]
  say = "I am opening a ticket; it takes a moment."

  [[scenario.turn.model]]
  say = "Your ticket is open."

  [[scenario.turn.expect]]
  tool = "create_ticket"
  output_contains = "ticket_id"
  output_is_error = false

  [[scenario.turn.expect]]
  reply_contains = "Your ticket is open."
"#;

fn desk(agent_file: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("desk.toml"), agent_file).unwrap();
    std::fs::write(dir.path().join("desk.scenarios.toml"), SCENARIOS).unwrap();
    dir
}

#[test]
fn agent_test_plays_a_background_call_and_its_result() {
    let dir = desk(AGENT);
    let file = dir.path().join("desk.toml");
    let out = agent(&["test", file.to_str().unwrap()], dir.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let tickets = std::fs::read_to_string(dir.path().join("tickets.jsonl")).unwrap();
    assert_eq!(tickets.lines().count(), 1, "the call ran once");
}

#[test]
fn agent_check_refuses_a_background_tool_the_agent_lacks() {
    let dir = desk(&AGENT.replace(
        "background = [\"create_ticket\"]",
        "background = [\"create_tiket\"]",
    ));
    let file = dir.path().join("desk.toml");
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`background` names `create_tiket`")
            && stderr.contains("did you mean `create_ticket`?"),
        "{stderr}"
    );
}
