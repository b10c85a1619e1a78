//! [`TestBrowser`]: a page's WebRTC call to the Realtime API, played by str0m on loopback.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant as StdInstant},
};

use serde_json::Value;
use str0m::{
    Event, IceConnectionState, Rtc, RtcError,
    change::SdpAnswer,
    channel::ChannelId,
    format::Codec,
    media::{Direction, Frequency, MediaKind, MediaTime, Mid},
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use super::{
    CallVia, EVENTS_CHANNEL,
    client::post_offer,
    io::RtcSocket,
    opus::{FRAME, SILENT_FRAME, TICKS_PER_FRAME, TONE_FRAME},
};

/// What went wrong with a test browser's call.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// An HTTP request failed (no answer, a malformed one, a bad base URL).
    #[error("HTTP: {0}")]
    Http(String),
    /// The platform refused the offer.
    #[error("the platform answered the offer with {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The body (an error object).
        body: String,
    },
    /// WebRTC failed: the socket, the SDP, str0m.
    #[error("WebRTC: {0}")]
    Rtc(String),
    /// Something did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The call is over: the browser's task ended.
    #[error("the call is over")]
    Closed,
}

impl From<RtcError> for BrowserError {
    fn from(e: RtcError) -> Self {
        BrowserError::Rtc(e.to_string())
    }
}

/// What the test asks of the browser's task.
#[derive(Debug)]
enum Command {
    /// A client event for `oai-events`.
    Send(String),
    /// Frames for the microphone track, 20 ms each: voiced (the tone) or silent.
    Audio(Vec<bool>),
    /// Hang up.
    Close,
}

/// What the browser's task shares with the handle.
#[derive(Debug, Default)]
struct Shared {
    audio_received: AtomicU64,
    audio_sent: AtomicU64,
    /// The peer connection ended (ICE disconnected, the channel closed, hung up).
    ended: AtomicBool,
}

