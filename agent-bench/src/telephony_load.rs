//! The telephony benchmark's callers: Twilio Media Streams on loopback, as the phone network
//! drives them, lean enough that one process can place a thousand calls.
//!
//! Each call signs its `/twilio/voice` webhook (agent-testkit's fake Twilio does the signing
//! and reads the TwiML), opens the media stream it names and sends `connected`, `start` and a
//! 20 ms μ-law frame every 20 ms of real time, each stamped ([`crate::telephony_probe`]).
//! Ticks that come late are caught up at once (Twilio never slows down), and how late each
//! tick was is the generator's own lag. Every `turn_every` the caller speaks for `speak_for`
//! (loud μ-law the scripted server's VAD hears), which starts one tool turn. The audio the
//! server sends is "played" in real time: each mark is echoed once the audio queued before it
//! has played, `clear` drops the queue. At `hang_up` the caller sends `stop` and closes.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use agent_testkit::twilio::{FakeTwilio, Signing, Twiml};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::{Message, protocol::WebSocketConfig};

use crate::telephony_probe::{Probe, stamp};

/// 20 ms of 8 kHz μ-law.
pub const FRAME_BYTES: usize = 160;
/// One frame's length.
pub const FRAME: Duration = Duration::from_millis(20);
/// μ-law silence.
const SILENCE: u8 = 0xFF;
/// Loud μ-law (±~8,000 of 32,767, alternating): speech to an energy VAD.
const LOUD: [u8; 2] = [0x20, 0xA0];
/// μ-law bytes per ms.
const BYTES_PER_MS: u64 = 8;
/// What one read of the stream asks for (the server's messages are a few KB at most).
const READ_BUFFER: usize = 8 * 1024;

/// How one call reaches the server under test.
#[derive(Debug, Clone)]
pub enum Dial {
    /// `agent serve`: the signed webhook first, then the stream its TwiML names.
    Webhook {
        /// The fake Twilio, signing for the server's public URL.
        twilio: FakeTwilio,
        /// Where the server really listens (the TwiML names its public host).
        addr: SocketAddr,
        /// The number called.
        to: String,
    },
    /// A server with no webhook (the JS transport): the stream at this URL directly.
    Stream(String),
}

/// What one call does.
#[derive(Debug, Clone)]
pub struct CallPlan {
    /// The call's index (in its stamps).
    pub index: u16,
    /// How it reaches the server.
    pub dial: Dial,
    /// Audio time of the first speech, after the stream started.
    pub first_speech: Duration,
    /// One speech (one tool turn) this often.
    pub turn_every: Duration,
    /// How long each speech lasts.
    pub speak_for: Duration,
    /// When the caller hangs up.
    pub hang_up: Instant,
}

/// What one call saw.
#[derive(Debug, Clone, Default)]
pub struct CallTotals {
    /// Frames written.
    pub frames_sent: u64,
    /// Speeches finished early enough before the hang-up for their turn to be answered.
    pub turns_asked: u64,
    /// `media` frames the server sent, and their audio bytes.
    pub media_frames: u64,
    /// Audio bytes received.
    pub audio_bytes: u64,
    /// Marks echoed.
    pub marks: u64,
    /// How late each tick was while the probe measured, µs.
    pub lag_us: Vec<u32>,
    /// Why the call failed, if it did.
    pub failed: Option<String>,
}

/// A speech ending this long before the hang-up has its answer in time.
const ANSWER_ALLOWANCE: Duration = Duration::from_secs(4);
/// The longest a connect or the closing handshake may take.
const STEP_DEADLINE: Duration = Duration::from_secs(20);

/// Places the call and runs it until its hang-up; failures are in the totals.
pub async fn run(plan: CallPlan, probe: Arc<Probe>) -> CallTotals {
    let mut totals = CallTotals::default();
    if let Err(err) = call(&plan, &probe, &mut totals).await {
        totals.failed = Some(err);
    }
    totals
}

