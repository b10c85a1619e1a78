//! One Twilio call: the media stream bridged to one Realtime session.
//!
//! The session is the same loop `agent run` drives (tools, history, cost, limits, barge-in);
//! this module only moves audio and events between the two sockets. The caller's μ-law goes
//! to `input_audio_buffer.append` as it came (base64, checked); the agent's audio goes to
//! Twilio in chunks, each followed by a mark, and the marks that come back report what was
//! heard (see [`super::playback`]). When the session reports a barge-in, Twilio gets `clear`;
//! the truncate and any cancel are the session loop's.
//!
//! What every phone agent gets (greeting, silence, call length, keypad digits, `end_call`,
//! `transfer_call`) is decided by [`CallPolicy`]; this module feeds it and carries out its
//! actions, hanging up and transferring through Twilio's REST API ([`super::rest`]). Each call
//! is stored in the history with its caller and callee, and counted in the metrics.
//!
//! Every wait has a deadline: Twilio must send something within `stream_idle_secs`, each write
//! to Twilio must finish within `stream_write_secs`, the session must start within
//! [`SESSION_START`] and wind down within [`SESSION_CLOSE`](phone::SESSION_CLOSE). A malformed message is logged and
//! skipped; an oversized frame ends this call only.

use std::{ops::ControlFlow, sync::Arc, time::Duration};

use agent_core::{
    audio::PlaybackClock,
    history::PhoneCallRecord,
    protocol::ClientEvent,
    session::{PlatformIds, Session, SessionEvent},
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
    tokens::{PendingCall, ResumedCall, TOKEN_PARAMETER},
};
use crate::{
    call_history::{CallHistory, StoredCall},
    metrics::Outcome,
    phone::{self, Action, CallControl, CallPolicy, CallRequests, EndReason, add_call_tools},
    state::AppState,
    twilio::rest::TwilioCall,
    websocket::ServerSocket,
};

/// How long the Realtime session may take to connect and confirm its configuration.
pub const SESSION_START: Duration = Duration::from_secs(15);
/// Malformed messages logged one by one before the log thins out to every 100th.
/// How long a closed stream is read (and dropped) while the caller answers the close.
const CLOSE_LINGER: Duration = Duration::from_secs(1);
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
    /// The agent's side hung up (`end_call`, silence, the call-length limit).
    AgentEnded(EndReason),
    /// The agent transferred the call.
    Transferred,
}

impl End {
    fn outcome(&self) -> Outcome {
        match self {
            End::CallerHungUp => Outcome::CallerHungUp,
            End::Drained => Outcome::Drained,
            End::AgentEnded(EndReason::Agent) => Outcome::AgentHungUp,
            End::AgentEnded(EndReason::Silence) => Outcome::Silence,
            End::AgentEnded(EndReason::MaxLength) => Outcome::MaxLength,
            End::Transferred => Outcome::Transferred,
            End::Idle | End::Oversized | End::StreamFailed(_) | End::SessionEnded => {
                Outcome::Failed
            }
        }
    }
}

struct Call {
    state: Arc<AppState>,
    socket: ServerSocket,
    session: Session,
    playback: Playback,
    route: usize,
    call_sid: String,
    malformed: u64,
    policy: CallPolicy,
    requests: CallRequests,
    control: Arc<dyn CallControl>,
    stored: Option<StoredCall>,
}

/// A started session with what the call needs beside it.
struct Started {
    session: Session,
    requests: CallRequests,
    stored: Option<StoredCall>,
    /// When the call was first answered, for a call resumed from a node that died: its
    /// length limit counts from there, and it is not greeted again.
    resumed_from: Option<std::time::Instant>,
}

/// Runs the call until either side ends it; the capacity slot in `pending` is freed after.
pub(super) async fn run(
    state: Arc<AppState>,
    mut socket: ServerSocket,
    start: Start,
    mut pending: PendingCall,
) {
    let clock = PlaybackClock::reported();
    let resumed = pending.resumed.take();
    let started = match start_session(&state, &start, &pending, resumed, clock.clone()).await {
        Ok(started) => started,
        Err(why) => {
            tracing::error!(call_sid = %start.call_sid, "the call's session did not start: {why}");
            state.metrics.count_outcome(Outcome::Failed);
            close(&mut socket, &state, CloseCode::Error, "session unavailable").await;
            return;
        }
    };
    tracing::info!(call_sid = %start.call_sid, route = pending.route, "call connected");
    state.metrics.call_started();
    let rest = state.twilio_rest.clone();
    let control: Arc<dyn CallControl> = match rest {
        Some(rest) => Arc::new(TwilioCall::new(rest, &pending.account_sid, &start.call_sid)),
        None => Arc::new(NoControl),
    };
    let phone = state.agents[pending.route]
        .spec()
        .phone
        .clone()
        .unwrap_or_default();
    let connected = started.resumed_from.unwrap_or_else(std::time::Instant::now);
    let greet = started.resumed_from.is_none() && state.config.routes[pending.route].greet;
    let mut call = Call {
        playback: Playback::new(start.stream_sid.clone(), clock),
        policy: CallPolicy::new(&phone, connected),
        state,
        socket,
        session: started.session,
        requests: started.requests,
        stored: started.stored,
        control,
        route: pending.route,
        call_sid: start.call_sid,
        malformed: 0,
    };
    let end = if greet {
        let greeting = call.policy.greeting();
        call.execute(greeting).await
    } else {
        ControlFlow::Continue(())
    };
    let end = match end {
        ControlFlow::Break(end) => end,
        ControlFlow::Continue(()) => call.bridge().await,
    };
    call.finish(end).await;
    drop(pending);
}

