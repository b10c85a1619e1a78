//! Guardrails end to end against the scripted server: an answer that trips an output guardrail
//! mid-stream is cancelled, cut off (audio truncated at what was heard) and answered again; a
//! typed message that trips an input guardrail never leaves; a spoken turn is answered only
//! once its transcript passed (blocking mode), and one that trips leaves the conversation.

mod common;

use std::{sync::Arc, time::Duration};

use agent_core::{
    agent::{AgentFile, ConnectOverrides},
    audio::{AppendChunker, PlaybackClock},
    guardrail::GuardrailStage,
    protocol::{AudioFormat, Dialect},
    session::{HistorySink, Ownership, PlatformHeld, Session, SessionEvent},
    tool::ToolRegistry,
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, Turn},
    server::{ScriptedServer, ServerConfig, ServerHandle},
};
use common::harness::{CapturedHistory, received, types, validate_all};
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(20);

/// An output blocklist checked on every delta, with `extra` settings under `[guardrails]`.
fn output_guard(extra: &str) -> String {
    format!(
        "[guardrails]\noutput_debounce_ms = 0\n{extra}\
         [[guardrails.output]]\ntype = \"blocklist\"\nname = \"no promises\"\nwords = [\"guaranteed\"]\n\
         message = \"never promise an outcome\"\n"
    )
}

const INPUT_GUARD: &str = "[transcription]\nmodel = \"gpt-4o-mini-transcribe\"\n\
    [guardrails]\n[[guardrails.input]]\ntype = \"regex\"\nname = \"card\"\n\
    pattern = '\\b(?:\\d[ -]?){13,16}\\b'\nmessage = \"no card numbers\"\n";

async fn start(
    agent_toml: &str,
    scenario: Scenario,
    clock: PlaybackClock,
) -> (ServerHandle, Session) {
    start_owned(agent_toml, scenario, clock, Ownership::ClientHeld).await
}

async fn start_owned(
    agent_toml: &str,
    scenario: Scenario,
    clock: PlaybackClock,
    ownership: Ownership,
) -> (ServerHandle, Session) {
    start_with(agent_toml, scenario, clock, ownership, None).await
}

async fn start_with(
    agent_toml: &str,
    scenario: Scenario,
    clock: PlaybackClock,
    ownership: Ownership,
    sink: Option<Arc<CapturedHistory>>,
) -> (ServerHandle, Session) {
    // Time between server events, so a `response.cancel` lands while the answer streams.
    let config = ServerConfig::new(scenario).event_delay(Duration::from_millis(5));
    let server = ScriptedServer::start(config).unwrap();
    let agent = AgentFile::parse("guarded.toml", format!("name = \"guarded\"\n{agent_toml}"))
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
    config.ownership = ownership;
    config.history_sink = sink.map(|sink| sink as Arc<dyn HistorySink>);
    let session = Session::start(config).await.unwrap();
    (server, session)
}