async fn connect(plan: &CallPlan) -> Result<(String, Value), String> {
    let sid = format!("CA{:032}", plan.index);
    match &plan.dial {
        Dial::Stream(url) => Ok((url.clone(), serde_json::json!({}))),
        Dial::Webhook { twilio, addr, to } => {
            let params = [
                ("AccountSid", agent_testkit::twilio::ACCOUNT_SID),
                ("CallSid", sid.as_str()),
                ("From", "+15550111"),
                ("To", to.as_str()),
                ("CallStatus", "ringing"),
                ("Direction", "inbound"),
            ];
            let answer = twilio
                .voice("/twilio/voice", &params, Signing::Valid)
                .await
                .map_err(|e| format!("webhook: {e}"))?;
            let Twiml::Connect { url, parameters } = answer.twiml else {
                return Err(format!(
                    "the webhook connected no stream: {} {}",
                    answer.answer.status, answer.answer.body
                ));
            };
            // The TwiML names the public host; the stream goes to where the server listens.
            let path = url
                .split_once("://")
                .and_then(|(_, rest)| rest.find('/').map(|at| rest[at..].to_owned()))
                .unwrap_or_else(|| "/twilio/media-stream".into());
            Ok((format!("ws://{addr}{path}"), serde_json::json!(parameters)))
        }
    }
}

async fn call(plan: &CallPlan, probe: &Probe, totals: &mut CallTotals) -> Result<(), String> {
    let sid = format!("CA{:032}", plan.index);
    let (url, parameters) = tokio::time::timeout(STEP_DEADLINE, connect(plan))
        .await
        .map_err(|_| "the webhook took too long".to_owned())??;
    // Nagle off, as a media server's socket should be: the frames are small and timed. A
    // small read buffer: tungstenite zero-fills all of it before every read.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let connecting = tokio_tungstenite::connect_async_with_config(&url, Some(config), true);
    let (mut ws, _) = tokio::time::timeout(STEP_DEADLINE, connecting)
        .await
        .map_err(|_| "the stream's handshake took too long".to_owned())?
        .map_err(|e| format!("stream: {e}"))?;
    let stream_sid = format!("MZ{:032}", plan.index);
    let opening = [
        serde_json::json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        serde_json::json!({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
            "start": {"accountSid": agent_testkit::twilio::ACCOUNT_SID, "callSid": sid,
                "streamSid": stream_sid, "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                "customParameters": parameters}}),
    ];
    for message in opening {
        ws.send(Message::text(message.to_string()))
            .await
            .map_err(|e| format!("start: {e}"))?;
    }
    let mut line = Line::default();
    let started = Instant::now();
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut frame = [SILENCE; FRAME_BYTES];
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                if now >= plan.hang_up {
                    break;
                }
                let due = started + FRAME * (totals.frames_sent as u32);
                if probe.is_measuring() {
                    totals.lag_us.push(u32::try_from(now.saturating_duration_since(due).as_micros()).unwrap_or(u32::MAX));
                }
                let audio_time = FRAME * (totals.frames_sent as u32);
                let speaking = speaking(plan, audio_time);
                if speaking && !line.speaking && plan.hang_up.saturating_duration_since(now) > plan.speak_for + ANSWER_ALLOWANCE {
                    totals.turns_asked += 1;
                }
                line.speaking = speaking;
                fill(&mut frame, speaking);
                stamp(&mut frame, plan.index, probe.now_micros());
                let sequence = totals.frames_sent + 2;
                let text = format!(
                    r#"{{"event":"media","sequenceNumber":"{sequence}","streamSid":"{stream_sid}","media":{{"track":"inbound","chunk":"{}","timestamp":"{}","payload":"{}"}}}}"#,
                    sequence - 1,
                    audio_time.as_millis(),
                    STANDARD.encode(frame)
                );
                ws.feed(Message::text(text)).await.map_err(|e| format!("media: {e}"))?;
                for echo in line.reached(now) {
                    totals.marks += 1;
                    ws.feed(Message::text(mark(&stream_sid, &echo))).await.map_err(|e| format!("mark: {e}"))?;
                }
                ws.flush().await.map_err(|e| format!("flush: {e}"))?;
                totals.frames_sent += 1;
            }
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    for echo in line.on_server(text.as_str(), plan.index, probe, totals) {
                        totals.marks += 1;
                        ws.send(Message::text(mark(&stream_sid, &echo))).await.map_err(|e| format!("mark: {e}"))?;
                    }
                }
                Some(Ok(Message::Close(_))) | None => return Err("the server closed the stream".into()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("read: {e}")),
            },
        }
    }
    let stop = serde_json::json!({"event": "stop", "streamSid": stream_sid,
        "stop": {"accountSid": agent_testkit::twilio::ACCOUNT_SID, "callSid": sid}});
    let _ = ws.send(Message::text(stop.to_string())).await;
    let _ = tokio::time::timeout(STEP_DEADLINE, ws.close(None)).await;
    // Read to the end so the server's close completes.
    let _ = tokio::time::timeout(STEP_DEADLINE, async { while ws.next().await.is_some() {} }).await;
    Ok(())
}

