//! Fault knobs, per connection index, so a test can break only the first connection.
//!
//! Positions count every frame the server sent on the connection, injected ones included:
//! `drop_after(0)` drops right after the WebSocket handshake, `drop_after(1)` right after
//! `session.created`.
//!
//! Transport faults: [`ConnectionFaults::drop_after`] (FIN, no close frame),
//! [`ConnectionFaults::reset_after`] (RST), [`ConnectionFaults::close_after`] (a close code),
//! [`ConnectionFaults::delay`], [`ConnectionFaults::stall_after`] (silence, but pings are still
//! answered) and [`ConnectionFaults::drop_on_response_create`] (a drop between
//! `response.create` and `response.created`).
//!
//! Frame faults: [`ConnectionFaults::error_after`], [`ConnectionFaults::session_expired_after`],
//! [`ConnectionFaults::malformed_after`] (not JSON), [`ConnectionFaults::oversized_frame_after`]
//! (one valid event of a given size), [`ConnectionFaults::noise`] (unknown fields and events) and
//! [`ConnectionFaults::malformed_response_done`] (a `response.done` with broken `usage` or
//! `output`).
//!
//! Model faults: [`ConnectionFaults::stall_stream_after`] (a response that never finishes while
//! requests are still answered), [`ConnectionFaults::fail_response_create`] (an `error` instead of
//! a response), [`ConnectionFaults::session_expired_on_request`] and
//! [`ConnectionFaults::tool_loop`] (a model that calls a tool forever).

use std::collections::BTreeMap;
use std::time::Duration;

/// Faults for every connection, with per-connection overrides.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Applied to connections without an entry in `per_connection`.
    pub every_connection: ConnectionFaults,
    /// Faults for one connection index (0 = first), replacing `every_connection` for it.
    pub per_connection: BTreeMap<usize, ConnectionFaults>,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets the faults of connection `index` (0 = first); other connections are unaffected.
    pub fn on_connection(mut self, index: usize, faults: ConnectionFaults) -> Self {
        self.per_connection.insert(index, faults);
        self
    }

    /// Sets the faults of every connection without its own entry.
    pub fn on_every_connection(mut self, faults: ConnectionFaults) -> Self {
        self.every_connection = faults;
        self
    }

    /// The faults that apply to connection `index`.
    pub fn for_connection(&self, index: usize) -> &ConnectionFaults {
        self.per_connection
            .get(&index)
            .unwrap_or(&self.every_connection)
    }
}

/// Faults of one connection; all optional and combinable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionFaults {
    /// After this many frames, end the TCP connection without a WebSocket close frame (FIN after
    /// flushing, so every frame before it arrives; the client sees a reset without handshake).
    pub drop_after: Option<usize>,
    /// After this many frames, reset the TCP connection (RST, unread data may be lost).
    pub reset_after: Option<usize>,
    /// After this many frames, send a close frame with this code and reason.
    pub close_after: Option<(usize, CloseSpec)>,
    /// Extra pause before every frame.
    pub delay: Duration,
    /// Error events to send after given frame counts.
    pub errors: Vec<InjectedError>,
    /// Non-JSON text frames to send after these frame counts.
    pub malformed_after: Vec<usize>,
    /// Add unknown fields and null fields to every event, and follow every event with an event
    /// of an unknown type.
    pub noise: bool,
    /// After this many frames, send nothing more (pongs excepted) until the client leaves.
    pub stall_after: Option<usize>,
    /// After this many frames, hold back the events of the active (or next) response forever.
    pub stall_stream_after: Option<usize>,
    /// Answer the first `.1` `response.create` events with this error instead of a response.
    pub fail_response_create: Option<(ErrorSpec, usize)>,
    /// Rewrite every `response.done` into this malformed shape.
    pub malformed_response_done: Option<MalformedDone>,
    /// Drop the TCP connection when a `response.create` arrives.
    pub drop_on_response_create: bool,
    /// Answer every client event except `session.update` with `session_expired` and close.
    pub session_expired_on_request: bool,
    /// After `.0` frames, send one valid event of exactly `.1` bytes.
    pub oversized_frame_after: Option<(usize, usize)>,
    /// Answer every response with a call of this tool, ignoring the script.
    pub tool_loop: Option<String>,
}

