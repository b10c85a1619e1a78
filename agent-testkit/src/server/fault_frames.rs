//! Frames that faults build or rewrite: a malformed `response.done` and an oversized event.
//!
//! Kept apart from the connection loop so the shapes can be checked without a socket.

use serde_json::{Value, json};

use super::faults::MalformedDone;

/// Breaks a `response.done` event the way `kind` says; other events are left alone.
///
/// The response id and status are never touched, so a client can still tell which response
/// ended and how.
pub(crate) fn rewrite_response_done(kind: MalformedDone, event: &mut Value) {
    if event.get("type").and_then(Value::as_str) != Some("response.done") {
        return;
    }
    let Some(response) = event.get_mut("response").and_then(Value::as_object_mut) else {
        return;
    };
    match kind {
        MalformedDone::FloatTokens => {
            if let Some(usage) = response.get_mut("usage") {
                floats(usage);
            }
        }
        MalformedDone::NegativeTokens => {
            let usage = response
                .entry("usage")
                .or_insert_with(|| json!({"input_tokens": 0, "output_tokens": 0}));
            if !usage.is_object() {
                *usage = json!({"input_tokens": 0, "output_tokens": 0});
            }
            if let Some(usage) = usage.as_object_mut() {
                for key in ["input_tokens", "output_tokens"] {
                    let n = usage.get(key).and_then(Value::as_i64).unwrap_or(0);
                    usage.insert(key.into(), json!(-n.saturating_abs().max(1)));
                }
            }
        }
        MalformedDone::OutputNotList => {
            response.insert("output".into(), json!("oops"));
        }
        MalformedDone::UsageNotObject => {
            response.insert("usage".into(), json!("n/a"));
        }
    }
}

/// Turns every integer in `value`, at any depth, into a float (`10` → `10.0`).
fn floats(value: &mut Value) {
    match value {
        Value::Number(n) if !n.is_f64() => {
            if let Some(f) = n.as_f64() {
                *value = json!(f);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(floats),
        Value::Object(fields) => fields.values_mut().for_each(floats),
        _ => {}
    }
}

/// A valid `response.output_text.delta` event of exactly `bytes` bytes (or the bare event when
/// `bytes` is smaller), its `delta` padded with `x`.
pub(crate) fn oversized_event(bytes: usize, seq: u64) -> String {
    let head = format!(
        "{{\"type\":\"response.output_text.delta\",\"event_id\":\"event_big{seq}\",\"response_id\":\"resp_oversized\",\"item_id\":\"item_oversized\",\"output_index\":0,\"content_index\":0,\"delta\":\""
    );
    let tail = "\"}";
    let pad = bytes.saturating_sub(head.len() + tail.len());
    let mut out = String::with_capacity(head.len() + pad + tail.len());
    out.push_str(&head);
    out.extend(std::iter::repeat_n('x', pad));
    out.push_str(tail);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done() -> Value {
        json!({
            "type": "response.done",
            "response": {
                "id": "resp_0001",
                "status": "completed",
                "output": [{"id": "item_1"}],
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 0,
                    "input_token_details": {"cached_tokens": 64, "ratio": 0.5},
                },
            },
        })
    }

    #[test]
    fn float_tokens_reach_nested_integers() {
        let mut ev = done();
        rewrite_response_done(MalformedDone::FloatTokens, &mut ev);
        let text = ev.to_string();
        assert!(text.contains("\"input_tokens\":10.0"), "{text}");
        assert!(text.contains("\"cached_tokens\":64.0"), "{text}");
        assert_eq!(ev["response"]["usage"]["input_token_details"]["ratio"], 0.5);
        assert_eq!(ev["response"]["id"], "resp_0001");
    }

    #[test]
    fn negative_tokens_are_negative_even_from_zero() {
        let mut ev = done();
        rewrite_response_done(MalformedDone::NegativeTokens, &mut ev);
        assert_eq!(ev["response"]["usage"]["input_tokens"], -10);
        assert_eq!(ev["response"]["usage"]["output_tokens"], -1);
        assert_eq!(ev["response"]["status"], "completed");
    }

    #[test]
    fn shapes_are_replaced_and_other_events_untouched() {
        let mut ev = done();
        rewrite_response_done(MalformedDone::OutputNotList, &mut ev);
        assert_eq!(ev["response"]["output"], "oops");
        let mut ev = done();
        rewrite_response_done(MalformedDone::UsageNotObject, &mut ev);
        assert_eq!(ev["response"]["usage"], "n/a");
        let mut other = json!({"type": "response.created", "response": {"usage": null}});
        let before = other.clone();
        rewrite_response_done(MalformedDone::UsageNotObject, &mut other);
        assert_eq!(other, before);
    }

    #[test]
    fn oversized_event_has_the_exact_size_and_parses() {
        for bytes in [1_000, 70_000] {
            let text = oversized_event(bytes, 7);
            assert_eq!(text.len(), bytes);
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["type"], "response.output_text.delta");
        }
        let bare = oversized_event(0, 7);
        assert!(serde_json::from_str::<Value>(&bare).is_ok());
    }
}
