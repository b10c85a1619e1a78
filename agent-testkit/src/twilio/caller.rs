//! The caller's side of a media stream: scripted audio out in real time, the server's audio
//! "played" in real time, marks echoed when reached, `clear` honoured.

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::FakeTwilioError;
use crate::server::audio::linear_to_ulaw;

/// One frame: 20 ms of 8 kHz μ-law.
const FRAME_BYTES: usize = 160;
const FRAME: Duration = Duration::from_millis(20);
/// μ-law silence.
const SILENCE: u8 = 0xFF;

/// What the caller does, step by step; frames keep flowing (silence) between steps.
#[derive(Debug, Clone, PartialEq)]
pub enum CallerStep {
    /// Silence for this long (of audio sent: frames × 20 ms, even when ticks run late).
    Silence(Duration),
    /// A 440 Hz tone for this long (of audio sent): the server's VAD hears speech.
    Speak(Duration),
    /// Silence until the caller has heard this many ms of the server's audio in total, at most
    /// `within`.
    WaitHeard {
        /// Milliseconds heard since the call started.
        ms: u64,
        /// The longest wait.
        within: Duration,
    },
    /// Silence until nothing is queued and no audio came for `quiet`, at most `within`.
    WaitQuiet {
        /// How long without new audio.
        quiet: Duration,
        /// The longest wait.
        within: Duration,
    },
    /// Silence until the server's audio started after this step did (an answer), then nothing
    /// is queued and no audio came for `quiet`, at most `within`.
    WaitAnswer {
        /// How long without new audio ends the answer.
        quiet: Duration,
        /// The longest wait.
        within: Duration,
    },
    /// A keypad digit.
    Dtmf(char),
    /// A raw text frame, sent as is (malformed and oversized messages).
    Raw(String),
    /// `stop`, then the socket closes.
    HangUp,
}

/// How the stream starts.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamStart {
    /// `start.callSid`.
    pub call_sid: String,
    /// `streamSid`.
    pub stream_sid: String,
    /// `start.customParameters`.
    pub custom_parameters: BTreeMap<String, String>,
    /// Send `connected` before `start`, as Twilio does.
    pub connected_first: bool,
    /// Send `start` at all (`false`: media flows without it, as a hostile peer's would).
    pub send_start: bool,
}

impl StreamStart {
    /// A start for `call_sid` with these parameters.
    pub fn new(call_sid: &str, custom_parameters: BTreeMap<String, String>) -> Self {
        StreamStart {
            call_sid: call_sid.into(),
            stream_sid: format!("MZ{call_sid}"),
            custom_parameters,
            connected_first: true,
            send_start: true,
        }
    }
}

/// What happened on one stream, from the caller's side.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallRecord {
    /// The μ-law the caller heard, in order.
    pub heard: Vec<u8>,
    /// Marks echoed: name and ms heard when echoed.
    pub marks: Vec<(String, u64)>,
    /// Each `clear`: ms heard when it came, and ms of audio it dropped.
    pub clears: Vec<(u64, u64)>,
    /// Every message the server sent, parsed.
    pub received: Vec<Value>,
    /// The server's close frame: code and reason.
    pub close: Option<(u16, String)>,
    /// The server ended the stream (closed or failed) before the script was over.
    pub ended_by_server: bool,
    /// A stream error seen, if any.
    pub error: Option<String>,
    /// The call was ended by a REST update (hang-up or transfer), not by the script.
    pub ended_by_update: bool,
    /// `media` frames the caller sent (20 ms each): load tests compare them with the audio
    /// the model received.
    pub frames_sent: u64,
}

impl CallRecord {
    /// Milliseconds of audio heard.
    pub fn heard_ms(&self) -> u64 {
        self.heard.len() as u64 / 8
    }

    /// The server's messages of one `event` type.
    pub fn events(&self, event: &str) -> Vec<&Value> {
        self.received
            .iter()
            .filter(|m| m["event"] == event)
            .collect()
    }
}

enum Queued {
    Audio(Vec<u8>),
    Mark(String),
}

struct Line {
    queue: VecDeque<Queued>,
    record: CallRecord,
    last_audio: Option<Instant>,
    tone_phase: f64,
    stream_sid: String,
}

