//! The scripted server speaks the Realtime protocol like the live API: event sequences, ids,
//! error codes and violations, checked with a raw WebSocket client on loopback.

mod common;

use agent_testkit::{
    DialectMode, ModelStep, Scenario, ScriptedCall, ScriptedMcpApproval, ScriptedServer,
    ServerConfig, Turn,
};
use base64::Engine as _;
use common::{Client, two_call_scenario, types};
use serde_json::{Value, json};

fn start(scenario: Scenario) -> agent_testkit::ServerHandle {
    ScriptedServer::start(ServerConfig::new(scenario)).unwrap()
}

#[tokio::test]
async fn session_created_on_connect_and_update_merges() {
    let server = start(Scenario::default());
    assert!(server.url().starts_with("ws://127.0.0.1:"));
    assert!(server.url().ends_with("/v1/realtime"));
    let mut c = Client::connect_with(
        &format!("{}?model=gpt-realtime-mini", server.url()),
        &[("authorization", "Bearer sk-test-secret")],
    )
    .await;
    let created = c.next_event().await;
    assert_eq!(created["type"], "session.created");
    let s = &created["session"];
    assert_eq!(s["object"], "realtime.session");
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["model"], "gpt-realtime-mini");
    assert!(s["id"].as_str().unwrap().starts_with("sess_"));
    assert!(s["expires_at"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(s["audio"]["output"]["format"]["rate"], 24000);
    assert!(created["event_id"].as_str().unwrap().starts_with("event_"));

    c.send(json!({"type": "session.update", "session": {
        "type": "realtime",
        "instructions": "Be brief.",
        "audio": {"output": {"voice": "marin"}}
    }}))
    .await;
    let updated = c.next_event().await;
    assert_eq!(updated["type"], "session.updated");
    assert_eq!(updated["session"]["instructions"], "Be brief.");
    assert_eq!(updated["session"]["audio"]["output"]["voice"], "marin");
    assert_eq!(updated["session"]["audio"]["output"]["speed"], 1.0);

    let requests = server.requests().await;
    assert_eq!(requests[0].header("authorization"), Some("[redacted]"));
    assert!(requests[0].has_authorization);
    assert_eq!(
        requests[0].query.as_deref(),
        Some("model=gpt-realtime-mini")
    );
    assert!(!format!("{requests:?}").contains("sk-test-secret"));
    assert!(server.violations().await.is_empty());
    server.shutdown().await;
}

#[tokio::test]
async fn ga_session_update_without_type_is_rejected_like_live() {
    let server = start(Scenario::default());
    let mut c = Client::connect(&server.url()).await;
    c.next_event().await;
    c.send(
        json!({"type": "session.update", "event_id": "evt_1", "session": {"modalities": ["text"]}}),
    )
    .await;
    let err = c.next_event().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["code"], "missing_required_parameter");
    assert_eq!(err["error"]["param"], "session.type");
    assert_eq!(err["error"]["event_id"], "evt_1");
    assert_eq!(server.violations().await.len(), 1);
}

