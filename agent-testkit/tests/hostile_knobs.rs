//! Knobs for hostile servers: stalls that still answer pings, stalled streams, failed and
//! dropped `response.create`, malformed `response.done`, expired sessions, oversized frames,
//! endless tool calls and late transcripts, each checked with a raw WebSocket client.
//!
//! Every wait is short: 2 s for what must arrive, 300 ms for what must not.

mod common;

use std::time::Duration;

use agent_testkit::{
    ConnectionFaults, DialectMode, ErrorSpec, Faults, MalformedDone, ModelStep, Scenario,
    ScriptScope, ScriptedServer, ServerConfig, ServerHandle, Turn,
};
use base64::Engine as _;
use common::{Client, two_call_scenario, types};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long something that must arrive may take.
const DEADLINE: Duration = Duration::from_secs(2);
/// How long to listen when nothing may arrive.
const QUIET: Duration = Duration::from_millis(300);

fn start(scenario: Scenario, faults: ConnectionFaults) -> ServerHandle {
    let config = ServerConfig::new(scenario).faults(Faults::none().on_connection(0, faults));
    ScriptedServer::start(config).unwrap()
}

fn one_turn() -> Scenario {
    Scenario::new("one turn")
        .turn(Turn::user("Hello").model(ModelStep::say("Hi, how can I help you today?")))
}

/// The next frame other than a ping or pong, within [`DEADLINE`].
async fn frame(c: &mut Client) -> Option<Result<Message, String>> {
    loop {
        let msg = tokio::time::timeout(DEADLINE, c.ws.next())
            .await
            .expect("no server frame within the deadline");
        match msg {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(Ok(m)),
            Some(Err(e)) => return Some(Err(e.to_string())),
            None => return None,
        }
    }
}

/// The next JSON event within [`DEADLINE`].
async fn event(c: &mut Client) -> Value {
    match frame(c).await {
        Some(Ok(Message::Text(t))) => {
            serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
        }
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Events up to and including the first of type `ty`.
async fn until(c: &mut Client, ty: &str) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let ev = event(c).await;
        let done = ev["type"] == ty;
        out.push(ev);
        if done {
            return out;
        }
    }
}

/// Fails if any frame other than a pong arrives within [`QUIET`].
async fn assert_quiet(c: &mut Client, when: &str) {
    let deadline = tokio::time::Instant::now() + QUIET;
    loop {
        match tokio::time::timeout_at(deadline, c.ws.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Pong(_)))) => continue,
            Ok(other) => panic!("{when}: expected silence, got {other:?}"),
        }
    }
}

/// `session.created`, then a GA session update (text output unless `audio_input` is given),
/// then `session.updated`: two frames.
async fn setup(c: &mut Client, audio_input: Option<Value>) {
    assert_eq!(event(c).await["type"], "session.created");
    let mut session = json!({"type": "realtime", "output_modalities": ["text"]});
    if let Some(input) = audio_input {
        session["audio"] = json!({"input": input});
    }
    c.send(json!({"type": "session.update", "session": session}))
        .await;
    assert_eq!(event(c).await["type"], "session.updated");
}

/// A user text message; returns its id after `conversation.item.done` (two frames).
async fn say(c: &mut Client, text: &str) -> String {
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]
    }}))
    .await;
    let events = until(c, "conversation.item.done").await;
    events[0]["item"]["id"].as_str().unwrap().to_string()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `ms` of a loud PCM16 24 kHz tone, which the server's VAD hears as speech.
fn tone(ms: usize) -> Vec<u8> {
    (0..ms * 24)
        .flat_map(|i| (((i as f64 * 0.1).sin() * 8000.0) as i16).to_le_bytes())
        .collect()
}

fn position(events: &[Value], ty: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {:?}", types(events)))
}

fn text_of(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap_or(""))
        .collect()
}