/// A browser in a WebRTC call with the fake platform. Dropping it hangs up (its task sends
/// the goodbyes and ends by itself, within a fraction of a second).
#[derive(Debug)]
pub struct TestBrowser {
    call_id: String,
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Value>,
    history: Vec<Value>,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl TestBrowser {
    /// Calls the platform at `api_base` (`http://127.0.0.1:PORT`) as `via` says, and returns
    /// once `oai-events` is open; all of it within `deadline`.
    pub async fn connect(
        api_base: &str,
        via: CallVia,
        deadline: Duration,
    ) -> Result<TestBrowser, BrowserError> {
        let until = Instant::now() + deadline;
        let mut io = RtcSocket::bind_loopback()
            .await
            .map_err(|e| BrowserError::Rtc(format!("cannot bind a UDP port on 127.0.0.1: {e}")))?;
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .build(StdInstant::now());
        let candidate = io.candidate()?;
        io.mutate(&mut rtc, |rtc| {
            rtc.add_local_candidate(candidate);
            Ok(())
        })?;
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        api.add_channel(EVENTS_CHANNEL.to_owned());
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| BrowserError::Rtc("the offer has no changes to apply".into()))?;
        io.drain(&mut rtc)?;
        let answer =
            tokio::time::timeout_at(until, post_offer(api_base, &via, &offer.to_sdp_string()))
                .await
                .map_err(|_| BrowserError::Timeout("the answer to the offer".into()))??;
        if answer.status != 201 {
            return Err(BrowserError::Refused {
                status: answer.status,
                body: answer.body,
            });
        }
        let call_id = answer
            .header("location")
            .and_then(|l| l.strip_prefix("/v1/realtime/calls/"))
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                BrowserError::Http(
                    "the 201 answer has no Location /v1/realtime/calls/{call_id}".into(),
                )
            })?
            .to_owned();
        let sdp = SdpAnswer::from_sdp_string(&answer.body)
            .map_err(|e| BrowserError::Rtc(format!("the answer is not valid SDP: {e}")))?;
        io.mutate(&mut rtc, |rtc| rtc.sdp_api().accept_answer(pending, sdp))?;
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let (open_tx, mut open) = watch::channel(false);
        let shared = Arc::new(Shared::default());
        let driver = Driver {
            rtc,
            io,
            mid,
            channel: None,
            commands: commands_rx,
            events: events_tx,
            open: open_tx,
            shared: Arc::clone(&shared),
            audio: VecDeque::new(),
            audio_next_at: None,
            rtp_ticks: 0,
            connected: false,
        };
        let task = tokio::spawn(driver.run());
        let browser = TestBrowser {
            call_id,
            commands,
            events,
            history: Vec::new(),
            shared,
            task: Some(task),
        };
        let opened = tokio::time::timeout_at(until, open.wait_for(|open| *open)).await;
        match opened {
            Ok(Ok(_)) => Ok(browser),
            Ok(Err(_)) => Err(BrowserError::Closed),
            Err(_) => Err(BrowserError::Timeout(format!(
                "ICE, DTLS and the `{EVENTS_CHANNEL}` data channel"
            ))),
        }
    }

    /// The platform's id for the call (from the answer's `Location`), what sidebands attach to.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Sends a client event on `oai-events`.
    pub fn send(&self, event: &Value) -> Result<(), BrowserError> {
        self.send_raw(&event.to_string())
    }

    /// Sends any text on `oai-events` (malformed events included).
    pub fn send_raw(&self, text: &str) -> Result<(), BrowserError> {
        self.commands
            .send(Command::Send(text.to_owned()))
            .map_err(|_| BrowserError::Closed)
    }

    /// Speaks into the microphone: `ms` of voiced frames (a tone), 20 ms apart, then nothing,
    /// as a browser with DTX sends nothing in silence.
    pub fn speak(&self, ms: u32) -> Result<(), BrowserError> {
        self.audio(vec![true; frames(ms)])
    }

    /// Sends `ms` of silent frames (a browser without DTX during silence).
    pub fn silence(&self, ms: u32) -> Result<(), BrowserError> {
        self.audio(vec![false; frames(ms)])
    }

    fn audio(&self, frames: Vec<bool>) -> Result<(), BrowserError> {
        self.commands
            .send(Command::Audio(frames))
            .map_err(|_| BrowserError::Closed)
    }

    /// The next server event from `oai-events`, waiting at most `within`; `None` when none
    /// came (or the call is over). A message that is not JSON arrives as a JSON string.
    pub async fn next_event(&mut self, within: Duration) -> Option<Value> {
        let event = tokio::time::timeout(within, self.events.recv())
            .await
            .ok()??;
        self.history.push(event.clone());
        Some(event)
    }

    /// The next server event of type `event_type`, skipping others, waiting at most `within`.
    pub async fn wait_for(
        &mut self,
        event_type: &str,
        within: Duration,
    ) -> Result<Value, BrowserError> {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.next_event(left).await {
                Some(event) if event["type"] == event_type => return Ok(event),
                Some(_) => {}
                None if self.ended() => return Err(BrowserError::Closed),
                None => {
                    return Err(BrowserError::Timeout(format!(
                        "`{event_type}` on {EVENTS_CHANNEL}"
                    )));
                }
            }
        }
    }

    /// Every server event taken from the channel so far, in order.
    pub fn history(&self) -> &[Value] {
        &self.history
    }

    /// The types of [`TestBrowser::history`].
    pub fn history_types(&self) -> Vec<String> {
        self.history
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("<not an event>").to_owned())
            .collect()
    }

    /// Opus packets that arrived on the speaker track so far.
    pub fn audio_packets_received(&self) -> u64 {
        self.shared.audio_received.load(Ordering::Relaxed)
    }

    /// Opus packets sent on the microphone track so far.
    pub fn audio_packets_sent(&self) -> u64 {
        self.shared.audio_sent.load(Ordering::Relaxed)
    }

    /// Whether the peer connection ended (the platform hung up, ICE disconnected).
    pub fn ended(&self) -> bool {
        self.shared.ended.load(Ordering::Relaxed)
    }

    /// Hangs up and waits (at most a second) for the browser's task to end.
    pub async fn close(mut self) {
        let _ = self.commands.send(Command::Close);
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
        }
    }
}

impl Drop for TestBrowser {
    fn drop(&mut self) {
        // Not aborted: a polite close tells the platform at once, and the task ends by itself.
        let _ = self.commands.send(Command::Close);
    }
}

fn frames(ms: u32) -> usize {
    ms.div_ceil(FRAME.as_millis() as u32) as usize
}

