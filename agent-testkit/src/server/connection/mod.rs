//! One WebSocket connection: handshake, the event loop, and the answer to each client event.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::audio::{Vad, VadEvent, VadParams, decode_base64};
use super::conversation::{Conversation, Entry};
use super::fault_frames;
use super::faults::{CloseSpec, ConnectionFaults, ErrorSpec};
use super::response::{ActiveResponse, Ctx, Effect, Outgoing, PlannedItem, PlannedKind};
use super::session::{self, View};
use super::usage;
use super::wire::{self, invalid_request};
use super::{
    AuthCheck, ConnectionRequest, Dialect, DialectMode, Direction, ScriptProgress, ScriptScope,
    Shared, calls::Attachment, lock,
};

mod client_events;
mod handshake;
mod input_audio;
mod items;
mod late_transcripts;
mod link;
mod media;
mod media_sideband;
mod responses;
mod sideband;
mod stalls;

use handshake::{Handshake, choose_subprotocol, inspect, ws_config};
use late_transcripts::HeldTranscript;
use link::{Inbound, Link};
use stalls::StreamStall;

pub(crate) use media::serve_media_call;

type Ws = WebSocketStream<TcpStream>;

/// Whether the connection goes on.
#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
}

/// Serves one TCP connection until it ends.
pub(crate) async fn serve(stream: TcpStream, index: usize, shared: Arc<Shared>) {
    let mut handshake = None;
    let auth = shared.config.auth.clone();
    let calls = shared.config.calls.clone();
    #[allow(clippy::result_large_err)] // the signature is tungstenite's handshake `Callback`
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        handshake = Some(inspect(req, &auth));
        // A sideband attaches only to a call the platform accepted and still holds.
        if let (Some(calls), Some(call_id)) = (&calls, sideband::call_id_of(req.uri().query()))
            && !calls.may_attach(&call_id)
        {
            let mut refused = ErrorResponse::new(Some(format!("no active call {call_id}")));
            *refused.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
            return Err(refused);
        }
        if let Some(proto) = choose_subprotocol(req)
            && let Ok(v) = HeaderValue::from_str(&proto)
        {
            resp.headers_mut().insert("sec-websocket-protocol", v);
        }
        Ok(resp)
    };
    let accepted = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(ws_config())),
    )
    .await;
    let ws = match accepted {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(index, error = %e, "scripted server: handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(index, "scripted server: handshake timed out");
            return;
        }
    };
    let handshake = handshake.unwrap_or_default();
    let dialect = match shared.config.dialect {
        DialectMode::Ga => Dialect::Ga,
        DialectMode::Beta => Dialect::Beta,
        DialectMode::Auto if handshake.beta => Dialect::Beta,
        DialectMode::Auto => Dialect::Ga,
    };
    shared.add_request(ConnectionRequest {
        connection: index,
        path: handshake.path.clone(),
        query: handshake.query.clone(),
        headers: handshake.headers.clone(),
        has_authorization: handshake.has_authorization,
        dialect,
    });
    let call_id = sideband::call_id_of(handshake.query.as_deref());
    let attached = match (&shared.config.calls, &call_id) {
        (Some(calls), Some(id)) => match calls.attach(id) {
            Some(Attachment::Sip(attached)) => Some(*attached),
            Some(Attachment::Media(call)) if handshake.auth_ok => {
                return media_sideband::pump(ws, index, id, call, &shared).await;
            }
            // A wrong key: the plain session below refuses it like any other connection.
            Some(Attachment::Media(_)) => None,
            None => return, // the call ended during the handshake
        },
        _ => None,
    };
    let mut conn = Conn::new(index, shared, dialect, &handshake);
    if let (Some(id), Some(attached)) = (call_id, attached) {
        conn.attach(id, attached);
    }
    conn.run(Link::Ws(Box::new(ws)), handshake.auth_ok).await;
    // The sideband ended without the call ending it: the call keeps its state, or ends.
    conn.detach(true);
}

