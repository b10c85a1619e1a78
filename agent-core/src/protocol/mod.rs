//! The OpenAI Realtime wire protocol, typed: every GA client and server event, the beta dialect,
//! and the shared models (session, items, responses, usage, errors).
//!
//! # Decoding
//! [`ServerEvent::decode`] turns one text frame into a [`ServerEvent`]. It accepts both dialects
//! (beta `response.audio.delta` becomes [`ServerEvent::ResponseOutputAudioDelta`]) and never
//! fails on what servers really send: unknown event types become [`ServerEvent::Unknown`] with
//! the raw JSON, unknown fields are ignored and `null` counts as "absent" in optional fields. A
//! frame that is not a JSON object with a string `type` is a [`DecodeError`], never a panic.
//! Decoding peeks at `type` and parses the frame straight into that event's struct, without an
//! intermediate `serde_json::Value`, because audio deltas make up most of the traffic.
//!
//! # Encoding
//! [`ClientEvent::encode`] writes the exact spec shape of the connection's [`Dialect`]: GA
//! nests session audio settings under `audio.input`/`audio.output`, beta keeps them flat.
//! Unset options are left out, never sent as `null`; the one deliberate `null` is
//! [`TurnDetection::Disabled`]. What a dialect cannot express is dropped when harmless and an
//! [`EncodeError`] when it would change what the model does (see [`ClientEvent::to_value`]).
//!
//! ```
//! use agent_core::protocol::{ClientEvent, Dialect, Item, ServerEvent};
//!
//! let frame = r#"{"type":"response.audio.delta","event_id":"e1","response_id":"r1",
//!     "item_id":"i1","output_index":0,"content_index":0,"delta":"AAA="}"#;
//! let ServerEvent::ResponseOutputAudioDelta(delta) = ServerEvent::decode(frame)? else {
//!     unreachable!()
//! };
//! assert_eq!(delta.delta, "AAA=");
//!
//! let reply = ClientEvent::conversation_item_create(Item::function_call_output("call_1", r#"{"ok":true}"#));
//! let text = reply.encode(Dialect::Ga)?;
//! assert!(text.starts_with(r#"{"type":"conversation.item.create""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client_event;
mod dialect;
mod error;
mod error_event;
mod item;
mod lenient;
mod peek;
mod response;
mod server_event;
mod session;
mod string_enum;
mod tools;
mod usage;

pub use client_event::{
    ClientEvent, ConversationItemCreate, ConversationItemDelete, ConversationItemRetrieve,
    ConversationItemTruncate, InputAudioBufferAppend, InputAudioBufferClear,
    InputAudioBufferCommit, OutputAudioBufferClear, ResponseCancel, ResponseCreate, SessionUpdate,
    TranscriptionSessionUpdate,
};
pub use dialect::{Dialect, UnknownDialect};
pub use error::{DecodeError, EncodeError};
pub use error_event::{ErrorDetail, ErrorEvent, error_codes};
pub use item::{
    ContentPart, FunctionCallItem, FunctionCallOutputItem, Item, ItemReference, ItemStatus,
    McpApprovalRequestItem, McpApprovalResponseItem, McpCallError, McpCallItem, McpListToolsItem,
    McpListedTool, MessageItem, Role,
};
pub use response::{
    ConversationTarget, Response, ResponseAudio, ResponseAudioOutput, ResponseCreateParams,
    ResponsePart, ResponseStatus, StatusDetails, StatusError, StatusReason,
};
pub use server_event::*;
pub use session::{
    AudioConfig, AudioFormat, AudioInput, AudioOutput, Eagerness, MaxTokens, Modality,
    NoiseReduction, NoiseReductionType, PCM16_SAMPLE_RATE, Prompt, Reasoning, ReasoningEffort,
    RetentionRatio, SemanticVad, ServerVad, Session, SessionKind, TokenLimits, Tracing,
    TracingConfig, Transcription, Truncation, TurnDetection, Voice,
};
pub use tools::{
    FunctionTool, McpAllowedTools, McpApproval, McpApprovalMode, McpTool, McpToolFilter,
    ToolChoice, ToolDefinition,
};
pub use usage::{
    CachedTokenDetails, InputTokenDetails, OutputTokenDetails, TranscriptionInputTokenDetails,
    TranscriptionUsage, Usage,
};
