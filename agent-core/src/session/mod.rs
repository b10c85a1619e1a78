//! The session runtime: connect, configure, and run a conversation with tools.
//!
//! [`Session::start`] opens the WebSocket (GA or beta dialect), sends `session.update`, waits
//! for `session.updated`, and then runs the session on its own task. The app talks to it through
//! a cloneable [`SessionHandle`] and reads one typed stream of [`SessionEvent`]s.
//!
//! Tool calls are gathered per response; all calls of one response run concurrently, each with
//! its own timeout, and each output goes back as a `function_call_output` with the same
//! `call_id`. Then exactly one `response.create` follows — only after that response's
//! `response.done`, and only when no other response is active (see [`sequencer`]).
//!
//! Every wait has a deadline and every retry a budget, so a broken or hostile server can
//! neither hang a session nor make it loop: responses that stall are cancelled and asked for
//! once more ([`watchdog`]), new connections come out of a [`ReconnectBudget`] that only a
//! completed response refills, the model gets at most `max_tool_rounds` rounds of tool calls
//! per turn, and a slow app never stops the socket from being read ([`outbox`]).

mod accounting;
pub mod approval;
pub mod barge_in;
pub mod compact;
pub mod dispatch;
mod events;
pub mod handoff;
pub mod log;
pub mod outbox;
pub mod ownership;
mod recent;
pub mod reconnect;
mod runner;
pub mod secret;
pub mod sequencer;
mod sink;
pub mod slow;
pub mod spans;
pub mod transport;
pub mod watchdog;

use std::{sync::Arc, time::Duration};

use tokio::sync::mpsc;

pub use approval::{Answerer, ApprovalPolicy, ApprovalRequest, Approver, Decision, Verdict};
pub use events::{ApprovalKind, CloseReason, NotRun, SessionEvent, TurnFailure};
pub use log::{ConversationLog, LOG_WINDOW};
pub use outbox::EventBuffer;
pub use ownership::{Ownership, PlatformHeld};
pub use reconnect::{ReconnectBudget, ReconnectPolicy};
pub use secret::Secret;
pub use sink::{CallStart, DurableWrite, HistorySink};
pub use slow::{Filler, SlowTools};
pub use spans::PlatformIds;
pub use transport::{ConnectOptions, TransportError};
pub use watchdog::ResponseDeadlines;

use crate::{
    protocol::{ClientEvent, EncodeError, Session as SessionConfigWire},
    tool::{ToolConfig, ToolRegistry},
};

/// Which way a wire frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From us to the server.
    Sent,
    /// From the server to us.
    Received,
}

impl Direction {
    /// `"sent"` or `"received"`, as written in trace files.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "sent",
            Direction::Received => "received",
        }
    }
}

/// Sees every frame on the wire, in both directions: how traces are written.
pub trait WireObserver: Send + Sync {
    /// One frame's text. Called on the session's task: keep it quick.
    fn frame(&self, direction: Direction, text: &str);

    /// A record that is not a wire frame — usage and cost, a budget threshold, a turn's
    /// latency, the session summary — so traces carry them beside the frames. Ignored unless
    /// implemented.
    fn note(&self, kind: &str, data: &serde_json::Value) {
        let _ = (kind, data);
    }
}

