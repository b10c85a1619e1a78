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
        CloseReason, EventBuffer, HistorySink, Keepalive, NotRun, PriorCall, ReconnectPolicy,
        ResponseDeadlines, Session, SessionConfig, SessionEvent,
    },
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ConnectionFaults, ErrorSpec, Faults, MalformedDone, ServerConfig, ServerHandle},
};
use common::harness::*;
use serde_json::{Value, json};

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

    fn replace(&self, key: &str, item: &Item) {
        let mut items = self.items.lock().unwrap();
        if let Some(entry) = items.iter_mut().find(|(k, _)| k == key) {
            entry.1 = item.clone();
        }
    }

    fn call_started(
        &self,
        call_id: &str,
        _: &str,
        _: &str,
    ) -> agent_core::session::DurableWrite<agent_core::session::CallStart> {
        self.started.lock().unwrap().push(call_id.to_owned());
        Box::pin(std::future::ready(Ok(agent_core::session::CallStart::New)))
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
        // A connection silent for 200 ms counts as dead: only answered pings keep it alive.
        c.keepalive = Keepalive {
            ping_every: Duration::from_millis(50),
            dead_after: Duration::from_millis(200),
        };
    })
    .await;
    session.handle.send_text("talk").await.unwrap();
    // The app does not read for a while; the session keeps reading the socket meanwhile,
    // so the server's pongs keep the connection alive.
    tokio::time::sleep(Duration::from_millis(700)).await;
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
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SessionEvent::Reconnecting { .. })),
        "{events:#?}"
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
        reason.to_string().starts_with("event consumer too slow: "),
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
        let call_started =
            matches!(&event, SessionEvent::ToolCallStarted { name, .. } if name == "slow_a");
        events.push(event);
        if call_started {
            session.handle.cancel_response().await.unwrap();
            break;
        }
    }
    events.extend(collect(&mut session, Duration::from_secs(5)).await);
    assert!(
        events.iter().any(
            |e| matches!(e, SessionEvent::ResponseDone { status, .. } if status == "cancelled")
        )
    );
    // The output was the last frame sent: give the server a moment to read it.
    received_until(&server, |sent| !outputs(sent).is_empty()).await;
    // Nothing more is asked for, even after a while.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = received(&server).await;
    assert_eq!(count(&sent, "response.create"), 1, "{:?}", types(&sent));
    let outputs = outputs(&sent);
    assert_eq!(
        outputs.len(),
        1,
        "the call that ran is answered: {outputs:?}"
    );
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
    let call_at = keys
        .iter()
        .position(|k| *k == call_key)
        .expect("call logged");
    let output_at = keys
        .iter()
        .position(|k| *k == output_key)
        .expect("output logged");
    assert!(call_at < output_at, "{keys:?}");
    // The conversation goes on normally.
    session.handle.send_text("thanks").await.unwrap();
    let events = collect(&mut session, Duration::from_secs(5)).await;
    assert!(
        reply_text(&events).contains("You're welcome."),
        "{events:#?}"
    );
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
                arguments: "{}".into(),
                output: Some("booked earlier".into()),
            },
            PriorCall {
                call_id: "call_0002".into(),
                name: "slow_b".into(),
                arguments: "{}".into(),
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
    assert!(
        finished
            .iter()
            .any(|(id, out)| id == "call_0003" && out.contains("quick"))
    );
    assert_no_violations(&server).await;
}

#[tokio::test]
async fn a_resumed_conversation_with_a_hanging_call_replays_it_answered() {
    let h = harness("");
    let captured = Arc::new(Captured::default());
    let sink = captured.clone();
    let scenario = Scenario::new("resume")
        .turn(Turn::user("next question").model(ModelStep::say("Here you go.")));
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
            arguments: "{}".into(),
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
    assert_eq!(
        replayed,
        [("c_old".into(), "booked before the crash".into())]
    );
    // The store gains the output it was missing.
    let stored = captured.items.lock().unwrap().clone();
    assert_eq!(stored[0].0, "output:c_old");
    assert!(started(&h, &server).await.is_empty());
    assert_no_violations(&server).await;
}