#[tokio::test]
async fn stall_after_sends_nothing_but_answers_pings() {
    let server = start(one_turn(), ConnectionFaults::new().stall_after(2));
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await; // frames 1 and 2, then the stall
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]
    }}))
    .await;
    c.send(json!({"type": "response.create", "event_id": "evt_1"}))
        .await;
    assert_quiet(&mut c, "a stalled server").await;

    c.ws.send(Message::Ping(b"still there?".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(DEADLINE, c.ws.next())
        .await
        .expect("no pong within the deadline");
    match pong {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"still there?"),
        other => panic!("expected a pong, got {other:?}"),
    }
    assert_quiet(&mut c, "after the pong").await;

    let received = server.received().await;
    let kinds: Vec<&str> = received
        .iter()
        .filter_map(|r| r.value.as_ref()?.get("type")?.as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "session.update",
            "conversation.item.create",
            "response.create"
        ]
    );
    assert_eq!(server.count_received("response.create"), 1);
    assert_eq!(server.sent_counts().await, vec![2]);

    // The client leaves: the server answers the close and ends the connection.
    c.ws.close(None).await.unwrap();
    match frame(&mut c).await {
        Some(Ok(Message::Close(_))) | None => {}
        other => panic!("expected the close answer, got {other:?}"),
    }
}

#[tokio::test]
async fn stall_stream_after_holds_the_active_response_until_cancelled() {
    let scenario = one_turn();
    let config = ServerConfig::new(scenario)
        .script_scope(ScriptScope::PerConnection)
        .faults(
            Faults::none()
                // Frame 6 is the response's `response.output_item.added`.
                .on_connection(0, ConnectionFaults::new().stall_stream_after(6))
                // Frame 2 is `session.updated`: nothing is active, the next response is held.
                .on_connection(1, ConnectionFaults::new().stall_stream_after(2)),
        );
    let server = ScriptedServer::start(config).unwrap();

    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    let user = say(&mut c, "Hello").await;
    c.send(json!({"type": "response.create"})).await;
    let first = [event(&mut c).await, event(&mut c).await];
    assert_eq!(
        types(&first),
        ["response.created", "response.output_item.added"]
    );
    assert_quiet(&mut c, "a stalled stream").await;

    // Requests are still answered.
    c.send(json!({"type": "conversation.item.retrieve", "item_id": user}))
        .await;
    assert_eq!(event(&mut c).await["type"], "conversation.item.retrieved");
    assert_quiet(&mut c, "the stream stays held").await;

    // A cancel ends it normally; the next response streams in full.
    c.send(json!({"type": "response.cancel"})).await;
    let events = until(&mut c, "response.done").await;
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(done["response"]["id"], first[0]["response"]["id"]);
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "client_cancelled"
    );
    c.send(json!({"type": "response.create"})).await;
    let events = until(&mut c, "response.done").await;
    assert_eq!(events.last().unwrap()["response"]["status"], "completed");
    assert_eq!(text_of(&events), "Hi, how can I help you today?");

    // Connection 1: the stall waits for the next response; not even `response.created` comes.
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    say(&mut c, "Hello").await;
    c.send(json!({"type": "response.create"})).await;
    assert_quiet(&mut c, "the next response is held").await;
    c.send(json!({"type": "response.cancel"})).await;
    let events = until(&mut c, "response.done").await;
    assert_eq!(types(&events), ["response.created", "response.done"]);
    assert_eq!(events[1]["response"]["status"], "cancelled");
    c.send(json!({"type": "response.create"})).await;
    let events = until(&mut c, "response.done").await;
    assert_eq!(text_of(&events), "Hi, how can I help you today?");
    assert!(
        server.violations().await.is_empty(),
        "{:?}",
        server.violations().await
    );
}

#[tokio::test]
async fn fail_response_create_answers_with_the_error_and_starts_nothing() {
    let server = start(
        one_turn(),
        ConnectionFaults::new().fail_response_create(ErrorSpec::server_error(), 2),
    );
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    say(&mut c, "Hello").await;
    for attempt in ["evt_create_1", "evt_create_2"] {
        c.send(json!({"type": "response.create", "event_id": attempt}))
            .await;
        let err = event(&mut c).await;
        assert_eq!(err["type"], "error");
        assert_eq!(err["error"]["type"], "server_error");
        assert!(err["error"]["code"].is_null());
        assert_eq!(err["error"]["event_id"], attempt);
        assert_quiet(&mut c, "no response after the error").await;
    }
    c.send(json!({"type": "response.create", "event_id": "evt_create_3"}))
        .await;
    let events = until(&mut c, "response.done").await;
    assert_eq!(events[0]["type"], "response.created");
    assert_eq!(text_of(&events), "Hi, how can I help you today?");
    assert!(server.violations().await.is_empty());

    // `usize::MAX` fails every time.
    let server = start(
        one_turn(),
        ConnectionFaults::new().fail_response_create(ErrorSpec::server_error(), usize::MAX),
    );
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    say(&mut c, "Hello").await;
    for _ in 0..5 {
        c.send(json!({"type": "response.create"})).await;
        assert_eq!(event(&mut c).await["type"], "error");
    }
    assert_quiet(&mut c, "every create fails").await;
}

