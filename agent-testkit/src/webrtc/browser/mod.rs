//! [`TestBrowser`]: a page's WebRTC call to the Realtime API, played by str0m on loopback.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant as StdInstant},
};

use serde_json::Value;
use str0m::{
    Rtc, RtcError,
    change::SdpAnswer,
    media::{Direction, MediaKind},
};
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
    time::Instant,
};

use super::{
    BrowserError, CallVia, EVENTS_CHANNEL, client::post_offer, io::RtcSocket, opus::FRAME,
};

mod driver;

use driver::{Command, Driver, Shared};

impl From<RtcError> for BrowserError {
    fn from(e: RtcError) -> Self {
        BrowserError::Rtc(e.to_string())
    }
}

/// A browser in a WebRTC call with the fake platform. Dropping it hangs up (its task sends
/// the goodbyes and ends by itself, within a fraction of a second).
#[derive(Debug)]
pub struct TestBrowser {
    call_id: String,
    answer_headers: Vec<(String, String)>,
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
        let call_id = match &via {
            CallVia::Relay { .. } => answer.header("x-agent-call-id"),
            _ => answer
                .header("location")
                .and_then(|l| l.strip_prefix("/v1/realtime/calls/")),
        }
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            BrowserError::Http(
                "the 201 answer names no call (Location /v1/realtime/calls/{call_id}, or X-Agent-Call-Id from a relay)"
                    .into(),
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
        let driver = Driver::new(
            (rtc, io, mid),
            commands_rx,
            events_tx,
            open_tx,
            Arc::clone(&shared),
        );
        let task = tokio::spawn(driver.run());
        let browser = TestBrowser {
            call_id,
            answer_headers: answer.headers,
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

    /// A header of the answer to the offer (lower-case name), e.g. a relay's
    /// `x-agent-feed-token`.
    pub fn answer_header(&self, name: &str) -> Option<&str> {
        self.answer_headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
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