// ----- hostile servers: every case ends or recovers within its deadline, with bounded
// connections, and says what happened -----------------------------------------------------

/// A two-turn conversation: a question answered with text, then a thank-you.
fn question() -> Scenario {
    Scenario::new("question")
        .turn(Turn::user("what is new?").model(ModelStep::say("Nothing much, all is well.")))
        .turn(Turn::user("thanks").model(ModelStep::say("You're welcome.")))
}

/// Frames the server sends on a first connection before it starts streaming the first
/// response's output: `session.created`, `session.updated`, the user item (added, done),
/// `response.created`, the first output item (added, and its `conversation.item.added`).
const MID_RESPONSE: usize = 7;

async fn run_turn(
    faults: Faults,
    adjust: impl FnOnce(&mut SessionConfig),
) -> (ServerHandle, Vec<SessionEvent>, Duration) {
    run_until(faults, adjust, false).await
}

/// Like [`run_turn`], but waits past the turn for the session to close.
async fn run_until_closed(
    faults: Faults,
    adjust: impl FnOnce(&mut SessionConfig),
) -> (ServerHandle, Vec<SessionEvent>, Duration) {
    run_until(faults, adjust, true).await
}

async fn run_until(
    faults: Faults,
    adjust: impl FnOnce(&mut SessionConfig),
    until_closed: bool,
) -> (ServerHandle, Vec<SessionEvent>, Duration) {
    let h = harness("");
    let config = ServerConfig::new(question()).faults(faults);
    let (server, mut session) = start_with(&h, config, |c| {
        fast(c);
        adjust(c);
    })
    .await;
    let began = Instant::now();
    session.handle.send_text("what is new?").await.unwrap();
    let mut events = collect(&mut session, Duration::from_secs(10)).await;
    while until_closed && !matches!(events.last(), Some(SessionEvent::Closed { .. })) {
        events.extend(collect(&mut session, Duration::from_secs(10)).await);
    }
    (server, events, began.elapsed())
}

fn turn_failures(events: &[SessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::TurnFailed { failure } => Some(failure.to_string()),
            _ => None,
        })
        .collect()
}

fn closed(events: &[SessionEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        SessionEvent::Closed { reason } => Some(reason.to_string()),
        _ => None,
    })
}

