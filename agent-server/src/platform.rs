//! OpenAI's call-control REST API for SIP calls: accept, reject, refer (transfer) and hang up
//! (`POST {api_base}/v1/realtime/calls/{call_id}/{action}`, shared/realtime-spec/realtime-rest.md).
//!
//! The SIP path decides every call through these requests, never through a webhook's HTTP
//! status, and `end_call` / `transfer_call` use [`Platform::hangup`] and [`Platform::refer`].
//! Each request has a deadline, and only failures that cannot have reached the platform (a
//! refused connection, 429, 5xx) are retried, within a small budget: an accept that timed out
//! may have been taken, and accepting twice is an error. Errors name the action and the
//! platform's message, never the key.

use std::time::Duration;

use agent_core::session::Secret;
use serde_json::{Value, json};

/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per request, the first included.
const ATTEMPTS: u32 = 3;
/// The wait before a retry, times the attempt number.
const RETRY_DELAY: Duration = Duration::from_millis(200);
/// The longest platform message kept in an error.
const MESSAGE_CHARS: usize = 200;

/// Why a call-control request did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// The call id cannot be put in a URL (it comes from a webhook, so this is a bug there).
    #[error("`{0}` is not a call id (letters, digits, `_` and `-`, at most 128)")]
    BadCallId(String),
    /// The platform could not be reached, after every attempt.
    #[error(
        "cannot reach the OpenAI platform to {action} the call: {reason}; check [openai] api_base in serve.toml and the network"
    )]
    Unreachable {
        /// accept, reject, refer or hangup.
        action: &'static str,
        /// The last attempt's failure.
        reason: String,
    },
    /// The platform answered with an error status.
    #[error("the OpenAI platform refused to {action} the call (HTTP {status}): {message}")]
    Refused {
        /// accept, reject, refer or hangup.
        action: &'static str,
        /// The HTTP status.
        status: u16,
        /// The platform's message, shortened and scrubbed of secrets.
        message: String,
    },
}

impl PlatformError {
    /// The HTTP status the platform answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            PlatformError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of the platform's call-control API.
#[derive(Debug, Clone)]
pub struct Platform {
    client: reqwest::Client,
    api_base: String,
    api_key: Option<Secret>,
}

impl Platform {
    /// A client for `api_base` (e.g. `https://api.openai.com`), sending `api_key` as a bearer
    /// token when there is one.
    pub fn new(api_base: &str, api_key: Option<Secret>) -> Result<Platform, reqwest::Error> {
        agent_core::tls::ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Platform {
            client,
            api_base: api_base.trim_end_matches('/').to_owned(),
            api_key,
        })
    }

    /// Answers the call with `session` (a GA session config: `type`, `model`, `instructions`,
    /// `audio`, `tools`, ...).
    pub async fn accept(&self, call_id: &str, session: &Value) -> Result<(), PlatformError> {
        self.post(call_id, "accept", Some(session)).await
    }

    /// Declines the call with a SIP status (486 busy, 503 unavailable, 404 unknown user...).
    pub async fn reject(&self, call_id: &str, status_code: u16) -> Result<(), PlatformError> {
        let body = json!({ "status_code": status_code });
        self.post(call_id, "reject", Some(&body)).await
    }

    /// Transfers the call by SIP REFER to `target_uri` (`tel:+1...` or `sip:...`).
    pub async fn refer(&self, call_id: &str, target_uri: &str) -> Result<(), PlatformError> {
        let body = json!({ "target_uri": target_uri });
        self.post(call_id, "refer", Some(&body)).await
    }

    /// Ends the call.
    pub async fn hangup(&self, call_id: &str) -> Result<(), PlatformError> {
        self.post(call_id, "hangup", None).await
    }

    async fn post(
        &self,
        call_id: &str,
        action: &'static str,
        body: Option<&Value>,
    ) -> Result<(), PlatformError> {
        if !valid_call_id(call_id) {
            return Err(PlatformError::BadCallId(call_id.chars().take(64).collect()));
        }
        let url = format!("{}/v1/realtime/calls/{call_id}/{action}", self.api_base);
        let mut attempt = 1;
        loop {
            match self.send_once(&url, action, body).await {
                Err(Retry::Now(reason)) if attempt < ATTEMPTS => {
                    tracing::debug!(call_id, action, attempt, "retrying: {reason}");
                    tokio::time::sleep(RETRY_DELAY * attempt).await;
                    attempt += 1;
                }
                Err(Retry::Now(reason)) => {
                    return Err(PlatformError::Unreachable { action, reason });
                }
                Err(Retry::Never(err)) => return Err(err),
                Ok(()) => return Ok(()),
            }
        }
    }

    async fn send_once(
        &self,
        url: &str,
        action: &'static str,
        body: Option<&Value>,
    ) -> Result<(), Retry> {
        let mut request = self.client.post(url);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        request = match body {
            Some(body) => request.json(body),
            None => request.header(reqwest::header::CONTENT_LENGTH, "0"),
        };
        let response = match request.send().await {
            Ok(response) => response,
            // Refused or unreachable: the platform never saw it. A timeout might have been
            // taken, so it is not retried.
            Err(err) if err.is_connect() => return Err(Retry::Now(describe(&err))),
            Err(err) => {
                return Err(Retry::Never(PlatformError::Unreachable {
                    action,
                    reason: describe(&err),
                }));
            }
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let message = platform_message(&text);
        if status == 429 || status >= 500 {
            return Err(Retry::Now(format!("HTTP {status}: {message}")));
        }
        Err(Retry::Never(PlatformError::Refused {
            action,
            status,
            message,
        }))
    }
}

enum Retry {
    Now(String),
    Never(PlatformError),
}

/// A reqwest error in words, without its URL's query or any header.
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        format!("no answer within {REQUEST_TIMEOUT:?}")
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else {
        "the request failed".to_owned()
    };
    match std::error::Error::source(err) {
        Some(source) => format!("{kind} ({source})"),
        None => kind,
    }
}

/// `error.message` of a platform error body (or the body), short and scrubbed.
fn platform_message(body: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| body.trim().to_owned());
    let short: String = message.chars().take(MESSAGE_CHARS).collect();
    let short = if short.is_empty() {
        "(no message)".to_owned()
    } else {
        short
    };
    agent_core::redact::scrub(&short).into_owned()
}

/// A platform call id: safe to put in a URL path.
pub fn valid_call_id(call_id: &str) -> bool {
    !call_id.is_empty()
        && call_id.len() <= 128
        && call_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_cannot_escape_the_path() {
        assert!(valid_call_id("rtc_479a275623b54bdb9b6fbae2f7cbd408"));
        for bad in ["", "../x", "rtc/1", "rtc?x=1", &"a".repeat(129)] {
            assert!(!valid_call_id(bad), "{bad}");
        }
    }

    #[test]
    fn platform_messages_are_short_and_scrubbed() {
        Secret::new("sk-platform-message-test-123456");
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-platform-message-test-123456."}}"#;
        assert_eq!(
            platform_message(body),
            "Incorrect API key provided: [redacted]."
        );
        assert_eq!(platform_message(""), "(no message)");
        assert_eq!(platform_message(&"x".repeat(500)).len(), MESSAGE_CHARS);
    }
}
