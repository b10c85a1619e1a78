//! An idempotent retry, end to end: the demo's `create_ticket` run by the session runtime for
//! the same call of the same conversation twice gives one ticket. That happens when the store
//! that should have said "this call already ran" cannot (a restore from a backup taken while
//! the call ran, a second node that read before the first node's record landed): the tool is
//! the last line of defence, and the call's idempotency key is what it holds the line with.

use std::sync::Arc;

use agent_core::{
    agent::{AgentFile, ConnectOverrides},
    protocol::Item,
    session::{HistorySink, Session, SessionEvent},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ScriptedServer, ServerConfig},
};
use serde_json::json;

/// A store that knows the conversation but not its calls: every call looks new to it.
struct Forgetful;

impl HistorySink for Forgetful {
    fn append(&self, _: &str, _: &Item) {}

    fn conversation_id(&self) -> Option<String> {
        Some("conv_retry".to_owned())
    }
}

fn scenario() -> Scenario {
    Scenario::new("ticket").turn(
        Turn::user("my order is late, please escalate")
            .model(ModelStep::calls(vec![ScriptedCall::new(
                "create_ticket",
                json!({"subject": "Late order", "description": "Order A1003 is late.",
                    "priority": "high"}),
            )]))
            .model(ModelStep::say("I opened a ticket.")),
    )
}

/// Runs the scenario's one turn in a new session on a new server (so the model's call comes
/// with the same call id), and returns the tool's output.
async fn run_once(agent: &agent_core::agent::Agent) -> String {
    let server = ScriptedServer::start(ServerConfig::new(scenario())).unwrap();
    let overrides = ConnectOverrides {
        url: Some(server.url()),
        key_optional: true,
        ..Default::default()
    };
    let mut config = agent.session_config(&overrides, None).unwrap();
    config.history_sink = Some(Arc::new(Forgetful));
    let mut session = Session::start(config).await.unwrap();
    session
        .handle
        .send_text("my order is late, please escalate")
        .await
        .unwrap();
    let mut output = None;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, session.events.recv())
            .await
            .expect("the turn ends within 20 s")
            .expect("the session runs");
        match event {
            SessionEvent::ToolCallFinished { name, result, .. } if name == "create_ticket" => {
                output = Some(result.expect("the ticket is created").as_str().to_owned());
            }
            SessionEvent::Idle if output.is_some() => break,
            SessionEvent::Closed { reason } => panic!("closed: {reason:?}"),
            _ => {}
        }
    }
    session.handle.close().await.unwrap();
    server.shutdown().await;
    output.unwrap()
}

#[tokio::test]
async fn the_same_call_run_again_returns_the_same_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "name = \"tickets\"\ninstructions = \"Open tickets.\"\ntools = [\"create_ticket\"]\n\
         data_dir = {:?}\n",
        dir.path().display().to_string()
    );
    let agent = AgentFile::parse(dir.path().join("tickets.toml"), text)
        .unwrap()
        .resolve(&agent_tools::registry().unwrap())
        .unwrap();
    let first = run_once(&agent).await;
    let again = run_once(&agent).await;
    let ticket = |output: &str| -> String {
        let value: serde_json::Value = serde_json::from_str(output).unwrap();
        value["ticket_id"].as_str().unwrap().to_owned()
    };
    assert!(ticket(&first).starts_with("T-"), "{first}");
    assert_eq!(
        ticket(&again),
        ticket(&first),
        "the retry opened another ticket"
    );
    let tickets = std::fs::read_to_string(dir.path().join("tickets.jsonl")).unwrap();
    assert_eq!(tickets.lines().count(), 1, "{tickets}");
    assert!(
        tickets.contains("\"idempotency_key\":\"conv_retry:"),
        "{tickets}"
    );
}
