//! Conversion between Realtime conversation items and Chat Completions messages, both ways.
//!
//! A stored voice conversation can be handed to a text model (export), and a Chat Completions
//! transcript can seed a Realtime session (import, `--resume` of an exported conversation).
//!
//! # Items to messages ([`to_chat_messages`])
//!
//! - System and user messages become `system` / `user` messages with string content: text
//!   parts as they are, audio as its transcript, several parts joined with a newline. A user
//!   message with an image becomes an array of `text` and `image_url` parts instead.
//!   Messages of a role this version does not know are treated as system messages.
//! - Assistant messages become `assistant` messages; their audio counts as its transcript.
//! - `function_call` items become `tool_calls` entries (`id` = `call_id`) of an assistant
//!   message. Consecutive calls go into one message (parallel tool calls), which is also the
//!   assistant message right before them when they are adjacent (the text the model said
//!   before calling). An assistant message right after a group of calls with no text of its
//!   own becomes that group's content.
//! - `function_call_output` items become `tool` messages placed directly after the assistant
//!   message that holds their call, in call order, because Chat Completions rejects tool
//!   messages anywhere else. A call with no stored output (the process stopped while it ran)
//!   gets a `tool` message saying so ([`MISSING_OUTPUT`]), so the result is still valid. An
//!   output whose call is not among the items has nothing to answer and is left out (with a
//!   warning in the log).
//! - **Audio without a transcript** (input transcription off, or not finished) becomes the
//!   text [`AUDIO_PLACEHOLDER`], so the turn and who took it stay visible. A message with no
//!   content at all, or only empty transcripts (an answer cut off before it said anything),
//!   is left out.
//! - Items Chat Completions has no equivalent for (MCP items, item references, unknown items)
//!   are left out.
//!
//! # Messages to items ([`from_chat_messages`])
//!
//! The reverse, strictly: `system` and `developer` become system messages, `user` a user
//! message (text and `image_url` parts), `assistant` an assistant message (if it has content)
//! followed by one `function_call` per `tool_calls` entry, and `tool` a `function_call_output`.
//! Anything that cannot be represented is an error naming the message's index, never dropped.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value, json};

use crate::protocol::{ContentPart, FunctionCallItem, Item, MessageItem, Role};

/// The text that stands for audio without a transcript.
pub const AUDIO_PLACEHOLDER: &str = "[audio]";

/// The `tool` message content for a call whose output was never stored.
pub const MISSING_OUTPUT: &str = "[no output: the call did not complete]";

/// Converts conversation items to Chat Completions messages (see the module docs for the
/// rules).
pub fn to_chat_messages(items: &[Item]) -> Vec<Value> {
    let mut outputs: HashMap<&str, &str> = HashMap::new();
    let mut call_ids: HashSet<&str> = HashSet::new();
    for item in items {
        match item {
            Item::FunctionCallOutput(output) => {
                outputs
                    .entry(output.call_id.as_str())
                    .or_insert(output.output.as_str());
            }
            Item::FunctionCall(call) => {
                call_ids.insert(call.call_id.as_str());
            }
            _ => {}
        }
    }

    let mut out = Messages {
        messages: Vec::new(),
        outputs,
        emitted_calls: HashSet::new(),
    };
    let mut draft: Option<AssistantDraft<'_>> = None;
    for item in items {
        match item {
            Item::Message(message) if message.role == Role::Assistant => {
                let Some(content) = message_content(message) else {
                    continue;
                };
                match &mut draft {
                    Some(open) if !open.calls.is_empty() && open.content.is_none() => {
                        open.content = Some(content);
                    }
                    _ => {
                        out.flush(draft.take());
                        draft = Some(AssistantDraft {
                            content: Some(content),
                            calls: Vec::new(),
                        });
                    }
                }
            }
            Item::FunctionCall(call) => {
                draft
                    .get_or_insert_with(AssistantDraft::default)
                    .calls
                    .push(call);
            }
            Item::FunctionCallOutput(output) => {
                out.flush(draft.take());
                // Outputs are placed with their calls; one without a call cannot be placed.
                if !call_ids.contains(output.call_id.as_str()) {
                    tracing::warn!(
                        call_id = output.call_id,
                        "left a function_call_output out of the Chat Completions messages: \
                         its function_call is not in the conversation"
                    );
                }
            }
            Item::Message(message) => {
                out.flush(draft.take());
                if let Some(content) = message_content(message) {
                    let role = match message.role {
                        Role::User => "user",
                        _ => "system",
                    };
                    out.messages.push(json!({"role": role, "content": content}));
                }
            }
            _ => {}
        }
    }
    out.flush(draft.take());
    out.messages
}

