//! Conversation items: messages, function calls and their outputs, MCP items.
//!
//! Items decode from both dialects: the beta content types `text` and `audio` (assistant
//! output) become [`ContentPart::OutputText`] and [`ContentPart::OutputAudio`]. An item or part
//! of a type this version does not know decodes to an `Unknown` variant holding the raw JSON,
//! so one odd item never costs the whole event. `Serialize` writes the GA shape.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::lenient::null_as_default;
use super::string_enum::string_enum;

string_enum! {
    /// Who a message is from.
    pub enum Role {
        /// The person talking to the agent.
        User = "user",
        /// The model.
        Assistant = "assistant",
        /// Instructions injected by the application.
        System = "system",
    }
}

string_enum! {
    /// Progress of an item.
    pub enum ItemStatus {
        /// The item is complete.
        Completed = "completed",
        /// The item was cut short (for example by an interruption).
        Incomplete = "incomplete",
        /// The item is still being generated.
        InProgress = "in_progress",
    }
}

/// One conversation item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A message from the user, the assistant or the system.
    Message(MessageItem),
    /// The model calling a function.
    FunctionCall(FunctionCallItem),
    /// The client's answer to a function call.
    FunctionCallOutput(FunctionCallOutputItem),
    /// The server asking the client to approve an MCP tool call (GA).
    McpApprovalRequest(McpApprovalRequestItem),
    /// The client's answer to an MCP approval request (GA).
    McpApprovalResponse(McpApprovalResponseItem),
    /// The tools an MCP server offers (GA).
    McpListTools(McpListToolsItem),
    /// An MCP tool call made by the server (GA).
    McpCall(McpCallItem),
    /// A reference to an earlier item, for `response.create` input (beta only).
    ItemReference(ItemReference),
    /// An item this version does not understand, kept verbatim.
    Unknown(Value),
}

/// A message item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageItem {
    /// Item ID; the server assigns one when the client leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `realtime.item` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Progress of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// Who the message is from.
    pub role: Role,
    /// The message's parts, in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub content: Vec<ContentPart>,
}

impl MessageItem {
    /// All text and transcripts of the message, joined in order.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for part in &self.content {
            if let Some(piece) = part.text() {
                text.push_str(piece);
            }
        }
        text
    }
}

/// A function call by the model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallItem {
    /// Item ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `realtime.item` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Progress of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// Ties the call to its `function_call_output`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub call_id: String,
    /// The function's name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// The arguments, a JSON object encoded as a string.
    #[serde(default, deserialize_with = "null_as_default")]
    pub arguments: String,
}

/// The result of a function call, sent by the client.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCallOutputItem {
    /// Item ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `realtime.item` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Progress of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ItemStatus>,
    /// The `call_id` of the function call this answers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub call_id: String,
    /// The result, free text (usually JSON).
    #[serde(default, deserialize_with = "null_as_default")]
    pub output: String,
}

/// An MCP approval request from the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpApprovalRequestItem {
    /// Item ID, referenced by the approval response.
    #[serde(default)]
    pub id: String,
    /// The MCP server's label.
    #[serde(default)]
    pub server_label: String,
    /// The tool to be called.
    #[serde(default)]
    pub name: String,
    /// The arguments, a JSON string.
    #[serde(default)]
    pub arguments: String,
}

/// The client's decision on an MCP approval request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpApprovalResponseItem {
    /// Item ID (required by the GA schema; the client picks it).
    #[serde(default)]
    pub id: String,
    /// The request being answered.
    #[serde(default)]
    pub approval_request_id: String,
    /// Whether the call may proceed.
    #[serde(default)]
    pub approve: bool,
    /// Why, shown to the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The tool list of an MCP server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpListToolsItem {
    /// Item ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The MCP server's label.
    #[serde(default)]
    pub server_label: String,
    /// The tools the server offers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub tools: Vec<McpListedTool>,
}

