//! JSON Lines export and import: one GA conversation item per line.
//!
//! The lossless format: every item exactly as stored (ids, status, audio parts, MCP items
//! included), in order, so an export can be read back by [`from_jsonl`] or by any tool that
//! knows the Realtime item shape.
//!
//! Reading is strict, because what is imported is later replayed to the model by `--resume`:
//! each line must be one item in exactly the shape [`to_jsonl`] writes (no missing or unknown
//! fields), of a type that can be replayed ([`REPLAYABLE_ITEM_TYPES`]), a message must have a
//! known role and content parts, and a `function_call_output` must answer a call on an earlier
//! line. Anything else is refused with its line number, never stored.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::protocol::{ContentPart, Item, Role};

/// The item types that `conversation.item.create` accepts, so a resumed session can replay
/// them. Other types (and items this version cannot read) are refused by [`from_jsonl`].
pub const REPLAYABLE_ITEM_TYPES: &[&str] = &[
    "message",
    "function_call",
    "function_call_output",
    "mcp_approval_request",
    "mcp_approval_response",
    "mcp_list_tools",
    "mcp_call",
];

/// The content part types a replayed message may hold.
const REPLAYABLE_PART_TYPES: &[&str] = &[
    "input_text",
    "input_audio",
    "input_image",
    "output_text",
    "output_audio",
];

/// Why text is not a JSON Lines export of a conversation.
#[derive(Debug, thiserror::Error)]
pub enum JsonlError {
    /// No line holds an item.
    #[error(
        "there are no items in it; a JSON Lines export has one conversation item per line, as \
         `agent history export ID --format jsonl` writes them"
    )]
    Empty,
    /// A line is not an exported item.
    #[error(
        "line {line}: {problem}; each line must be one conversation item as \
         `agent history export ID --format jsonl` writes it"
    )]
    Line {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
}

/// The items as JSON Lines: one GA item per line, each line ending in `\n`.
pub fn to_jsonl(items: &[Item]) -> String {
    let mut out = String::new();
    for item in items {
        out.push_str(&super::store::item_json(item));
        out.push('\n');
    }
    out
}

/// Reads items written by [`to_jsonl`]; blank lines are skipped. See the module docs for what
/// is refused.
pub fn from_jsonl(text: &str) -> Result<Vec<Item>, JsonlError> {
    let mut items = Vec::new();
    let mut calls: HashSet<String> = HashSet::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let refuse = |problem: String| JsonlError::Line {
            line: index + 1,
            problem,
        };
        let item = item_of_line(line).map_err(refuse)?;
        match &item {
            Item::FunctionCall(call) => {
                calls.insert(call.call_id.clone());
            }
            Item::FunctionCallOutput(output) if !calls.contains(&output.call_id) => {
                return Err(refuse(format!(
                    "this function_call_output answers call `{}`, but no earlier line is a \
                     function_call with that call_id",
                    output.call_id
                )));
            }
            _ => {}
        }
        items.push(item);
    }
    if items.is_empty() {
        return Err(JsonlError::Empty);
    }
    Ok(items)
}

/// One line as an item, or what is wrong with it.
fn item_of_line(line: &str) -> Result<Item, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("it is not JSON ({e})"))?;
    let kind = match value.get("type") {
        _ if !value.is_object() => {
            return Err(format!(
                "it is {}, not a JSON object",
                crate::tool::kind_of(&value)
            ));
        }
        Some(Value::String(kind)) => kind.as_str(),
        Some(other) => {
            return Err(format!(
                "its `type` is {}, not a string",
                crate::tool::kind_of(other)
            ));
        }
        None => {
            return Err(format!(
                "it has no `type`, so it is not a conversation item (types: {}; a Chat \
                 Completions export is one JSON array, not one message a line)",
                REPLAYABLE_ITEM_TYPES.join(", ")
            ));
        }
    };
    let item = typed(kind, &value)?;
    check_replayable(&item)?;
    let written = serde_json::to_value(&item).map_err(|e| e.to_string())?;
    match first_difference(&value, &written, "") {
        Some(problem) => Err(format!("not a `{kind}` item as exported: {problem}")),
        None => Ok(item),
    }
}