/// An assistant message being assembled from adjacent items.
#[derive(Default)]
struct AssistantDraft<'a> {
    content: Option<Value>,
    calls: Vec<&'a FunctionCallItem>,
}

struct Messages<'a> {
    messages: Vec<Value>,
    /// The first output of each call id.
    outputs: HashMap<&'a str, &'a str>,
    /// Call ids already written, so a duplicated call is written once.
    emitted_calls: HashSet<&'a str>,
}

impl<'a> Messages<'a> {
    /// Writes the assistant message and, after it, the tool messages answering its calls.
    fn flush(&mut self, draft: Option<AssistantDraft<'a>>) {
        let Some(draft) = draft else { return };
        let calls: Vec<&FunctionCallItem> = draft
            .calls
            .into_iter()
            .filter(|call| self.emitted_calls.insert(call.call_id.as_str()))
            .collect();
        let mut message = Map::new();
        message.insert("role".into(), "assistant".into());
        message.insert("content".into(), draft.content.unwrap_or(Value::Null));
        if calls.is_empty() {
            if !message["content"].is_null() {
                self.messages.push(Value::Object(message));
            }
            return;
        }
        let tool_calls = calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })
            })
            .collect();
        message.insert("tool_calls".into(), Value::Array(tool_calls));
        self.messages.push(Value::Object(message));
        for call in calls {
            let output = self
                .outputs
                .get(call.call_id.as_str())
                .copied()
                .unwrap_or(MISSING_OUTPUT);
            self.messages.push(json!({
                "role": "tool",
                "tool_call_id": call.call_id,
                "content": output,
            }));
        }
    }
}

/// A message's Chat Completions `content`: a string, an array of parts when a user message
/// holds an image, or `None` when there is nothing to say.
fn message_content(message: &MessageItem) -> Option<Value> {
    let mut texts: Vec<&str> = Vec::new();
    let mut parts: Vec<Value> = Vec::new();
    let mut has_image = false;
    for part in &message.content {
        let text = match part {
            ContentPart::InputText { text } | ContentPart::OutputText { text } => {
                Some(text.as_str())
            }
            ContentPart::InputAudio { transcript, .. }
            | ContentPart::OutputAudio { transcript, .. } => {
                Some(transcript.as_deref().unwrap_or(AUDIO_PLACEHOLDER))
            }
            ContentPart::InputImage { image_url, detail } if message.role == Role::User => {
                if let Some(url) = image_url {
                    has_image = true;
                    let mut image = json!({"url": url});
                    if let Some(detail) = detail {
                        image["detail"] = json!(detail);
                    }
                    parts.push(json!({"type": "image_url", "image_url": image}));
                }
                None
            }
            _ => None,
        };
        if let Some(text) = text.filter(|text| !text.is_empty()) {
            texts.push(text);
            parts.push(json!({"type": "text", "text": text}));
        }
    }
    if has_image {
        Some(Value::Array(parts))
    } else if texts.is_empty() {
        None
    } else {
        Some(Value::String(texts.join("\n")))
    }
}

