//! One Twilio call: the media stream bridged to one Realtime session.
//!
//! The session is the same loop `agent run` drives (tools, history, cost, limits, barge-in);
//! this module only moves audio and events between the two sockets. The caller's μ-law goes
//! to `input_audio_buffer.append` as it came (base64, checked); the agent's audio goes to
//! Twilio in chunks, each followed by a mark, and the marks that come back report what was
//! heard (see [`super::playback`]). When the session reports a barge-in, Twilio gets `clear`;
//! the truncate and any cancel are the session loop's.
//!
//! Every wait has a deadline: Twilio must send something within `stream_idle_secs`, each write
//! to Twilio must finish within `stream_write_secs`, the session must start within
//! [`SESSION_START`] and wind down within [`SESSION_CLOSE`]. A malformed message is logged and
//! skipped; an oversized frame ends this call only.

use std::{
    ops::ControlFlow,
    sync::Arc,
    time::{Duration, SystemTime},
};

use agent_core::{
    audio::PlaybackClock,
    protocol::ClientEvent,
    session::{Session, SessionEvent},
    tool::PhoneCall,
};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{
    self, Message,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::{
    messages::{self, Inbound, Outbound, Start},
    playback::Playback,
    tokens::{PendingCall, TOKEN_PARAMETER},
};
use crate::{spend::utc_day, state::AppState, websocket::ServerSocket};

/// How long the Realtime session may take to connect and confirm its configuration.
pub const SESSION_START: Duration = Duration::from_secs(15);
/// How long the session may take to close once the call ended.
pub const SESSION_CLOSE: Duration = Duration::from_secs(5);
/// Malformed messages logged one by one before the log thins out to every 100th.
const MALFORMED_LOGGED: u64 = 5;

/// Why a call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// Twilio said `stop`, or closed the stream.
    CallerHungUp,
    /// Twilio sent nothing for too long.
    Idle,
    /// A frame over the size limit.
    Oversized,
    /// The stream failed, or a write to it did not finish in time.
    StreamFailed(String),
    /// The session ended (its reason is logged).
    SessionEnded,
    /// The server's drain time ran out.
    Drained,
}

struct Call {
    state: Arc<AppState>,
    socket: ServerSocket,
    session: Session,
    playback: Playback,
    route: usize,
    call_sid: String,
    malformed: u64,
}

/// Runs the call until either side ends it; the capacity slot in `pending` is freed after.
pub(super) async fn run(
    state: Arc<AppState>,
    mut socket: ServerSocket,
    start: Start,
    pending: PendingCall,
) {
    let clock = PlaybackClock::reported();
    let session = match start_session(&state, &start, &pending, clock.clone()).await {
        Ok(session) => session,
        Err(why) => {
            tracing::error!(call_sid = %start.call_sid, "the call's session did not start: {why}");
            close(&mut socket, &state, CloseCode::Error, "session unavailable").await;
            return;
        }
    };
    tracing::info!(call_sid = %start.call_sid, route = pending.route, "call connected");
    let mut call = Call {
        playback: Playback::new(start.stream_sid.clone(), clock),
        state,
        socket,
        session,
        route: pending.route,
        call_sid: start.call_sid,
        malformed: 0,
    };
    if call.state.config.routes[call.route].greet {
        let _ = call.session.handle.request_response().await;
    }
    let end = call.bridge().await;
    call.finish(end).await;
    drop(pending);
}

async fn start_session(
    state: &AppState,
    start: &Start,
    pending: &PendingCall,
    clock: PlaybackClock,
) -> Result<Session, String> {
    let mut parameters = start.custom_parameters.clone();
    parameters.remove(TOKEN_PARAMETER);
    let phone = PhoneCall::new("twilio", &start.call_sid, &pending.from, &pending.to)
        .with_parameters(parameters);
    let agent = &state.agents[pending.route];
    let config = crate::phone_session::session_config(agent, &state.overrides, phone, clock)
        .map_err(|err| err.to_string())?;
    tokio::select! {
        started = tokio::time::timeout(SESSION_START, Session::start(config)) => match started {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no session within {SESSION_START:?}")),
        },
        () = state.hang_up.cancelled() => Err("the server is shutting down".into()),
    }
}

impl Call {
    /// Moves frames both ways until one side ends the call.
    async fn bridge(&mut self) -> End {
        let idle = self.state.config.limits.stream_idle;
        let hang_up = self.state.hang_up.clone();
        let mut deadline = Instant::now() + idle;
        loop {
            let step = tokio::select! {
                frame = tokio::time::timeout_at(deadline, self.socket.next()) => {
                    deadline = Instant::now() + idle;
                    match frame {
                        Err(_) => ControlFlow::Break(End::Idle),
                        Ok(None) => ControlFlow::Break(End::CallerHungUp),
                        Ok(Some(Err(err))) => ControlFlow::Break(stream_error(err)),
                        Ok(Some(Ok(message))) => self.on_twilio(message).await,
                    }
                }
                event = self.session.events.recv() => match event {
                    Some(event) => self.on_session(event).await,
                    None => ControlFlow::Break(End::SessionEnded),
                },
                () = hang_up.cancelled() => ControlFlow::Break(End::Drained),
            };
            if let ControlFlow::Break(end) = step {
                return end;
            }
        }
    }

