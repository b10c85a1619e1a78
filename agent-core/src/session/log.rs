//! The conversation as the client knows it: every completed item, in the server's order, once.
//!
//! The server's conversation dies with its connection. This log is what the runtime replays into
//! a new session after a reconnect or a rollover, and what it hands to a [`HistorySink`](super::HistorySink) for
//! durable storage. Items are keyed so that an item seen twice (a replayed response, the same
//! call in `response.output_item.done` and `response.done`) is kept once.
//!
//! # Order follows the server, not arrival
//!
//! Items complete in a different order than they enter the conversation: a spoken user turn's
//! transcript can arrive after the answer to it, and a response's function calls are logged
//! only once their tools finished. So an item takes its place when the server *announces* it
//! (`response.output_item.added`, or `conversation.item.added` with its `previous_item_id`) as
//! an empty slot, and is filled in when it completes. The sink receives items strictly in log
//! order: an item waits until every slot before it is filled (or abandoned, for output the
//! server never finished), so the durable history has the server's order too.

use std::collections::{HashSet, VecDeque};

use crate::protocol::{ContentPart, Item, MessageItem, Role};

/// One position in the log: a completed item, or a slot for an announced one.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    item: Option<Item>,
    /// The server's id of the item, to place later items by `previous_item_id`.
    server_id: Option<String>,
}

/// The ordered, de-duplicated conversation.
///
/// # Bounded memory
///
/// With a sink that reports durable appends (see [`HistorySink::durable_appends`](super::HistorySink::durable_appends)), items
/// the store holds leave memory once [`LOG_WINDOW`] newer ones are settled
/// ([`evict_durable`](Self::evict_durable)); positions stay absolute, so `settled` and
/// `evicted` count from the conversation's first item. A replay reads them back
/// ([`with_stored`](Self::with_stored)). Without such a sink nothing leaves.
#[derive(Debug, Default, Clone)]
pub struct ConversationLog {
    /// The items still in memory: positions `evicted..`.
    entries: VecDeque<Entry>,
    /// Keys of the entries in memory.
    keys: HashSet<String>,
    /// Keys of slots not filled yet: most pushes are new keys, and this keeps them from
    /// scanning the log.
    open: HashSet<String>,
    next_local: u64,
    /// Positions `..settled` are filled and were handed out by
    /// [`take_settled`](Self::take_settled).
    settled: usize,
    /// Positions `..durable_base` were already stored when the log was made (a resumed
    /// conversation): the sink's appends count from there.
    durable_base: usize,
    /// Items that left memory because the store holds them: positions `..evicted`.
    evicted: usize,
}

/// How many settled items stay in memory once the store holds them: enough for everything a
/// session still changes (a truncated reply, a late transcript, a duplicate announcement).
pub const LOG_WINDOW: usize = 64;