/// Why Chat Completions messages could not be turned into conversation items. Each names the
/// message (0-based index) and what a valid one looks like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChatConversionError {
    /// The message is not a JSON object.
    #[error(
        "message {index} is not a JSON object; a Chat Completions message looks like \
         {{\"role\": \"user\", \"content\": \"...\"}}"
    )]
    NotAnObject {
        /// The message's index.
        index: usize,
    },
    /// The message has no string `role`.
    #[error(
        "message {index} has no `role`; give it one of system, developer, user, assistant, tool"
    )]
    MissingRole {
        /// The message's index.
        index: usize,
    },
    /// The role has no Realtime equivalent.
    #[error(
        "message {index} has role `{role}`; expected system, developer, user, assistant or tool \
         (for the legacy `function` role, convert the messages to `tool_calls` and `tool`)"
    )]
    UnknownRole {
        /// The message's index.
        index: usize,
        /// The role found.
        role: String,
    },
    /// `content` is neither a string, an array of parts nor null.
    #[error(
        "message {index}: `content` must be a string, an array of content parts or null, \
         not {found}"
    )]
    BadContent {
        /// The message's index.
        index: usize,
        /// The JSON type found.
        found: &'static str,
    },
    /// A content part cannot be represented.
    #[error("message {index}, content part {part}: {problem}")]
    BadPart {
        /// The message's index.
        index: usize,
        /// The part's index.
        part: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// A `tool_calls` entry is malformed.
    #[error("message {index}, tool call {call}: {problem}")]
    BadToolCall {
        /// The message's index.
        index: usize,
        /// The entry's index.
        call: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// The assistant message uses the legacy `function_call` field.
    #[error(
        "message {index} uses the legacy `function_call` field; convert it to `tool_calls` \
         (with an id) and its answer to a `tool` message"
    )]
    LegacyFunctionCall {
        /// The message's index.
        index: usize,
    },
    /// A `tool` message has no `tool_call_id`.
    #[error(
        "message {index} is a `tool` message without a string `tool_call_id`; it must name \
         the id of an earlier assistant tool call"
    )]
    MissingToolCallId {
        /// The message's index.
        index: usize,
    },
    /// A `tool` message answers a call no earlier message made.
    #[error(
        "message {index} answers tool call `{id}`, but no earlier assistant message has a \
         tool call with that id"
    )]
    UnmatchedToolCall {
        /// The message's index.
        index: usize,
        /// The `tool_call_id` found.
        id: String,
    },
}

/// Converts Chat Completions messages to conversation items (see the module docs).
pub fn from_chat_messages(messages: &[Value]) -> Result<Vec<Item>, ChatConversionError> {
    let mut items = Vec::new();
    let mut call_ids: HashSet<String> = HashSet::new();
    for (index, message) in messages.iter().enumerate() {
        let object = message
            .as_object()
            .ok_or(ChatConversionError::NotAnObject { index })?;
        let role = object
            .get("role")
            .and_then(Value::as_str)
            .ok_or(ChatConversionError::MissingRole { index })?;
        let content = object.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                let parts = text_parts(index, content, ContentPart::input_text)?;
                if !parts.is_empty() {
                    items.push(Item::message(Role::System, parts));
                }
            }
            "user" => {
                let parts = user_parts(index, content)?;
                if !parts.is_empty() {
                    items.push(Item::message(Role::User, parts));
                }
            }
            "assistant" => {
                if object
                    .get("function_call")
                    .is_some_and(|call| !call.is_null())
                {
                    return Err(ChatConversionError::LegacyFunctionCall { index });
                }
                let parts = text_parts(index, content, ContentPart::output_text)?;
                if !parts.is_empty() {
                    items.push(Item::message(Role::Assistant, parts));
                }
                let calls = match object.get("tool_calls") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(calls)) => calls.as_slice(),
                    Some(_) => {
                        return Err(ChatConversionError::BadToolCall {
                            index,
                            call: 0,
                            problem: "`tool_calls` must be an array".into(),
                        });
                    }
                };
                for (call, entry) in calls.iter().enumerate() {
                    let item =
                        tool_call(entry).map_err(|problem| ChatConversionError::BadToolCall {
                            index,
                            call,
                            problem,
                        })?;
                    if let Item::FunctionCall(function_call) = &item {
                        call_ids.insert(function_call.call_id.clone());
                    }
                    items.push(item);
                }
            }
            "tool" => {
                let id = object
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or(ChatConversionError::MissingToolCallId { index })?;
                if !call_ids.contains(id) {
                    return Err(ChatConversionError::UnmatchedToolCall {
                        index,
                        id: id.to_owned(),
                    });
                }
                let output: String = text_parts(index, content, ContentPart::input_text)?
                    .iter()
                    .filter_map(ContentPart::text)
                    .collect();
                items.push(Item::function_call_output(id, output));
            }
            other => {
                return Err(ChatConversionError::UnknownRole {
                    index,
                    role: other.to_owned(),
                });
            }
        }
    }
    Ok(items)
}

