//! The server's `error` event and the error codes seen in real traffic.
//!
//! The spec enumerates no codes; the constants in [`error_codes`] come from live captures and
//! public client code (see `realtime-events.md` §10). Most errors concern one client event and
//! leave the session usable; [`ErrorDetail::is_fatal`] picks out the ones that do not.

use serde::{Deserialize, Serialize};

use super::lenient::null_as_default;

/// Error codes the Realtime API is known to send.
pub mod error_codes {
    /// The API key is wrong or revoked; the server closes the socket (code 3000) next.
    pub const INVALID_API_KEY: &str = "invalid_api_key";
    /// The account is out of credit.
    pub const INSUFFICIENT_QUOTA: &str = "insufficient_quota";
    /// The session reached its maximum duration; open a new one.
    pub const SESSION_EXPIRED: &str = "session_expired";
    /// Too many requests; back off and retry.
    pub const RATE_LIMIT_EXCEEDED: &str = "rate_limit_exceeded";
    /// A required field is missing; with `param: "session.type"` it means a beta-shaped
    /// `session.update` reached a GA server.
    pub const MISSING_REQUIRED_PARAMETER: &str = "missing_required_parameter";
    /// A field the server does not know, e.g. a GA field sent to a beta server.
    pub const UNKNOWN_PARAMETER: &str = "unknown_parameter";
    /// A field with a bad value.
    pub const INVALID_VALUE: &str = "invalid_value";
    /// The event itself is malformed.
    pub const INVALID_EVENT: &str = "invalid_event";
    /// `response.create` while a response is in flight; one sequencer must own it.
    pub const CONVERSATION_ALREADY_HAS_ACTIVE_RESPONSE: &str =
        "conversation_already_has_active_response";
    /// `response.cancel` with no response in flight; harmless.
    pub const RESPONSE_CANCEL_NOT_ACTIVE: &str = "response_cancel_not_active";
    /// `input_audio_buffer.commit` with less than 100 ms of audio.
    pub const INPUT_AUDIO_BUFFER_COMMIT_EMPTY: &str = "input_audio_buffer_commit_empty";

    /// Codes after which the session cannot go on: bad credentials, no quota, or the session
    /// ran out of time. The runtime should stop (or, for `session_expired`, reconnect).
    pub const FATAL: &[&str] = &[INVALID_API_KEY, INSUFFICIENT_QUOTA, SESSION_EXPIRED];
}

/// The `error` server event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEvent {
    /// Unique ID of this server event.
    #[serde(default, deserialize_with = "null_as_default")]
    pub event_id: String,
    /// What went wrong.
    #[serde(default)]
    pub error: ErrorDetail,
}

impl ErrorEvent {
    /// Whether the session cannot continue; see [`ErrorDetail::is_fatal`].
    pub fn is_fatal(&self) -> bool {
        self.error.is_fatal()
    }
}

/// The body of an `error` event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// The error class, e.g. `invalid_request_error` or `server_error`.
    #[serde(rename = "type", default, deserialize_with = "null_as_default")]
    pub kind: String,
    /// A machine-readable code (see [`error_codes`]); often `null`.
    #[serde(default)]
    pub code: Option<String>,
    /// A human-readable explanation.
    #[serde(default, deserialize_with = "null_as_default")]
    pub message: String,
    /// The offending parameter, e.g. `session.type`.
    #[serde(default)]
    pub param: Option<String>,
    /// The `event_id` of the client event that caused the error, if it had one.
    #[serde(default)]
    pub event_id: Option<String>,
}

impl ErrorDetail {
    /// Whether the code is `code`.
    pub fn has_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// Whether the session cannot continue: the code is one of [`error_codes::FATAL`]
    /// (`invalid_api_key`, `insufficient_quota`, `session_expired`).
    pub fn is_fatal(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| error_codes::FATAL.contains(&code))
    }

    /// Whether retrying the same request later may succeed (server errors and rate limits).
    pub fn is_retryable(&self) -> bool {
        self.kind == "server_error" || self.has_code(error_codes::RATE_LIMIT_EXCEEDED)
    }

    /// Whether the error says the client speaks the wrong dialect: a beta-shaped
    /// `session.update` sent to a GA server (`missing_required_parameter` on `session.type`), or
    /// GA session fields sent to a beta server (`unknown_parameter` on `session.type`,
    /// `session.audio` or `session.output_modalities`).
    pub fn is_dialect_mismatch(&self) -> bool {
        let param = self.param.as_deref().unwrap_or("");
        (self.has_code(error_codes::MISSING_REQUIRED_PARAMETER) && param == "session.type")
            || (self.has_code(error_codes::UNKNOWN_PARAMETER)
                && ["session.type", "session.audio", "session.output_modalities"]
                    .iter()
                    .any(|prefix| param.starts_with(prefix)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn detail(code: Option<&str>, param: Option<&str>) -> ErrorDetail {
        ErrorDetail {
            kind: "invalid_request_error".into(),
            code: code.map(Into::into),
            param: param.map(Into::into),
            ..ErrorDetail::default()
        }
    }

    #[test]
    fn classifies_codes() {
        assert!(detail(Some("invalid_api_key"), None).is_fatal());
        assert!(detail(Some("session_expired"), None).is_fatal());
        assert!(!detail(Some("conversation_already_has_active_response"), None).is_fatal());
        assert!(!detail(None, None).is_fatal());
        assert!(
            detail(Some("missing_required_parameter"), Some("session.type")).is_dialect_mismatch()
        );
        assert!(
            !detail(Some("missing_required_parameter"), Some("item.call_id")).is_dialect_mismatch()
        );
        let server = ErrorDetail {
            kind: "server_error".into(),
            ..ErrorDetail::default()
        };
        assert!(server.is_retryable());
    }

    #[test]
    fn decodes_live_error_with_nulls() {
        let event: ErrorEvent = serde_json::from_value(json!({
            "event_id": "event_1",
            "error": {"type": "server_error", "code": null, "message": "The server had an error",
                      "param": null, "event_id": null}
        }))
        .unwrap();
        assert_eq!(event.error.code, None);
        assert!(event.error.is_retryable());
    }
}
