//! The scripted Realtime server: a real WebSocket server on loopback that plays a [`Scenario`].
//!
//! It speaks the GA protocol, or beta (`OpenAI-Beta: realtime=v1`) when asked, and checks the
//! client the way the live API does. What it does with each client event:
//!
//! - **connect**: `session.created` with a realistic session object. Request headers are recorded
//!   with secrets redacted (`Authorization`, `api-key`, key-bearing subprotocols, key query
//!   parameters): only their presence is kept.
//! - **`session.update`**: GA requires `session.type` (`missing_required_parameter`, param
//!   `session.type`); unknown keys give `unknown_parameter` (a GA-shaped update to a beta server and
//!   the reverse both fail, as live). Otherwise the update is merged and `session.updated` carries
//!   the full session.
//! - **`conversation.item.create`**: ids are assigned when missing, `previous_item_id` is honoured,
//!   and the server answers `conversation.item.added` + `conversation.item.done` (GA) or
//!   `conversation.item.created` (beta). A `function_call_output` whose `call_id` matches no
//!   `function_call` in the conversation gets `invalid_tool_call_id` (the live code). A user
//!   message starts the next scripted turn (or the turn whose `user` text it equals, so a client
//!   that replays its history after a reconnect lands on the right turn).
//! - **`response.create`**: while a response is active → `conversation_already_has_active_response`
//!   and a violation. When a completed `function_call` in the conversation still lacks its output,
//!   a violation is recorded and the response is played anyway (as the live API would). The next
//!   scripted model step of the current turn is played as a full event sequence ending in
//!   `response.done` with `usage`. When the turn has no step left, the reply is
//!   `(no scripted reply)` and a violation is recorded. An out-of-band response
//!   (`conversation: "none"`) leaves the conversation as it is (`conversation_id` null in
//!   `response.created`/`.done`, no `conversation.item.*` events); one whose `metadata.purpose`
//!   is `filler` says `One moment.` and leaves the scenario's position where it is. A user
//!   message that brings a background call's result (`[result of background call ...`) stays in
//!   the current turn unless a turn's `user` text is that very message: its answer is the
//!   turn's next model step.
//! - **`response.cancel`**: stops streaming; open items end `incomplete`, `response.done` has
//!   status `cancelled`, reason `client_cancelled`. Without an active response:
//!   `response_cancel_not_active`.
//! - **`input_audio_buffer.*`**: bytes are counted in the session's input format; a commit of less
//!   than 100 ms gives `input_audio_buffer_commit_empty`; otherwise `input_audio_buffer.committed`
//!   and a user item with `input_audio` (a new turn). With `server_vad`/`semantic_vad` turn
//!   detection (the GA default), a deterministic energy detector finds speech in the appended
//!   audio (RMS above `threshold` × 2 % of full scale, in 10 ms frames) and sends
//!   `speech_started` (cancelling an active response with reason `turn_detected` when
//!   `interrupt_response` is on), then `speech_stopped` after `silence_duration_ms` of silence,
//!   commits, and answers when `create_response` is on (after the active response, if any).
//!   With input transcription on, the transcript of a user audio item is the scripted turn's
//!   `user` text (`...input_audio_transcription.delta` + `.completed`, with `usage` in GA), sent
//!   right after the commit, or after the answer's `response.done` with
//!   [`ServerConfig::late_transcription()`].
//! - **scripted barge-in** (`barge_in_after_ms` on a model step): once that much of the step's
//!   audio was sent, the server plays the user speaking the next turn: `speech_started`, a
//!   `turn_detected` cancel when `interrupt_response` is on, then `speech_stopped`, the committed
//!   user item, and the next response when `create_response` is on. It needs turn detection in
//!   the session; without it the barge-in is skipped.
//! - **`conversation.item.truncate`**: `conversation.item.truncated`; past the audio actually sent
//!   for that item → `invalid_value` with the live message (`Audio content of Xms is already
//!   shorter than Yms`) and a violation.
//! - **unknown event type** → `invalid_value` (param `type`); **malformed JSON** → `invalid_json`;
//!   **no `type`** → `missing_required_parameter`. `conversation.item.retrieve` / `.delete` and
//!   `output_audio_buffer.clear` are answered too; an unknown item id gives `invalid_value`.
//!
//! Ids are deterministic so two runs of a script give identical histories: response items are
//! `item_t{turn}s{step}o{output}`, call ids are `call_` + the call's ordinal in the scenario
//! (`call_0001`, ...), a user item the server names is `item_t{turn}_user`, an output item
//! `item_{call_id}_output` (turns and steps count from 0). Response ids (`resp_0001`, ...) count
//! across the server and are never reused. A step counts as played once its `response.done` was
//! sent; a response cut off by a drop or a cancel is played again, with the same item and call
//! ids, when the client asks again.
//!
//! `response.done.usage` is deterministic: text is 1 token per 4 characters (+4 per item), user
//! audio 1 token per 100 ms, assistant audio 1 per 50 ms; input covers instructions, tools and the
//! whole conversation; `cached_tokens` is the previous response's input rounded down to a multiple
//! of 64. A step's `usage` table is merged over it. Assistant audio is a sine tone in the session's
//! output format (PCM16 24 kHz, G.711 μ-law or A-law), one `chunk_ms` chunk per delta, its length
//! `audio_ms` or `ms_per_char` × the text length, with transcript deltas interleaved.
//!
//! Events go out as fast as possible unless [`ServerConfig::event_delay`] (every event),
//! [`ServerConfig::response_latency`] (before a response's first output) or a fault delay is set.
//! In a GA `transcription` session, `response.create` gives `invalid_value`.
//!
//! Two scopes: with [`ScriptScope::Shared`] (the default) the script position is kept across
//! connections, so a client that reconnects and replays its history continues the same
//! conversation; with [`ScriptScope::PerConnection`] every connection starts the scenario afresh
//! (load tests with many sessions).
//!
//! Every error answer to a client mistake is also recorded as a violation (see
//! [`ServerHandle::violations`]), except the benign races `response_cancel_not_active` and an
//! empty commit while server VAD is on. Client events are also counted per type
//! ([`ServerHandle::count_received`]), even when frames are not recorded.
//!
//! Every `conversation.item.added` (GA) / `conversation.item.created` (beta) carries the
//! `previous_item_id` of the item before it at the moment it is sent (user items, response
//! output items and client-created items alike), so a client that places items by it rebuilds
//! the server's conversation exactly.
//!
//! ## Faults
//!
//! [`ConnectionFaults`] (per connection, see [`Faults`]) breaks the server on purpose. Positions
//! count the frames sent on the connection. Besides drops, resets, close codes, delays, injected
//! errors, noise and malformed frames, the knobs for hostile servers are:
//!
//! - **`stall_after(n)`**: after `n` frames nothing more is sent (replies, streams and injected
//!   frames alike), but the socket is still read: pings get pongs and client events are recorded
//!   until the client closes.
//! - **`stall_stream_after(n)`**: the active response (or the next one) stops streaming while
//!   replies keep flowing; `response.cancel` ends it with status `cancelled` and later responses
//!   stream normally.
//! - **`fail_response_create(error, times)`**: the first `times` `response.create` get only an
//!   `error` (echoing the client's `event_id`) and start nothing; not a violation.
//! - **`malformed_response_done(kind)`**: every `response.done` gets float or negative token
//!   counts, a non-list `output` or a non-object `usage` ([`MalformedDone`]); the response id,
//!   status, conversation and script progress stay as they are.
//! - **`drop_on_response_create()`**: a `response.create` drops the TCP connection before
//!   `response.created`; nothing is marked played.
//! - **`session_expired_on_request()`**: `session.update` works, every other client event gets
//!   `session_expired` and a close 1000.
//! - **`oversized_frame_after(n, bytes)`**: one valid event of exactly `bytes` bytes; the
//!   server's writes have no size limit, so the client's read limit decides what happens.
//! - **`tool_loop(name)`**: every response is a call of `name` with `{}` and a fresh
//!   `call_loop_NNNN` id, ignoring the script; the call enters the conversation so its output is
//!   accepted.

