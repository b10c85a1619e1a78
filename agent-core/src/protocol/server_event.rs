//! Server events: what the server sends, decoded into one typed enum.
//!
//! [`ServerEvent::decode`] reads GA and beta events alike (beta names such as
//! `response.audio.delta` land on the GA variants), first peeking at `type` and then parsing
//! the frame straight into that event's struct, so audio deltas never go through
//! `serde_json::Value`. Unknown types decode to [`ServerEvent::Unknown`] with the raw JSON.
//! Encoding ([`ServerEvent::encode`]) exists for the scripted test server.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::dialect::{Dialect, beta};
use super::error::{DecodeError, EncodeError};
use super::error_event::ErrorEvent;
use super::item::Item;
use super::lenient::null_as_default;
use super::peek;
use super::response::{Response, ResponsePart};
use super::session::{Session, SessionKind};
use super::usage::TranscriptionUsage;

/// A server event type this version does not know, kept whole.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvent {
    /// The event's `type`.
    pub event_type: String,
    /// The whole event as received.
    pub raw: Value,
}

/// The conversation of `conversation.created`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Conversation ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Always `realtime.conversation` when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
}

/// The error of `conversation.item.input_audio_transcription.failed`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptionError {
    /// The error class.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A machine-readable code, e.g. `audio_unintelligible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The offending parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// The log probability of one transcribed token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogProb {
    /// The token.
    #[serde(default)]
    pub token: String,
    /// Its log probability.
    #[serde(default)]
    pub logprob: f64,
    /// The token's UTF-8 bytes.
    #[serde(default, deserialize_with = "null_as_default")]
    pub bytes: Vec<u8>,
}

/// A language detected in transcribed audio.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptionLanguage {
    /// ISO-639-1 code.
    #[serde(default)]
    pub code: String,
}

/// One rate limit of `rate_limits.updated`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimit {
    /// `requests` or `tokens`.
    #[serde(default)]
    pub name: String,
    /// The maximum allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// What is left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<u64>,
    /// Seconds until the limit resets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_seconds: Option<f64>,
}

/// Defines [`ServerEvent`] from one table: GA type (plus beta aliases) → variant(payload).
macro_rules! server_events {
    ($( $ga:literal $(| $alias:literal)* => $variant:ident($payload:ty), )+) => {
        /// An event from the server: one variant per GA server event (46), the legacy
        /// `transcription_session.updated`, and `Unknown` for anything else.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ServerEvent {
            $(
                #[doc = concat!("`", $ga, "`", $(" (beta `", $alias, "`)",)*)]
                $variant($payload),
            )+
            /// A type this version does not know; the raw JSON is kept.
            Unknown(UnknownEvent),
        }

        impl ServerEvent {
            /// The event's GA `type` (beta events report their GA name), or the raw type of an
            /// unknown event.
            pub fn event_type(&self) -> &str {
                match self {
                    $( ServerEvent::$variant(_) => $ga, )+
                    ServerEvent::Unknown(unknown) => &unknown.event_type,
                }
            }

            /// Parses `text` as the event named `event_type`, or `None` for unknown types.
            fn decode_known(event_type: &str, text: &str) -> Option<Result<Self, serde_json::Error>> {
                Some(match event_type {
                    $( $ga $(| $alias)* => serde_json::from_str(text).map(ServerEvent::$variant), )+
                    _ => return None,
                })
            }

            /// The event's `event_id` (empty when the server sent none, as for DTMF events).
            pub fn event_id(&self) -> &str {
                match self {
                    $( ServerEvent::$variant(payload) => &payload.event_id, )+
                    ServerEvent::Unknown(unknown) => {
                        unknown.raw.get("event_id").and_then(Value::as_str).unwrap_or("")
                    }
                }
            }

            /// The GA-tagged view used for encoding (`None` for unknown events).
            fn ga_ref(&self) -> Option<GaRef<'_>> {
                Some(match self {
                    $( ServerEvent::$variant(payload) => GaRef::$variant(payload), )+
                    ServerEvent::Unknown(_) => return None,
                })
            }
        }

        /// The GA serialization: `{"type": ..., <payload fields>}`, `type` first.
        #[derive(Serialize)]
        #[serde(tag = "type")]
        enum GaRef<'a> {
            $( #[serde(rename = $ga)] $variant(&'a $payload), )+
        }
    };
}

