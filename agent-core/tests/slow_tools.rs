//! Slow and background tools, end to end against the scripted server: a background call
//! answers "started" at once and its result follows as one user message, never over another
//! response; a slow call gets one out-of-band filler line, and the follow-up waits for both the
//! outputs and the filler's end.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use agent_core::{
    protocol::{Dialect, Item},
    session::{Filler, HistorySink, ReconnectPolicy, SessionEvent, SlowTools},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, Turn},
    server::{ConnectionFaults, FILLER_LINE, Faults, ServerConfig},
};
use common::harness::*;
use serde_json::Value;

/// A history sink that keeps what it is given.
#[derive(Default)]
struct Recorded {
    appends: Mutex<Vec<(String, Item)>>,
    finished: Mutex<Vec<(String, String)>>,
}

impl HistorySink for Recorded {
    fn append(&self, key: &str, item: &Item) {
        self.appends
            .lock()
            .unwrap()
            .push((key.to_owned(), item.clone()));
    }

    fn call_finished(&self, call_id: &str, output: &str) {
        self.finished
            .lock()
            .unwrap()
            .push((call_id.to_owned(), output.to_owned()));
    }
}

fn creates(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "response.create")
        .collect()
}

fn out_of_band(event: &Value) -> bool {
    event["response"]["conversation"] == "none"
}

fn user_texts(events: &[Value]) -> Vec<(usize, String)> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e["type"] == "conversation.item.create"
                && e["item"]["type"] == "message"
                && e["item"]["role"] == "user"
        })
        .map(|(i, e)| {
            (
                i,
                e["item"]["content"][0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

fn errors(events: &[SessionEvent]) -> Vec<&SessionEvent> {
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                SessionEvent::Error { .. } | SessionEvent::TurnFailed { .. }
            )
        })
        .collect()
}

/// What the assistant said (text or transcript) in `response_id`.
fn said_in(events: &[SessionEvent], response_id: &str) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::TextDelta {
                response_id: r,
                delta,
                ..
            }
            | SessionEvent::TranscriptDelta {
                response_id: r,
                delta,
                ..
            } if r == response_id => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

fn started(events: &[SessionEvent]) -> Vec<(usize, String)> {
    events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            SessionEvent::ResponseStarted { response_id } => Some((i, response_id.clone())),
            _ => None,
        })
        .collect()
}

fn done_at(events: &[SessionEvent], id: &str) -> usize {
    events
        .iter()
        .position(
            |e| matches!(e, SessionEvent::ResponseDone { response_id, .. } if response_id == id),
        )
        .unwrap_or_else(|| panic!("no response.done for {id}"))
}