#[tokio::test]
async fn malformed_response_done_breaks_only_the_frame() {
    let scenario = Scenario::new("two steps").turn(
        Turn::user("Hello")
            .model(ModelStep::say("First answer."))
            .model(ModelStep::say("Second answer.")),
    );
    for kind in [
        MalformedDone::FloatTokens,
        MalformedDone::NegativeTokens,
        MalformedDone::OutputNotList,
        MalformedDone::UsageNotObject,
    ] {
        let server = start(
            scenario.clone(),
            ConnectionFaults::new().malformed_response_done(kind),
        );
        let mut c = Client::connect(&server.url()).await;
        setup(&mut c, None).await;
        say(&mut c, "Hello").await;
        c.send(json!({"type": "response.create"})).await;
        let events = until(&mut c, "response.done").await;
        let created = &events[0]["response"];
        let response = &events.last().unwrap()["response"];
        assert_eq!(response["id"], created["id"], "{kind:?}");
        assert_eq!(response["status"], "completed", "{kind:?}");
        let usage = &response["usage"];
        match kind {
            MalformedDone::FloatTokens => {
                assert!(usage["input_tokens"].is_f64(), "{usage}");
                assert!(usage["output_tokens"].is_f64(), "{usage}");
                assert!(usage["input_token_details"]["cached_tokens"].is_f64());
                assert!(response["output"].is_array());
            }
            MalformedDone::NegativeTokens => {
                assert!(usage["input_tokens"].as_i64().unwrap() < 0, "{usage}");
                assert!(usage["output_tokens"].as_i64().unwrap() < 0, "{usage}");
            }
            MalformedDone::OutputNotList => {
                assert_eq!(response["output"], "oops");
                assert!(usage.is_object());
            }
            MalformedDone::UsageNotObject => {
                assert_eq!(usage, "n/a");
                assert!(response["output"].is_array());
            }
        }
        // The item is in the server's conversation and the step counts as played.
        let item = events
            .iter()
            .find(|e| e["type"] == "response.output_item.done")
            .unwrap()["item"]["id"]
            .clone();
        c.send(json!({"type": "conversation.item.retrieve", "item_id": item}))
            .await;
        assert_eq!(event(&mut c).await["type"], "conversation.item.retrieved");
        c.send(json!({"type": "response.create"})).await;
        let events = until(&mut c, "response.done").await;
        assert_eq!(text_of(&events), "Second answer.", "{kind:?}");
        assert!(server.violations().await.is_empty(), "{kind:?}");
    }
}

#[tokio::test]
async fn drop_on_response_create_drops_before_response_created() {
    let server = start(
        one_turn(),
        ConnectionFaults::new().drop_on_response_create(),
    );
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]
    }}))
    .await;
    c.send(json!({"type": "response.create"})).await;
    // The replies queued before the create still arrive, then the connection ends.
    let before = until(&mut c, "conversation.item.done").await;
    let user_item = before[0]["item"].clone();
    match frame(&mut c).await {
        None => {}
        Some(Err(e)) => assert!(
            e.to_lowercase().contains("without closing handshake"),
            "{e}"
        ),
        Some(Ok(other)) => panic!("expected a drop, got {other:?}"),
    }
    assert_eq!(server.count_received("response.create"), 1);

    // Nothing was marked played: on the next connection the same step plays.
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    c.send(json!({"type": "conversation.item.create", "item": user_item}))
        .await;
    until(&mut c, "conversation.item.done").await;
    c.send(json!({"type": "response.create"})).await;
    let events = until(&mut c, "response.done").await;
    assert_eq!(text_of(&events), "Hi, how can I help you today?");
    assert_eq!(
        events.last().unwrap()["response"]["output"][0]["id"],
        "item_t0s0o0"
    );
}

