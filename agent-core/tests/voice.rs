//! Voice end to end against the scripted server: barge-in at several points with the exact
//! `conversation.item.truncate` and `response.cancel` events, push-to-talk, G.711 input, and a
//! transcription session.

use std::time::Duration;

use agent_core::{
    agent::{AgentFile, ConnectOverrides},
    audio::{AppendChunker, PlaybackClock},
    protocol::{AudioFormat, ClientEvent},
    session::{Session, SessionEvent},
    tool::ToolRegistry,
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, Turn},
    server::{ScriptedServer, ServerConfig, ServerHandle},
};
use serde_json::{Value, json};

/// Every test ends well within this.
const LIMIT: Duration = Duration::from_secs(20);

/// The assistant item of the first scripted response (turn 0, step 0, output 0).
const ITEM: &str = "item_t0s0o0";

async fn start(
    agent_toml: &str,
    scenario: Scenario,
    clock: PlaybackClock,
) -> (ServerHandle, Session) {
    // A little time between server events, as on a real connection, so a client's
    // `response.cancel` can arrive while the response is still streaming.
    let config = ServerConfig::new(scenario).event_delay(Duration::from_millis(5));
    let server = ScriptedServer::start(config).unwrap();
    let agent = AgentFile::parse("voice.toml", format!("name = \"voice\"\n{agent_toml}"))
        .unwrap()
        .resolve(&ToolRegistry::new())
        .unwrap();
    let overrides = ConnectOverrides {
        url: Some(server.url()),
        key_optional: true,
        ..Default::default()
    };
    let mut config = agent.session_config(&overrides, None).unwrap();
    config.playback = clock;
    let session = Session::start(config).await.unwrap();
    (server, session)
}

fn speaking_agent(interrupt_response: bool) -> String {
    format!(
        "output_modalities = [\"audio\"]\n\
         [turn_detection]\ntype = \"server_vad\"\ninterrupt_response = {interrupt_response}\n"
    )
}