fn warnings(events: &[SessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Warning { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_stall_that_still_answers_pings_is_cancelled_and_recovered_on_a_new_connection() {
    let faults = Faults::none().on_connection(0, ConnectionFaults::new().stall_after(MID_RESPONSE));
    let (server, events, took) = run_turn(faults, |_| {}).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle), "{events:#?}");
    assert_eq!(reply_text(&events), "Nothing much, all is well.");
    assert!(turn_failures(&events).is_empty(), "{events:#?}");
    assert!(
        warnings(&events)
            .iter()
            .any(|w| w == "response resp_0001 sent nothing for 200 ms; cancelling it to ask again"),
        "{:?}",
        warnings(&events)
    );
    assert!(events.iter().any(|e| matches!(
        e,
        SessionEvent::Reconnecting { reason, .. }
            if reason == "response resp_0001 sent nothing for 200 ms, and the server did not confirm its cancellation in time"
    )));
    assert_eq!(server.connections(), 2);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_stall_on_every_connection_fails_the_turn_after_one_more_try() {
    let faults =
        Faults::none().on_every_connection(ConnectionFaults::new().stall_after(MID_RESPONSE));
    let (server, events, took) = run_turn(faults, |_| {}).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle), "{events:#?}");
    assert_eq!(
        turn_failures(&events),
        [
            "the response was cut off (response resp_0002 sent nothing for 200 ms, and the server did not confirm its cancellation in time), and it had already been asked for again once"
        ]
    );
    assert!(server.connections() <= 3, "{}", server.connections());
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_stalled_stream_that_answers_the_cancel_is_asked_for_again_on_the_same_connection() {
    let faults =
        Faults::none().on_connection(0, ConnectionFaults::new().stall_stream_after(MID_RESPONSE));
    let (server, events, took) = run_turn(faults, |_| {}).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle), "{events:#?}");
    assert!(reply_text(&events).ends_with("Nothing much, all is well."));
    assert!(turn_failures(&events).is_empty(), "{events:#?}");
    let statuses: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ResponseDone { status, .. } => Some(status.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(statuses, ["cancelled", "completed"]);
    assert_eq!(server.connections(), 1);
    assert_eq!(server.count_received("response.create"), 2);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn an_error_instead_of_a_response_fails_the_turn_with_the_servers_reason() {
    let refusal = ErrorSpec::new(
        "invalid_request_error",
        "rate_limit_exceeded",
        "Too many responses at once.",
    );
    let faults = Faults::none()
        .on_every_connection(ConnectionFaults::new().fail_response_create(refusal, usize::MAX));
    let (server, events, took) = run_turn(faults, |_| {}).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle), "{events:#?}");
    assert_eq!(
        turn_failures(&events),
        ["the server refused to respond (rate_limit_exceeded): Too many responses at once."]
    );
    assert_eq!(server.connections(), 1);
    assert_eq!(server.count_received("response.create"), 1);
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test]
async fn a_create_that_is_never_answered_is_retried_once_then_fails_the_turn() {
    // The server reads `response.create` and answers nothing at all, on every connection.
    let faults = Faults::none().on_every_connection(ConnectionFaults::new().stall_after(4));
    let (server, events, took) = run_turn(faults, |_| {}).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle), "{events:#?}");
    assert_eq!(
        turn_failures(&events),
        ["the server did not start a response within 200 ms, and asking again did not help"]
    );
    assert_eq!(server.connections(), 2);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn a_malformed_response_done_still_ends_its_response() {
    for kind in [
        MalformedDone::FloatTokens,
        MalformedDone::NegativeTokens,
        MalformedDone::OutputNotList,
        MalformedDone::UsageNotObject,
    ] {
        let faults = Faults::none()
            .on_every_connection(ConnectionFaults::new().malformed_response_done(kind));
        let (server, events, took) = run_turn(faults, |_| {}).await;
        assert_eq!(
            events.last(),
            Some(&SessionEvent::Idle),
            "{kind:?}: {events:#?}"
        );
        assert_eq!(
            reply_text(&events),
            "Nothing much, all is well.",
            "{kind:?}"
        );
        let notes = warnings(&events);
        assert!(
            notes.iter().any(
                |w| w.starts_with("a malformed response.done for resp_0001 was read in part: ")
            ),
            "{kind:?}: {notes:?}"
        );
        assert_eq!(server.connections(), 1, "{kind:?}");
        assert!(took < Duration::from_secs(2), "{kind:?}: {took:?}");
    }
}

