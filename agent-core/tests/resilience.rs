//! Resilience against the scripted server: the fault matrix (drop the connection at every event
//! index of a conversation with several tool calls), rollover on a session-expired error, and
//! malformed or unknown frames mid-stream.

mod common;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use agent_core::{
    protocol::{Dialect, Item},
    session::{HistorySink, ReconnectPolicy, SessionEvent, compact},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ConnectionFaults, Faults, ServerConfig},
};
use common::harness::*;
use serde_json::json;

/// Captures what the runtime hands to durable storage.
#[derive(Default)]
struct Captured(Mutex<Vec<(String, Item)>>);

impl HistorySink for Captured {
    fn append(&self, key: &str, item: &Item) {
        self.0.lock().unwrap().push((key.to_owned(), item.clone()));
    }
}

fn conversation() -> Scenario {
    Scenario::new("fault matrix")
        .turn(
            Turn::user("first question")
                .model(ModelStep::say("Let me check.").call(ScriptedCall::new("quick", json!({}))))
                .model(ModelStep::say("First answer.")),
        )
        .turn(
            Turn::user("second question")
                .model(ModelStep::calls([
                    ScriptedCall::new("count", json!({"n": 1})),
                    ScriptedCall::new("count", json!({"n": 2})),
                ]))
                .model(ModelStep::say("Second answer.")),
        )
        .turn(Turn::user("thanks").model(ModelStep::say("You're welcome.")))
}

struct Run {
    history: Vec<(String, Item)>,
    executions: HashMap<String, usize>,
    reconnects: usize,
    sent: usize,
}

async fn run_conversation(faults: Faults) -> Run {
    let h = harness("");
    let captured = Arc::new(Captured::default());
    let sink = captured.clone();
    let (server, mut session) =
        start_with(&h, ServerConfig::new(conversation()).faults(faults), |c| {
            c.history_sink = Some(sink);
            c.reconnect = ReconnectPolicy {
                base_delay: Duration::from_millis(2),
                max_delay: Duration::from_millis(20),
                ..ReconnectPolicy::default()
            };
        })
        .await;
    let mut reconnects = 0;
    for text in ["first question", "second question", "thanks"] {
        session.handle.send_text(text).await.unwrap();
        reconnects += until_idle(&mut session)
            .await
            .iter()
            .filter(|e| matches!(e, SessionEvent::Reconnected { .. }))
            .count();
    }
    let mut executions = HashMap::new();
    for line in h
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("start"))
    {
        let call_id = line.rsplit(' ').next().unwrap().to_owned();
        *executions.entry(call_id).or_insert(0) += 1;
    }
    let sent = server.sent_counts().await.first().copied().unwrap_or(0);
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
    let history = captured.0.lock().unwrap().clone();
    Run {
        history,
        executions,
        reconnects,
        sent,
    }
}

fn items(run: &Run) -> Vec<serde_json::Value> {
    run.history
        .iter()
        .map(|(_, item)| serde_json::to_value(item).unwrap())
        .collect()
}

#[tokio::test]
async fn the_fault_matrix_loses_nothing_and_runs_each_call_once() {
    let baseline = run_conversation(Faults::none()).await;
    assert_eq!(baseline.reconnects, 0);
    assert_eq!(baseline.executions.len(), 3, "{:?}", baseline.executions);
    // user, assistant, call, output, assistant; user, 2 calls, 2 outputs, assistant; user, assistant.
    assert_eq!(baseline.history.len(), 13, "{:#?}", baseline.history);
    let expected = items(&baseline);

    // Drop after every event from session.created (index 1) to the last response.done.
    let positions = 1..baseline.sent;
    let covered = positions.len();
    for drop_after in positions {
        let run = run_conversation(
            Faults::none().on_connection(0, ConnectionFaults::new().drop_after(drop_after)),
        )
        .await;
        assert!(
            run.executions.values().all(|n| *n == 1),
            "drop after {drop_after}: a call ran twice: {:?}",
            run.executions
        );
        assert_eq!(
            run.executions.len(),
            3,
            "drop after {drop_after}: {:?}",
            run.executions
        );
        let history = items(&run);
        assert_eq!(
            by_turn(&history),
            by_turn(&expected),
            "drop after {drop_after}: the history differs"
        );
        outputs_follow_their_calls(&history, drop_after);
    }
    common::spec::report(format!(
        "fault matrix: covered {covered} drop positions (events 1..{}), all complete, every call ran once, history the same turn by turn",
        baseline.sent
    ));
}