/// The item of type `kind`, with serde's reason when the fields do not fit.
fn typed(kind: &str, value: &Value) -> Result<Item, String> {
    fn parse<T: DeserializeOwned>(value: &Value, wrap: fn(T) -> Item) -> Result<Item, String> {
        T::deserialize(value).map(wrap).map_err(|e| e.to_string())
    }
    let parsed = match kind {
        "message" => parse(value, Item::Message),
        "function_call" => parse(value, Item::FunctionCall),
        "function_call_output" => parse(value, Item::FunctionCallOutput),
        "mcp_approval_request" => parse(value, Item::McpApprovalRequest),
        "mcp_approval_response" => parse(value, Item::McpApprovalResponse),
        "mcp_list_tools" => parse(value, Item::McpListTools),
        "mcp_call" => parse(value, Item::McpCall),
        other => {
            return Err(format!(
                "item type `{other}` cannot be replayed into a session, so it is not imported \
                 (replayable types: {}); remove the line to import the rest",
                REPLAYABLE_ITEM_TYPES.join(", ")
            ));
        }
    };
    parsed.map_err(|e| format!("not a valid `{kind}` item ({e})"))
}

/// Refuses what the typed item accepts but a session cannot replay.
fn check_replayable(item: &Item) -> Result<(), String> {
    match item {
        Item::Message(message) => {
            if let Role::Other(role) = &message.role {
                return Err(format!(
                    "a message with role `{role}`; expected user, assistant or system"
                ));
            }
            for (index, part) in message.content.iter().enumerate() {
                let kind = match part {
                    ContentPart::Unknown(raw) => raw.get("type").and_then(Value::as_str),
                    known => known.ga_type(),
                };
                if !kind.is_some_and(|kind| REPLAYABLE_PART_TYPES.contains(&kind)) {
                    return Err(format!(
                        "content part {index} is of type {}, which cannot be replayed \
                         (expected one of: {})",
                        kind.map_or("(none)".to_owned(), |k| format!("`{k}`")),
                        REPLAYABLE_PART_TYPES.join(", ")
                    ));
                }
            }
        }
        Item::FunctionCall(call) if call.call_id.is_empty() || call.name.is_empty() => {
            return Err("a function_call needs a non-empty `call_id` and `name`".to_owned());
        }
        Item::FunctionCallOutput(output) if output.call_id.is_empty() => {
            return Err("a function_call_output needs a non-empty `call_id`".to_owned());
        }
        _ => {}
    }
    Ok(())
}

