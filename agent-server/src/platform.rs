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
        "cannot reach the OpenAI platform to {action}: {reason}; check [openai] api_base in serve.toml and the network"
    )]
    Unreachable {
        /// What was asked: "accept the call", "mint a client secret", ...
        action: &'static str,
        /// The last attempt's failure.
        reason: String,
    },
    /// The platform answered with an error status.
    #[error("the OpenAI platform refused to {action} (HTTP {status}): {message}")]
    Refused {
        /// What was asked: "accept the call", "mint a client secret", ...
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
    /// The platform's origin (`https://api.openai.com`), which a page that holds a client
    /// secret connects to.
    pub fn origin(&self) -> Option<String> {
        let url = url::Url::parse(&self.api_base).ok()?;
        Some(url.origin().ascii_serialization()).filter(|o| o != "null")
    }

    /// Where a page posts its SDP offer when it holds a client secret (`{api_base}/v1/realtime/calls`).
    pub fn calls_url(&self) -> String {
        format!("{}/v1/realtime/calls", self.api_base)
    }

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

    /// Creates a WebRTC call from a browser's SDP offer, with the agent's `session`, in the
    /// unified form (multipart `sdp` + `session`, the server's own key): the answer SDP for
    /// the browser and the call id the sideband attaches to. Not retried once sent: a call
    /// created twice is a second call.
    pub async fn create_call(
        &self,
        offer_sdp: &str,
        session: &Value,
    ) -> Result<CreatedCall, PlatformError> {
        const ACTION: &str = "create the WebRTC call";
        let url = format!("{}/v1/realtime/calls", self.api_base);
        let boundary = crate::random::token()
            .map(|t| format!("agent-serve-{t}"))
            .map_err(|err| PlatformError::Unreachable {
                action: ACTION,
                reason: err.to_string(),
            })?;
        let body = multipart(&boundary, offer_sdp, &session.to_string());
        let response = self
            .retrying(ACTION, "", || {
                let mut request = self
                    .client
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(body.clone());
                if let Some(key) = &self.api_key {
                    request = request.bearer_auth(key.expose());
                }
                request
            })
            .await?;
        let call_id = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|location| location.rsplit('/').next())
            .filter(|id| valid_call_id(id))
            .map(str::to_owned);
        let answer_sdp = read_capped(response).await;
        match (call_id, answer_sdp) {
            (Some(call_id), Ok(answer_sdp)) if answer_sdp.starts_with("v=") => Ok(CreatedCall {
                answer_sdp,
                call_id,
            }),
            (None, _) => Err(PlatformError::Unreachable {
                action: ACTION,
                reason: "the answer named no call (no usable Location header)".into(),
            }),
            (_, Err(reason)) => Err(PlatformError::Unreachable {
                action: ACTION,
                reason,
            }),
            (Some(_), Ok(_)) => Err(PlatformError::Unreachable {
                action: ACTION,
                reason: "the answer is not an SDP".into(),
            }),
        }
    }

    /// Mints a client secret for a browser: `session` is the agent's session config, and the
    /// secret expires `ttl` after it is created. The answer is the platform's
    /// `{value, expires_at, session}`.
    pub async fn client_secret(
        &self,
        session: &Value,
        ttl: Duration,
    ) -> Result<ClientSecret, PlatformError> {
        const ACTION: &str = "mint a client secret";
        let url = format!("{}/v1/realtime/client_secrets", self.api_base);
        let body = json!({
            "expires_after": {"anchor": "created_at", "seconds": ttl.as_secs()},
            "session": session,
        });
        let response = self
            .retrying(ACTION, "", || {
                let mut request = self.client.post(&url).json(&body);
                if let Some(key) = &self.api_key {
                    request = request.bearer_auth(key.expose());
                }
                request
            })
            .await?;
        let text = read_capped(response)
            .await
            .map_err(|reason| PlatformError::Unreachable {
                action: ACTION,
                reason,
            })?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match (
            value.get("value").and_then(Value::as_str),
            value.get("expires_at").and_then(Value::as_i64),
        ) {
            (Some(secret), Some(expires_at)) => Ok(ClientSecret {
                value: Secret::new(secret),
                expires_at,
            }),
            _ => Err(PlatformError::Unreachable {
                action: ACTION,
                reason: "the answer holds no `value` and `expires_at`".into(),
            }),
        }
    }

    /// Sends the request `build` makes, retrying only what cannot have reached the platform
    /// (see [`send_once`](Self::send_once)); a success status gives the response.
    async fn retrying(
        &self,
        action: &'static str,
        call_id: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, PlatformError> {
        let mut attempt = 1;
        loop {
            match self.answer(build(), action).await {
                Err(Retry::Now(reason)) if attempt < ATTEMPTS => {
                    tracing::debug!(call_id, action, attempt, "retrying: {reason}");
                    tokio::time::sleep(RETRY_DELAY * attempt).await;
                    attempt += 1;
                }
                Err(Retry::Now(reason)) => {
                    return Err(PlatformError::Unreachable { action, reason });
                }
                Err(Retry::Never(err)) => return Err(err),
                Ok(response) => return Ok(response),
            }
        }
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
        let described = match action {
            "accept" => "accept the call",
            "reject" => "reject the call",
            "refer" => "transfer the call",
            "hangup" => "hang up the call",
            _ => "control the call",
        };
        self.retrying(described, call_id, || {
            let mut request = self.client.post(&url);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key.expose());
            }
            match body {
                Some(body) => request.json(body),
                None => request.header(reqwest::header::CONTENT_LENGTH, "0"),
            }
        })
        .await
        .map(drop)
    }

    /// One attempt: the response when its status is a success, else whether to retry.
    async fn answer(
        &self,
        request: reqwest::RequestBuilder,
        action: &'static str,
    ) -> Result<reqwest::Response, Retry> {
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
            return Ok(response);
        }
        let text = read_capped(response).await.unwrap_or_default();
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

/// A call the platform created from a browser's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedCall {
    /// The SDP answer for the browser.
    pub answer_sdp: String,
    /// The call id (`rtc_...`) the sideband attaches to.
    pub call_id: String,
}

/// A minted client secret: what the browser connects with, until `expires_at`.
#[derive(Debug, Clone)]
pub struct ClientSecret {
    /// The secret (`ek_...`); redacted wherever it is logged.
    pub value: Secret,
    /// Unix seconds.
    pub expires_at: i64,
}

/// The largest platform answer read (an SDP answer is a few KB).
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The body of `response`, at most [`MAX_ANSWER_BYTES`], as text.
async fn read_capped(mut response: reqwest::Response) -> Result<String, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(format!("the answer is over {MAX_ANSWER_BYTES} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(err) => return Err(describe(&err)),
        }
    }
    String::from_utf8(body).map_err(|_| "the answer is not UTF-8 text".to_owned())
}

/// The unified form's body: the offer as part `sdp`, the session JSON as part `session`.
fn multipart(boundary: &str, sdp: &str, session: &str) -> Vec<u8> {
    format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"sdp\"\r\nContent-Type: application/sdp\r\n\r\n{sdp}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"session\"\r\nContent-Type: application/json\r\n\r\n{session}\r\n\
         --{boundary}--\r\n"
    )
    .into_bytes()
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
