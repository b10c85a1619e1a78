//! A long session with a history store keeps only a window of the conversation in memory: a
//! reconnect still replays all of it (read back from the store), and a call id the session no
//! longer holds in memory is answered from the store's records instead of running again.

mod common;

use std::time::Duration;

use agent_core::{
    history::{HistoryStore, HistoryWriter, StoredItem},
    protocol::{Dialect, Item},
    session::{LOG_WINDOW, NotRun, ReconnectPolicy, SessionEvent},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ConnectionFaults, Faults, ScriptScope, ServerConfig},
};
use common::harness::*;
use serde_json::json;

/// `turns` turns of: a user message, one call to `quick`, then a short answer (4 items).
fn turns(turns: usize) -> Scenario {
    (0..turns).fold(Scenario::new("long"), |scenario, n| {
        scenario.turn(
            Turn::user(format!("turn {n}"))
                .model(ModelStep::calls([ScriptedCall::new("quick", json!({}))]))
                .model(ModelStep::say(format!("answer {n}"))),
        )
    })
}

/// A store on a fresh file, its writer, and one conversation in it.
fn store() -> (
    tempfile::TempDir,
    HistoryWriter,
    agent_core::history::ConversationId,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = HistoryStore::open(dir.path().join("history.sqlite3")).unwrap();
    let id = store.create_conversation("test", "m").unwrap();
    (dir, HistoryWriter::spawn(store).unwrap(), id)
}

fn quick_reconnects(c: &mut agent_core::session::SessionConfig) {
    c.reconnect = ReconnectPolicy {
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
        ..ReconnectPolicy::default()
    };
}

/// Frames the server sends over `n` turns of [`turns`] on one connection.
async fn frames_sent(n: usize) -> usize {
    let h = harness("");
    let (server, mut session) = start(&h, ServerConfig::new(turns(n))).await;
    for turn in 0..n {
        session
            .handle
            .send_text(format!("turn {turn}"))
            .await
            .unwrap();
        until_idle(&mut session).await;
    }
    let sent = server.sent_counts().await[0];
    session.handle.close().await.unwrap();
    server.shutdown().await;
    sent
}

#[tokio::test]
async fn a_reconnect_replays_what_left_memory_from_the_store() {
    // 40 turns are 160 items, well past the in-memory window.
    let before_drop = 40;
    assert!(4 * before_drop > 2 * LOG_WINDOW);
    let sent = frames_sent(before_drop).await;
    let (_dir, writer, id) = store();
    let h = harness("");
    let sink = writer.conversation(id.clone());
    let faults = Faults::none().on_connection(0, ConnectionFaults::new().drop_after(sent + 1));
    let config = ServerConfig::new(turns(before_drop + 1)).faults(faults);
    let (server, mut session) = start_with(&h, config, |c| {
        c.history_sink = Some(std::sync::Arc::new(sink));
        quick_reconnects(c);
    })
    .await;
    let mut replayed = None;
    for turn in 0..=before_drop {
        session
            .handle
            .send_text(format!("turn {turn}"))
            .await
            .unwrap();
        for event in until_idle(&mut session).await {
            if let SessionEvent::Reconnected { replayed_items, .. } = event {
                replayed = Some(replayed_items);
            }
        }
    }
    assert!(replayed.is_some(), "the connection was dropped once");
    // The new connection got the whole conversation, its first turns included.
    let replay: Vec<serde_json::Value> = server
        .received()
        .await
        .into_iter()
        .filter(|e| e.connection == 1)
        .filter_map(|e| e.value)
        .filter(|v| v["type"] == "conversation.item.create")
        .map(|v| v["item"].clone())
        .collect();
    let first_user = replay
        .iter()
        .find(|item| item["role"] == "user")
        .expect("user messages replayed");
    assert_eq!(first_user["content"][0]["text"], "turn 0", "{replay:#?}");
    let calls = replay
        .iter()
        .filter(|i| i["type"] == "function_call")
        .count();
    let outputs = replay
        .iter()
        .filter(|i| i["type"] == "function_call_output")
        .count();
    assert!(
        calls >= before_drop && outputs >= before_drop,
        "{calls} calls, {outputs} outputs"
    );
    // Every call ran once, and the store holds every item once.
    let started = h
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("start"))
        .count();
    assert_eq!(started, before_drop + 1);
    session.handle.close().await.unwrap();
    writer.flush().await.unwrap();
    let stored = writer.items(&id).await.unwrap();
    assert_eq!(stored.len(), 4 * (before_drop + 1), "{stored:#?}");
    assert_no_violations(&server).await;
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_id_seen_again_later_is_answered_from_the_store() {
    // Each connection plays the script from the start, so a resumed conversation meets the same
    // call ids again. The session keeps no record of the first run's calls in memory: the
    // store's records answer, and the tool does not run a second time.
    let (_dir, writer, id) = store();
    let h = harness("");
    let config = ServerConfig::new(turns(1)).script_scope(ScriptScope::PerConnection);
    let first_sink = writer.conversation(id.clone());
    let (server, mut session) = start_with(&h, config, |c| {
        c.history_sink = Some(std::sync::Arc::new(first_sink));
    })
    .await;
    session.handle.send_text("turn 0").await.unwrap();
    until_idle(&mut session).await;
    session.handle.close().await.unwrap();
    writer.flush().await.unwrap();

    let stored: Vec<(String, Item)> = writer
        .items(&id)
        .await
        .unwrap()
        .into_iter()
        .map(StoredItem::into_keyed)
        .collect();
    let second_sink = writer.conversation(id.clone());
    let url = server.url();
    let overrides = agent_core::agent::ConnectOverrides {
        url: Some(url),
        key_optional: true,
        ..Default::default()
    };
    let mut config = h.agent.session_config(&overrides, None).unwrap();
    config.history = stored;
    config.history_sink = Some(std::sync::Arc::new(second_sink));
    let mut session = agent_core::session::Session::start(config).await.unwrap();
    session.handle.send_text("turn 0").await.unwrap();
    let events = until_idle(&mut session).await;
    let not_run: Vec<&NotRun> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ToolCallNotRun { why, output, .. } => {
                assert_eq!(output, "quick done");
                Some(why)
            }
            _ => None,
        })
        .collect();
    assert_eq!(not_run, [&NotRun::AlreadyRan], "{events:#?}");
    let started = h
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("start"))
        .count();
    assert_eq!(started, 1, "the tool ran once across both sessions");
    // The tool's idempotency key names the stored conversation, not the connection.
    let keys = h.keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert!(
        keys[0].starts_with(&format!("{id}:call_")),
        "{keys:?} (conversation {id})"
    );
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}