impl ConversationLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log that starts with `items` (a resumed conversation, already stored), keyed in order.
    pub fn from_items(items: impl IntoIterator<Item = (String, Item)>) -> Self {
        let mut log = Self::new();
        for (key, item) in items {
            log.push(key, item);
        }
        log.settled = log.entries.len();
        log.durable_base = log.settled;
        log
    }

    /// The in-memory index of absolute position `at`.
    fn index(&self, at: usize) -> usize {
        at - self.evicted
    }

    /// Adds `item` under `key` at the end unless the key is already there; fills the key's
    /// slot if it has one. Returns whether the item was taken.
    pub fn push(&mut self, key: impl Into<String>, item: Item) -> bool {
        let key = key.into();
        if self.keys.contains(&key) {
            if !self.open.remove(&key) {
                return false;
            }
            if let Some(entry) = self.entries.iter_mut().rev().find(|e| e.key == key) {
                entry.server_id = entry
                    .server_id
                    .take()
                    .or_else(|| item.id().map(str::to_owned));
                entry.item = Some(item);
            }
            return true;
        }
        self.keys.insert(key.clone());
        self.entries.push_back(Entry {
            key,
            server_id: item.id().map(str::to_owned),
            item: Some(item),
        });
        true
    }

    /// Reserves the place of an announced item that has not completed: right after the item
    /// whose server id is `after` (the event's `previous_item_id`) when the log holds it, at
    /// the end otherwise. Does nothing when `key` is already there.
    pub fn reserve(
        &mut self,
        key: impl Into<String>,
        server_id: Option<&str>,
        after: Option<&str>,
    ) {
        let key = key.into();
        if self.keys.contains(&key) {
            return;
        }
        let first_unsettled = self.index(self.settled);
        let at = after
            .and_then(|after| {
                self.entries
                    .iter()
                    .rposition(|e| e.server_id.as_deref() == Some(after))
            })
            .map_or(self.entries.len(), |i| (i + 1).max(first_unsettled));
        self.keys.insert(key.clone());
        self.open.insert(key.clone());
        self.entries.insert(
            at,
            Entry {
                key,
                item: None,
                server_id: server_id.map(str::to_owned),
            },
        );
    }

    /// Adds `item` at its place in the server's order (see [`reserve`](Self::reserve)).
    pub fn insert_after(
        &mut self,
        key: impl Into<String>,
        item: Item,
        after: Option<&str>,
    ) -> bool {
        let key = key.into();
        self.reserve(key.clone(), item.id(), after);
        self.push(key, item)
    }

    /// Notes the server's id of the item under `key` (learned from `conversation.item.added`).
    pub fn set_server_id(&mut self, key: &str, server_id: &str) {
        if !self.keys.contains(key) {
            return;
        }
        if let Some(entry) = self.entries.iter_mut().rev().find(|e| e.key == key) {
            entry.server_id = Some(server_id.to_owned());
        }
    }

    /// Removes the slot under `key` if it was never filled (output the server did not finish).
    pub fn abandon(&mut self, key: &str) {
        if !self.open.remove(key) {
            return;
        }
        if let Some(i) = self
            .entries
            .iter()
            .rposition(|e| e.key == key && e.item.is_none())
        {
            self.entries.remove(i);
        }
        self.keys.remove(key);
    }

    /// Removes every slot still waiting (the session ended): what follows them is released.
    pub fn abandon_open(&mut self) {
        let open = std::mem::take(&mut self.open);
        self.entries.retain(|e| e.item.is_some());
        for key in open {
            self.keys.remove(&key);
        }
    }

    /// Whether `key` is a slot still waiting for its item.
    pub fn is_open(&self, key: &str) -> bool {
        self.open.contains(key)
    }

    /// The completed items no earlier slot holds back, in order, not handed out before: what
    /// goes to the durable store next.
    pub fn take_settled(&mut self) -> Vec<(String, Item)> {
        let mut out = Vec::new();
        while let Some(entry) = self.entries.get(self.index(self.settled)) {
            let Some(item) = &entry.item else { break };
            out.push((entry.key.clone(), item.clone()));
            self.settled += 1;
        }
        out
    }

    /// Lets settled items the store holds leave memory: `durable_appends` of the items handed
    /// out since the log was made are durable (see [`HistorySink::durable_appends`](super::HistorySink::durable_appends)), and the
    /// newest [`LOG_WINDOW`] settled items stay. A spoken turn still waiting for its
    /// transcript stays a while longer (up to four windows), so the transcript can fill it in.
    /// Returns how many items left.
    pub fn evict_durable(&mut self, durable_appends: u64) -> usize {
        let durable = usize::try_from(durable_appends)
            .unwrap_or(usize::MAX)
            .saturating_add(self.durable_base)
            .min(self.settled);
        let mut left = 0;
        while self.evicted < durable.saturating_sub(LOG_WINDOW) {
            let Some(front) = self.entries.front() else {
                break;
            };
            let behind = durable - self.evicted;
            if awaits_transcript(front.item.as_ref()) && behind < 4 * LOG_WINDOW {
                break;
            }
            if let Some(entry) = self.entries.pop_front() {
                self.keys.remove(&entry.key);
            }
            self.evicted += 1;
            left += 1;
        }
        left
    }

    /// How many items left memory for the store (see [`evict_durable`](Self::evict_durable)).
    pub fn evicted(&self) -> usize {
        self.evicted
    }

    /// The whole conversation for a replay: `stored` (every item the store holds, in order,
    /// read back because some left memory) followed by the items in memory it does not hold
    /// yet. Keys the store already has are taken from the store, once.
    pub fn with_stored(&self, stored: Vec<(String, Item)>) -> Vec<(String, Item)> {
        let known: HashSet<&str> = stored.iter().map(|(key, _)| key.as_str()).collect();
        let newer: Vec<(String, Item)> = self
            .entries
            .iter()
            .filter(|e| !known.contains(e.key.as_str()))
            .filter_map(|e| e.item.as_ref().map(|item| (e.key.clone(), item.clone())))
            .collect();
        let mut all = stored;
        all.extend(newer);
        all
    }

    /// Replaces the item under `key`. Returns `None` when the key is not in memory, otherwise
    /// whether the item had already been handed out by [`take_settled`](Self::take_settled)
    /// (so a store must replace it too).
    pub fn replace(&mut self, key: &str, item: Item) -> Option<bool> {
        if !self.keys.contains(key) {
            return None;
        }
        let index = self
            .entries
            .iter()
            .rposition(|e| e.key == key && e.item.is_some())?;
        let settled = index < self.index(self.settled);
        self.entries[index].item = Some(item);
        Some(settled)
    }

    /// The item under `key`, once completed and while in memory.
    pub fn get(&self, key: &str) -> Option<&Item> {
        if !self.keys.contains(key) {
            return None;
        }
        self.entries
            .iter()
            .rev()
            .find(|e| e.key == key)
            .and_then(|e| e.item.as_ref())
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

    /// The completed items in memory, in order, with their keys (slots left out). When items
    /// left memory, a replay needs [`with_stored`](Self::with_stored) instead.
    pub fn entries(&self) -> Vec<(String, Item)> {
        self.with_stored(Vec::new())
    }

    /// The completed items in memory, in order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.entries.iter().filter_map(|e| e.item.as_ref())
    }

    /// Number of completed items, those that left memory included.
    pub fn len(&self) -> usize {
        self.evicted + self.entries.len() - self.open.len()
    }

    /// Whether the log holds no completed item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` is in memory (completed, or as a slot).
    pub fn contains(&self, key: &str) -> bool {
        self.keys.contains(key)
    }
}