pub(crate) mod audio;
pub mod calls;
mod connection;
mod conversation;
mod fault_frames;
mod faults;
pub(crate) mod media_call;
pub(crate) mod packet_vad;
mod playlist;
mod response;
pub(crate) mod session;
mod usage;
mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::scenario::Scenario;

pub use faults::{CloseSpec, ConnectionFaults, ErrorSpec, Faults, InjectedError, MalformedDone};
pub use playlist::{PlaylistHandle, PlaylistServer};

/// What the server says for a filler response (out of band, `metadata.purpose = "filler"`).
pub const FILLER_LINE: &str = "One moment.";

/// Which protocol names the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DialectMode {
    /// Always GA (`gpt-realtime`), whatever the client sends.
    Ga,
    /// Always the beta wire protocol (`response.audio.delta`, flat session, ...).
    Beta,
    /// Beta when the client sends `OpenAI-Beta: realtime=v1`, GA otherwise (like the live API).
    #[default]
    Auto,
}

/// The protocol a connection actually speaks, after [`DialectMode::Auto`] was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// GA names and session shape.
    Ga,
    /// Beta names and flat session shape.
    Beta,
}

/// Whether the scripted conversation continues across connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScriptScope {
    /// One conversation that survives reconnects: a step played on one connection is not played
    /// again on the next (reconnect and fault tests).
    #[default]
    Shared,
    /// Every connection plays the scenario from the start (independent sessions, load tests).
    PerConnection,
}

