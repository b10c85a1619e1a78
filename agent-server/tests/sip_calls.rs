//! End to end through real sockets on loopback: the fake OpenAI platform sends `agent serve`
//! signed `realtime.call.incoming` webhooks; the server accepts or rejects through the
//! platform's REST API and runs accepted calls over a sideband. One whole call (accept, a tool,
//! a sideband drop and re-attach with nothing replayed, keypad digits, the caller hanging up),
//! the time limit, a slow tool's filler and a handoff over the sideband, then one test per
//! refusal.

mod common;
mod sip;

use agent_core::session::Secret;
use agent_testkit::{
    ModelStep, Scenario, ScriptedCall, Turn,
    platform::{CallControl, CallState, IncomingCall, SidebandDrop, WebhookSigning},
    twilio::http,
};
use common::{
    assert_one_filler_then_one_follow_up, frames,
    spec::{self, Mode},
    tool_names,
};
use serde_json::{Value, json};
use sip::{
    API_KEY, CALLER, SipHarness, SipOptions, USER, WEBHOOK_PATH, WEBHOOK_SECRET, eventually,
};

const KEYPAD: &str = "The caller pressed 5 on the keypad.";

fn scenario() -> Scenario {
    Scenario::new("sip call")
        .turn(Turn::model_first().model(ModelStep::say("Hello, thanks for calling the shop.")))
        .turn(
            Turn::user("Where is my order A1001?")
                .model(ModelStep::calls([ScriptedCall::new(
                    "caller_lookup",
                    json!({"order_id": "A1001"}),
                )]))
                .model(ModelStep::say("Your order A1001 shipped yesterday.")),
        )
        .turn(Turn::user(KEYPAD).model(ModelStep::say("You pressed five. Goodbye.")))
}

/// How many responses the sideband server finished.
async fn responses_done(h: &SipHarness) -> usize {
    h.sent("response.done").await.len()
}

/// Validates a REST body against its schema in realtime-schemas.json.
fn assert_conforms(schema: &str, body: &Value) {
    let Some(spec) = spec::spec() else { return };
    if let Err(err) = spec.validate_named(agent_testkit::Dialect::Ga, schema, body, Mode::STRICT) {
        panic!("a {schema} body does not conform: {err}\n{body}");
    }
}

