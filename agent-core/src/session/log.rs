//! The conversation as the client knows it: every completed item, in order, once.
//!
//! The server's conversation dies with its connection. This log is what the runtime replays into
//! a new session after a reconnect or a rollover, and what it hands to a [`HistorySink`] for
//! durable storage. Items are keyed so that an item seen twice (a replayed response, the same
//! call in `response.output_item.done` and `response.done`) is kept once.

use std::collections::HashSet;

use crate::protocol::{ContentPart, Item, MessageItem, Role};

/// Receives each item as it completes, e.g. to append it to a durable store.
///
/// Called on the session's task: implementations must not block (hand the item to a writer
/// thread or channel).
pub trait HistorySink: Send + Sync {
    /// `key` is stable across reconnects: a call id for function calls and their outputs, the
    /// server's item id for assistant messages, a local sequence key for user input.
    fn append(&self, key: &str, item: &Item);

    /// Replaces the item stored under `key` (an assistant reply truncated by a barge-in).
    fn replace(&self, key: &str, item: &Item) {
        let _ = (key, item);
    }
}

/// The ordered, de-duplicated conversation.
#[derive(Debug, Default, Clone)]
pub struct ConversationLog {
    items: Vec<(String, Item)>,
    keys: HashSet<String>,
    next_local: u64,
}

impl ConversationLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log that starts with `items` (a resumed conversation), keyed in order.
    pub fn from_items(items: impl IntoIterator<Item = (String, Item)>) -> Self {
        let mut log = Self::new();
        for (key, item) in items {
            log.push(key, item);
        }
        log
    }

    /// Adds `item` under `key` unless the key is already there. Returns whether it was added.
    pub fn push(&mut self, key: impl Into<String>, item: Item) -> bool {
        let key = key.into();
        if !self.keys.insert(key.clone()) {
            return false;
        }
        self.items.push((key, item));
        true
    }

    /// Replaces the item under `key`; returns whether it was there.
    pub fn replace(&mut self, key: &str, item: Item) -> bool {
        match self.items.iter_mut().find(|(k, _)| k == key) {
            Some(entry) => {
                entry.1 = item;
                true
            }
            None => false,
        }
    }

    /// The item under `key`.
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.items
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, item)| item)
    }

    /// A fresh key for client-created input (user messages), unique within this log.
    pub fn local_key(&mut self) -> String {
        loop {
            self.next_local += 1;
            let key = format!("local_{:06}", self.next_local);
            if !self.keys.contains(&key) {
                return key;
            }
        }
    }

    /// The items in order, with their keys.
    pub fn entries(&self) -> &[(String, Item)] {
        &self.items
    }

    /// The items in order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().map(|(_, item)| item)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether `key` is already logged.
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }
}

/// The item as it is replayed into a new session: server-assigned fields (id, status, object)
/// removed, and audio replaced by its transcript, since the new session cannot reference audio
/// the old one held and resending it would cost audio tokens again.
pub fn for_replay(item: &Item) -> Item {
    match item {
        Item::Message(message) => Item::Message(replay_message(message)),
        Item::FunctionCall(call) => {
            let mut call = call.clone();
            call.id = None;
            call.status = None;
            call.object = None;
            Item::FunctionCall(call)
        }
        Item::FunctionCallOutput(output) => {
            let mut output = output.clone();
            output.id = None;
            output.status = None;
            output.object = None;
            Item::FunctionCallOutput(output)
        }
        other => other.clone(),
    }
}

fn replay_message(message: &MessageItem) -> MessageItem {
    let assistant = message.role == Role::Assistant;
    let content = message
        .content
        .iter()
        .filter_map(|part| match part {
            ContentPart::InputAudio { transcript, .. } => transcript
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(ContentPart::input_text),
            ContentPart::OutputAudio { transcript, .. } => transcript
                .as_deref()
                .filter(|t| !t.is_empty())
                .map(ContentPart::output_text),
            other => Some(other.clone()),
        })
        .map(|part| match part {
            // Assistant text is replayed as assistant output, whatever the server called it.
            ContentPart::InputText { text } if assistant => ContentPart::output_text(text),
            other => other,
        })
        .collect();
    MessageItem {
        id: None,
        object: None,
        status: None,
        content,
        ..message.clone()
    }
}

/// The assistant item as the user heard it: audio cut at `audio_end_ms` of `received_ms`, its
/// transcript shortened in proportion (at a word boundary, marked with "…"), since the server
/// drops the unheard part of the transcript from its own context when it truncates.
pub fn truncated(item: &Item, content_index: usize, audio_end_ms: u64, received_ms: u64) -> Item {
    let mut item = item.clone();
    if let Item::Message(message) = &mut item
        && let Some(ContentPart::OutputAudio { transcript, .. }) =
            message.content.get_mut(content_index)
        && let Some(text) = transcript.as_mut()
    {
        let fraction = if received_ms == 0 {
            0.0
        } else {
            (audio_end_ms as f64 / received_ms as f64).clamp(0.0, 1.0)
        };
        let chars = text.chars().count();
        let keep = (chars as f64 * fraction).floor() as usize;
        if keep < chars {
            let cut: String = text.chars().take(keep).collect();
            let at_word_end = text.chars().nth(keep).is_none_or(char::is_whitespace);
            let cut = match cut.rfind(char::is_whitespace) {
                Some(space) if space > 0 && !at_word_end => cut[..space].to_owned(),
                _ => cut,
            };
            *text = format!("{}…", cut.trim_end());
        }
    }
    item
}

/// The text of a message (its text parts and transcripts), for summaries and transcripts.
pub fn message_text(item: &Item) -> Option<String> {
    let message = item.as_message()?;
    let text: Vec<&str> = message
        .content
        .iter()
        .filter_map(ContentPart::text)
        .collect();
    (!text.is_empty()).then(|| text.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_deduplicate() {
        let mut log = ConversationLog::new();
        assert!(log.push("call_1", Item::function_call("call_1", "f", "{}")));
        assert!(!log.push("call_1", Item::function_call("call_1", "f", "{}")));
        let key = log.local_key();
        assert!(log.push(key, Item::user_text("hi")));
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn truncation_shortens_the_transcript_in_proportion() {
        let item: Item = serde_json::from_value(serde_json::json!({
            "type": "message", "role": "assistant",
            "content": [{"type": "output_audio", "transcript": "one two three four five six"}]
        }))
        .unwrap();
        let cut = truncated(&item, 0, 500, 1000);
        assert_eq!(message_text(&cut).as_deref(), Some("one two three…"));
        let all = truncated(&item, 0, 1000, 1000);
        assert_eq!(all, item);
        let none = truncated(&item, 0, 0, 1000);
        assert_eq!(message_text(&none).as_deref(), Some("…"));
        let mid_word = truncated(&item, 0, 550, 1000);
        assert_eq!(message_text(&mid_word).as_deref(), Some("one two three…"));
    }

    #[test]
    fn replay_strips_server_fields_and_audio() {
        let item: Item = serde_json::from_value(serde_json::json!({
            "id": "item_1", "object": "realtime.item", "status": "completed",
            "type": "message", "role": "assistant",
            "content": [{"type": "output_audio", "audio": "AAAA", "transcript": "hello"}]
        }))
        .unwrap();
        let replayed = serde_json::to_value(for_replay(&item)).unwrap();
        assert_eq!(
            replayed,
            serde_json::json!({"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "hello"}]})
        );
        assert_eq!(message_text(&item).as_deref(), Some("hello"));
    }
}