pub(super) async fn run(
    url: &str,
    start: StreamStart,
    script: &[CallerStep],
    deadline: Duration,
    mut updated: tokio::sync::oneshot::Receiver<tokio::sync::oneshot::Sender<u64>>,
) -> Result<CallRecord, FakeTwilioError> {
    let ends = Instant::now() + deadline;
    let (mut ws, _) = tokio::time::timeout_at(ends, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| FakeTwilioError::Timeout("the media stream's handshake"))?
        .map_err(|e| FakeTwilioError::Protocol(format!("the media stream refused: {e}")))?;
    let mut line = Line {
        queue: VecDeque::new(),
        record: CallRecord::default(),
        last_audio: None,
        tone_phase: 0.0,
        stream_sid: start.stream_sid.clone(),
    };
    let mut opening = Vec::new();
    if start.connected_first {
        opening.push(json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}));
    }
    opening.extend(start.send_start.then(|| {
        json!({
            "event": "start", "sequenceNumber": "1", "streamSid": start.stream_sid,
            "start": {
                "accountSid": "AC00000000000000000000000000000000", "callSid": start.call_sid,
                "streamSid": start.stream_sid, "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": start.custom_parameters,
            }
        })
    }));
    for message in opening {
        if ws.send(Message::text(message.to_string())).await.is_err() {
            line.record.ended_by_server = true;
            return Ok(line.record);
        }
    }
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut steps = script.iter();
    let mut step = steps.next();
    let mut step_started = Instant::now();
    // Audio sent since the step started: a loaded machine may tick late, and a step of
    // speech or silence is as long as its audio, not as the wall clock.
    let mut step_audio = Duration::ZERO;
    let mut sequence = 1u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if Instant::now() >= ends {
                    return Err(FakeTwilioError::Timeout("the call's script"));
                }
                let now = Instant::now();
                let mut out = Vec::new();
                let (speaking, done) = match step {
                    None => (false, true),
                    Some(s) => line.step(s, now - step_started, step_audio, &mut out)?,
                };
                if done {
                    if matches!(step, Some(CallerStep::HangUp) | None) {
                        let stop = json!({"event": "stop", "streamSid": line.stream_sid,
                            "stop": {"callSid": start.call_sid}});
                        let _ = ws.send(Message::text(stop.to_string())).await;
                        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                        return Ok(line.record);
                    }
                    step = steps.next();
                    step_started = now;
                    step_audio = Duration::ZERO;
                }
                sequence += 1;
                out.push(line.media_frame(speaking, sequence));
                out.extend(line.play_frame());
                for text in out {
                    if ws.feed(Message::text(text)).await.is_err() {
                        line.record.ended_by_server = true;
                        return Ok(line.record);
                    }
                }
                if ws.flush().await.is_err() {
                    line.record.ended_by_server = true;
                    return Ok(line.record);
                }
                line.record.frames_sent += 1;
                step_audio += FRAME;
            }
            Ok(reply) = &mut updated => {
                // Twilio left the <Connect>: the stream stops, whatever was still queued.
                let _ = reply.send(line.queued_ms());
                line.record.ended_by_update = true;
                let stop = json!({"event": "stop", "streamSid": line.stream_sid,
                    "stop": {"callSid": start.call_sid}});
                let _ = ws.send(Message::text(stop.to_string())).await;
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return Ok(line.record);
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let echoes = line.on_server_message(text.as_str());
                    for echo in echoes {
                        let _ = ws.send(Message::text(echo)).await;
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    line.record.close = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned()));
                    line.record.ended_by_server = true;
                    return Ok(line.record);
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    line.record.error = Some(err.to_string());
                    line.record.ended_by_server = true;
                    return Ok(line.record);
                }
                None => {
                    line.record.ended_by_server = true;
                    return Ok(line.record);
                }
            },
        }
    }
}

impl Line {
    /// Milliseconds of audio queued and not played yet.
    fn queued_ms(&self) -> u64 {
        self.queue
            .iter()
            .map(|q| match q {
                Queued::Audio(audio) => audio.len() as u64 / 8,
                Queued::Mark(_) => 0,
            })
            .sum()
    }