#[tokio::test]
async fn session_expired_on_request_lets_setup_pass_then_expires() {
    let server = start(
        one_turn(),
        ConnectionFaults::new().session_expired_on_request(),
    );
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    c.send(
        json!({"type": "conversation.item.create", "event_id": "evt_item", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]
        }}),
    )
    .await;
    let err = event(&mut c).await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["code"], "session_expired");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    match frame(&mut c).await {
        Some(Ok(Message::Close(Some(close)))) => {
            assert_eq!(u16::from(close.code), 1000);
            assert_eq!(close.reason.as_str(), "session expired");
        }
        other => panic!("expected close 1000, got {other:?}"),
    }
    assert!(server.violations().await.is_empty());
}

#[tokio::test]
async fn oversized_frame_after_sends_one_valid_event_of_the_exact_size() {
    const BYTES: usize = 300_000;
    let server = ScriptedServer::start(ServerConfig::new(one_turn()).faults(
        Faults::none().on_every_connection(ConnectionFaults::new().oversized_frame_after(1, BYTES)),
    ))
    .unwrap();
    let mut c = Client::connect(&server.url()).await;
    assert_eq!(event(&mut c).await["type"], "session.created");
    match frame(&mut c).await {
        Some(Ok(Message::Text(t))) => {
            assert_eq!(t.len(), BYTES);
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            assert_eq!(v["type"], "response.output_text.delta");
        }
        other => panic!("expected the oversized event, got {other:?}"),
    }
    // Then the connection carries on.
    c.send(json!({"type": "session.update", "session": {"type": "realtime"}}))
        .await;
    assert_eq!(event(&mut c).await["type"], "session.updated");
    assert_eq!(server.sent_counts().await, vec![3]);

    // A client with a 64 KiB read limit gets a capacity error instead of the event.
    let limit = WebSocketConfig::default()
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let (ws, _) = tokio::time::timeout(
        DEADLINE,
        tokio_tungstenite::connect_async_with_config(server.url(), Some(limit), false),
    )
    .await
    .unwrap()
    .unwrap();
    let mut c = Client { ws };
    assert_eq!(event(&mut c).await["type"], "session.created");
    match frame(&mut c).await {
        Some(Err(e)) => assert!(e.to_lowercase().contains("too long"), "{e}"),
        other => panic!("expected a capacity error, got {other:?}"),
    }
}

#[tokio::test]
async fn tool_loop_calls_the_tool_on_every_response() {
    let config = ServerConfig::new(one_turn())
        .record_frames(false)
        .faults(Faults::none().on_every_connection(ConnectionFaults::new().tool_loop("lookup")));
    let server = ScriptedServer::start(config).unwrap();
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    say(&mut c, "Hello").await;
    for round in 1..=3 {
        c.send(json!({"type": "response.create"})).await;
        let events = until(&mut c, "response.done").await;
        assert_eq!(
            types(&events),
            [
                "response.created",
                "response.output_item.added",
                "conversation.item.added",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
                "response.output_item.done",
                "conversation.item.done",
                "response.done",
            ]
        );
        let call_id = format!("call_loop_{round:04}");
        let done = &events.last().unwrap()["response"];
        assert_eq!(done["status"], "completed");
        assert!(done["usage"]["output_tokens"].as_u64().unwrap() > 0);
        let call = &done["output"][0];
        assert_eq!(call["type"], "function_call");
        assert_eq!(call["name"], "lookup");
        assert_eq!(call["arguments"], "{}");
        assert_eq!(call["call_id"], call_id.as_str());
        assert_eq!(events[4]["name"], "lookup");
        c.send(json!({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call_id, "output": "{\"ok\":true}"
        }}))
        .await;
        let added = event(&mut c).await;
        assert_eq!(added["type"], "conversation.item.added", "{added}");
        assert_eq!(added["previous_item_id"], call["id"]);
        assert_eq!(event(&mut c).await["type"], "conversation.item.done");
    }
    assert_eq!(server.count_received("response.create"), 3);
    assert_eq!(server.count_received("conversation.item.create"), 4);
    assert!(
        server.received().await.is_empty(),
        "frames are not recorded"
    );

    // Call ids count per server, across connections.
    let mut c = Client::connect(&server.url()).await;
    setup(&mut c, None).await;
    c.send(json!({"type": "response.create"})).await;
    let events = until(&mut c, "response.done").await;
    assert_eq!(
        events.last().unwrap()["response"]["output"][0]["call_id"],
        "call_loop_0004"
    );
    assert_eq!(server.count_received("response.create"), 4);
    assert!(
        server.violations().await.is_empty(),
        "{:?}",
        server.violations().await
    );
}