/// One tool of an MCP server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpListedTool {
    /// The tool's name.
    #[serde(default)]
    pub name: String,
    /// JSON Schema of its arguments.
    #[serde(default)]
    pub input_schema: Value,
    /// What the tool does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Extra hints such as `readOnlyHint`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

/// An MCP tool call made by the server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpCallItem {
    /// Item ID.
    #[serde(default)]
    pub id: String,
    /// The MCP server's label.
    #[serde(default)]
    pub server_label: String,
    /// The tool called.
    #[serde(default)]
    pub name: String,
    /// The arguments, a JSON string.
    #[serde(default)]
    pub arguments: String,
    /// The approval request this call needed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_id: Option<String>,
    /// The tool's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Why the call failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<McpCallError>,
}

/// An MCP call failure (`protocol_error`, `tool_execution_error` or `http_error`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct McpCallError {
    /// The kind of failure.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// Protocol or HTTP status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// What went wrong.
    #[serde(default)]
    pub message: String,
}

/// A reference to an earlier conversation item (beta `response.create` input).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemReference {
    /// The referenced item's ID.
    #[serde(default)]
    pub id: String,
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq)]
pub enum ContentPart {
    /// Text typed by the user, or system instructions.
    InputText {
        /// The text.
        text: String,
    },
    /// Audio from the user (base64 in the format of the session), with its transcript.
    InputAudio {
        /// Base64 audio; servers leave it out of echoed items.
        audio: Option<String>,
        /// Transcript, once input transcription has run (`null` until then).
        transcript: Option<String>,
    },
    /// An image from the user (GA only).
    InputImage {
        /// A `data:` URL or https URL of the image.
        image_url: Option<String>,
        /// `auto`, `low` or `high`.
        detail: Option<String>,
    },
    /// Text from the assistant (beta `text`).
    OutputText {
        /// The text.
        text: String,
    },
    /// Audio from the assistant (beta `audio`), usually only its transcript.
    OutputAudio {
        /// Base64 audio, rarely present.
        audio: Option<String>,
        /// What the assistant said.
        transcript: Option<String>,
    },
    /// A reference to an earlier item's content (beta only).
    ItemReference {
        /// The referenced item's ID.
        id: String,
    },
    /// A part type this version does not know, kept verbatim.
    Unknown(Value),
}

impl ContentPart {
    /// A user text part.
    pub fn input_text(text: impl Into<String>) -> Self {
        ContentPart::InputText { text: text.into() }
    }

    /// A user audio part from base64 audio.
    pub fn input_audio(audio_base64: impl Into<String>) -> Self {
        ContentPart::InputAudio {
            audio: Some(audio_base64.into()),
            transcript: None,
        }
    }

    /// An assistant text part.
    pub fn output_text(text: impl Into<String>) -> Self {
        ContentPart::OutputText { text: text.into() }
    }

    /// The part's text or transcript, if it has one.
    pub fn text(&self) -> Option<&str> {
        match self {
            ContentPart::InputText { text } | ContentPart::OutputText { text } => Some(text),
            ContentPart::InputAudio { transcript, .. }
            | ContentPart::OutputAudio { transcript, .. } => transcript.as_deref(),
            _ => None,
        }
    }

    /// The GA type name of this part (`None` for unknown parts).
    pub fn ga_type(&self) -> Option<&'static str> {
        Some(match self {
            ContentPart::InputText { .. } => "input_text",
            ContentPart::InputAudio { .. } => "input_audio",
            ContentPart::InputImage { .. } => "input_image",
            ContentPart::OutputText { .. } => "output_text",
            ContentPart::OutputAudio { .. } => "output_audio",
            ContentPart::ItemReference { .. } => "item_reference",
            ContentPart::Unknown(_) => return None,
        })
    }
}

/// The serialized form of a content part, with its type name chosen by the dialect.
#[derive(Serialize)]
pub(crate) struct ContentPartWire<'a> {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) audio: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) transcript: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) image_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<&'a str>,
}