/// Whether the server checks the API key, to test fatal authentication errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthCheck {
    /// Accept any or no credentials.
    #[default]
    Off,
    /// Require `Authorization: Bearer <key>` (or `api-key: <key>`); otherwise send an
    /// `invalid_api_key` error and close with code 3000, as the live API does.
    Bearer(String),
}

/// How synthetic assistant audio is made.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioSettings {
    /// Audio length per character of `say` text when the step gives no `audio_ms`.
    pub ms_per_char: u32,
    /// Audio per `response.output_audio.delta`.
    pub chunk_ms: u32,
    /// Frequency of the sine tone.
    pub tone_hz: f32,
    /// Peak amplitude of the tone, 0..1 of full scale.
    pub amplitude: f32,
}

impl Default for AudioSettings {
    fn default() -> Self {
        AudioSettings {
            ms_per_char: 60,
            chunk_ms: 100,
            tone_hz: 400.0,
            amplitude: 0.2,
        }
    }
}

/// Everything the server needs; build with [`ServerConfig::new`] and the setters.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The conversation to play.
    pub scenario: Scenario,
    /// Which protocol names to speak.
    pub dialect: DialectMode,
    /// Faults to inject, per connection.
    pub faults: Faults,
    /// Synthetic audio settings.
    pub audio: AudioSettings,
    /// Pause before every server event (0 = as fast as possible).
    pub event_delay: Duration,
    /// Pause between `response.created` and the first output, to model time to first token.
    pub response_latency: Duration,
    /// Whether the conversation continues across connections.
    pub script_scope: ScriptScope,
    /// Keep every frame for [`ServerHandle::received`] / [`ServerHandle::log`]; turn off for load
    /// tests to keep memory flat (counts and violations are kept either way).
    pub record_frames: bool,
    /// Optional API-key check.
    pub auth: AuthCheck,
    /// Model name in the session when the URL has no `?model=`.
    pub model: String,
    /// Port on 127.0.0.1; 0 picks a free one (what tests want).
    pub port: u16,
    /// Send input audio transcripts after the answer's `response.done` instead of right after
    /// the commit; see [`ServerConfig::late_transcription()`].
    pub late_transcription: bool,
    /// The calls of a fake platform, when this server is its sideband: a connection with
    /// `?call_id=` attaches to one of them (see [`calls`]).
    pub calls: Option<Arc<calls::PlatformCalls>>,
    /// Told of every audio append and audio delta as it passes; see [`AudioProbe`].
    pub audio_probe: Option<Arc<dyn AudioProbe>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            scenario: Scenario::default(),
            dialect: DialectMode::Auto,
            faults: Faults::default(),
            audio: AudioSettings::default(),
            event_delay: Duration::ZERO,
            response_latency: Duration::ZERO,
            script_scope: ScriptScope::Shared,
            record_frames: true,
            auth: AuthCheck::Off,
            model: "gpt-realtime".into(),
            port: 0,
            late_transcription: false,
            calls: None,
            audio_probe: None,
        }
    }
}