/// The history turn by turn: each turn's messages in order, and its calls and outputs as sets
/// (sorted by call id). A drop in the middle of a response with two calls may split them: the
/// call the server had emitted is answered first, then the model, seeing its output, emits the
/// other. The same calls and outputs either way, each once.
fn by_turn(items: &[serde_json::Value]) -> Vec<[Vec<serde_json::Value>; 3]> {
    let mut turns: Vec<[Vec<serde_json::Value>; 3]> = Vec::new();
    for item in items {
        if item["type"] == "message" && item["role"] == "user" || turns.is_empty() {
            turns.push(Default::default());
        }
        let turn = turns.last_mut().unwrap();
        match item["type"].as_str() {
            Some("function_call") => turn[1].push(item.clone()),
            Some("function_call_output") => turn[2].push(item.clone()),
            _ => turn[0].push(item.clone()),
        }
    }
    for turn in &mut turns {
        turn[1].sort_by_key(|c| c["call_id"].to_string());
        turn[2].sort_by_key(|c| c["call_id"].to_string());
    }
    turns
}

/// Every output comes after its call, so a replay never answers a call the model has not made.
fn outputs_follow_their_calls(items: &[serde_json::Value], drop_after: usize) {
    for (at, item) in items.iter().enumerate() {
        if item["type"] == "function_call_output" {
            let call_at = items
                .iter()
                .position(|c| c["type"] == "function_call" && c["call_id"] == item["call_id"]);
            assert!(
                call_at.is_some_and(|c| c < at),
                "drop after {drop_after}: output before its call: {items:#?}"
            );
        }
    }
}

