//! Fault knobs, per connection index, so a test can break only the first connection.
//!
//! Positions count every frame the server sent on the connection, injected ones included:
//! `drop_after(0)` drops right after the WebSocket handshake, `drop_after(1)` right after
//! `session.created`.

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
            error: ErrorSpec::new(
                "invalid_request_error",
                "session_expired",
                "Your session hit the maximum duration of 60 minutes.",
            ),
            close: Some(CloseSpec {
                code: 1000,
                reason: "session expired".into(),
            }),
        });
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

/// A WebSocket close frame to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseSpec {
    /// Close code (1000 normal, 1008 policy, 3000 unauthorized, 4000-4999 private).
    pub code: u16,
    /// Close reason text.
    pub reason: String,
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