impl ServerConfig {
    /// A config that plays `scenario` with defaults for everything else.
    pub fn new(scenario: Scenario) -> Self {
        ServerConfig {
            scenario,
            ..Self::default()
        }
    }

    /// Sets the dialect.
    pub fn dialect(mut self, dialect: DialectMode) -> Self {
        self.dialect = dialect;
        self
    }

    /// Sets the faults.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the pause before every event.
    pub fn event_delay(mut self, delay: Duration) -> Self {
        self.event_delay = delay;
        self
    }

    /// Sets the pause before the first output of each response.
    pub fn response_latency(mut self, latency: Duration) -> Self {
        self.response_latency = latency;
        self
    }

    /// Sets the port on 127.0.0.1 (0 = any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets the script scope.
    pub fn script_scope(mut self, scope: ScriptScope) -> Self {
        self.script_scope = scope;
        self
    }

    /// Turns frame recording on or off.
    pub fn record_frames(mut self, record: bool) -> Self {
        self.record_frames = record;
        self
    }

    /// Sets the API-key check.
    pub fn auth(mut self, auth: AuthCheck) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the audio settings.
    pub fn audio(mut self, audio: AudioSettings) -> Self {
        self.audio = audio;
        self
    }

    /// Serves the sidebands of `calls`: a connection with `?call_id=` attaches to that call
    /// (refused with 404 unless it was accepted and still runs), starts from its session and
    /// conversation, and gets no audio deltas.
    pub fn platform_calls(mut self, calls: Arc<calls::PlatformCalls>) -> Self {
        self.calls = Some(calls);
        self
    }

    /// Tells `probe` of every audio append received and every audio delta sent, as they pass
    /// (benchmarks time audio through a server under test with it).
    pub fn audio_probe(mut self, probe: Arc<dyn AudioProbe>) -> Self {
        self.audio_probe = Some(probe);
        self
    }

    /// Turns late transcripts on or off (off by default).
    ///
    /// Live, the transcript of the user's audio often arrives after the model already answered,
    /// and a client must still attach it to the right item. When on, the
    /// `...input_audio_transcription.delta` / `.completed` events of a committed user audio item
    /// are sent right after the `response.done` of the response that answers the turn (the
    /// automatic one under server VAD, or the next one the client creates). When no response
    /// picks them up (the next client event is not a `response.create`, or that create fails),
    /// they go out with that client event; in a transcription session, at once. The user item
    /// itself (`conversation.item.added` / `.created`) is still announced at commit time.
    pub fn late_transcription(mut self, on: bool) -> Self {
        self.late_transcription = on;
        self
    }
}

/// Watches audio pass through the server, on the connection's task: keep it cheap.
///
/// A load benchmark stamps its callers' audio, reads the stamps back in
/// [`AudioProbe::appended`] and times the answer's audio from [`AudioProbe::delta_sent`], with
/// one clock for both ends.
pub trait AudioProbe: std::fmt::Debug + Send + Sync {
    /// The decoded audio of an `input_audio_buffer.append` that arrived on `connection`.
    fn appended(&self, connection: usize, audio: &[u8]);
    /// An audio delta is in `connection`'s socket buffer and about to be flushed.
    fn delta_sent(&self, connection: usize);
}

/// Which way a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → server.
    FromClient,
    /// Server → client.
    FromServer,
}

/// One client frame, for conformance checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedEvent {
    /// Connection index, 0 for the first.
    pub connection: usize,
    /// The frame text as received.
    pub raw: String,
    /// The parsed JSON, `None` when it did not parse.
    pub value: Option<Value>,
}

/// One frame in either direction, in the order the server saw or sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedFrame {
    /// Connection index, 0 for the first.
    pub connection: usize,
    /// Which way it went.
    pub direction: Direction,
    /// The frame text.
    pub raw: String,
    /// The parsed JSON, `None` for malformed frames.
    pub value: Option<Value>,
}