/// A spoken user turn whose transcript has not arrived: it will still change.
fn awaits_transcript(item: Option<&Item>) -> bool {
    item.and_then(Item::as_message).is_some_and(|message| {
        message.content.iter().any(|part| {
            matches!(part, ContentPart::InputAudio { transcript, .. } if transcript.is_none())
        })
    })
}

/// Gives every function call of a resumed conversation that has no output one, so the model
/// never sees a call left hanging and no call runs twice: the output an earlier run recorded
/// when the call finished (see [`HistorySink::call_finished`](super::HistorySink::call_finished)), otherwise (the process stopped
/// while the tool ran, or before it started) an "interrupted" error. Returns what was added.
pub(crate) fn reconcile_calls(
    log: &mut ConversationLog,
    prior: &[super::PriorCall],
) -> Vec<super::SessionEvent> {
    let hanging: Vec<(String, String, String)> = hanging_calls(log)
        .iter()
        .filter_map(Item::as_function_call)
        .map(|call| {
            (
                call.call_id.clone(),
                call.name.clone(),
                call.arguments.clone(),
            )
        })
        .collect();
    let mut events = Vec::new();
    for (call_id, name, arguments) in hanging {
        let stored = prior
            .iter()
            .find(|p| p.call_id == call_id)
            .and_then(|p| p.output.clone());
        let (why, output) = match stored {
            Some(output) => (super::NotRun::AlreadyRan, output),
            None => (
                super::NotRun::Interrupted,
                crate::tool::ToolError::Interrupted { tool: name.clone() }.to_model_output(),
            ),
        };
        log.push(
            format!("output:{call_id}"),
            Item::function_call_output(call_id.clone(), output.clone()),
        );
        events.push(super::SessionEvent::ToolCallNotRun {
            call_id,
            name,
            arguments,
            why,
            output,
        });
    }
    events
}

