//! The session loop against hostile and broken servers and apps, on loopback: each test bounds
//! the time the session takes to end or recover and the connections it opens, and checks the
//! exact message the app is given. Deadlines and backoff are set to 200 ms or less, so the
//! whole file runs in seconds; the defaults stay realistic.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use agent_core::{
    protocol::{Dialect, Item},
    session::{
        CloseReason, EventBuffer, HistorySink, NotRun, PriorCall, ReconnectPolicy,
        ResponseDeadlines, Session, SessionConfig, SessionEvent,
    },
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ServerConfig, ServerHandle},
};
use common::harness::*;
use serde_json::json;

/// Captures what the runtime hands to durable storage, calls included.
#[derive(Default)]
struct Captured {
    items: Mutex<Vec<(String, Item)>>,
    started: Mutex<Vec<String>>,
    finished: Mutex<Vec<(String, String)>>,
}

impl HistorySink for Captured {
    fn append(&self, key: &str, item: &Item) {
        self.items
            .lock()
            .unwrap()
            .push((key.to_owned(), item.clone()));
    }

    fn call_started(&self, call_id: &str, _: &str, _: &str) -> agent_core::session::DurableWrite {
        self.started.lock().unwrap().push(call_id.to_owned());
        Box::pin(std::future::ready(Ok(())))
    }

    fn call_finished(&self, call_id: &str, output: &str) {
        self.finished
            .lock()
            .unwrap()
            .push((call_id.to_owned(), output.to_owned()));
    }
}

/// Short deadlines and backoff for every test here.
fn fast(config: &mut SessionConfig) {
    config.deadlines = ResponseDeadlines {
        response_idle: Duration::from_millis(200),
        cancel_wait: Duration::from_millis(200),
    };
    config.reconnect = ReconnectPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        window: Duration::from_secs(60),
        rerequest_cut_responses: 1,
    };
}

/// Every event until the session is idle or closed, within `limit`.
async fn collect(session: &mut Session, limit: Duration) -> Vec<SessionEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = session.events.recv() => {
                let Some(event) = event else { return events };
                let end = matches!(event, SessionEvent::Idle | SessionEvent::Closed { .. });
                events.push(event);
                if end {
                    return events;
                }
            }
            () = &mut deadline => panic!("nothing ended within {limit:?}; events so far: {events:#?}"),
        }
    }
}

/// What the server received, once `ready` holds (or after a second).
async fn received_until(
    server: &ServerHandle,
    ready: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let sent = received(server).await;
        if ready(&sent) || Instant::now() > deadline {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn count(events: &[serde_json::Value], kind: &str) -> usize {
    types(events).iter().filter(|t| *t == kind).count()
}

async fn started(harness: &Harness, server: &ServerHandle) -> Vec<String> {
    let _ = server;
    harness
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("start"))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_slow_app_never_stalls_the_socket_and_loses_nothing() {
    let h = harness("");
    let long: String = (0..400).map(|i| format!("w{i} ")).collect();
    let scenario = Scenario::new("long").turn(Turn::user("talk").model(ModelStep::say(&long)));
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        fast(c);
        c.event_buffer = EventBuffer {
            channel: 4,
            backlog_events: 64,
            backlog_bytes: 1 << 20,
        };
    })
    .await;
    session.handle.send_text("talk").await.unwrap();
    // The app does not read for a while; the session keeps reading the socket meanwhile.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = collect(&mut session, Duration::from_secs(5)).await;
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::TextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, long, "every delta arrives, merged or not");
    assert!(
        events.len() < 200,
        "deltas were merged while the app was away: {} events",
        events.len()
    );
    assert_eq!(server.connections(), 1);
    assert_no_violations(&server).await;
}

