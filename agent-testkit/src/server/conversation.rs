//! The server's copy of one connection's conversation.

use serde_json::Value;

/// One conversation item and what the server knows about its audio.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) item: Value,
    /// Milliseconds of assistant audio actually sent for this item (truncation bound).
    pub(crate) audio_ms_sent: Option<u64>,
    /// Milliseconds of user audio in this item (input token estimate).
    pub(crate) input_audio_ms: u64,
}

/// Items in conversation order.
#[derive(Debug, Default)]
pub(crate) struct Conversation {
    entries: Vec<Entry>,
}

impl Conversation {
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.entries.iter().any(|e| e.id == id)
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.id == id)
    }

    pub(crate) fn last_id(&self) -> Option<String> {
        self.entries.last().map(|e| e.id.clone())
    }

    /// Inserts after `previous` (`None` = at the end, `"root"` = at the start, as the API
    /// documents); returns the id of the item before it.
    pub(crate) fn insert(&mut self, entry: Entry, previous: Option<&str>) -> Option<String> {
        match previous {
            None => {
                let prev = self.last_id();
                self.entries.push(entry);
                prev
            }
            Some("root") => {
                self.entries.insert(0, entry);
                None
            }
            Some(prev) => {
                let pos = self
                    .entries
                    .iter()
                    .position(|e| e.id == prev)
                    .map_or(self.entries.len(), |p| p + 1);
                self.entries.insert(pos, entry);
                Some(prev.to_string())
            }
        }
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        self.entries.len() != before
    }

    /// Whether a `function_call` with this `call_id` exists.
    pub(crate) fn has_call(&self, call_id: &str) -> bool {
        self.entries.iter().any(|e| {
            e.item.get("type").and_then(Value::as_str) == Some("function_call")
                && e.item.get("call_id").and_then(Value::as_str) == Some(call_id)
        })
    }

    /// Whether a `function_call_output` with this `call_id` exists.
    pub(crate) fn has_output(&self, call_id: &str) -> bool {
        self.entries.iter().any(|e| {
            e.item.get("type").and_then(Value::as_str) == Some("function_call_output")
                && e.item.get("call_id").and_then(Value::as_str) == Some(call_id)
        })
    }

    /// `call_id`s of completed function calls that have no output yet. One pass over the
    /// outputs first, so a long conversation (benchmarks play thousands of turns on one
    /// connection) does not make every `response.create` quadratic.
    pub(crate) fn calls_without_output(&self) -> Vec<String> {
        let answered: std::collections::HashSet<&str> = self
            .entries
            .iter()
            .filter(|e| e.item.get("type").and_then(Value::as_str) == Some("function_call_output"))
            .filter_map(|e| e.item.get("call_id").and_then(Value::as_str))
            .collect();
        self.entries
            .iter()
            .filter(|e| {
                e.item.get("type").and_then(Value::as_str) == Some("function_call")
                    && e.item.get("status").and_then(Value::as_str) != Some("incomplete")
                    && e.item.get("status").and_then(Value::as_str) != Some("in_progress")
            })
            .filter_map(|e| e.item.get("call_id").and_then(Value::as_str))
            .filter(|id| !answered.contains(id))
            .map(str::to_string)
            .collect()
    }

    /// A fresh id based on `base`, with a suffix if it is taken.
    pub(crate) fn unique_id(&self, base: &str) -> String {
        if !self.contains(base) {
            return base.to_string();
        }
        (2..)
            .map(|n| format!("{base}_{n}"))
            .find(|id| !self.contains(id))
            .unwrap_or_else(|| base.to_string())
    }
}
