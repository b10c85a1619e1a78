//! Every event the scripted server sends validates against the official schemas (GA and beta).
//!
//! The spec folder is found like agent-core's conformance tests find it (the same code:
//! `agent-core/tests/common/spec.rs`): `$REALTIME_SPEC_DIR`, else `../shared/realtime-spec`
//! beside the workspace root. When it is missing the tests print one line and skip validation,
//! unless `REALTIME_SPEC_REQUIRED=1` (CI), which makes them fail.

mod common;
#[path = "../../agent-core/tests/common/spec.rs"]
mod spec;

use agent_testkit::{
    ConnectionFaults, Dialect, Direction, ErrorSpec, Faults, ModelStep, Scenario, ScriptedCall,
    ScriptedServer, ServerConfig, Turn,
};
use base64::Engine as _;
use common::Client;
use serde_json::json;

fn scenario() -> Scenario {
    Scenario::new("conformance")
        .turn(
            Turn::user("Where are my orders A1001 and A1002?")
                .model(
                    ModelStep::say("Let me check both.")
                        .call(ScriptedCall::new(
                            "lookup_order",
                            json!({"order_id": "A1001"}),
                        ))
                        .call(ScriptedCall::new(
                            "lookup_order",
                            json!({"order_id": "A1002"}),
                        )),
                )
                .model(ModelStep::say("Both orders have shipped.")),
        )
        .turn(Turn::user("Tell me more").model(ModelStep::say("A long story.").audio_ms(2000)))
        .turn(Turn::user("Thanks").model(ModelStep::say("You're welcome.")))
}

/// Plays a session that touches most server events, in the dialect the headers select.
async fn play(beta: bool) -> Vec<String> {
    let server = ScriptedServer::start(ServerConfig::new(scenario())).unwrap();
    let headers: Vec<(&str, &str)> = if beta {
        vec![("OpenAI-Beta", "realtime=v1")]
    } else {
        vec![]
    };
    let mut c = Client::connect_with(&server.url(), &headers).await;
    c.next_event().await;
    let update = if beta {
        json!({"modalities": ["audio", "text"], "turn_detection": null, "input_audio_transcription": {"model": "whisper-1"}})
    } else {
        json!({"type": "realtime", "audio": {"input": {"turn_detection": null, "transcription": {"model": "whisper-1"}}}})
    };
    c.send(json!({"type": "session.update", "session": update}))
        .await;
    c.next_event().await;
    let added = if beta {
        "conversation.item.created"
    } else {
        "conversation.item.done"
    };
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Where are my orders A1001 and A1002?"}]
    }}))
    .await;
    c.until(added).await;
    c.send(json!({"type": "response.create"})).await;
    c.until("response.done").await;
    for call in ["call_0001", "call_0002"] {
        c.send(json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": call, "output": "{}"}}))
            .await;
        c.until(added).await;
    }
    c.send(json!({"type": "response.create"})).await;
    c.until("response.done").await;
    // Voice turn: commit audio, then cancel the answer mid-stream and truncate it.
    let silence = base64::engine::general_purpose::STANDARD.encode([0u8; 48 * 200]);
    c.send(json!({"type": "input_audio_buffer.append", "audio": silence}))
        .await;
    c.send(json!({"type": "input_audio_buffer.commit"})).await;
    c.until("conversation.item.input_audio_transcription.completed")
        .await;
    c.send(json!({"type": "response.create"})).await;
    let delta = if beta {
        "response.audio.delta"
    } else {
        "response.output_audio.delta"
    };
    let item = c.until(delta).await.last().unwrap()["item_id"].clone();
    c.send(json!({"type": "response.cancel"})).await;
    c.until("response.done").await;
    c.send(json!({"type": "conversation.item.truncate", "item_id": item, "content_index": 0, "audio_end_ms": 50}))
        .await;
    c.until("conversation.item.truncated").await;
    c.send(json!({"type": "conversation.item.retrieve", "item_id": item}))
        .await;
    c.until("conversation.item.retrieved").await;
    c.send(json!({"type": "input_audio_buffer.clear"})).await;
    c.until("input_audio_buffer.cleared").await;
    c.send(json!({"type": "conversation.item.delete", "item_id": item}))
        .await;
    c.until("conversation.item.deleted").await;
    c.send(json!({"type": "response.cancel"})).await;
    c.until("error").await;
    let frames = server
        .log()
        .await
        .into_iter()
        .filter(|f| f.direction == Direction::FromServer)
        .map(|f| f.raw)
        .collect();
    assert!(
        server.violations().await.is_empty(),
        "{:?}",
        server.violations().await
    );
    frames
}