#[tokio::test]
async fn a_drop_between_create_and_created_is_recovered_once() {
    let faults = Faults::none().on_connection(0, ConnectionFaults::new().drop_on_response_create());
    let (server, events, _) = run_turn(faults, |_| {}).await;
    assert_eq!(reply_text(&events), "Nothing much, all is well.");
    assert_eq!(server.connections(), 2);

    let faults =
        Faults::none().on_every_connection(ConnectionFaults::new().drop_on_response_create());
    let (server, events, took) = run_turn(faults, |_| {}).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle), "{events:#?}");
    assert_eq!(
        turn_failures(&events),
        [
            "the response was cut off (the connection dropped), and it had already been asked for again once"
        ]
    );
    assert!(server.connections() <= 3, "{}", server.connections());
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn connections_that_keep_dropping_exhaust_the_budget_however_often_the_handshake_works() {
    // Every connection drops right after the setup: the handshake works every time.
    let faults = Faults::none().on_every_connection(ConnectionFaults::new().drop_after(3));
    let (server, events, took) = run_until_closed(faults, |c| c.reconnect.max_attempts = 3).await;
    let reason = closed(&events).expect("the session ends");
    assert!(
        reason.starts_with("connection lost: gave up after 3 new connection(s) within 60 s without a completed response: "),
        "{reason}"
    );
    assert_eq!(server.connections(), 4, "max_reconnect_attempts + 1");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn session_expired_on_every_request_rolls_over_a_bounded_number_of_times() {
    let faults =
        Faults::none().on_every_connection(ConnectionFaults::new().session_expired_on_request());
    let (server, events, took) = run_turn(faults, |_| {}).await;
    let reason = closed(&events).expect("the session ends");
    assert_eq!(
        reason,
        "connection lost: gave up after 2 new connection(s) within 60 s without a completed response: the server expired the session: Your session hit the maximum duration of 60 minutes."
    );
    let rollovers = events
        .iter()
        .filter(|e| matches!(e, SessionEvent::RollingOver { .. }))
        .count();
    assert_eq!(rollovers, 2);
    assert_eq!(server.connections(), 3);
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn an_oversized_frame_is_reported_as_such_and_does_not_loop() {
    let h = harness("");
    let faults = Faults::none()
        .on_every_connection(ConnectionFaults::new().oversized_frame_after(MID_RESPONSE, 300_000));
    let config = ServerConfig::new(question()).faults(faults);
    let (server, mut session) = start_with(&h, config, |c| {
        fast(c);
        c.connect.max_message_bytes = 100_000;
    })
    .await;
    let began = Instant::now();
    let too_big = "the server sent a message of 300000 bytes, over the 100000-byte limit (max_message_bytes); the connection cannot continue after it";
    session.handle.send_text("what is new?").await.unwrap();
    let events = collect(&mut session, Duration::from_secs(10)).await;
    assert_eq!(
        turn_failures(&events),
        [format!(
            "the response was cut off ({too_big}), and it had already been asked for again once"
        )]
    );
    // The next turn meets the same frame; the budget is spent, so the session ends.
    session.handle.send_text("thanks").await.unwrap();
    let events = collect(&mut session, Duration::from_secs(10)).await;
    let reason = closed(&events).expect("the session ends");
    assert_eq!(
        reason,
        format!(
            "connection lost: gave up after 2 new connection(s) within 60 s without a completed response: {too_big}"
        )
    );
    assert_eq!(server.connections(), 3);
    assert!(began.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_model_that_calls_tools_forever_is_stopped_after_max_tool_rounds() {
    let h = harness("");
    let faults = Faults::none().on_every_connection(ConnectionFaults::new().tool_loop("quick"));
    let config = ServerConfig::new(question()).faults(faults);
    let (server, mut session) = start_with(&h, config, |c| {
        fast(c);
        c.max_tool_rounds = 3;
    })
    .await;
    let began = Instant::now();
    session.handle.send_text("what is new?").await.unwrap();
    let events = collect(&mut session, Duration::from_secs(10)).await;
    assert_eq!(events.last(), Some(&SessionEvent::Idle), "{events:#?}");
    assert_eq!(
        turn_failures(&events),
        [
            "the model called tools 3 rounds in a row without answering; the turn was stopped (max_tool_rounds = 3)"
        ]
    );
    // The first request and three follow-ups; the fourth round's call is answered, not run.
    assert_eq!(server.count_received("response.create"), 4);
    assert_eq!(started(&h, &server).await.len(), 3);
    let sent = received_until(&server, |sent| outputs(sent).len() == 4).await;
    let last = outputs(&sent).pop().unwrap();
    assert!(last.1.contains("max_tool_rounds"), "{last:?}");
    assert!(events.iter().any(|e| matches!(
        e,
        SessionEvent::ToolCallNotRun {
            why: NotRun::ToolRoundLimit,
            ..
        }
    )));
    assert_eq!(server.connections(), 1);
    assert!(began.elapsed() < Duration::from_secs(3));
}

// ----- voice: barge-in over running tools, and the order of spoken turns -----------------------

/// Half a second of tone and a second of silence at 24 kHz: one utterance for the server's VAD.
fn utterance() -> Vec<i16> {
    let rate = 24_000usize;
    let mut samples: Vec<i16> = (0..rate / 2)
        .map(|i| (8000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin()) as i16)
        .collect();
    samples.extend(std::iter::repeat_n(0, rate));
    samples
}

async fn speak(session: &Session) {
    for event in agent_core::audio::AppendChunker::default().chunks(&utterance()) {
        session.handle.send_event(event).await.unwrap();
    }
}

/// Events until `done` holds for one of them, within five seconds.
async fn until(session: &mut Session, done: impl Fn(&SessionEvent) -> bool) -> Vec<SessionEvent> {
    let mut events = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = session.events.recv().await {
            let last = done(&event);
            events.push(event);
            if last {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out; events so far: {events:#?}"));
    events
}

const SPEAKING: &str = "output_modalities = [\"audio\"]\n\
    [turn_detection]\ntype = \"server_vad\"\n\
    [transcription]\nmodel = \"gpt-4o-mini-transcribe\"\n";

#[tokio::test]
async fn a_barge_in_over_a_running_tool_never_asks_for_a_response_itself() {
    let h = harness(SPEAKING);
    let scenario = Scenario::new("barge-in over a tool")
        .turn(
            Turn::user("Book a table.").model(
                ModelStep::say("Booking it now; one moment please while I check the tables.")
                    .call(ScriptedCall::new("slow_a", json!({})))
                    .calls_first()
                    .barge_in_after_ms(200),
            ),
        )
        .turn(Turn::user("Actually, make it two.").model(ModelStep::say("Sure, two it is.")));
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        fast(c);
        c.deadlines.response_idle = Duration::from_secs(2);
        c.playback = agent_core::audio::PlaybackClock::immediate();
    })
    .await;
    session.handle.send_text("Book a table.").await.unwrap();
    let mut events = until(
        &mut session,
        |e| matches!(e, SessionEvent::ResponseDone { status, .. } if status == "completed"),
    )
    .await;
    // The tool finishes after the user spoke over the answer: its output goes out, nothing more.
    events.extend(
        until(&mut session, |e| {
            matches!(e, SessionEvent::ToolCallFinished { .. })
        })
        .await,
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let transcript: String = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::TranscriptDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert!(transcript.ends_with("Sure, two it is."), "{transcript:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::Interrupted { .. }))
    );
    assert_eq!(
        server.count_received("response.create"),
        1,
        "only the typed turn asked; the spoken one was answered by the server's VAD"
    );
    assert_eq!(outputs(&received(&server).await).len(), 1);
    assert_no_violations(&server).await;
}

/// The keys the history received, in order, and the user's spoken item.
fn spoken_history(captured: &Captured) -> (Vec<String>, Option<Item>) {
    let items = captured.items.lock().unwrap().clone();
    let spoken = items
        .iter()
        .find(|(k, _)| k == "item:item_t0_user")
        .map(|(_, item)| item.clone());
    (items.into_iter().map(|(k, _)| k).collect(), spoken)
}

#[tokio::test]
async fn a_transcript_that_comes_after_the_reply_still_puts_the_question_first() {
    let h = harness(SPEAKING);
    let captured = Arc::new(Captured::default());
    let sink = captured.clone();
    let scenario = Scenario::new("late transcript")
        .turn(Turn::user("What time is it?").model(ModelStep::say("It is noon.")));
    let config = ServerConfig::new(scenario).late_transcription(true);
    let (server, mut session) = start_with(&h, config, |c| {
        fast(c);
        c.history_sink = Some(sink);
        c.playback = agent_core::audio::PlaybackClock::immediate();
    })
    .await;
    speak(&session).await;
    let events = until(&mut session, |e| {
        matches!(e, SessionEvent::UserTranscript { .. })
    })
    .await;
    let done_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::ResponseDone { .. }))
        .expect("answered");
    let transcript_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::UserTranscript { .. }))
        .unwrap();
    assert!(
        done_at < transcript_at,
        "the server sent the transcript late"
    );
    let (keys, spoken) = spoken_history(&captured);
    assert_eq!(keys, ["item:item_t0_user", "item:item_t0s0o0"]);
    let spoken = serde_json::to_value(spoken.unwrap()).unwrap();
    assert_eq!(spoken["content"][0]["transcript"], "What time is it?");
    assert_no_violations(&server).await;
}

#[tokio::test]
async fn spoken_turns_are_logged_without_transcription_too() {
    let h = harness("output_modalities = [\"text\"]\n[turn_detection]\ntype = \"server_vad\"\n");
    let captured = Arc::new(Captured::default());
    let sink = captured.clone();
    let scenario = Scenario::new("no transcription")
        .turn(Turn::user("What time is it?").model(ModelStep::say("It is noon.")));
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        fast(c);
        c.history_sink = Some(sink);
    })
    .await;
    speak(&session).await;
    until(&mut session, |e| matches!(e, SessionEvent::Idle)).await;
    let (keys, spoken) = spoken_history(&captured);
    assert_eq!(keys, ["item:item_t0_user", "item:item_t0s0o0"]);
    let replayed = agent_core::session::log::for_replay(&spoken.unwrap());
    assert_eq!(
        agent_core::session::log::message_text(&replayed).as_deref(),
        Some(agent_core::session::log::UNTRANSCRIBED)
    );
    assert_no_violations(&server).await;
}

