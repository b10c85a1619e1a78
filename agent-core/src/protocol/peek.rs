//! Reads an event's `type` before decoding the rest, so each event is parsed straight into its
//! own payload struct without an intermediate `serde_json::Value`.
//!
//! Live servers put `type` first, so the fast path reads it from the start of the frame without
//! parsing anything else. Otherwise a visitor skims the object for the `type` key, borrowing
//! the string from the frame.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::error::DecodeError;

/// The `type` of the event in `text`, borrowed from `text` when possible.
pub(crate) fn event_type(text: &str) -> Result<Cow<'_, str>, DecodeError> {
    if let Some(fast) = leading_type(text) {
        return Ok(Cow::Borrowed(fast));
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let peeked = match deserializer.deserialize_map(PeekVisitor) {
        Ok(peeked) => peeked,
        Err(source) if source.is_data() => {
            // Valid JSON of the wrong shape, or an object whose `type` is not a string.
            return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Err(source) => DecodeError::NotJson { source },
                Ok(_) if first_byte(text) == Some(b'{') => DecodeError::MissingType,
                Ok(_) => DecodeError::NotAnObject,
            });
        }
        Err(source) => return Err(DecodeError::NotJson { source }),
    };
    peeked.ok_or(DecodeError::MissingType)
}

fn first_byte(text: &str) -> Option<u8> {
    text.bytes().find(|b| !b.is_ascii_whitespace())
}

/// `{ "type" : "<no escapes>"` at the very start of the frame, the shape live servers send.
fn leading_type(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut at = skip_ws(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(bytes, at + 1);
    if !bytes.get(at..)?.starts_with(b"\"type\"") {
        return None;
    }
    at = skip_ws(bytes, at + 6);
    if bytes.get(at) != Some(&b':') {
        return None;
    }
    at = skip_ws(bytes, at + 1);
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let len = bytes
        .get(start..)?
        .iter()
        .position(|&b| b == b'"' || b == b'\\')?;
    if bytes.get(start + len) != Some(&b'"') {
        return None; // an escape: let serde_json unescape it
    }
    text.get(start..start + len)
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
    {
        at += 1;
    }
    at
}

struct PeekVisitor;

impl<'de> Visitor<'de> for PeekVisitor {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<CowStr<'de>>()? {
            if key.0 == "type" && found.is_none() {
                found = Some(map.next_value::<CowStr<'de>>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// A string borrowed from the input when it has no escapes.
struct CowStr<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_leading_type_without_parsing() {
        assert_eq!(
            leading_type(r#"{"type":"response.done","x":1}"#),
            Some("response.done")
        );
        assert_eq!(leading_type(" {\n \"type\" : \"a.b\"}"), Some("a.b"));
        assert_eq!(leading_type(r#"{"event_id":"e","type":"a"}"#), None);
        assert_eq!(leading_type(r#"{"type":"a\u002eb"}"#), None);
        assert_eq!(leading_type(r#"{"type":"unterminated"#), None);
    }

    #[test]
    fn finds_type_anywhere_and_unescapes() {
        assert_eq!(
            event_type(r#"{"event_id":"e","type":"a.b"}"#).unwrap(),
            "a.b"
        );
        assert_eq!(
            event_type(r#"{"a":{"type":"inner"},"type":"a\u002eb"}"#).unwrap(),
            "a.b"
        );
    }

    #[test]
    fn classifies_bad_frames() {
        assert!(matches!(
            event_type("not json"),
            Err(DecodeError::NotJson { .. })
        ));
        assert!(matches!(event_type(""), Err(DecodeError::NotJson { .. })));
        assert!(matches!(event_type("[1,2]"), Err(DecodeError::NotAnObject)));
        assert!(matches!(
            event_type("\"type\""),
            Err(DecodeError::NotAnObject)
        ));
        assert!(matches!(
            event_type(r#"{"event_id":"e"}"#),
            Err(DecodeError::MissingType)
        ));
        assert!(matches!(
            event_type(r#"{"type":5}"#),
            Err(DecodeError::MissingType)
        ));
        assert!(matches!(
            event_type(r#"{"event_id":"e""#),
            Err(DecodeError::NotJson { .. })
        ));
    }
}