#[tokio::test]
async fn an_app_that_stops_reading_ends_the_session_rather_than_dropping_events() {
    let h = harness("");
    let scenario = Scenario::new("chatty").turn(Turn::user("talk").model(ModelStep::say(
        "one two three four five six seven eight nine ten eleven twelve",
    )));
    let (_server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        fast(c);
        c.event_buffer = EventBuffer {
            channel: 2,
            backlog_events: 1,
            backlog_bytes: 1 << 20,
        };
    })
    .await;
    session.handle.send_text("talk").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = collect(&mut session, Duration::from_secs(10)).await;
    let Some(SessionEvent::Closed { reason }) = events.last() else {
        panic!("{events:#?}");
    };
    assert!(
        matches!(reason, CloseReason::ConsumerTooSlow { .. }),
        "{reason:?}"
    );
    assert!(
        reason
            .to_string()
            .starts_with("event consumer too slow: "),
        "{reason}"
    );
}

#[tokio::test]
async fn a_panic_that_escapes_the_tool_still_answers_its_call() {
    let h = harness("");
    let scenario = Scenario::new("drop bomb").turn(
        Turn::user("go")
            .model(calls(&["drop_bomb"]))
            .model(ModelStep::say("sorry about that")),
    );
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), fast).await;
    session.handle.send_text("go").await.unwrap();
    let events = collect(&mut session, Duration::from_secs(5)).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle), "{events:#?}");
    let outputs = outputs(&received(&server).await);
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(outputs[0].1.contains("crashed"), "{outputs:?}");
    assert!(outputs[0].1.contains("boom in a Drop"), "{outputs:?}");
    assert!(reply_text(&events).contains("sorry about that"));
    assert_no_violations(&server).await;
}

#[tokio::test]
async fn a_cancelled_responses_calls_are_answered_but_never_ask_for_more() {
    let h = harness("");
    let captured = Arc::new(Captured::default());
    let sink = captured.clone();
    let scenario = Scenario::new("cancel")
        .turn(
            Turn::user("book it")
                .model(
                    ModelStep::say("Booking.")
                        .call(ScriptedCall::new("slow_a", json!({})))
                        .call(ScriptedCall::new("quick", json!({}))),
                )
                .model(ModelStep::say("Booked.")),
        )
        .turn(Turn::user("thanks").model(ModelStep::say("You're welcome.")));
    let config = ServerConfig::new(scenario).event_delay(Duration::from_millis(40));
    let (server, mut session) = start_with(&h, config, |c| {
        fast(c);
        c.deadlines.response_idle = Duration::from_secs(2);
        c.history_sink = Some(sink);
    })
    .await;
    session.handle.send_text("book it").await.unwrap();
    // The app cancels as soon as the first call runs; the second call is cut off.
    let mut events = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), session.events.recv())
            .await
            .expect("a call starts")
            .expect("session open");
        let call_started = matches!(&event, SessionEvent::ToolCallStarted { name, .. } if name == "slow_a");
        events.push(event);
        if call_started {
            session.handle.cancel_response().await.unwrap();
            break;
        }
    }
    events.extend(collect(&mut session, Duration::from_secs(5)).await);
    assert!(events.iter().any(
        |e| matches!(e, SessionEvent::ResponseDone { status, .. } if status == "cancelled")
    ));
    // The output was the last frame sent: give the server a moment to read it.
    received_until(&server, |sent| !outputs(sent).is_empty()).await;
    // Nothing more is asked for, even after a while.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = received(&server).await;
    assert_eq!(count(&sent, "response.create"), 1, "{:?}", types(&sent));
    let outputs = outputs(&sent);
    assert_eq!(outputs.len(), 1, "the call that ran is answered: {outputs:?}");
    assert_eq!(
        started(&h, &server).await.len(),
        1,
        "the cut-off call never ran"
    );
    // The history holds the call and its output, so a replay stays consistent.
    let keys: Vec<String> = captured
        .items
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    let call_key = format!("call:{}", outputs[0].0);
    let output_key = format!("output:{}", outputs[0].0);
    let call_at = keys.iter().position(|k| *k == call_key).expect("call logged");
    let output_at = keys.iter().position(|k| *k == output_key).expect("output logged");
    assert!(call_at < output_at, "{keys:?}");
    // The conversation goes on normally.
    session.handle.send_text("thanks").await.unwrap();
    let events = collect(&mut session, Duration::from_secs(5)).await;
    assert!(reply_text(&events).contains("You're welcome."), "{events:#?}");
    assert_no_violations(&server).await;
    validate_all(&server, Dialect::Ga).await;
}