#[tokio::test]
async fn a_sip_call_runs_tools_re_attaches_without_replay_and_hears_keys() {
    let h = SipHarness::start(scenario(), SipOptions::default()).await;
    // Signed during a secret rotation: the second entry matches.
    let answer = h
        .call("rtc_sip1", USER, "wh_1", WebhookSigning::Rotated)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    eventually("the sideband attached", || async {
        h.platform.calls().attached("rtc_sip1")
    })
    .await;

    // The accept carried the agent's session, valid against the spec, with the key.
    let accepts = h.requests("rtc_sip1");
    assert_eq!(accepts.len(), 1, "{accepts:?}");
    assert_eq!(
        (accepts[0].action.as_str(), accepts[0].status),
        ("accept", 200)
    );
    assert!(accepts[0].authorized);
    let body = accepts[0].body.clone().expect("a JSON accept");
    assert_conforms("RealtimeSessionCreateRequestGA", &body);
    assert_eq!(body["type"], "realtime");
    assert_eq!(body["model"], "gpt-realtime");
    assert_eq!(body["tools"][0]["name"], "caller_lookup");
    assert!(body["instructions"].as_str().unwrap().contains("shop"));

    // The greeting, then the caller asks and the tool runs over the sideband.
    eventually("the greeting", || async { responses_done(&h).await >= 1 }).await;
    assert!(h.platform.control("rtc_sip1", CallControl::CallerSpeaks));
    eventually("the tool's answer", || async {
        responses_done(&h).await >= 3
    })
    .await;
    let outputs: Vec<Value> = h
        .received("conversation.item.create")
        .await
        .into_iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .collect();
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let text = outputs[0]["item"]["output"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "caller {CALLER} called {USER} over sip (call rtc_sip1)"
        )),
        "{text}"
    );
    assert_eq!(
        h.sent("response.output_audio.delta").await.len(),
        0,
        "audio stays on the call"
    );

    // The sideband drops; the server attaches again to the same call.
    assert!(h.platform.control("rtc_sip1", CallControl::DropSideband));
    eventually("a second sideband", || async {
        h.platform.calls().sidebands("rtc_sip1") == 2 && h.platform.calls().attached("rtc_sip1")
    })
    .await;

    // A key on the keypad reaches the model as user input, on the new sideband.
    assert!(
        h.platform
            .control("rtc_sip1", CallControl::Dtmf("5".into()))
    );
    eventually("the answer to the key", || async {
        responses_done(&h).await >= 4
    })
    .await;

    // Nothing was replayed into the call, nor configured again: the only item the second
    // sideband created is the keypad's, and it sent no session.update.
    let second: Vec<Value> = h
        .sideband()
        .received()
        .await
        .into_iter()
        .filter(|e| e.connection == 1)
        .filter_map(|e| e.value)
        .collect();
    let types: Vec<&str> = second.iter().filter_map(|e| e["type"].as_str()).collect();
    assert!(!types.contains(&"session.update"), "{types:?}");
    let created: Vec<&Value> = second
        .iter()
        .filter(|e| e["type"] == "conversation.item.create")
        .collect();
    assert_eq!(
        created.len(),
        1,
        "0 items replayed, then the key: {created:?}"
    );
    assert_eq!(created[0]["item"]["content"][0]["text"], KEYPAD);
    assert!(!types.contains(&"conversation.item.truncate"), "{types:?}");

    // The caller hangs up: the call ends, and the server's hang-up finds it gone.
    assert!(h.platform.calls().caller_hangs_up("rtc_sip1"));
    h.until_no_calls().await;
    eventually("the server's hang-up", || async {
        h.actions("rtc_sip1").len() == 2
    })
    .await;
    assert_eq!(
        h.actions("rtc_sip1"),
        vec![("accept".into(), 200), ("hangup".into(), 404)]
    );
    assert_eq!(
        h.platform.calls().sidebands("rtc_sip1"),
        2,
        "no third attach"
    );
    assert_eq!(h.sideband().violations().await, Vec::<String>::new());
    h.assert_client_events_conform().await;
    h.stop().await;
}