/// Push-to-talk with transcription, in either dialect: commit, then ask for a response.
async fn late_push_to_talk(dialect: DialectMode) -> Vec<Value> {
    let scenario = Scenario::new("late")
        .turn(Turn::user("Where is my order?").model(ModelStep::say("Checking.")));
    let config = ServerConfig::new(scenario)
        .dialect(dialect)
        .late_transcription(true);
    let server = ScriptedServer::start(config).unwrap();
    let mut c = Client::connect(&server.url()).await;
    assert_eq!(event(&mut c).await["type"], "session.created");
    let session = match dialect {
        DialectMode::Beta => json!({
            "modalities": ["text"], "turn_detection": null,
            "input_audio_transcription": {"model": "whisper-1"},
        }),
        _ => json!({"type": "realtime", "output_modalities": ["text"], "audio": {"input": {
            "turn_detection": null, "transcription": {"model": "gpt-4o-transcribe"},
        }}}),
    };
    c.send(json!({"type": "session.update", "session": session}))
        .await;
    assert_eq!(event(&mut c).await["type"], "session.updated");
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&[0u8; 48 * 300])}))
        .await;
    c.send(json!({"type": "input_audio_buffer.commit"})).await;
    c.send(json!({"type": "response.create"})).await;
    let events = until(
        &mut c,
        "conversation.item.input_audio_transcription.completed",
    )
    .await;
    assert!(server.violations().await.is_empty());
    events
}

#[tokio::test]
async fn late_transcription_follows_the_answer() {
    for dialect in [DialectMode::Ga, DialectMode::Beta] {
        let events = late_push_to_talk(dialect).await;
        let t = types(&events);
        let added = match dialect {
            DialectMode::Beta => "conversation.item.created",
            _ => "conversation.item.added",
        };
        assert_eq!(t[0], "input_audio_buffer.committed", "{t:?}");
        assert_eq!(t[1], added, "the user item is announced at commit: {t:?}");
        assert_eq!(events[1]["item"]["role"], "user");
        assert!(events[1]["previous_item_id"].is_null());
        let done = position(&events, "response.done");
        let delta = position(&events, "conversation.item.input_audio_transcription.delta");
        assert!(delta > done, "{t:?}");
        assert_eq!(events.last().unwrap()["transcript"], "Where is my order?");
        assert_eq!(events.last().unwrap()["item_id"], events[1]["item"]["id"]);
    }
}

#[tokio::test]
async fn late_transcription_under_server_vad_follows_the_auto_response() {
    let scenario = Scenario::new("vad")
        .turn(Turn::user("Where is my order?").model(ModelStep::say("Checking.")));
    let config = ServerConfig::new(scenario).late_transcription(true);
    let server = ScriptedServer::start(config).unwrap();
    let mut c = Client::connect(&server.url()).await;
    setup(
        &mut c,
        Some(json!({
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 200},
            "transcription": {"model": "gpt-4o-transcribe"},
        })),
    )
    .await;
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&tone(500))}))
        .await;
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&[0u8; 48 * 400])}))
        .await;
    let events = until(
        &mut c,
        "conversation.item.input_audio_transcription.completed",
    )
    .await;
    let t = types(&events);
    let committed = position(&events, "input_audio_buffer.committed");
    assert_eq!(t[committed + 1], "conversation.item.added");
    assert!(
        position(&events, "response.done")
            < position(&events, "conversation.item.input_audio_transcription.delta")
    );
    assert_eq!(events.last().unwrap()["transcript"], "Where is my order?");
    assert!(server.violations().await.is_empty());
}

