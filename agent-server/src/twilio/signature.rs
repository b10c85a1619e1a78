//! `X-Twilio-Signature`: base64(HMAC-SHA1(auth token, URL + sorted form parameters)).
//!
//! The URL is the server's configured public URL plus the request's path and query, never the
//! request's `Host` header, which the caller controls. Verification is constant-time (ring's
//! `hmac::verify`).

use base64::Engine as _;
use ring::hmac;

/// The data Twilio signs: `url`, then every parameter sorted by name (then value), each as
/// name followed by value with no separator.
pub fn signed_data(url: &str, params: &[(String, String)]) -> Vec<u8> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut data = Vec::with_capacity(url.len() + params.len() * 24);
    data.extend_from_slice(url.as_bytes());
    for (name, value) in sorted {
        data.extend_from_slice(name.as_bytes());
        data.extend_from_slice(value.as_bytes());
    }
    data
}

/// The signature Twilio would send for this request.
pub fn sign(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    let tag = hmac::sign(&key, &signed_data(url, params));
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Whether `signature` (the header's value) signs this request, compared in constant time. A
/// header that is not base64 fails like a wrong signature.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth_token.as_bytes());
    hmac::verify(&key, &signed_data(url, params), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The worked example of Twilio's security documentation.
    #[test]
    fn matches_twilios_published_example() {
        let p = params(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let signature = sign("12345", url, &p);
        assert_eq!(signature, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert!(verify("12345", url, &p, &signature));
    }

    #[test]
    fn order_of_parameters_does_not_matter_but_every_byte_does() {
        let p = params(&[
            ("To", "+15550100"),
            ("CallSid", "CA1"),
            ("From", "+15550111"),
        ]);
        let mut reversed = p.clone();
        reversed.reverse();
        let url = "https://voice.example.com/twilio/voice";
        let signature = sign("token", url, &p);
        assert!(verify("token", url, &reversed, &signature));
        assert!(!verify("other", url, &p, &signature), "another token");
        assert!(!verify(
            "token",
            "https://evil.example.com/twilio/voice",
            &p,
            &signature
        ));
        let mut changed = p.clone();
        changed[0].1 = "+15550101".into();
        assert!(!verify("token", url, &changed, &signature), "a changed To");
        assert!(!verify("token", url, &p, "not base64!"));
        assert!(!verify("token", url, &p, ""));
    }
}
