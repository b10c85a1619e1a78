//! Client events: what the agent sends to the server.
//!
//! One typed model for both dialects. [`ClientEvent::encode`] writes the exact spec shape of
//! the connection's dialect; [`ClientEvent::decode`] reads either shape (used by the test
//! server and by tools that inspect recorded traffic).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::dialect::{Dialect, beta};
use super::error::{DecodeError, EncodeError};
use super::item::{ContentPart, Item};
use super::peek;
use super::response::ResponseCreateParams;
use super::session::{Session, SessionKind};

/// `session.update`: change the session's configuration.
///
/// A session of kind [`SessionKind::Transcription`] is sent as GA `session.update` with
/// `type: "transcription"`, and as `transcription_session.update` in the beta dialect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionUpdate {
    /// Optional client-chosen ID, echoed in `error.event_id` if this event fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The settings to change; unset fields keep their value.
    pub session: Session,
}

/// `transcription_session.update`: the legacy (beta-era) way to configure a transcription
/// session, in the flat shape in both dialects. Prefer [`SessionUpdate`] with
/// [`SessionKind::Transcription`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionSessionUpdate {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The settings to change (kind [`SessionKind::Transcription`]).
    pub session: Session,
}

/// `input_audio_buffer.append`: add audio (base64, in the session's input format) to the
/// input buffer. The hot path of a voice session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAudioBufferAppend {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Base64 audio; at most 15 MiB per event.
    pub audio: String,
}

/// `input_audio_buffer.commit`: turn the buffered audio into a user item (needed when turn
/// detection is off).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAudioBufferCommit {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `input_audio_buffer.clear`: drop the buffered input audio.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAudioBufferClear {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `output_audio_buffer.clear`: stop the audio the server is still playing (WebRTC/SIP only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputAudioBufferClear {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

/// `conversation.item.create`: add an item (a message, a function call output, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemCreate {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Insert after this item (`root` for the start); appended at the end when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_item_id: Option<String>,
    /// The item to add.
    pub item: Item,
}

/// `conversation.item.retrieve`: ask the server for an item (answered by
/// `conversation.item.retrieved`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationItemRetrieve {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The item to retrieve.
    pub item_id: String,
}

/// `conversation.item.truncate`: cut an assistant audio item at what the user actually heard.
/// Truncating past the end of the received audio is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationItemTruncate {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The assistant item to truncate.
    pub item_id: String,
    /// The content part to truncate (0 for audio).
    pub content_index: u32,
    /// Keep this much audio, in ms.
    pub audio_end_ms: u64,
}

/// `conversation.item.delete`: remove an item from the conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationItemDelete {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The item to delete.
    pub item_id: String,
}

/// `response.create`: ask the model to respond. Only one response may be active at a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseCreate {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// Overrides for this response; the session's settings when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseCreateParams>,
}

/// `response.cancel`: stop the active response (or the given one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseCancel {
    /// Optional client-chosen ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The response to cancel; the active one when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
}

/// An event the client sends: the 11 GA client events plus the legacy
/// `transcription_session.update`.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `session.update` (or beta `transcription_session.update` for transcription sessions).
    SessionUpdate(SessionUpdate),
    /// `input_audio_buffer.append`.
    InputAudioBufferAppend(InputAudioBufferAppend),
    /// `input_audio_buffer.commit`.
    InputAudioBufferCommit(InputAudioBufferCommit),
    /// `input_audio_buffer.clear`.
    InputAudioBufferClear(InputAudioBufferClear),
    /// `output_audio_buffer.clear`.
    OutputAudioBufferClear(OutputAudioBufferClear),
    /// `conversation.item.create`.
    ConversationItemCreate(ConversationItemCreate),
    /// `conversation.item.retrieve`.
    ConversationItemRetrieve(ConversationItemRetrieve),
    /// `conversation.item.truncate`.
    ConversationItemTruncate(ConversationItemTruncate),
    /// `conversation.item.delete`.
    ConversationItemDelete(ConversationItemDelete),
    /// `response.create`.
    ResponseCreate(ResponseCreate),
    /// `response.cancel`.
    ResponseCancel(ResponseCancel),
    /// `transcription_session.update` (legacy; beta and the GA legacy schema).
    TranscriptionSessionUpdate(TranscriptionSessionUpdate),
}