impl<'a> ContentPartWire<'a> {
    /// The wire form of a known part under the given type name (`None` for unknown parts).
    pub(crate) fn new(part: &'a ContentPart, kind: &'static str) -> Option<Self> {
        let mut wire = ContentPartWire {
            kind,
            text: None,
            audio: None,
            transcript: None,
            image_url: None,
            detail: None,
            id: None,
        };
        match part {
            ContentPart::InputText { text } | ContentPart::OutputText { text } => {
                wire.text = Some(text);
            }
            ContentPart::InputAudio { audio, transcript }
            | ContentPart::OutputAudio { audio, transcript } => {
                wire.audio = audio.as_deref();
                wire.transcript = transcript.as_deref();
            }
            ContentPart::InputImage { image_url, detail } => {
                wire.image_url = image_url.as_deref();
                wire.detail = detail.as_deref();
            }
            ContentPart::ItemReference { id } => wire.id = Some(id),
            ContentPart::Unknown(_) => return None,
        }
        Some(wire)
    }
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let ContentPart::Unknown(raw) = self {
            return raw.serialize(serializer);
        }
        match self
            .ga_type()
            .and_then(|kind| ContentPartWire::new(self, kind))
        {
            Some(wire) => wire.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(default)]
            text: Option<String>,
            #[serde(default)]
            audio: Option<String>,
            #[serde(default)]
            transcript: Option<String>,
            #[serde(default)]
            image_url: Option<String>,
            #[serde(default)]
            detail: Option<String>,
            #[serde(default)]
            id: Option<String>,
        }
        let raw = Value::deserialize(deserializer)?;
        let Some(kind) = raw.get("type").and_then(Value::as_str) else {
            return Ok(ContentPart::Unknown(raw));
        };
        let Ok(f) = Fields::deserialize(&raw) else {
            return Ok(ContentPart::Unknown(raw));
        };
        Ok(match kind {
            "input_text" => ContentPart::InputText {
                text: f.text.unwrap_or_default(),
            },
            "input_audio" => ContentPart::InputAudio {
                audio: f.audio,
                transcript: f.transcript,
            },
            "input_image" => ContentPart::InputImage {
                image_url: f.image_url,
                detail: f.detail,
            },
            "output_text" | "text" => ContentPart::OutputText {
                text: f.text.unwrap_or_default(),
            },
            "output_audio" | "audio" => ContentPart::OutputAudio {
                audio: f.audio,
                transcript: f.transcript,
            },
            "item_reference" => ContentPart::ItemReference {
                id: f.id.unwrap_or_default(),
            },
            _ => ContentPart::Unknown(raw),
        })
    }
}

impl Item {
    /// A user message with one text part.
    pub fn user_text(text: impl Into<String>) -> Self {
        Item::message(Role::User, vec![ContentPart::input_text(text)])
    }

    /// A user message with one audio part (base64 in the session's input format).
    pub fn user_audio(audio_base64: impl Into<String>) -> Self {
        Item::message(Role::User, vec![ContentPart::input_audio(audio_base64)])
    }

    /// A system message, for instructions injected mid-conversation.
    pub fn system_text(text: impl Into<String>) -> Self {
        Item::message(Role::System, vec![ContentPart::input_text(text)])
    }

    /// An assistant message with one text part, e.g. when replaying history.
    pub fn assistant_text(text: impl Into<String>) -> Self {
        Item::message(Role::Assistant, vec![ContentPart::output_text(text)])
    }

    /// A message with the given role and parts.
    pub fn message(role: Role, content: Vec<ContentPart>) -> Self {
        Item::Message(MessageItem {
            id: None,
            object: None,
            status: None,
            role,
            content,
        })
    }

    /// A function call, e.g. when replaying history after a reconnect.
    pub fn function_call(
        call_id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Item::FunctionCall(FunctionCallItem {
            call_id: call_id.into(),
            name: name.into(),
            arguments: arguments.into(),
            ..FunctionCallItem::default()
        })
    }

    /// The answer to a function call; `call_id` must match the call's.
    pub fn function_call_output(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        Item::FunctionCallOutput(FunctionCallOutputItem {
            call_id: call_id.into(),
            output: output.into(),
            ..FunctionCallOutputItem::default()
        })
    }