/// Validates every server frame against the schema its `type` selects (nulls allowed, as live
/// servers send them), and reports every frame that fails.
fn validate(frames: &[String], dialect: Dialect, name: &str) {
    let Some(spec) = spec::spec() else { return };
    let failures: Vec<String> = frames
        .iter()
        .enumerate()
        .filter_map(|(index, frame)| {
            let event: serde_json::Value = match serde_json::from_str(frame) {
                Ok(event) => event,
                Err(error) => return Some(format!("frame {index} is not JSON ({error}): {frame}")),
            };
            spec.validate_server_event(dialect, &event)
                .err()
                .map(|error| format!("frame {index}: {error}\n    {frame}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{name} ({dialect:?}): {} of {} server events do not validate:\n{}",
        failures.len(),
        frames.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn ga_events_validate() {
    let frames = play(false).await;
    assert!(frames.len() > 40);
    validate(&frames, Dialect::Ga, "session");
}

#[tokio::test]
async fn beta_events_validate() {
    let frames = play(true).await;
    assert!(frames.len() > 40);
    validate(&frames, Dialect::Beta, "session");
}

#[tokio::test]
async fn vad_and_barge_in_events_validate() {
    let scenario = Scenario::new("barge-in")
        .turn(
            Turn::user("Tell me a story.").model(
                ModelStep::say("Once upon a time.")
                    .audio_ms(600)
                    .barge_in_after_ms(200),
            ),
        )
        .turn(Turn::user("Wait.").model(ModelStep::say("Sure.")));
    for beta in [false, true] {
        let server = ScriptedServer::start(ServerConfig::new(scenario.clone())).unwrap();
        let headers: Vec<(&str, &str)> = if beta {
            vec![("OpenAI-Beta", "realtime=v1")]
        } else {
            vec![]
        };
        let mut c = Client::connect_with(&server.url(), &headers).await;
        c.next_event().await;
        c.send(json!({"type": "conversation.item.create", "item": {
            "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a story."}]
        }}))
        .await;
        c.send(json!({"type": "response.create"})).await;
        c.until("response.done").await;
        c.until("response.done").await;
        let frames: Vec<String> = server
            .log()
            .await
            .into_iter()
            .filter(|f| f.direction == Direction::FromServer)
            .map(|f| f.raw)
            .collect();
        assert!(frames.iter().any(|f| f.contains("speech_started")));
        validate(
            &frames,
            if beta { Dialect::Beta } else { Dialect::Ga },
            "barge-in",
        );
    }
}

/// The hostile-server knobs that still send valid events (tool loops, failed creates, late
/// transcripts, an oversized delta) send them in the official shapes.
#[tokio::test]
async fn hostile_knob_events_validate() {
    let faults = ConnectionFaults::new()
        .tool_loop("lookup_order")
        .fail_response_create(ErrorSpec::server_error(), 1)
        .oversized_frame_after(2, 4096);
    let config = ServerConfig::new(scenario())
        .late_transcription(true)
        .faults(Faults::none().on_every_connection(faults));
    let server = ScriptedServer::start(config).unwrap();
    let mut c = Client::connect(&server.url()).await;
    c.next_event().await;
    c.send(
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": null, "transcription": {"model": "whisper-1"}
        }}}}),
    )
    .await;
    c.until("session.updated").await;
    c.send(json!({"type": "response.create"})).await;
    c.until("error").await;
    let silence = base64::engine::general_purpose::STANDARD.encode([0u8; 48 * 200]);
    c.send(json!({"type": "input_audio_buffer.append", "audio": silence}))
        .await;
    c.send(json!({"type": "input_audio_buffer.commit"})).await;
    c.send(json!({"type": "response.create"})).await;
    let events = c
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    assert!(events.iter().any(|e| e["type"] == "response.done"));
    c.send(json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_loop_0001", "output": "{}"}}))
        .await;
    c.until("conversation.item.done").await;
    let frames: Vec<String> = server
        .log()
        .await
        .into_iter()
        .filter(|f| f.direction == Direction::FromServer)
        .map(|f| f.raw)
        .collect();
    assert!(frames.iter().any(|f| f.contains("call_loop_0001")));
    assert!(server.violations().await.is_empty());
    validate(&frames, Dialect::Ga, "hostile");
}

/// A transcription session (GA `session.type = "transcription"`): its session object and
/// transcript events are in the official shapes too.
#[tokio::test]
async fn transcription_session_events_validate() {
    let scenario = Scenario::transcription("dictation")
        .turn(Turn::user("First segment."))
        .turn(Turn::user("Second segment."));
    let server = ScriptedServer::start(ServerConfig::new(scenario)).unwrap();
    let mut c = Client::connect(&server.url()).await;
    c.next_event().await;
    c.send(
        json!({"type": "session.update", "session": {"type": "transcription", "audio": {"input": {
            "turn_detection": null, "transcription": {"model": "gpt-4o-mini-transcribe"}
        }}}}),
    )
    .await;
    c.until("session.updated").await;
    let silence = base64::engine::general_purpose::STANDARD.encode([0u8; 48 * 200]);
    for _ in 0..2 {
        c.send(json!({"type": "input_audio_buffer.append", "audio": silence}))
            .await;
        c.send(json!({"type": "input_audio_buffer.commit"})).await;
        c.until("conversation.item.input_audio_transcription.completed")
            .await;
    }
    let frames: Vec<String> = server
        .log()
        .await
        .into_iter()
        .filter(|f| f.direction == Direction::FromServer)
        .map(|f| f.raw)
        .collect();
    assert!(frames.iter().any(|f| f.contains("Second segment.")));
    assert!(server.violations().await.is_empty());
    validate(&frames, Dialect::Ga, "transcription");
}

/// The validator is not a no-op: an event missing what its schema requires fails.
#[test]
fn the_schemas_reject_a_broken_event() {
    let Some(spec) = spec::spec() else { return };
    let broken = json!({"type": "response.done"});
    assert!(spec.validate_server_event(Dialect::Ga, &broken).is_err());
    let broken = json!({"type": "response.text.delta", "delta": 7});
    assert!(spec.validate_server_event(Dialect::Beta, &broken).is_err());
}
