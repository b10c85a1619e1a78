//! `agent history import`: a file becomes a stored conversation only if it is an export.
//!
//! An imported conversation is replayed to the model by `agent run --resume`, so a file that
//! merely parses as JSON is not enough: it must be one of the two formats `agent history export`
//! writes, and every item in it must be one a session can replay.
//!
//! - A file whose first character is `[` is a JSON array of Chat Completions messages, read by
//!   [`super::chat::from_chat_messages`] (known roles only; tool answers must follow their
//!   calls).
//! - Anything else is JSON Lines, read by [`super::from_jsonl`]: each line one item in the
//!   export's exact shape, of a replayable type.
//! - An empty file, or one that yields no item, is refused: there is nothing to resume.

use std::path::Path;

use super::chat::{ChatConversionError, from_chat_messages};
use super::jsonl::{JsonlError, from_jsonl};
use crate::fs_limits::{MAX_HISTORY_IMPORT_BYTES, ReadError, read_text};
use crate::protocol::Item;

/// Why a file cannot be imported as a conversation.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be read: missing, not a regular file, over
    /// [`MAX_HISTORY_IMPORT_BYTES`], or not UTF-8.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The file holds nothing but whitespace.
    #[error(
        "the file is empty; import a file written by `agent history export ID` (either format)"
    )]
    Empty,
    /// It starts like a Chat Completions export but is not a JSON array of objects.
    #[error(
        "it starts with `[` but is not a JSON array of Chat Completions messages ({problem}); \
         `agent history export ID --format chat-completions` writes one"
    )]
    NotChatArray {
        /// What the JSON parser said.
        problem: String,
    },
    /// A Chat Completions message cannot be converted.
    #[error("as Chat Completions messages: {0}")]
    Chat(ChatConversionError),
    /// The messages convert to no item at all (none has content).
    #[error("the Chat Completions messages hold nothing to import (no message has any content)")]
    NoMessages,
    /// A line is not an exported item.
    #[error("as JSON Lines of conversation items: {0}")]
    Jsonl(JsonlError),
}

/// Reads and checks the export at `path` (a regular file of at most
/// [`MAX_HISTORY_IMPORT_BYTES`]).
pub fn read_import(path: &Path) -> Result<Vec<Item>, ImportError> {
    let text = read_text(path, MAX_HISTORY_IMPORT_BYTES, "conversation export")?;
    parse_import(&text)
}

/// The items of an export in either format (see the module docs for what is refused).
pub fn parse_import(text: &str) -> Result<Vec<Item>, ImportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(ImportError::Empty);
    }
    if !trimmed.starts_with('[') {
        return from_jsonl(text).map_err(ImportError::Jsonl);
    }
    let messages: Vec<serde_json::Value> =
        serde_json::from_str(text).map_err(|e| ImportError::NotChatArray {
            problem: e.to_string(),
        })?;
    let items = from_chat_messages(&messages).map_err(ImportError::Chat)?;
    if items.is_empty() {
        return Err(ImportError::NoMessages);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{chat::to_chat_messages, to_jsonl};

    fn conversation() -> Vec<Item> {
        vec![
            Item::user_text("Where is A1001?"),
            Item::function_call("call_1", "lookup_order", "{\"order_id\":\"A1001\"}"),
            Item::function_call_output("call_1", "{\"status\":\"shipped\"}"),
            Item::assistant_text("It shipped."),
        ]
    }

    #[test]
    fn both_export_formats_round_trip() {
        let items = conversation();
        assert_eq!(parse_import(&to_jsonl(&items)).unwrap(), items);
        let chat = serde_json::to_string(&to_chat_messages(&items)).unwrap();
        assert_eq!(parse_import(&chat).unwrap(), items);
    }

    #[test]
    fn a_json_object_that_is_no_item_is_refused() {
        let error = parse_import("{\"foo\":1}").unwrap_err();
        assert!(
            matches!(error, ImportError::Jsonl(JsonlError::Line { line: 1, .. })),
            "{error}"
        );
        assert!(
            error.to_string().contains("line 1: it has no `type`"),
            "{error}"
        );
    }

    #[test]
    fn empty_files_and_empty_conversations_are_refused() {
        assert!(matches!(parse_import(""), Err(ImportError::Empty)));
        assert!(matches!(parse_import(" \n\n"), Err(ImportError::Empty)));
        assert!(matches!(parse_import("[]"), Err(ImportError::NoMessages)));
        assert!(matches!(
            parse_import(r#"[{"role": "user", "content": null}]"#),
            Err(ImportError::NoMessages)
        ));
    }

    #[test]
    fn chat_files_need_known_roles_and_an_array_of_messages() {
        let error = parse_import(r#"[{"role": "wizard", "content": "hi"}]"#).unwrap_err();
        assert!(error.to_string().contains("role `wizard`"), "{error}");
        let error = parse_import(r#"[{"role": "user", "content": "hi"}"#).unwrap_err();
        assert!(matches!(error, ImportError::NotChatArray { .. }), "{error}");
        let error = parse_import("[1]").unwrap_err();
        assert!(error.to_string().contains("not a JSON object"), "{error}");
    }

    #[test]
    fn a_directory_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_import(dir.path()).unwrap_err();
        assert!(
            matches!(error, ImportError::Read(ReadError::NotRegular { .. })),
            "{error}"
        );
    }

    #[test]
    fn an_export_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.jsonl");
        let file = std::fs::File::create(&path).unwrap();
        // A sparse file: over the limit without writing 64 MiB.
        file.set_len(MAX_HISTORY_IMPORT_BYTES + 1).unwrap();
        let error = read_import(&path).unwrap_err();
        assert!(
            matches!(error, ImportError::Read(ReadError::TooLarge { .. })),
            "{error}"
        );
    }
}
