//! Standard Webhooks signatures, as the platform signs its webhooks: `webhook-signature` is a
//! space-separated list of `v1,<base64>` entries, each an HMAC-SHA256 over
//! `"{webhook-id}.{webhook-timestamp}.{body}"` keyed with the base64 part of the `whsec_`
//! secret.

use base64::Engine as _;

/// How a webhook request is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookSigning {
    /// As the platform signs: the right secret, the current time.
    Valid,
    /// Another secret.
    WrongSecret,
    /// No signature headers at all.
    Missing,
    /// A valid signature over a timestamp 10 minutes old (a replayed capture).
    Expired,
    /// A valid signature over a timestamp 10 minutes ahead.
    FromTheFuture,
    /// A signature entry that is not base64.
    Malformed,
    /// Two entries, as during a secret rotation: one from an old secret, then the right one.
    Rotated,
}

/// The `v1,<base64>` entry for `body` sent as `id` at `timestamp`, signed with `secret`
/// (`whsec_<base64>`; a secret without the prefix is used as raw bytes).
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = secret_key(secret);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &signed);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

fn secret_key(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|_| encoded.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

/// The three signature headers for `body` under `signing`, at `now` (unix seconds).
pub fn headers(
    secret: &str,
    id: &str,
    now: i64,
    body: &[u8],
    signing: WebhookSigning,
) -> Vec<(String, String)> {
    let stamp = match signing {
        WebhookSigning::Expired => now - 600,
        WebhookSigning::FromTheFuture => now + 600,
        _ => now,
    };
    let signature = match signing {
        WebhookSigning::Missing => return Vec::new(),
        WebhookSigning::WrongSecret => sign("whsec_d3Jvbmctc2VjcmV0LWtleQ==", id, stamp, body),
        WebhookSigning::Malformed => "v1,%%%not-base64%%%".to_owned(),
        WebhookSigning::Rotated => format!(
            "v1,b2xkLXNlY3JldC1zaWduYXR1cmUtMDEyMzQ1Njc4OWFi {}",
            sign(secret, id, stamp, body)
        ),
        _ => sign(secret, id, stamp, body),
    };
    vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), stamp.to_string()),
        ("webhook-signature".to_owned(), signature),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
