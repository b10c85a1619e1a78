//! The conversation's order: where each item the server announces takes its place in the
//! [`ConversationLog`](crate::session::log::ConversationLog), and how spoken turns are filled
//! in when their transcript arrives. The rules that need no session state are plain functions,
//! tested below.

use super::Runner;
use crate::protocol::{ContentPart, Item, Response, Role};

impl Runner {
    /// A response announced an output item: its place in the log is taken now, so the order
    /// is the server's even when it completes after later items.
    pub(super) fn reserve_output(&mut self, response_id: &str, item: &Item) {
        // A filler's items are outside the conversation: no slot.
        if self.filler_output(response_id, item) {
            return;
        }
        let Some(key) = output_slot_key(item) else {
            return;
        };
        if self.log.contains(&key) {
            return;
        }
        self.log.reserve(key.clone(), item.id(), None);
        self.response_slots
            .entry(response_id.to_owned())
            .or_default()
            .push(key);
    }

    /// An output item completed: an assistant message is logged; a function call may start;
    /// an MCP approval request is logged and asked.
    pub(super) async fn on_output_item_done(&mut self, response_id: &str, item: &Item) {
        if self.filler.is_active(response_id) {
            return;
        }
        if let Item::Message(message) = item
            && message.role == Role::Assistant
        {
            let key = match &message.id {
                Some(id) => format!("item:{id}"),
                None => self.log.local_key(),
            };
            // An answer a guardrail stopped is logged as a placeholder, not with its words.
            let logged = self.guard_logged(item.clone());
            self.record(key, logged);
        }
        self.maybe_start_call(response_id, item).await;
        self.maybe_ask_mcp_approval(response_id, item);
    }

    /// An item entered the server's conversation. A spoken user turn is logged now, at its
    /// place (`previous_item_id`), and its transcript filled in when it arrives; the server
    /// ids of calls and outputs are noted so later items can be placed after them (a spoken
    /// turn after an item whose id the log does not know goes at the end).
    pub(super) fn on_item_added(&mut self, item: Item, previous: Option<&str>) {
        let Some(id) = item.id().map(str::to_owned) else {
            return;
        };
        match &item {
            Item::FunctionCall(call) => self
                .log
                .set_server_id(&format!("call:{}", call.call_id), &id),
            Item::FunctionCallOutput(output) => {
                self.log
                    .set_server_id(&format!("output:{}", output.call_id), &id);
            }
            Item::Message(message) if message.role == Role::User && is_spoken(&item) => {
                let key = format!("item:{id}");
                if !self.log.contains(&key) {
                    // A new user turn: the tool rounds start again.
                    self.tool_rounds = 0;
                    self.log.insert_after(key, item.clone(), previous);
                    self.settle();
                }
            }
            _ => {}
        }
    }

    /// The transcript of a spoken user turn arrived: it fills in the logged item, wherever
    /// the turn sits, however late it comes.
    pub(super) fn on_user_transcript(&mut self, item_id: &str, content_index: u32, text: &str) {
        let key = format!("item:{item_id}");
        let index = usize::try_from(content_index).unwrap_or(usize::MAX);
        match self.log.get(&key).cloned() {
            Some(item) => self.replace_item(&key, with_transcript(item, index, text)),
            // A server that did not announce the item: logged where it is now.
            None => self.record(key, spoken_turn(item_id, text)),
        }
    }

    /// The response is done: slots of output it announced but never finished are filled from
    /// its final output, or released. Its calls keep their slots until their outputs go out.
    pub(super) fn release_slots(&mut self, response_id: &str, response: &Response) {
        let Some(keys) = self.response_slots.remove(response_id) else {
            return;
        };
        let running: Vec<String> = self
            .response_calls
            .get(response_id)
            .map(|calls| calls.order.iter().map(|c| format!("call:{c}")).collect())
            .unwrap_or_default();
        for key in keys {
            if !self.log.is_open(&key) || running.contains(&key) {
                continue;
            }
            match finished_message(&response.output, &key) {
                Some(item) => {
                    let logged = self.guard_logged(item.clone());
                    self.log.push(key, logged);
                }
                None => self.log.abandon(&key),
            }
        }
        self.settle();
    }
}