/// Events until the session is idle with `responses` responses done.
async fn until_done(session: &mut Session, responses: usize) -> Vec<SessionEvent> {
    let mut events = Vec::new();
    let mut done = 0;
    tokio::time::timeout(LIMIT, async {
        while let Some(event) = session.events.recv().await {
            if matches!(event, SessionEvent::ResponseDone { .. }) {
                done += 1;
            }
            let idle = event == SessionEvent::Idle;
            events.push(event);
            if idle && done >= responses {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not idle after {responses} responses: {events:#?}"));
    events
}

fn reply(events: &[SessionEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::TextDelta { delta, .. } | SessionEvent::TranscriptDelta { delta, .. } => {
                Some(delta.as_str())
            }
            _ => None,
        })
        .collect()
}

fn trips(events: &[SessionEvent]) -> Vec<(String, GuardrailStage, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::GuardrailTripped {
                guardrail,
                stage,
                item_id,
                ..
            } => Some((guardrail.clone(), *stage, item_id.clone())),
            _ => None,
        })
        .collect()
}

fn system_notes(sent: &[Value]) -> Vec<String> {
    sent.iter()
        .filter(|e| e["type"] == "conversation.item.create" && e["item"]["role"] == "system")
        .map(|e| {
            e["item"]["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn an_answer_that_trips_is_cancelled_cut_off_and_answered_again() {
    let scenario = Scenario::new("promise").turn(
        Turn::user("Will my refund come?")
            .model(
                ModelStep::say(
                    "Absolutely, your refund is guaranteed and it will arrive tomorrow, I promise you that for sure.",
                )
                .audio_ms(2000),
            )
            .model(ModelStep::say("Billing will check your refund and email you.")),
    );
    let agent = format!("output_modalities = [\"audio\"]\n{}", output_guard(""));
    let (server, mut session) = start(&agent, scenario, PlaybackClock::real_time()).await;
    session
        .handle
        .send_text("Will my refund come?")
        .await
        .unwrap();
    let events = until_done(&mut session, 2).await;

    let trips = trips(&events);
    assert_eq!(trips.len(), 1, "{events:#?}");
    assert_eq!(trips[0].0, "no promises");
    assert_eq!(trips[0].1, GuardrailStage::Output);
    let item = trips[0].2.clone().expect("the answer's item");
    let text = reply(&events);
    assert!(
        !text.contains("guaranteed"),
        "the app never got the word: {text}"
    );
    assert!(
        text.ends_with("Billing will check your refund and email you."),
        "{text}"
    );
    // Playback stopped where the app plays the audio.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::Interrupted { item_id, .. } if *item_id == item))
    );

    let sent = received(&server).await;
    let kinds = types(&sent);
    let cancel = kinds
        .iter()
        .position(|k| k == "response.cancel")
        .expect("a cancel");
    let truncate = kinds
        .iter()
        .position(|k| k == "conversation.item.truncate")
        .expect("a truncate at what was heard");
    let notes = system_notes(&sent);
    assert_eq!(notes.len(), 1, "{kinds:?}");
    assert!(notes[0].contains("`no promises`") && notes[0].contains("never promise an outcome"));
    let note_at = sent
        .iter()
        .position(|e| e["item"]["role"] == "system")
        .unwrap();
    let second_create = kinds.iter().rposition(|k| k == "response.create").unwrap();
    assert!(
        cancel < note_at && truncate < note_at && note_at < second_create,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| *k == "response.create").count(),
        2,
        "{kinds:?}"
    );
    validate_all(&server, Dialect::Ga).await;
    common::harness::assert_no_violations(&server).await;
}

/// A text answer is not truncated by the server, so the runtime must not store what the
/// guardrail stopped: the history (replayed into the next connection) keeps a placeholder, and
/// a record of the trip without the words.
#[tokio::test]
async fn a_stopped_answer_is_stored_as_a_placeholder_and_the_trip_is_recorded() {
    let scenario = Scenario::new("promise").turn(
        Turn::user("Will my refund come?")
            .model(ModelStep::say(
                "Your refund is guaranteed and it will arrive tomorrow, I promise.",
            ))
            .model(ModelStep::say(
                "Billing will check your refund and email you.",
            )),
    );
    let agent = format!("output_modalities = [\"text\"]\n{}", output_guard(""));
    let sink = Arc::new(CapturedHistory::default());
    let (server, mut session) = start_with(
        &agent,
        scenario,
        PlaybackClock::immediate(),
        Ownership::ClientHeld,
        Some(sink.clone()),
    )
    .await;
    session
        .handle
        .send_text("Will my refund come?")
        .await
        .unwrap();
    let events = until_done(&mut session, 2).await;
    assert_eq!(trips(&events).len(), 1, "{events:#?}");

    let stored = sink.items_json();
    for blocked in ["guaranteed", "tomorrow"] {
        assert!(
            !stored.iter().any(|item| item.contains(blocked)),
            "the stopped words were stored: {stored:#?}"
        );
    }
    assert!(
        stored
            .iter()
            .any(|item| item.contains("[answer stopped by the guardrail `no promises`]")),
        "{stored:#?}"
    );
    assert!(
        stored
            .iter()
            .any(|item| item.contains("Billing will check your refund")),
        "{stored:#?}"
    );
    assert_eq!(
        *sink.trips.lock().unwrap(),
        [(
            "no promises".to_owned(),
            GuardrailStage::Output,
            "never promise an outcome".to_owned()
        )]
    );
    validate_all(&server, Dialect::Ga).await;
}

/// On a call the platform plays (SIP, WebRTC: we are on the sideband), the platform is told to
/// drop what it queued of the answer, and nothing is truncated from our side.
#[tokio::test]
async fn on_the_sideband_the_platform_clears_its_audio() {
    let scenario = Scenario::new("promise").turn(
        Turn::user("Will my refund come?")
            .model(
                ModelStep::say("Yes, it is guaranteed, do not worry about it at all.")
                    .audio_ms(2000),
            )
            .model(ModelStep::say("Billing will check it.")),
    );
    let agent = format!("output_modalities = [\"audio\"]\n{}", output_guard(""));
    let held = Ownership::PlatformHeld(PlatformHeld::default());
    let (server, mut session) =
        start_owned(&agent, scenario, PlaybackClock::real_time(), held).await;
    session
        .handle
        .send_text("Will my refund come?")
        .await
        .unwrap();
    let events = until_done(&mut session, 2).await;
    assert_eq!(trips(&events).len(), 1);
    let kinds = types(&received(&server).await);
    let cancel = kinds.iter().position(|k| k == "response.cancel").unwrap();
    assert_eq!(
        kinds.get(cancel + 1).map(String::as_str),
        Some("output_audio_buffer.clear")
    );
    assert!(
        !kinds.iter().any(|k| k == "conversation.item.truncate"),
        "{kinds:?}"
    );
    assert!(reply(&events).ends_with("Billing will check it."));
    validate_all(&server, Dialect::Ga).await;
}

#[tokio::test]
async fn an_answer_that_keeps_tripping_stops_after_the_retry_budget() {
    let bad = "It is guaranteed, totally guaranteed.";
    let scenario = Scenario::new("stubborn").turn(
        Turn::user("Promise me.")
            .model(ModelStep::say(bad))
            .model(ModelStep::say(bad))
            .model(ModelStep::say(bad)),
    );
    let agent = format!(
        "output_modalities = [\"text\"]\n{}",
        output_guard("max_retries = 1\n")
    );
    let (server, mut session) = start(&agent, scenario, PlaybackClock::immediate()).await;
    session.handle.send_text("Promise me.").await.unwrap();
    let events = until_done(&mut session, 2).await;
    assert_eq!(trips(&events).len(), 2, "{events:#?}");
    let sent = received(&server).await;
    assert_eq!(system_notes(&sent).len(), 1, "one retry, then no more");
    assert_eq!(
        types(&sent)
            .iter()
            .filter(|k| *k == "response.create")
            .count(),
        2
    );
    assert!(events.iter().any(
        |e| matches!(e, SessionEvent::Warning { message } if message.contains("not asking again"))
    ));
}

#[tokio::test]
async fn typed_text_that_trips_never_leaves() {
    let scenario = Scenario::new("card").turn(
        Turn::user("(withheld)").model(ModelStep::say("Sorry, I can't take card numbers here.")),
    );
    let agent = format!("output_modalities = [\"text\"]\n{INPUT_GUARD}");
    let (server, mut session) = start(&agent, scenario, PlaybackClock::immediate()).await;
    session
        .handle
        .send_text("my card is 4111 1111 1111 1111")
        .await
        .unwrap();
    let events = until_done(&mut session, 1).await;
    assert_eq!(
        trips(&events),
        [("card".to_owned(), GuardrailStage::Input, None)]
    );
    assert_eq!(reply(&events), "Sorry, I can't take card numbers here.");
    let raw: Vec<String> = server.received().await.into_iter().map(|f| f.raw).collect();
    assert!(
        !raw.iter().any(|f| f.contains("4111")),
        "the number never left"
    );
    let notes = system_notes(&received(&server).await);
    assert!(
        notes[0].contains("`card`") && notes[0].contains("cannot help"),
        "{notes:?}"
    );
    validate_all(&server, Dialect::Ga).await;
}

/// A tone and then silence: speech for the scripted server's VAD.
fn utterance() -> Vec<i16> {
    let rate = AudioFormat::pcm16().sample_rate() as usize;
    let mut samples: Vec<i16> = (0..rate / 2)
        .map(|i| (8000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin()) as i16)
        .collect();
    samples.extend(std::iter::repeat_n(0, rate));
    samples
}

async fn speak(session: &Session) {
    for event in AppendChunker::default().chunks(&utterance()) {
        session.handle.send_event(event).await.unwrap();
    }
}

#[tokio::test]
async fn a_spoken_turn_is_answered_once_its_transcript_passed() {
    let scenario = Scenario::new("spoken")
        .turn(Turn::user("What are your opening hours?").model(ModelStep::say("Nine to five.")));
    let agent = format!("output_modalities = [\"text\"]\n{INPUT_GUARD}");
    let (server, mut session) = start(&agent, scenario, PlaybackClock::immediate()).await;
    speak(&session).await;
    let events = until_done(&mut session, 1).await;
    assert!(trips(&events).is_empty());
    assert_eq!(reply(&events), "Nine to five.");
    let transcript_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::UserTranscript { .. }))
        .expect("a transcript");
    let started_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::ResponseStarted { .. }))
        .unwrap();
    assert!(
        transcript_at < started_at,
        "the answer waited for the check"
    );
    let sent = received(&server).await;
    let update = &sent[0]["session"]["audio"]["input"]["turn_detection"];
    assert_eq!(
        update["create_response"], false,
        "the server does not answer by itself"
    );
    validate_all(&server, Dialect::Ga).await;
}

