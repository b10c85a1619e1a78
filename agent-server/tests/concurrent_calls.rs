//! 200 Twilio calls at once through one `agent serve`: each caller hears a greeting, speaks for
//! a second, stays on the line for another, and hears the answer of a turn that ran a tool on
//! the server. Checked from every side: each call completed, its tool ran once, its caller
//! heard the answer, the history holds it with its outcome, no caller frame was lost on the
//! way to the model, and the server's counters are back to zero. No timing is asserted; the
//! whole test stops by itself after [`TEST_DEADLINE`].

mod common;

use std::{collections::HashMap, time::Duration};

use agent_core::history::HistoryStore;
use agent_testkit::{
    ModelStep, Scenario, ScriptedCall, Turn,
    twilio::{CallRecord, CallSpec, CallerStep},
};
use common::{CALLER, Harness, NUMBER, Options};
use serde_json::json;
use tokio::task::JoinSet;

/// Calls placed at once.
const CALLS: usize = 200;
const GREETING_MS: u64 = 200;
const ANSWER_MS: u64 = 400;
/// μ-law bytes in one 20 ms frame.
const FRAME_BYTES: u64 = 160;
/// The whole test, set-up and teardown included, ends by then even if something hangs.
const TEST_DEADLINE: Duration = Duration::from_secs(120);
/// Each call's stream must be over by then.
const CALL_DEADLINE: Duration = Duration::from_secs(60);
/// Sockets per call: the caller's and the server's ends of the media stream and of the
/// Realtime WebSocket, plus room for the webhook's request.
const FDS_PER_CALL: u64 = 5;

fn scenario() -> Scenario {
    Scenario::new("one tool turn per call")
        .turn(
            Turn::model_first()
                .model(ModelStep::say("Hello, the shop.").audio_ms(GREETING_MS as u32)),
        )
        .turn(
            Turn::user("Where is my order A1001?")
                .model(ModelStep::calls([ScriptedCall::new(
                    "caller_lookup",
                    json!({"order_id": "A1001"}),
                )]))
                .model(ModelStep::say("It shipped yesterday.").audio_ms(ANSWER_MS as u32)),
        )
}

/// The caller: waits for the greeting, speaks for a second, stays on for a second (the
/// server's VAD ends the turn in it), waits for the answer and hangs up.
fn script() -> Vec<CallerStep> {
    let within = Duration::from_secs(40);
    vec![
        CallerStep::WaitHeard {
            ms: GREETING_MS,
            within,
        },
        CallerStep::Speak(Duration::from_secs(1)),
        CallerStep::Silence(Duration::from_secs(1)),
        CallerStep::WaitHeard {
            ms: GREETING_MS + ANSWER_MS,
            within,
        },
        CallerStep::HangUp,
    ]
}