/// What the server learned from one connection's HTTP upgrade request (secrets redacted).
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRequest {
    /// Connection index.
    pub connection: usize,
    /// Request path, e.g. `/v1/realtime`.
    pub path: String,
    /// Query string with key-like parameters redacted, e.g. `model=gpt-realtime`.
    pub query: Option<String>,
    /// Header names (lower case) and values; secret values read `[redacted]`.
    pub headers: Vec<(String, String)>,
    /// Whether an `Authorization` or `api-key` header was present.
    pub has_authorization: bool,
    /// The dialect the connection speaks.
    pub dialect: Dialect,
}

impl ConnectionRequest {
    /// The value of a header (case-insensitive name), redacted if secret.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Per-turn count of played model steps; shared across connections in [`ScriptScope::Shared`].
#[derive(Debug, Default)]
pub(crate) struct ScriptProgress {
    steps_done: Vec<usize>,
}

impl ScriptProgress {
    pub(crate) fn done(&self, turn: usize) -> usize {
        self.steps_done.get(turn).copied().unwrap_or(0)
    }

    pub(crate) fn mark(&mut self, turn: usize, step: usize) {
        if self.steps_done.len() <= turn {
            self.steps_done.resize(turn + 1, 0);
        }
        if let Some(done) = self.steps_done.get_mut(turn) {
            *done = (*done).max(step + 1);
        }
    }
}

/// State shared by the accept loop, the connections and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    /// `call_` ordinals of each scripted call: `call_ids[turn][step][call]`.
    pub(crate) call_ids: Vec<Vec<Vec<String>>>,
    connections: AtomicUsize,
    responses: AtomicU64,
    log: Mutex<Vec<LoggedFrame>>,
    violations: Mutex<Vec<String>>,
    requests: Mutex<Vec<ConnectionRequest>>,
    sent_counts: Mutex<Vec<usize>>,
    /// Client events per `type`, kept even when frames are not recorded.
    received_types: Mutex<HashMap<String, usize>>,
    /// Accepted `conversation.item.create` items per item `type` (benchmarks check the work).
    received_items: Mutex<HashMap<String, usize>>,
    /// Server events per `type` handed to the socket, kept even when frames are not recorded.
    sent_types: Mutex<HashMap<String, usize>>,
    /// Audio bytes decoded from every `input_audio_buffer.append`, over all connections.
    received_audio_bytes: AtomicU64,
    /// `tool_loop` calls handed out so far (call ids are never reused).
    loop_calls: AtomicU64,
    pub(crate) progress: Arc<Mutex<ScriptProgress>>,
    /// One tone chunk per output format, shared by every connection.
    tones: Mutex<Vec<Arc<audio::ToneChunk>>>,
}

/// Adds one to `kind`'s count.
fn count(counts: &Mutex<HashMap<String, usize>>, kind: &str) {
    let mut counts = lock(counts);
    match counts.get_mut(kind) {
        Some(n) => *n += 1,
        None => {
            counts.insert(kind.to_string(), 1);
        }
    }
}

