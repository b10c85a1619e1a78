//! Standard Webhooks signatures, as OpenAI signs its webhooks: `webhook-signature` holds
//! space-separated `v1,<base64>` entries, each an HMAC-SHA256 over
//! `"{webhook-id}.{webhook-timestamp}.{raw body}"` keyed with the base64 part of the
//! `whsec_` secret. One matching entry is enough (several are sent while a secret rotates);
//! the comparison is constant-time (ring), and a timestamp more than five minutes from now is
//! refused, so a captured request cannot be replayed later.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// How far a webhook's timestamp may be from now.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// The longest `webhook-id` accepted.
const MAX_ID_BYTES: usize = 256;
/// The most signature entries looked at.
const MAX_ENTRIES: usize = 16;

/// The webhook secret's key; it prints as nothing.
pub struct WebhookSecret {
    key: ring::hmac::Key,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

/// The secret is not a Standard Webhooks secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the webhook secret must be `whsec_` followed by base64, as the platform's webhook settings show it"
)]
pub struct BadWebhookSecret;

/// Why a webhook request is refused. The messages name headers, never their values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A signature header is missing, empty or too long.
    #[error("the `{0}` header is missing or malformed")]
    MissingHeader(&'static str),
    /// The timestamp is too far from now.
    #[error("the webhook-timestamp is {skew_secs} s away from now (at most 300 s allowed)")]
    OutsideTolerance {
        /// How far, in seconds.
        skew_secs: u64,
    },
    /// No `v1` entry matches the request.
    #[error("no webhook-signature entry matches the request and the webhook secret")]
    NoMatch,
}

impl WebhookSecret {
    /// The key of a `whsec_<base64>` secret.
    pub fn parse(secret: &str) -> Result<WebhookSecret, BadWebhookSecret> {
        let encoded = secret.trim();
        let encoded = encoded.strip_prefix("whsec_").unwrap_or(encoded);
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| BadWebhookSecret)?;
        if key.len() < 16 {
            return Err(BadWebhookSecret);
        }
        Ok(WebhookSecret {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
        })
    }

    /// Checks a request's three headers over its raw `body`, at `now`.
    pub fn verify(
        &self,
        id: Option<&str>,
        timestamp: Option<&str>,
        signatures: Option<&str>,
        body: &[u8],
        now: SystemTime,
    ) -> Result<(), SignatureError> {
        let id = id
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID_BYTES)
            .ok_or(SignatureError::MissingHeader("webhook-id"))?;
        let stamp: i64 = timestamp
            .and_then(|t| t.trim().parse().ok())
            .ok_or(SignatureError::MissingHeader("webhook-timestamp"))?;
        let signatures = signatures
            .filter(|s| !s.trim().is_empty() && s.len() <= 4096)
            .ok_or(SignatureError::MissingHeader("webhook-signature"))?;
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let skew = now_secs.abs_diff(stamp);
        if skew > TOLERANCE.as_secs() {
            return Err(SignatureError::OutsideTolerance { skew_secs: skew });
        }
        let mut signed = format!("{id}.{stamp}.").into_bytes();
        signed.extend_from_slice(body);
        let matches = signatures
            .split_whitespace()
            .take(MAX_ENTRIES)
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|tag| base64::engine::general_purpose::STANDARD.decode(tag).ok())
            .any(|tag| ring::hmac::verify(&self.key, &signed, &tag).is_ok());
        if matches {
            Ok(())
        } else {
            Err(SignatureError::NoMatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const STAMP: u64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn check(signatures: &str, now: u64) -> Result<(), SignatureError> {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let stamp = STAMP.to_string();
        secret.verify(Some(ID), Some(&stamp), Some(signatures), BODY, at(now))
    }

    #[test]
    fn the_specification_example_verifies_within_five_minutes() {
        assert_eq!(check(SIGNATURE, STAMP), Ok(()));
        assert_eq!(check(SIGNATURE, STAMP + 300), Ok(()));
        assert_eq!(check(SIGNATURE, STAMP - 300), Ok(()));
        assert_eq!(
            check(SIGNATURE, STAMP + 301),
            Err(SignatureError::OutsideTolerance { skew_secs: 301 })
        );
    }

    #[test]
    fn one_matching_entry_among_several_is_enough() {
        let rotated = format!("v1,Zm9v v2,abc {SIGNATURE}");
        assert_eq!(check(&rotated, STAMP), Ok(()));
        assert_eq!(check("v1,Zm9v v1,%%%", STAMP), Err(SignatureError::NoMatch));
        // The right tag under another scheme name does not count.
        let v2 = SIGNATURE.replace("v1,", "v2,");
        assert_eq!(check(&v2, STAMP), Err(SignatureError::NoMatch));
    }

    #[test]
    fn a_changed_body_id_or_timestamp_breaks_the_signature() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let stamp = STAMP.to_string();
        let now = at(STAMP);
        let other_body = br#"{"test": 2432232315}"#;
        assert!(
            secret
                .verify(Some(ID), Some(&stamp), Some(SIGNATURE), other_body, now)
                .is_err()
        );
        assert!(
            secret
                .verify(Some("msg_other"), Some(&stamp), Some(SIGNATURE), BODY, now)
                .is_err()
        );
        let later = (STAMP + 1).to_string();
        assert!(
            secret
                .verify(Some(ID), Some(&later), Some(SIGNATURE), BODY, now)
                .is_err()
        );
    }

    #[test]
    fn missing_headers_are_named() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let now = at(STAMP);
        let stamp = STAMP.to_string();
        assert_eq!(
            secret.verify(None, Some(&stamp), Some(SIGNATURE), BODY, now),
            Err(SignatureError::MissingHeader("webhook-id"))
        );
        assert_eq!(
            secret.verify(Some(ID), Some("soon"), Some(SIGNATURE), BODY, now),
            Err(SignatureError::MissingHeader("webhook-timestamp"))
        );
        assert_eq!(
            secret.verify(Some(ID), Some(&stamp), Some(" "), BODY, now),
            Err(SignatureError::MissingHeader("webhook-signature"))
        );
    }

    #[test]
    fn secrets_must_be_base64_keys() {
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err(), "5 bytes");
        let shown = format!("{:?}", WebhookSecret::parse(SECRET).unwrap());
        assert!(!shown.contains("MfKQ"), "{shown}");
    }
}
