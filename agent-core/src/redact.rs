//! Known secret values, scrubbed from everything the project writes.
//!
//! Redacting by field name (`Authorization`, `api_key`) is not enough: a server can echo a key
//! back in an error message, a model can repeat it in text or in a tool's arguments, and a
//! `${ENV}` header value can end up anywhere. So every secret value the process handles is
//! registered here when it is read — an API key or header value wrapped in a
//! [`Secret`](crate::session::Secret), every `${ENV}` expansion — and everything written to a
//! trace, the terminal, the log, an error message or the history store goes through [`scrub`],
//! which replaces each known value with `[redacted]`. URLs in messages lose their credentials
//! ([`redact_url`]).
//!
//! Values shorter than [`MIN_SECRET_LEN`] are not registered: scrubbing a short value would
//! mangle ordinary text, and nothing that short is a credential.

use std::{
    borrow::Cow,
    sync::{PoisonError, RwLock},
};

use serde_json::Value;

/// What a scrubbed secret reads as.
pub const REDACTED: &str = "[redacted]";

/// The shortest value treated as a secret.
pub const MIN_SECRET_LEN: usize = 8;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Adds `value` to the secrets scrubbed from all output (once; short values are ignored).
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut secrets = SECRETS.write().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_owned());
        // Longest first, so a secret that contains another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// `text` with every known secret replaced by `[redacted]`; borrowed when there was none.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), REDACTED));
        }
    }
    out
}

/// Scrubs every string (and object key) inside `value`, in place.
pub fn scrub_value(value: &mut Value) {
    match value {
        Value::String(text) => {
            if let Cow::Owned(clean) = scrub(text) {
                *text = clean;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => {
            let dirty: Vec<String> = map
                .keys()
                .filter(|k| matches!(scrub(k), Cow::Owned(_)))
                .cloned()
                .collect();
            for key in dirty {
                if let Some(inner) = map.remove(&key) {
                    map.insert(scrub(&key).into_owned(), inner);
                }
            }
            map.values_mut().for_each(scrub_value);
        }
        _ => {}
    }
}

/// The longest registered secret, in bytes (0 when there is none).
fn longest() -> usize {
    SECRETS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .first()
        .map_or(0, String::len)
}

/// Scrubs text that arrives in pieces (streamed reply deltas), where a secret may be split
/// across two pieces: the end of what came so far is held back while it could still be the
/// start of a secret.
#[derive(Debug, Default)]
pub struct StreamScrubber {
    pending: String,
}

impl StreamScrubber {
    /// A scrubber with nothing held back.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next piece; returns what can be shown now.
    pub fn push(&mut self, piece: &str) -> String {
        self.pending.push_str(piece);
        let clean = scrub(&self.pending).into_owned();
        let hold = held_back(&clean);
        let shown = clean[..clean.len() - hold].to_owned();
        self.pending = clean[clean.len() - hold..].to_owned();
        shown
    }

    /// The end of the stream: everything held back, scrubbed.
    pub fn finish(&mut self) -> String {
        scrub(&std::mem::take(&mut self.pending)).into_owned()
    }
}

/// How many bytes at the end of `text` could be the start of a known secret.
fn held_back(text: &str) -> usize {
    let max = longest().saturating_sub(1).min(text.len());
    let secrets = SECRETS.read().unwrap_or_else(PoisonError::into_inner);
    (1..=max)
        .rev()
        .filter(|n| text.is_char_boundary(text.len() - n))
        .find(|n| {
            let tail = &text[text.len() - n..];
            secrets.iter().any(|s| s.starts_with(tail))
        })
        .unwrap_or(0)
}

/// `url` as it may appear in a message: no user name or password, and the values of query
/// parameters that look like credentials (`key`, `token`, `secret`, `password`, `sig`...)
/// replaced; anything that is not a URL is only scrubbed of known secrets.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return scrub(url).into_owned();
    };
    if !parsed.username().is_empty() {
        let _ = parsed.set_username(REDACTED);
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(None);
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let value = if credential_name(&k) {
                REDACTED.to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect();
    if pairs.iter().any(|(k, _)| credential_name(k)) {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // Readable in a message: the marker, not its percent-encoding.
    scrub(&parsed.as_str().replace("%5Bredacted%5D", REDACTED)).into_owned()
}

/// Whether a query parameter's name says it carries a credential.
fn credential_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "sig",
        "auth",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_are_scrubbed_wherever_they_appear() {
        register_secret("sk-redact-test-0123456789");
        register_secret("short");
        let text = "the key sk-redact-test-0123456789 came back; short stays";
        assert_eq!(scrub(text), "the key [redacted] came back; short stays");
        assert!(matches!(scrub("nothing here"), Cow::Borrowed(_)));
        let mut value = serde_json::json!({"a": ["x sk-redact-test-0123456789"], "sk-redact-test-0123456789": 1});
        scrub_value(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": ["x [redacted]"], "[redacted]": 1})
        );
    }

    #[test]
    fn a_secret_split_across_pieces_is_still_scrubbed() {
        register_secret("tok-stream-abcdef-98765");
        let mut stream = StreamScrubber::new();
        let mut shown = stream.push("your token is tok-str");
        shown.push_str(&stream.push("eam-abcdef-"));
        shown.push_str(&stream.push("98765, keep it"));
        shown.push_str(&stream.finish());
        assert_eq!(shown, "your token is [redacted], keep it");
        // Text that only looks like a start is released at the end.
        let mut stream = StreamScrubber::new();
        let mut shown = stream.push("tok-s");
        shown.push_str(&stream.finish());
        assert_eq!(shown, "tok-s");
    }

    #[test]
    fn urls_lose_their_credentials() {
        assert_eq!(
            redact_url("wss://user:pass@example.com/v1?model=m&api_key=abc&x=1"),
            "wss://[redacted]@example.com/v1?model=m&api_key=[redacted]&x=1"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }
}