/// One connection's state.
struct Conn {
    index: usize,
    shared: Arc<Shared>,
    dialect: Dialect,
    faults: ConnectionFaults,
    session: Value,
    conversation: Conversation,
    conversation_id: String,
    /// Answers to client events; sent before response streaming events.
    replies: VecDeque<Outgoing>,
    /// The events of the active response.
    stream: VecDeque<Outgoing>,
    active: Option<ActiveResponse>,
    cancelling: bool,
    progress: Arc<Mutex<ScriptProgress>>,
    /// Current scripted turn (0-based), `None` before the first user message.
    turn: Option<usize>,
    last_input_tokens: u64,
    sent: usize,
    event_seq: u64,
    client_items: usize,
    fallbacks: usize,
    input_bytes: usize,
    vad: Vad,
    vad_item: Option<String>,
    /// Milliseconds of user audio seen on this connection (the VAD timeline).
    input_ms_total: u64,
    /// A scripted barge-in waits for the active response to end.
    pending_barge_in: bool,
    /// Server VAD ended a turn while a response was active: answer once it is done.
    pending_auto_response: bool,
    /// The scripted step of the last response the client cancelled, until a response
    /// completes. It is played again on the next `response.create` (a stalled answer asked
    /// for again), unless the client adds a system message first: then the cancel was a
    /// runtime stopping the answer on purpose (a guardrail) and telling the model why, and
    /// the script goes on to the next step.
    cancelled_step: Option<(usize, usize)>,
    deadline: Option<Instant>,
    /// The `stall_after` fault fired: nothing more is sent on this connection.
    stalled: bool,
    /// The `stall_stream_after` fault: whose events are held back.
    stream_stall: Option<StreamStall>,
    /// `response.create` events answered with the `fail_response_create` error so far.
    failed_creates: usize,
    /// Transcription events held back by the server's `late_transcription` setting.
    held_transcripts: Vec<HeldTranscript>,
    /// The platform call this sideband is attached to (see `sideband`).
    call_id: Option<String>,
    /// What the test makes the caller do on this sideband's call.
    control: Option<tokio::sync::mpsc::UnboundedReceiver<crate::server::calls::CallControl>>,
    /// The response whose audio the platform is playing on this sideband's call.
    playing: Option<String>,
    /// A WebRTC call's media state, when this session is one (see `media`).
    media: Option<media::MediaState>,
}

impl Conn {
    fn new(index: usize, shared: Arc<Shared>, dialect: Dialect, handshake: &Handshake) -> Conn {
        let faults = shared.config.faults.for_connection(index).clone();
        let model = handshake
            .model
            .clone()
            .unwrap_or_else(|| shared.config.model.clone());
        let expires_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            + 3600;
        let session = session::initial(dialect, &format!("sess_c{index:03}"), &model, expires_at);
        let progress = match shared.config.script_scope {
            ScriptScope::Shared => Arc::clone(&shared.progress),
            ScriptScope::PerConnection => Arc::new(Mutex::new(ScriptProgress::default())),
        };
        Conn {
            index,
            dialect,
            faults,
            session,
            conversation: Conversation::default(),
            conversation_id: format!("conv_c{index:03}"),
            replies: VecDeque::new(),
            stream: VecDeque::new(),
            active: None,
            cancelling: false,
            progress,
            turn: None,
            last_input_tokens: 0,
            sent: 0,
            event_seq: 0,
            client_items: 0,
            fallbacks: 0,
            input_bytes: 0,
            vad: Vad::default(),
            vad_item: None,
            input_ms_total: 0,
            pending_barge_in: false,
            pending_auto_response: false,
            cancelled_step: None,
            deadline: None,
            stalled: false,
            stream_stall: None,
            failed_creates: 0,
            held_transcripts: Vec::new(),
            call_id: None,
            control: None,
            playing: None,
            media: None,
            shared,
        }
    }

