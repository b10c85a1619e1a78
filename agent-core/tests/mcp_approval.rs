//! Hosted MCP servers' approval requests, end to end against the scripted server: the request
//! is announced like a tool's (`ApprovalRequested`, kind `Mcp`), and the app's answer goes back
//! as an `mcp_approval_response` item followed by one `response.create`. Denied or unanswered,
//! the response says `approve: false`; each request is answered once; the request and the answer
//! enter the history and are replayed after a reconnect.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use agent_core::{
    protocol::{Dialect, Item},
    session::{ApprovalKind, HistorySink, ReconnectPolicy, Session, SessionEvent},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedMcpApproval, Turn},
    server::{ConnectionFaults, Direction, Faults, ServerConfig, ServerHandle},
};
use common::harness::*;
use serde_json::{Value, json};

/// The agent declares the hosted server; the scripted server never contacts its URL.
const MCP_SERVER: &str = "[[mcp_servers]]\nserver_label = \"wiki\"\n\
    server_url = \"https://mcp.invalid/wiki\"\nrequire_approval = \"always\"\n";

fn scenario() -> Scenario {
    Scenario::new("mcp approval").turn(
        Turn::user("ask the wiki")
            .model(ModelStep::mcp_approval(ScriptedMcpApproval::new(
                "wiki",
                "ask_question",
                json!({"repo": "a/b"}),
            )))
            .model(ModelStep::say("The wiki says hello.")),
    )
}

/// Captures what the runtime hands to durable storage.
#[derive(Default)]
struct Captured(Mutex<Vec<(String, Item)>>);

impl HistorySink for Captured {
    fn append(&self, key: &str, item: &Item) {
        self.0.lock().unwrap().push((key.to_owned(), item.clone()));
    }
}

async fn start_mcp(
    config: ServerConfig,
    timeout: Duration,
) -> (ServerHandle, Session, Arc<Captured>) {
    let h = harness(MCP_SERVER);
    let captured = Arc::new(Captured::default());
    let sink = captured.clone();
    let (server, session) = start_with(&h, config, |c| {
        c.approval.timeout = timeout;
        c.history_sink = Some(sink);
        c.reconnect = ReconnectPolicy {
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            ..ReconnectPolicy::default()
        };
    })
    .await;
    (server, session, captured)
}

/// Waits for the MCP approval request; returns its id and the events before it.
async fn approval_request(session: &mut Session) -> (String, Vec<SessionEvent>) {
    let mut before = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, session.events.recv())
            .await
            .expect("an approval request within 10 s")
            .expect("the session runs");
        if let SessionEvent::ApprovalRequested {
            id,
            kind,
            name,
            arguments,
            ..
        } = &event
        {
            assert_eq!(
                kind,
                &ApprovalKind::Mcp {
                    server_label: "wiki".into()
                }
            );
            assert_eq!(name, "ask_question");
            assert_eq!(arguments, r#"{"repo":"a/b"}"#);
            return (id.clone(), before);
        }
        before.push(event);
    }
}

fn decided(events: &[SessionEvent]) -> Vec<(String, bool, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ApprovalDecided {
                name,
                approved,
                how,
                ..
            } => Some((name.clone(), *approved, how.clone())),
            _ => None,
        })
        .collect()
}

/// The `mcp_approval_response` items the client sent, and what it sent right after each.
async fn answers(server: &ServerHandle) -> Vec<(Value, Vec<String>)> {
    let events = received(server).await;
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["item"]["type"] == "mcp_approval_response")
        .map(|(i, e)| (e["item"].clone(), types(&events[i + 1..])))
        .collect()
}