/// The GA serialization: `{"type": ..., <payload fields>}`, `type` first.
#[derive(Serialize)]
#[serde(tag = "type")]
enum ClientRef<'a> {
    #[serde(rename = "session.update")]
    SessionUpdate(&'a SessionUpdate),
    #[serde(rename = "input_audio_buffer.append")]
    InputAudioBufferAppend(&'a InputAudioBufferAppend),
    #[serde(rename = "input_audio_buffer.commit")]
    InputAudioBufferCommit(&'a InputAudioBufferCommit),
    #[serde(rename = "input_audio_buffer.clear")]
    InputAudioBufferClear(&'a InputAudioBufferClear),
    #[serde(rename = "output_audio_buffer.clear")]
    OutputAudioBufferClear(&'a OutputAudioBufferClear),
    #[serde(rename = "conversation.item.create")]
    ConversationItemCreate(&'a ConversationItemCreate),
    #[serde(rename = "conversation.item.retrieve")]
    ConversationItemRetrieve(&'a ConversationItemRetrieve),
    #[serde(rename = "conversation.item.truncate")]
    ConversationItemTruncate(&'a ConversationItemTruncate),
    #[serde(rename = "conversation.item.delete")]
    ConversationItemDelete(&'a ConversationItemDelete),
    #[serde(rename = "response.create")]
    ResponseCreate(&'a ResponseCreate),
    #[serde(rename = "response.cancel")]
    ResponseCancel(&'a ResponseCancel),
}

impl ClientEvent {
    /// `session.update` with the given settings.
    pub fn session_update(session: Session) -> Self {
        ClientEvent::SessionUpdate(SessionUpdate {
            event_id: None,
            session,
        })
    }

    /// Legacy `transcription_session.update`; the session's kind is set to transcription.
    pub fn transcription_session_update(mut session: Session) -> Self {
        session.kind = SessionKind::Transcription;
        ClientEvent::TranscriptionSessionUpdate(TranscriptionSessionUpdate {
            event_id: None,
            session,
        })
    }

    /// `input_audio_buffer.append` with base64 audio.
    pub fn input_audio_buffer_append(audio_base64: impl Into<String>) -> Self {
        ClientEvent::InputAudioBufferAppend(InputAudioBufferAppend {
            event_id: None,
            audio: audio_base64.into(),
        })
    }

    /// `input_audio_buffer.append` with PCM16 samples, base64-encoded as little-endian bytes.
    pub fn append_pcm16(samples: &[i16]) -> Self {
        ClientEvent::input_audio_buffer_append(crate::audio::encode_pcm16_base64(samples))
    }

    /// `input_audio_buffer.commit`.
    pub fn input_audio_buffer_commit() -> Self {
        ClientEvent::InputAudioBufferCommit(InputAudioBufferCommit::default())
    }

    /// `input_audio_buffer.clear`.
    pub fn input_audio_buffer_clear() -> Self {
        ClientEvent::InputAudioBufferClear(InputAudioBufferClear::default())
    }

    /// `output_audio_buffer.clear`.
    pub fn output_audio_buffer_clear() -> Self {
        ClientEvent::OutputAudioBufferClear(OutputAudioBufferClear::default())
    }

    /// `conversation.item.create` appending `item` to the conversation.
    pub fn conversation_item_create(item: Item) -> Self {
        ClientEvent::ConversationItemCreate(ConversationItemCreate {
            event_id: None,
            previous_item_id: None,
            item,
        })
    }

    /// `conversation.item.create` inserting `item` after `previous_item_id` (`root` for first).
    pub fn conversation_item_create_after(item: Item, previous_item_id: impl Into<String>) -> Self {
        ClientEvent::ConversationItemCreate(ConversationItemCreate {
            event_id: None,
            previous_item_id: Some(previous_item_id.into()),
            item,
        })
    }

    /// `conversation.item.create` with a user text message (typed input).
    pub fn user_text(text: impl Into<String>) -> Self {
        ClientEvent::conversation_item_create(Item::user_text(text))
    }

    /// `conversation.item.create` with a function call's output.
    pub fn function_call_output(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        ClientEvent::conversation_item_create(Item::function_call_output(call_id, output))
    }

    /// `conversation.item.retrieve`.
    pub fn conversation_item_retrieve(item_id: impl Into<String>) -> Self {
        ClientEvent::ConversationItemRetrieve(ConversationItemRetrieve {
            event_id: None,
            item_id: item_id.into(),
        })
    }

    /// `conversation.item.truncate` of content part `content_index` at `audio_end_ms`.
    pub fn conversation_item_truncate(
        item_id: impl Into<String>,
        content_index: u32,
        audio_end_ms: u64,
    ) -> Self {
        ClientEvent::ConversationItemTruncate(ConversationItemTruncate {
            event_id: None,
            item_id: item_id.into(),
            content_index,
            audio_end_ms,
        })
    }

    /// `conversation.item.delete`.
    pub fn conversation_item_delete(item_id: impl Into<String>) -> Self {
        ClientEvent::ConversationItemDelete(ConversationItemDelete {
            event_id: None,
            item_id: item_id.into(),
        })
    }

    /// `response.create` with the session's settings.
    pub fn response_create() -> Self {
        ClientEvent::ResponseCreate(ResponseCreate::default())
    }

    /// `response.create` with per-response overrides.
    pub fn response_create_with(params: ResponseCreateParams) -> Self {
        ClientEvent::ResponseCreate(ResponseCreate {
            event_id: None,
            response: Some(params),
        })
    }

    /// `response.cancel` of the active response.
    pub fn response_cancel() -> Self {
        ClientEvent::ResponseCancel(ResponseCancel::default())
    }

    /// `response.cancel` of a specific response.
    pub fn response_cancel_id(response_id: impl Into<String>) -> Self {
        ClientEvent::ResponseCancel(ResponseCancel {
            event_id: None,
            response_id: Some(response_id.into()),
        })
    }

    /// Sets the client-chosen `event_id`, which the server echoes in `error.event_id`.
    pub fn with_event_id(mut self, event_id: impl Into<String>) -> Self {
        *self.event_id_mut() = Some(event_id.into());
        self
    }

    /// The client-chosen `event_id`, if set.
    pub fn event_id(&self) -> Option<&str> {
        match self {
            ClientEvent::SessionUpdate(e) => e.event_id.as_deref(),
            ClientEvent::InputAudioBufferAppend(e) => e.event_id.as_deref(),
            ClientEvent::InputAudioBufferCommit(e) => e.event_id.as_deref(),
            ClientEvent::InputAudioBufferClear(e) => e.event_id.as_deref(),
            ClientEvent::OutputAudioBufferClear(e) => e.event_id.as_deref(),
            ClientEvent::ConversationItemCreate(e) => e.event_id.as_deref(),
            ClientEvent::ConversationItemRetrieve(e) => e.event_id.as_deref(),
            ClientEvent::ConversationItemTruncate(e) => e.event_id.as_deref(),
            ClientEvent::ConversationItemDelete(e) => e.event_id.as_deref(),
            ClientEvent::ResponseCreate(e) => e.event_id.as_deref(),
            ClientEvent::ResponseCancel(e) => e.event_id.as_deref(),
            ClientEvent::TranscriptionSessionUpdate(e) => e.event_id.as_deref(),
        }
    }

    fn event_id_mut(&mut self) -> &mut Option<String> {
        match self {
            ClientEvent::SessionUpdate(e) => &mut e.event_id,
            ClientEvent::InputAudioBufferAppend(e) => &mut e.event_id,
            ClientEvent::InputAudioBufferCommit(e) => &mut e.event_id,
            ClientEvent::InputAudioBufferClear(e) => &mut e.event_id,
            ClientEvent::OutputAudioBufferClear(e) => &mut e.event_id,
            ClientEvent::ConversationItemCreate(e) => &mut e.event_id,
            ClientEvent::ConversationItemRetrieve(e) => &mut e.event_id,
            ClientEvent::ConversationItemTruncate(e) => &mut e.event_id,
            ClientEvent::ConversationItemDelete(e) => &mut e.event_id,
            ClientEvent::ResponseCreate(e) => &mut e.event_id,
            ClientEvent::ResponseCancel(e) => &mut e.event_id,
            ClientEvent::TranscriptionSessionUpdate(e) => &mut e.event_id,
        }
    }

    /// The `type` this event has on the wire in `dialect`.
    pub fn event_type(&self, dialect: Dialect) -> &'static str {
        match self {
            ClientEvent::SessionUpdate(e)
                if dialect == Dialect::Beta && e.session.kind == SessionKind::Transcription =>
            {
                "transcription_session.update"
            }
            ClientEvent::SessionUpdate(_) => "session.update",
            ClientEvent::InputAudioBufferAppend(_) => "input_audio_buffer.append",
            ClientEvent::InputAudioBufferCommit(_) => "input_audio_buffer.commit",
            ClientEvent::InputAudioBufferClear(_) => "input_audio_buffer.clear",
            ClientEvent::OutputAudioBufferClear(_) => "output_audio_buffer.clear",
            ClientEvent::ConversationItemCreate(_) => "conversation.item.create",
            ClientEvent::ConversationItemRetrieve(_) => "conversation.item.retrieve",
            ClientEvent::ConversationItemTruncate(_) => "conversation.item.truncate",
            ClientEvent::ConversationItemDelete(_) => "conversation.item.delete",
            ClientEvent::ResponseCreate(_) => "response.create",
            ClientEvent::ResponseCancel(_) => "response.cancel",
            ClientEvent::TranscriptionSessionUpdate(_) => "transcription_session.update",
        }
    }

    /// Encodes the event as a JSON text frame in the exact spec shape of `dialect`.
    ///
    /// See [`ClientEvent::to_value`] for what each dialect drops or refuses.
    pub fn encode(&self, dialect: Dialect) -> Result<String, EncodeError> {
        match self.plain_ref() {
            Some(plain) => Ok(serde_json::to_string(&plain)?),
            None => Ok(serde_json::to_string(&self.to_value(dialect)?)?),
        }
    }

    /// Encodes the event as a JSON value in the exact spec shape of `dialect`.
    ///
    /// Server-assigned session fields (`id`, `object`, `expires_at`) are never sent. Fields a
    /// dialect cannot express are dropped when they only tune behaviour, and refused with
    /// [`EncodeError`] when dropping them would change what the model does:
    /// - GA drops `temperature`, and refuses `item_reference` items and content parts (not in
    ///   the GA schema);
    /// - beta drops `include`, `truncation`, `parallel_tool_calls`, `reasoning`, the transcription
    ///   `languages`/`keywords`/`delay` and the PCM rate, and refuses MCP tools and items, a
    ///   forced tool choice, custom voices, stored prompts and image input;
    /// - both refuse realtime-only fields in a transcription session.
    pub fn to_value(&self, dialect: Dialect) -> Result<Value, EncodeError> {
        if let Some(plain) = self.plain_ref() {
            return Ok(serde_json::to_value(plain)?);
        }
        match dialect {
            Dialect::Ga => self.ga_value(),
            Dialect::Beta => self.beta_value(),
        }
    }

    /// Events whose shape is the same in both dialects and needs no checks.
    fn plain_ref(&self) -> Option<ClientRef<'_>> {
        Some(match self {
            ClientEvent::InputAudioBufferAppend(e) => ClientRef::InputAudioBufferAppend(e),
            ClientEvent::InputAudioBufferCommit(e) => ClientRef::InputAudioBufferCommit(e),
            ClientEvent::InputAudioBufferClear(e) => ClientRef::InputAudioBufferClear(e),
            ClientEvent::OutputAudioBufferClear(e) => ClientRef::OutputAudioBufferClear(e),
            ClientEvent::ConversationItemRetrieve(e) => ClientRef::ConversationItemRetrieve(e),
            ClientEvent::ConversationItemTruncate(e) => ClientRef::ConversationItemTruncate(e),
            ClientEvent::ConversationItemDelete(e) => ClientRef::ConversationItemDelete(e),
            ClientEvent::ResponseCancel(e) => ClientRef::ResponseCancel(e),
            ClientEvent::SessionUpdate(_)
            | ClientEvent::ConversationItemCreate(_)
            | ClientEvent::ResponseCreate(_)
            | ClientEvent::TranscriptionSessionUpdate(_) => return None,
        })
    }

    fn ga_value(&self) -> Result<Value, EncodeError> {
        match self {
            ClientEvent::SessionUpdate(e) => {
                if e.session.kind == SessionKind::Transcription
                    && let Some(field) = e.session.realtime_only_field()
                {
                    return Err(EncodeError::NotInTranscriptionSession { field });
                }
                let request = SessionUpdate {
                    event_id: e.event_id.clone(),
                    session: Session {
                        id: None,
                        object: None,
                        expires_at: None,
                        ..e.session.clone()
                    },
                };
                Ok(serde_json::to_value(ClientRef::SessionUpdate(&request))?)
            }
            ClientEvent::TranscriptionSessionUpdate(e) => Ok(envelope(
                "transcription_session.update",
                e.event_id.as_deref(),
                [(
                    "session",
                    Some(beta::transcription_session(&e.session, false)?),
                )],
            )),
            ClientEvent::ConversationItemCreate(e) => {
                check_ga_item(&e.item, "item")?;
                Ok(serde_json::to_value(ClientRef::ConversationItemCreate(e))?)
            }
            ClientEvent::ResponseCreate(e) => {
                let input = e.response.as_ref().and_then(|r| r.input.as_deref());
                for (index, item) in input.unwrap_or_default().iter().enumerate() {
                    check_ga_item(item, &format!("response.input[{index}]"))?;
                }
                Ok(serde_json::to_value(ClientRef::ResponseCreate(e))?)
            }
            other => Ok(serde_json::to_value(other.plain_ref())?),
        }
    }

    fn beta_value(&self) -> Result<Value, EncodeError> {
        let event_type = self.event_type(Dialect::Beta);
        match self {
            ClientEvent::SessionUpdate(e) if e.session.kind == SessionKind::Realtime => {
                Ok(envelope(
                    event_type,
                    e.event_id.as_deref(),
                    [("session", Some(beta::session(&e.session, false)?))],
                ))
            }
            ClientEvent::SessionUpdate(SessionUpdate { event_id, session })
            | ClientEvent::TranscriptionSessionUpdate(TranscriptionSessionUpdate {
                event_id,
                session,
            }) => Ok(envelope(
                event_type,
                event_id.as_deref(),
                [(
                    "session",
                    Some(beta::transcription_session(session, false)?),
                )],
            )),
            ClientEvent::ConversationItemCreate(e) => Ok(envelope(
                event_type,
                e.event_id.as_deref(),
                [
                    (
                        "previous_item_id",
                        e.previous_item_id.clone().map(Value::String),
                    ),
                    ("item", Some(beta::item(&e.item, "item")?)),
                ],
            )),
            ClientEvent::ResponseCreate(e) => {
                let response = match &e.response {
                    Some(params) => Some(beta::response_create_params(params)?),
                    None => None,
                };
                Ok(envelope(
                    event_type,
                    e.event_id.as_deref(),
                    [("response", response)],
                ))
            }
            other => Ok(serde_json::to_value(other.plain_ref())?),
        }
    }

    /// Decodes a client event of either dialect (GA nested or beta flat session, beta content
    /// types). Unlike server events, an unknown type is an error: clients have a fixed set.
    pub fn decode(text: &str) -> Result<ClientEvent, DecodeError> {
        let event_type = peek::event_type(text)?;
        let event_type = event_type.as_ref();
        let parsed = match event_type {
            "input_audio_buffer.append" => {
                serde_json::from_str(text).map(ClientEvent::InputAudioBufferAppend)
            }
            "session.update" => serde_json::from_str(text).map(ClientEvent::SessionUpdate),
            "transcription_session.update" => {
                serde_json::from_str(text).map(|mut e: TranscriptionSessionUpdate| {
                    e.session.kind = SessionKind::Transcription;
                    ClientEvent::TranscriptionSessionUpdate(e)
                })
            }
            "input_audio_buffer.commit" => {
                serde_json::from_str(text).map(ClientEvent::InputAudioBufferCommit)
            }
            "input_audio_buffer.clear" => {
                serde_json::from_str(text).map(ClientEvent::InputAudioBufferClear)
            }
            "output_audio_buffer.clear" => {
                serde_json::from_str(text).map(ClientEvent::OutputAudioBufferClear)
            }
            "conversation.item.create" => {
                serde_json::from_str(text).map(ClientEvent::ConversationItemCreate)
            }
            "conversation.item.retrieve" => {
                serde_json::from_str(text).map(ClientEvent::ConversationItemRetrieve)
            }
            "conversation.item.truncate" => {
                serde_json::from_str(text).map(ClientEvent::ConversationItemTruncate)
            }
            "conversation.item.delete" => {
                serde_json::from_str(text).map(ClientEvent::ConversationItemDelete)
            }
            "response.create" => serde_json::from_str(text).map(ClientEvent::ResponseCreate),
            "response.cancel" => serde_json::from_str(text).map(ClientEvent::ResponseCancel),
            other => {
                return Err(DecodeError::UnknownClientEvent {
                    event_type: other.to_owned(),
                });
            }
        };
        parsed.map_err(|source| DecodeError::from_payload(event_type, source))
    }
}

/// `{"type": event_type, "event_id"?: ..., <fields>}`, leaving out unset fields.
fn envelope<const N: usize>(
    event_type: &str,
    event_id: Option<&str>,
    fields: [(&str, Option<Value>); N],
) -> Value {
    let mut map = Map::new();
    map.insert("type".to_owned(), Value::String(event_type.to_owned()));
    if let Some(event_id) = event_id {
        map.insert("event_id".to_owned(), Value::String(event_id.to_owned()));
    }
    for (key, value) in fields {
        if let Some(value) = value {
            map.insert(key.to_owned(), value);
        }
    }
    Value::Object(map)
}

/// Refuses what the GA schema has no place for: `item_reference` items and content parts.
fn check_ga_item(item: &Item, path: &str) -> Result<(), EncodeError> {
    let refuse = |what: String| EncodeError::Unsupported {
        dialect: Dialect::Ga,
        what,
        fix: "send the referenced item's content instead, or connect with the beta dialect",
    };
    match item {
        Item::ItemReference(_) => Err(refuse(format!("{path} (an item_reference)"))),
        Item::Message(message) => {
            for (index, part) in message.content.iter().enumerate() {
                if let ContentPart::ItemReference { .. } = part {
                    return Err(refuse(format!(
                        "{path}.content[{index}] (an item_reference part)"
                    )));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{
        AudioFormat, Modality, ToolChoice, ToolDefinition, Transcription, TurnDetection, Voice,
    };
    use serde_json::json;

    #[test]
    fn append_is_the_same_in_both_dialects_and_type_comes_first() {
        let event = ClientEvent::input_audio_buffer_append("AAAA").with_event_id("e1");
        let ga = event.encode(Dialect::Ga).unwrap();
        assert_eq!(
            ga,
            r#"{"type":"input_audio_buffer.append","event_id":"e1","audio":"AAAA"}"#
        );
        assert_eq!(event.encode(Dialect::Beta).unwrap(), ga);
        assert_eq!(ClientEvent::decode(&ga).unwrap(), event);
    }

    #[test]
    fn session_update_has_a_shape_per_dialect() {
        let mut session = Session::realtime();
        session.instructions = Some("Be brief.".into());
        session.output_modalities = Some(vec![Modality::Audio]);
        session.audio_output_mut().voice = Some(Voice::from("marin"));
        session.audio_input_mut().format = Some(AudioFormat::Pcmu);
        session.audio_input_mut().turn_detection = Some(TurnDetection::Disabled);
        session.audio_input_mut().transcription = Some(Transcription::with_model("whisper-1"));
        session.id = Some("sess_1".into());
        let event = ClientEvent::session_update(session);

        let ga = event.to_value(Dialect::Ga).unwrap();
        assert_eq!(
            ga,
            json!({"type": "session.update", "session": {
                "type": "realtime", "instructions": "Be brief.", "output_modalities": ["audio"],
                "audio": {"input": {"format": {"type": "audio/pcmu"}, "turn_detection": null,
                                    "transcription": {"model": "whisper-1"}},
                          "output": {"voice": "marin"}}}})
        );
        let beta = event.to_value(Dialect::Beta).unwrap();
        assert_eq!(
            beta,
            json!({"type": "session.update", "session": {
                "instructions": "Be brief.", "modalities": ["audio"], "voice": "marin",
                "input_audio_format": "g711_ulaw", "turn_detection": null,
                "input_audio_transcription": {"model": "whisper-1"}}})
        );
        // Both shapes decode back to the same request (server fields are never sent).
        let mut expected = event.clone();
        if let ClientEvent::SessionUpdate(e) = &mut expected {
            e.session.id = None;
        }
        assert_eq!(ClientEvent::decode(&ga.to_string()).unwrap(), expected);
        assert_eq!(ClientEvent::decode(&beta.to_string()).unwrap(), expected);
    }

    #[test]
    fn transcription_sessions_map_to_the_beta_event() {
        let mut session = Session::transcription();
        session.audio_input_mut().transcription =
            Some(Transcription::with_model("gpt-4o-transcribe"));
        let event = ClientEvent::session_update(session.clone());
        assert_eq!(
            event.event_type(Dialect::Beta),
            "transcription_session.update"
        );
        let ga = event.to_value(Dialect::Ga).unwrap();
        assert_eq!(ga["session"]["type"], "transcription");
        let beta = event.to_value(Dialect::Beta).unwrap();
        assert_eq!(
            beta["session"],
            json!({"input_audio_transcription": {"model": "gpt-4o-transcribe"}})
        );

        session.instructions = Some("no".into());
        let err = ClientEvent::session_update(session)
            .to_value(Dialect::Ga)
            .unwrap_err();
        assert!(matches!(
            err,
            EncodeError::NotInTranscriptionSession {
                field: "instructions"
            }
        ));
    }

    #[test]
    fn beta_refuses_what_would_change_meaning() {
        let mut session = Session::realtime();
        session.tools = Some(vec![
            ToolDefinition::function("f", "does f", json!({"type": "object"})),
            ToolDefinition::mcp("docs", "https://example.com/mcp"),
        ]);
        let err = ClientEvent::session_update(session)
            .encode(Dialect::Beta)
            .unwrap_err();
        assert!(
            err.to_string().contains("session.tools[1] (an MCP tool)"),
            "{err}"
        );

        let mut session = Session::realtime();
        session.tool_choice = Some(ToolChoice::Function { name: "f".into() });
        assert!(
            ClientEvent::session_update(session)
                .encode(Dialect::Beta)
                .is_err()
        );
    }

    #[test]
    fn assistant_history_uses_beta_content_types() {
        let event = ClientEvent::conversation_item_create(Item::assistant_text("Hello"));
        let beta = event.to_value(Dialect::Beta).unwrap();
        assert_eq!(
            beta["item"]["content"][0],
            json!({"type": "text", "text": "Hello"})
        );
        let ga = event.to_value(Dialect::Ga).unwrap();
        assert_eq!(
            ga["item"]["content"][0],
            json!({"type": "output_text", "text": "Hello"})
        );
    }

    #[test]
    fn decode_rejects_what_is_not_a_client_event() {
        assert!(matches!(
            ClientEvent::decode(r#"{"type":"response.done"}"#),
            Err(DecodeError::UnknownClientEvent { .. })
        ));
        assert!(matches!(
            ClientEvent::decode("{"),
            Err(DecodeError::NotJson { .. })
        ));
        assert!(matches!(
            ClientEvent::decode(r#"{"type":"conversation.item.truncate","item_id":"x"}"#),
            Err(DecodeError::InvalidEvent { .. })
        ));
    }
}