#[tokio::test]
async fn a_background_result_follows_once_as_a_user_message_when_the_model_is_idle() {
    let h = harness("");
    // The result's answer is the turn's next step (the server keeps a background result in the
    // turn that started the call).
    let scenario = Scenario::new("background").turn(
        Turn::user("make the report")
            .model(calls(&["slow_a"]))
            .model(ModelStep::say("I started the report."))
            .model(ModelStep::say("The report is ready.")),
    );
    // Each response takes a while to start, so the tool (300 ms) finishes while the answer to
    // "started" is still in flight: its result must wait for that response's end.
    let config = ServerConfig::new(scenario).response_latency(Duration::from_millis(500));
    let sink = Arc::new(Recorded::default());
    let (server, mut session) = start_with(&h, config, |c| {
        // Longer than an ordinary call may run: the background deadline applies instead.
        c.tool_timeout = Duration::from_millis(100);
        c.slow_tools = SlowTools {
            background: ["slow_a".to_owned()].into(),
            background_timeout: Duration::from_secs(5),
            filler: None,
        };
        c.history_sink = Some(sink.clone());
    })
    .await;
    session.handle.send_text("make the report").await.unwrap();
    let events = until_idle(&mut session).await;
    assert_eq!(errors(&events), Vec::<&SessionEvent>::new());

    let received = received(&server).await;
    let outputs = outputs(&received);
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let (call_id, output) = &outputs[0];
    let output: Value = serde_json::from_str(output).unwrap();
    assert_eq!(output["status"], "started");

    // The result: one user message, after the answer to "started" was asked for, with its
    // own response after it.
    let users = user_texts(&received);
    let expected = format!("[result of background call {call_id} (slow_a)]: slow_a done");
    let results: Vec<_> = users.iter().filter(|(_, t)| *t == expected).collect();
    assert_eq!(results.len(), 1, "{users:?}");
    let at = results[0].0;
    let creates_before = received[..at]
        .iter()
        .filter(|e| e["type"] == "response.create")
        .count();
    assert_eq!(creates_before, 2, "the first answer and the follow-up");
    assert_eq!(received[at + 1]["type"], "response.create");
    assert_eq!(creates(&received).len(), 3);
    assert!(received.iter().all(|e| e["item"]["role"] != "system"));

    let responses = started(&events);
    assert_eq!(responses.len(), 3);
    assert_eq!(said_in(&events, &responses[1].1), "I started the report.");
    assert_eq!(said_in(&events, &responses[2].1), "The report is ready.");
    assert!(
        done_at(&events, &responses[1].1) < responses[2].0,
        "the result's response never overlaps another"
    );
    assert!(
        events.iter().any(|e| matches!(e,
            SessionEvent::ToolCallFinished { call_id: c, result: Ok(out), .. }
                if c == call_id && out == "slow_a done")),
        "the call ran past the ordinary timeout"
    );

    // The store: the final output recorded with the call, and the result under its call id.
    let finished = sink.finished.lock().unwrap().clone();
    assert_eq!(finished, [(call_id.clone(), "slow_a done".to_owned())]);
    let appends = sink.appends.lock().unwrap().clone();
    let stored: Vec<_> = appends
        .iter()
        .filter(|(key, _)| key == &format!("background:{call_id}"))
        .collect();
    assert_eq!(stored.len(), 1, "{appends:?}");
    assert_eq!(stored[0].1, Item::user_text(expected));

    session.handle.close().await.unwrap();
    assert_no_violations(&server).await;
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_call_gets_one_filler_and_the_follow_up_waits_for_its_end() {
    let h = harness("");
    let scenario = Scenario::new("filler").turn(
        Turn::user("where is my order")
            .model(calls(&["slow_a"]))
            .model(ModelStep::say("It shipped yesterday.")),
    );
    // The filler takes longer to start than the tool has left to run: the output goes out
    // while it plays, and the follow-up must wait for its `response.done`.
    let config = ServerConfig::new(scenario).response_latency(Duration::from_millis(400));
    let sink = Arc::new(Recorded::default());
    let mut modalities = None;
    let (server, mut session) = start_with(&h, config, |c| {
        c.slow_tools.filler = Some(Filler {
            after: Duration::from_millis(100),
            instructions: "Say you are checking.".into(),
        });
        c.history_sink = Some(sink.clone());
        modalities = c.session.output_modalities.clone();
    })
    .await;
    session.handle.send_text("where is my order").await.unwrap();
    let events = until_idle(&mut session).await;
    assert_eq!(errors(&events), Vec::<&SessionEvent>::new());

    let received = received(&server).await;
    let creates_at: Vec<usize> = received
        .iter()
        .enumerate()
        .filter(|(_, e)| e["type"] == "response.create")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(creates_at.len(), 3, "{:?}", types(&received));
    let filler = &received[creates_at[1]];
    assert!(out_of_band(filler), "{filler}");
    assert_eq!(filler["response"]["instructions"], "Say you are checking.");
    assert_eq!(filler["response"]["metadata"]["purpose"], "filler");
    if let Some(modalities) = modalities {
        assert_eq!(
            filler["response"]["output_modalities"],
            serde_json::to_value(modalities).unwrap()
        );
    }
    assert!(!out_of_band(&received[creates_at[0]]));
    let follow_up = creates_at[2];
    assert!(!out_of_band(&received[follow_up]));
    let output_at = received
        .iter()
        .position(|e| e["item"]["type"] == "function_call_output")
        .expect("the output was sent");
    assert!(
        output_at < follow_up,
        "the follow-up comes after the output"
    );
    assert!(
        creates_at[1] < output_at,
        "the filler was asked for while the tool ran: {:?}",
        types(&received)
    );
    assert_eq!(outputs(&received)[0].1, "slow_a done");

    // The filler was spoken, ended before the follow-up's response started, and is not in the
    // conversation's history.
    let responses = started(&events);
    assert_eq!(responses.len(), 3);
    let filler_id = &responses[1].1;
    assert_eq!(said_in(&events, filler_id), FILLER_LINE);
    assert!(done_at(&events, filler_id) < responses[2].0);
    assert_eq!(said_in(&events, &responses[2].1), "It shipped yesterday.");
    let appends = sink.appends.lock().unwrap().clone();
    assert!(
        !format!("{appends:?}").contains(FILLER_LINE),
        "the filler stays out of the history: {appends:?}"
    );
    assert!(format!("{appends:?}").contains("It shipped yesterday."));

    session.handle.close().await.unwrap();
    assert_no_violations(&server).await;
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_that_finishes_in_time_gets_no_filler() {
    let h = harness("");
    let scenario = Scenario::new("no filler").turn(
        Turn::user("quick one")
            .model(calls(&["quick"]))
            .model(ModelStep::say("Done.")),
    );
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario), |c| {
        c.slow_tools.filler = Some(Filler {
            after: Duration::from_millis(300),
            instructions: "Say you are checking.".into(),
        });
    })
    .await;
    session.handle.send_text("quick one").await.unwrap();
    let events = until_idle(&mut session).await;
    assert_eq!(errors(&events), Vec::<&SessionEvent>::new());
    // Past the filler's moment: nothing more goes out.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let received = received(&server).await;
    assert_eq!(creates(&received).len(), 2);
    assert!(creates(&received).iter().all(|e| !out_of_band(e)));
    session.handle.close().await.unwrap();
    assert_no_violations(&server).await;
    server.shutdown().await;
}