#[tokio::test]
async fn two_calls_in_one_response_then_the_answer() {
    let server = start(two_call_scenario());
    let mut c = Client::connect(&server.url()).await;
    c.text_session().await;
    let added = c.user_says("Where are my orders A1001 and A1002?").await;
    assert_eq!(
        types(&added),
        ["conversation.item.added", "conversation.item.done"]
    );
    assert_eq!(added[0]["item"]["id"], "item_t0_user");

    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    let expected_prefix = [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
    ];
    assert_eq!(types(&events)[..4], expected_prefix);
    let t = types(&events);
    // message, then two function calls, each streamed and completed in order.
    let call_done: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "response.function_call_arguments.done")
        .collect();
    assert_eq!(call_done.len(), 2);
    assert_eq!(call_done[0]["name"], "lookup_order");
    assert_eq!(call_done[0]["call_id"], "call_0001");
    assert_eq!(call_done[1]["call_id"], "call_0002");
    assert_eq!(call_done[1]["arguments"], r#"{"order_id":"A1002"}"#);
    assert_eq!(call_done[1]["output_index"], 2);
    let deltas: String = events
        .iter()
        .filter(|e| {
            e["type"] == "response.function_call_arguments.delta" && e["call_id"] == "call_0001"
        })
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, r#"{"order_id":"A1001"}"#);
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Let me check both.");
    assert!(
        events
            .iter()
            .filter(|e| e["type"] == "response.output_text.delta")
            .all(|e| e["obfuscation"].is_string())
    );
    assert_eq!(
        t.iter()
            .filter(|x| *x == "response.output_item.done")
            .count(),
        3
    );
    assert_eq!(
        t.iter().filter(|x| *x == "conversation.item.done").count(),
        3
    );
    let pos = |ty: &str| t.iter().position(|x| x == ty).unwrap();
    assert!(pos("response.output_text.done") < pos("response.content_part.done"));
    assert!(pos("response.content_part.done") < pos("response.function_call_arguments.delta"));
    let done = events.last().unwrap();
    let r = &done["response"];
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"].as_array().unwrap().len(), 3);
    assert_eq!(r["output"][0]["content"][0]["type"], "output_text");
    assert_eq!(r["output"][1]["type"], "function_call");
    assert_eq!(r["output"][1]["status"], "completed");
    let usage = &r["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );
    assert!(usage["input_token_details"]["cached_tokens"].is_u64());
    assert!(
        usage["output_token_details"]["text_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    // The items' previous_item_id chain follows the conversation.
    let conv_added: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "conversation.item.added")
        .collect();
    assert_eq!(conv_added[0]["previous_item_id"], "item_t0_user");
    assert_eq!(conv_added[1]["previous_item_id"], "item_t0s0o0");

    // Asking again before sending the outputs is a violation (and still played).
    let early = server.violations().await;
    assert!(early.is_empty(), "{early:?}");
    let out = c.output("call_0001", r#"{"status":"shipped"}"#).await;
    assert_eq!(out[0]["item"]["id"], "item_call_0001_output");
    c.output("call_0002", r#"{"status":"shipped"}"#).await;
    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Both orders have shipped.");
    let r = &events.last().unwrap()["response"];
    let cached = r["usage"]["input_token_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    assert_eq!(cached % 64, 0);
    assert!(cached <= r["usage"]["input_tokens"].as_u64().unwrap());
    assert!(server.violations().await.is_empty());

    // One response too many: fallback reply and a violation.
    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "(no scripted reply)");
    let v = server.violations().await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("one response too many"), "{v:?}");
}

#[tokio::test]
async fn response_create_before_outputs_is_a_violation() {
    let server = start(two_call_scenario());
    let mut c = Client::connect(&server.url()).await;
    c.text_session().await;
    c.user_says("Where are my orders A1001 and A1002?").await;
    c.send(json!({"type": "response.create"})).await;
    c.until("response.done").await;
    c.output("call_0001", "ok").await;
    c.send(json!({"type": "response.create"})).await;
    c.until("response.done").await;
    let v = server.violations().await;
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("call_0002"), "{v:?}");
}

#[tokio::test]
async fn response_create_while_active_gives_the_live_error() {
    let scenario =
        Scenario::new("long")
            .turn(Turn::user("hi").model(
                ModelStep::say("a fairly long answer with many words in it").audio_ms(3000),
            ));
    let server = ScriptedServer::start(
        ServerConfig::new(scenario).event_delay(std::time::Duration::from_millis(10)),
    )
    .unwrap();
    let mut c = Client::connect(&server.url()).await;
    c.next_event().await;
    c.user_says("hi").await;
    c.send(json!({"type": "response.create"})).await;
    let created = c.next_event().await;
    assert_eq!(created["type"], "response.created");
    c.send(json!({"type": "response.create", "event_id": "evt_dup"}))
        .await;
    let events = c.until("error").await;
    let err = events.last().unwrap();
    assert_eq!(
        err["error"]["code"],
        "conversation_already_has_active_response"
    );
    assert_eq!(err["error"]["event_id"], "evt_dup");
    c.until("response.done").await;
    let v = server.violations().await;
    assert_eq!(v.len(), 1);
    assert!(v[0].contains("conversation_already_has_active_response"));
}

#[tokio::test]
async fn unknown_call_id_is_rejected() {
    let server = start(two_call_scenario());
    let mut c = Client::connect(&server.url()).await;
    c.text_session().await;
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "function_call_output", "call_id": "call_nope", "output": "{}"
    }}))
    .await;
    let err = c.next_event().await;
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["code"], "invalid_tool_call_id");
    assert_eq!(
        err["error"]["message"],
        "Tool call ID 'call_nope' not found in conversation."
    );
    assert_eq!(server.violations().await.len(), 1);
}