server_events! {
    "response.output_audio.delta" | "response.audio.delta"
        => ResponseOutputAudioDelta(ResponseOutputAudioDelta),
    "response.output_audio_transcript.delta" | "response.audio_transcript.delta"
        => ResponseOutputAudioTranscriptDelta(ResponseOutputAudioTranscriptDelta),
    "response.output_text.delta" | "response.text.delta"
        => ResponseOutputTextDelta(ResponseOutputTextDelta),
    "response.function_call_arguments.delta"
        => ResponseFunctionCallArgumentsDelta(ResponseFunctionCallArgumentsDelta),
    "conversation.item.input_audio_transcription.delta"
        => ConversationItemInputAudioTranscriptionDelta(ConversationItemInputAudioTranscriptionDelta),
    "response.mcp_call_arguments.delta"
        => ResponseMcpCallArgumentsDelta(ResponseMcpCallArgumentsDelta),
    "conversation.created" => ConversationCreated(ConversationCreated),
    "conversation.item.added" => ConversationItemAdded(ConversationItemAdded),
    "conversation.item.created" => ConversationItemCreated(ConversationItemCreated),
    "conversation.item.deleted" => ConversationItemDeleted(ConversationItemDeleted),
    "conversation.item.done" => ConversationItemDone(ConversationItemDone),
    "conversation.item.input_audio_transcription.completed"
        => ConversationItemInputAudioTranscriptionCompleted(ConversationItemInputAudioTranscriptionCompleted),
    "conversation.item.input_audio_transcription.failed"
        => ConversationItemInputAudioTranscriptionFailed(ConversationItemInputAudioTranscriptionFailed),
    "conversation.item.input_audio_transcription.segment"
        => ConversationItemInputAudioTranscriptionSegment(ConversationItemInputAudioTranscriptionSegment),
    "conversation.item.retrieved" => ConversationItemRetrieved(ConversationItemRetrieved),
    "conversation.item.truncated" => ConversationItemTruncated(ConversationItemTruncated),
    "error" => Error(ErrorEvent),
    "input_audio_buffer.cleared" => InputAudioBufferCleared(InputAudioBufferCleared),
    "input_audio_buffer.committed" => InputAudioBufferCommitted(InputAudioBufferCommitted),
    "input_audio_buffer.dtmf_event_received"
        => InputAudioBufferDtmfEventReceived(InputAudioBufferDtmfEventReceived),
    "input_audio_buffer.speech_started"
        => InputAudioBufferSpeechStarted(InputAudioBufferSpeechStarted),
    "input_audio_buffer.speech_stopped"
        => InputAudioBufferSpeechStopped(InputAudioBufferSpeechStopped),
    "input_audio_buffer.timeout_triggered"
        => InputAudioBufferTimeoutTriggered(InputAudioBufferTimeoutTriggered),
    "mcp_list_tools.completed" => McpListToolsCompleted(McpListToolsCompleted),
    "mcp_list_tools.failed" => McpListToolsFailed(McpListToolsFailed),
    "mcp_list_tools.in_progress" => McpListToolsInProgress(McpListToolsInProgress),
    "output_audio_buffer.cleared" => OutputAudioBufferCleared(OutputAudioBufferCleared),
    "output_audio_buffer.started" => OutputAudioBufferStarted(OutputAudioBufferStarted),
    "output_audio_buffer.stopped" => OutputAudioBufferStopped(OutputAudioBufferStopped),
    "rate_limits.updated" => RateLimitsUpdated(RateLimitsUpdated),
    "response.content_part.added" => ResponseContentPartAdded(ResponseContentPartAdded),
    "response.content_part.done" => ResponseContentPartDone(ResponseContentPartDone),
    "response.created" => ResponseCreated(ResponseCreated),
    "response.done" => ResponseDone(ResponseDone),
    "response.function_call_arguments.done"
        => ResponseFunctionCallArgumentsDone(ResponseFunctionCallArgumentsDone),
    "response.mcp_call.completed" => ResponseMcpCallCompleted(ResponseMcpCallCompleted),
    "response.mcp_call.failed" => ResponseMcpCallFailed(ResponseMcpCallFailed),
    "response.mcp_call.in_progress" => ResponseMcpCallInProgress(ResponseMcpCallInProgress),
    "response.mcp_call_arguments.done"
        => ResponseMcpCallArgumentsDone(ResponseMcpCallArgumentsDone),
    "response.output_audio.done" | "response.audio.done"
        => ResponseOutputAudioDone(ResponseOutputAudioDone),
    "response.output_audio_transcript.done" | "response.audio_transcript.done"
        => ResponseOutputAudioTranscriptDone(ResponseOutputAudioTranscriptDone),
    "response.output_item.added" => ResponseOutputItemAdded(ResponseOutputItemAdded),
    "response.output_item.done" => ResponseOutputItemDone(ResponseOutputItemDone),
    "response.output_text.done" | "response.text.done"
        => ResponseOutputTextDone(ResponseOutputTextDone),
    "session.created" => SessionCreated(SessionCreated),
    "session.updated" => SessionUpdated(SessionUpdated),
    "transcription_session.updated" => TranscriptionSessionUpdated(TranscriptionSessionUpdated),
}

