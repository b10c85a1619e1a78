//! The server's copy of one connection's conversation.

use std::{cell::Cell, collections::HashSet};

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

/// Items in conversation order, with indexes by id and call id: a benchmark plays thousands
/// of turns on one connection, and every client event asks about calls and outputs.
#[derive(Debug, Default)]
pub(crate) struct Conversation {
    entries: Vec<Entry>,
    /// Text characters of each entry (as the token estimate counts them), computed once:
    /// every response estimates its input over the whole conversation.
    text_chars: Vec<Cell<Option<usize>>>,
    /// Function calls (call id, item id) without an output yet, in the order they came.
    unanswered: Vec<(String, String)>,
    ids: HashSet<String>,
    /// `call_id`s of the `function_call` items.
    calls: HashSet<String>,
    /// `call_id`s of the `function_call_output` items.
    outputs: HashSet<String>,
    /// Item ids of the `mcp_approval_request` items.
    approval_requests: HashSet<String>,
    /// The `approval_request_id`s the `mcp_approval_response` items answer.
    approval_answers: HashSet<String>,
}

/// The `call_id` of a `function_call` (`is_output == false`) or `function_call_output`.
fn call_id_of(item: &Value, is_output: bool) -> Option<&str> {
    let kind = if is_output {
        "function_call_output"
    } else {
        "function_call"
    };
    (item.get("type").and_then(Value::as_str) == Some(kind))
        .then(|| item.get("call_id").and_then(Value::as_str))
        .flatten()
}

impl Conversation {
    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// Recent items are the ones asked about: the search starts at the end.
    pub(crate) fn get(&self, id: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.id == id)
    }

    /// The entry, to change it (its text is counted again).
    pub(crate) fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        let at = self.entries.iter().rposition(|e| e.id == id)?;
        self.text_chars[at].set(None);
        self.entries.get_mut(at)
    }

    /// Each entry with the characters of its text, counted once (see `usage`).
    pub(crate) fn with_text_chars(&self) -> impl Iterator<Item = (&Entry, usize)> {
        self.entries
            .iter()
            .zip(&self.text_chars)
            .map(|(entry, chars)| {
                let count = chars.get().unwrap_or_else(|| {
                    let count = super::usage::item_text_chars(&entry.item);
                    chars.set(Some(count));
                    count
                });
                (entry, count)
            })
    }

    fn index(&mut self, entry: &Entry) {
        self.ids.insert(entry.id.clone());
        if let Some(call_id) = call_id_of(&entry.item, false) {
            self.calls.insert(call_id.to_owned());
            if !self.outputs.contains(call_id) {
                self.unanswered.push((call_id.to_owned(), entry.id.clone()));
            }
        }
        if let Some(call_id) = call_id_of(&entry.item, true) {
            self.outputs.insert(call_id.to_owned());
            self.unanswered.retain(|(call, _)| call != call_id);
        }
        match entry.item.get("type").and_then(Value::as_str) {
            Some("mcp_approval_request") => {
                self.approval_requests.insert(entry.id.clone());
            }
            Some("mcp_approval_response") => {
                if let Some(request) = entry
                    .item
                    .get("approval_request_id")
                    .and_then(Value::as_str)
                {
                    self.approval_answers.insert(request.to_owned());
                }
            }
            _ => {}
        }
    }

    pub(crate) fn last_id(&self) -> Option<String> {
        self.entries.last().map(|e| e.id.clone())
    }

    /// Inserts after `previous` (`None` = at the end, `"root"` = at the start, as the API
    /// documents); returns the id of the item before it.
    pub(crate) fn insert(&mut self, entry: Entry, previous: Option<&str>) -> Option<String> {
        self.index(&entry);
        let (at, before) = match previous {
            None => (self.entries.len(), self.last_id()),
            Some("root") => (0, None),
            Some(prev) => (
                self.entries
                    .iter()
                    .position(|e| e.id == prev)
                    .map_or(self.entries.len(), |p| p + 1),
                Some(prev.to_string()),
            ),
        };
        self.entries.insert(at, entry);
        self.text_chars.insert(at, Cell::new(None));
        before
    }

    pub(crate) fn remove(&mut self, id: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.id != id);
        if self.entries.len() == before {
            return false;
        }
        self.ids.clear();
        self.calls.clear();
        self.outputs.clear();
        self.unanswered.clear();
        self.approval_requests.clear();
        self.approval_answers.clear();
        let entries = std::mem::take(&mut self.entries);
        for entry in &entries {
            self.index(entry);
        }
        self.text_chars = entries.iter().map(|_| Cell::new(None)).collect();
        self.entries = entries;
        true
    }

    /// Whether a `function_call` with this `call_id` exists.
    pub(crate) fn has_call(&self, call_id: &str) -> bool {
        self.calls.contains(call_id)
    }

    /// Whether a `function_call_output` with this `call_id` exists.
    pub(crate) fn has_output(&self, call_id: &str) -> bool {
        self.outputs.contains(call_id)
    }

    /// Whether an `mcp_approval_request` with this item id exists.
    pub(crate) fn has_approval_request(&self, id: &str) -> bool {
        self.approval_requests.contains(id)
    }

    /// Whether an `mcp_approval_response` answers the request `id`.
    pub(crate) fn has_approval_answer(&self, id: &str) -> bool {
        self.approval_answers.contains(id)
    }

    /// `call_id`s of completed function calls that have no output yet.
    pub(crate) fn calls_without_output(&self) -> Vec<String> {
        self.unanswered
            .iter()
            .filter(|(_, id)| {
                self.get(id).is_some_and(|e| {
                    let status = e.item.get("status").and_then(Value::as_str);
                    status != Some("incomplete") && status != Some("in_progress")
                })
            })
            .map(|(call_id, _)| call_id.clone())
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