/// The function calls of a stored conversation that have no output yet, in order.
pub(crate) fn hanging_calls(log: &ConversationLog) -> Vec<Item> {
    let answered: HashSet<&str> = log
        .items()
        .filter_map(|item| match item {
            Item::FunctionCallOutput(output) => Some(output.call_id.as_str()),
            _ => None,
        })
        .collect();
    log.items()
        .filter(|item| {
            item.as_function_call()
                .is_some_and(|call| !answered.contains(call.call_id.as_str()))
        })
        .cloned()
        .collect()
}

/// The calls a taken-over platform-held conversation owes outputs for: its function calls
/// without an output, and the calls recorded as started whose item never reached the store
/// (a call's item is stored with its output, so a process that died while the tool ran left
/// only the record). In the order they were made.
pub(crate) fn unanswered_calls(log: &ConversationLog, prior: &[super::PriorCall]) -> Vec<Item> {
    let mut calls = hanging_calls(log);
    let known: HashSet<&str> = log
        .items()
        .filter_map(|item| match item {
            Item::FunctionCall(call) => Some(call.call_id.as_str()),
            Item::FunctionCallOutput(output) => Some(output.call_id.as_str()),
            _ => None,
        })
        .collect();
    let recorded: Vec<Item> = prior
        .iter()
        .filter(|p| !p.call_id.is_empty() && !p.name.is_empty())
        .filter(|p| !known.contains(p.call_id.as_str()))
        .map(|p| Item::function_call(p.call_id.clone(), p.name.clone(), p.arguments.clone()))
        .collect();
    calls.extend(recorded);
    calls
}