/// One background conversation under `faults`: how often the tool ran, the history, and how
/// many events the server sent on the first connection.
async fn background_run(faults: Faults) -> (usize, Vec<(String, Item)>, usize) {
    let h = harness("");
    let scenario = Scenario::new("background").turn(
        Turn::user("make the report")
            .model(calls(&["quick"]))
            .model(ModelStep::say("I started the report."))
            .model(ModelStep::say("The report is ready.")),
    );
    let sink = Arc::new(Recorded::default());
    let (server, mut session) = start_with(&h, ServerConfig::new(scenario).faults(faults), |c| {
        c.slow_tools.background = ["quick".to_owned()].into();
        c.history_sink = Some(sink.clone());
        c.reconnect = ReconnectPolicy {
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            ..ReconnectPolicy::default()
        };
    })
    .await;
    session.handle.send_text("make the report").await.unwrap();
    until_idle(&mut session).await;
    let ran = h
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("start quick"))
        .count();
    let frames = server.received().await;
    // The result per connection: sent (or replayed) at most once on each.
    let mut per_connection = std::collections::HashMap::<usize, usize>::new();
    for frame in &frames {
        if let Some(value) = &frame.value
            && value["item"]["role"] == "user"
            && value["item"]["content"][0]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("[result of background call"))
        {
            *per_connection.entry(frame.connection).or_default() += 1;
        }
    }
    assert!(
        per_connection.values().all(|n| *n == 1),
        "{per_connection:?}"
    );
    let sent = server.sent_counts().await.first().copied().unwrap_or(0);
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
    let history = sink.appends.lock().unwrap().clone();
    (ran, history, sent)
}

#[tokio::test]
async fn a_background_result_is_delivered_once_across_reconnects() {
    let (ran, baseline, sent) = background_run(Faults::none()).await;
    assert_eq!(ran, 1);
    assert!(sent > 20, "the first connection sent {sent} events");
    let once = |history: &[(String, Item)], drop_after: usize| {
        let results = history
            .iter()
            .filter(|(key, _)| key.starts_with("background:"))
            .count();
        assert_eq!(results, 1, "drop after {drop_after}: {history:#?}");
        let text = format!("{history:?}");
        assert_eq!(
            text.matches("The report is ready.").count(),
            1,
            "drop after {drop_after}: {history:#?}"
        );
    };
    once(&baseline, 0);
    for drop_after in 1..sent {
        let (ran, history, _) = background_run(
            Faults::none().on_connection(0, ConnectionFaults::new().drop_after(drop_after)),
        )
        .await;
        assert_eq!(ran, 1, "drop after {drop_after}: the tool ran {ran} times");
        once(&history, drop_after);
    }
}
