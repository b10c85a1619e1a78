//! Tool approval from the command line: `agent test` plays a scenario's scripted answers
//! (approve, deny), `agent check` refuses a `needs_approval` that names no tool, and `agent
//! run` asks at the terminal, where the next line answers.

mod common;

use std::time::Duration;

use common::{Background, agent, agent_with_input, text};

/// How long any one command may take.
const LIMIT: Duration = Duration::from_secs(60);

const AGENT: &str = "name = \"desk\"\ninstructions = \"Open tickets.\"\ntools = [\"create_ticket\"]\n\n[tool_options]\nneeds_approval = [\"create_ticket\"]\napproval_timeout_secs = 10\n";

const SCENARIOS: &str = r#"
[[scenario]]
name = "approved, then denied"

[[scenario.turn]]
user = "Open a ticket about my late order."
approvals = { create_ticket = "approve" }

  [[scenario.turn.model]]
  calls = [{ name = "create_ticket", arguments = { subject = "Late order", description = "Order A1003 is late.", priority = "high" } }]

  [[scenario.turn.model]]
  say = "I opened a ticket."

  [[scenario.turn.expect]]
  tool = "create_ticket"
  output_contains = "ticket_id"
  output_is_error = false

[[scenario.turn]]
user = "And another one."
approvals = { create_ticket = "deny" }

  [[scenario.turn.model]]
  calls = [{ name = "create_ticket", arguments = { subject = "Again", description = "Another.", priority = "low" } }]

  [[scenario.turn.model]]
  say = "I could not open it."

  [[scenario.turn.expect]]
  tool = "create_ticket"
  output_contains = "not_approved"
  output_is_error = true
"#;

/// The agent and its scenarios in a fresh folder (which is also the tools' data directory).
fn desk() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("desk.toml"), AGENT).unwrap();
    std::fs::write(dir.path().join("desk.scenarios.toml"), SCENARIOS).unwrap();
    dir
}

fn tickets(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("tickets.jsonl"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn agent_test_plays_the_scenarios_answers() {
    let dir = desk();
    let file = dir.path().join("desk.toml");
    let out = agent(&["test", file.to_str().unwrap()], dir.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(tickets(dir.path()), 1, "only the approved call ran");
}

#[test]
fn agent_check_refuses_an_approval_for_a_tool_the_agent_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("desk.toml");
    std::fs::write(
        &file,
        AGENT.replace(
            "needs_approval = [\"create_ticket\"]",
            "needs_approval = [\"create_tiket\"]",
        ),
    )
    .unwrap();
    let out = agent(&["check", file.to_str().unwrap()], dir.path());
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`needs_approval` names `create_tiket`")
            && stderr.contains("did you mean `create_ticket`?"),
        "{stderr}"
    );
}

#[test]
fn agent_run_asks_at_the_terminal_and_the_next_line_answers() {
    let dir = desk();
    let file = dir.path().join("desk.toml");
    let file = file.to_str().unwrap();
    let mock = Background::start(&["mock", file], "ws://", dir.path(), LIMIT);
    // The second line answers the approval; the third is the next message, refused with a
    // reason of the user's own.
    let out = agent_with_input(
        &["run", file, "--url", &mock.url, "--no-history"],
        "Open a ticket about my late order.\ny\nAnd another one.\nnot today\n",
        dir.path(),
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("? approve create_ticket("),
        "the terminal asks: {stdout}"
    );
    assert!(stdout.contains("✓ create_ticket: approved"), "{stdout}");
    assert!(
        stdout.contains("✗ create_ticket: denied: not today"),
        "{stdout}"
    );
    assert_eq!(tickets(dir.path()), 1);
}

/// An agent whose only tools are a hosted MCP server's, each call approved by a person. The
/// scripted server plays the API's side; nothing contacts the server's URL.
const WIKI_AGENT: &str = "name = \"wiki\"\ninstructions = \"Answer from the wiki.\"\n\n[tool_options]\napproval_timeout_secs = 1\n\n[[mcp_servers]]\nserver_label = \"wiki\"\nserver_url = \"https://mcp.invalid/wiki\"\nrequire_approval = \"always\"\n";

const WIKI_SCENARIOS: &str = r#"
[[scenario]]
name = "approved, denied, unanswered"

[[scenario.turn]]
user = "What does the repo do?"
approvals = { ask_question = "approve" }

  [[scenario.turn.model]]
  mcp_approval = { server_label = "wiki", name = "ask_question", arguments = { repo = "a/b" } }

  [[scenario.turn.model]]
  say = "It is a voice agent."

  [[scenario.turn.expect]]
  approval = "ask_question"
  approved = true

[[scenario.turn]]
user = "And its licence?"
approvals = { ask_question = "deny" }

  [[scenario.turn.model]]
  mcp_approval = { server_label = "wiki", name = "ask_question", arguments = '{"repo": "a/b", "q": "licence"}' }

  [[scenario.turn.model]]
  say = "I may not ask."

  [[scenario.turn.expect]]
  approval = "ask_question"
  approved = false

[[scenario.turn]]
user = "Its author?"
approvals = { ask_question = "wait" }

  [[scenario.turn.model]]
  mcp_approval = { server_label = "wiki", name = "ask_question" }

  [[scenario.turn.model]]
  say = "Nobody answered."

  [[scenario.turn.expect]]
  approval = "ask_question"
  approved = false
"#;

fn wiki(scenarios: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wiki.toml"), WIKI_AGENT).unwrap();
    std::fs::write(dir.path().join("wiki.scenarios.toml"), scenarios).unwrap();
    dir
}

#[test]
fn agent_test_answers_mcp_approval_requests_as_scripted() {
    let dir = wiki(WIKI_SCENARIOS);
    let file = dir.path().join("wiki.toml");
    let out = agent(&["test", file.to_str().unwrap()], dir.path());
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));

    // The expectation is checked, not just parsed: the wrong outcome fails the run.
    let wrong = WIKI_SCENARIOS.replacen("approved = true", "approved = false", 1);
    let dir = wiki(&wrong);
    let file = dir.path().join("wiki.toml");
    let out = agent(&["test", file.to_str().unwrap()], dir.path());
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("`ask_question` was approved, expected it not approved"),
        "{stdout}"
    );
}

#[test]
fn agent_run_asks_about_an_mcp_call_at_the_terminal() {
    let dir = wiki(WIKI_SCENARIOS);
    let file = dir.path().join("wiki.toml");
    let file = file.to_str().unwrap();
    let mock = Background::start(&["mock", file], "ws://", dir.path(), LIMIT);
    let out = agent_with_input(
        &["run", file, "--url", &mock.url, "--no-history"],
        "What does the repo do?\ny\n",
        dir.path(),
        LIMIT,
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("? approve ask_question (MCP server `wiki`)("),
        "the terminal asks: {stdout}"
    );
    assert!(stdout.contains("✓ ask_question: approved"), "{stdout}");
    assert!(stdout.contains("It is a voice agent."), "{stdout}");
}
