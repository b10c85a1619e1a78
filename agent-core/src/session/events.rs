//! What a running session tells the app: one typed stream instead of 50+ wire events.

use std::time::Duration;

use crate::{cost::CostReport, latency::TurnLatency, protocol::Usage};

/// Something that happened in a session, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The server accepted the configuration; input may be sent.
    Ready {
        /// The server's session id, if it sent one.
        session_id: Option<String>,
        /// The model the server runs.
        model: Option<String>,
    },
    /// The model started a response.
    ResponseStarted {
        /// The response's id.
        response_id: String,
    },
    /// A piece of a text reply.
    TextDelta {
        /// The response it belongs to.
        response_id: String,
        /// The assistant item it belongs to.
        item_id: String,
        /// The new text.
        delta: String,
    },
    /// A piece of the transcript of a spoken reply.
    TranscriptDelta {
        /// The response it belongs to.
        response_id: String,
        /// The assistant item it belongs to.
        item_id: String,
        /// The new text.
        delta: String,
    },
    /// Audio of a spoken reply, decoded from base64, in the session's output format.
    Audio {
        /// The response it belongs to.
        response_id: String,
        /// The assistant item it belongs to.
        item_id: String,
        /// Raw bytes: PCM16 little-endian, or G.711 bytes.
        data: Vec<u8>,
    },
    /// The transcript of something the user said.
    UserTranscript {
        /// The user item.
        item_id: String,
        /// What the user said.
        text: String,
    },
    /// A piece of the live transcript of the user's audio (the full text follows in
    /// [`SessionEvent::UserTranscript`]).
    UserTranscriptDelta {
        /// The user item.
        item_id: String,
        /// The new text.
        delta: String,
    },
    /// The user spoke over the assistant: stop playing `item_id` now. The conversation was
    /// truncated at `audio_end_ms`, what the user heard (see `session::barge_in`).
    Interrupted {
        /// The assistant item whose playback stops.
        item_id: String,
        /// How much of its audio was heard, in ms.
        audio_end_ms: u64,
    },
    /// The user started speaking (server VAD).
    SpeechStarted {
        /// The user item being recorded.
        item_id: String,
        /// Milliseconds into the input audio.
        audio_start_ms: u64,
    },
    /// The user stopped speaking (server VAD).
    SpeechStopped {
        /// The user item.
        item_id: String,
        /// Milliseconds into the input audio.
        audio_end_ms: u64,
    },
    /// The model handed the conversation to another agent of its team (a `transfer_to_NAME`
    /// call): from now on that agent's instructions and tools apply.
    Handoff {
        /// The transfer call's id.
        call_id: String,
        /// The agent that had the conversation.
        from: String,
        /// The agent that has it now.
        to: String,
    },
    /// A guardrail stopped the user's input or the assistant's answer. An answer stopped
    /// mid-stream is cancelled (its audio cut at what was heard, see `Interrupted`); the app
    /// should drop what it showed of `item_id`. The model is told why and answers again.
    GuardrailTripped {
        /// The guardrail's name.
        guardrail: String,
        /// Input (the user's text or transcript) or output (the assistant's answer).
        stage: crate::guardrail::GuardrailStage,
        /// Why it tripped.
        reason: String,
        /// The item it stopped: the user's spoken item, or the assistant's answer; `None` for
        /// typed text, which was never sent.
        item_id: Option<String>,
    },
    /// A tool call started running.
    ToolCallStarted {
        /// The model's id for the call.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The arguments, as the model wrote them (JSON text).
        arguments: String,
    },
    /// A tool call finished; its output has been sent to the model.
    ToolCallFinished {
        /// The model's id for the call.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The arguments, as the model wrote them.
        arguments: String,
        /// How long the call took.
        duration: Duration,
        /// The output the model read, or the error text it read instead.
        result: Result<String, String>,
    },
    /// A call waits for a person's approval: answer with
    /// [`SessionHandle::approve`](super::SessionHandle::approve) or
    /// [`deny`](super::SessionHandle::deny) and this `id` within `timeout`; no answer is a
    /// denial. The response's other calls run meanwhile.
    ApprovalRequested {
        /// The call's id (a function call's `call_id`, an MCP request's item id): answer it.
        id: String,
        /// A tool of the agent, or a hosted MCP server's.
        kind: ApprovalKind,
        /// The tool's name.
        name: String,
        /// The arguments, as the model wrote them (JSON text).
        arguments: String,
        /// How long the call waits.
        timeout: Duration,
    },
    /// A wait for approval ended: `approved` calls run, the others were answered with why.
    ApprovalDecided {
        /// The id the request had.
        id: String,
        /// The tool's name.
        name: String,
        /// Whether the call runs.
        approved: bool,
        /// What happened: "approved", "denied: ...", "no answer within 60 s", ...
        how: String,
    },
    /// A function call the model made was answered without running its tool (see
    /// [`NotRun`]); `output` is what the model reads.
    ToolCallNotRun {
        /// The model's id for the call.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The arguments, as the model wrote them (JSON text).
        arguments: String,
        /// Why the tool did not run.
        why: NotRun,
        /// The output sent to the model.
        output: String,
    },
    /// A response ended.
    ResponseDone {
        /// The response's id.
        response_id: String,
        /// `completed`, `cancelled`, `failed` or `incomplete`.
        status: String,
        /// Token usage, when the server reported it.
        usage: Option<Usage>,
    },
    /// What a response (or an input transcription) used and cost, with the session's running
    /// total. Follows the [`SessionEvent::ResponseDone`] it belongs to.
    Cost(CostReport),
    /// Spending passed 80 % of `max_cost_usd`.
    BudgetWarning {
        /// Spent so far, US dollars.
        spent_usd: f64,
        /// The budget, US dollars.
        limit_usd: f64,
    },
    /// Spending reached `max_cost_usd`: the current answer finishes, no new input is sent, and
    /// the session closes ([`CloseReason::BudgetExhausted`]) once it is quiet.
    BudgetExhausted {
        /// Spent so far, US dollars.
        spent_usd: f64,
        /// The budget, US dollars.
        limit_usd: f64,
    },
    /// A turn ended (the conversation went quiet, or the next turn began): its latencies.
    TurnLatency(TurnLatency),
    /// The turn ended without a complete answer. The session goes on (queued input is sent),
    /// but the app should tell the user: a run whose turns did not all complete is not a
    /// success.
    TurnFailed {
        /// What went wrong, in words for the user.
        failure: TurnFailure,
    },
    /// Nothing is in flight: no response, no running tool, no queued input.
    Idle,
    /// The server reported an error. Fatal errors are followed by [`SessionEvent::Closed`].
    Error {
        /// The server's error code, e.g. `invalid_api_key`.
        code: Option<String>,
        /// The server's message.
        message: String,
        /// Whether the session ends because of it.
        fatal: bool,
    },
    /// The connection dropped; the runtime is reconnecting (show a one-line notice).
    Reconnecting {
        /// This attempt's number, from 1.
        attempt: u32,
        /// The most attempts it will make.
        max_attempts: u32,
        /// The wait before this attempt.
        delay: Duration,
        /// What went wrong.
        reason: String,
    },
    /// The session moves to a fresh server session before its time limit.
    RollingOver {
        /// Why now.
        reason: String,
    },
    /// A new connection is configured and the conversation replayed into it.
    Reconnected {
        /// How many items were replayed.
        replayed_items: usize,
        /// Whether this was a planned rollover rather than a recovery from a drop.
        rollover: bool,
    },
    /// The caller pressed a phone key (`input_audio_buffer.dtmf_event_received`, on SIP calls).
    Dtmf {
        /// The key: `0`-`9`, `*`, `#` or `A`-`D`.
        digit: String,
        /// Unix time the platform received it, in seconds.
        received_at: i64,
    },
    /// A platform-held session nears its time limit: warn the caller, then transfer or say
    /// goodbye; the session closes with [`CloseReason::SessionLimit`] at the limit. Sent once.
    SessionLimitNear {
        /// Time left before the session closes.
        remaining: Duration,
    },
    /// Something odd that did not stop the session (a malformed frame, an unknown event...).
    Warning {
        /// What happened.
        message: String,
    },
    /// The session ended.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The app closed it.
    Requested,
    /// A fatal server error, e.g. an invalid API key.
    Fatal {
        /// The server's code.
        code: Option<String>,
        /// The server's message.
        message: String,
    },
    /// The connection dropped and could not be restored.
    ConnectionLost {
        /// What failed.
        message: String,
    },
    /// The spending limit was reached.
    BudgetExhausted,
    /// A platform-held session (a SIP or WebRTC call) reached its time limit: it cannot roll
    /// over, since a new session would be a new call.
    SessionLimit,
    /// A platform-held session's re-attach found no call (the platform answered 404): the
    /// call ended while the sideband was away, usually because the caller hung up.
    CallEnded,
    /// The app stopped reading events: this many were waiting (see `EventBuffer`).
    ConsumerTooSlow {
        /// Events waiting for the app when the session gave up.
        waiting: usize,
    },
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::Requested => write!(f, "closed"),
            CloseReason::Fatal {
                code: Some(code),
                message,
            } => write!(f, "{message} ({code})"),
            CloseReason::Fatal {
                code: None,
                message,
            } => write!(f, "{message}"),
            CloseReason::ConnectionLost { message } => write!(f, "connection lost: {message}"),
            CloseReason::BudgetExhausted => {
                write!(f, "the spending limit was reached (max_cost_usd)")
            }
            CloseReason::SessionLimit => write!(
                f,
                "the call reached its time limit (max_session_minutes); a platform-held session cannot roll over"
            ),
            CloseReason::CallEnded => write!(
                f,
                "the call ended: re-attaching to it found no call (HTTP 404)"
            ),
            CloseReason::ConsumerTooSlow { waiting } => write!(
                f,
                "event consumer too slow: {waiting} events were waiting to be read, so the session ended rather than drop any"
            ),
        }
    }
}