    /// One frame from Twilio.
    async fn on_twilio(&mut self, message: Message) -> ControlFlow<End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return ControlFlow::Break(End::CallerHungUp),
            Message::Binary(_) => {
                self.malformed("a binary frame");
                return ControlFlow::Continue(());
            }
            _ => return ControlFlow::Continue(()),
        };
        let inbound = match messages::parse(&text) {
            Ok(inbound) => inbound,
            Err(err) => {
                let err = err.to_string();
                self.malformed(&err.chars().take(160).collect::<String>());
                return ControlFlow::Continue(());
            }
        };
        match inbound {
            Inbound::Media { media } => {
                if media.track.as_deref().is_some_and(|t| t != "inbound") {
                    return ControlFlow::Continue(());
                }
                if !valid_audio(&media.payload) {
                    self.malformed("a media payload that is not base64 audio");
                    return ControlFlow::Continue(());
                }
                let append = ClientEvent::input_audio_buffer_append(media.payload);
                if self.session.handle.send_event(append).await.is_err() {
                    return ControlFlow::Break(End::SessionEnded);
                }
            }
            Inbound::Mark { mark } => {
                self.playback.on_mark(&mark.name);
            }
            Inbound::Dtmf { dtmf } => {
                tracing::debug!(call_sid = %self.call_sid, "keypad digit {} (not passed on yet)", dtmf.digit.chars().take(1).collect::<String>());
            }
            Inbound::Stop {} => return ControlFlow::Break(End::CallerHungUp),
            Inbound::Connected {} | Inbound::Start { .. } => {
                self.malformed("a second connected or start message");
            }
        }
        ControlFlow::Continue(())
    }

    /// One event of the session.
    async fn on_session(&mut self, event: SessionEvent) -> ControlFlow<End> {
        match event {
            SessionEvent::Audio { item_id, data, .. } => {
                let frames = self.playback.on_audio(&item_id, &data);
                return self.send(frames).await;
            }
            SessionEvent::Interrupted { .. } => {
                if let Some(clear) = self.playback.on_interrupted() {
                    return self.send(vec![clear]).await;
                }
            }
            SessionEvent::Cost(report) => self.charge(report.cost_usd),
            SessionEvent::ToolCallFinished { name, duration, .. } => {
                tracing::info!(call_sid = %self.call_sid, tool = %name, ?duration, "tool call finished");
            }
            SessionEvent::TurnFailed { failure } => {
                tracing::warn!(call_sid = %self.call_sid, "a turn failed: {failure}");
            }
            SessionEvent::Closed { reason } => {
                tracing::info!(call_sid = %self.call_sid, "the session ended: {reason}");
                return ControlFlow::Break(End::SessionEnded);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    /// Writes frames to Twilio within the write deadline.
    async fn send(&mut self, frames: Vec<Outbound>) -> ControlFlow<End> {
        let write = self.state.config.limits.stream_write;
        let socket = &mut self.socket;
        let all = async {
            for frame in frames {
                socket.feed(Message::text(frame.to_text())).await?;
            }
            socket.flush().await
        };
        match tokio::time::timeout(write, all).await {
            Ok(Ok(())) => ControlFlow::Continue(()),
            Ok(Err(err)) => ControlFlow::Break(End::StreamFailed(err.to_string())),
            Err(_) => ControlFlow::Break(End::StreamFailed(format!(
                "a write to Twilio took over {write:?}"
            ))),
        }
    }

    fn charge(&self, usd: Option<f64>) {
        if let Some(usd) = usd {
            let day = utc_day(SystemTime::now());
            self.state.spend.add(self.route, usd, day);
        }
    }

    fn malformed(&mut self, what: &str) {
        self.malformed += 1;
        let n = self.malformed;
        if n <= MALFORMED_LOGGED || n.is_multiple_of(100) {
            tracing::warn!(call_sid = %self.call_sid, "skipped a malformed Twilio message ({n} so far): {what}");
        }
    }

    /// Closes the session (its last costs are charged) and the stream.
    async fn finish(mut self, end: End) {
        tracing::info!(call_sid = %self.call_sid, "call ended: {end:?}");
        let wind_down = async {
            let _ = self.session.handle.close().await;
            while let Some(event) = self.session.events.recv().await {
                match event {
                    SessionEvent::Cost(report) => self.charge(report.cost_usd),
                    SessionEvent::Closed { .. } => break,
                    _ => {}
                }
            }
        };
        if tokio::time::timeout(SESSION_CLOSE, wind_down)
            .await
            .is_err()
        {
            tracing::warn!(call_sid = %self.call_sid, "the session did not close within {SESSION_CLOSE:?}");
        }
        let (code, reason) = match end {
            End::Oversized => (CloseCode::Size, "frame too large"),
            End::Drained => (CloseCode::Away, "server shutting down"),
            _ => (CloseCode::Normal, "call ended"),
        };
        close(&mut self.socket, &self.state, code, reason).await;
    }
}

fn stream_error(err: tungstenite::Error) -> End {
    match err {
        tungstenite::Error::Capacity(_) => End::Oversized,
        err => End::StreamFailed(err.to_string()),
    }
}

/// Whether a media payload is base64 (μ-law needs no further check: every byte is a sample).
fn valid_audio(payload: &str) -> bool {
    !payload.is_empty()
        && base64::engine::general_purpose::STANDARD
            .decode(payload)
            .is_ok()
}

async fn close(socket: &mut ServerSocket, state: &AppState, code: CloseCode, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(
        state.config.limits.stream_write,
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}