/// Text content (a string, `text` / `refusal` parts, or null) as parts built by `make`.
fn text_parts(
    index: usize,
    content: &Value,
    make: fn(String) -> ContentPart,
) -> Result<Vec<ContentPart>, ChatConversionError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![make(text.clone())]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(part, value)| match part_text(value) {
                Ok(text) => Ok(make(text.to_owned())),
                Err(problem) => Err(ChatConversionError::BadPart {
                    index,
                    part,
                    problem,
                }),
            })
            .collect(),
        other => Err(ChatConversionError::BadContent {
            index,
            found: crate::tool::kind_of(other),
        }),
    }
}

/// A user message's content: text and `image_url` parts.
fn user_parts(index: usize, content: &Value) -> Result<Vec<ContentPart>, ChatConversionError> {
    let Value::Array(parts) = content else {
        return text_parts(index, content, ContentPart::input_text);
    };
    let mut out = Vec::with_capacity(parts.len());
    for (part, value) in parts.iter().enumerate() {
        let bad = |problem: String| ChatConversionError::BadPart {
            index,
            part,
            problem,
        };
        if value.get("type").and_then(Value::as_str) == Some("image_url") {
            let image = value.get("image_url");
            // `image_url` is an object with `url` (and `detail`), or, in older clients, the URL.
            let url = image
                .and_then(|image| image.get("url").or(Some(image)))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("an `image_url` part needs `image_url.url`".into()))?;
            let detail = image
                .and_then(|image| image.get("detail"))
                .and_then(Value::as_str);
            out.push(ContentPart::InputImage {
                image_url: Some(url.to_owned()),
                detail: detail.map(str::to_owned),
            });
        } else {
            out.push(ContentPart::input_text(part_text(value).map_err(bad)?));
        }
    }
    Ok(out)
}

/// The text of a `text` or `refusal` part.
fn part_text(part: &Value) -> Result<&str, String> {
    let kind = part.get("type").and_then(Value::as_str);
    let field = match kind {
        Some("text") => "text",
        Some("refusal") => "refusal",
        Some(other) => {
            return Err(format!(
                "parts of type `{other}` cannot be carried over; use `text` parts"
            ));
        }
        None => return Err("a content part needs a `type` (for example `text`)".into()),
    };
    part.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("a `{field}` part needs a string `{field}`"))
}