#[tokio::test]
async fn late_transcription_without_an_answer_goes_out_with_the_next_event() {
    let scenario = Scenario::new("no answer")
        .turn(Turn::user("Where is my order?").model(ModelStep::say("Checking.")));
    let config = ServerConfig::new(scenario).late_transcription(true);
    let server = ScriptedServer::start(config).unwrap();
    let mut c = Client::connect(&server.url()).await;
    setup(
        &mut c,
        Some(json!({"turn_detection": null, "transcription": {"model": "gpt-4o-transcribe"}})),
    )
    .await;
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&[0u8; 48 * 300])}))
        .await;
    c.send(json!({"type": "input_audio_buffer.commit"})).await;
    let events = until(&mut c, "conversation.item.done").await;
    assert_eq!(types(&events)[0], "input_audio_buffer.committed");
    let user_item = events[1]["item"]["id"].clone();
    assert_quiet(&mut c, "the transcript waits for the answer").await;
    c.send(json!({"type": "conversation.item.retrieve", "item_id": user_item}))
        .await;
    let events = until(&mut c, "conversation.item.retrieved").await;
    let t = types(&events);
    assert_eq!(
        t.last().map(String::as_str),
        Some("conversation.item.retrieved")
    );
    let completed = position(
        &events,
        "conversation.item.input_audio_transcription.completed",
    );
    assert_eq!(events[completed]["transcript"], "Where is my order?");
    // The server's copy of the item already has the transcript.
    assert_eq!(
        events.last().unwrap()["item"]["content"][0]["transcript"],
        "Where is my order?"
    );
    assert!(server.violations().await.is_empty());
}

/// Every `conversation.item.added` names the item before it: placing items by
/// `previous_item_id` rebuilds the server's conversation exactly.
#[tokio::test]
async fn previous_item_id_places_every_added_item() {
    let scenario =
        two_call_scenario().turn(Turn::user("Thanks").model(ModelStep::say("You're welcome.")));
    let config = ServerConfig::new(scenario).late_transcription(true);
    let server = ScriptedServer::start(config).unwrap();
    let mut c = Client::connect(&server.url()).await;
    setup(
        &mut c,
        Some(json!({"turn_detection": null, "transcription": {"model": "gpt-4o-transcribe"}})),
    )
    .await;
    let mut seen = Vec::new();
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "Where are my orders A1001 and A1002?"}]
    }}))
    .await;
    seen.extend(until(&mut c, "conversation.item.done").await);
    c.send(json!({"type": "response.create"})).await;
    seen.extend(until(&mut c, "response.done").await);
    for call in ["call_0001", "call_0002"] {
        c.send(json!({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call, "output": "shipped"
        }}))
        .await;
        seen.extend(until(&mut c, "conversation.item.done").await);
    }
    c.send(json!({"type": "response.create"})).await;
    seen.extend(until(&mut c, "response.done").await);
    // A client item placed in the middle, then a spoken turn and its answer.
    c.send(
        json!({"type": "conversation.item.create", "previous_item_id": "item_t0_user", "item": {
            "id": "sys_note", "type": "message", "role": "system",
            "content": [{"type": "input_text", "text": "Be brief."}]
        }}),
    )
    .await;
    seen.extend(until(&mut c, "conversation.item.done").await);
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&[0u8; 48 * 300])}))
        .await;
    c.send(json!({"type": "input_audio_buffer.commit"})).await;
    c.send(json!({"type": "response.create"})).await;
    seen.extend(
        until(
            &mut c,
            "conversation.item.input_audio_transcription.completed",
        )
        .await,
    );

    let mut placed: Vec<String> = Vec::new();
    for ev in seen
        .iter()
        .filter(|e| e["type"] == "conversation.item.added")
    {
        let id = ev["item"]["id"].as_str().unwrap().to_string();
        let at = match ev["previous_item_id"].as_str() {
            None => 0,
            Some(prev) => {
                placed
                    .iter()
                    .position(|p| p == prev)
                    .unwrap_or_else(|| panic!("{prev} is unknown when {id} is added"))
                    + 1
            }
        };
        placed.insert(at, id);
    }
    assert_eq!(
        placed,
        [
            "item_t0_user",
            "sys_note",
            "item_t0s0o0",
            "item_t0s0o1",
            "item_t0s0o2",
            "item_call_0001_output",
            "item_call_0002_output",
            "item_t0s1o0",
            "item_t1_user",
            "item_t1s0o0",
        ]
    );
    // `conversation.item.done` agrees with `added` for every item.
    for done in seen
        .iter()
        .filter(|e| e["type"] == "conversation.item.done")
    {
        let added = seen
            .iter()
            .find(|e| {
                e["type"] == "conversation.item.added" && e["item"]["id"] == done["item"]["id"]
            })
            .unwrap();
        assert_eq!(
            done["previous_item_id"], added["previous_item_id"],
            "{done}"
        );
    }
    assert!(
        server.violations().await.is_empty(),
        "{:?}",
        server.violations().await
    );
}