/// A caller who speaks while the sideband attaches: the server sends that turn's function
/// call before it confirms the session's configuration. The call still runs and is answered
/// (setup used to skip every frame before `session.updated`, and the call waited forever).
#[tokio::test]
async fn a_function_call_sent_before_session_updated_is_still_answered() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/v1/realtime", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut received = Vec::new();
        let next = |received: &mut Vec<Value>, text: &str| {
            received.push(serde_json::from_str::<Value>(text).unwrap());
        };
        let Some(Ok(Message::Text(update))) = ws.next().await else {
            panic!("no session.update");
        };
        next(&mut received, update.as_str());
        let call = json!({"type": "function_call", "id": "item_early", "call_id": "call_early",
            "name": "quick", "arguments": "{}", "status": "completed"});
        let response = |status: &str, output: Value| {
            json!({"id": "resp_early", "object": "realtime.response", "status": status,
                "output": output, "usage": null})
        };
        for event in [
            json!({"type": "session.created", "event_id": "e1",
                "session": {"id": "sess_early", "type": "realtime"}}),
            json!({"type": "response.created", "event_id": "e2",
                "response": response("in_progress", json!([]))}),
            json!({"type": "response.output_item.done", "event_id": "e3",
                "response_id": "resp_early", "output_index": 0, "item": call}),
            json!({"type": "response.done", "event_id": "e4",
                "response": response("completed", json!([call]))}),
            json!({"type": "session.updated", "event_id": "e5",
                "session": {"id": "sess_early", "type": "realtime", "model": "gpt-realtime"}}),
        ] {
            ws.send(Message::Text(event.to_string().into()))
                .await
                .unwrap();
        }
        // Everything the client sends until it answers the call.
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_secs(5), ws.next()).await
        {
            let Message::Text(text) = frame else { continue };
            next(&mut received, text.as_str());
            if text.as_str().contains("response.create") {
                break;
            }
        }
        received
    });
    let harness = harness("");
    let overrides = agent_core::agent::ConnectOverrides {
        url: Some(url),
        key_optional: true,
        ..Default::default()
    };
    let mut config = harness.agent.session_config(&overrides, None).unwrap();
    fast(&mut config);
    let session = Session::start(config).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the client never answered the early call")
        .unwrap();
    let answered = outputs(&received);
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0].0, "call_early");
    assert!(answered[0].1.contains("quick done"), "{answered:?}");
    assert_eq!(
        types(&received).last().map(String::as_str),
        Some("response.create")
    );
    assert_eq!(
        harness.log.lock().unwrap().as_slice(),
        ["start quick call_early", "end quick call_early"]
    );
    drop(session);
}