#[tokio::test]
async fn a_spoken_turn_that_trips_leaves_the_conversation() {
    let scenario = Scenario::new("spoken card").turn(
        Turn::user("my card number is 4111 1111 1111 1111")
            .model(ModelStep::say("I can't take card numbers on this line.")),
    );
    let agent = format!("output_modalities = [\"text\"]\n{INPUT_GUARD}");
    let (server, mut session) = start(&agent, scenario, PlaybackClock::immediate()).await;
    speak(&session).await;
    let events = until_done(&mut session, 1).await;
    let trips = trips(&events);
    assert_eq!(trips.len(), 1, "{events:#?}");
    let item = trips[0].2.clone().expect("the spoken item");
    assert_eq!(reply(&events), "I can't take card numbers on this line.");
    let sent = received(&server).await;
    let kinds = types(&sent);
    let deleted = sent
        .iter()
        .position(|e| e["type"] == "conversation.item.delete" && e["item_id"] == item.as_str())
        .expect("the user's item is deleted");
    let create = kinds.iter().position(|k| k == "response.create").unwrap();
    assert!(deleted < create, "{kinds:?}");
    validate_all(&server, Dialect::Ga).await;
}

#[tokio::test]
async fn push_to_talk_waits_for_the_transcript_too() {
    let scenario = Scenario::new("ptt")
        .turn(Turn::user("What are your opening hours?").model(ModelStep::say("Nine to five.")));
    let agent =
        format!("output_modalities = [\"text\"]\n[turn_detection]\ntype = \"none\"\n{INPUT_GUARD}");
    let (server, mut session) = start(&agent, scenario, PlaybackClock::immediate()).await;
    speak(&session).await;
    session.handle.commit_audio().await.unwrap();
    let events = until_done(&mut session, 1).await;
    assert_eq!(reply(&events), "Nine to five.");
    let transcript_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::UserTranscript { .. }))
        .expect("a transcript");
    let started_at = events
        .iter()
        .position(|e| matches!(e, SessionEvent::ResponseStarted { .. }))
        .unwrap();
    assert!(
        transcript_at < started_at,
        "the answer waited for the check"
    );
    validate_all(&server, Dialect::Ga).await;
}

