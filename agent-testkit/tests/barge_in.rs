//! Scripted barge-in: the server plays the user interrupting the assistant's audio at a given
//! point, with server VAD events, a `turn_detected` cancel, and the answer to the next turn.

mod common;

use agent_testkit::{ModelStep, Scenario, ScriptedServer, ServerConfig, Turn};
use common::{Client, types};
use serde_json::{Value, json};

fn scenario(barge_in_after_ms: u32) -> Scenario {
    Scenario::new("barge-in")
        .turn(
            Turn::user("Tell me a story.").model(
                ModelStep::say("Once upon a time there was a very patient server.")
                    .audio_ms(1000)
                    .barge_in_after_ms(barge_in_after_ms),
            ),
        )
        .turn(Turn::user("Wait, one question.").model(ModelStep::say("Sure, go ahead.")))
}

/// Runs the turn and returns every event until the answer to the interruption is done.
async fn play(barge_in_after_ms: u32, interrupt_response: bool) -> (Vec<Value>, Vec<String>) {
    let server = ScriptedServer::start(ServerConfig::new(scenario(barge_in_after_ms))).unwrap();
    let mut c = Client::connect(&server.url()).await;
    c.next_event().await;
    c.send(
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
            "turn_detection": {"type": "server_vad", "interrupt_response": interrupt_response}
        }}}}),
    )
    .await;
    c.next_event().await;
    c.user_says("Tell me a story.").await;
    c.send(json!({"type": "response.create"})).await;
    let mut events = c.until("response.done").await;
    events.extend(c.until("response.done").await);
    let violations = server.violations().await;
    (events, violations)
}

fn audio_before(events: &[Value], ty: &str) -> usize {
    let pos = events.iter().position(|e| e["type"] == ty).unwrap();
    events[..pos]
        .iter()
        .filter(|e| e["type"] == "response.output_audio.delta")
        .count()
}

fn dones(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "response.done")
        .collect()
}

#[tokio::test]
async fn barge_in_mid_audio_cancels_with_turn_detected() {
    let (events, violations) = play(300, true).await;
    assert_eq!(
        audio_before(&events, "input_audio_buffer.speech_started"),
        3
    );
    let done = dones(&events);
    assert_eq!(done[0]["response"]["status"], "cancelled");
    assert_eq!(
        done[0]["response"]["status_details"]["reason"],
        "turn_detected"
    );
    assert_eq!(done[0]["response"]["output"][0]["status"], "incomplete");
    let t = types(&events);
    let stopped = t
        .iter()
        .position(|x| x == "input_audio_buffer.speech_stopped")
        .unwrap();
    let first_done = t.iter().position(|x| x == "response.done").unwrap();
    assert!(
        stopped > first_done,
        "the cancelled response ends before the user's turn is committed"
    );
    assert_eq!(t[stopped + 1], "input_audio_buffer.committed");
    let started = events
        .iter()
        .find(|e| e["type"] == "input_audio_buffer.speech_started")
        .unwrap();
    assert_eq!(started["item_id"], "item_t1_user");
    let answer: String = events
        .iter()
        .skip(first_done)
        .filter(|e| e["type"] == "response.output_audio_transcript.delta")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(answer, "Sure, go ahead.");
    assert_eq!(done[1]["response"]["status"], "completed");
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn barge_in_before_any_audio() {
    let (events, _) = play(0, true).await;
    assert_eq!(
        audio_before(&events, "input_audio_buffer.speech_started"),
        0
    );
    assert_eq!(dones(&events)[0]["response"]["status"], "cancelled");
}

#[tokio::test]
async fn barge_in_after_the_audio_ended_cancels_nothing() {
    let (events, _) = play(5000, true).await;
    assert_eq!(
        audio_before(&events, "input_audio_buffer.speech_started"),
        10
    );
    let done = dones(&events);
    assert_eq!(done[0]["response"]["status"], "completed");
    assert_eq!(done[1]["response"]["status"], "completed");
}

#[tokio::test]
async fn without_interrupt_response_the_answer_waits() {
    let (events, violations) = play(300, false).await;
    assert_eq!(
        audio_before(&events, "input_audio_buffer.speech_started"),
        3
    );
    let done = dones(&events);
    assert_eq!(done[0]["response"]["status"], "completed");
    assert_eq!(
        audio_before(&events, "input_audio_buffer.speech_stopped"),
        10
    );
    assert!(violations.is_empty(), "{violations:?}");
}