/// What a replayed spoken turn says when it was never transcribed.
pub const UNTRANSCRIBED: &str = "(the user spoke here; no transcript)";

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
            // A spoken turn without a transcript still happened: the model is told so rather
            // than seeing its answer to nothing.
            ContentPart::InputAudio { transcript, .. } => Some(ContentPart::input_text(
                transcript
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .unwrap_or(UNTRANSCRIBED),
            )),
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

    /// A conversation of `turns` user messages, each settled (handed to a store).
    fn settled_log(turns: usize) -> ConversationLog {
        let mut log = ConversationLog::new();
        for n in 0..turns {
            log.push(format!("local_{n}"), Item::user_text(n.to_string()));
        }
        assert_eq!(log.take_settled().len(), turns);
        log
    }

    #[test]
    fn durable_items_leave_memory_past_the_window() {
        let mut log = settled_log(200);
        // Nothing is durable yet: nothing leaves.
        assert_eq!(log.evict_durable(0), 0);
        // 150 are durable: all but the newest LOG_WINDOW of those leave.
        assert_eq!(log.evict_durable(150), 150 - LOG_WINDOW);
        assert_eq!(log.evicted(), 150 - LOG_WINDOW);
        assert_eq!(log.len(), 200, "the count includes what left");
        assert!(!log.contains("local_0"));
        assert!(log.get("local_0").is_none());
        assert!(log.contains("local_199"));
        assert_eq!(log.entries().len(), 200 - log.evicted());
        // A replay puts the stored items back in front, each key once.
        let stored: Vec<(String, Item)> = (0..150)
            .map(|n| (format!("local_{n}"), Item::user_text(n.to_string())))
            .collect();
        let replay = log.with_stored(stored);
        assert_eq!(replay.len(), 200);
        assert!(
            replay
                .iter()
                .enumerate()
                .all(|(n, (key, _))| *key == format!("local_{n}"))
        );
        // Items handed out later still settle at their absolute positions.
        log.push("local_200", Item::user_text("200"));
        assert_eq!(log.take_settled().len(), 1);
        assert_eq!(log.replace("local_200", Item::user_text("x")), Some(true));
    }

    #[test]
    fn a_resumed_conversation_is_durable_from_the_start() {
        let items = (0..100).map(|n| (format!("local_{n}"), Item::user_text(n.to_string())));
        let mut log = ConversationLog::from_items(items);
        assert_eq!(log.evict_durable(0), 100 - LOG_WINDOW);
    }

    #[test]
    fn a_spoken_turn_waiting_for_its_transcript_stays_a_while() {
        let mut log = ConversationLog::new();
        log.push("item:u1", Item::user_audio("AAAA").with_id("u1"));
        for n in 0..(2 * LOG_WINDOW) {
            log.push(format!("local_{n}"), Item::user_text(n.to_string()));
        }
        log.take_settled();
        assert_eq!(log.evict_durable(u64::MAX), 0, "held for its transcript");
        assert!(log.get("item:u1").is_some());
        for n in 0..(4 * LOG_WINDOW) {
            log.push(format!("more_{n}"), Item::user_text(n.to_string()));
        }
        log.take_settled();
        assert!(log.evict_durable(u64::MAX) > 0, "not forever");
        assert!(!log.contains("item:u1"));
    }
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
    fn slots_keep_the_servers_order_and_hold_back_the_sink() {
        let mut log = ConversationLog::new();
        log.push("local_1", Item::user_text("hi"));
        assert_eq!(log.take_settled().len(), 1);
        // The response announces a message and a call; the call's output comes later.
        log.reserve("item:m1", Some("m1"), None);
        log.reserve("call:c1", Some("fc1"), None);
        log.push("item:m1", Item::assistant_text("checking"));
        assert_eq!(log.take_settled().len(), 1);
        // The user speaks while the tool runs: placed after the call, held back by it.
        let spoken = Item::user_text("also this");
        assert!(log.insert_after("item:u2", spoken, Some("fc1")));
        assert!(log.take_settled().is_empty());
        log.push("call:c1", Item::function_call("c1", "f", "{}"));
        log.push("output:c1", Item::function_call_output("c1", "ok"));
        let keys: Vec<String> = log.take_settled().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["call:c1", "item:u2", "output:c1"]);
        assert_eq!(log.len(), 5);
    }

    #[test]
    fn abandoned_slots_release_what_follows() {
        let mut log = ConversationLog::new();
        log.reserve("item:m1", Some("m1"), None);
        log.insert_after("item:u1", Item::user_text("x"), Some("m1"));
        assert!(log.take_settled().is_empty());
        assert!(log.is_open("item:m1"));
        log.abandon("item:m1");
        assert_eq!(log.take_settled().len(), 1);
        assert!(!log.contains("item:m1"));
        assert_eq!(log.replace("item:u1", Item::user_text("y")), Some(true));
        assert_eq!(log.replace("nope", Item::user_text("y")), None);
    }

    #[test]
    fn hanging_calls_of_a_resumed_conversation_get_an_output() {
        let mut log = ConversationLog::from_items([
            (
                "call:c1".to_owned(),
                Item::function_call("c1", "book", "{}"),
            ),
            ("call:c2".to_owned(), Item::function_call("c2", "pay", "{}")),
            ("call:c3".to_owned(), Item::function_call("c3", "ok", "{}")),
            (
                "output:c3".to_owned(),
                Item::function_call_output("c3", "done"),
            ),
        ]);
        let prior = [super::super::PriorCall {
            call_id: "c1".into(),
            name: "book".into(),
            arguments: "{}".into(),
            output: Some("booked".into()),
        }];
        let added = reconcile_calls(&mut log, &prior);
        assert_eq!(added.len(), 2);
        let settled = log.take_settled();
        assert_eq!(settled[0].1, Item::function_call_output("c1", "booked"));
        let interrupted = serde_json::to_value(&settled[1].1).unwrap();
        assert!(
            interrupted["output"]
                .as_str()
                .unwrap()
                .contains("interrupted")
        );
        assert!(reconcile_calls(&mut log, &prior).is_empty());
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