/// `response.output_audio.delta` (beta `response.audio.delta`): a chunk of the model's audio; the
/// hot path of a voice session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseOutputAudioDelta {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Position of the part in the item's content.
    pub content_index: u32,
    /// Base64 audio in the session's output format.
    pub delta: String,
}

/// `response.output_audio_transcript.delta` (beta `response.audio_transcript.delta`): the next
/// piece of the transcript of the model's audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseOutputAudioTranscriptDelta {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Position of the part in the item's content.
    pub content_index: u32,
    /// The next piece of the transcript.
    pub delta: String,
}

/// `response.output_text.delta` (beta `response.text.delta`): the next piece of the model's text
/// output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseOutputTextDelta {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Position of the part in the item's content.
    pub content_index: u32,
    /// The next piece of text.
    pub delta: String,
}

/// `response.function_call_arguments.delta`: the next piece of a function call's arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseFunctionCallArgumentsDelta {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Ties the call to its `function_call_output`.
    pub call_id: String,
    /// The next piece of the JSON arguments.
    pub delta: String,
}

/// `conversation.item.input_audio_transcription.delta`: the next piece of the transcript of the
/// user's audio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConversationItemInputAudioTranscriptionDelta {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the audio part in the item's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_index: Option<u32>,
    /// The next piece of the transcript.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<String>,
    /// Log probabilities of the delta's tokens, when requested via `include`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<LogProb>>,
}

/// `response.mcp_call_arguments.delta`: the next piece of an MCP tool call's arguments (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseMcpCallArgumentsDelta {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// The next piece of the JSON arguments.
    pub delta: String,
    /// Random padding that hides the payload size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub obfuscation: Option<String>,
}

/// `conversation.created`: the conversation was created, right after the session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConversationCreated {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The new conversation.
    pub conversation: Conversation,
}

/// `conversation.item.added`: an item was added to the conversation (GA; may still be in progress).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemAdded {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item before this one (`None` at the start of the conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_item_id: Option<String>,
    /// The item.
    pub item: Item,
}

/// `conversation.item.created`: an item was created (beta; GA servers send
/// `conversation.item.added` instead).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemCreated {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item before this one (`None` at the start of the conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_item_id: Option<String>,
    /// The item.
    pub item: Item,
}

/// `conversation.item.deleted`: an item was deleted after `conversation.item.delete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConversationItemDeleted {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item this event is about.
    pub item_id: String,
}

/// `conversation.item.done`: an item is complete (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item before this one (`None` at the start of the conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_item_id: Option<String>,
    /// The complete item.
    pub item: Item,
}

/// `conversation.item.input_audio_transcription.completed`: the transcript of the user's audio is
/// complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConversationItemInputAudioTranscriptionCompleted {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the audio part in the item's content.
    pub content_index: u32,
    /// The full transcript.
    pub transcript: String,
    /// What the transcription cost (GA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TranscriptionUsage>,
    /// Languages detected in the audio (GA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<TranscriptionLanguage>>,
    /// Log probabilities of the transcript's tokens, when requested via `include`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<LogProb>>,
}

/// `conversation.item.input_audio_transcription.failed`: transcribing the user's audio failed; the
/// conversation goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConversationItemInputAudioTranscriptionFailed {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the audio part in the item's content.
    pub content_index: u32,
    /// What went wrong.
    pub error: TranscriptionError,
}