/// The call's session: the agent's config with the phone's formats, the call-control tools
/// and, when calls are stored, the history sink.
async fn start_session(
    state: &AppState,
    start: &Start,
    pending: &PendingCall,
    resumed: Option<ResumedCall>,
    clock: PlaybackClock,
) -> Result<Started, String> {
    let mut parameters = start.custom_parameters.clone();
    parameters.remove(TOKEN_PARAMETER);
    let phone = PhoneCall::new("twilio", &start.call_sid, &pending.from, &pending.to)
        .with_parameters(parameters);
    let agent = &state.agents[pending.route];
    let mut config = crate::phone_session::session_config(
        agent,
        &state.overrides,
        phone,
        clock,
        state.session_observer.get(),
    )
    .map_err(|err| err.to_string())?;
    config.approver = state.approver_for("twilio", &start.call_sid, agent.name());
    config.platform_ids = PlatformIds::twilio(&start.call_sid, &start.stream_sid);
    let phone_spec = agent.spec().phone.clone().unwrap_or_default();
    let requests = add_call_tools(&mut config, &phone_spec).map_err(|err| err.to_string())?;
    let (stored, resumed_from) = match resumed {
        // The conversation goes on: its items are replayed into the new session, its
        // recorded tool calls never run again, and its writes go on under this node's lease.
        Some(resumed) => {
            tracing::info!(call_sid = %start.call_sid, from = %resumed.last_holder, "took over a Twilio call from a node that died");
            state.metrics.count_takeover();
            let stored = resumed.adopted.apply(&mut config);
            (
                Some(stored),
                Some(crate::call_history::answered_instant(resumed.answered_at)),
            )
        }
        None => {
            let record =
                PhoneCallRecord::starting("twilio", &start.call_sid, &pending.from, &pending.to);
            let stored =
                CallHistory::store_call(state.history.as_ref(), agent, record, &mut config).await;
            (stored, None)
        }
    };
    tokio::select! {
        started = tokio::time::timeout(SESSION_START, Session::start(config)) => match started {
            Ok(Ok(session)) => Ok(Started { session, requests, stored, resumed_from }),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no session within {SESSION_START:?}")),
        },
        () = state.hang_up.cancelled() => Err("the server is shutting down".into()),
    }
}

/// Call control when the server has no Twilio credentials (never for a Twilio route, which
/// needs them to start): the call can only be ended by closing its stream.
struct NoControl;

#[async_trait::async_trait]
impl CallControl for NoControl {
    async fn hang_up(&self) -> Result<(), crate::phone::CallControlError> {
        Err(crate::phone::CallControlError::Unavailable(
            "no Twilio credentials: the stream is closed instead".into(),
        ))
    }

    async fn transfer(
        &self,
        _destination: &agent_core::agent::TransferDestination,
    ) -> Result<(), crate::phone::CallControlError> {
        Err(crate::phone::CallControlError::Unavailable(
            "no Twilio credentials to transfer with".into(),
        ))
    }
}

impl Call {
    /// Moves frames both ways until one side ends the call.
    ///
    /// A frame comes every 20 ms, so nothing here is made per frame that can live across
    /// frames: the drain's cancellation future is registered once (each new one takes the
    /// server-wide token's lock), and the idle and policy timers are re-armed only when their
    /// deadline moves, not re-created per frame.
    async fn bridge(&mut self) -> End {
        let idle = self.state.config.limits.stream_idle;
        let hang_up = self.state.hang_up.clone();
        let drained = hang_up.cancelled();
        tokio::pin!(drained);
        let mut last_frame = Instant::now();
        let idle_timer = tokio::time::sleep_until(last_frame + idle);
        tokio::pin!(idle_timer);
        let mut policy_at = None;
        let policy_timer = tokio::time::sleep_until(last_frame + idle);
        tokio::pin!(policy_timer);
        loop {
            let wake = self.policy.deadline();
            if wake != policy_at {
                policy_at = wake;
                if let Some(at) = wake {
                    policy_timer.as_mut().reset(Instant::from_std(at));
                }
            }
            let step = tokio::select! {
                frame = self.socket.next() => {
                    last_frame = Instant::now();
                    match frame {
                        None => ControlFlow::Break(End::CallerHungUp),
                        Some(Err(err)) => ControlFlow::Break(stream_error(err)),
                        Some(Ok(message)) => self.on_twilio(message).await,
                    }
                }
                () = &mut idle_timer => {
                    let due = last_frame + idle;
                    if Instant::now() >= due {
                        ControlFlow::Break(End::Idle)
                    } else {
                        idle_timer.as_mut().reset(due);
                        ControlFlow::Continue(())
                    }
                }
                event = self.session.events.recv() => match event {
                    Some(event) => self.on_session(event).await,
                    None => ControlFlow::Break(End::SessionEnded),
                },
                Some(request) = self.requests.recv() => {
                    self.policy.on_request(request, std::time::Instant::now());
                    ControlFlow::Continue(())
                }
                () = &mut policy_timer, if policy_at.is_some() => {
                    // Fired: the policy's next deadline (if any) re-arms it.
                    policy_at = None;
                    ControlFlow::Continue(())
                }
                () = &mut drained => ControlFlow::Break(End::Drained),
            };
            if let ControlFlow::Break(end) = step {
                return end;
            }
            if let ControlFlow::Break(end) = self.drive().await {
                return end;
            }
        }
    }