/// The browser's task: str0m, its socket, and the microphone's pacing.
struct Driver {
    rtc: Rtc,
    io: RtcSocket,
    mid: Mid,
    channel: Option<ChannelId>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Value>,
    open: watch::Sender<bool>,
    shared: Arc<Shared>,
    /// Microphone frames still to send: voiced or silent.
    audio: VecDeque<bool>,
    audio_next_at: Option<Instant>,
    rtp_ticks: u64,
    connected: bool,
}

impl Driver {
    async fn run(mut self) {
        let why = self.drive().await;
        tracing::debug!(%why, "test browser: call over");
        self.shared.ended.store(true, Ordering::Relaxed);
        self.io.close(&mut self.rtc).await;
    }

    async fn drive(&mut self) -> String {
        loop {
            while let Some(event) = self.io.events.pop_front() {
                if let Err(why) = self.on_event(event) {
                    return why;
                }
            }
            let mut wake = self.io.timeout;
            if let Some(at) = self.audio_next_at {
                wake = wake.min(at);
            }
            let step = tokio::select! {
                readable = self.io.readable() => match readable {
                    Ok(()) => self.io.receive(&mut self.rtc).map_err(|e| e.to_string()),
                    Err(e) => Err(format!("the UDP socket failed: {e}")),
                },
                command = self.commands.recv() => match command {
                    None | Some(Command::Close) => return "hung up".into(),
                    Some(Command::Send(text)) => self.write(&text),
                    Some(Command::Audio(frames)) => {
                        self.audio.extend(frames);
                        self.audio_next_at.get_or_insert_with(Instant::now);
                        Ok(())
                    }
                },
                () = tokio::time::sleep_until(wake) => self.on_time(),
            };
            if let Err(why) = step {
                return why;
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Connected => self.connected = true,
            Event::Closed => return Err("the platform closed the peer connection".into()),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.connected => {
                return Err("ICE disconnected".into());
            }
            Event::ChannelOpen(id, label) if label == EVENTS_CHANNEL => {
                self.channel = Some(id);
                let _ = self.open.send(true);
            }
            Event::ChannelData(data) if Some(data.id) == self.channel => {
                let text = String::from_utf8_lossy(&data.data);
                let event = serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()));
                let _ = self.events.send(event);
            }
            Event::ChannelClose(id) if Some(id) == self.channel => {
                return Err(format!("the platform closed `{EVENTS_CHANNEL}`"));
            }
            Event::MediaData(_) => {
                self.shared.audio_received.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes a client event to `oai-events`.
    fn write(&mut self, text: &str) -> Result<(), String> {
        let Some(id) = self.channel else {
            return Err(format!("`{EVENTS_CHANNEL}` is not open"));
        };
        let written = self
            .io
            .mutate(&mut self.rtc, |rtc| match rtc.channel(id) {
                Some(mut channel) => channel.write(false, text.as_bytes()),
                None => Ok(false),
            })
            .map_err(|e| e.to_string())?;
        if !written {
            tracing::warn!(
                bytes = text.len(),
                "test browser: the data channel is full; event not sent"
            );
        }
        Ok(())
    }

    fn on_time(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if now >= self.io.timeout {
            self.io.tick(&mut self.rtc).map_err(|e| e.to_string())?;
        }
        if self.audio_next_at.is_some_and(|at| at <= now) {
            self.send_audio_frame()?;
            self.audio_next_at = (!self.audio.is_empty()).then(|| now + FRAME);
        }
        Ok(())
    }

    /// Sends the next microphone frame.
    fn send_audio_frame(&mut self) -> Result<(), String> {
        let Some(voiced) = self.audio.pop_front() else {
            return Ok(());
        };
        self.rtp_ticks += TICKS_PER_FRAME;
        let frame: &[u8] = if voiced { &TONE_FRAME } else { &SILENT_FRAME };
        let (mid, ticks) = (self.mid, self.rtp_ticks);
        let sent = self
            .io
            .mutate(&mut self.rtc, |rtc| {
                let Some(writer) = rtc.writer(mid) else {
                    return Ok(false);
                };
                let Some(pt) = writer
                    .payload_params()
                    .find(|p| p.spec().codec == Codec::Opus)
                    .map(|p| p.pt())
                else {
                    return Ok(false);
                };
                let time = MediaTime::new(ticks, Frequency::FORTY_EIGHT_KHZ);
                writer.write(pt, StdInstant::now(), time, frame.to_vec())?;
                Ok(true)
            })
            .map_err(|e| e.to_string())?;
        if sent {
            self.shared.audio_sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