/// `conversation.item.input_audio_transcription.segment`: a segment of a diarized transcript: who
/// said what, when (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConversationItemInputAudioTranscriptionSegment {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the audio part in the item's content.
    pub content_index: u32,
    /// The segment's text.
    pub text: String,
    /// Segment ID.
    pub id: String,
    /// Who spoke.
    pub speaker: String,
    /// Start of the segment, in seconds.
    pub start: f64,
    /// End of the segment, in seconds.
    pub end: f64,
}

/// `conversation.item.retrieved`: the answer to `conversation.item.retrieve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationItemRetrieved {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item, with its audio.
    pub item: Item,
}

/// `conversation.item.truncated`: an assistant audio item was truncated after
/// `conversation.item.truncate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConversationItemTruncated {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the part in the item's content.
    pub content_index: u32,
    /// Audio kept, in ms.
    pub audio_end_ms: u64,
}

/// `input_audio_buffer.cleared`: the input audio buffer was cleared after
/// `input_audio_buffer.clear`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InputAudioBufferCleared {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
}

/// `input_audio_buffer.committed`: the input audio buffer became a user item (by VAD or
/// `input_audio_buffer.commit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InputAudioBufferCommitted {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The item before this one (`None` at the start of the conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_item_id: Option<String>,
    /// The user item that will be created.
    pub item_id: String,
}

/// `input_audio_buffer.dtmf_event_received`: a phone keypad press on a SIP call (GA; live servers
/// send no `event_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InputAudioBufferDtmfEventReceived {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The key pressed (`0`-`9`, `*`, `#`, `A`-`D`).
    pub event: String,
    /// Unix time of the key press.
    pub received_at: i64,
}

/// `input_audio_buffer.speech_started`: vAD heard the user start speaking; stop playback, the user
/// is interrupting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InputAudioBufferSpeechStarted {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// Where speech started in the session's input audio, in ms.
    pub audio_start_ms: u64,
    /// The user item that will be created.
    pub item_id: String,
}

/// `input_audio_buffer.speech_stopped`: vAD heard the user stop speaking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InputAudioBufferSpeechStopped {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// Where speech ended in the session's input audio, in ms.
    pub audio_end_ms: u64,
    /// The user item that will be created.
    pub item_id: String,
}

/// `input_audio_buffer.timeout_triggered`: the user stayed silent for the VAD's `idle_timeout_ms`
/// (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct InputAudioBufferTimeoutTriggered {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// Start of the idle audio, in ms.
    pub audio_start_ms: u64,
    /// End of the idle audio, in ms.
    pub audio_end_ms: u64,
    /// The user item created for the idle audio.
    pub item_id: String,
}

/// `mcp_list_tools.completed`: an MCP server's tool list arrived (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct McpListToolsCompleted {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The `mcp_list_tools` item.
    pub item_id: String,
}

/// `mcp_list_tools.failed`: an MCP server's tool list could not be fetched (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct McpListToolsFailed {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The `mcp_list_tools` item.
    pub item_id: String,
}

/// `mcp_list_tools.in_progress`: an MCP server's tool list is being fetched (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct McpListToolsInProgress {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The `mcp_list_tools` item.
    pub item_id: String,
}

/// `output_audio_buffer.cleared`: the server stopped playing audio (WebRTC/SIP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct OutputAudioBufferCleared {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
}

/// `output_audio_buffer.started`: the server started playing a response's audio (WebRTC/SIP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct OutputAudioBufferStarted {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
}

/// `output_audio_buffer.stopped`: the server finished playing a response's audio (WebRTC/SIP).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct OutputAudioBufferStopped {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
}

/// `rate_limits.updated`: the account's rate limits, sent at the start of each response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RateLimitsUpdated {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The limits, one per kind.
    #[serde(default, deserialize_with = "null_as_default")]
    pub rate_limits: Vec<RateLimit>,
}

/// `response.content_part.added`: a new content part of an assistant item started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseContentPartAdded {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Position of the part in the item's content.
    pub content_index: u32,
    /// The part, empty so far.
    pub part: ResponsePart,
}

/// `response.content_part.done`: a content part of an assistant item is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseContentPartDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Position of the part in the item's content.
    pub content_index: u32,
    /// The complete part.
    pub part: ResponsePart,
}

/// `response.created`: a response started; it is active until `response.done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseCreated {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response, in progress and without output.
    pub response: Response,
}

