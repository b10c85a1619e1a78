//! WebRTC calls on the fake platform, end to end on loopback: a test browser (str0m) mints a
//! client secret or uses the API key, posts its offer, completes ICE and DTLS, and talks to
//! the scripted session over `oai-events` and its audio track; sidebands join the same call.

mod common;
#[path = "../../agent-core/tests/common/spec.rs"]
mod spec;

use std::time::Duration;

use agent_testkit::{
    AudioSettings, Dialect, ModelStep, Scenario, ScriptedCall, ServerConfig, Turn,
    platform::{CallControl, CallKind, CallState, FakePlatform, OfferForm, SidebandDrop},
    webrtc::{CallVia, TestBrowser, post_client_secret},
};
use common::{Client, Read};
use serde_json::{Value, json};

const KEY: &str = "sk-test-platform";
const WAIT: Duration = Duration::from_secs(5);

/// One turn: the model says a few words and looks the order up, then answers with the result.
fn order_scenario() -> Scenario {
    Scenario::new("order over WebRTC").turn(
        Turn::user("Where is my order A1?")
            .model(
                ModelStep::say("Let me check.")
                    .call(ScriptedCall::new("lookup_order", json!({"order_id": "A1"}))),
            )
            .model(ModelStep::say("It shipped yesterday.")),
    )
}

/// A platform whose answers are short (10 ms of audio per character), checking `KEY`.
fn platform(scenario: Scenario, on_drop: SidebandDrop) -> FakePlatform {
    let audio = AudioSettings {
        ms_per_char: 10,
        ..AudioSettings::default()
    };
    let config = ServerConfig::new(scenario).audio(audio);
    FakePlatform::start(config, on_drop, "whsec_dGVzdC1zZWNyZXQ=", Some(KEY)).unwrap()
}

/// Mints a client secret over HTTP.
async fn mint(platform: &FakePlatform, session: Value) -> String {
    let answer = post_client_secret(
        &platform.api_base(),
        Some(KEY),
        &json!({"session": session}),
    )
    .await
    .unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    body["value"].as_str().unwrap().to_owned()
}

fn function_output(call_id: &str, output: &str) -> Value {
    json!({
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    })
}