/// The open-files limit must hold every call's sockets. Raises the soft limit up to the hard
/// one when it is lower than that, or fails saying what to raise.
fn ensure_open_files(needed: u64) {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    if soft >= needed {
        return;
    }
    let hard = limit.maximum.unwrap_or(u64::MAX);
    assert!(
        hard >= needed,
        "{CALLS} calls need {needed} open files, and the hard limit is {hard}: raise it (ulimit -Hn)"
    );
    let raised = rustix::process::Rlimit {
        current: Some(needed),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raising the soft open-files limit");
}

/// Which call each `function_call_output` the model received was for, counted by call.
async fn tool_outputs_by_call(h: &Harness) -> HashMap<String, usize> {
    let mut by_call = HashMap::new();
    for event in h.scripted.received().await {
        let Some(value) = event.value else { continue };
        if value["type"] != "conversation.item.create"
            || value["item"]["type"] != "function_call_output"
        {
            continue;
        }
        let output = value["item"]["output"].as_str().unwrap_or_default();
        let call = output
            .split("(call ")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .unwrap_or("(no call named)");
        *by_call.entry(call.to_owned()).or_insert(0) += 1;
    }
    by_call
}

async fn place_calls(h: &Harness) -> Vec<(String, CallRecord)> {
    let mut calls = JoinSet::new();
    for n in 0..CALLS {
        let twilio = h.twilio.clone();
        let sid = format!("CA{:032}", n);
        calls.spawn(async move {
            let mut spec = CallSpec::new(&sid, CALLER, NUMBER, script());
            spec.deadline = CALL_DEADLINE;
            let record = twilio.call(&spec).await;
            (sid, record)
        });
    }
    let mut records = Vec::with_capacity(CALLS);
    while let Some(joined) = calls.join_next().await {
        let (sid, record) = joined.expect("a call's task");
        match record {
            Ok(record) => records.push((sid, record)),
            Err(err) => panic!("call {sid} failed on the caller's side: {err}"),
        }
    }
    records
}

async fn two_hundred_calls() {
    ensure_open_files(CALLS as u64 * FDS_PER_CALL + 256);
    let options = Options {
        max_calls: CALLS,
        // Every call's webhook comes from 127.0.0.1 at once, as from one Twilio edge.
        limits: "webhook_burst = 400\nwebhook_requests_per_minute = 60000",
        ..Options::default()
    };
    let h = Harness::start(scenario(), options).await;
    let records = place_calls(&h).await;

    // Every call ran its script to the end, and its caller heard the greeting and the answer.
    assert_eq!(records.len(), CALLS);
    for (sid, record) in &records {
        assert!(
            !record.ended_by_server && record.error.is_none(),
            "{sid} was cut off: {:?} {:?}",
            record.close,
            record.error
        );
        assert!(
            record.heard_ms() >= GREETING_MS + ANSWER_MS,
            "{sid} heard {} ms",
            record.heard_ms()
        );
    }
    h.until_no_calls().await;

    // Each call's tool ran exactly once, for that call, and the model saw nothing wrong.
    let outputs = tool_outputs_by_call(&h).await;
    assert_eq!(outputs.len(), CALLS, "{outputs:?}");
    for (sid, _) in &records {
        assert_eq!(outputs.get(sid), Some(&1), "tool outputs for {sid}");
    }
    assert_eq!(h.scripted.violations().await, Vec::<String>::new());

    // Not one frame of caller audio was lost between Twilio and the model.
    let frames_sent: u64 = records.iter().map(|(_, r)| r.frames_sent).sum();
    let fewest = records
        .iter()
        .map(|(_, r)| r.frames_sent)
        .min()
        .unwrap_or(0);
    assert!(
        fewest >= 100,
        "2 s of audio per call, at least: {fewest} frames"
    );
    assert_eq!(
        h.scripted.received_audio_bytes(),
        frames_sent * FRAME_BYTES,
        "audio bytes at the model vs {frames_sent} frames sent"
    );

    // Every call is in the history with its outcome.
    let store = HistoryStore::open(&h.history_db).unwrap();
    let stored: HashMap<String, Option<String>> = store
        .phone_calls()
        .unwrap()
        .into_values()
        .map(|c| (c.call_id, c.outcome))
        .collect();
    assert_eq!(stored.len(), CALLS);
    for (sid, _) in &records {
        assert_eq!(
            stored.get(sid).cloned().flatten().as_deref(),
            Some("caller_hung_up"),
            "{sid} in the history"
        );
    }

    // The counters are back to zero, and every call counted once.
    assert_eq!(h.state.capacity.in_use(), 0);
    let metrics = h
        .state
        .metrics
        .render((h.state.capacity.in_use(), CALLS), false);
    assert!(
        metrics.contains("\nagent_serve_calls_active{node=\"n1\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "agent_serve_calls_total{{node=\"n1\",outcome=\"caller_hung_up\"}} {CALLS}"
        )),
        "{metrics}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_calls_at_once_each_run_their_tool_turn_and_lose_no_frame() {
    tokio::time::timeout(TEST_DEADLINE, two_hundred_calls())
        .await
        .expect("the 200 calls and their checks finished before the test's deadline");
}