#[tokio::test]
async fn a_session_expired_error_rolls_over_and_the_conversation_goes_on() {
    let h = harness("");
    let scenario = Scenario::new("expiry")
        .turn(Turn::user("one").model(ModelStep::say("first")))
        .turn(
            Turn::user("two")
                .model(ModelStep::calls([ScriptedCall::new("quick", json!({}))]))
                .model(ModelStep::say("second")),
        );
    // The first connection expires right after the first answer.
    let faults = Faults::none().on_connection(0, ConnectionFaults::new().session_expired_after(12));
    let (server, mut session) = start(&h, ServerConfig::new(scenario).faults(faults)).await;
    session.handle.send_text("one").await.unwrap();
    let mut events = until_idle(&mut session).await;
    session.handle.send_text("two").await.unwrap();
    events.extend(until_idle(&mut session).await);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::Reconnected { .. })),
        "{events:#?}"
    );
    let replies = reply_text(&events);
    assert!(replies.ends_with("second"), "{replies}");
    assert!(server.connections() >= 2);
    // The new session got the earlier conversation replayed.
    let second: Vec<String> = server
        .received()
        .await
        .into_iter()
        .filter(|e| e.connection == 1)
        .filter_map(|e| e.value)
        .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(second[0], "session.update", "{second:?}");
    assert!(
        second
            .iter()
            .filter(|t| *t == "conversation.item.create")
            .count()
            >= 2
    );
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_frames_and_unknown_events_are_skipped_with_a_warning() {
    let h = harness("");
    let scenario = Scenario::new("noise").turn(
        Turn::user("hello")
            .model(ModelStep::calls([ScriptedCall::new("quick", json!({}))]))
            .model(ModelStep::say("still fine")),
    );
    let faults = Faults::none().on_every_connection(
        ConnectionFaults::new()
            .noise(true)
            .malformed_after(3)
            .malformed_after(9),
    );
    let (server, mut session) = start(&h, ServerConfig::new(scenario).faults(faults)).await;
    session.handle.send_text("hello").await.unwrap();
    let events = until_idle(&mut session).await;
    let warnings = events
        .iter()
        .filter(|e| matches!(e, SessionEvent::Warning { .. }))
        .count();
    assert!(warnings >= 1, "{events:#?}");
    let reply = reply_text(&events);
    assert_eq!(reply, "still fine");
    assert_no_violations(&server).await;
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_resumed_conversation_is_replayed_before_new_input() {
    let h = harness("");
    let scenario = Scenario::new("resume")
        .turn(Turn::user("earlier").model(ModelStep::say("earlier answer")))
        .turn(Turn::user("later").model(ModelStep::say("later answer")));
    let history = vec![
        ("local_000001".to_owned(), Item::user_text("earlier")),
        ("item:a".to_owned(), Item::assistant_text("earlier answer")),
    ];
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        c.history = history;
    })
    .await;
    session.handle.send_text("later").await.unwrap();
    let events = until_idle(&mut session).await;
    let reply = reply_text(&events);
    assert_eq!(reply, "later answer");
    // The stored conversation went in before the new message.
    let kinds: Vec<String> = server
        .received()
        .await
        .into_iter()
        .filter_map(|e| e.value)
        .map(|v| {
            format!(
                "{}:{}",
                v["type"].as_str().unwrap_or(""),
                v["item"]["role"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "session.update:",
            "conversation.item.create:user",
            "conversation.item.create:assistant",
            "conversation.item.create:user",
            "response.create:"
        ]
    );
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn compaction_folds_old_turns_when_replaying() {
    let h = harness("[limits]\nreplay_keep_turns = 1\n");
    let scenario = Scenario::new("compact").turn(Turn::user("three").model(ModelStep::say("ok")));
    let mut history = Vec::new();
    for (n, text) in ["one", "two"].iter().enumerate() {
        history.push((format!("local_{n}"), Item::user_text(*text)));
        history.push((
            format!("item:{n}"),
            Item::assistant_text(format!("answer {text}")),
        ));
    }
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        c.history = history;
    })
    .await;
    session.handle.send_text("three").await.unwrap();
    until_idle(&mut session).await;
    let items: Vec<serde_json::Value> = server
        .received()
        .await
        .into_iter()
        .filter_map(|e| e.value)
        .filter(|v| v["type"] == "conversation.item.create")
        .map(|v| v["item"].clone())
        .collect();
    // A note, a summary of turn one, turn two verbatim, then the new message.
    assert_eq!(items.len(), 5, "{items:#?}");
    assert_eq!(items[0]["role"], "system");
    assert_eq!(items[0]["content"][0]["text"], compact::SUMMARY_NOTE);
    // The quotes go in the user role, never the system role.
    assert_eq!(items[1]["role"], "user");
    let summary = items[1]["content"][0]["text"].as_str().unwrap();
    assert!(
        summary.contains("User: \"one\"") && summary.contains("Assistant: \"answer one\""),
        "{summary}"
    );
    assert_eq!(items[2]["content"][0]["text"], "two");
    assert_eq!(items[4]["content"][0]["text"], "three");
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_final_close_code_ends_the_session_without_retrying() {
    let h = harness("");
    let scenario = Scenario::new("policy").turn(Turn::user("x").model(ModelStep::say("y")));
    let faults = Faults::none().on_every_connection(ConnectionFaults::new().close_after(
        3,
        1008,
        "policy violation",
    ));
    let (server, mut session) = start(&h, ServerConfig::new(scenario).faults(faults)).await;
    session.handle.send_text("x").await.unwrap();
    let reason = loop {
        match tokio::time::timeout(Duration::from_secs(10), session.events.recv())
            .await
            .expect("the session ends promptly")
        {
            Some(SessionEvent::Closed { reason }) => break reason,
            Some(SessionEvent::Reconnecting { .. }) => panic!("a final close must not be retried"),
            Some(_) => {}
            None => panic!("no Closed event"),
        }
    };
    let shown = format!("{reason:?}");
    assert!(shown.contains("Fatal") && shown.contains("1008"), "{shown}");
    assert_eq!(server.connections(), 1);
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}