    /// An approval decision for an MCP tool call (GA only). `id` is the new item's ID.
    pub fn mcp_approval_response(
        id: impl Into<String>,
        approval_request_id: impl Into<String>,
        approve: bool,
    ) -> Self {
        Item::McpApprovalResponse(McpApprovalResponseItem {
            id: id.into(),
            approval_request_id: approval_request_id.into(),
            approve,
            reason: None,
        })
    }

    /// Sets the item's ID (ignored for unknown items), so the client can refer to it later.
    pub fn with_id(mut self, new_id: impl Into<String>) -> Self {
        let new_id = new_id.into();
        match &mut self {
            Item::Message(item) => item.id = Some(new_id),
            Item::FunctionCall(item) => item.id = Some(new_id),
            Item::FunctionCallOutput(item) => item.id = Some(new_id),
            Item::McpListTools(item) => item.id = Some(new_id),
            Item::McpApprovalRequest(item) => item.id = new_id,
            Item::McpApprovalResponse(item) => item.id = new_id,
            Item::McpCall(item) => item.id = new_id,
            Item::ItemReference(item) => item.id = new_id,
            Item::Unknown(_) => {}
        }
        self
    }

    /// The item's ID, if it has one.
    pub fn id(&self) -> Option<&str> {
        match self {
            Item::Message(item) => item.id.as_deref(),
            Item::FunctionCall(item) => item.id.as_deref(),
            Item::FunctionCallOutput(item) => item.id.as_deref(),
            Item::McpListTools(item) => item.id.as_deref(),
            Item::McpApprovalRequest(item) => Some(&item.id),
            Item::McpApprovalResponse(item) => Some(&item.id),
            Item::McpCall(item) => Some(&item.id),
            Item::ItemReference(item) => Some(&item.id),
            Item::Unknown(raw) => raw.get("id").and_then(Value::as_str),
        }
    }

    /// The item's `type` on the wire.
    pub fn item_type(&self) -> &str {
        match self {
            Item::Message(_) => "message",
            Item::FunctionCall(_) => "function_call",
            Item::FunctionCallOutput(_) => "function_call_output",
            Item::McpApprovalRequest(_) => "mcp_approval_request",
            Item::McpApprovalResponse(_) => "mcp_approval_response",
            Item::McpListTools(_) => "mcp_list_tools",
            Item::McpCall(_) => "mcp_call",
            Item::ItemReference(_) => "item_reference",
            Item::Unknown(raw) => raw.get("type").and_then(Value::as_str).unwrap_or(""),
        }
    }

    /// The function call, if this item is one.
    pub fn as_function_call(&self) -> Option<&FunctionCallItem> {
        match self {
            Item::FunctionCall(call) => Some(call),
            _ => None,
        }
    }