/// Locks a mutex even if a panicking thread poisoned it: the data is plain records.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn new(config: ServerConfig) -> Self {
        let mut n = 0;
        let call_ids = config
            .scenario
            .turns
            .iter()
            .map(|t| {
                t.model
                    .iter()
                    .map(|s| {
                        s.calls
                            .iter()
                            .map(|_| {
                                n += 1;
                                format!("call_{n:04}")
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Shared {
            config,
            call_ids,
            connections: AtomicUsize::new(0),
            responses: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
            requests: Mutex::new(Vec::new()),
            sent_counts: Mutex::new(Vec::new()),
            received_types: Mutex::new(HashMap::new()),
            received_items: Mutex::new(HashMap::new()),
            sent_types: Mutex::new(HashMap::new()),
            received_audio_bytes: AtomicU64::new(0),
            loop_calls: AtomicU64::new(0),
            progress: Arc::new(Mutex::new(ScriptProgress::default())),
            tones: Mutex::new(Vec::new()),
        }
    }

    /// The tone chunk for an output format, made once.
    pub(crate) fn tone(&self, format: audio::AudioFormat) -> Arc<audio::ToneChunk> {
        let mut tones = lock(&self.tones);
        if let Some(t) = tones.iter().find(|t| t.format == format) {
            return Arc::clone(t);
        }
        let t = Arc::new(audio::ToneChunk::new(format, &self.config.audio));
        tones.push(Arc::clone(&t));
        t
    }

    pub(crate) fn next_response_id(&self) -> String {
        let n = self.responses.fetch_add(1, Ordering::Relaxed) + 1;
        format!("resp_{n:04}")
    }

    /// The next `tool_loop` call id: `call_loop_0001`, `call_loop_0002`, ...
    pub(crate) fn next_loop_call_id(&self) -> String {
        let n = self.loop_calls.fetch_add(1, Ordering::Relaxed) + 1;
        format!("call_loop_{n:04}")
    }

    /// Counts one client event of type `kind`.
    pub(crate) fn note_received(&self, kind: &str) {
        let mut counts = lock(&self.received_types);
        match counts.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                counts.insert(kind.to_string(), 1);
            }
        }
    }

    /// Counts audio bytes that arrived in an `input_audio_buffer.append`.
    pub(crate) fn note_received_audio(&self, bytes: usize) {
        self.received_audio_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts one accepted client item of type `kind` (`message`, `function_call_output`, ...).
    pub(crate) fn note_received_item(&self, kind: &str) {
        count(&self.received_items, kind);
    }

    /// Counts one server event of type `kind` that went out.
    pub(crate) fn note_sent(&self, kind: &str) {
        count(&self.sent_types, kind);
    }

    pub(crate) fn violation(&self, connection: usize, message: String) {
        tracing::debug!(connection, %message, "client protocol violation");
        lock(&self.violations).push(format!("connection {connection}: {message}"));
    }

    pub(crate) fn record(&self, connection: usize, direction: Direction, raw: &str) {
        if direction == Direction::FromServer {
            let mut counts = lock(&self.sent_counts);
            if counts.len() <= connection {
                counts.resize(connection + 1, 0);
            }
            if let Some(c) = counts.get_mut(connection) {
                *c += 1;
            }
        }
        if self.config.record_frames {
            let value = serde_json::from_str(raw).ok();
            lock(&self.log).push(LoggedFrame {
                connection,
                direction,
                raw: raw.to_string(),
                value,
            });
        }
    }

    pub(crate) fn add_request(&self, request: ConnectionRequest) {
        lock(&self.requests).push(request);
    }
}

/// Starts scripted servers; see the module docs for the behaviour.
#[derive(Debug)]
pub struct ScriptedServer;

impl ScriptedServer {
    /// Binds 127.0.0.1 (on `config.port`, or a free port) and starts serving; needs a running Tokio runtime.
    ///
    /// The server runs until the handle is shut down or dropped.
    pub fn start(config: ServerConfig) -> std::io::Result<ServerHandle> {
        let (listener, addr) = bind(config.port)?;
        let runtime = tokio::runtime::Handle::current();
        let shared = Arc::new(Shared::new(config));
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = runtime.spawn(accept_loop(listener, vec![Arc::clone(&shared)], stop_rx));
        Ok(ServerHandle {
            addr,
            shared,
            stop: stop_tx,
            task: Some(task),
        })
    }
}

/// Binds 127.0.0.1:`port` (0 = a free port) inside the current Tokio runtime.
fn bind(port: u16) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        std::io::Error::other(
            "a scripted server needs a running Tokio runtime; start it inside #[tokio::main] or #[tokio::test]",
        )
    })?;
    let std_listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let _guard = runtime.enter();
    Ok((tokio::net::TcpListener::from_std(std_listener)?, addr))
}

