//! JSON Lines export and import: one GA conversation item per line.
//!
//! The lossless format: every item exactly as stored (ids, status, audio parts, MCP and
//! unknown items included), in order, so an export can be read back by [`from_jsonl`] or by
//! any tool that knows the Realtime item shape.

use crate::protocol::Item;

/// A line of a JSON Lines file that is not an item.
#[derive(Debug, thiserror::Error)]
#[error(
    "line {line} is not a JSON conversation item ({source}); each line must hold one item, as \
     `agent history export --format jsonl` writes them"
)]
pub struct JsonlError {
    /// The 1-based line number.
    pub line: usize,
    /// What the JSON parser said.
    #[source]
    pub source: serde_json::Error,
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

/// Reads items written by [`to_jsonl`]; blank lines are skipped.
pub fn from_jsonl(text: &str) -> Result<Vec<Item>, JsonlError> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line).map_err(|source| JsonlError {
                line: index + 1,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn one_item_per_line_and_back() {
        let items = vec![
            Item::user_text("hi").with_id("item_1"),
            Item::function_call("call_1", "f", "{}"),
            Item::function_call_output("call_1", "line one\nline two"),
            Item::Unknown(json!({"type": "web_search_call", "id": "ws_1"})),
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
        let error = from_jsonl("{\"type\":\"message\",\"role\":\"user\"}\n\n{oops\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(
            error.to_string().starts_with("line 3 is not a JSON"),
            "{error}"
        );
    }
}
