//! Which trace frames can be written as they came: a walk over a frame's JSON that reads every
//! key (at any depth) without building the value.
//!
//! [`redact`](crate::trace::redact) needs the frame as a `serde_json::Value`: parsing it, and
//! writing it out again, was most of what a trace cost, for frames that almost never hold
//! anything to redact (a transcript delta, `response.created`). This walk says whether
//! `redact` would change anything; when it would not, the frame's own text goes into the
//! trace line. It decides from the keys themselves, escapes decoded, so a key spelled in an
//! unusual way is not missed, and it allocates nothing.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// What a walk found.
#[derive(Debug, Default, Clone, Copy)]
struct Found {
    /// A key `redact` always replaces (a credential, or `headers`).
    secret_key: bool,
    /// An `audio` key, or a `delta` key: audio payloads when audio is left out.
    audio_key: bool,
    delta_key: bool,
    /// A `type` whose value marks audio for `redact`: an audio event or an audio content part.
    audio_type: bool,
}

/// Whether `text` is JSON that [`redact`](crate::trace::redact) would leave as it is, so it
/// can be written to the trace unchanged. `false` for anything else (not JSON, a line break
/// in it, an escape that could hide a secret's spelling): those take the full path.
pub(crate) fn unchanged_by_redact(text: &str, include_audio: bool) -> bool {
    // A frame must be one line of the trace. The trace's scrub looks for known secret values
    // in the text; `\u` and `\/` escapes could spell one differently than the re-serialized
    // value would, so such frames take the full path (the others escape only quotes,
    // backslashes and control characters, which no credential holds).
    let bytes = text.as_bytes();
    for at in memchr::memchr3_iter(b'\\', b'\n', b'\r', bytes) {
        if bytes[at] != b'\\' || matches!(bytes.get(at + 1), Some(b'u' | b'/')) {
            return false;
        }
    }
    let mut found = Found::default();
    let mut de = serde_json::Deserializer::from_str(text);
    if (Walk { found: &mut found }).deserialize(&mut de).is_err() || de.end().is_err() {
        return false;
    }
    !found.secret_key
        && (include_audio || !(found.audio_key || (found.delta_key && found.audio_type)))
}

/// What a key means to `redact`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Secret,
    Audio,
    Delta,
    Type,
    Other,
}

impl Key {
    fn of(key: &str) -> Key {
        let secret = crate::trace::SECRET_KEYS
            .iter()
            .chain(&["headers"])
            .any(|s| s.eq_ignore_ascii_case(key));
        if secret {
            Key::Secret
        } else if key.eq_ignore_ascii_case("audio") {
            Key::Audio
        } else if key.eq_ignore_ascii_case("delta") {
            Key::Delta
        } else if key.eq_ignore_ascii_case("type") {
            Key::Type
        } else {
            Key::Other
        }
    }
}

/// Reads a key (borrowed or unescaped, never kept) as a [`Key`].
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Key, E> {
        Ok(Key::of(key))
    }
}

/// Reads a `type` value: whether it marks audio. Anything but a string fails the walk (the
/// frame then takes the full path, which copes with anything).
struct TypeSeed;

impl<'de> DeserializeSeed<'de> for TypeSeed {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for TypeSeed {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a type name")
    }

    fn visit_str<E>(self, kind: &str) -> Result<bool, E> {
        Ok(crate::trace::is_audio_type(kind))
    }
}

/// Walks any value, noting what its keys mean.
struct Walk<'f> {
    found: &'f mut Found,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Key::Secret => self.found.secret_key = true,
                Key::Audio => self.found.audio_key = true,
                Key::Delta => self.found.delta_key = true,
                Key::Type => {
                    if map.next_value_seed(TypeSeed)? {
                        self.found.audio_type = true;
                    }
                    continue;
                }
                Key::Other => {}
            }
            map.next_value_seed(Walk {
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Walk {
                found: &mut *self.found,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<(), E> {
        Err(E::custom("bytes are not JSON"))
    }
}