#[tokio::test]
async fn the_call_ends_before_its_time_limit_after_a_warning_and_a_goodbye() {
    let scenario = Scenario::new("limit")
        .turn(Turn::model_first().model(ModelStep::say("Hello.")))
        .turn(Turn::user("(the warning)").model(ModelStep::say("We have to end soon.")))
        .turn(Turn::user("(the goodbye)").model(ModelStep::say("Goodbye.")));
    let options = SipOptions {
        agent_extra: "[limits]\nmax_session_minutes = 0.05\n\n[timeouts]\nping_secs = 0.2\n",
        ..SipOptions::default()
    };
    let h = SipHarness::start(scenario, options).await;
    assert_eq!(
        h.call("rtc_lim", USER, "wh_lim", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    h.until_no_calls().await;
    // The same policy as at `max_call_secs`, fitted inside the 3 s session: the greeting, a
    // warning, a goodbye, then the server hung up (once, and before the session's own end).
    let notes: Vec<String> = h
        .received("conversation.item.create")
        .await
        .into_iter()
        .filter(|e| e["item"]["role"] == "system")
        .map(|e| e["item"]["content"][0]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes[0].contains("Greet"), "{notes:?}");
    assert!(notes[1].contains("will end in about"), "{notes:?}");
    assert!(notes[2].contains("goodbye"), "{notes:?}");
    assert_eq!(
        h.actions("rtc_lim"),
        vec![("accept".into(), 200), ("hangup".into(), 200)]
    );
    assert_eq!(h.platform.calls().state("rtc_lim"), Some(CallState::HungUp));
    assert_eq!(h.platform.calls().sidebands("rtc_lim"), 1, "no rollover");
    assert_eq!(h.stored_outcome("rtc_lim").await, "max_length");
    h.assert_client_events_conform().await;
    h.stop().await;
}

#[tokio::test]
async fn a_call_that_ends_with_its_sideband_is_not_attached_again() {
    let options = SipOptions {
        on_drop: SidebandDrop::CallEnds,
        ..SipOptions::default()
    };
    let h = SipHarness::start(scenario(), options).await;
    assert_eq!(
        h.call("rtc_end", USER, "wh_end", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    eventually("the greeting", || async { responses_done(&h).await >= 1 }).await;
    assert!(h.platform.control("rtc_end", CallControl::DropSideband));
    h.until_no_calls().await;
    assert_eq!(h.platform.calls().state("rtc_end"), Some(CallState::Ended));
    assert_eq!(h.platform.calls().sidebands("rtc_end"), 1);
    // The re-attach found no call (404): the call ended, it did not fail.
    assert_eq!(h.stored_outcome("rtc_end").await, "caller_hung_up");
    h.stop().await;
}

#[tokio::test]
async fn badly_signed_webhooks_are_refused_and_accept_nothing() {
    let h = SipHarness::start(scenario(), SipOptions::default()).await;
    let cases = [
        (WebhookSigning::WrongSecret, 401),
        (WebhookSigning::Missing, 400),
        (WebhookSigning::Expired, 401),
        (WebhookSigning::FromTheFuture, 401),
        (WebhookSigning::Malformed, 401),
    ];
    for (i, (signing, status)) in cases.into_iter().enumerate() {
        let answer = h
            .call(&format!("rtc_bad{i}"), USER, &format!("wh_bad{i}"), signing)
            .await;
        assert_eq!(answer.status, status, "{signing:?}: {answer:?}");
        assert!(!answer.body.contains(WEBHOOK_SECRET) && !answer.body.contains(API_KEY));
    }
    // A valid signature over another body does not cover this one.
    let call = IncomingCall::new("rtc_tampered", "sip:+1@x", &format!("sip:{USER}@x"));
    let signed = agent_testkit::platform::webhook::headers(
        WEBHOOK_SECRET,
        "wh_tampered",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64,
        b"{}",
        WebhookSigning::Valid,
    );
    let headers: Vec<(&str, &str)> = signed
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let body = call.event("evt_tampered").to_string();
    let answer = http::request(
        h.addr,
        "POST",
        WEBHOOK_PATH,
        &headers,
        body.as_bytes(),
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 401);
    assert_eq!(
        h.platform.requests(),
        vec![],
        "nothing accepted or rejected"
    );
    assert_eq!(h.sideband().connections(), 0, "no sideband");
    assert_eq!(h.state.capacity.in_use(), 0);
    h.stop().await;
}

#[tokio::test]
async fn a_redelivered_webhook_and_other_events_are_acknowledged_and_not_processed() {
    let h = SipHarness::start(scenario(), SipOptions::default()).await;
    assert_eq!(
        h.call("rtc_once", USER, "wh_once", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    eventually("the sideband attached", || async {
        h.platform.calls().attached("rtc_once")
    })
    .await;
    let call = IncomingCall::new(
        "rtc_once",
        &format!("sip:{CALLER}@carrier.example"),
        &format!("sip:{USER}@sip.api.openai.com"),
    );
    let again = h
        .platform
        .send_webhook(
            h.addr,
            WEBHOOK_PATH,
            "wh_once",
            &call.event("evt_wh_once"),
            WebhookSigning::Valid,
        )
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.body.as_str()),
        (200, "already processed\n")
    );
    let other = json!({"object": "event", "id": "evt_x", "type": "realtime.call.ended",
        "created_at": 1, "data": {"call_id": "rtc_once"}});
    let answer = h
        .platform
        .send_webhook(
            h.addr,
            WEBHOOK_PATH,
            "wh_other",
            &other,
            WebhookSigning::Valid,
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(
        h.actions("rtc_once"),
        vec![("accept".into(), 200)],
        "processed once"
    );
    assert_eq!(h.platform.calls().sidebands("rtc_once"), 1);
    assert!(h.platform.calls().caller_hangs_up("rtc_once"));
    h.until_no_calls().await;
    h.stop().await;
}

/// Waits for the reject of `call_id` and returns its SIP status, its body checked against
/// the spec.
async fn rejected_with(h: &SipHarness, call_id: &str) -> u64 {
    eventually("the reject", || async { !h.requests(call_id).is_empty() }).await;
    let requests = h.requests(call_id);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(
        (requests[0].action.as_str(), requests[0].status),
        ("reject", 200)
    );
    let body = requests[0].body.clone().expect("a JSON reject");
    assert_conforms("RealtimeCallRejectRequest", &body);
    body["status_code"].as_u64().unwrap()
}

#[tokio::test]
async fn an_unknown_sip_user_is_rejected_through_rest() {
    let h = SipHarness::start(scenario(), SipOptions::default()).await;
    let answer = h
        .call("rtc_who", "sales", "wh_who", WebhookSigning::Valid)
        .await;
    assert_eq!(
        answer.status, 200,
        "decided through REST, never by the webhook's status"
    );
    assert_eq!(rejected_with(&h, "rtc_who").await, 404);
    assert_eq!(
        h.platform.calls().state("rtc_who"),
        Some(CallState::Rejected(404))
    );
    assert_eq!(h.sideband().connections(), 0);
    h.stop().await;
}

#[tokio::test]
async fn at_capacity_or_draining_calls_are_rejected_through_rest() {
    let options = SipOptions {
        max_calls: 1,
        ..SipOptions::default()
    };
    let h = SipHarness::start(scenario(), options).await;
    assert_eq!(
        h.call("rtc_one", USER, "wh_one", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    eventually("the first call's sideband", || async {
        h.platform.calls().attached("rtc_one")
    })
    .await;
    assert_eq!(
        h.call("rtc_two", USER, "wh_two", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    assert_eq!(rejected_with(&h, "rtc_two").await, 486, "busy");
    assert!(h.platform.calls().caller_hangs_up("rtc_one"));
    h.until_no_calls().await;
    h.state.capacity.start_draining();
    assert_eq!(
        h.call("rtc_three", USER, "wh_three", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    assert_eq!(rejected_with(&h, "rtc_three").await, 503, "draining");
    assert_eq!(h.platform.calls().sidebands("rtc_two"), 0);
    h.stop().await;
}

#[tokio::test]
async fn refer_and_hangup_reach_the_platform_and_their_failures_say_why() {
    use agent_server::platform::{Platform, PlatformError};
    let h = SipHarness::start(scenario(), SipOptions::default()).await;
    assert_eq!(
        h.call("rtc_xfer", USER, "wh_xfer", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    eventually("the sideband attached", || async {
        h.platform.calls().attached("rtc_xfer")
    })
    .await;
    // What end_call and transfer_call use: a transfer by SIP REFER...
    let platform = Platform::new(&h.platform.api_base(), Some(Secret::new(API_KEY))).unwrap();
    platform.refer("rtc_xfer", "tel:+15550199").await.unwrap();
    assert_eq!(
        h.platform.calls().state("rtc_xfer"),
        Some(CallState::Transferred("tel:+15550199".into()))
    );
    let refer = h.requests("rtc_xfer").pop().unwrap();
    assert_eq!(refer.action, "refer");
    assert_conforms("RealtimeCallReferRequest", refer.body.as_ref().unwrap());
    h.until_no_calls().await;
    // ...after which the call is gone: a hang-up says so, with the platform's reason.
    let gone = platform.hangup("rtc_xfer").await.unwrap_err();
    assert_eq!(gone.status(), Some(404), "{gone}");
    assert!(gone.to_string().contains("hang up the call"), "{gone}");
    // A wrong key is refused, and the error does not repeat it.
    let wrong = Platform::new(
        &h.platform.api_base(),
        Some(Secret::new("sk-wrong-key-0123456789")),
    )
    .unwrap();
    let err = wrong.hangup("rtc_xfer").await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(!err.to_string().contains("sk-wrong-key"), "{err}");
    // An id that would leave the path never reaches the network.
    assert!(matches!(
        platform.hangup("../v1/files").await,
        Err(PlatformError::BadCallId(_))
    ));
    // Nothing listening: unreachable, after the retry budget, within the deadline.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let nowhere = Platform::new(&base, None).unwrap();
    let err = nowhere.hangup("rtc_xfer").await.unwrap_err();
    assert!(
        matches!(
            err,
            PlatformError::Unreachable {
                action: "hang up the call",
                ..
            }
        ),
        "{err}"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_oversized_webhook_is_refused_before_it_is_read() {
    let h = SipHarness::start(scenario(), SipOptions::default()).await;
    let padding = "x".repeat(70 * 1024);
    let event = json!({"object": "event", "id": "evt_big", "type": "realtime.call.incoming",
        "created_at": 1, "data": {"call_id": "rtc_big", "sip_headers": [], "padding": padding}});
    let answer = h
        .platform
        .send_webhook(
            h.addr,
            WEBHOOK_PATH,
            "wh_big",
            &event,
            WebhookSigning::Valid,
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 413);
    assert_eq!(h.platform.requests(), vec![]);
    h.stop().await;
}

/// Every answer the platform started playing was played to the end (its
/// `output_audio_buffer.stopped` was sent) before the call ended: the platform closes the
/// sideband at a hang-up, so a `stopped` still due then is never sent.
async fn assert_every_answer_was_heard(h: &SipHarness) {
    let ids = |events: Vec<Value>| -> Vec<String> {
        events
            .iter()
            .map(|e| e["response_id"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    let started = ids(h.sent("output_audio_buffer.started").await);
    let stopped = ids(h.sent("output_audio_buffer.stopped").await);
    assert!(!started.is_empty());
    assert_eq!(started, stopped, "an answer was cut off by the hang-up");
}

#[tokio::test]
async fn end_call_hangs_up_once_the_platform_played_the_goodbye() {
    let scenario = Scenario::new("goodbye")
        .turn(Turn::model_first().model(ModelStep::say("Hello.")))
        .turn(
            Turn::user("That's all, thanks.")
                .model(
                    ModelStep::say("Goodbye, and thanks for calling!")
                        .call(ScriptedCall::new("end_call", json!({}))),
                )
                .model(ModelStep::say("Bye.")),
        );
    let h = SipHarness::start(scenario, SipOptions::default()).await;
    assert_eq!(
        h.call("rtc_bye", USER, "wh_bye", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    eventually("the greeting", || async { responses_done(&h).await >= 1 }).await;
    assert!(h.platform.control("rtc_bye", CallControl::CallerSpeaks));
    h.until_no_calls().await;
    // The accept offered end_call; the model's goodbye and the answer after the tool's output
    // were both played before the one hang-up.
    let accept = h.requests("rtc_bye")[0].body.clone().unwrap();
    assert!(
        accept["tools"].to_string().contains("\"end_call\""),
        "{accept}"
    );
    assert_eq!(
        h.actions("rtc_bye"),
        vec![("accept".into(), 200), ("hangup".into(), 200)]
    );
    assert_eq!(responses_done(&h).await, 3);
    assert_every_answer_was_heard(&h).await;
    let stored = h.stored_call("rtc_bye").await;
    assert_eq!(
        (
            stored.transport.as_str(),
            stored.caller.as_str(),
            stored.callee.as_str()
        ),
        ("sip", CALLER, USER)
    );
    assert_eq!(stored.outcome.as_deref(), Some("agent_hung_up"));
    let metrics = h.metrics().await;
    assert!(
        metrics.contains("agent_serve_calls_total{node=\"n1\",outcome=\"agent_hung_up\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agent_serve_calls_active{node=\"n1\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("agent_serve_tool_duration_seconds_count{node=\"n1\"} 1"),
        "{metrics}"
    );
    assert_eq!(h.sideband().violations().await, Vec::<String>::new());
    h.assert_client_events_conform().await;
    h.stop().await;
}

#[tokio::test]
async fn transfer_call_refers_only_to_an_allow_listed_target() {
    let scenario =
        Scenario::new("transfer")
            .turn(Turn::model_first().model(ModelStep::say("Hello.")))
            .turn(
                Turn::user("Put me through to someone.")
                    .model(ModelStep::calls([ScriptedCall::new(
                        "transfer_call",
                        json!({"target": "+19005550000"}),
                    )]))
                    .model(ModelStep::say("Let me put you through to sales.").call(
                        ScriptedCall::new("transfer_call", json!({"target": "sales"})),
                    ))
                    .model(ModelStep::say("Transferring now.")),
            );
    let options = SipOptions {
        agent_extra: "[phone.transfer_targets]\nsales = \"+15550123\"\n",
        ..SipOptions::default()
    };
    let h = SipHarness::start(scenario, options).await;
    assert_eq!(
        h.call("rtc_to", USER, "wh_to", WebhookSigning::Valid)
            .await
            .status,
        200
    );
    eventually("the greeting", || async { responses_done(&h).await >= 1 }).await;
    assert!(h.platform.control("rtc_to", CallControl::CallerSpeaks));
    h.until_no_calls().await;
    let outputs: Vec<String> = h
        .received("conversation.item.create")
        .await
        .into_iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .map(|e| e["item"]["output"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outputs.len(), 2, "{outputs:?}");
    assert!(
        outputs[0].contains("\"error\"") && outputs[0].contains("sales"),
        "refused, naming the allowed targets: {}",
        outputs[0]
    );
    // One REFER, to the allow-listed number, after the notice was played; no hang-up after.
    let requests = h.requests("rtc_to");
    let actions: Vec<&str> = requests.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["accept", "refer"]);
    let refer = requests[1].body.clone().unwrap();
    assert_conforms("RealtimeCallReferRequest", &refer);
    assert_eq!(refer["target_uri"], "tel:+15550123");
    assert_eq!(
        h.platform.calls().state("rtc_to"),
        Some(CallState::Transferred("tel:+15550123".into()))
    );
    assert_every_answer_was_heard(&h).await;
    assert_eq!(h.stored_outcome("rtc_to").await, "transferred");
    h.stop().await;
}

#[tokio::test]
async fn the_webhook_is_rate_limited_per_client_before_its_signature_is_checked() {
    let options = SipOptions {
        limits: "webhook_requests_per_minute = 60\nwebhook_burst = 2",
        ..SipOptions::default()
    };
    let h = SipHarness::start(scenario(), options).await;
    for i in 0..2 {
        let answer = h
            .call(
                &format!("rtc_f{i}"),
                USER,
                &format!("wh_f{i}"),
                WebhookSigning::WrongSecret,
            )
            .await;
        assert_eq!(answer.status, 401);
    }
    let limited = h.call("rtc_f2", USER, "wh_f2", WebhookSigning::Valid).await;
    assert_eq!(limited.status, 429, "{limited:?}");
    assert!(limited.header("retry-after").is_some(), "{limited:?}");
    assert_eq!(
        h.platform.requests(),
        vec![],
        "nothing accepted or rejected"
    );
    assert_eq!(h.state.capacity.in_use(), 0);
    assert!(
        h.metrics()
            .await
            .contains("agent_serve_rate_limited_total{node=\"n1\"} 1")
    );
    h.stop().await;
}

/// A handoff on a call the platform holds: the sideband switches the session to the target's
/// instructions and tools, leaves the voice and formats alone, keeps call control (`end_call`),
/// and `/metrics` counts it.
#[tokio::test]
async fn a_handoff_on_a_sip_call_switches_the_agent_over_the_sideband() {
    let scenario = Scenario::new("handoff").turn(
        Turn::model_first()
            .model(ModelStep::calls([ScriptedCall::new(
                "transfer_to_desk",
                json!({}),
            )]))
            .model(ModelStep::calls([ScriptedCall::new(
                "caller_lookup",
                json!({"order_id": "A1001"}),
            )]))
            .model(ModelStep::say(
                "The order desk here: A1001 shipped yesterday.",
            )),
    );
    let desk = "name = \"desk\"\nhandoff_description = \"orders\"\n\
                instructions = \"You are the order desk.\"\noutput_modalities = [\"audio\"]\n\
                tools = [\"caller_lookup\"]\n";
    // The route's agent, written over the harness's own: top-level keys must come before
    // its tables.
    let phone = "name = \"phone\"\ninstructions = \"You answer the phone for a shop.\"\n\
                 output_modalities = [\"audio\"]\ntools = [\"caller_lookup\"]\nhandoffs = [\"desk\"]\n\
                 [turn_detection]\ntype = \"server_vad\"\nsilence_duration_ms = 200\n";
    let options = SipOptions {
        files: vec![
            ("phone.toml", phone.to_owned()),
            ("desk.toml", desk.to_owned()),
        ],
        ..SipOptions::default()
    };
    let h = SipHarness::start(scenario, options).await;
    let answer = h
        .call("rtc_hand", USER, "wh_hand", WebhookSigning::Valid)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    eventually("the desk's answer", || async {
        responses_done(&h).await >= 3
    })
    .await;

    let updates = h.received("session.update").await;
    let handoff = updates
        .iter()
        .map(|u| &u["session"])
        .find(|s| s["instructions"] == "You are the order desk.")
        .unwrap_or_else(|| panic!("a handoff update in {updates:#?}"));
    let tools = tool_names(handoff);
    assert!(
        tools.contains(&"caller_lookup") && tools.contains(&"end_call"),
        "{tools:?}"
    );
    assert!(
        handoff.get("audio").is_none(),
        "voice and formats stay: {handoff}"
    );
    let outputs: Vec<Value> = h
        .received("conversation.item.create")
        .await
        .into_iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .collect();
    assert!(
        outputs[0]["item"]["output"]
            .as_str()
            .unwrap()
            .contains("desk")
    );
    assert!(
        h.metrics()
            .await
            .contains("agent_serve_handoffs_total{node=\"n1\",to=\"desk\"} 1")
    );
    h.assert_client_events_conform().await;
    assert!(h.platform.calls().caller_hangs_up("rtc_hand"));
    h.until_no_calls().await;
    h.stop().await;
}

/// A tool slower than `filler_after_ms` on a SIP call: the sideband asks for the filler out of
/// band (`conversation: "none"`) while the tool runs, the platform plays it, and the answer is
/// asked for once, after the tool's output and the filler's end.
#[tokio::test]
async fn a_slow_tool_gets_an_out_of_band_filler_over_the_sideband() {
    let scenario = Scenario::new("slow tool")
        .turn(Turn::model_first().model(ModelStep::say("Hello, thanks for calling the shop.")))
        .turn(
            Turn::user("Where is my order A1001?")
                .model(ModelStep::calls([ScriptedCall::new(
                    "slow_lookup",
                    json!({"order_id": "A1001"}),
                )]))
                .model(ModelStep::say("Your order A1001 shipped yesterday.")),
        );
    let phone = "name = \"phone\"\ninstructions = \"You answer the phone for a shop.\"\n\
                 output_modalities = [\"audio\"]\ntools = [\"slow_lookup\"]\n\
                 [turn_detection]\ntype = \"server_vad\"\nsilence_duration_ms = 200\n\
                 [tool_options]\nfiller_after_ms = 150\n";
    let options = SipOptions {
        files: vec![("phone.toml", phone.to_owned())],
        ..SipOptions::default()
    };
    let h = SipHarness::start(scenario, options).await;
    let answer = h
        .call("rtc_slow", USER, "wh_slow", WebhookSigning::Valid)
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    eventually("the greeting", || async { responses_done(&h).await >= 1 }).await;
    assert!(h.platform.control("rtc_slow", CallControl::CallerSpeaks));
    eventually(
        "the greeting, the call, the filler and the answer",
        || async { responses_done(&h).await >= 4 },
    )
    .await;

    let filler_id = assert_one_filler_then_one_follow_up(&frames(h.sideband()).await);
    // The platform played it on the call (the sideband carries no audio, only word of it).
    assert!(
        h.sent("output_audio_buffer.started")
            .await
            .iter()
            .any(|e| e["response_id"] == filler_id.as_str()),
        "the filler was played"
    );
    let done = h.sent("response.done").await;
    let answer = done.last().unwrap();
    assert!(
        answer.to_string().contains("shipped yesterday"),
        "the last answer is the tool's: {answer}"
    );
    assert_eq!(h.sideband().violations().await, Vec::<String>::new());
    h.assert_client_events_conform().await;
    assert!(h.platform.calls().caller_hangs_up("rtc_slow"));
    h.until_no_calls().await;
    h.stop().await;
}