/// Everything a session needs to run.
#[derive(Clone)]
pub struct SessionConfig {
    /// The agent's name, passed to tools.
    pub agent: String,
    /// Where and how to connect.
    pub connect: ConnectOptions,
    /// The session object sent in `session.update`.
    pub session: SessionConfigWire,
    /// The tools this agent may call (the model is told about exactly these).
    pub tools: Arc<ToolRegistry>,
    /// Per-agent settings the tools read (`[tool_config.NAME]`, the data directory).
    pub tool_config: Arc<ToolConfig>,
    /// How long one tool call may run.
    pub tool_timeout: Duration,
    /// How long to wait for `session.updated`.
    pub ready_timeout: Duration,
    /// How to recover from dropped connections.
    pub reconnect: ReconnectPolicy,
    /// Roll over to a fresh session, at a quiet moment, after this long (the server ends
    /// sessions at 60 minutes).
    pub max_session_age: Duration,
    /// Items to start from (a resumed conversation), replayed into the session at start.
    pub history: Vec<(String, crate::protocol::Item)>,
    /// Receives every completed item, e.g. a durable store.
    pub history_sink: Option<Arc<dyn HistorySink>>,
    /// Fold old turns into a summary when replaying into a new session, to bound cost.
    pub compaction: Option<compact::Compaction>,
    /// Receives every wire frame, e.g. a trace writer.
    pub observer: Option<Arc<dyn WireObserver>>,
    /// Usage, cost and budget metering; `None` meters nothing (latency is measured anyway).
    pub cost: Option<crate::cost::CostSettings>,
    /// Where barge-in learns how much assistant audio was heard: the app's device reports, a
    /// real-time virtual speaker (the default), or "as received" (see [`barge_in`]).
    pub playback: crate::audio::PlaybackClock,
    /// How long a response may go silent, and how long a cancel may take (see [`watchdog`]).
    pub deadlines: ResponseDeadlines,
    /// Pings on a quiet socket, and when silence means the connection is dead.
    pub keepalive: Keepalive,
    /// Rounds of tool calls the model may make in one user turn before the turn is stopped
    /// (0 = no limit).
    pub max_tool_rounds: u32,
    /// How many events wait for the app before the session gives up on it (see [`outbox`]).
    pub event_buffer: EventBuffer,
    /// Calls an earlier run of this conversation recorded (a resumed conversation): a finished
    /// one is never run again, a started one is reported as interrupted.
    pub prior_calls: Vec<PriorCall>,
    /// This run goes on with a platform-held call another process held and lost (it died).
    /// The model made no call that process did not store, as far as anyone can tell: calls
    /// made while no sideband was attached never reached a process, and nothing in the
    /// protocol lists them. So the first thing the session does is tell the model (a system
    /// message; no response of its own, which could collide with one the platform is
    /// playing) that such calls were lost and to make them again if it still needs them: the
    /// next response, asked for by the adopted calls or by the caller's next turn, recovers
    /// them.
    pub taken_over: bool,
    /// Who holds the conversation and the audio: us (replay, rollover, truncate) or the
    /// platform of a SIP or WebRTC call (see [`ownership`]).
    pub ownership: Ownership,
    /// Which tools' calls wait for a person's approval, and for how long (see [`approval`]).
    pub approval: ApprovalPolicy,
    /// Who answers approval requests besides the app's event loop (a server's operator API);
    /// `None`: only the events and [`SessionHandle::approve`].
    pub approver: Option<Arc<dyn Approver>>,
    /// The agents this conversation may be handed to, the starting one among them; `None`
    /// when the agent has no `handoffs` (see [`handoff`]).
    pub team: Option<Arc<handoff::Team>>,
    /// Checks on the user's input and the assistant's output; `None` checks nothing.
    pub guardrails: Option<Arc<crate::guardrail::Guardrails>>,
    /// Background tools and the filler for slow calls (see [`slow`]).
    pub slow_tools: SlowTools,
    /// The ids the platform gave the call (Twilio's `CallSid`, OpenAI's `call_id`), recorded
    /// on the call's span (see [`spans`]); empty for a session the app opened itself.
    pub platform_ids: PlatformIds,
}

/// Keepalive: a ping every `ping_every`, and a connection that sent nothing at all (not even
/// a pong) for `dead_after` counts as dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// How often a ping goes out.
    pub ping_every: Duration,
    /// How long without any frame before the connection is considered dead.
    pub dead_after: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            ping_every: Duration::from_secs(20),
            dead_after: Duration::from_secs(60),
        }
    }
}

/// A tool call recorded by an earlier run of the conversation (see
/// [`HistorySink::call_started`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorCall {
    /// The model's id for the call.
    pub call_id: String,
    /// The tool.
    pub name: String,
    /// The arguments the model gave it (as recorded: known secrets scrubbed).
    pub arguments: String,
    /// Its output, when it finished; `None` when it started and never finished.
    pub output: Option<String>,
}