/// One `tool_calls` entry as a `function_call` item.
fn tool_call(entry: &Value) -> Result<Item, String> {
    let id = entry
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or("needs a non-empty string `id`")?;
    match entry.get("type").and_then(Value::as_str) {
        Some("function") | None => {}
        Some(other) => {
            return Err(format!(
                "type `{other}` is not supported; only `function` tool calls have a Realtime \
                 equivalent"
            ));
        }
    }
    let function = entry
        .get("function")
        .ok_or("needs a `function` with `name` and `arguments`")?;
    let name = function
        .get("name")
        .and_then(Value::as_str)
        .filter(|name| !name.is_empty())
        .ok_or("needs a non-empty `function.name`")?;
    let arguments = match function.get("arguments") {
        Some(Value::String(arguments)) => arguments.clone(),
        None | Some(Value::Null) => "{}".to_owned(),
        // Some producers write the arguments as an object instead of a JSON string.
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(other) => {
            return Err(format!(
                "`function.arguments` must be a JSON string, not {}",
                crate::tool::kind_of(other)
            ));
        }
    };
    Ok(Item::function_call(id, name, arguments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_audio(transcript: Option<&str>) -> Item {
        Item::message(
            Role::User,
            vec![ContentPart::InputAudio {
                audio: None,
                transcript: transcript.map(str::to_owned),
            }],
        )
    }

    fn assistant_audio(transcript: Option<&str>) -> Item {
        Item::message(
            Role::Assistant,
            vec![ContentPart::OutputAudio {
                audio: None,
                transcript: transcript.map(str::to_owned),
            }],
        )
    }

    /// Checks the messages against the Chat Completions request rules that matter here:
    /// known roles; string (or, for user and system, part-array) content; assistant content
    /// a string or null, and not null without tool calls; well-formed `tool_calls` with JSON
    /// arguments and unique ids; every tool call answered by `tool` messages directly after
    /// its assistant message, and every `tool` message answering such a call.
    fn assert_valid_chat(messages: &[Value]) {
        let mut awaiting: Vec<String> = Vec::new();
        let mut seen_ids = HashSet::new();
        for (index, message) in messages.iter().enumerate() {
            let object = message.as_object().expect("message is an object");
            let role = object["role"].as_str().expect("role is a string");
            let content = &object["content"];
            if role != "tool" {
                assert!(
                    awaiting.is_empty(),
                    "message {index} ({role}) comes before tool calls {awaiting:?} are answered"
                );
            }
            match role {
                "system" | "user" => {
                    assert!(
                        content.is_string() || content.is_array(),
                        "message {index}: content {content}"
                    );
                    let allowed = ["role", "content", "name"];
                    assert!(
                        object.keys().all(|k| allowed.contains(&k.as_str())),
                        "{message}"
                    );
                }
                "assistant" => {
                    let calls = object.get("tool_calls").and_then(Value::as_array);
                    assert!(
                        content.is_string() || (content.is_null() && calls.is_some()),
                        "message {index}: assistant content {content}"
                    );
                    for call in calls.into_iter().flatten() {
                        let id = call["id"].as_str().expect("tool call id");
                        assert!(
                            seen_ids.insert(id.to_owned()),
                            "duplicate tool call id {id}"
                        );
                        assert_eq!(call["type"], "function");
                        assert!(call["function"]["name"].is_string());
                        let arguments = call["function"]["arguments"].as_str().expect("args");
                        serde_json::from_str::<Value>(arguments).expect("arguments are JSON");
                        awaiting.push(id.to_owned());
                    }
                    if let Some(calls) = calls {
                        assert!(!calls.is_empty(), "message {index}: empty tool_calls");
                    }
                }
                "tool" => {
                    let id = object["tool_call_id"].as_str().expect("tool_call_id");
                    let position = awaiting
                        .iter()
                        .position(|awaited| awaited == id)
                        .unwrap_or_else(|| {
                            panic!("message {index}: tool message for {id} answers no open call")
                        });
                    awaiting.remove(position);
                    assert!(
                        content.is_string(),
                        "message {index}: tool content {content}"
                    );
                }
                other => panic!("message {index}: role {other}"),
            }
        }
        assert!(awaiting.is_empty(), "unanswered tool calls {awaiting:?}");
    }

    #[test]
    fn messages_and_tool_calls_convert() {
        let items = vec![
            Item::system_text("Be brief."),
            Item::user_text("Where is A1001?"),
            Item::assistant_text("Let me check."),
            Item::function_call("call_1", "lookup_order", r#"{"order_id":"A1001"}"#),
            Item::function_call_output("call_1", r#"{"status":"shipped"}"#),
            Item::assistant_text("It has shipped."),
        ];
        let messages = to_chat_messages(&items);
        assert_eq!(
            Value::Array(messages.clone()),
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Where is A1001?"},
                {"role": "assistant", "content": "Let me check.", "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "lookup_order", "arguments": "{\"order_id\":\"A1001\"}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "{\"status\":\"shipped\"}"},
                {"role": "assistant", "content": "It has shipped."}
            ])
        );
        assert_valid_chat(&messages);
        assert_eq!(from_chat_messages(&messages).unwrap(), items);
    }

    #[test]
    fn parallel_calls_share_one_message() {
        let items = vec![
            Item::user_text("Two orders please"),
            Item::function_call("call_a", "lookup_order", r#"{"order_id":"A1"}"#),
            Item::function_call("call_b", "lookup_order", r#"{"order_id":"B2"}"#),
            Item::function_call_output("call_b", "B2 shipped"),
            Item::function_call_output("call_a", "A1 pending"),
            Item::assistant_text("A1 is pending, B2 shipped."),
        ];
        let messages = to_chat_messages(&items);
        assert_valid_chat(&messages);
        assert_eq!(messages.len(), 5, "{messages:#?}");
        assert_eq!(messages[1]["content"], Value::Null);
        let ids: Vec<&str> = messages[1]["tool_calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|call| call["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["call_a", "call_b"]);
        // Tool messages follow in call order.
        assert_eq!(messages[2]["tool_call_id"], "call_a");
        assert_eq!(messages[2]["content"], "A1 pending");
        assert_eq!(messages[3]["tool_call_id"], "call_b");
        // Back again: outputs come in call order, the rest is unchanged.
        let back = from_chat_messages(&messages).unwrap();
        assert_eq!(back[3], items[4]);
        assert_eq!(back[4], items[3]);
        assert_eq!(to_chat_messages(&back), messages);
    }

    #[test]
    fn audio_turns_become_transcripts() {
        let items = vec![
            user_audio(Some("where is my order")),
            assistant_audio(Some("Which order number?")),
            user_audio(None),
            assistant_audio(Some("")),
            Item::message(Role::Assistant, vec![]),
        ];
        let messages = to_chat_messages(&items);
        assert_valid_chat(&messages);
        assert_eq!(
            Value::Array(messages),
            json!([
                {"role": "user", "content": "where is my order"},
                {"role": "assistant", "content": "Which order number?"},
                {"role": "user", "content": AUDIO_PLACEHOLDER},
            ])
        );
    }

    #[test]
    fn outputs_move_next_to_their_calls_and_missing_ones_are_marked() {
        let items = vec![
            Item::function_call("call_1", "slow", "{}"),
            Item::user_text("are you there?"),
            Item::function_call_output("call_1", "done"),
            Item::function_call("call_2", "killed", "{}"),
            Item::function_call_output("call_orphan", "nobody asked"),
            Item::user_text("hello?"),
        ];
        let messages = to_chat_messages(&items);
        assert_valid_chat(&messages);
        let roles: Vec<&str> = messages
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        assert_eq!(
            roles,
            ["assistant", "tool", "user", "assistant", "tool", "user"]
        );
        assert_eq!(messages[1]["content"], "done");
        assert_eq!(messages[4]["content"], MISSING_OUTPUT);
    }

    #[test]
    fn text_after_calls_becomes_their_content() {
        let items = vec![
            Item::function_call("call_1", "f", "{}"),
            Item::assistant_text("Working on it."),
            Item::assistant_text("Still working."),
            Item::function_call_output("call_1", "ok"),
        ];
        let messages = to_chat_messages(&items);
        assert_valid_chat(&messages);
        assert_eq!(messages[0]["content"], "Working on it.");
        assert_eq!(messages[0]["tool_calls"][0]["id"], "call_1");
        assert_eq!(messages[1]["role"], "tool");
        assert_eq!(messages[2]["content"], "Still working.");
    }

    #[test]
    fn round_trip_is_a_fixed_point() {
        let items = vec![
            Item::system_text("You help with orders."),
            user_audio(Some("order A1")),
            assistant_audio(Some("Checking.")),
            Item::function_call("c1", "lookup_order", r#"{"order_id":"A1"}"#),
            Item::function_call("c2", "current_time", "{}"),
            Item::function_call_output("c1", "shipped"),
            Item::function_call_output("c2", "noon"),
            assistant_audio(Some("Shipped at noon.")),
            Item::message(
                Role::User,
                vec![
                    ContentPart::input_text("and this?"),
                    ContentPart::InputImage {
                        image_url: Some("data:image/png;base64,AAAA".into()),
                        detail: Some("low".into()),
                    },
                ],
            ),
        ];
        let messages = to_chat_messages(&items);
        assert_valid_chat(&messages);
        assert_eq!(messages[6]["content"][1]["image_url"]["detail"], "low");
        let back = from_chat_messages(&messages).unwrap();
        assert_eq!(to_chat_messages(&back), messages);
        // Audio comes back as its transcript.
        assert_eq!(back[1], Item::user_text("order A1"));
        assert_eq!(back[2], Item::assistant_text("Checking."));
    }

    #[test]
    fn chat_input_shapes_are_accepted() {
        let messages = json!([
            {"role": "developer", "content": [{"type": "text", "text": "Rules."}]},
            {"role": "user", "content": [{"type": "text", "text": "hi"}], "name": "ann"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "t1", "type": "function",
                 "function": {"name": "f", "arguments": {"x": 1}}}]},
            {"role": "tool", "tool_call_id": "t1",
             "content": [{"type": "text", "text": "o"}, {"type": "text", "text": "k"}]},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
        ]);
        let items = from_chat_messages(messages.as_array().unwrap()).unwrap();
        assert_eq!(
            items,
            vec![
                Item::system_text("Rules."),
                Item::user_text("hi"),
                Item::function_call("t1", "f", r#"{"x":1}"#),
                Item::function_call_output("t1", "ok"),
                Item::assistant_text("No."),
            ]
        );
    }

    #[test]
    fn bad_messages_name_their_index() {
        let cases = [
            (
                json!([{"role": "user", "content": "a"}, 7]),
                "message 1 is not a JSON object",
            ),
            (json!([{"content": "a"}]), "message 0 has no `role`"),
            (
                json!([{"role": "function", "name": "f", "content": "x"}]),
                "role `function`",
            ),
            (json!([{"role": "user", "content": 3}]), "not a number"),
            (
                json!([{"role": "user", "content": [{"type": "input_audio"}]}]),
                "content part 0: parts of type `input_audio`",
            ),
            (
                json!([{"role": "tool", "tool_call_id": "x", "content": "o"}]),
                "answers tool call `x`",
            ),
            (
                json!([{"role": "tool", "content": "o"}]),
                "without a string `tool_call_id`",
            ),
            (
                json!([{"role": "assistant", "tool_calls": [{"id": "a", "type": "custom"}]}]),
                "message 0, tool call 0: type `custom`",
            ),
            (
                json!([{"role": "assistant", "tool_calls": [{"type": "function"}]}]),
                "non-empty string `id`",
            ),
            (
                json!([{"role": "assistant", "function_call": {"name": "f"}}]),
                "legacy `function_call`",
            ),
        ];
        for (messages, expected) in cases {
            let error = from_chat_messages(messages.as_array().unwrap()).unwrap_err();
            assert!(
                error.to_string().contains(expected),
                "{messages}: `{error}` should contain `{expected}`"
            );
        }
    }

    #[test]
    fn items_without_a_chat_equivalent_are_left_out() {
        let items = vec![
            Item::mcp_approval_response("a1", "req_1", true),
            Item::Unknown(json!({"type": "web_search_call"})),
            Item::user_text("hi"),
        ];
        assert_eq!(
            to_chat_messages(&items),
            vec![json!({"role": "user", "content": "hi"})]
        );
    }
}