impl ConnectionFaults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops the socket (no close frame) after `n` frames.
    pub fn drop_after(mut self, n: usize) -> Self {
        self.drop_after = Some(n);
        self
    }

    /// Resets the socket (RST) after `n` frames.
    pub fn reset_after(mut self, n: usize) -> Self {
        self.reset_after = Some(n);
        self
    }

    /// Closes with `code` and `reason` after `n` frames (e.g. 1008 policy, 3000 unauthorized).
    pub fn close_after(mut self, n: usize, code: u16, reason: impl Into<String>) -> Self {
        self.close_after = Some((
            n,
            CloseSpec {
                code,
                reason: reason.into(),
            },
        ));
        self
    }

    /// Pauses before every frame.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sends an error event after `n` frames.
    pub fn error_after(mut self, n: usize, error: ErrorSpec) -> Self {
        self.errors.push(InjectedError {
            after: n,
            error,
            close: None,
        });
        self
    }

    /// Sends `session_expired` after `n` frames and closes (1000), like a session hitting its
    /// time limit.
    pub fn session_expired_after(mut self, n: usize) -> Self {
        self.errors.push(InjectedError {
            after: n,
            error: ErrorSpec::session_expired(),
            close: Some(CloseSpec::session_expired()),
        });
        self
    }

    /// Answers every client event except `session.update` (and beta
    /// `transcription_session.update`) with the `session_expired` error of
    /// [`session_expired_after`](Self::session_expired_after), then closes with 1000.
    ///
    /// The setup succeeds and the first real request fails, which tests that a client does not
    /// retry a request on a session that is gone. Like the unprompted live error, it carries no
    /// `event_id`.
    pub fn session_expired_on_request(mut self) -> Self {
        self.session_expired_on_request = true;
        self
    }

    /// After `n` frames the server sends nothing of its own any more (no replies, no streamed
    /// events, no injected frames) but keeps reading: pings get pongs and client events are
    /// recorded, until the client closes.
    ///
    /// A live server that hangs with a healthy TCP connection looks like this; ping-based
    /// liveness checks cannot see it, only a timeout on expected events can. At the same count,
    /// `drop_after` and `reset_after` still apply; `close_after`, errors and malformed frames
    /// do not.
    pub fn stall_after(mut self, n: usize) -> Self {
        self.stall_after = Some(n);
        self
    }

    /// After `n` frames the events of the active response (or, when none is active, of the next
    /// one to start) are held back forever, while replies to client events keep flowing.
    ///
    /// A model stuck mid-answer: the client must time out and cancel. `response.cancel` (or a
    /// `turn_detected` cancel) ends the held response normally with `response.done` status
    /// `cancelled`; later responses stream normally. Only one response per connection is held.
    pub fn stall_stream_after(mut self, n: usize) -> Self {
        self.stall_stream_after = Some(n);
        self
    }

    /// Answers the first `times` `response.create` events with an `error` built from `error`
    /// (its `error.event_id` echoes the client's `event_id`), and starts no response;
    /// `usize::MAX` fails every time.
    ///
    /// Transient model failures (`server_error`, rate limits) look like this. They are not
    /// recorded as violations: the client did nothing wrong. Applies before
    /// [`drop_on_response_create`](Self::drop_on_response_create).
    pub fn fail_response_create(mut self, error: ErrorSpec, times: usize) -> Self {
        self.fail_response_create = Some((error, times));
        self
    }

    /// Rewrites every `response.done` of the connection just before it is sent; see
    /// [`MalformedDone`].
    ///
    /// Accounting code must survive a server that breaks its own schema. Only the frame changes:
    /// the response id and status, the conversation and the script progress stay as they are.
    pub fn malformed_response_done(mut self, kind: MalformedDone) -> Self {
        self.malformed_response_done = Some(kind);
        self
    }

    /// Drops the TCP connection (as [`drop_after`](Self::drop_after) does) when a
    /// `response.create` arrives, after the replies queued before it and before any
    /// `response.created`.
    ///
    /// The client cannot know whether the model started; nothing is marked played, so the same
    /// step is played when the client asks again on a new connection.
    pub fn drop_on_response_create(mut self) -> Self {
        self.drop_on_response_create = true;
        self
    }

    /// After `n` frames, sends one text frame of exactly `bytes` bytes: a valid
    /// `response.output_text.delta` event whose `delta` is padded with `x`, then goes on
    /// normally.
    ///
    /// The server sends frames of any size; the client's read limit (tungstenite: 16 MiB per
    /// frame, 64 MiB per message by default) decides whether the client gets the event or a
    /// capacity error. `bytes` smaller than the bare event (about 160 bytes) sends the bare event.
    pub fn oversized_frame_after(mut self, n: usize, bytes: usize) -> Self {
        self.oversized_frame_after = Some((n, bytes));
        self
    }

    /// Answers every response (client-created or automatic) with one call of `tool_name` with
    /// arguments `{}` and a fresh call id (`call_loop_0001`, `call_loop_0002`, ..., counted per
    /// server), ignoring the script.
    ///
    /// A model that never stops calling tools: the client must bound its tool rounds. The call
    /// enters the server's conversation, so the client's `function_call_output` is accepted;
    /// [`ServerHandle::count_received`](crate::ServerHandle::count_received) tells how many
    /// `response.create` the client sent.
    pub fn tool_loop(mut self, tool_name: impl Into<String>) -> Self {
        self.tool_loop = Some(tool_name.into());
        self
    }

    /// Sends a non-JSON text frame after `n` frames.
    pub fn malformed_after(mut self, n: usize) -> Self {
        self.malformed_after.push(n);
        self
    }

    /// Turns noise on.
    pub fn noise(mut self, on: bool) -> Self {
        self.noise = on;
        self
    }
}

