//! Event names and shapes that differ between GA and beta, error events and noise.

use serde_json::{Value, json};

use super::Dialect;
use super::faults::ErrorSpec;

/// The streaming event names of one dialect.
pub(crate) struct Names {
    pub(crate) text_delta: &'static str,
    pub(crate) text_done: &'static str,
    pub(crate) audio_delta: &'static str,
    pub(crate) audio_done: &'static str,
    pub(crate) transcript_delta: &'static str,
    pub(crate) transcript_done: &'static str,
}

pub(crate) fn names(dialect: Dialect) -> Names {
    match dialect {
        Dialect::Ga => Names {
            text_delta: "response.output_text.delta",
            text_done: "response.output_text.done",
            audio_delta: "response.output_audio.delta",
            audio_done: "response.output_audio.done",
            transcript_delta: "response.output_audio_transcript.delta",
            transcript_done: "response.output_audio_transcript.done",
        },
        Dialect::Beta => Names {
            text_delta: "response.text.delta",
            text_done: "response.text.done",
            audio_delta: "response.audio.delta",
            audio_done: "response.audio.done",
            transcript_delta: "response.audio_transcript.delta",
            transcript_done: "response.audio_transcript.done",
        },
    }
}

/// Content type of assistant text / audio inside an item.
pub(crate) fn assistant_content_type(dialect: Dialect, audio: bool) -> &'static str {
    match (dialect, audio) {
        (Dialect::Ga, false) => "output_text",
        (Dialect::Ga, true) => "output_audio",
        (Dialect::Beta, false) => "text",
        (Dialect::Beta, true) => "audio",
    }
}

/// Adds `"object": "realtime.item"` for beta (live beta items carry it, live GA items do not).
pub(crate) fn finish_item(dialect: Dialect, mut item: Value) -> Value {
    if dialect == Dialect::Beta
        && let Some(obj) = item.as_object_mut()
    {
        obj.insert("object".into(), json!("realtime.item"));
    }
    item
}

/// The body of an `error` event (without `event_id`, which the sender assigns).
pub(crate) fn error_event(spec: &ErrorSpec, client_event_id: Option<&str>) -> Value {
    json!({
        "type": "error",
        "error": {
            "type": spec.error_type,
            "code": spec.code,
            "message": spec.message,
            "param": spec.param,
            "event_id": client_event_id,
        }
    })
}

/// An `invalid_request_error` with a code and a param.
pub(crate) fn invalid_request(
    code: &str,
    message: impl Into<String>,
    param: Option<&str>,
) -> ErrorSpec {
    ErrorSpec {
        error_type: "invalid_request_error".into(),
        code: Some(code.into()),
        message: message.into(),
        param: param.map(Into::into),
    }
}

/// Deterministic padding like the live GA `obfuscation` field on deltas.
pub(crate) fn obfuscation(seed: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let len = 4 + seed % 12;
    (0..len)
        .map(|i| {
            let idx = (seed.wrapping_mul(31).wrapping_add(i * 7)) % ALPHABET.len();
            ALPHABET.get(idx).map_or('x', |b| char::from(*b))
        })
        .collect()
}

/// Adds unknown fields and nulls to an event (the `noise` fault).
pub(crate) fn add_noise(event: &mut Value, seq: u64) {
    if let Some(obj) = event.as_object_mut() {
        obj.insert(
            "x_testkit_unknown".into(),
            json!({"seq": seq, "nested": [1, null, {"deep": null}]}),
        );
        obj.insert("x_testkit_null".into(), Value::Null);
        for key in ["item", "response", "session", "part"] {
            if let Some(inner) = obj.get_mut(key).and_then(Value::as_object_mut) {
                inner.insert("x_testkit_unknown".into(), Value::Null);
            }
        }
    }
}

/// An event of a type no client knows (the `noise` fault).
pub(crate) fn unknown_event(seq: u64) -> Value {
    json!({
        "type": "testkit.unknown_event",
        "payload": {"seq": seq, "note": "an event type this client does not know", "value": null},
    })
}

/// Text that does not parse as JSON (the `malformed_after` fault).
pub(crate) fn malformed_frame(seq: u64) -> String {
    format!(
        "{{\"type\": \"response.output_text.delta\", \"event_id\": \"event_bad{seq}\", \"delta\": \"cut off"
    )
}

/// Event types a client may send, per dialect, for the `invalid_value` message.
pub(crate) fn client_event_types(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Ga => &[
            "session.update",
            "input_audio_buffer.append",
            "input_audio_buffer.commit",
            "input_audio_buffer.clear",
            "conversation.item.create",
            "conversation.item.retrieve",
            "conversation.item.truncate",
            "conversation.item.delete",
            "response.create",
            "response.cancel",
            "output_audio_buffer.clear",
        ],
        Dialect::Beta => &[
            "session.update",
            "transcription_session.update",
            "input_audio_buffer.append",
            "input_audio_buffer.commit",
            "input_audio_buffer.clear",
            "conversation.item.create",
            "conversation.item.retrieve",
            "conversation.item.truncate",
            "conversation.item.delete",
            "response.create",
            "response.cancel",
            "output_audio_buffer.clear",
        ],
    }
}

/// Splits text into word-sized deltas that keep their leading whitespace (" shipped"), like live
/// traffic; concatenating them gives the text back exactly.
pub(crate) fn word_deltas(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if in_word {
                out.push(std::mem::take(&mut current));
                in_word = false;
            }
            current.push(c);
        } else {
            in_word = true;
            current.push(c);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits a string into `n` roughly equal pieces on char boundaries (function-call arguments).
pub(crate) fn split_even(text: &str, max_piece_chars: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    chars
        .chunks(max_piece_chars.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_deltas_round_trip() {
        let text = "Your order  A1001\nshipped. ";
        let d = word_deltas(text);
        assert_eq!(d.concat(), text);
        assert_eq!(d[0], "Your");
        assert_eq!(d[1], " order");
    }

    #[test]
    fn split_even_round_trip() {
        let s = "{\"order_id\":\"Ä1001\"}";
        assert_eq!(split_even(s, 5).concat(), s);
        assert!(split_even("", 5).is_empty());
    }
}
