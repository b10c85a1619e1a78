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
}
