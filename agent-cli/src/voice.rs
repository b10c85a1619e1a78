//! `agent run` with audio: `--input-audio`, `--output-audio`, `--voice`, and transcription
//! agents.
//!
//! Offline, the scripted server's VAD turns the streamed audio into user turns: each utterance
//! it detects becomes the next scripted turn (its transcript is that turn's `user` text), and
//! the turns left after the audio are typed as usual. Leading turns where the model speaks first
//! are played before the audio. A transcription scenario without `--input-audio` is spoken with
//! synthetic speech, one burst per turn.
//!
//! Assistant audio counts as heard as it arrives when nothing runs at real time (offline typed
//! turns, `--no-pace`), which makes offline runs exact and repeatable; with paced input or live,
//! a real-time virtual speaker decides; with `--voice`, the speaker reports what it played.

use std::{
    collections::HashSet,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use agent_core::{
    agent::{Agent, AgentKind, ConnectOverrides},
    audio::{PlaybackClock, WavAudio, read_wav},
    protocol::{AudioFormat, Modality, SessionKind, TurnDetection},
    session::{SessionConfig, SessionEvent, WireObserver},
};
use agent_testkit::{
    scenario::Scenario,
    server::{ScriptedServer, ServerConfig},
};
use anyhow::{Context, bail};

use crate::{
    audio_io::{self, AudioArgs, StreamOptions, WavSink},
    console::Console,
    conversation::{Conversation, TURN_TIMEOUT},
    persist::{HistoryArgs, Persistence},
    summary::RunSummary,
    transcript::TranscriptView,
};

/// How long to wait for more events once the audio was sent and nothing seems pending.
const QUIET: Duration = Duration::from_secs(4);

/// Where the session runs.
pub enum Target {
    /// The scripted server, playing these scenarios.
    Offline(Vec<Scenario>),
    /// A real (or `--url`) server.
    Live(ConnectOverrides),
}

/// The message when `--voice` is asked of a build without devices.
pub const NO_DEVICE_SUPPORT: &str = "this `agent` was built without microphone and speaker support. \
Rebuild with the `audio-device` feature: `cargo run --release --features audio-device -- run FILE --voice`. \
On Linux that needs the ALSA development package first (Debian/Ubuntu: `sudo apt-get install libasound2-dev`; \
Fedora: `alsa-lib-devel`). Without devices, use --input-audio FILE.wav and --output-audio FILE.wav";

/// Runs an agent with audio in or out, or a transcription agent.
pub async fn run(
    agent: &Agent,
    target: Target,
    audio: &AudioArgs,
    observer: Option<Arc<dyn WireObserver>>,
    verbose: bool,
    history: &HistoryArgs,
) -> anyhow::Result<ExitCode> {
    let transcription = agent.spec().kind == AgentKind::Transcription;
    if transcription && audio.output_audio.is_some() {
        bail!("a transcription agent produces no audio, so there is nothing for --output-audio");
    }
    if audio.voice && !cfg!(feature = "audio-device") {
        bail!("{NO_DEVICE_SUPPORT}");
    }
    if transcription
        && audio.input_audio.is_none()
        && !audio.voice
        && matches!(target, Target::Live(_))
    {
        bail!(
            "a transcription agent needs audio: pass --input-audio FILE.wav (or --voice), or run it --offline"
        );
    }
    let input = match &audio.input_audio {
        Some(path) => Some(read_wav(path).context("cannot use --input-audio")?),
        None => None,
    };
    let offline = matches!(target, Target::Offline(_));
    let clock = if audio.voice {
        PlaybackClock::reported()
    } else if audio.no_pace || (offline && input.is_none()) {
        PlaybackClock::immediate()
    } else {
        PlaybackClock::real_time()
    };
    let output_format = agent.session().output_format().unwrap_or_default();
    let sink = match &audio.output_audio {
        Some(path) => Some(Arc::new(Mutex::new(WavSink::create(path, output_format)?))),
        None => None,
    };
    let setup = Setup {
        agent,
        audio,
        observer,
        clock,
        sink: sink.clone(),
        transcription,
        verbose,
        output_format,
    };
    let mut summary = RunSummary::default();
    let mut failed = Vec::new();
    match target {
        Target::Offline(scenarios) => {
            for (scenario, skip, persistence) in
                crate::persist::offline_plan(&scenarios, history, agent)?
            {
                let persistence = match persistence {
                    Some(p) => Some(p),
                    None => history.open(agent)?,
                };
                let server = ScriptedServer::start(ServerConfig::new(scenario.clone()))
                    .context("cannot start the scripted server on 127.0.0.1")?;
                let overrides = ConnectOverrides {
                    url: Some(server.url()),
                    key_optional: true,
                    ..Default::default()
                };
                crate::output::outln!("── scenario: {} ──", scenario.name);
                let played = setup
                    .play(
                        &overrides,
                        Some(&scenario),
                        skip,
                        input.clone(),
                        persistence.as_ref(),
                    )
                    .await;
                server.shutdown().await;
                let stats = finish(played, persistence, &mut failed).await?;
                summary.add(&stats);
                crate::output::outln!();
            }
        }
        Target::Live(overrides) => {
            let persistence = history.open(agent)?;
            let played = setup
                .play(&overrides, None, 0, input, persistence.as_ref())
                .await;
            let stats = finish(played, persistence, &mut failed).await?;
            summary.add(&stats);
        }
    }
    if let Some(sink) = sink {
        let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
        sink.finish()?;
        if let Some(path) = &audio.output_audio {
            crate::output::outln!(
                "wrote {} ms of assistant audio to {}",
                sink.duration_ms(),
                path.display()
            );
        }
    }
    if !transcription {
        crate::output::out!(
            "{}",
            summary.render(&agent.spec().model, &agent.cost_settings()?)
        );
    }
    Ok(crate::cmd::run::report_failures(&failed))
}

/// Ends one played session: its history is flushed and released, and what kept it from
/// succeeding is added to `failed`.
async fn finish(
    played: anyhow::Result<crate::summary::SessionStats>,
    persistence: Option<Persistence>,
    failed: &mut Vec<String>,
) -> anyhow::Result<crate::summary::SessionStats> {
    let stored = match persistence {
        Some(p) => {
            let id = p.id.clone();
            p.finish(Duration::from_secs(10)).await?;
            Some(id)
        }
        None => None,
    };
    let stats = played?;
    failed.extend(stats.problems());
    if let Some(id) = stored {
        crate::output::outln!("(conversation stored as {id}; continue it with --resume {id})");
    }
    Ok(stats)
}

/// What every session of the run shares.
struct Setup<'a> {
    agent: &'a Agent,
    audio: &'a AudioArgs,
    observer: Option<Arc<dyn WireObserver>>,
    clock: PlaybackClock,
    sink: Option<Arc<Mutex<WavSink>>>,
    transcription: bool,
    verbose: bool,
    #[cfg_attr(not(feature = "audio-device"), allow(dead_code))]
    output_format: AudioFormat,
}