#[tokio::test]
async fn cancel_stops_the_stream_and_truncate_is_bounded_by_sent_audio() {
    let scenario = Scenario::new("audio").turn(
        Turn::user("tell me a story")
            .model(ModelStep::say("Once upon a time there was a tiny server.").audio_ms(2000)),
    );
    let server = ScriptedServer::start(
        ServerConfig::new(scenario).event_delay(std::time::Duration::from_millis(10)),
    )
    .unwrap();
    let mut c = Client::connect(&server.url()).await;
    c.next_event().await; // audio is the GA default
    c.user_says("tell me a story").await;
    c.send(json!({"type": "response.create"})).await;
    let mut item_id;
    let mut audio_bytes = 0;
    loop {
        let ev = c.next_event().await;
        if ev["type"] == "response.output_audio.delta" {
            item_id = ev["item_id"].as_str().unwrap().to_string();
            audio_bytes += base64::engine::general_purpose::STANDARD
                .decode(ev["delta"].as_str().unwrap())
                .unwrap()
                .len();
            if audio_bytes >= 3 * 4800 {
                break;
            }
        }
    }
    c.send(json!({"type": "response.cancel"})).await;
    let events = c.until("response.done").await;
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "client_cancelled"
    );
    let item_done = events
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .unwrap();
    assert_eq!(item_done["item"]["status"], "incomplete");
    assert_eq!(done["response"]["output"][0]["status"], "incomplete");

    // Cancel again: nothing is active.
    c.send(json!({"type": "response.cancel"})).await;
    let err = c.next_event().await;
    assert_eq!(err["error"]["code"], "response_cancel_not_active");

    // Truncating within the audio that was sent works; past it is the live error.
    let sent_ms = (audio_bytes / 48) as u64;
    c.send(json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": 150}))
        .await;
    let t = c.next_event().await;
    assert_eq!(t["type"], "conversation.item.truncated", "{t}");
    assert_eq!(t["audio_end_ms"], 150);
    c.send(json!({"type": "conversation.item.truncate", "item_id": item_id, "content_index": 0, "audio_end_ms": sent_ms + 5000}))
        .await;
    let err = c.next_event().await;
    assert_eq!(err["error"]["code"], "invalid_value");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is already shorter than"),
        "{err}"
    );
    let v = server.violations().await;
    assert_eq!(v.len(), 1, "{v:?}");
}

#[tokio::test]
async fn unknown_events_and_malformed_json_get_errors() {
    let server = start(Scenario::default());
    let mut c = Client::connect(&server.url()).await;
    c.next_event().await;
    c.send(json!({"type": "response.explode", "event_id": "e1"}))
        .await;
    let err = c.next_event().await;
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["code"], "invalid_value");
    assert_eq!(err["error"]["param"], "type");
    c.send_raw("{not json").await;
    let err = c.next_event().await;
    assert_eq!(err["error"]["code"], "invalid_json");
    c.send(json!({"no_type": true})).await;
    let err = c.next_event().await;
    assert_eq!(err["error"]["code"], "missing_required_parameter");
    assert_eq!(server.violations().await.len(), 3);
    let received = server.received().await;
    assert_eq!(received.len(), 3);
    assert!(received[1].value.is_none());
    assert_eq!(received[1].raw, "{not json");
}