/// `response.done`: a response ended (completed, cancelled, failed or incomplete), with its usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The final response with all output items.
    pub response: Response,
    /// What was wrong with the event when it was only partly readable (a `usage` with
    /// fractional or negative counts, an `output` that is not a list, an item that does not
    /// decode): those parts are left out, and these notes say what was dropped. The id and
    /// status are always read, so a malformed `response.done` still ends its response.
    #[serde(skip)]
    pub malformed: Vec<String>,
}

/// `response.function_call_arguments.done`: a function call's arguments are complete; the call can
/// run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseFunctionCallArgumentsDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Ties the call to its `function_call_output`.
    pub call_id: String,
    /// The function's name (GA only; beta servers leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The arguments, a JSON object encoded as a string.
    pub arguments: String,
}

/// `response.mcp_call.completed`: an MCP tool call succeeded (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseMcpCallCompleted {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// The item this event is about.
    pub item_id: String,
}

/// `response.mcp_call.failed`: an MCP tool call failed (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseMcpCallFailed {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// The item this event is about.
    pub item_id: String,
}

/// `response.mcp_call.in_progress`: an MCP tool call is running (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseMcpCallInProgress {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// The item this event is about.
    pub item_id: String,
}

/// `response.mcp_call_arguments.done`: an MCP tool call's arguments are complete (GA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseMcpCallArgumentsDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// The arguments, a JSON object encoded as a string.
    pub arguments: String,
}

/// `response.output_audio.done` (beta `response.audio.done`): the model's audio for a part is
/// complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseOutputAudioDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Position of the part in the item's content.
    pub content_index: u32,
}

/// `response.output_audio_transcript.done` (beta `response.audio_transcript.done`): the transcript
/// of the model's audio is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseOutputAudioTranscriptDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Position of the part in the item's content.
    pub content_index: u32,
    /// The full transcript.
    pub transcript: String,
}

/// `response.output_item.added`: a response started a new item (a message or a function call).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseOutputItemAdded {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// The item, in progress.
    pub item: Item,
}

/// `response.output_item.done`: an item of a response is complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseOutputItemDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// The complete item.
    pub item: Item,
}

/// `response.output_text.done` (beta `response.text.done`): the model's text for a part is
/// complete.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ResponseOutputTextDone {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The response this event belongs to.
    pub response_id: String,
    /// The item this event is about.
    pub item_id: String,
    /// Position of the item in the response's output.
    pub output_index: u32,
    /// Position of the part in the item's content.
    pub content_index: u32,
    /// The full text.
    pub text: String,
}

/// `session.created`: the first event of every connection: the session and its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SessionCreated {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The session as the server configured it.
    pub session: Session,
}

/// `session.updated`: the answer to `session.update`: the whole session after the change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SessionUpdated {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The session after the update.
    pub session: Session,
}

/// `transcription_session.updated`: the answer to the legacy `transcription_session.update` (beta;
/// GA legacy schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TranscriptionSessionUpdated {
    /// Unique ID of this server event.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub event_id: String,
    /// The transcription session after the update.
    pub session: Session,
}

impl ServerEvent {
    /// Decodes one text frame from the server, in either dialect.
    ///
    /// Unknown types, unknown fields and `null` in optional fields never fail. Errors mean the
    /// frame is not a JSON object with a string `type`, or a known event lacks a required
    /// field; the connection can go on after either.
    pub fn decode(text: &str) -> Result<ServerEvent, DecodeError> {
        let event_type = peek::event_type(text)?;
        match ServerEvent::decode_known(&event_type, text) {
            Some(Err(source)) if event_type == "response.done" => {
                super::lenient::response_done(text)
                    .ok_or_else(|| DecodeError::from_payload(&event_type, source))
                    .map(ServerEvent::ResponseDone)
            }
            Some(Ok(ServerEvent::TranscriptionSessionUpdated(mut event))) => {
                // The legacy event's session has no `type`; it is a transcription session.
                event.session.kind = SessionKind::Transcription;
                Ok(ServerEvent::TranscriptionSessionUpdated(event))
            }
            Some(parsed) => parsed.map_err(|source| DecodeError::from_payload(&event_type, source)),
            None => {
                let raw: Value =
                    serde_json::from_str(text).map_err(|source| DecodeError::NotJson { source })?;
                // With duplicate keys the parsed object keeps the last `type`; routing read the
                // first. Passing such a frame on as this type would let it act as the other.
                let kept = raw.get("type");
                if kept.and_then(Value::as_str) != Some(&*event_type) {
                    return Err(DecodeError::DuplicateType {
                        first: event_type.into_owned(),
                        last: kept
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                            .unwrap_or_default(),
                    });
                }
                Ok(ServerEvent::Unknown(UnknownEvent {
                    event_type: event_type.into_owned(),
                    raw,
                }))
            }
        }
    }