impl From<crate::history::CallRecord> for PriorCall {
    /// A call as the history recorded it: what a resumed (or taken-over) session starts from.
    fn from(call: crate::history::CallRecord) -> Self {
        PriorCall {
            call_id: call.call_id,
            name: call.name,
            arguments: call.arguments,
            output: call.output,
        }
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("agent", &self.agent)
            .field("connect", &self.connect)
            .field("tools", &self.tools.names())
            .field("tool_timeout", &self.tool_timeout)
            .field("reconnect", &self.reconnect)
            .field("max_session_age", &self.max_session_age)
            .field("history", &self.history.len())
            .field("deadlines", &self.deadlines)
            .field("max_tool_rounds", &self.max_tool_rounds)
            .field("ownership", &self.ownership)
            .field("platform_ids", &self.platform_ids)
            .finish_non_exhaustive()
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The WebSocket could not be opened.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The server refused the configuration.
    #[error("the server rejected the session{}: {message}", code.as_ref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Rejected {
        /// The server's error code.
        code: Option<String>,
        /// The server's message.
        message: String,
    },
    /// `session.updated` did not arrive in time.
    #[error(
        "the server did not confirm the session within {after:?}; is this a Realtime endpoint?"
    )]
    NotReady {
        /// The limit that passed.
        after: Duration,
    },
    /// The connection closed during setup.
    #[error("the connection closed during setup: {0}")]
    ConnectionLost(String),
    /// The server closed the connection with a code that means "do not retry" (a policy or
    /// authentication close).
    #[error("{0}")]
    Ended(String),
    /// The configuration cannot be expressed in the connection's dialect.
    #[error("cannot encode the session configuration: {0}")]
    Encode(#[source] EncodeError),
}

impl SessionError {
    /// Whether another attempt could succeed (network trouble, not a refusal).
    pub fn is_retryable(&self) -> bool {
        match self {
            SessionError::Transport(err) => err.is_retryable(),
            SessionError::NotReady { .. } | SessionError::ConnectionLost(_) => true,
            SessionError::Rejected { code, .. } => code.is_none(),
            SessionError::Encode(_) | SessionError::Ended(_) => false,
        }
    }

    /// The server's error code, if the server refused.
    pub fn code(&self) -> Option<String> {
        match self {
            SessionError::Rejected { code, .. } => code.clone(),
            _ => None,
        }
    }
}

/// A command from the app to its session.
#[derive(Debug)]
pub(crate) enum Command {
    Text(String),
    Commit,
    Respond,
    Send(Box<ClientEvent>),
    Cancel,
    Close,
}

/// Talks to a running session. Cheap to clone; the session ends when every handle is dropped.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    commands: mpsc::Sender<Command>,
    approvals: approval::Approvals,
}

/// The session has ended; the command was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session has ended")]
pub struct SessionEnded;

impl SessionHandle {
    /// Sends a user text message. If a response is active or tools are running it is queued
    /// and sent, with its `response.create`, as soon as the conversation is quiet.
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), SessionEnded> {
        self.command(Command::Text(text.into())).await
    }

    /// Commits the input audio buffer and asks for a response (push-to-talk), queued like text.
    pub async fn commit_audio(&self) -> Result<(), SessionEnded> {
        self.command(Command::Commit).await
    }

    /// Asks the model to respond without new input (e.g. to greet first), queued like text.
    pub async fn request_response(&self) -> Result<(), SessionEnded> {
        self.command(Command::Respond).await
    }

    /// Sends any client event as is, e.g. `input_audio_buffer.append` chunks.
    pub async fn send_event(&self, event: ClientEvent) -> Result<(), SessionEnded> {
        self.command(Command::Send(Box::new(event))).await
    }

    /// Cancels the active response, if there is one.
    pub async fn cancel_response(&self) -> Result<(), SessionEnded> {
        self.command(Command::Cancel).await
    }

    /// Closes the session cleanly; a [`SessionEvent::Closed`] follows.
    pub async fn close(&self) -> Result<(), SessionEnded> {
        self.command(Command::Close).await
    }

    /// Approves the call (or MCP approval request) `id` that a
    /// [`SessionEvent::ApprovalRequested`] announced: it runs now. `false` when nothing waits
    /// under that id (never asked, already answered, timed out, cancelled).
    pub fn approve(&self, id: &str) -> bool {
        self.approvals.decide(id, Decision::Approve)
    }

    /// Denies the call (or MCP approval request) `id`: it does not run, and the model reads
    /// that it was not approved, with `reason` if given. `false` when nothing waits under `id`.
    pub fn deny(&self, id: &str, reason: Option<String>) -> bool {
        self.approvals.decide(id, Decision::Deny { reason })
    }

    async fn command(&self, command: Command) -> Result<(), SessionEnded> {
        self.commands.send(command).await.map_err(|_| SessionEnded)
    }
}

