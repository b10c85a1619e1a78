//! `POST /v1/realtime/client_secrets`: the short-lived keys a browser uses instead of the API
//! key (shared/realtime-spec/realtime-rest.md, "Client secrets").
//!
//! The platform mints `ek_...` values, each with the session it configures and an expiry, and
//! keeps them so that `POST /v1/realtime/calls` can check the browser's bearer. Tests need
//! expired secrets without waiting: [`FakePlatform::advance_clock`](super::FakePlatform::advance_clock)
//! moves the platform's clock, and
//! [`FakePlatform::issue_client_secret`](super::FakePlatform::issue_client_secret) mints with
//! any lifetime, past ones included.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};

use super::rest::error;
use crate::server::{Dialect, lock, session};

/// The lifetime of a secret when the request names none.
const DEFAULT_SECONDS: i64 = 600;
/// The lifetimes the API accepts.
const SECONDS_RANGE: std::ops::RangeInclusive<i64> = 10..=7200;

/// A client secret the platform minted.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSecret {
    /// The bearer value, `ek_...`.
    pub value: String,
    /// When it was minted (unix seconds, on the platform's clock).
    pub created_at: i64,
    /// When it stops opening calls (unix seconds, on the platform's clock).
    pub expires_at: i64,
    /// The session it configures: the full session object of the answer.
    pub session: Value,
}

/// One `POST /v1/realtime/client_secrets` as the platform received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSecretRequest {
    /// The body, when it was JSON.
    pub body: Option<Value>,
    /// Whether it carried the platform's API key (always true when the platform checks none).
    pub authorized: bool,
    /// The HTTP status it was answered with.
    pub status: u16,
    /// The secret minted, on success.
    pub value: Option<String>,
}

/// Why a secret does not open a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The platform never minted it.
    Unknown,
    /// It expired.
    Expired,
}

/// Every secret of one platform, and its clock.
#[derive(Debug, Default)]
pub(crate) struct ClientSecrets {
    minted: Mutex<Vec<ClientSecret>>,
    requests: Mutex<Vec<ClientSecretRequest>>,
    /// Seconds added to the system clock.
    offset: AtomicI64,
    count: AtomicU64,
}

impl ClientSecrets {
    /// The platform's time, unix seconds.
    pub(crate) fn now(&self) -> i64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        system + self.offset.load(Ordering::Relaxed)
    }

    /// Moves the platform's clock forward by `seconds` (backwards when negative).
    pub(crate) fn advance_clock(&self, seconds: i64) {
        self.offset.fetch_add(seconds, Ordering::Relaxed);
    }

    /// Answers a request (`authorized`: it carried the API key), records it, and returns the
    /// status and JSON body.
    pub(crate) fn handle(&self, raw: &[u8], authorized: bool) -> (u16, Value) {
        let body: Option<Value> = serde_json::from_slice(raw).ok();
        let (status, answer, value) = if !authorized {
            (401, invalid_api_key(), None)
        } else {
            match self.create(raw, body.as_ref()) {
                Ok(secret) => {
                    let answer = json!({
                        "value": secret.value,
                        "expires_at": secret.expires_at,
                        "session": secret.session,
                    });
                    (200, answer, Some(secret.value))
                }
                Err(answer) => (400, answer, None),
            }
        };
        lock(&self.requests).push(ClientSecretRequest {
            body,
            authorized,
            status,
            value,
        });
        (status, answer)
    }

    /// Checks a request body and mints its secret; `Err` is the error body.
    fn create(&self, raw: &[u8], body: Option<&Value>) -> Result<ClientSecret, Value> {
        let empty = raw.iter().all(u8::is_ascii_whitespace);
        let object = match (body, empty) {
            (Some(Value::Object(map)), _) => map.clone(),
            (None, true) => Map::new(),
            _ => {
                return Err(error(
                    "invalid_json",
                    "The body must be a JSON object: {\"expires_after\": ..., \"session\": ...}.",
                ));
            }
        };
        if let Some(k) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "expires_after" | "session"))
        {
            return Err(error(
                "unknown_parameter",
                &format!("Unknown parameter: '{k}'."),
            ));
        }
        let seconds = expires_after(object.get("expires_after"))?;
        let session = object
            .get("session")
            .cloned()
            .unwrap_or_else(|| json!({"type": "realtime"}));
        self.issue(&session, seconds)
    }

    /// Mints a secret for `session` (a GA session config, checked as the API checks it) that
    /// expires `seconds` from now on the platform's clock; any lifetime, past ones included.
    pub(crate) fn issue(&self, session: &Value, seconds: i64) -> Result<ClientSecret, Value> {
        if let Err(spec) = session::validate_update(Dialect::Ga, Some(session)) {
            let code = spec.code.as_deref().unwrap_or("invalid_value");
            return Err(error(code, &format!("session: {}", spec.message)));
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let created_at = self.now();
        let expires_at = created_at + seconds;
        let model = session
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("gpt-realtime");
        let mut full = session::initial(
            Dialect::Ga,
            &format!("sess_ek{n:04}"),
            model,
            u64::try_from(expires_at).unwrap_or(0),
        );
        session::merge(&mut full, session);
        let secret = ClientSecret {
            value: format!("ek_{}{n:04}", super::random_hex()),
            created_at,
            expires_at,
            session: full,
        };
        lock(&self.minted).push(secret.clone());
        Ok(secret)
    }

    /// The session a secret opens a call with, if it is one the platform minted and it has
    /// not expired.
    pub(crate) fn session_for(&self, value: &str) -> Result<Value, Refused> {
        let minted = lock(&self.minted);
        let secret = minted
            .iter()
            .find(|s| s.value == value)
            .ok_or(Refused::Unknown)?;
        if self.now() >= secret.expires_at {
            return Err(Refused::Expired);
        }
        Ok(secret.session.clone())
    }

    /// Every secret minted so far.
    pub(crate) fn minted(&self) -> Vec<ClientSecret> {
        lock(&self.minted).clone()
    }

    /// Every request so far, in arrival order.
    pub(crate) fn requests(&self) -> Vec<ClientSecretRequest> {
        lock(&self.requests).clone()
    }
}