    /// Whether this is an [`Unknown`](ServerEvent::Unknown) event.
    pub fn is_unknown(&self) -> bool {
        matches!(self, ServerEvent::Unknown(_))
    }

    /// Encodes the event as a JSON text frame in `dialect`'s shape, as a server would send it
    /// (for the scripted test server). GA-only events cannot be sent in beta
    /// ([`EncodeError::NotInDialect`]); `conversation.item.added` becomes beta
    /// `conversation.item.created`.
    pub fn encode(&self, dialect: Dialect) -> Result<String, EncodeError> {
        if dialect == Dialect::Ga
            && !matches!(self, ServerEvent::TranscriptionSessionUpdated(_))
            && let Some(tagged) = self.ga_ref()
        {
            return Ok(serde_json::to_string(&tagged)?);
        }
        Ok(serde_json::to_string(&self.to_value(dialect)?)?)
    }

    /// Encodes the event as a JSON value in `dialect`'s shape; see [`ServerEvent::encode`].
    pub fn to_value(&self, dialect: Dialect) -> Result<Value, EncodeError> {
        if let ServerEvent::Unknown(unknown) = self {
            return Ok(unknown.raw.clone());
        }
        let ga_type = self.event_type();
        let mut value = serde_json::to_value(self.ga_ref())?;
        if let ServerEvent::TranscriptionSessionUpdated(event) = self {
            value["session"] = beta::transcription_session(&event.session, true)?;
        }
        if dialect == Dialect::Ga {
            return Ok(value);
        }
        let Some(beta_type) = beta::ga_server_type_to_beta(ga_type) else {
            return Err(EncodeError::NotInDialect {
                event_type: ga_type.to_owned(),
                dialect,
            });
        };
        value["type"] = Value::String(beta_type.to_owned());
        match self {
            ServerEvent::SessionCreated(SessionCreated { session, .. })
            | ServerEvent::SessionUpdated(SessionUpdated { session, .. }) => {
                value["session"] = match session.kind {
                    SessionKind::Realtime => beta::session(session, true)?,
                    SessionKind::Transcription => {
                        if matches!(self, ServerEvent::SessionUpdated(_)) {
                            value["type"] = Value::String("transcription_session.updated".into());
                        }
                        beta::transcription_session(session, true)?
                    }
                };
            }
            ServerEvent::ConversationItemAdded(ConversationItemAdded { item, .. })
            | ServerEvent::ConversationItemCreated(ConversationItemCreated { item, .. }) => {
                value["item"] = beta::item(item, "item")?;
                require_previous_item_id(&mut value);
            }
            ServerEvent::InputAudioBufferCommitted(_) => require_previous_item_id(&mut value),
            ServerEvent::ConversationItemRetrieved(ConversationItemRetrieved { item, .. })
            | ServerEvent::ResponseOutputItemAdded(ResponseOutputItemAdded { item, .. })
            | ServerEvent::ResponseOutputItemDone(ResponseOutputItemDone { item, .. }) => {
                value["item"] = beta::item(item, "item")?;
            }
            ServerEvent::ResponseCreated(ResponseCreated { response, .. })
            | ServerEvent::ResponseDone(ResponseDone { response, .. }) => {
                value["response"] = beta::response(response)?;
            }
            _ => {}
        }
        Ok(value)
    }
}