/// Whether the caller speaks at this point of its audio.
fn speaking(plan: &CallPlan, audio_time: Duration) -> bool {
    let Some(since) = audio_time.checked_sub(plan.first_speech) else {
        return false;
    };
    let cycle = plan.turn_every.as_micros().max(1);
    since.as_micros() % cycle < plan.speak_for.as_micros()
}

fn fill(frame: &mut [u8; FRAME_BYTES], speaking: bool) {
    if speaking {
        for (i, byte) in frame.iter_mut().enumerate() {
            *byte = LOUD[i % 2];
        }
    } else {
        frame.fill(SILENCE);
    }
}

fn mark(stream_sid: &str, name: &str) -> String {
    serde_json::json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})
        .to_string()
}

/// The caller's playback: marks wait until the audio queued before them has played.
#[derive(Debug, Default)]
struct Line {
    /// When everything queued so far will have played.
    played_by: Option<Instant>,
    /// Marks, each with when it is reached.
    marks: VecDeque<(Instant, String)>,
    speaking: bool,
}

impl Line {
    /// Marks reached by `now`.
    fn reached(&mut self, now: Instant) -> Vec<String> {
        let mut echoes = Vec::new();
        while self.marks.front().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, name)) = self.marks.pop_front() {
                echoes.push(name);
            }
        }
        echoes
    }

    /// A message from the server; returns marks to echo at once.
    fn on_server(
        &mut self,
        text: &str,
        call: u16,
        probe: &Probe,
        totals: &mut CallTotals,
    ) -> Vec<String> {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Vec::new();
        };
        let now = Instant::now();
        match message["event"].as_str() {
            Some("media") => {
                probe.twilio_frame_out(call);
                let bytes = message["media"]["payload"].as_str().map_or(0, |p| {
                    let padding = p.bytes().rev().take_while(|b| *b == b'=').count();
                    (p.len() / 4 * 3).saturating_sub(padding) as u64
                });
                totals.media_frames += 1;
                totals.audio_bytes += bytes;
                let from = self.played_by.filter(|t| *t > now).unwrap_or(now);
                self.played_by = Some(from + Duration::from_millis(bytes / BYTES_PER_MS));
                Vec::new()
            }
            Some("mark") => {
                let name = message["mark"]["name"].as_str().unwrap_or_default();
                let at = self.played_by.filter(|t| *t > now).unwrap_or(now);
                self.marks.push_back((at, name.to_owned()));
                self.reached(now)
            }
            Some("clear") => {
                self.played_by = None;
                self.marks.drain(..).map(|(_, name)| name).collect()
            }
            _ => Vec::new(),
        }
    }
}