#[tokio::test]
async fn a_call_that_already_ran_before_a_restart_is_not_run_again() {
    let h = harness("");
    let captured = Arc::new(Captured::default());
    let sink = captured.clone();
    let scenario = Scenario::new("exactly once").turn(
        Turn::user("book and pay")
            .model(calls(&["slow_a", "slow_b", "quick"]))
            .model(ModelStep::say("All done.")),
    );
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        fast(c);
        c.history_sink = Some(sink);
        // An earlier run of this conversation: slow_a finished, slow_b started and never did.
        c.prior_calls = vec![
            PriorCall {
                call_id: "call_0001".into(),
                name: "slow_a".into(),
                output: Some("booked earlier".into()),
            },
            PriorCall {
                call_id: "call_0002".into(),
                name: "slow_b".into(),
                output: None,
            },
        ];
    })
    .await;
    session.handle.send_text("book and pay").await.unwrap();
    let events = collect(&mut session, Duration::from_secs(5)).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle));
    let log = started(&h, &server).await;
    assert_eq!(log, ["start quick call_0003"], "only the new call ran");
    let outputs = outputs(&received(&server).await);
    assert_eq!(outputs[0], ("call_0001".into(), "booked earlier".into()));
    assert!(outputs[1].1.contains("interrupted"), "{outputs:?}");
    let not_run: Vec<NotRun> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ToolCallNotRun { why, .. } => Some(*why),
            _ => None,
        })
        .collect();
    assert_eq!(not_run, [NotRun::AlreadyRan, NotRun::Interrupted]);
    // Only the call that ran was recorded as started; the interrupted one is now finished.
    assert_eq!(*captured.started.lock().unwrap(), ["call_0003"]);
    let finished = captured.finished.lock().unwrap().clone();
    assert!(finished.iter().any(|(id, _)| id == "call_0002"));
    assert!(finished.iter().any(|(id, out)| id == "call_0003" && out.contains("quick")));
    assert_no_violations(&server).await;
}

#[tokio::test]
async fn a_resumed_conversation_with_a_hanging_call_replays_it_answered() {
    let h = harness("");
    let captured = Arc::new(Captured::default());
    let sink = captured.clone();
    let scenario = Scenario::new("resume").turn(
        Turn::user("next question").model(ModelStep::say("Here you go.")),
    );
    let begin = Instant::now();
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        fast(c);
        c.history_sink = Some(sink);
        c.history = vec![
            ("local_000001".into(), Item::user_text("book it")),
            (
                "call:c_old".into(),
                Item::function_call("c_old", "slow_a", "{}"),
            ),
        ];
        c.prior_calls = vec![PriorCall {
            call_id: "c_old".into(),
            name: "slow_a".into(),
            output: Some("booked before the crash".into()),
        }];
    })
    .await;
    session.handle.send_text("next question").await.unwrap();
    let events = collect(&mut session, Duration::from_secs(5)).await;
    assert!(begin.elapsed() < Duration::from_secs(5));
    assert!(events.iter().any(|e| matches!(
        e,
        SessionEvent::ToolCallNotRun { call_id, why: NotRun::AlreadyRan, .. } if call_id == "c_old"
    )));
    // Replayed: the user message, the call, and its stored output, before the new turn.
    let sent = received(&server).await;
    let replayed = outputs(&sent);
    assert_eq!(replayed, [("c_old".into(), "booked before the crash".into())]);
    // The store gains the output it was missing.
    let stored = captured.items.lock().unwrap().clone();
    assert_eq!(stored[0].0, "output:c_old");
    assert!(started(&h, &server).await.is_empty());
    assert_no_violations(&server).await;
}