/// Why a function call was answered without running its tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotRun {
    /// The call already ran (before a reconnect or a restart): its stored output was reused.
    AlreadyRan,
    /// The call started before the process stopped and never finished: it may or may not have
    /// taken effect, so it is reported as interrupted instead of being run again.
    Interrupted,
    /// The turn had already used `max_tool_rounds` rounds of tool calls.
    ToolRoundLimit,
    /// The call needed a person's approval and did not get it (denied, no answer in time, or
    /// its response was cancelled first).
    NotApproved,
}

/// Whose tool waits for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalKind {
    /// One of the agent's own tools (Rust, HTTP or an MCP server the framework calls).
    Tool,
    /// A tool of a hosted MCP server (`[[mcp_servers]]` with `require_approval`), which the
    /// Realtime API calls itself once approved.
    Mcp {
        /// The server's label.
        server_label: String,
    },
}

/// Why a turn ended without a complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TurnFailure {
    /// The server started no response, or stopped sending one, for `waited`, and asking again
    /// did not help.
    Stalled {
        /// The deadline that passed (`response_idle_secs`).
        waited: std::time::Duration,
        /// Whether the response had started (`response.created` arrived).
        started: bool,
    },
    /// The server answered `response.create` with an error.
    Refused {
        /// The server's error code.
        code: Option<String>,
        /// The server's message.
        message: String,
    },
    /// The response ended with status `failed`.
    Failed {
        /// The error type and code the server gave, e.g. `server_error`.
        reason: Option<String>,
    },
    /// The server cancelled the response though neither the user nor the app asked it to.
    Cancelled {
        /// The reason the server gave, if any.
        reason: Option<String>,
    },
    /// The response ended with status `incomplete`: the answer is cut off.
    Incomplete {
        /// Why, e.g. `max_output_tokens` or `content_filter`.
        reason: Option<String>,
    },
    /// The connection dropped during the response, and it could not be asked for again.
    ConnectionLost {
        /// Why the connection was replaced.
        reason: String,
    },
    /// The model kept calling tools: `limit` rounds in one turn (`max_tool_rounds`).
    ToolRounds {
        /// The limit.
        limit: u32,
    },
}

