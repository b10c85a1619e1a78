//! Deserialize helpers for what live servers really send.
//!
//! Servers send `null` for many fields the spec types as non-null (`event_id`, arrays,
//! `status_details`, ...). These helpers turn such nulls into the field's default instead of
//! failing the whole event.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Reads a value, treating JSON `null` like an absent field (the type's default).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads an optional value that some servers fill with junk (for example a debugging proxy
/// that replaced an object with a placeholder string). A value of the wrong shape becomes
/// `None` with a warning in the log instead of failing the event that carries it.
pub(crate) fn lenient_option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    if value.is_null() {
        return Ok(None);
    }
    match T::deserialize(&value) {
        Ok(parsed) => Ok(Some(parsed)),
        Err(error) => {
            tracing::warn!(
                %error,
                value = %value,
                "ignoring a malformed optional field in a server event"
            );
            Ok(None)
        }
    }
}

/// Reads a `response.done` that does not decode as a whole: the id and status always (they end
/// the response), `usage` if its counts can be read as whole non-negative numbers (`10.0`
/// reads as 10), and every output item that decodes. What was dropped is listed in
/// `malformed`. `None` when the frame has no `response` object with a string id.
pub(crate) fn response_done(text: &str) -> Option<super::server_event::ResponseDone> {
    use super::response::{Response, ResponseStatus, StatusDetails};
    let value: Value = serde_json::from_str(text).ok()?;
    let raw = value.get("response")?.as_object()?;
    let id = raw.get("id")?.as_str()?.to_owned();
    let mut malformed = Vec::new();
    let status = match raw.get("status") {
        None | Some(Value::Null) => None,
        Some(status) => match ResponseStatus::deserialize(status) {
            Ok(status) => Some(status),
            Err(_) => {
                malformed.push(format!("status {status} is not a response status"));
                None
            }
        },
    };
    let status_details = raw
        .get("status_details")
        .and_then(|d| StatusDetails::deserialize(d).ok());
    let usage = match raw.get("usage") {
        None | Some(Value::Null) => None,
        Some(usage) => {
            let mut problems = Vec::new();
            let coerced = whole_counts(usage, "usage", &mut problems);
            match super::usage::Usage::deserialize(&coerced) {
                Ok(parsed) if problems.is_empty() => Some(parsed),
                Ok(parsed) => {
                    malformed.extend(problems);
                    Some(parsed)
                }
                Err(error) => {
                    malformed.push(format!(
                        "usage {usage} is not readable ({error}); its tokens are not counted"
                    ));
                    None
                }
            }
        }
    };
    let output = match raw.get("output") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match super::item::Item::deserialize(item) {
                Ok(item) => Some(item),
                Err(error) => {
                    malformed.push(format!(
                        "output[{i}] is not an item ({error}); it was left out"
                    ));
                    None
                }
            })
            .collect(),
        Some(other) => {
            malformed.push(format!(
                "output is {} instead of a list of items; it was left out",
                kind(other)
            ));
            Vec::new()
        }
    };
    let event_id = value
        .get("event_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some(super::server_event::ResponseDone {
        event_id,
        response: Response {
            id,
            status,
            status_details,
            output,
            usage,
            ..Response::default()
        },
        malformed,
    })
}

/// `value` with every number that should be a token count turned into a whole non-negative
/// integer: `10.0` becomes 10; a fraction is rounded down and a negative count becomes 0, each
/// with a note in `problems`.
fn whole_counts(value: &Value, path: &str, problems: &mut Vec<String>) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), whole_counts(v, &format!("{path}.{k}"), problems)))
                .collect(),
        ),
        Value::Number(n) if n.as_u64().is_some() => value.clone(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f < 0.0 {
                problems.push(format!("{path} is negative ({n}); counted as 0"));
                Value::from(0u64)
            } else {
                if f.fract() == 0.0 {
                    problems.push(format!("{path} is not an integer ({n}); read as {f:.0}"));
                } else {
                    problems.push(format!("{path} is not a whole number ({n}); rounded down"));
                }
                Value::from(f as u64)
            }
        }
        other => other.clone(),
    }
}

/// A JSON value's kind, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(response: Value) -> super::super::server_event::ResponseDone {
        let text =
            serde_json::json!({"type": "response.done", "event_id": "e1", "response": response})
                .to_string();
        match super::super::ServerEvent::decode(&text).unwrap() {
            super::super::ServerEvent::ResponseDone(done) => done,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_malformed_response_done_keeps_its_id_and_status() {
        let floats = done(
            serde_json::json!({"id": "r1", "status": "completed", "output": [],
            "usage": {"total_tokens": 30.0, "input_tokens": 10.0, "output_tokens": 20.0}}),
        );
        assert_eq!(floats.response.id, "r1");
        assert_eq!(
            floats.response.usage.as_ref().map(|u| u.input_tokens),
            Some(10)
        );
        assert_eq!(floats.malformed.len(), 3, "{:?}", floats.malformed);
        assert!(
            floats
                .malformed
                .contains(&"usage.input_tokens is not an integer (10.0); read as 10".to_owned())
        );

        let negative = done(
            serde_json::json!({"id": "r2", "status": "completed", "output": [],
            "usage": {"total_tokens": 5, "input_tokens": -5, "output_tokens": 10}}),
        );
        assert_eq!(
            negative.response.usage.as_ref().map(|u| u.input_tokens),
            Some(0)
        );
        assert_eq!(
            negative.malformed,
            ["usage.input_tokens is negative (-5); counted as 0"]
        );

        let not_a_list = done(
            serde_json::json!({"id": "r3", "status": "cancelled", "output": "oops", "usage": "n/a"}),
        );
        assert_eq!(not_a_list.response.id, "r3");
        assert_eq!(
            not_a_list.response.status,
            Some(super::super::response::ResponseStatus::Cancelled)
        );
        assert!(not_a_list.response.output.is_empty());
        assert_eq!(not_a_list.malformed.len(), 2, "{:?}", not_a_list.malformed);
        assert!(not_a_list.malformed[1].starts_with("output is a string instead of a list"));
    }

    #[test]
    fn a_response_done_without_an_id_is_still_an_error() {
        let text = r#"{"type":"response.done","response":{"status":"completed","output":"x"}}"#;
        assert!(super::super::ServerEvent::decode(text).is_err());
    }

    #[derive(Deserialize, Default, Debug, PartialEq)]
    struct Holder {
        #[serde(default, deserialize_with = "null_as_default")]
        list: Vec<u32>,
        #[serde(default, deserialize_with = "lenient_option")]
        detail: Option<Detail>,
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Detail {
        n: u32,
    }

    #[test]
    fn null_becomes_default() {
        let holder: Holder = serde_json::from_str(r#"{"list": null}"#).unwrap();
        assert_eq!(holder, Holder::default());
    }

    #[test]
    fn lenient_keeps_good_values_and_drops_junk() {
        let good: Holder = serde_json::from_str(r#"{"detail": {"n": 3}}"#).unwrap();
        assert_eq!(good.detail, Some(Detail { n: 3 }));
        let junk: Holder = serde_json::from_str(r#"{"detail": "__truncated__"}"#).unwrap();
        assert_eq!(junk.detail, None);
    }
}