/// What the session does when the user stops speaking, to know when a spoken turn is over.
#[derive(Debug, Clone, Copy)]
struct Expect {
    /// The server answers each turn by itself.
    creates_response: bool,
    /// Input audio is transcribed.
    transcribes: bool,
    /// Push-to-talk: the client commits, one turn per stream.
    push_to_talk: bool,
    /// Silence that ends a turn under server VAD.
    silence_ms: u32,
}

impl Setup<'_> {
    fn config(&self, overrides: &ConnectOverrides) -> anyhow::Result<SessionConfig> {
        let mut config = self
            .agent
            .session_config(overrides, self.observer.clone())?;
        let speaks = self.sink.is_some() || self.audio.voice;
        if speaks && config.session.kind == SessionKind::Realtime {
            // Audio out was asked for: replies are spoken (with a transcript) for this run.
            config.session.output_modalities = Some(vec![Modality::Audio]);
        }
        config.playback = self.clock.clone();
        Ok(config)
    }

    fn expect(config: &SessionConfig) -> Expect {
        let input = config.session.audio_input();
        let detection = input.and_then(|i| i.turn_detection.clone());
        let realtime = config.session.kind == SessionKind::Realtime;
        let push_to_talk = matches!(detection, Some(TurnDetection::Disabled));
        let silence_ms = match &detection {
            Some(TurnDetection::ServerVad(vad)) => vad.silence_duration_ms.unwrap_or(500),
            // Semantic VAD may wait longer for the end of a thought.
            _ => 1_500,
        };
        Expect {
            creates_response: realtime
                && (push_to_talk
                    || detection
                        .as_ref()
                        .is_none_or(TurnDetection::creates_response)),
            transcribes: input.is_some_and(|i| i.transcription.is_some()),
            push_to_talk,
            silence_ms,
        }
    }

    /// One session: scripted turns (from turn `skip`, for a resumed conversation) and audio,
    /// until done; stored in `persistence` when there is one.
    async fn play(
        &self,
        overrides: &ConnectOverrides,
        scenario: Option<&Scenario>,
        skip: usize,
        input: Option<WavAudio>,
        persistence: Option<&Persistence>,
    ) -> anyhow::Result<crate::summary::SessionStats> {
        let mut config = self.config(overrides)?;
        if let Some(p) = persistence {
            p.apply(&mut config);
            if p.resumed_items() > 0 {
                crate::output::errln!(
                    "resuming {}: {} item(s) restored, continuing at turn {}",
                    p.id,
                    p.resumed_items(),
                    skip + 1
                );
            }
        }
        let expect = Self::expect(&config);
        let format = config.session.input_format().unwrap_or_default();
        let console = (!self.transcription).then(|| Console::new(self.verbose));
        let mut conversation = Conversation::start_with(config, console).await?;
        conversation.tap = Some(self.tap());
        let turns = scenario.map(|s| s.turns.as_slice()).unwrap_or_default();
        let mut next = skip.min(turns.len());
        // The model speaks first: play those turns before any audio.
        while turns.get(next).is_some_and(|t| t.user.is_none()) {
            conversation.turn(None).await?;
            next += 1;
        }
        let speech = match input {
            Some(wav) => Some(wav),
            None if self.transcription && scenario.is_some() => {
                let lengths: Vec<u32> = turns[next..]
                    .iter()
                    .map(|t| audio_io::utterance_ms(t.user.as_deref().unwrap_or("")))
                    .collect();
                Some(audio_io::synthetic_speech(
                    &lengths,
                    expect.silence_ms + 400,
                ))
            }
            None => None,
        };
        if self.audio.voice {
            #[cfg(feature = "audio-device")]
            crate::audio_device::converse(
                &mut conversation,
                format,
                self.output_format,
                self.audio.chunk_ms,
                &self.clock,
            )
            .await?;
        } else if let Some(speech) = speech {
            let options = StreamOptions {
                format,
                chunk_ms: self.audio.chunk_ms,
                pace: !self.audio.no_pace,
                trailing_silence_ms: if expect.push_to_talk {
                    0
                } else {
                    expect.silence_ms + 300
                },
                commit: expect.push_to_talk,
            };
            let spoken = speak(&mut conversation, speech, options, expect).await?;
            next += spoken;
        }
        if !self.transcription && scenario.is_none() && !self.audio.voice {
            typed_turns(&mut conversation).await?;
        } else if !self.transcription {
            for turn in turns.iter().skip(next) {
                conversation.play(turn).await?;
            }
        } else if next < turns.len() && scenario.is_some() {
            crate::output::outln!(
                "({} scripted turn(s) were not spoken by the audio)",
                turns.len() - next
            );
        }
        Ok(conversation.close(std::time::Duration::from_secs(5)).await)
    }

    /// Feeds every event to the output file and, for transcription agents, the transcript.
    fn tap(&self) -> audio_io::EventTap {
        let sink = self.sink.clone();
        let mut view = self.transcription.then(TranscriptView::default);
        Box::new(move |event| {
            if let Some(sink) = &sink {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .on_event(event);
            }
            if let Some(view) = &mut view {
                let text = view.show(event);
                if !text.is_empty() {
                    crate::output::out!("{text}");
                }
            }
        })
    }
}