    /// Runs `step` for one tick: whether the caller speaks now and whether the step is over.
    /// `elapsed` is wall time since the step started, `audio` the audio sent in it. Raw frames
    /// and digits go to `out`.
    fn step(
        &mut self,
        step: &CallerStep,
        elapsed: Duration,
        audio: Duration,
        out: &mut Vec<String>,
    ) -> Result<(bool, bool), FakeTwilioError> {
        Ok(match step {
            CallerStep::Silence(d) => (false, audio + FRAME >= *d),
            CallerStep::Speak(d) => (true, audio + FRAME >= *d),
            CallerStep::WaitHeard { ms, within } => {
                if elapsed > *within {
                    return Err(FakeTwilioError::Timeout(
                        "audio the caller was waiting to hear",
                    ));
                }
                (false, self.record.heard_ms() >= *ms)
            }
            CallerStep::WaitQuiet { quiet, within } => {
                if elapsed > *within {
                    return Err(FakeTwilioError::Timeout("the line to go quiet"));
                }
                let quiet_now = self.queue.is_empty()
                    && self.last_audio.is_some_and(|at| at.elapsed() >= *quiet);
                (false, quiet_now)
            }
            CallerStep::WaitAnswer { quiet, within } => {
                if elapsed > *within {
                    return Err(FakeTwilioError::Timeout(
                        "the answer the caller was waiting for",
                    ));
                }
                let started = Instant::now().checked_sub(elapsed);
                let answered = self
                    .last_audio
                    .is_some_and(|at| started.is_none_or(|s| at >= s) && at.elapsed() >= *quiet);
                (false, answered && self.queue.is_empty())
            }
            CallerStep::Dtmf(digit) => {
                out.push(
                    json!({"event": "dtmf", "streamSid": self.stream_sid,
                        "dtmf": {"track": "inbound_track", "digit": digit.to_string()}})
                    .to_string(),
                );
                (false, true)
            }
            CallerStep::Raw(text) => {
                out.push(text.clone());
                (false, true)
            }
            CallerStep::HangUp => (false, true),
        })
    }

    /// The caller's next 20 ms: a tone or silence.
    fn media_frame(&mut self, speaking: bool, sequence: u64) -> String {
        let mut frame = [SILENCE; FRAME_BYTES];
        if speaking {
            for byte in &mut frame {
                let sample = (self.tone_phase.sin() * 0.3 * f64::from(i16::MAX)) as i16;
                *byte = linear_to_ulaw(sample);
                self.tone_phase += std::f64::consts::TAU * 440.0 / 8_000.0;
            }
        }
        json!({"event": "media", "sequenceNumber": sequence.to_string(), "streamSid": self.stream_sid,
            "media": {"track": "inbound", "chunk": sequence.to_string(),
                "timestamp": (sequence * 20).to_string(), "payload": STANDARD.encode(frame)}})
        .to_string()
    }

    /// Plays 20 ms of queued audio; returns the marks reached, echoed.
    fn play_frame(&mut self) -> Vec<String> {
        let mut budget = FRAME_BYTES;
        let mut echoes = self.reached_marks();
        while budget > 0 {
            let Some(Queued::Audio(audio)) = self.queue.front_mut() else {
                break;
            };
            let n = budget.min(audio.len());
            self.record.heard.extend(audio.drain(..n));
            budget -= n;
            if audio.is_empty() {
                self.queue.pop_front();
                echoes.extend(self.reached_marks());
            }
        }
        echoes
    }

    /// Marks at the head of the queue: everything before them has played.
    fn reached_marks(&mut self) -> Vec<String> {
        let mut echoes = Vec::new();
        while let Some(Queued::Mark(_)) = self.queue.front() {
            if let Some(Queued::Mark(name)) = self.queue.pop_front() {
                echoes.push(self.echo(name));
            }
        }
        echoes
    }

    fn echo(&mut self, name: String) -> String {
        self.record
            .marks
            .push((name.clone(), self.record.heard_ms()));
        json!({"event": "mark", "streamSid": self.stream_sid, "mark": {"name": name}}).to_string()
    }

    /// A message from the server; returns the marks to echo at once (after a `clear`).
    fn on_server_message(&mut self, text: &str) -> Vec<String> {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            self.record.error = Some(format!("the server sent a frame that is not JSON: {text}"));
            return Vec::new();
        };
        self.record.received.push(message.clone());
        match message["event"].as_str() {
            Some("media") => {
                if let Some(audio) = message["media"]["payload"]
                    .as_str()
                    .and_then(|p| STANDARD.decode(p).ok())
                {
                    self.last_audio = Some(Instant::now());
                    self.queue.push_back(Queued::Audio(audio));
                }
                Vec::new()
            }
            Some("mark") => {
                let name = message["mark"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                self.queue.push_back(Queued::Mark(name));
                // A mark with nothing before it is reached at once.
                self.reached_marks()
            }
            Some("clear") => {
                let mut dropped = 0;
                let mut echoes = Vec::new();
                for queued in std::mem::take(&mut self.queue) {
                    match queued {
                        Queued::Audio(audio) => dropped += audio.len() as u64 / 8,
                        Queued::Mark(name) => echoes.push(self.echo(name)),
                    }
                }
                self.record.clears.push((self.record.heard_ms(), dropped));
                echoes
            }
            _ => Vec::new(),
        }
    }
}