#[tokio::test]
async fn an_approved_request_is_answered_and_the_model_goes_on() {
    let (server, mut session, captured) =
        start_mcp(ServerConfig::new(scenario()), Duration::from_secs(30)).await;
    session.handle.send_text("ask the wiki").await.unwrap();
    let (id, before) = approval_request(&mut session).await;
    assert!(
        !before.iter().any(|e| matches!(e, SessionEvent::Idle)),
        "not idle before the request"
    );
    assert!(session.handle.approve(&id));
    assert!(!session.handle.approve(&id), "an answer is taken once");
    let events = until_idle(&mut session).await;
    assert_eq!(
        decided(&events),
        [("ask_question".to_owned(), true, "approved".to_owned())]
    );
    assert_eq!(reply_text(&events), "The wiki says hello.");

    let answers = answers(&server).await;
    assert_eq!(answers.len(), 1, "{answers:?}");
    let (item, after) = &answers[0];
    assert_eq!(item["approval_request_id"], id.as_str());
    assert_eq!(item["approve"], true);
    assert!(item.get("reason").is_none(), "{item}");
    assert!(item["id"].as_str().is_some_and(|i| !i.is_empty()));
    assert_eq!(after, &["response.create"], "one response follows");

    // The request and the answer are in the history, in order, between the turn's messages.
    let kinds: Vec<String> = captured
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, item)| item.item_type().to_owned())
        .collect();
    assert_eq!(
        kinds,
        [
            "message",
            "mcp_approval_request",
            "mcp_approval_response",
            "message"
        ]
    );
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    assert_no_violations(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_denied_request_says_so_with_the_reason() {
    let (server, mut session, _) =
        start_mcp(ServerConfig::new(scenario()), Duration::from_secs(30)).await;
    session.handle.send_text("ask the wiki").await.unwrap();
    let (id, _) = approval_request(&mut session).await;
    assert!(session.handle.deny(&id, Some("not that repo".into())));
    let events = until_idle(&mut session).await;
    assert_eq!(
        decided(&events),
        [(
            "ask_question".to_owned(),
            false,
            "denied: not that repo".to_owned()
        )]
    );
    let answers = answers(&server).await;
    let (item, after) = &answers[0];
    assert_eq!(item["approve"], false);
    assert_eq!(item["reason"], "denied: not that repo");
    assert_eq!(after, &["response.create"]);
    // The model still answers, once.
    assert_eq!(reply_text(&events), "The wiki says hello.");
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    assert_no_violations(&server).await;
    server.shutdown().await;
}

#[tokio::test]
async fn no_answer_in_time_is_a_denial() {
    let (server, mut session, _) =
        start_mcp(ServerConfig::new(scenario()), Duration::from_millis(200)).await;
    session.handle.send_text("ask the wiki").await.unwrap();
    let (id, _) = approval_request(&mut session).await;
    let events = until_idle(&mut session).await;
    assert_eq!(
        decided(&events),
        [(
            "ask_question".to_owned(),
            false,
            "no answer within 0.2 s".to_owned()
        )]
    );
    assert!(!session.handle.approve(&id), "too late: nothing waits");
    let answers = answers(&server).await;
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].0["approve"], false);
    assert_eq!(answers[0].0["reason"], "no answer within 0.2 s");
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    assert_no_violations(&server).await;
    server.shutdown().await;
}

/// How many frames the server sends on the first connection up to the approval request's
/// `response.done`, in a run without faults.
async fn frames_through_the_request() -> usize {
    let (server, mut session, _) =
        start_mcp(ServerConfig::new(scenario()), Duration::from_secs(30)).await;
    session.handle.send_text("ask the wiki").await.unwrap();
    let (id, _) = approval_request(&mut session).await;
    session.handle.approve(&id);
    until_idle(&mut session).await;
    session.handle.close().await.unwrap();
    let sent: Vec<Value> = server
        .log()
        .await
        .into_iter()
        .filter(|f| f.connection == 0 && f.direction == Direction::FromServer)
        .filter_map(|f| f.value)
        .collect();
    server.shutdown().await;
    sent.iter()
        .position(|e| e["type"] == "response.done")
        .expect("a response.done")
        + 1
}

#[tokio::test]
async fn a_request_waiting_through_a_reconnect_is_replayed_then_answered() {
    let drop_after = frames_through_the_request().await;
    let faults = Faults::none().on_connection(0, ConnectionFaults::new().drop_after(drop_after));
    let (server, mut session, _) = start_mcp(
        ServerConfig::new(scenario()).faults(faults),
        Duration::from_secs(30),
    )
    .await;
    session.handle.send_text("ask the wiki").await.unwrap();
    let (id, _) = approval_request(&mut session).await;
    // The socket drops after the request's response; approve once the new one is up.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, session.events.recv())
            .await
            .expect("a reconnect within 10 s")
            .expect("the session runs");
        if matches!(event, SessionEvent::Reconnected { .. }) {
            break;
        }
    }
    assert!(session.handle.approve(&id));
    let events = until_idle(&mut session).await;
    assert_eq!(reply_text(&events), "The wiki says hello.");

    let second: Vec<Value> = server
        .received()
        .await
        .into_iter()
        .filter(|e| e.connection == 1)
        .filter_map(|e| e.value)
        .collect();
    let kinds = types(&second);
    let replayed = kinds
        .iter()
        .position(|k| k == "conversation.item.create:mcp_approval_request")
        .expect("the request is replayed");
    let answered = kinds
        .iter()
        .position(|k| k == "conversation.item.create:mcp_approval_response")
        .expect("the answer goes on the new connection");
    assert!(replayed < answered, "{kinds:?}");
    assert_eq!(second[replayed]["item"]["id"], id.as_str());
    assert_eq!(
        kinds.get(answered + 1).map(String::as_str),
        Some("response.create")
    );
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    assert_no_violations(&server).await;
    server.shutdown().await;
}