/// Live runs go on with typed input after the audio (piped input works too): one turn per
/// line, until the end of the input.
async fn typed_turns(conversation: &mut Conversation) -> anyhow::Result<()> {
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        crate::output::errln!("type a message and press Enter; Ctrl-D to quit.");
    }
    let mut lines = crate::terminal::stdin_lines();
    while let Some(line) = lines.recv().await {
        let line = line.trim();
        if !line.is_empty() {
            match conversation.turn(Some(line)).await {
                // Counted in the session's stats; the conversation goes on.
                Err(err) if err.is::<crate::conversation::TurnFailed>() => {}
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

/// Plays a transcription scenario as `agent test` does: synthetic speech, one burst per turn,
/// as fast as possible. Returns the completed transcripts in order.
pub async fn transcribe_scenario(
    agent: &Agent,
    overrides: &ConnectOverrides,
    scenario: &Scenario,
    verbose: bool,
) -> anyhow::Result<Vec<String>> {
    let mut config = agent.session_config(overrides, None)?;
    config.playback = PlaybackClock::immediate();
    let expect = Setup::expect(&config);
    let options = StreamOptions {
        format: config.session.input_format().unwrap_or_default(),
        chunk_ms: 20,
        pace: false,
        trailing_silence_ms: if expect.push_to_talk {
            0
        } else {
            expect.silence_ms + 300
        },
        commit: expect.push_to_talk,
    };
    let lengths: Vec<u32> = scenario
        .turns
        .iter()
        .map(|t| audio_io::utterance_ms(t.user.as_deref().unwrap_or("")))
        .collect();
    let speech = audio_io::synthetic_speech(&lengths, expect.silence_ms + 400);
    let transcripts = Arc::new(Mutex::new(Vec::new()));
    let mut conversation = Conversation::start_with(config, None).await?;
    let seen = Arc::clone(&transcripts);
    let mut view = verbose.then(TranscriptView::default);
    conversation.tap = Some(Box::new(move |event| {
        if let SessionEvent::UserTranscript { text, .. } = event {
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(text.clone());
        }
        if let Some(view) = &mut view {
            crate::output::out!("{}", view.show(event));
        }
    }));
    speak(&mut conversation, speech, options, expect).await?;
    conversation.close(std::time::Duration::from_secs(5)).await;
    let transcripts = transcripts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(transcripts)
}

/// `agent test` for a transcription scenario: prints a line per turn and returns how many
/// turns passed and failed.
pub async fn check_transcription(
    agent: &Agent,
    overrides: &ConnectOverrides,
    scenario: &Scenario,
    verbose: bool,
) -> (usize, usize) {
    let transcripts = match transcribe_scenario(agent, overrides, scenario, verbose).await {
        Ok(t) => t,
        Err(err) => {
            crate::output::outln!("  ✗ the audio could not be transcribed: {err:#}");
            return (0, scenario.turns.len().max(1));
        }
    };
    let (mut passed, mut failed) = (0, 0);
    for (index, turn) in scenario.turns.iter().enumerate() {
        let expected = turn.user.as_deref().unwrap_or_default();
        match transcripts.get(index) {
            Some(got) if got.trim() == expected.trim() => {
                passed += 1;
                crate::output::outln!("  ✓ turn {}: transcribed as {expected:?}", index + 1);
            }
            got => {
                failed += 1;
                crate::output::outln!(
                    "  ✗ turn {}: transcribed as {got:?}\n      expected {expected:?}",
                    index + 1
                );
            }
        }
    }
    (passed, failed)
}

/// Tracks a spoken exchange until nothing is pending: the user's speech ended, the responses to
/// it are done, and its transcripts arrived.
#[derive(Debug, Default)]
struct Settle {
    speech_open: bool,
    busy: bool,
    awaiting_response: bool,
    awaiting_commit_transcript: bool,
    pending_transcripts: HashSet<String>,
    turns: usize,
}

impl Settle {
    fn observe(&mut self, event: &SessionEvent, expect: Expect) {
        match event {
            SessionEvent::SpeechStarted { .. } => self.speech_open = true,
            SessionEvent::SpeechStopped { item_id, .. } => {
                self.speech_open = false;
                self.turns += 1;
                self.awaiting_response |= expect.creates_response;
                if expect.transcribes {
                    self.pending_transcripts.insert(item_id.clone());
                }
            }
            SessionEvent::ResponseStarted { .. } => {
                self.busy = true;
                self.awaiting_response = false;
            }
            SessionEvent::Idle => self.busy = false,
            SessionEvent::UserTranscript { item_id, .. } => {
                self.pending_transcripts.remove(item_id);
                self.awaiting_commit_transcript = false;
            }
            _ => {}
        }
    }

    fn committed(&mut self, expect: Expect) {
        self.turns += 1;
        self.awaiting_response |= expect.creates_response;
        self.awaiting_commit_transcript = expect.transcribes;
    }

    fn settled(&self) -> bool {
        !self.speech_open
            && !self.busy
            && !self.awaiting_response
            && !self.awaiting_commit_transcript
            && self.pending_transcripts.is_empty()
    }
}

/// Streams `audio` into the conversation while rendering what comes back; returns how many user
/// turns the audio made.
async fn speak(
    conversation: &mut Conversation,
    audio: WavAudio,
    options: StreamOptions,
    expect: Expect,
) -> anyhow::Result<usize> {
    let handle = conversation.session_mut().handle.clone();
    let mut task = tokio::spawn(audio_io::stream(handle, audio, options));
    let mut streaming = true;
    let mut settle = Settle::default();
    let mut deadline = None;
    loop {
        if !streaming && settle.settled() {
            break;
        }
        tokio::select! {
            joined = &mut task, if streaming => {
                streaming = false;
                joined.context("the audio stream failed")??;
                if options.commit {
                    settle.committed(expect);
                }
                deadline = Some(tokio::time::Instant::now() + TURN_TIMEOUT);
            }
            event = conversation.session_mut().events.recv() => {
                let Some(event) = event else { bail!("the session ended unexpectedly") };
                conversation.render(&event);
                if let SessionEvent::Closed { reason } = &event {
                    bail!("the session ended: {reason:?}");
                }
                settle.observe(&event, expect);
            }
            () = tokio::time::sleep(QUIET), if !streaming => {
                tracing::debug!(?settle, "no events for {QUIET:?} after the audio; going on");
                break;
            }
            () = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => bail!("the spoken turns did not finish within {TURN_TIMEOUT:?}"),
        }
    }
    Ok(settle.turns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect() -> Expect {
        Expect {
            creates_response: true,
            transcribes: true,
            push_to_talk: false,
            silence_ms: 500,
        }
    }

    #[test]
    fn a_spoken_turn_settles_after_its_response_and_transcript() {
        let mut s = Settle::default();
        assert!(s.settled());
        let e = expect();
        s.observe(
            &SessionEvent::SpeechStarted {
                item_id: "u".into(),
                audio_start_ms: 0,
            },
            e,
        );
        assert!(!s.settled());
        s.observe(
            &SessionEvent::SpeechStopped {
                item_id: "u".into(),
                audio_end_ms: 900,
            },
            e,
        );
        assert!(!s.settled(), "the answer is owed");
        s.observe(
            &SessionEvent::ResponseStarted {
                response_id: "r".into(),
            },
            e,
        );
        s.observe(&SessionEvent::Idle, e);
        assert!(!s.settled(), "the transcript is owed");
        s.observe(
            &SessionEvent::UserTranscript {
                item_id: "u".into(),
                text: "hi".into(),
            },
            e,
        );
        assert!(s.settled());
        assert_eq!(s.turns, 1);
    }
}