/// A sink whose writes become "durable" only when the test opens its gate.
struct Gated {
    captured: Captured,
    gate: Arc<tokio::sync::Semaphore>,
}

impl HistorySink for Gated {
    fn append(&self, key: &str, item: &Item) {
        self.captured.append(key, item);
    }

    fn call_started(
        &self,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> agent_core::session::DurableWrite<agent_core::session::CallStart> {
        self.captured.call_started(call_id, name, arguments)
    }

    fn call_finished(&self, call_id: &str, output: &str) {
        self.captured.call_finished(call_id, output);
    }

    fn durable_before_outputs(&self) -> Option<agent_core::session::DurableWrite> {
        let gate = self.gate.clone();
        Some(Box::pin(async move {
            let permit = gate.acquire().await.map_err(|e| e.to_string())?;
            permit.forget();
            Ok(())
        }))
    }
}

/// On a call the platform holds and another node could take over, a tool's output leaves
/// only once the store holds it: a node that took the call over after the output left but
/// before its record would answer the call a second time.
#[tokio::test]
async fn a_platform_held_calls_outputs_wait_until_the_store_holds_them() {
    let h = harness("");
    let scenario = Scenario::new("durable outputs").turn(
        Turn::user("go")
            .model(calls(&["quick"]))
            .model(ModelStep::say("Done.")),
    );
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let sink = Arc::new(Gated {
        captured: Captured::default(),
        gate: gate.clone(),
    });
    let held = sink.clone();
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        c.ownership = agent_core::session::Ownership::PlatformHeld(Default::default());
        c.history_sink = Some(held);
    })
    .await;
    session.handle.send_text("go").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.captured.finished.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the tool never finished");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        outputs(&received(&server).await).is_empty(),
        "the output left before the store held it"
    );
    gate.add_permits(1);
    let events = until_idle(&mut session).await;
    assert!(warnings(&events).is_empty(), "{events:#?}");
    let sent = outputs(&received(&server).await);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].1, "quick done");
    assert_eq!(reply_text(&events), "Done.");
    validate_all(&server, Dialect::Ga).await;
    session.handle.close().await.unwrap();
    server.shutdown().await;
}