/// The lifetime `expires_after` asks for: `{"anchor": "created_at", "seconds": 10..7200}`.
fn expires_after(value: Option<&Value>) -> Result<i64, Value> {
    let Some(value) = value else {
        return Ok(DEFAULT_SECONDS);
    };
    let Some(object) = value.as_object() else {
        return Err(error(
            "invalid_type",
            "expires_after must be an object: {\"anchor\": \"created_at\", \"seconds\": 600}.",
        ));
    };
    if let Some(k) = object
        .keys()
        .find(|k| !matches!(k.as_str(), "anchor" | "seconds"))
    {
        return Err(error(
            "unknown_parameter",
            &format!("Unknown parameter: 'expires_after.{k}'."),
        ));
    }
    match object.get("anchor") {
        None => {}
        Some(Value::String(anchor)) if anchor == "created_at" => {}
        Some(_) => {
            return Err(error(
                "invalid_value",
                "expires_after.anchor must be 'created_at', the only anchor supported.",
            ));
        }
    }
    match object.get("seconds") {
        None => Ok(DEFAULT_SECONDS),
        Some(seconds) => seconds
            .as_i64()
            .filter(|s| SECONDS_RANGE.contains(s))
            .ok_or_else(|| {
                error(
                    "invalid_value",
                    "expires_after.seconds must be an integer from 10 to 7200.",
                )
            }),
    }
}

/// The 401 body the API sends for a missing or wrong key.
pub(crate) fn invalid_api_key() -> Value {
    json!({"error": {
        "type": "invalid_request_error",
        "code": "invalid_api_key",
        "param": null,
        "message": "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_with_the_default_lifetime_and_a_full_session() {
        let secrets = ClientSecrets::default();
        let (status, answer) = secrets.handle(
            br#"{"session": {"type": "realtime", "instructions": "Be brief."}}"#,
            true,
        );
        assert_eq!(status, 200, "{answer}");
        let value = answer["value"].as_str().unwrap();
        assert!(value.starts_with("ek_"));
        let expires = answer["expires_at"].as_i64().unwrap();
        assert!((expires - secrets.now() - DEFAULT_SECONDS).abs() <= 1);
        assert_eq!(answer["session"]["instructions"], "Be brief.");
        assert_eq!(answer["session"]["object"], "realtime.session");
        assert!(secrets.session_for(value).is_ok());
        assert_eq!(secrets.requests()[0].value.as_deref(), Some(value));
    }

    #[test]
    fn refuses_bad_bodies_without_minting() {
        let secrets = ClientSecrets::default();
        for body in [
            &br#"{"expires_after": {"anchor": "created_at", "seconds": 5}}"#[..],
            br#"{"expires_after": {"anchor": "now", "seconds": 60}}"#,
            br#"{"expires_after": {"seconds": 7201}}"#,
            br#"{"expires_after": 60}"#,
            br#"{"session": {"instructions": "no type"}}"#,
            br#"{"sesion": {}}"#,
            b"not json",
            b"[1]",
        ] {
            let (status, answer) = secrets.handle(body, true);
            assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
            assert!(answer["error"]["message"].is_string());
        }
        assert_eq!(secrets.handle(b"", false).0, 401);
        assert!(secrets.minted().is_empty());
        assert_eq!(secrets.requests().len(), 9);
    }

    #[test]
    fn secrets_expire_on_the_platform_clock() {
        let secrets = ClientSecrets::default();
        let (_, answer) = secrets.handle(br#"{"expires_after": {"seconds": 10}}"#, true);
        let value = answer["value"].as_str().unwrap();
        assert!(secrets.session_for(value).is_ok());
        secrets.advance_clock(10);
        assert_eq!(secrets.session_for(value), Err(Refused::Expired));
        let past = secrets.issue(&json!({"type": "realtime"}), -1).unwrap();
        assert_eq!(secrets.session_for(&past.value), Err(Refused::Expired));
        assert_eq!(secrets.session_for("ek_never"), Err(Refused::Unknown));
    }
}