/// A running session: its handle and its event stream.
#[derive(Debug)]
pub struct Session {
    /// Sends input and commands.
    pub handle: SessionHandle,
    /// Everything that happens, in order; ends after [`SessionEvent::Closed`].
    pub events: mpsc::Receiver<SessionEvent>,
    /// The server's id for this session.
    pub session_id: Option<String>,
    /// The agent that has the conversation at the start: the configured one, or, for a
    /// resumed conversation, the one its last handoff chose. [`SessionEvent::Handoff`]s
    /// tell of every change after.
    pub agent: String,
}

impl Session {
    /// Connects, configures the session and starts running it on a new task.
    ///
    /// A connection that fails for a retryable reason (network trouble, a drop during setup)
    /// is retried under the config's [`ReconnectPolicy`]. `config.history` is replayed first.
    pub async fn start(mut config: SessionConfig) -> Result<Session, SessionError> {
        // The log holds the resumed conversation from here on (and lets it leave memory once
        // the store holds it): the config, which lives as long as the session, does not.
        resume_handoffs(&mut config);
        let mut log = ConversationLog::from_items(std::mem::take(&mut config.history));
        // A client-held conversation is replayed into the new session, so its hanging calls
        // get their outputs in the replay. A platform-held one is not replayed: the platform
        // still holds it, calls waiting for outputs included (another node held the call and
        // died). Those calls are adopted: run (or answered from their records) as the calls of
        // one response, and the model is asked to go on.
        let (reconciled, adopted) = if config.ownership.is_platform_held() {
            (Vec::new(), log::unanswered_calls(&log, &config.prior_calls))
        } else {
            (
                log::reconcile_calls(&mut log, &config.prior_calls),
                Vec::new(),
            )
        };
        // Only a conversation we hold is replayed into the first connection: a platform-held
        // call's conversation is on the platform already (a call taken over from a node that
        // died), and a replay would duplicate every item of it.
        let conversation = if config.ownership.replays() {
            log.entries()
        } else {
            Vec::new()
        };
        let mut spans = spans::Spans::start(&config);
        // The first connection's retries come out of the same budget as later reconnects.
        let mut budget = ReconnectBudget::new(config.reconnect.clone());
        let established = loop {
            match runner::establish(&config, &conversation).await {
                Ok(established) => break established,
                Err(err) if err.is_retryable() => {
                    let Ok(delay) = budget.take(std::time::Instant::now(), false, fastrand::f64())
                    else {
                        spans.start_failed();
                        return Err(err);
                    };
                    tracing::warn!("connecting failed ({err}); retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                }
                Err(err) => {
                    spans.start_failed();
                    return Err(err);
                }
            }
        };
        drop(conversation);
        let session_id = established.session_id.clone();
        let model = established.model.clone();
        spans.session_started(session_id.as_deref());
        let (mut outbox, event_rx) = outbox::Outbox::new(config.event_buffer);
        let (command_tx, command_rx) = mpsc::channel(64);
        let approvals = approval::Approvals::default();
        // A fresh channel has room for this one.
        let _ = outbox.push(SessionEvent::Ready {
            session_id: session_id.clone(),
            model,
        });
        let agent = config.agent.clone();
        let runner = runner::Runner::new(
            config,
            established,
            session_id.clone().unwrap_or_default(),
            log,
            runner::AppSide {
                outbox,
                commands: command_rx,
                approvals: approvals.clone(),
            },
            budget,
            spans,
        );
        tokio::spawn(runner.run(reconciled, adopted));
        Ok(Session {
            handle: SessionHandle {
                commands: command_tx,
                approvals,
            },
            events: event_rx,
            session_id,
            agent,
        })
    }
}

/// A resumed conversation continues with the agent its last handoff chose (see
/// [`handoff::Team::resume`]).
fn resume_handoffs(config: &mut SessionConfig) {
    let Some(team) = config.team.clone() else {
        return;
    };
    let current = team.resume(&config.agent, config.history.iter().map(|(_, item)| item));
    if current != config.agent {
        tracing::info!(agent = %current, "the resumed conversation continues with its last handoff's agent");
        team.apply(config, &current);
    }
}