/// The `function_call` items of a `response.done`.
fn calls_of(done: &Value) -> Vec<Value> {
    done["response"]["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|item| item["type"] == "function_call")
        .cloned()
        .collect()
}

/// Every event the data channel carried validates against the official GA schemas (skipped,
/// with a note, when the spec folder is missing, unless CI requires it).
fn conforms(events: &[Value]) {
    let Some(spec) = spec::spec() else { return };
    let failures: Vec<String> = events
        .iter()
        .filter_map(|event| {
            let failed = spec.validate_server_event(Dialect::Ga, event).err()?;
            Some(format!("{failed}\n    {event}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether the browser's peer connection ends within `WAIT`.
async fn ended(browser: &TestBrowser) -> bool {
    let wait = async {
        while !browser.ended() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(WAIT, wait).await.is_ok()
}

/// The sideband's events up to the first of type `ty`, within `WAIT`.
async fn sideband_until(sideband: &mut Client, ty: &str) -> Vec<Value> {
    tokio::time::timeout(WAIT, sideband.until(ty))
        .await
        .unwrap_or_else(|_| panic!("the sideband saw no {ty}"))
}

#[tokio::test]
async fn a_call_with_a_client_secret_plays_the_scenario_with_audio_both_ways() {
    let platform = platform(order_scenario(), SidebandDrop::CallSurvives);
    let secret = mint(
        &platform,
        json!({"type": "realtime", "instructions": "You track orders."}),
    )
    .await;
    let via = CallVia::ClientSecret(secret.clone());
    let mut browser = TestBrowser::connect(&platform.api_base(), via, WAIT)
        .await
        .unwrap();
    let call_id = browser.call_id().to_owned();
    assert!(call_id.starts_with("rtc_"), "{call_id}");
    assert_eq!(platform.calls().kind(&call_id), Some(CallKind::WebRtc));
    assert_eq!(platform.calls().state(&call_id), Some(CallState::Accepted));

    let created = browser.wait_for("session.created", WAIT).await.unwrap();
    assert_eq!(created["session"]["instructions"], "You track orders.");

    // The caller speaks: packets start the turn, their end closes it, and the model answers.
    browser.speak(200).unwrap();
    let done = browser.wait_for("response.done", WAIT).await.unwrap();
    let types = browser.history_types();
    let position = |ty: &str| types.iter().position(|t| t == ty);
    let started = position("input_audio_buffer.speech_started").expect("speech_started");
    let stopped = position("input_audio_buffer.speech_stopped").expect("speech_stopped");
    let committed = position("input_audio_buffer.committed").expect("committed");
    let playing = position("output_audio_buffer.started").expect("playback started");
    assert!(
        started < stopped && stopped < committed && committed < playing,
        "{types:?}"
    );
    assert!(
        !types.iter().any(|t| t == "response.output_audio.delta"),
        "audio goes on the track, not the channel: {types:?}"
    );
    let calls = calls_of(&done);
    assert_eq!(calls.len(), 1, "{done}");
    assert_eq!(calls[0]["name"], "lookup_order");
    let stopped = browser
        .wait_for("output_audio_buffer.stopped", WAIT)
        .await
        .unwrap();
    assert_eq!(stopped["response_id"], done["response"]["id"]);
    assert!(
        browser.audio_packets_received() > 0,
        "the answer's audio arrived on the track"
    );

    // The browser runs the function call itself, over the data channel.
    let call_id_of_call = calls[0]["call_id"].as_str().unwrap();
    browser
        .send(&function_output(call_id_of_call, r#"{"status":"shipped"}"#))
        .unwrap();
    browser.send(&json!({"type": "response.create"})).unwrap();
    let done = browser.wait_for("response.done", WAIT).await.unwrap();
    assert_eq!(
        done["response"]["output"][0]["content"][0]["transcript"],
        "It shipped yesterday."
    );
    assert!(platform.sideband().violations().await.is_empty());

    let stats = platform.media_stats(&call_id).unwrap();
    assert!(stats.packets_received >= 5, "{stats:?}");
    assert!(stats.packets_sent > 0, "{stats:?}");
    let requests = platform.call_create_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].form, Some(OfferForm::ClientSecret));
    assert_eq!(requests[0].status, 201);
    assert_eq!(requests[0].call_id.as_deref(), Some(call_id.as_str()));
    assert_eq!(
        requests[0].session.as_ref().unwrap()["instructions"],
        "You track orders."
    );
    let minted = platform.client_secrets();
    assert_eq!(minted.len(), 1);
    assert_eq!(minted[0].value, secret);
    assert_eq!(minted[0].expires_at - minted[0].created_at, 600);
    conforms(browser.history());
    browser.close().await;
    platform.shutdown().await;
}

#[tokio::test]
async fn a_multipart_call_takes_its_session_from_the_form_and_answers_every_event() {
    let platform = platform(order_scenario(), SidebandDrop::CallSurvives);
    let via = CallVia::Multipart {
        api_key: Some(KEY.into()),
        session: json!({"type": "realtime", "instructions": "From the form."}),
    };
    let mut browser = TestBrowser::connect(&platform.api_base(), via, WAIT)
        .await
        .unwrap();
    let created = browser.wait_for("session.created", WAIT).await.unwrap();
    assert_eq!(created["session"]["instructions"], "From the form.");

    // A session.update from the browser acts on the call.
    browser
        .send(&json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}))
        .unwrap();
    let updated = browser.wait_for("session.updated", WAIT).await.unwrap();
    assert_eq!(updated["session"]["output_modalities"], json!(["text"]));

    // Bad input on the channel gets error events, as on the WebSocket.
    browser.send_raw("{not json").unwrap();
    let error = browser.wait_for("error", WAIT).await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_json");
    browser.send(&json!({"type": "no.such.event"})).unwrap();
    let error = browser.wait_for("error", WAIT).await.unwrap();
    assert_eq!(error["error"]["code"], "invalid_value");

    // The test plays the caller through the platform, as on SIP calls.
    assert!(platform.control(browser.call_id(), CallControl::CallerSpeaks));
    browser
        .wait_for("input_audio_buffer.speech_started", WAIT)
        .await
        .unwrap();
    let done = browser.wait_for("response.done", WAIT).await.unwrap();
    assert_eq!(
        done["response"]["output"][0]["content"][0]["text"],
        "Let me check."
    );

    let requests = platform.call_create_requests();
    assert_eq!(requests[0].form, Some(OfferForm::Multipart));
    assert_eq!(requests[0].status, 201);
    browser.close().await;
    platform.shutdown().await;
}

#[tokio::test]
async fn a_sideband_on_the_call_sees_its_events_and_runs_the_function_call() {
    let platform = platform(order_scenario(), SidebandDrop::CallSurvives);
    let secret = mint(&platform, json!({"type": "realtime"})).await;
    let mut browser =
        TestBrowser::connect(&platform.api_base(), CallVia::ClientSecret(secret), WAIT)
            .await
            .unwrap();
    browser.wait_for("session.created", WAIT).await.unwrap();
    let url = format!("{}?call_id={}", platform.realtime_url(), browser.call_id());
    let auth = format!("Bearer {KEY}");
    let mut sideband = Client::connect_with(&url, &[("authorization", &auth)]).await;
    let created = sideband.next_event().await;
    assert_eq!(created["type"], "session.created", "{created}");
    assert!(platform.calls().attached(browser.call_id()));
    assert_eq!(platform.calls().sidebands(browser.call_id()), 1);

    // The server keeps the tools: its session.update reaches the browser too.
    let tools = json!([{"type": "function", "name": "lookup_order", "description": "Looks an order up.", "parameters": {"type": "object"}}]);
    sideband
        .send(json!({"type": "session.update", "session": {"type": "realtime", "tools": tools}}))
        .await;
    let updated = sideband_until(&mut sideband, "session.updated").await;
    assert_eq!(
        updated.last().unwrap()["session"]["tools"][0]["name"],
        "lookup_order"
    );
    let seen = browser.wait_for("session.updated", WAIT).await.unwrap();
    assert_eq!(seen["session"]["tools"][0]["name"], "lookup_order");
    // And the browser's own update reaches the sideband.
    browser
        .send(&json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}}))
        .unwrap();
    let updated = sideband_until(&mut sideband, "session.updated").await;
    let session = &updated.last().unwrap()["session"];
    assert_eq!(session["instructions"], "Be brief.");
    assert_eq!(
        session["tools"][0]["name"], "lookup_order",
        "one session for both"
    );
    browser.wait_for("session.updated", WAIT).await.unwrap();

    // The caller speaks; both see the turn and the call.
    browser.speak(200).unwrap();
    let events = sideband_until(&mut sideband, "response.done").await;
    let types = common::types(&events);
    assert!(
        types.contains(&"input_audio_buffer.speech_started".to_owned()),
        "{types:?}"
    );
    assert!(
        types.contains(&"output_audio_buffer.started".to_owned()),
        "{types:?}"
    );
    let done = events.last().unwrap();
    let call = &calls_of(done)[0];
    let in_browser = browser.wait_for("response.done", WAIT).await.unwrap();
    assert_eq!(in_browser["response"]["id"], done["response"]["id"]);

    // The sideband answers the call; the scenario's next step plays for both.
    sideband
        .send(function_output(
            call["call_id"].as_str().unwrap(),
            r#"{"status":"shipped"}"#,
        ))
        .await;
    sideband.send(json!({"type": "response.create"})).await;
    let events = sideband_until(&mut sideband, "response.done").await;
    let output = events
        .iter()
        .find(|e| {
            e["type"] == "conversation.item.added" && e["item"]["type"] == "function_call_output"
        })
        .expect("the output entered the conversation");
    assert_eq!(output["item"]["output"], r#"{"status":"shipped"}"#);
    let answer = events.last().unwrap();
    assert_eq!(
        answer["response"]["output"][0]["content"][0]["transcript"],
        "It shipped yesterday."
    );
    let added = browser
        .wait_for("conversation.item.added", WAIT)
        .await
        .unwrap();
    assert_eq!(added["item"]["type"], "function_call_output");
    let in_browser = browser.wait_for("response.done", WAIT).await.unwrap();
    assert_eq!(in_browser["response"]["id"], answer["response"]["id"]);
    assert!(platform.sideband().violations().await.is_empty());

    // The sideband's events were recorded under its own connection.
    let received = platform.sideband().received().await;
    let from_sideband = received
        .iter()
        .filter(|r| r.raw.contains("function_call_output"))
        .count();
    assert_eq!(from_sideband, 1);

    // Hanging up through REST ends the call and closes the sideband.
    let hangup = agent_testkit::twilio::http::request(
        platform
            .api_base()
            .trim_start_matches("http://")
            .parse()
            .unwrap(),
        "POST",
        &format!("/v1/realtime/calls/{}/hangup", browser.call_id()),
        &[("authorization", auth.as_str())],
        b"",
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(hangup.status, 200, "{}", hangup.body);
    assert_eq!(
        platform.calls().state(browser.call_id()),
        Some(CallState::HungUp)
    );
    loop {
        match sideband.read().await {
            Read::Closed(frame) => {
                assert_eq!(frame.map(|f| f.0), Some(1000));
                break;
            }
            Read::Text(_) => {}
            Read::Error(e) => panic!("the sideband failed instead of closing: {e}"),
        }
    }
    browser.close().await;
    platform.shutdown().await;
}

#[tokio::test]
async fn clearing_the_output_buffer_stops_the_playout() {
    let long = Scenario::new("long answer").turn(
        Turn::user("Tell me a story.").model(ModelStep::say("Once upon a time.").audio_ms(5_000)),
    );
    let platform = platform(long, SidebandDrop::CallSurvives);
    let secret = mint(&platform, json!({"type": "realtime"})).await;
    let mut browser =
        TestBrowser::connect(&platform.api_base(), CallVia::ClientSecret(secret), WAIT)
            .await
            .unwrap();
    browser.speak(200).unwrap();
    let started = browser
        .wait_for("output_audio_buffer.started", WAIT)
        .await
        .unwrap();
    browser.wait_for("response.done", WAIT).await.unwrap();
    browser
        .send(&json!({"type": "output_audio_buffer.clear"}))
        .unwrap();
    let cleared = browser
        .wait_for("output_audio_buffer.cleared", WAIT)
        .await
        .unwrap();
    assert_eq!(cleared["response_id"], started["response_id"]);
    let sent = platform
        .media_stats(browser.call_id())
        .unwrap()
        .packets_sent;
    assert!(
        sent < 250,
        "5 s of audio is 250 frames; {sent} were sent before the clear"
    );
    // No `.stopped` follows a clear, and the frames stop.
    let after = browser
        .wait_for("output_audio_buffer.stopped", Duration::from_millis(400))
        .await;
    assert!(after.is_err(), "{after:?}");
    let later = platform
        .media_stats(browser.call_id())
        .unwrap()
        .packets_sent;
    assert!(
        later <= sent + 2,
        "frames went on after the clear: {sent} then {later}"
    );
    browser.close().await;
    platform.shutdown().await;
}

#[tokio::test]
async fn the_caller_speaking_over_the_answer_cuts_it_off() {
    let story = Scenario::new("interrupted story")
        .turn(
            Turn::user("Tell me a story.")
                .model(ModelStep::say("Once upon a time.").audio_ms(5_000)),
        )
        .turn(Turn::user("Stop, please.").model(ModelStep::say("Stopped.")));
    let platform = platform(story, SidebandDrop::CallSurvives);
    let secret = mint(&platform, json!({"type": "realtime"})).await;
    let mut browser =
        TestBrowser::connect(&platform.api_base(), CallVia::ClientSecret(secret), WAIT)
            .await
            .unwrap();
    browser.speak(200).unwrap();
    let started = browser
        .wait_for("output_audio_buffer.started", WAIT)
        .await
        .unwrap();
    browser.wait_for("response.done", WAIT).await.unwrap();
    // The answer plays for 5 s; the caller talks over it.
    browser.speak(200).unwrap();
    browser
        .wait_for("input_audio_buffer.speech_started", WAIT)
        .await
        .unwrap();
    let cleared = browser
        .wait_for("output_audio_buffer.cleared", WAIT)
        .await
        .unwrap();
    assert_eq!(cleared["response_id"], started["response_id"]);
    // The interruption is the next turn, answered in its turn.
    let done = browser.wait_for("response.done", WAIT).await.unwrap();
    assert_eq!(
        done["response"]["output"][0]["content"][0]["transcript"],
        "Stopped."
    );
    let types = browser.history_types();
    let stops = types
        .iter()
        .filter(|t| *t == "output_audio_buffer.stopped")
        .count();
    assert_eq!(stops, 0, "the cut answer never reports stopped: {types:?}");
    browser.close().await;
    platform.shutdown().await;
}

#[tokio::test]
async fn a_browser_that_hangs_up_ends_the_call() {
    let platform = platform(order_scenario(), SidebandDrop::CallSurvives);
    let secret = mint(&platform, json!({"type": "realtime"})).await;
    let browser = TestBrowser::connect(&platform.api_base(), CallVia::ClientSecret(secret), WAIT)
        .await
        .unwrap();
    let call_id = browser.call_id().to_owned();
    let url = format!("{}?call_id={call_id}", platform.realtime_url());
    let mut sideband = Client::connect(&url).await;
    assert_eq!(sideband.next_event().await["type"], "session.created");
    browser.close().await;
    let over = platform
        .until(WAIT, |p| {
            p.calls().state(&call_id) == Some(CallState::Ended)
        })
        .await;
    assert!(over, "{:?}", platform.calls().state(&call_id));
    match sideband.read().await {
        Read::Closed(frame) => assert_eq!(frame.map(|f| f.0), Some(1000)),
        other => panic!("the sideband outlived the call: {other:?}"),
    }
    platform.shutdown().await;
}

#[tokio::test]
async fn a_dropped_sideband_leaves_the_call_unless_the_platform_ends_calls_with_it() {
    for on_drop in [SidebandDrop::CallSurvives, SidebandDrop::CallEnds] {
        let platform = platform(order_scenario(), on_drop);
        let secret = mint(&platform, json!({"type": "realtime"})).await;
        let mut browser =
            TestBrowser::connect(&platform.api_base(), CallVia::ClientSecret(secret), WAIT)
                .await
                .unwrap();
        let call_id = browser.call_id().to_owned();
        let url = format!("{}?call_id={call_id}", platform.realtime_url());
        let mut sideband = Client::connect(&url).await;
        assert_eq!(sideband.next_event().await["type"], "session.created");
        assert!(platform.control(&call_id, CallControl::DropSideband));
        match sideband.read().await {
            // Dropped without a close frame.
            Read::Closed(None) | Read::Error(_) => {}
            other => panic!("{on_drop:?}: expected a drop, got {other:?}"),
        }
        match on_drop {
            SidebandDrop::CallSurvives => {
                let detached = platform
                    .until(WAIT, |p| !p.calls().attached(&call_id))
                    .await;
                assert!(detached);
                assert_eq!(platform.calls().state(&call_id), Some(CallState::Accepted));
                // The browser goes on, and a new sideband joins the same session.
                browser
                    .send(&json!({"type": "session.update", "session": {"type": "realtime", "instructions": "Still here."}}))
                    .unwrap();
                browser.wait_for("session.updated", WAIT).await.unwrap();
                let mut again = Client::connect(&url).await;
                let created = again.next_event().await;
                assert_eq!(created["session"]["instructions"], "Still here.");
                assert_eq!(platform.calls().sidebands(&call_id), 2);
            }
            SidebandDrop::CallEnds => {
                let over = platform
                    .until(WAIT, |p| {
                        p.calls().state(&call_id) == Some(CallState::Ended)
                    })
                    .await;
                assert!(over, "{:?}", platform.calls().state(&call_id));
                assert!(ended(&browser).await, "the browser learns the call ended");
            }
        }
        browser.close().await;
        platform.shutdown().await;
    }
}