/// How [`ConnectionFaults::malformed_response_done`] breaks a `response.done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MalformedDone {
    /// Every integer in `response.usage`, nested ones included, becomes a float (`10.0`).
    FloatTokens,
    /// `usage.input_tokens` and `usage.output_tokens` become negative (`-n`, or `-1` for 0).
    NegativeTokens,
    /// `response.output` becomes the string `"oops"`.
    OutputNotList,
    /// `response.usage` becomes the string `"n/a"`.
    UsageNotObject,
}

/// A WebSocket close frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseSpec {
    /// Close code (1000 normal, 1008 policy, 3000 unauthorized, 4000-4999 private).
    pub code: u16,
    /// Close reason text.
    pub reason: String,
}

impl CloseSpec {
    /// The normal close (1000, "session expired") that follows a `session_expired` error.
    pub fn session_expired() -> Self {
        CloseSpec {
            code: 1000,
            reason: "session expired".into(),
        }
    }
}

/// An error event's `error` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorSpec {
    /// `error.type`, e.g. `invalid_request_error` or `server_error`.
    pub error_type: String,
    /// `error.code`; `None` sends `null` (as live `server_error`s do).
    pub code: Option<String>,
    /// `error.message`.
    pub message: String,
    /// `error.param`.
    pub param: Option<String>,
}

impl ErrorSpec {
    /// An error with a type, a code and a message.
    pub fn new(error_type: &str, code: &str, message: &str) -> Self {
        ErrorSpec {
            error_type: error_type.into(),
            code: Some(code.into()),
            message: message.into(),
            param: None,
        }
    }

    /// The live `session_expired` error of a session that hit its time limit.
    pub fn session_expired() -> Self {
        ErrorSpec::new(
            "invalid_request_error",
            "session_expired",
            "Your session hit the maximum duration of 60 minutes.",
        )
    }

    /// The live `server_error` shape (code `null`).
    pub fn server_error() -> Self {
        ErrorSpec {
            error_type: "server_error".into(),
            code: None,
            message: "The server had an error while processing your request. Sorry about that!"
                .into(),
            param: None,
        }
    }
}

/// An error event sent after a given number of frames, optionally followed by a close.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedError {
    /// Frame count after which to send it.
    pub after: usize,
    /// The error.
    pub error: ErrorSpec,
    /// Close the connection right after.
    pub close: Option<CloseSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knobs_combine_and_apply_per_connection() {
        let hostile = ConnectionFaults::new()
            .stall_stream_after(6)
            .fail_response_create(ErrorSpec::server_error(), 2)
            .malformed_response_done(MalformedDone::FloatTokens)
            .oversized_frame_after(1, 1 << 20)
            .tool_loop("lookup");
        let faults = Faults::none().on_connection(1, hostile.clone());
        assert_eq!(faults.for_connection(0), &ConnectionFaults::default());
        let on_1 = faults.for_connection(1);
        assert_eq!(on_1, &hostile);
        assert_eq!(on_1.fail_response_create.as_ref().map(|f| f.1), Some(2));
        assert_eq!(on_1.tool_loop.as_deref(), Some("lookup"));
        assert_eq!(on_1.stall_after, None);
    }

    #[test]
    fn session_expiry_knobs_send_the_same_error() {
        let after = ConnectionFaults::new().session_expired_after(3);
        let injected = &after.errors[0];
        assert_eq!(injected.error, ErrorSpec::session_expired());
        assert_eq!(injected.close, Some(CloseSpec::session_expired()));
        assert_eq!(injected.error.code.as_deref(), Some("session_expired"));
        assert!(
            ConnectionFaults::new()
                .session_expired_on_request()
                .session_expired_on_request
        );
    }
}