/// Where `original` differs from what the export writes for the same item: a field it never
/// writes, one it always writes that is missing, or a value it would write differently.
fn first_difference(original: &Value, written: &Value, at: &str) -> Option<String> {
    let field = |key: &str| {
        if at.is_empty() {
            key.to_owned()
        } else {
            format!("{at}.{key}")
        }
    };
    match (original, written) {
        (Value::Object(original), Value::Object(written)) => {
            for (key, value) in original {
                match written.get(key) {
                    None if value.is_null() => {
                        return Some(format!("`{}` is null; leave it out", field(key)));
                    }
                    None => return Some(format!("`{}` is not one of its fields", field(key))),
                    Some(other) => {
                        if let Some(problem) = first_difference(value, other, &field(key)) {
                            return Some(problem);
                        }
                    }
                }
            }
            written
                .keys()
                .find(|key| !original.contains_key(*key))
                .map(|key| format!("`{}` is missing", field(key)))
        }
        (Value::Array(original), Value::Array(written)) if original.len() == written.len() => {
            original
                .iter()
                .zip(written)
                .enumerate()
                .find_map(|(index, (a, b))| first_difference(a, b, &format!("{at}[{index}]")))
        }
        _ if original == written => None,
        _ => Some(format!(
            "`{at}` is {original}, which the export writes as {written}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn refusal(text: &str) -> (usize, String) {
        match from_jsonl(text) {
            Err(JsonlError::Line { line, problem }) => (line, problem),
            other => panic!("expected a refused line for {text:?}, got {other:?}"),
        }
    }

    #[test]
    fn one_item_per_line_and_back() {
        let items = vec![
            Item::user_text("hi").with_id("item_1"),
            Item::function_call("call_1", "f", "{}"),
            Item::function_call_output("call_1", "line one\nline two"),
            Item::message(
                Role::User,
                vec![ContentPart::InputAudio {
                    audio: None,
                    transcript: Some("spoken".into()),
                }],
            ),
            Item::mcp_approval_response("a1", "req_1", true),
            Item::assistant_text("done"),
        ];
        let text = to_jsonl(&items);
        assert_eq!(text.lines().count(), items.len());
        for line in text.lines() {
            let value: Value = serde_json::from_str(line).unwrap();
            assert!(value["type"].is_string(), "{line}");
        }
        assert_eq!(from_jsonl(&text).unwrap(), items);
    }

    #[test]
    fn a_bad_line_is_named() {
        let error =
            from_jsonl("{\"type\":\"message\",\"role\":\"user\",\"content\":[]}\n\n{oops\n")
                .unwrap_err();
        assert!(matches!(error, JsonlError::Line { line: 3, .. }), "{error}");
        assert!(
            error.to_string().starts_with("line 3: it is not JSON"),
            "{error}"
        );
    }

    #[test]
    fn any_json_is_not_an_item() {
        let (line, problem) = refusal("{\"foo\":1}\n");
        assert_eq!(line, 1);
        assert!(problem.contains("no `type`"), "{problem}");
        let (_, problem) = refusal("[1, 2]\n");
        assert!(problem.contains("not a JSON object"), "{problem}");
        let (_, problem) = refusal("\"hello\"\n");
        assert!(problem.contains("not a JSON object"), "{problem}");
    }

    #[test]
    fn unknown_item_types_are_refused_not_stored() {
        let text = format!(
            "{}\n{}\n",
            json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}),
            json!({"type": "web_search_call", "id": "ws_1"}),
        );
        let (line, problem) = refusal(&text);
        assert_eq!(line, 2);
        assert!(
            problem.contains("item type `web_search_call` cannot be replayed"),
            "{problem}"
        );
        let (_, problem) = refusal(&format!(
            "{}\n",
            json!({"type": "item_reference", "id": "x"})
        ));
        assert!(
            problem.contains("`item_reference` cannot be replayed"),
            "{problem}"
        );
    }

    #[test]
    fn items_must_have_the_exported_shape() {
        let cases = [
            (
                json!({"type": "message", "role": "wizard", "content": []}),
                "role `wizard`",
            ),
            (
                json!({"type": "message", "role": "user"}),
                "`content` is missing",
            ),
            (
                json!({"type": "message", "role": "user", "content": [], "foo": 1}),
                "`foo` is not one of its fields",
            ),
            (
                json!({"type": "message", "role": "user", "content": [{"type": "mystery"}]}),
                "content part 0 is of type `mystery`",
            ),
            (
                json!({"type": "message", "role": 7, "content": []}),
                "not a valid `message` item",
            ),
            (
                json!({"type": "function_call", "call_id": "c1", "name": "f"}),
                "`arguments` is missing",
            ),
            (
                json!({"type": "function_call", "call_id": "", "name": "f", "arguments": "{}"}),
                "non-empty `call_id`",
            ),
            (
                json!({"type": "message", "role": "user", "status": null, "content": []}),
                "`status` is null",
            ),
            (
                json!({"type": "message", "role": "assistant", "content": [{"type": "text", "text": "hi"}]}),
                "`content[0].type` is \"text\"",
            ),
        ];
        for (value, expected) in cases {
            let (_, problem) = refusal(&format!("{value}\n"));
            assert!(
                problem.contains(expected),
                "{value}: `{problem}` lacks `{expected}`"
            );
        }
    }

    #[test]
    fn outputs_must_answer_an_earlier_call() {
        let text = to_jsonl(&[
            Item::user_text("hi"),
            Item::function_call_output("call_9", "{}"),
        ]);
        let (line, problem) = refusal(&text);
        assert_eq!(line, 2);
        assert!(problem.contains("answers call `call_9`"), "{problem}");
    }

    #[test]
    fn empty_files_are_refused() {
        for text in ["", "\n", "  \n\n"] {
            assert!(
                matches!(from_jsonl(text), Err(JsonlError::Empty)),
                "{text:?}"
            );
        }
    }
}