#[tokio::test]
async fn input_audio_commit_and_server_vad() {
    let scenario = Scenario::new("voice")
        .turn(Turn::user("Where is my order?").model(ModelStep::say("Checking.")))
        .turn(Turn::user("Thanks").model(ModelStep::say("You're welcome.")));
    let server = start(scenario);
    let mut c = Client::connect(&server.url()).await;
    c.next_event().await;
    // Push-to-talk with transcription: commit too early, then properly.
    c.send(
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": null, "transcription": {"model": "gpt-4o-transcribe"}
        }}}}),
    )
    .await;
    assert_eq!(c.next_event().await["type"], "session.updated");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&[0u8; 48 * 50])}))
        .await;
    c.send(json!({"type": "input_audio_buffer.commit"})).await;
    let err = c.next_event().await;
    assert_eq!(err["error"]["code"], "input_audio_buffer_commit_empty");
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&[0u8; 48 * 100])}))
        .await;
    c.send(json!({"type": "input_audio_buffer.commit"})).await;
    let events = c
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    assert_eq!(
        types(&events)[..3],
        [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.done"
        ]
    );
    assert_eq!(events[1]["item"]["content"][0]["type"], "input_audio");
    let completed = events.last().unwrap();
    assert_eq!(completed["transcript"], "Where is my order?");
    assert_eq!(completed["usage"]["type"], "tokens");
    c.send(json!({"type": "response.create"})).await;
    c.until("response.done").await;

    // Server VAD: a tone then silence ends the turn and the server answers by itself.
    c.send(
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "silence_duration_ms": 200}
        }}}}),
    )
    .await;
    assert_eq!(c.next_event().await["type"], "session.updated");
    let mut tone = Vec::new();
    for i in 0..(24_000 / 2) {
        let s = ((i as f64 * 0.1).sin() * 8000.0) as i16;
        tone.extend_from_slice(&s.to_le_bytes());
    }
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&tone)}))
        .await;
    c.send(json!({"type": "input_audio_buffer.append", "audio": b64(&[0u8; 48 * 400])}))
        .await;
    let events = c.until("response.done").await;
    let t = types(&events);
    let start = t
        .iter()
        .position(|x| x == "input_audio_buffer.speech_started")
        .unwrap();
    assert_eq!(
        t[start..start + 3],
        [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed"
        ]
    );
    assert_eq!(events[start]["item_id"], "item_t1_user");
    let transcript: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_audio_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(transcript, "You're welcome.");
    let v = server.violations().await;
    assert_eq!(v.len(), 1, "only the early push-to-talk commit: {v:?}");
    assert!(v[0].contains("input_audio_buffer_commit_empty"));
}

#[tokio::test]
async fn beta_dialect_uses_beta_names_and_shapes() {
    let server = start(two_call_scenario());
    let mut c = Client::connect_with(&server.url(), &[("OpenAI-Beta", "realtime=v1")]).await;
    let created = c.next_event().await;
    assert!(created["session"]["modalities"].is_array());
    assert!(created["session"]["type"].is_null());
    c.send(json!({"type": "session.update", "session": {"modalities": ["text", "audio"], "voice": "verse"}}))
        .await;
    let updated = c.next_event().await;
    assert_eq!(updated["type"], "session.updated", "{updated}");
    assert_eq!(updated["session"]["voice"], "verse");
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Where are my orders A1001 and A1002?"}]
    }}))
    .await;
    let ev = c.next_event().await;
    assert_eq!(ev["type"], "conversation.item.created");
    assert_eq!(ev["item"]["object"], "realtime.item");
    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    let t = types(&events);
    assert!(t.contains(&"response.audio.delta".to_string()));
    assert!(t.contains(&"response.audio_transcript.delta".to_string()));
    assert!(t.contains(&"response.audio_transcript.done".to_string()));
    assert!(!t.iter().any(|x| x.contains("output_audio")
        || x == "conversation.item.added"
        || x == "conversation.item.done"));
    let done = events
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert!(done.get("name").is_none());
    assert!(done.get("obfuscation").is_none());
    let r = &events.last().unwrap()["response"];
    assert_eq!(r["output"][0]["content"][0]["type"], "audio");
    assert!(r["modalities"].is_array());
    assert_eq!(r["voice"], "verse");
    // GA-shaped update to a beta server fails as live.
    c.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}))
        .await;
    let err = c.next_event().await;
    assert_eq!(err["error"]["code"], "unknown_parameter");
    assert_eq!(
        server.requests().await[0].dialect,
        agent_testkit::Dialect::Beta
    );

    // Forced GA ignores the header.
    let ga = ScriptedServer::start(ServerConfig::default().dialect(DialectMode::Ga)).unwrap();
    let mut c = Client::connect_with(&ga.url(), &[("OpenAI-Beta", "realtime=v1")]).await;
    assert_eq!(c.next_event().await["session"]["type"], "realtime");
}

#[tokio::test]
async fn two_runs_produce_identical_histories() {
    async fn run() -> Vec<Value> {
        let server = start(two_call_scenario());
        let mut c = Client::connect(&server.url()).await;
        c.text_session().await;
        c.user_says("Where are my orders A1001 and A1002?").await;
        c.send(json!({"type": "response.create"})).await;
        c.until("response.done").await;
        c.output("call_0001", "a").await;
        c.output("call_0002", "b").await;
        c.send(json!({"type": "response.create"})).await;
        let done = c.until("response.done").await;
        server.shutdown().await;
        done.last().unwrap()["response"]["output"]
            .as_array()
            .unwrap()
            .clone()
    }
    let a = run().await;
    let b = run().await;
    assert_eq!(a, b);
    assert_eq!(a[0]["id"], "item_t0s1o0");
}

