//! What every phone agent gets, end to end on loopback: the greeting, keypad digits,
//! `end_call` after the goodbye was played, `transfer_call` to allowed targets only, silence
//! prompts, the call-length limit; and the operator's side: metrics, the webhook rate limit,
//! the drain, the call history.

mod common;

use std::time::Duration;

use agent_core::history::HistoryStore;
use agent_testkit::{
    ModelStep, Scenario, ScriptedCall, Turn,
    twilio::{CallRecord, CallSpec, CallerStep, Signing, Twiml, http},
};
use common::{CALLER, Harness, NUMBER, Options};
use serde_json::{Value, json};

const GREETING_MS: u64 = 400;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

fn greeting() -> ModelStep {
    ModelStep::say("Welcome to the shop.").audio_ms(GREETING_MS as u32)
}

async fn events_of(h: &Harness, kind: &str) -> Vec<Value> {
    h.scripted
        .received()
        .await
        .into_iter()
        .filter_map(|e| e.value)
        .filter(|v| v["type"] == kind)
        .collect()
}

/// The texts of the messages of `role` the server received, in order.
async fn messages(h: &Harness, role: &str) -> Vec<String> {
    events_of(h, "conversation.item.create")
        .await
        .into_iter()
        .filter(|e| e["item"]["role"] == role)
        .map(|e| {
            e["item"]["content"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect()
}

async fn call(h: &Harness, sid: &str, script: Vec<CallerStep>) -> CallRecord {
    h.twilio
        .call(&CallSpec::new(sid, CALLER, NUMBER, script))
        .await
        .unwrap()
}

/// The call's stored outcome, once the server wrote it (5 s at most).
async fn stored_outcome(h: &Harness, call_sid: &str) -> String {
    for _ in 0..100 {
        let store = HistoryStore::open(&h.history_db).unwrap();
        let found = store
            .phone_calls()
            .unwrap()
            .into_values()
            .find(|c| c.call_id == call_sid);
        if let Some(outcome) = found.and_then(|c| c.outcome) {
            return outcome;
        }
        tokio::time::sleep(ms(50)).await;
    }
    panic!("no outcome stored for {call_sid}");
}

#[tokio::test]
async fn the_greeting_comes_first_and_keypad_digits_reach_the_model() {
    let scenario = Scenario::new("keypad")
        .turn(Turn::model_first().model(greeting()))
        .turn(
            Turn::user("The caller pressed 5 on the keypad.")
                .model(ModelStep::say("You pressed five.").audio_ms(300)),
        );
    let options = Options {
        phone: "greeting = \"Welcome to the shop.\"",
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let record = call(
        &h,
        "CA800",
        vec![
            CallerStep::WaitHeard {
                ms: GREETING_MS,
                within: secs(10),
            },
            CallerStep::Dtmf('5'),
            CallerStep::WaitHeard {
                ms: GREETING_MS + 300,
                within: secs(10),
            },
            CallerStep::HangUp,
        ],
    )
    .await;
    assert!(!record.ended_by_server, "{record:?}");
    // Before anything else, the model is told to greet with the agent file's words.
    let received = h.scripted.received().await;
    let first = received
        .iter()
        .filter_map(|e| e.value.as_ref())
        .find(|v| v["type"] != "session.update")
        .unwrap();
    assert_eq!(first["item"]["role"], "system", "{first}");
    assert!(
        first["item"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("\"Welcome to the shop.\"")
    );
    assert_eq!(
        messages(&h, "user").await,
        ["The caller pressed 5 on the keypad."]
    );
    // The tools the model was given include end_call, and no transfer without targets.
    let update = &events_of(&h, "session.update").await[0];
    let tools: Vec<&str> = update["session"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tools.contains(&"end_call") && !tools.contains(&"transfer_call"),
        "{tools:?}"
    );
    assert_eq!(h.scripted.violations().await, Vec::<String>::new());
    h.assert_client_events_conform().await;
    // The call is in the history with its caller, callee and agent.
    assert_eq!(stored_outcome(&h, "CA800").await, "caller_hung_up");
    let store = HistoryStore::open(&h.history_db).unwrap();
    let (id, stored) = store.phone_calls().unwrap().into_iter().next().unwrap();
    assert_eq!(
        (stored.caller.as_str(), stored.callee.as_str()),
        (CALLER, NUMBER)
    );
    assert_eq!(store.conversation(&id).unwrap().agent, "phone");
    assert!(!store.items(&id).unwrap().is_empty());
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn end_call_hangs_up_only_once_the_goodbye_was_played() {
    let scenario = Scenario::new("goodbye")
        .turn(Turn::model_first().model(greeting()))
        .turn(
            Turn::user("That's all, thanks.")
                .model(
                    ModelStep::say("Goodbye, and thanks for calling!")
                        .audio_ms(1_000)
                        .call(ScriptedCall::new("end_call", json!({}))),
                )
                .model(ModelStep::say("Bye.").audio_ms(200)),
        );
    let h = Harness::start(scenario, Options::default()).await;
    let record = call(
        &h,
        "CA810",
        vec![
            CallerStep::WaitHeard {
                ms: GREETING_MS,
                within: secs(10),
            },
            CallerStep::Speak(ms(400)),
            CallerStep::Silence(secs(20)),
        ],
    )
    .await;
    assert!(
        record.ended_by_update,
        "the REST hang-up ended the call: {record:?}"
    );
    let updates = h.rest.wait_for_updates(1, secs(5)).await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(updates[0].is_hangup() && updates[0].call_sid == "CA810");
    assert_eq!(updates[0].unplayed_ms, Some(0), "nothing was left to hear");
    assert!(
        record.heard_ms() >= GREETING_MS + 1_000 + 200,
        "heard {}",
        record.heard_ms()
    );
    assert_eq!(h.rest.refused(), 0, "signed in with the account and token");
    assert_eq!(stored_outcome(&h, "CA810").await, "agent_hung_up");
    assert_eq!(h.scripted.violations().await, Vec::<String>::new());
    h.assert_client_events_conform().await;
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn transfers_go_only_to_targets_of_the_allow_list() {
    let scenario = Scenario::new("transfer")
        .turn(Turn::model_first().model(greeting()))
        .turn(
            Turn::user("Put me through to someone.")
                .model(ModelStep::calls([ScriptedCall::new(
                    "transfer_call",
                    json!({"target": "+19005550000"}),
                )]))
                .model(
                    ModelStep::say("Let me put you through to sales.")
                        .audio_ms(600)
                        .call(ScriptedCall::new(
                            "transfer_call",
                            json!({"target": "sales"}),
                        )),
                )
                .model(ModelStep::say("Transferring now.").audio_ms(200)),
        );
    let options = Options {
        phone: "[phone.transfer_targets]\nsales = \"+15550123\"",
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let record = call(
        &h,
        "CA820",
        vec![
            CallerStep::WaitHeard {
                ms: GREETING_MS,
                within: secs(10),
            },
            CallerStep::Speak(ms(400)),
            CallerStep::Silence(secs(20)),
        ],
    )
    .await;
    assert!(record.ended_by_update, "{record:?}");
    let outputs: Vec<String> = events_of(&h, "conversation.item.create")
        .await
        .into_iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .map(|e| e["item"]["output"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(
        outputs[0].to_lowercase().contains("error"),
        "refused: {}",
        outputs[0]
    );
    assert!(
        outputs[1].contains("transferred to sales"),
        "{}",
        outputs[1]
    );
    let updates = h.rest.wait_for_updates(1, secs(5)).await;
    assert_eq!(
        updates.len(),
        1,
        "only the allowed target was dialled: {updates:?}"
    );
    assert_eq!(updates[0].dial_target().as_deref(), Some("+15550123"));
    assert_eq!(updates[0].unplayed_ms, Some(0));
    assert_eq!(stored_outcome(&h, "CA820").await, "transferred");
    h.assert_client_events_conform().await;
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn a_silent_caller_is_prompted_then_hung_up_on_politely() {
    let scenario = Scenario::new("silence").turn(
        Turn::model_first()
            .model(greeting())
            .model(ModelStep::say("Are you still there?").audio_ms(300))
            .model(ModelStep::say("Goodbye for now.").audio_ms(300)),
    );
    let options = Options {
        phone: "idle_timeout_ms = 300\nidle_prompts = 1",
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let record = call(&h, "CA830", vec![CallerStep::Silence(secs(20))]).await;
    assert!(record.ended_by_update, "{record:?}");
    let system = messages(&h, "system").await;
    assert_eq!(
        system.len(),
        3,
        "greeting, one prompt, the goodbye: {system:?}"
    );
    assert!(system[1].contains("still there"), "{system:?}");
    assert!(system[2].contains("goodbye"), "{system:?}");
    let updates = h.rest.wait_for_updates(1, secs(5)).await;
    assert!(updates.len() == 1 && updates[0].is_hangup(), "{updates:?}");
    assert_eq!(
        updates[0].unplayed_ms,
        Some(0),
        "the goodbye was heard to the end"
    );
    assert!(record.heard_ms() >= GREETING_MS + 600);
    assert_eq!(stored_outcome(&h, "CA830").await, "silence");
    assert_eq!(h.scripted.violations().await, Vec::<String>::new());
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn a_call_is_warned_then_ended_at_its_maximum_length() {
    let scenario = Scenario::new("too long").turn(
        Turn::model_first()
            .model(greeting())
            .model(ModelStep::say("We need to wrap up soon.").audio_ms(300))
            .model(ModelStep::say("Goodbye.").audio_ms(300)),
    );
    let options = Options {
        phone: "max_call_secs = 2\nmax_call_warning_secs = 1\nmax_call_warning = \"Tell the caller the call ends soon.\"",
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let record = call(&h, "CA840", vec![CallerStep::Silence(secs(20))]).await;
    assert!(record.ended_by_update, "{record:?}");
    let system = messages(&h, "system").await;
    assert_eq!(system.len(), 3, "{system:?}");
    assert!(system[1].contains("ends soon"), "{system:?}");
    assert!(h.rest.wait_for_updates(1, secs(5)).await[0].is_hangup());
    assert_eq!(stored_outcome(&h, "CA840").await, "max_length");
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn a_call_with_max_call_transfer_is_transferred_at_its_maximum_length() {
    let scenario = Scenario::new("too long, then a human").turn(
        Turn::model_first()
            .model(greeting())
            .model(ModelStep::say("We need to wrap up soon.").audio_ms(300))
            .model(ModelStep::say("I'm putting you through to our team.").audio_ms(300)),
    );
    let options = Options {
        phone: "max_call_secs = 2\nmax_call_warning_secs = 1\nmax_call_transfer = \"humans\"\n\
                [phone.transfer_targets]\nhumans = \"+15550199\"",
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let record = call(&h, "CA845", vec![CallerStep::Silence(secs(20))]).await;
    assert!(record.ended_by_update, "{record:?}");
    let system = messages(&h, "system").await;
    assert_eq!(system.len(), 3, "{system:?}");
    assert!(system[2].contains("transferred to humans"), "{system:?}");
    let updates = h.rest.wait_for_updates(1, secs(5)).await;
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert_eq!(updates[0].dial_target().as_deref(), Some("+15550199"));
    assert_eq!(
        updates[0].unplayed_ms,
        Some(0),
        "the notice was heard to the end"
    );
    assert_eq!(stored_outcome(&h, "CA845").await, "transferred");
    h.assert_client_events_conform().await;
    h.until_no_calls().await;
    h.stop().await;
}

#[tokio::test]
async fn metrics_are_served_on_the_admin_listener_only() {
    let scenario = Scenario::new("metrics").turn(Turn::model_first().model(greeting()));
    let options = Options {
        admin: true,
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let record = call(
        &h,
        "CA850",
        vec![
            CallerStep::WaitHeard {
                ms: GREETING_MS,
                within: secs(10),
            },
            CallerStep::HangUp,
        ],
    )
    .await;
    assert!(!record.ended_by_server);
    h.until_no_calls().await;
    stored_outcome(&h, "CA850").await;
    let admin = h.admin.unwrap();
    let metrics = http::request(admin, "GET", "/metrics", &[], b"", secs(5))
        .await
        .unwrap();
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.body;
    for line in [
        "agent_serve_calls_active{node=\"n1\"} 0",
        "agent_serve_calls_total{node=\"n1\",outcome=\"caller_hung_up\"} 1",
        "agent_serve_turn_latency_seconds_count{node=\"n1\"} 1",
        "agent_serve_call_slots_max{node=\"n1\"} 4",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let output_tokens = text
        .lines()
        .find_map(|l| l.strip_prefix("agent_serve_tokens_total{node=\"n1\",direction=\"output\"} "))
        .unwrap();
    assert!(output_tokens.parse::<u64>().unwrap() > 0, "{text}");
    let public = http::request(h.addr, "GET", "/metrics", &[], b"", secs(5))
        .await
        .unwrap();
    assert_eq!(public.status, 404, "not on the callers' listener");
    h.stop().await;
}

#[tokio::test]
async fn a_client_over_its_webhook_rate_gets_429() {
    let scenario = Scenario::new("flood").turn(Turn::model_first().model(greeting()));
    let options = Options {
        limits: "webhook_requests_per_minute = 60\nwebhook_burst = 2",
        ..Options::default()
    };
    let h = Harness::start(scenario, options).await;
    let params = [("CallSid", "CA860"), ("From", CALLER), ("To", NUMBER)];
    for _ in 0..2 {
        let answer = h
            .twilio
            .voice("/twilio/voice", &params, Signing::WrongToken)
            .await
            .unwrap();
        assert_eq!(answer.answer.status, 403);
    }
    let limited = h
        .twilio
        .voice("/twilio/voice/shop", &params, Signing::Valid)
        .await
        .unwrap();
    assert_eq!(limited.answer.status, 429, "{:?}", limited.answer);
    assert!(limited.answer.header("retry-after").is_some());
    assert_eq!(h.state.capacity.in_use(), 0, "nothing started");
    let health = http::request(h.addr, "GET", "/healthz", &[], b"", secs(5))
        .await
        .unwrap();
    assert_eq!(health.status, 200, "only the webhooks are limited");
    assert!(
        h.state
            .metrics
            .render((0, 4), false)
            .contains("agent_serve_rate_limited_total{node=\"n1\"} 1")
    );
    h.stop().await;
}

#[tokio::test]
async fn a_drain_waits_out_the_live_call_then_stops_with_its_history_flushed() {
    let scenario = Scenario::new("drain").turn(Turn::model_first().model(greeting()));
    let mut h = Harness::start(scenario, Options::default()).await;
    let twilio = h.twilio.clone();
    let live = tokio::spawn(async move {
        let script = vec![
            CallerStep::WaitHeard {
                ms: GREETING_MS,
                within: secs(10),
            },
            CallerStep::Silence(ms(1_000)),
            CallerStep::HangUp,
        ];
        twilio
            .call(&CallSpec::new("CA870", CALLER, NUMBER, script))
            .await
            .unwrap()
    });
    while h
        .state
        .metrics
        .render((0, 0), false)
        .contains("agent_serve_calls_active{node=\"n1\"} 0")
    {
        tokio::time::sleep(ms(20)).await;
    }
    h.begin_stop();
    let mut ready = http::request(h.addr, "GET", "/readyz", &[], b"", secs(5))
        .await
        .unwrap();
    while ready.status == 200 {
        ready = http::request(h.addr, "GET", "/readyz", &[], b"", secs(5))
            .await
            .unwrap();
    }
    assert_eq!((ready.status, ready.body.as_str()), (503, "draining\n"));
    let params = [("CallSid", "CA871"), ("From", CALLER), ("To", NUMBER)];
    let refused = h
        .twilio
        .voice("/twilio/voice", &params, Signing::Valid)
        .await
        .unwrap();
    assert_eq!(
        refused.twiml,
        Twiml::Reject {
            reason: "busy".into()
        }
    );
    assert!(!h.is_stopped(), "the live call holds the server");
    let record = tokio::time::timeout(secs(10), live).await.unwrap().unwrap();
    assert!(
        !record.ended_by_server,
        "the live call finished on its own: {record:?}"
    );
    for _ in 0..200 {
        if h.is_stopped() {
            break;
        }
        tokio::time::sleep(ms(25)).await;
    }
    assert!(h.is_stopped(), "the server stopped once the call was over");
    // Flushed before the server stopped: the outcome is there at once.
    let store = HistoryStore::open(&h.history_db).unwrap();
    let calls = store.phone_calls().unwrap();
    let stored = calls.values().find(|c| c.call_id == "CA870").unwrap();
    assert_eq!(stored.outcome.as_deref(), Some("caller_hung_up"));
    h.stop().await;
}