/// Parallel mode: the server answers at once; when the transcript trips, that answer is cut
/// off, and the model is told to decline.
#[tokio::test]
async fn in_parallel_mode_the_answer_under_way_is_cut_off() {
    let scenario = Scenario::new("parallel card").turn(
        Turn::user("my card number is 4111 1111 1111 1111")
            .model(ModelStep::say(
                "Let me note that card number down for you right away, one moment please.",
            ))
            .model(ModelStep::say("I can't take card numbers on this line.")),
    );
    let agent = format!(
        "output_modalities = [\"text\"]\n{}",
        INPUT_GUARD.replace(
            "[guardrails]\n",
            "[guardrails]\ninput_mode = \"parallel\"\n"
        )
    );
    let (server, mut session) = start(&agent, scenario, PlaybackClock::immediate()).await;
    speak(&session).await;
    let events = until_done(&mut session, 2).await;
    assert_eq!(trips(&events).len(), 1, "{events:#?}");
    assert!(reply(&events).ends_with("I can't take card numbers on this line."));
    let sent = received(&server).await;
    let update = &sent[0]["session"]["audio"]["input"]["turn_detection"];
    assert!(
        update.get("create_response").is_none_or(|v| v != false),
        "the server answers itself"
    );
    let kinds = types(&sent);
    assert!(kinds.iter().any(|k| k == "response.cancel"), "{kinds:?}");
    assert!(
        kinds.iter().any(|k| k == "conversation.item.delete"),
        "{kinds:?}"
    );
    validate_all(&server, Dialect::Ga).await;
}