    fn view(&self) -> View<'_> {
        View {
            dialect: self.dialect,
            session: &self.session,
        }
    }

    fn violation(&self, message: impl Into<String>) {
        self.shared.violation(self.index, message.into());
    }

    // ----- the loop -------------------------------------------------------------------------

    async fn run(&mut self, mut link: Link, auth_ok: bool) {
        if self.after_frame(&mut link).await == Flow::Stop {
            return;
        }
        if !auth_ok {
            let spec = ErrorSpec {
                error_type: "invalid_request_error".into(),
                code: Some("invalid_api_key".into()),
                message: "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.".into(),
                param: None,
            };
            let mut ev = wire::error_event(&spec, None);
            self.stamp(&mut ev);
            if self.send_text(&mut link, ev.to_string()).await == Flow::Stop {
                return;
            }
            if self.stalled {
                self.stall(&mut link).await;
            } else {
                link.close(&CloseSpec {
                    code: 3000,
                    reason: "invalid_api_key".into(),
                })
                .await;
            }
            return;
        }
        let created = json!({"type": "session.created", "session": self.session});
        self.replies.push_back(Outgoing::new(created));
        loop {
            if self.stalled {
                self.stall(&mut link).await;
                return;
            }
            let has_next = !self.replies.is_empty() || self.stream_open();
            if !has_next {
                if !link.flush().await {
                    return;
                }
                let input = self.next_input(&mut link).await;
                if self.on_input(input, &mut link).await == Flow::Stop {
                    let _ = link.flush().await;
                    return;
                }
                continue;
            }
            if let Some(inbound) = link.try_next(self.index) {
                if self
                    .on_input(sideband::Input::Link(inbound), &mut link)
                    .await
                    == Flow::Stop
                {
                    let _ = link.flush().await;
                    return;
                }
                continue;
            }
            let delay = self.next_delay();
            if !delay.is_zero() {
                let deadline = *self.deadline.get_or_insert_with(|| Instant::now() + delay);
                if Instant::now() < deadline {
                    if !link.flush().await {
                        return;
                    }
                    tokio::select! {
                        input = self.next_input(&mut link) => {
                            if self.on_input(input, &mut link).await == Flow::Stop {
                                let _ = link.flush().await;
                                return;
                            }
                            continue;
                        }
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
            }
            self.deadline = None;
            let next = match self.replies.pop_front() {
                Some(reply) => Some(reply),
                None if self.stream_open() => self.stream.pop_front(),
                None => None,
            };
            if let Some(out) = next
                && self.send_event(&mut link, out).await == Flow::Stop
            {
                return;
            }
        }
    }

    fn next_delay(&self) -> Duration {
        let front = self
            .replies
            .front()
            .or_else(|| self.stream.front().filter(|_| self.stream_open()))
            .map_or(Duration::ZERO, |o| o.delay);
        self.shared.config.event_delay + self.faults.delay + front
    }

    /// Adds `event_id` (and noise) to an outgoing event.
    fn stamp(&mut self, value: &mut Value) {
        self.event_seq += 1;
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "event_id".into(),
                json!(format!("event_c{}_{:05}", self.index, self.event_seq)),
            );
        }
        if self.faults.noise {
            wire::add_noise(value, self.event_seq);
        }
    }

    async fn send_event(&mut self, link: &mut Link, mut out: Outgoing) -> Flow {
        match &out.effect {
            Effect::DropConnection => {
                tracing::debug!(connection = self.index, "fault: drop on request");
                link.drop_connection().await;
                return Flow::Stop;
            }
            Effect::Close(spec) => {
                link.close(spec).await;
                return Flow::Stop;
            }
            Effect::StopPlayout => {
                if let Some(call) = link.call() {
                    call.clear_playout();
                }
            }
            _ => {}
        }
        self.apply_effect(&out.effect, &mut out.value);
        if out.value.is_null() {
            return Flow::Continue; // an action
        }
        if self.withheld(&out.value) {
            self.play_on_media_path(&out.value, link);
            match self.playback_started(&out.value) {
                Some(started) => out.value = started,
                None => return Flow::Continue, // audio a sideband does not carry
            }
        }
        self.playback_done(&out.value, link);
        if let Some(kind) = self.faults.malformed_response_done {
            fault_frames::rewrite_response_done(kind, &mut out.value);
        }
        self.stamp(&mut out.value);
        let kind = out
            .value
            .get("type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if self.send_text(link, out.value.to_string()).await == Flow::Stop {
            return Flow::Stop;
        }
        if let Some(kind) = kind {
            if let Some(probe) = &self.shared.config.audio_probe
                && matches!(
                    kind.as_str(),
                    "response.output_audio.delta" | "response.audio.delta"
                )
            {
                // Timed from the wire: the delta leaves now, not when the stream next idles.
                // The probe hears of it first, so a fast peer's answer never comes before.
                probe.delta_sent(self.index);
                if !link.flush().await {
                    return Flow::Stop;
                }
            }
            self.shared.note_sent(&kind);
        }
        if self.faults.noise {
            let mut unknown = wire::unknown_event(self.event_seq);
            self.stamp_plain(&mut unknown);
            return self.send_text(link, unknown.to_string()).await;
        }
        Flow::Continue
    }

    fn stamp_plain(&mut self, value: &mut Value) {
        self.event_seq += 1;
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "event_id".into(),
                json!(format!("event_c{}_{:05}", self.index, self.event_seq)),
            );
        }
    }

    /// Sends one text frame, counts it, then applies the faults due at the new count; a stalled
    /// connection sends nothing.
    async fn send_text(&mut self, link: &mut Link, text: String) -> Flow {
        if self.stalled {
            return Flow::Continue;
        }
        if !self.feed(link, text).await {
            return Flow::Stop;
        }
        self.after_frame(link).await
    }

    /// Queues one frame on the transport; counts and records it once it was accepted.
    async fn feed(&mut self, link: &mut Link, text: String) -> bool {
        let payload = Utf8Bytes::from(text);
        if !link.feed(payload.clone()).await {
            return false;
        }
        self.sent += 1;
        self.shared
            .record(self.index, Direction::FromServer, payload.as_str());
        true
    }

    /// Faults due after `self.sent` frames: terminal ones end the connection; injected frames
    /// are sent one by one, each counted, and the faults due at each new count are applied too.
    async fn after_frame(&mut self, link: &mut Link) -> Flow {
        let mut pending: VecDeque<(String, Option<CloseSpec>)> = VecDeque::new();
        loop {
            let n = self.sent;
            if self.faults.drop_after == Some(n) {
                tracing::debug!(connection = self.index, after = n, "fault: drop");
                link.drop_connection().await;
                return Flow::Stop;
            }
            if self.faults.reset_after == Some(n) {
                tracing::debug!(connection = self.index, after = n, "fault: reset");
                link.reset().await;
                return Flow::Stop;
            }
            if self.faults.stall_stream_after == Some(n) {
                self.arm_stream_stall();
            }
            if self.faults.stall_after == Some(n) {
                tracing::debug!(connection = self.index, after = n, "fault: stall");
                self.stalled = true;
                return Flow::Continue;
            }
            if let Some((at, spec)) = &self.faults.close_after
                && *at == n
            {
                let spec = spec.clone();
                link.close(&spec).await;
                return Flow::Stop;
            }
            for e in self.faults.errors.clone() {
                if e.after == n {
                    let mut ev = wire::error_event(&e.error, None);
                    self.stamp_plain(&mut ev);
                    pending.push_back((ev.to_string(), e.close.clone()));
                }
            }
            let malformed = self
                .faults
                .malformed_after
                .iter()
                .filter(|&&m| m == n)
                .count();
            for _ in 0..malformed {
                self.event_seq += 1;
                pending.push_back((wire::malformed_frame(self.event_seq), None));
            }
            if let Some((at, bytes)) = self.faults.oversized_frame_after
                && at == n
            {
                self.event_seq += 1;
                pending.push_back((fault_frames::oversized_event(bytes, self.event_seq), None));
            }
            let Some((text, then_close)) = pending.pop_front() else {
                return Flow::Continue;
            };
            if !self.feed(link, text).await {
                return Flow::Stop;
            }
            if let Some(spec) = then_close {
                link.close(&spec).await;
                return Flow::Stop;
            }
        }
    }

    /// A client event arrived (recorded under the connection index of the transport it came
    /// on), or the transport ended.
    fn on_frame(&mut self, inbound: Inbound) -> Flow {
        match inbound {
            Inbound::Closed => Flow::Stop,
            Inbound::Event { from, text } => {
                self.shared.record(from, Direction::FromClient, &text);
                self.on_client_event(&text);
                Flow::Continue
            }
            Inbound::Ignore | Inbound::Call(_) | Inbound::Wake => Flow::Continue,
        }
    }

    // ----- effects --------------------------------------------------------------------------

    fn apply_effect(&mut self, effect: &Effect, value: &mut Value) {
        let audio_format = self.active.as_ref().map(|a| a.format);
        match effect {
            Effect::None => {}
            Effect::Announced(o) => {
                if let Some(p) = self.progress_mut(*o) {
                    p.announced = true;
                }
            }
            Effect::AddToConversation(o) => {
                let item = value.get("item").cloned().unwrap_or(Value::Null);
                let id = item_id(&item);
                let audio = self.active.as_ref().is_some_and(ActiveResponse::audio)
                    && item.get("type").and_then(Value::as_str) == Some("message");
                let prev = self.conversation.insert(
                    Entry {
                        id,
                        item,
                        audio_ms_sent: audio.then_some(0),
                        input_audio_ms: 0,
                    },
                    None,
                );
                set_previous(value, prev);
                if let Some(p) = self.progress_mut(*o) {
                    p.in_conversation = true;
                }
            }
            Effect::Streamed {
                output,
                chars,
                audio_bytes,
            } => {
                let mut in_conv = None;
                if let Some(p) = self.progress_mut(*output) {
                    p.chars = *chars;
                    p.audio_bytes = *audio_bytes;
                    in_conv = p.in_conversation.then_some(*audio_bytes);
                }
                if let (Some(bytes), Some(format), Some(id)) =
                    (in_conv, audio_format, self.output_id(*output))
                    && let Some(entry) = self.conversation.get_mut(&id)
                    && entry.audio_ms_sent.is_some()
                {
                    entry.audio_ms_sent = Some(format.ms(bytes));
                }
            }
            Effect::Finished(o) => {
                let mut in_conv = false;
                if let Some(p) = self.progress_mut(*o) {
                    p.finished = true;
                    in_conv = p.in_conversation;
                }
                if in_conv
                    && let (Some(id), Some(item)) = (self.output_id(*o), value.get("item"))
                    && let Some(entry) = self.conversation.get_mut(&id)
                {
                    entry.item = item.clone();
                }
            }
            Effect::FillPrevious(o) => {
                if let Some(id) = self.output_id(*o) {
                    let prev = self
                        .conversation
                        .entries()
                        .iter()
                        .position(|e| e.id == id)
                        .and_then(|p| p.checked_sub(1))
                        .and_then(|p| self.conversation.entries().get(p))
                        .map(|e| e.id.clone());
                    set_previous(value, prev);
                }
            }
            Effect::ResponseDone { cancelled } => {
                if let Some(active) = self.active.take() {
                    if !cancelled && let Some((t, s)) = active.script {
                        lock(&self.progress).mark(t, s);
                    }
                    self.cancelled_step = if *cancelled { active.script } else { None };
                    self.last_input_tokens = active.input.total();
                    self.release_answered_transcripts(&active.id);
                }
                self.cancelling = false;
                if self.pending_barge_in {
                    self.finish_barge_in();
                } else if self.pending_auto_response {
                    self.pending_auto_response = false;
                    self.start_response(&Value::Null);
                }
            }
            Effect::BargeIn => self.barge_in(),
            // Handled by `send_event`, which holds the transport.
            Effect::DropConnection | Effect::Close(_) | Effect::StopPlayout => {}
        }
    }

    fn progress_mut(&mut self, o: usize) -> Option<&mut super::response::ItemProgress> {
        self.active.as_mut().and_then(|a| a.progress.get_mut(o))
    }

    fn output_id(&self, o: usize) -> Option<String> {
        self.active
            .as_ref()
            .and_then(|a| a.items.get(o))
            .map(|i| i.id.clone())
    }
}

fn item_id(item: &Value) -> String {
    item.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn set_previous(value: &mut Value, prev: Option<String>) {
    if let Some(obj) = value.as_object_mut() {
        obj.insert("previous_item_id".into(), json!(prev));
    }
}

/// Ends the TCP connection without a close frame: flush, FIN, then read until the client closes
/// (closing with unread data would turn the FIN into a reset and lose frames).
async fn drop_connection(ws: &mut Ws) {
    let _ = ws.flush().await;
    let tcp = ws.get_mut();
    let _ = tcp.shutdown().await;
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// Sends a close frame and waits (bounded) for the client's answer.
async fn close(ws: &mut Ws, spec: &CloseSpec) {
    let frame = CloseFrame {
        code: CloseCode::from(spec.code),
        reason: spec.reason.clone().into(),
    };
    let _ = ws.close(Some(frame)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