    /// Carries out what the policy says is due now.
    async fn drive(&mut self) -> ControlFlow<End> {
        for action in self.policy.poll(std::time::Instant::now()) {
            self.execute(action).await?;
        }
        ControlFlow::Continue(())
    }

    /// Carries out one action of the policy.
    async fn execute(&mut self, action: Action) -> ControlFlow<End> {
        let handle = self.session.handle.clone();
        let sent = match action {
            Action::Prompt(text) => crate::phone::prompt(&handle, text).await,
            Action::UserText(text) => handle.send_text(text).await,
            Action::HangUp(reason) => {
                if let Err(err) = self.control.hang_up().await {
                    // Closing the stream ends the call too: its TwiML has nothing after it.
                    tracing::error!(call_sid = %self.call_sid, "hanging up through Twilio failed ({err}); closing the stream");
                }
                tracing::info!(call_sid = %self.call_sid, ?reason, "the agent hung up");
                return ControlFlow::Break(End::AgentEnded(reason));
            }
            Action::Transfer { name, destination } => {
                match self.control.transfer(&destination).await {
                    Ok(()) => {
                        tracing::info!(call_sid = %self.call_sid, target = %name, "call transferred");
                        return ControlFlow::Break(End::Transferred);
                    }
                    Err(err) => {
                        tracing::error!(call_sid = %self.call_sid, target = %name, "the transfer failed: {err}");
                        let tell = self.policy.transfer_failed(std::time::Instant::now());
                        return Box::pin(self.execute(tell)).await;
                    }
                }
            }
        };
        match sent {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(End::SessionEnded),
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
                if !self.policy.takes_caller_audio() {
                    return ControlFlow::Continue(());
                }
                let append = ClientEvent::input_audio_buffer_append(media.payload);
                if self.session.handle.send_event(append).await.is_err() {
                    return ControlFlow::Break(End::SessionEnded);
                }
            }
            Inbound::Mark { mark } => {
                self.playback.on_mark(&mark.name);
                self.played();
            }
            Inbound::Dtmf { dtmf } => {
                if crate::phone::dtmf::single_key(&dtmf.digit).is_none() {
                    self.malformed("a keypad digit that is not 0-9, * or #");
                    return ControlFlow::Continue(());
                }
                if let Some(action) = self.policy.on_digit(&dtmf.digit, std::time::Instant::now()) {
                    return self.execute(action).await;
                }
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
        self.policy.on_session(&event, std::time::Instant::now());
        self.state.metrics.observe(&event);
        match event {
            SessionEvent::Audio { item_id, data, .. } => {
                let frames = self.playback.on_audio(&item_id, &data);
                self.played();
                return self.send(frames).await;
            }
            SessionEvent::Interrupted { .. } => {
                let clear = self.playback.on_interrupted();
                self.played();
                if let Some(clear) = clear {
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

    /// Tells the policy how much audio is still queued at Twilio.
    fn played(&mut self) {
        let queued = self.playback.marks_in_flight();
        self.policy.on_playback(queued, std::time::Instant::now());
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
        phone::charge(&self.state, self.route, usd);
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
        phone::wind_down(
            &self.state,
            self.route,
            &mut self.session,
            self.stored.as_ref(),
            end.outcome(),
            &self.call_sid,
        )
        .await;
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
/// A frame's payload (20 ms, 216 characters) is decoded on the stack, not allocated.
fn valid_audio(payload: &str) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut frame = [0u8; 1024];
    if payload.is_empty() {
        return false;
    }
    if base64::decoded_len_estimate(payload.len()) <= frame.len() {
        engine.decode_slice(payload, &mut frame).is_ok()
    } else {
        engine.decode(payload).is_ok()
    }
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
    // Read and drop what the caller still sends until it closes its side (its close reply),
    // at most CLOSE_LINGER: a socket dropped with unread data makes the kernel answer with a
    // reset, and a reset can overtake the close frame, so the caller would never learn why
    // the call ended (1009 for an oversized frame). Raw bytes: after an oversized frame the
    // WebSocket reader would only repeat its error.
    let drain = async {
        let io = socket.get_mut();
        let mut buf = [0u8; 4096];
        while matches!(
            tokio::io::AsyncReadExt::read(io, &mut buf).await,
            Ok(n) if n > 0
        ) {}
    };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}