    /// The message, if this item is one.
    pub fn as_message(&self) -> Option<&MessageItem> {
        match self {
            Item::Message(message) => Some(message),
            _ => None,
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ItemRef<'a> {
    Message(&'a MessageItem),
    FunctionCall(&'a FunctionCallItem),
    FunctionCallOutput(&'a FunctionCallOutputItem),
    McpApprovalRequest(&'a McpApprovalRequestItem),
    McpApprovalResponse(&'a McpApprovalResponseItem),
    McpListTools(&'a McpListToolsItem),
    McpCall(&'a McpCallItem),
    ItemReference(&'a ItemReference),
}

impl Serialize for Item {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let tagged = match self {
            Item::Message(item) => ItemRef::Message(item),
            Item::FunctionCall(item) => ItemRef::FunctionCall(item),
            Item::FunctionCallOutput(item) => ItemRef::FunctionCallOutput(item),
            Item::McpApprovalRequest(item) => ItemRef::McpApprovalRequest(item),
            Item::McpApprovalResponse(item) => ItemRef::McpApprovalResponse(item),
            Item::McpListTools(item) => ItemRef::McpListTools(item),
            Item::McpCall(item) => ItemRef::McpCall(item),
            Item::ItemReference(item) => ItemRef::ItemReference(item),
            Item::Unknown(raw) => return raw.serialize(serializer),
        };
        tagged.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Value::deserialize(deserializer)?;
        Ok(Item::from_value(raw))
    }
}

impl Item {
    /// Reads an item from JSON; anything unrecognised becomes [`Item::Unknown`].
    pub fn from_value(raw: Value) -> Item {
        fn parse<T: serde::de::DeserializeOwned>(raw: Value, wrap: fn(T) -> Item) -> Item {
            match T::deserialize(&raw) {
                Ok(item) => wrap(item),
                Err(error) => {
                    tracing::warn!(%error, "keeping a malformed conversation item as raw JSON");
                    Item::Unknown(raw)
                }
            }
        }
        let kind = raw.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "message" => parse(raw, Item::Message),
            "function_call" => parse(raw, Item::FunctionCall),
            "function_call_output" => parse(raw, Item::FunctionCallOutput),
            "mcp_approval_request" => parse(raw, Item::McpApprovalRequest),
            "mcp_approval_response" => parse(raw, Item::McpApprovalResponse),
            "mcp_list_tools" => parse(raw, Item::McpListTools),
            "mcp_call" => parse(raw, Item::McpCall),
            "item_reference" => parse(raw, Item::ItemReference),
            _ => Item::Unknown(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn beta_assistant_parts_become_output_parts() {
        let item: Item = serde_json::from_value(json!({
            "id": "msg_1", "object": "realtime.item", "type": "message", "status": "completed",
            "role": "assistant",
            "content": [{"type": "text", "text": "Hi"},
                        {"type": "audio", "transcript": "there", "format": "pcm16"}]
        }))
        .unwrap();
        let Item::Message(message) = &item else {
            panic!("not a message: {item:?}");
        };
        assert_eq!(message.content[0], ContentPart::output_text("Hi"));
        assert!(matches!(
            message.content[1],
            ContentPart::OutputAudio { .. }
        ));
        assert_eq!(message.text(), "Hithere");
        let ga = serde_json::to_value(&item).unwrap();
        assert_eq!(ga["content"][0]["type"], "output_text");
        assert_eq!(ga["content"][1]["type"], "output_audio");
    }

    #[test]
    fn unknown_and_junk_items_are_kept() {
        for raw in [
            json!({"type": "web_search_call", "id": "ws_1"}),
            json!("__truncated_by_node_inspect__"),
            json!({"type": "message", "role": 7}),
        ] {
            let item: Item = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(item, Item::Unknown(raw.clone()));
            assert_eq!(serde_json::to_value(&item).unwrap(), raw);
        }
        let part: ContentPart = serde_json::from_value(json!("junk")).unwrap();
        assert_eq!(part, ContentPart::Unknown(json!("junk")));
    }

    #[test]
    fn nulls_in_items_are_accepted() {
        let item: Item = serde_json::from_value(json!({
            "type": "message", "role": "user", "status": null, "id": null,
            "content": [{"type": "input_audio", "transcript": null}]
        }))
        .unwrap();
        assert_eq!(
            item,
            Item::message(
                Role::User,
                vec![ContentPart::InputAudio {
                    audio: None,
                    transcript: None
                }]
            )
        );
        let empty: Item = serde_json::from_value(
            json!({"type": "message", "role": "assistant", "content": null}),
        )
        .unwrap();
        assert_eq!(empty, Item::message(Role::Assistant, vec![]));
    }

    #[test]
    fn constructors_write_ga_shapes() {
        assert_eq!(
            serde_json::to_value(Item::function_call_output("call_1", "{\"ok\":true}")).unwrap(),
            json!({"type": "function_call_output", "call_id": "call_1", "output": "{\"ok\":true}"})
        );
        assert_eq!(
            serde_json::to_value(Item::user_text("hi").with_id("item_1")).unwrap(),
            json!({"type": "message", "id": "item_1", "role": "user",
                   "content": [{"type": "input_text", "text": "hi"}]})
        );
    }
}