/// A call taken over from a node that died: function calls the model made while no sideband
/// was attached never reached anyone, so the model is told, first thing and without a
/// response of our own, to make them again if it still needs them.
#[tokio::test]
async fn a_taken_over_call_tells_the_model_to_make_lost_calls_again() {
    let h = harness("");
    let scenario = Scenario::new("taken over").turn(
        Turn::user("where is my order?")
            .model(calls(&["quick"]))
            .model(ModelStep::say("On its way.")),
    );
    let sink = Arc::new(Captured::default());
    let held = sink.clone();
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        c.ownership = agent_core::session::Ownership::PlatformHeld(Default::default());
        c.taken_over = true;
        c.history_sink = Some(held);
    })
    .await;
    // The caller asks again (on a real call, the caller's next turn).
    session
        .handle
        .send_text("where is my order?")
        .await
        .unwrap();
    let events = until_idle(&mut session).await;
    assert_eq!(reply_text(&events), "On its way.");
    let sent = received(&server).await;
    let kinds = types(&sent);
    let note = sent
        .iter()
        .position(|e| e["item"]["role"] == "system")
        .expect("a system note");
    assert!(
        sent[note]["item"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("call the tool again"),
        "{:?}",
        sent[note]
    );
    // It came right after the configuration, before anything else, and asked for nothing.
    assert_eq!(
        &kinds[..2],
        ["session.update", "conversation.item.create:message"],
        "{kinds:?}"
    );
    assert_eq!(note, 1);
    let creates = kinds.iter().filter(|k| *k == "response.create").count();
    assert_eq!(
        creates, 2,
        "the typed turn and its tool's follow-up only: {kinds:?}"
    );
    // The note is part of the stored conversation.
    let stored = sink.items.lock().unwrap().clone();
    assert!(
        stored
            .iter()
            .any(|(_, item)| matches!(item, Item::Message(m) if m.role == agent_core::protocol::Role::System)),
        "{stored:?}"
    );
    validate_all(&server, Dialect::Ga).await;
    session.handle.close().await.unwrap();
    server.shutdown().await;
}