/// The log key an announced output item reserves: an assistant message or an MCP approval
/// request by its id, a function call by its call id; nothing for other items.
fn output_slot_key(item: &Item) -> Option<String> {
    match item {
        Item::Message(message) if message.role == Role::Assistant => {
            message.id.as_ref().map(|id| format!("item:{id}"))
        }
        Item::FunctionCall(call) if !call.call_id.is_empty() => {
            Some(format!("call:{}", call.call_id))
        }
        Item::McpApprovalRequest(request) if !request.id.is_empty() => {
            Some(format!("item:{}", request.id))
        }
        _ => None,
    }
}

/// The assistant message of a response's final `output` that fills the slot `key`.
fn finished_message<'a>(output: &'a [Item], key: &str) -> Option<&'a Item> {
    output.iter().find(|item| {
        matches!(item, Item::Message(m) if m.role == Role::Assistant
            && m.id.as_deref().map(|id| format!("item:{id}")).as_deref() == Some(key))
    })
}

/// `item` with the transcript of its audio part `index` set (or a transcript part added when
/// that part is not audio).
fn with_transcript(mut item: Item, index: usize, text: &str) -> Item {
    if let Item::Message(message) = &mut item {
        match message.content.get_mut(index) {
            Some(ContentPart::InputAudio {
                transcript: slot, ..
            }) => *slot = Some(text.to_owned()),
            _ => message.content.push(ContentPart::InputAudio {
                audio: None,
                transcript: Some(text.to_owned()),
            }),
        }
    }
    item
}

/// A spoken user turn known only from its transcript.
fn spoken_turn(item_id: &str, text: &str) -> Item {
    let part = ContentPart::InputAudio {
        audio: None,
        transcript: Some(text.to_owned()),
    };
    Item::message(Role::User, vec![part]).with_id(item_id)
}

/// Whether a user message holds audio (a spoken turn the server made from the input buffer).
fn is_spoken(item: &Item) -> bool {
    item.as_message().is_some_and(|m| {
        m.content
            .iter()
            .any(|part| matches!(part, ContentPart::InputAudio { .. }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript_of(item: &Item, index: usize) -> Option<&str> {
        match item.as_message()?.content.get(index)? {
            ContentPart::InputAudio { transcript, .. } => transcript.as_deref(),
            _ => None,
        }
    }

    #[test]
    fn assistant_messages_and_calls_reserve_slots_other_items_do_not() {
        let message = Item::assistant_text("hi").with_id("msg_1");
        assert_eq!(output_slot_key(&message).as_deref(), Some("item:msg_1"));
        let call = Item::function_call("call_1", "lookup", "{}");
        assert_eq!(output_slot_key(&call).as_deref(), Some("call:call_1"));
        assert_eq!(output_slot_key(&Item::assistant_text("no id")), None);
        assert_eq!(output_slot_key(&Item::function_call("", "x", "{}")), None);
        assert_eq!(output_slot_key(&Item::user_text("hi").with_id("u")), None);
        let request = Item::McpApprovalRequest(crate::protocol::McpApprovalRequestItem {
            id: "mcpr_1".into(),
            ..Default::default()
        });
        assert_eq!(output_slot_key(&request).as_deref(), Some("item:mcpr_1"));
    }

    #[test]
    fn a_transcript_fills_the_audio_part_or_is_added() {
        let spoken = Item::user_audio("AAAA").with_id("item_1");
        let filled = with_transcript(spoken, 0, "where is my order");
        assert_eq!(transcript_of(&filled, 0), Some("where is my order"));
        let typed = Item::user_text("hello").with_id("item_2");
        let added = with_transcript(typed, 0, "spoken too");
        assert_eq!(transcript_of(&added, 1), Some("spoken too"));
    }

    #[test]
    fn a_turn_known_only_by_its_transcript_is_a_spoken_user_message() {
        let item = spoken_turn("item_9", "hello");
        assert_eq!(item.id(), Some("item_9"));
        assert!(is_spoken(&item));
        assert_eq!(transcript_of(&item, 0), Some("hello"));
        assert!(!is_spoken(&Item::user_text("typed")));
    }

    #[test]
    fn the_final_output_fills_only_its_own_slot() {
        let output = vec![
            Item::function_call("c", "f", "{}"),
            Item::assistant_text("done").with_id("msg_2"),
        ];
        assert!(finished_message(&output, "item:msg_2").is_some());
        assert!(finished_message(&output, "item:msg_3").is_none());
        assert!(finished_message(&output, "call:c").is_none());
    }
}