fn story(barge_in_after_ms: u32) -> Scenario {
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

/// Collects events until the answer to the interruption is done.
async fn until_second_response_done(session: &mut Session) -> Vec<SessionEvent> {
    let mut events = Vec::new();
    let mut done = 0;
    tokio::time::timeout(LIMIT, async {
        while let Some(event) = session.events.recv().await {
            let last = matches!(event, SessionEvent::ResponseDone { .. });
            events.push(event);
            if last {
                done += 1;
                if done == 2 {
                    break;
                }
            }
        }
    })
    .await
    .expect("the conversation did not finish");
    events
}

/// Sends a harmless marker and waits until the server has read it, so every frame the client
/// sent before it has been read too (one socket, in order).
async fn sync(session: &Session, server: &ServerHandle) {
    session
        .handle
        .send_event(ClientEvent::input_audio_buffer_clear())
        .await
        .unwrap();
    tokio::time::timeout(LIMIT, async {
        loop {
            let frames = server.received().await;
            if frames
                .iter()
                .filter_map(|f| f.value.as_ref())
                .any(|v| v["type"] == "input_audio_buffer.clear")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server did not read the marker");
}

/// The barge-in events the client sent, as JSON, in order.
async fn barge_in_frames(server: &ServerHandle) -> Vec<Value> {
    server
        .received()
        .await
        .into_iter()
        .filter_map(|e| e.value)
        .filter(|v| v["type"] == "conversation.item.truncate" || v["type"] == "response.cancel")
        .collect()
}

fn interruptions(events: &[SessionEvent]) -> Vec<(String, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Interrupted {
                item_id,
                audio_end_ms,
            } => Some((item_id.clone(), *audio_end_ms)),
            _ => None,
        })
        .collect()
}

/// Audio bytes passed to the app per item.
fn audio_bytes(events: &[SessionEvent], item: &str) -> usize {
    events
        .iter()
        .map(|e| match e {
            SessionEvent::Audio { item_id, data, .. } if item_id == item => data.len(),
            _ => 0,
        })
        .sum()
}

fn statuses(events: &[SessionEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ResponseDone { status, .. } => Some(status.clone()),
            _ => None,
        })
        .collect()
}

/// Plays the story with a barge-in after `at_ms` of audio; returns the barge-in frames, the
/// events, and the server's protocol violations.
async fn barge_in(
    at_ms: u32,
    interrupt_response: bool,
    clock: PlaybackClock,
) -> (Vec<Value>, Vec<SessionEvent>, Vec<String>) {
    let (server, mut session) =
        start(&speaking_agent(interrupt_response), story(at_ms), clock).await;
    session.handle.send_text("Tell me a story.").await.unwrap();
    let events = until_second_response_done(&mut session).await;
    sync(&session, &server).await;
    let frames = barge_in_frames(&server).await;
    let violations = server.violations().await;
    session.handle.close().await.unwrap();
    server.shutdown().await;
    (frames, events, violations)
}

fn truncate(audio_end_ms: u64) -> Value {
    json!({"type": "conversation.item.truncate", "item_id": ITEM, "content_index": 0,
           "audio_end_ms": audio_end_ms})
}

fn cancel() -> Value {
    json!({"type": "response.cancel"})
}

#[tokio::test]
async fn barge_in_mid_audio_truncates_at_what_was_heard() {
    // Audio counts as heard on arrival: 300 ms had arrived when the user spoke.
    let (frames, events, violations) = barge_in(300, true, PlaybackClock::immediate()).await;
    assert_eq!(frames, vec![truncate(300)], "the server cancels by itself");
    assert_eq!(interruptions(&events), vec![(ITEM.to_owned(), 300)]);
    assert_eq!(statuses(&events), ["cancelled", "completed"]);
    assert_eq!(
        audio_bytes(&events, ITEM),
        300 * 48,
        "no audio after the cut"
    );
    assert!(violations.is_empty(), "{violations:?}");

    let (frames, events, violations) = barge_in(300, false, PlaybackClock::immediate()).await;
    assert_eq!(
        frames,
        vec![cancel(), truncate(300)],
        "interrupt_response = false: the client cancels"
    );
    assert_eq!(interruptions(&events), vec![(ITEM.to_owned(), 300)]);
    assert_eq!(statuses(&events), ["cancelled", "completed"]);
    assert_eq!(
        audio_bytes(&events, ITEM),
        300 * 48,
        "late deltas are dropped"
    );
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn barge_in_truncates_at_the_device_position_not_past_the_received_audio() {
    let clock = PlaybackClock::reported();
    clock.report(ITEM, 120);
    let (frames, events, violations) = barge_in(300, false, clock).await;
    assert_eq!(frames, vec![cancel(), truncate(120)]);
    assert_eq!(interruptions(&events), vec![(ITEM.to_owned(), 120)]);
    assert!(violations.is_empty(), "{violations:?}");

    // A device that claims more than arrived is clamped to the received 200 ms.
    let clock = PlaybackClock::reported();
    clock.report(ITEM, 5_000);
    let (frames, _, violations) = barge_in(200, true, clock).await;
    assert_eq!(frames, vec![truncate(200)]);
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn barge_in_before_any_audio_cancels_only() {
    let (frames, events, violations) = barge_in(0, true, PlaybackClock::immediate()).await;
    assert_eq!(frames, Vec::<Value>::new(), "nothing heard, nothing to cut");
    assert!(interruptions(&events).is_empty());
    assert_eq!(statuses(&events), ["cancelled", "completed"]);
    assert!(violations.is_empty(), "{violations:?}");

    let (frames, events, violations) = barge_in(0, false, PlaybackClock::immediate()).await;
    assert_eq!(frames, vec![cancel()]);
    assert!(interruptions(&events).is_empty());
    assert_eq!(statuses(&events), ["cancelled", "completed"]);
    assert_eq!(
        audio_bytes(&events, ITEM),
        0,
        "the cancelled response stays silent"
    );
    assert!(violations.is_empty(), "{violations:?}");
}

#[tokio::test]
async fn barge_in_after_playback_finished_sends_nothing() {
    for interrupt_response in [true, false] {
        let (frames, events, violations) =
            barge_in(5_000, interrupt_response, PlaybackClock::immediate()).await;
        assert_eq!(
            frames,
            Vec::<Value>::new(),
            "interrupt_response={interrupt_response}"
        );
        assert!(interruptions(&events).is_empty());
        assert_eq!(statuses(&events), ["completed", "completed"]);
        assert_eq!(audio_bytes(&events, ITEM), 1000 * 48);
        assert!(violations.is_empty(), "{violations:?}");
    }
}

#[tokio::test]
async fn barge_in_while_a_real_time_speaker_still_plays_a_finished_response() {
    // The server sent all 1000 ms at once and finished; a real-time speaker has played only a
    // little of it when the user speaks: the item is cut there, and nothing is cancelled.
    let (frames, events, violations) = barge_in(5_000, false, PlaybackClock::real_time()).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "conversation.item.truncate");
    assert_eq!(frames[0]["item_id"], ITEM);
    let cut = frames[0]["audio_end_ms"].as_u64().unwrap();
    assert!(cut < 1000, "cut at {cut} ms");
    assert_eq!(interruptions(&events), vec![(ITEM.to_owned(), cut)]);
    assert!(violations.is_empty(), "{violations:?}");
}

/// A tone and then silence, as 24 kHz samples: speech for the scripted server's VAD.
fn utterance(format: AudioFormat) -> Vec<i16> {
    let rate = format.sample_rate() as usize;
    let mut samples: Vec<i16> = (0..rate / 2)
        .map(|i| (8000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin()) as i16)
        .collect();
    samples.extend(std::iter::repeat_n(0, rate));
    samples
}

#[tokio::test]
async fn push_to_talk_commits_and_asks_for_a_response() {
    let agent = "output_modalities = [\"text\"]\n[turn_detection]\ntype = \"none\"\n\
                 [transcription]\nmodel = \"gpt-4o-mini-transcribe\"\n";
    let scenario = Scenario::new("ptt")
        .turn(Turn::user("What is the weather?").model(ModelStep::say("Sunny.")));
    let (server, mut session) = start(agent, scenario, PlaybackClock::immediate()).await;
    for event in AppendChunker::default().chunks(&utterance(AudioFormat::pcm16())) {
        session.handle.send_event(event).await.unwrap();
    }
    session.handle.commit_audio().await.unwrap();
    let mut transcript = None;
    let mut reply = String::new();
    tokio::time::timeout(LIMIT, async {
        while let Some(event) = session.events.recv().await {
            match event {
                SessionEvent::UserTranscript { text, .. } => transcript = Some(text),
                SessionEvent::TextDelta { delta, .. } => reply.push_str(&delta),
                SessionEvent::Idle => break,
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(reply, "Sunny.");
    let kinds: Vec<String> = server
        .received()
        .await
        .into_iter()
        .filter_map(|e| e.value)
        .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
        .filter(|t| t != "input_audio_buffer.append")
        .collect();
    assert_eq!(
        kinds,
        [
            "session.update",
            "input_audio_buffer.commit",
            "response.create"
        ]
    );
    // The transcript may trail the reply; it is the scripted turn's text when it comes.
    if let Some(text) = transcript {
        assert_eq!(text, "What is the weather?");
    }
    assert!(server.violations().await.is_empty());
}

#[tokio::test]
async fn transcription_sessions_stream_deltas_and_segments_from_g711_audio() {
    let agent = "type = \"transcription\"\n[audio]\ninput_format = \"g711_ulaw\"\n\
                 [turn_detection]\ntype = \"server_vad\"\nsilence_duration_ms = 300\n\
                 [transcription]\nmodel = \"gpt-4o-mini-transcribe\"\n";
    let scenario = Scenario::transcription("dictation")
        .turn(Turn::user("First segment here."))
        .turn(Turn::user("And a second one."));
    let (server, mut session) = start(agent, scenario, PlaybackClock::immediate()).await;
    let chunker = AppendChunker::for_format(AudioFormat::Pcmu, 20).unwrap();
    let mut speech = utterance(AudioFormat::Pcmu);
    speech.extend(utterance(AudioFormat::Pcmu));
    for event in chunker.chunks(&speech) {
        assert!(matches!(event, ClientEvent::InputAudioBufferAppend(_)));
        session.handle.send_event(event).await.unwrap();
    }
    let mut deltas = String::new();
    let mut segments = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while let Some(event) = session.events.recv().await {
            match event {
                SessionEvent::UserTranscriptDelta { delta, .. } => deltas.push_str(&delta),
                SessionEvent::UserTranscript { item_id, text } => {
                    segments.push((item_id, text));
                    if segments.len() == 2 {
                        break;
                    }
                }
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        segments,
        [
            ("item_t0_user".to_owned(), "First segment here.".to_owned()),
            ("item_t1_user".to_owned(), "And a second one.".to_owned())
        ]
    );
    assert_eq!(deltas, "First segment here.And a second one.");
    let sent: Vec<Value> = server
        .received()
        .await
        .into_iter()
        .filter_map(|e| e.value)
        .collect();
    assert_eq!(sent[0]["session"]["type"], "transcription");
    assert!(
        sent.iter().all(|v| v["type"] != "response.create"),
        "a transcription session never asks for a response"
    );
    assert!(server.violations().await.is_empty());
}

/// Captures what the runtime stores, including replacements.
#[derive(Default)]
struct Stored(std::sync::Mutex<Vec<(String, agent_core::protocol::Item)>>);

impl agent_core::session::HistorySink for Stored {
    fn append(&self, key: &str, item: &agent_core::protocol::Item) {
        self.0.lock().unwrap().push((key.to_owned(), item.clone()));
    }
    fn replace(&self, key: &str, item: &agent_core::protocol::Item) {
        for entry in self.0.lock().unwrap().iter_mut() {
            if entry.0 == key {
                entry.1 = item.clone();
            }
        }
    }
}

#[tokio::test]
async fn the_history_keeps_only_what_the_user_heard() {
    let config = ServerConfig::new(story(300)).event_delay(Duration::from_millis(5));
    let server = ScriptedServer::start(config).unwrap();
    let agent = AgentFile::parse(
        "voice.toml",
        format!("name = \"voice\"\n{}", speaking_agent(true)),
    )
    .unwrap()
    .resolve(&ToolRegistry::new())
    .unwrap();
    let overrides = ConnectOverrides {
        url: Some(server.url()),
        key_optional: true,
        ..Default::default()
    };
    let stored = std::sync::Arc::new(Stored::default());
    let mut config = agent.session_config(&overrides, None).unwrap();
    config.playback = PlaybackClock::immediate();
    config.history_sink = Some(stored.clone());
    let mut session = Session::start(config).await.unwrap();
    session.handle.send_text("Tell me a story.").await.unwrap();
    until_second_response_done(&mut session).await;
    sync(&session, &server).await;
    let items = stored.0.lock().unwrap().clone();
    let story = items
        .iter()
        .find(|(key, _)| key == &format!("item:{ITEM}"))
        .map(|(_, item)| agent_core::session::log::message_text(item).unwrap())
        .expect("the interrupted reply is stored");
    // 300 ms of 1000: the stored transcript keeps about the first 30%, cut at a word.
    assert!(
        story.len() < "Once upon a time there was a very patient server.".len() / 2,
        "{story}"
    );
    assert!(
        "Once upon a time there was a very patient server."
            .starts_with(story.trim_end_matches('…'))
    );
    session.handle.close().await.unwrap();
    server.shutdown().await;
}