/// Beta requires `previous_item_id`; live beta servers send `null` at the start.
fn require_previous_item_id(value: &mut Value) {
    if let Some(map) = value.as_object_mut() {
        map.entry("previous_item_id").or_insert(Value::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ContentPart, Dialect, ResponseStatus};
    use serde_json::json;

    fn decode(value: Value) -> ServerEvent {
        ServerEvent::decode(&value.to_string()).unwrap()
    }

    #[test]
    fn not_json_is_an_error_not_a_panic() {
        for text in [
            "",
            "not json",
            "{",
            "[1]",
            "null",
            "{\"type\":",
            "\u{0}",
            "{\"type\":\"x\"} junk",
        ] {
            assert!(ServerEvent::decode(text).is_err(), "{text:?}");
        }
        assert!(matches!(
            ServerEvent::decode("{}"),
            Err(DecodeError::MissingType)
        ));
        let err = ServerEvent::decode(r#"{"type":"response.done","response":"#).unwrap_err();
        assert!(matches!(err, DecodeError::NotJson { .. }), "{err:?}");
    }

    #[test]
    fn unknown_types_keep_the_raw_event() {
        let raw = json!({"type": "response.reasoning.delta", "event_id": "e9", "delta": "hm"});
        let event = decode(raw.clone());
        assert!(event.is_unknown());
        assert_eq!(event.event_type(), "response.reasoning.delta");
        assert_eq!(event.event_id(), "e9");
        let ServerEvent::Unknown(unknown) = &event else {
            unreachable!()
        };
        assert_eq!(unknown.raw, raw);
        assert_eq!(event.to_value(Dialect::Ga).unwrap(), raw);
    }

    /// Found by fuzzing (fuzz/artifacts/server_event/): an unknown first `type` and a known
    /// second one made an `Unknown` event whose raw JSON was the known event, missing its fields.
    #[test]
    fn two_disagreeing_types_are_refused() {
        let text = r#"{"type": "x.unknown", "type": "response.mcp_call_arguments.delta", "response_id": "r"}"#;
        let err = ServerEvent::decode(text).unwrap_err();
        assert!(
            matches!(&err, DecodeError::DuplicateType { first, last } if first == "x.unknown" && last == "response.mcp_call_arguments.delta"),
            "{err:?}"
        );
        // Found by fuzzing too: a second `type` that is not a string.
        let err = ServerEvent::decode(r#"{"type": "", "type": 5}"#).unwrap_err();
        assert!(matches!(err, DecodeError::DuplicateType { .. }), "{err:?}");
        let same = r#"{"type": "x.unknown", "type": "x.unknown"}"#;
        assert!(ServerEvent::decode(same).unwrap().is_unknown());
    }

    #[test]
    fn unknown_fields_are_ignored_and_nulls_accepted() {
        let event = decode(json!({
            "type": "response.output_audio_transcript.delta", "event_id": "e1",
            "response_id": "r1", "item_id": "i1", "output_index": 0, "content_index": 0,
            "delta": "Hi", "obfuscation": "xyz", "brand_new": {"nested": [1, 2]}
        }));
        assert!(
            matches!(event, ServerEvent::ResponseOutputAudioTranscriptDelta(ref d) if d.delta == "Hi")
        );

        let event = decode(json!({
            "type": "input_audio_buffer.committed", "event_id": null,
            "previous_item_id": null, "item_id": "i2"
        }));
        let ServerEvent::InputAudioBufferCommitted(committed) = event else {
            unreachable!()
        };
        assert_eq!(committed.previous_item_id, None);
        assert_eq!(committed.event_id, "");

        let event =
            decode(json!({"type": "rate_limits.updated", "event_id": "e", "rate_limits": null}));
        assert!(matches!(event, ServerEvent::RateLimitsUpdated(ref r) if r.rate_limits.is_empty()));
    }

    #[test]
    fn beta_events_map_to_ga_variants() {
        let common = json!({"event_id": "e", "response_id": "r", "item_id": "i",
                            "output_index": 0, "content_index": 0});
        let with = |ty: &str, key: &str, value: &str| {
            let mut v = common.clone();
            v["type"] = json!(ty);
            if !key.is_empty() {
                v[key] = json!(value);
            }
            decode(v)
        };
        assert!(matches!(
            with("response.audio.delta", "delta", "AA=="),
            ServerEvent::ResponseOutputAudioDelta(_)
        ));
        assert!(matches!(
            with("response.audio.done", "", ""),
            ServerEvent::ResponseOutputAudioDone(_)
        ));
        assert!(matches!(
            with("response.text.delta", "delta", "x"),
            ServerEvent::ResponseOutputTextDelta(_)
        ));
        assert!(matches!(
            with("response.text.done", "text", "x"),
            ServerEvent::ResponseOutputTextDone(_)
        ));
        assert!(matches!(
            with("response.audio_transcript.delta", "delta", "x"),
            ServerEvent::ResponseOutputAudioTranscriptDelta(_)
        ));
        assert!(matches!(
            with("response.audio_transcript.done", "transcript", "x"),
            ServerEvent::ResponseOutputAudioTranscriptDone(_)
        ));
        let event = with("response.text.delta", "delta", "x");
        assert_eq!(event.event_type(), "response.output_text.delta");

        let done = decode(
            json!({"type": "response.function_call_arguments.done", "event_id": "e",
            "response_id": "r", "item_id": "i", "output_index": 0, "call_id": "c",
            "arguments": "{}"}),
        );
        let ServerEvent::ResponseFunctionCallArgumentsDone(done) = done else {
            unreachable!()
        };
        assert_eq!(done.name, None);
    }

    #[test]
    fn dtmf_without_event_id_decodes() {
        let event = decode(
            json!({"type": "input_audio_buffer.dtmf_event_received", "event": "9",
                                  "received_at": 1763605109}),
        );
        assert!(
            matches!(event, ServerEvent::InputAudioBufferDtmfEventReceived(ref d) if d.event == "9")
        );
        assert_eq!(
            event.to_value(Dialect::Ga).unwrap(),
            json!({"type": "input_audio_buffer.dtmf_event_received", "event": "9", "received_at": 1763605109})
        );
        assert!(matches!(
            event.to_value(Dialect::Beta),
            Err(EncodeError::NotInDialect { .. })
        ));
    }

    #[test]
    fn missing_required_fields_are_invalid_events() {
        let err = ServerEvent::decode(r#"{"type":"response.output_audio.delta","event_id":"e"}"#)
            .unwrap_err();
        assert!(
            matches!(err, DecodeError::InvalidEvent { ref event_type, .. } if event_type == "response.output_audio.delta")
        );
        assert!(err.to_string().contains("response.output_audio.delta"));
    }

    #[test]
    fn encodes_in_both_dialects() {
        let event = ServerEvent::ResponseOutputAudioDelta(ResponseOutputAudioDelta {
            event_id: "e1".into(),
            response_id: "r1".into(),
            item_id: "i1".into(),
            output_index: 0,
            content_index: 0,
            delta: "AAAA".into(),
        });
        let ga = event.encode(Dialect::Ga).unwrap();
        assert!(
            ga.starts_with(r#"{"type":"response.output_audio.delta","#),
            "{ga}"
        );
        let beta = event.to_value(Dialect::Beta).unwrap();
        assert_eq!(beta["type"], "response.audio.delta");
        assert_eq!(ServerEvent::decode(&ga).unwrap(), event);
        assert_eq!(ServerEvent::decode(&beta.to_string()).unwrap(), event);

        let done = decode(json!({"type": "response.output_item.done", "event_id": "e",
            "response_id": "r", "output_index": 0,
            "item": {"type": "message", "role": "assistant", "status": "completed",
                     "content": [{"type": "output_audio", "transcript": "Hi"}]}}));
        let beta = done.to_value(Dialect::Beta).unwrap();
        assert_eq!(
            beta["item"]["content"][0],
            json!({"type": "audio", "transcript": "Hi"})
        );
        assert_eq!(ServerEvent::decode(&beta.to_string()).unwrap(), done);

        let added = decode(json!({"type": "conversation.item.added", "event_id": "e",
            "item": {"type": "message", "role": "user", "content": []}}));
        assert_eq!(
            added.to_value(Dialect::Beta).unwrap()["type"],
            "conversation.item.created"
        );
    }

    #[test]
    fn response_done_exposes_function_calls_and_usage() {
        let event = decode(
            json!({"type": "response.done", "event_id": "e", "response": {
            "id": "r", "status": "completed", "status_details": null,
            "output": [
                {"type": "message", "role": "assistant", "content": [{"type": "output_audio", "transcript": "One sec"}]},
                {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"}
            ],
            "usage": {"total_tokens": 10, "input_tokens": 6, "output_tokens": 4}}}),
        );
        let ServerEvent::ResponseDone(done) = event else {
            unreachable!()
        };
        assert_eq!(done.response.status, Some(ResponseStatus::Completed));
        let calls: Vec<_> = done
            .response
            .function_calls()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(calls, ["lookup"]);
        assert_eq!(done.response.usage.unwrap().total_tokens, 10);
        let Item::Message(message) = &done.response.output[0] else {
            unreachable!()
        };
        assert!(matches!(
            message.content[0],
            ContentPart::OutputAudio { .. }
        ));
    }
}