/// Accepts connections until stopped. Connection `k` is served by `servers[k % len]`, with
/// that server's own connection index (so each server counts its connections from 0).
async fn accept_loop(
    listener: tokio::net::TcpListener,
    servers: Vec<Arc<Shared>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    let mut accepted_so_far = 0usize;
    loop {
        tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let shared = &servers[accepted_so_far % servers.len()];
                    accepted_so_far += 1;
                    let index = shared.connections.fetch_add(1, Ordering::SeqCst);
                    tracing::debug!(index, %peer, "scripted server: connection");
                    let _ = stream.set_nodelay(true);
                    tasks.spawn(connection::serve(stream, index, Arc::clone(shared)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "scripted server: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

/// Resolves once the stop flag is set or the handle is gone.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        if *stop.borrow_and_update() {
            return;
        }
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Starts the sessions of WebRTC calls on one server.
#[derive(Debug, Clone)]
pub(crate) struct MediaCalls(Arc<Shared>);

impl MediaCalls {
    /// Starts the session of WebRTC call `call_id`: the peer's end, and the session's task to
    /// spawn. `None` unless the server holds a platform's calls.
    pub(crate) fn start(
        &self,
        call_id: &str,
        session: Value,
    ) -> Option<(
        media_call::PeerEnds,
        impl std::future::Future<Output = ()> + Send + 'static,
    )> {
        media_call::start(&self.0, call_id, session)
    }
}

/// A running server; dropping it stops the server and all its connections.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The URL a client connects to: `ws://127.0.0.1:PORT/v1/realtime`.
    pub fn url(&self) -> String {
        format!("ws://{}/v1/realtime", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What starts the sessions of WebRTC calls on this server (see [`media_call`]).
    pub(crate) fn media_calls(&self) -> MediaCalls {
        MediaCalls(Arc::clone(&self.shared))
    }

    /// Every client frame so far, in arrival order (empty when `record_frames` is off).
    pub async fn received(&self) -> Vec<ReceivedEvent> {
        lock(&self.shared.log)
            .iter()
            .filter(|f| f.direction == Direction::FromClient)
            .map(|f| ReceivedEvent {
                connection: f.connection,
                raw: f.raw.clone(),
                value: f.value.clone(),
            })
            .collect()
    }

    /// Every frame in both directions, in the order the server saw or sent them.
    pub async fn log(&self) -> Vec<LoggedFrame> {
        lock(&self.shared.log).clone()
    }

    /// Protocol mistakes the client made, in plain words, prefixed with the connection index.
    pub async fn violations(&self) -> Vec<String> {
        lock(&self.shared.violations).clone()
    }

    /// The upgrade requests seen so far (secrets redacted).
    pub async fn requests(&self) -> Vec<ConnectionRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many frames the server sent on each connection (index = connection), injected ones
    /// included; the fault matrix uses it to know how many drop positions exist.
    pub async fn sent_counts(&self) -> Vec<usize> {
        lock(&self.shared.sent_counts).clone()
    }

    /// How many connections were accepted so far: TCP connections, and the sessions of a fake
    /// platform's WebRTC calls (each records its data channel's events under its own index).
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// How many client events of this `type` arrived so far, over all connections, counted
    /// even when `record_frames` is off (frames that are not JSON or lack a `type` are not).
    pub fn count_received(&self, event_type: &str) -> usize {
        lock(&self.shared.received_types)
            .get(event_type)
            .copied()
            .unwrap_or(0)
    }

    /// How many audio bytes arrived in `input_audio_buffer.append` events so far, over all
    /// connections (decoded, in the session's input format). Load tests compare it with the
    /// audio their callers sent to count frames lost on the way.
    pub fn received_audio_bytes(&self) -> u64 {
        self.shared.received_audio_bytes.load(Ordering::Relaxed)
    }

    /// How many accepted `conversation.item.create` items had this item `type` (e.g.
    /// `function_call_output`), over all connections. Benchmarks use it to check that each
    /// client answered every call, counted even when `record_frames` is off.
    pub fn count_received_items(&self, item_type: &str) -> usize {
        lock(&self.shared.received_items)
            .get(item_type)
            .copied()
            .unwrap_or(0)
    }

    /// How many server events of this `type` went out so far (e.g. `response.done`,
    /// `response.output_audio.delta`), over all connections, counted even when
    /// `record_frames` is off. Benchmarks use it to check the work each client was given.
    pub fn count_sent(&self, event_type: &str) -> usize {
        lock(&self.shared.sent_types)
            .get(event_type)
            .copied()
            .unwrap_or(0)
    }

    /// Stops accepting, closes every connection and waits until all tasks ended.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