impl std::fmt::Display for TurnFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TurnFailure::Stalled {
                waited,
                started: true,
            } => write!(
                f,
                "the response stalled: the server sent nothing for {}, and asking again did not help",
                human(*waited)
            ),
            TurnFailure::Stalled {
                waited,
                started: false,
            } => write!(
                f,
                "the server did not start a response within {}, and asking again did not help",
                human(*waited)
            ),
            TurnFailure::Refused {
                code: Some(code),
                message,
            } => write!(f, "the server refused to respond ({code}): {message}"),
            TurnFailure::Refused {
                code: None,
                message,
            } => write!(f, "the server refused to respond: {message}"),
            TurnFailure::Failed { reason } => write!(
                f,
                "the response failed{}",
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            TurnFailure::Cancelled { reason } => write!(
                f,
                "the server cancelled the response{}",
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            TurnFailure::Incomplete { reason } => write!(
                f,
                "the response was cut off{}",
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ),
            TurnFailure::ConnectionLost { reason } => write!(
                f,
                "the response was cut off ({reason}), and it had already been asked for again once"
            ),
            TurnFailure::ToolRounds { limit } => write!(
                f,
                "the model called tools {limit} rounds in a row without answering; the turn was stopped (max_tool_rounds = {limit})"
            ),
        }
    }
}

/// A duration as people read it in messages: `200 ms`, `5 s`, `1.5 s`.
pub(crate) fn human(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        return format!("{} ms", d.as_millis());
    }
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{:.1} s", s)
    }
}