#[tokio::test]
async fn raw_arguments_are_sent_verbatim() {
    let scenario = Scenario::new("bad args").turn(
        Turn::user("go")
            .model(ModelStep::calls([ScriptedCall::raw(
                "lookup_order",
                "{\"order_id\": ",
            )]))
            .model(ModelStep::say("Sorry.")),
    );
    let server = start(scenario);
    let mut c = Client::connect(&server.url()).await;
    c.text_session().await;
    c.user_says("go").await;
    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    let done = events
        .iter()
        .find(|e| e["type"] == "response.function_call_arguments.done")
        .unwrap();
    assert_eq!(done["arguments"], "{\"order_id\": ");
}

#[tokio::test]
async fn model_speaks_first_then_turns_follow_per_connection() {
    let scenario = Scenario::new("greeting")
        .turn(Turn::model_first().model(ModelStep::say("Hi! How can I help?")))
        .turn(Turn::user("Where is A1001?").model(ModelStep::say("It shipped.")));
    let server = ScriptedServer::start(
        ServerConfig::new(scenario).script_scope(agent_testkit::ScriptScope::PerConnection),
    )
    .unwrap();
    for _ in 0..2 {
        let mut c = Client::connect(&server.url()).await;
        c.text_session().await;
        c.send(json!({"type": "response.create"})).await;
        let done = c.until("response.done").await;
        assert_eq!(
            done.last().unwrap()["response"]["output"][0]["content"][0]["text"],
            "Hi! How can I help?"
        );
        let added = c.user_says("Where is A1001?").await;
        assert_eq!(added[0]["item"]["id"], "item_t1_user");
        assert_eq!(added[0]["previous_item_id"], "item_t0s0o0");
        c.send(json!({"type": "response.create"})).await;
        let done = c.until("response.done").await;
        assert_eq!(
            done.last().unwrap()["response"]["output"][0]["content"][0]["text"],
            "It shipped."
        );
    }
    assert!(
        server.violations().await.is_empty(),
        "{:?}",
        server.violations().await
    );
}

#[tokio::test]
async fn an_mcp_approval_request_is_answered_once_then_the_script_goes_on() {
    let scenario = Scenario::new("mcp").turn(
        Turn::user("ask the wiki")
            .model(ModelStep::mcp_approval(ScriptedMcpApproval::new(
                "wiki",
                "ask_question",
                json!({"q": "what"}),
            )))
            .model(ModelStep::say("The wiki says hello.")),
    );
    let server = start(scenario);
    let mut c = Client::connect(&server.url()).await;
    c.text_session().await;
    c.user_says("ask the wiki").await;
    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    let done = events
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .unwrap();
    let request = &done["item"];
    assert_eq!(request["type"], "mcp_approval_request");
    assert_eq!(request["server_label"], "wiki");
    assert_eq!(request["name"], "ask_question");
    assert_eq!(request["arguments"], "{\"q\":\"what\"}");
    let request_id = request["id"].as_str().unwrap().to_owned();

    // An answer to a request that does not exist is refused like the live API.
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "mcp_approval_response", "id": "mcpa_x", "approval_request_id": "nope",
        "approve": true
    }}))
    .await;
    let err = c.next_event().await;
    assert_eq!(err["error"]["param"], "item.approval_request_id");

    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "mcp_approval_response", "id": "mcpa_1", "approval_request_id": request_id,
        "approve": true
    }}))
    .await;
    let added = c.next_event().await;
    assert_eq!(added["type"], "conversation.item.added");
    assert_eq!(added["item"]["approve"], true);
    assert!(added["item"].get("status").is_none(), "{added}");
    c.until("conversation.item.done").await;
    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    let reply: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(reply, "The wiki says hello.");
    let violations = server.violations().await;
    assert_eq!(violations.len(), 1, "{violations:?}");

    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "mcp_approval_response", "id": "mcpa_2", "approval_request_id": request_id,
        "approve": false
    }}))
    .await;
    c.until("conversation.item.done").await;
    let violations = server.violations().await;
    assert!(
        violations
            .iter()
            .any(|v| v.contains("a second mcp_approval_response")),
        "{violations:?}"
    );
}
