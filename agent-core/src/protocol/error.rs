//! Errors of decoding and encoding events: one enum per direction, each message saying what
//! went wrong and what to do about it.

use super::dialect::Dialect;

/// A frame that could not be decoded into an event.
///
/// Unknown event types, unknown fields and `null` in optional fields are *not* errors; they
/// decode to `Unknown` variants or defaults. These errors mean the frame itself is broken or
/// a known event lacks something the protocol requires.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The frame is not JSON.
    #[error(
        "the frame is not valid JSON ({source}); Realtime events are JSON text frames, so the \
         peer is not a Realtime server or the frame was cut short"
    )]
    NotJson {
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The frame is JSON, but not an object.
    #[error("the frame is JSON but not an object; Realtime events are objects with a `type` field")]
    NotAnObject,
    /// The object has no string `type`.
    #[error(
        "the event has no string `type` field; every Realtime event names its type, so the peer \
         does not speak the Realtime protocol"
    )]
    MissingType,
    /// The object has more than one `type` key, and they disagree.
    #[error(
        "the event has more than one `type` field (`{first}` and `{last}`); a frame that names \
         two types could be read as either, so it is refused"
    )]
    DuplicateType {
        /// The `type` read first.
        first: String,
        /// The `type` a JSON object keeps (the last one).
        last: String,
    },
    /// A known event type whose fields do not match the protocol.
    #[error(
        "the `{event_type}` event does not match the protocol ({source}); check that the \
         connection's dialect (ga/beta) matches the server, or update agent-core if the server \
         speaks a newer protocol"
    )]
    InvalidEvent {
        /// The event's `type`.
        event_type: String,
        /// What did not match.
        #[source]
        source: serde_json::Error,
    },
    /// A type that is not a client event, given to [`ClientEvent::decode`](super::ClientEvent::decode).
    #[error(
        "`{event_type}` is not a client event type of either dialect; client events are \
         session.update, input_audio_buffer.*, conversation.item.*, response.create/cancel, \
         output_audio_buffer.clear and transcription_session.update"
    )]
    UnknownClientEvent {
        /// The event's `type`.
        event_type: String,
    },
}

impl DecodeError {
    /// Sorts a serde_json error from parsing a known event into "not JSON" or "invalid event".
    pub(crate) fn from_payload(event_type: &str, source: serde_json::Error) -> Self {
        if source.is_syntax() || source.is_eof() {
            DecodeError::NotJson { source }
        } else {
            DecodeError::InvalidEvent {
                event_type: event_type.to_owned(),
                source,
            }
        }
    }
}

/// An event that cannot be encoded as asked.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The event uses something the target dialect cannot express, and dropping it would change
    /// what the model does.
    #[error("{what} cannot be expressed in the {dialect} dialect; {fix}")]
    Unsupported {
        /// The dialect being written.
        dialect: Dialect,
        /// What could not be expressed, with its path (e.g. `session.tools[1] (an MCP tool)`).
        what: String,
        /// How to fix it.
        fix: &'static str,
    },
    /// A transcription session was given a field only realtime sessions have.
    #[error(
        "`session.{field}` does not exist in a transcription session; remove it, or use \
         `SessionKind::Realtime`"
    )]
    NotInTranscriptionSession {
        /// The offending field.
        field: &'static str,
    },
    /// A server event type that does not exist in the target dialect.
    #[error(
        "the `{event_type}` server event does not exist in the {dialect} dialect; skip it when \
         speaking {dialect}"
    )]
    NotInDialect {
        /// The event's GA type.
        event_type: String,
        /// The dialect being written.
        dialect: Dialect,
    },
    /// serde_json failed (this indicates a bug, e.g. a map with non-string keys).
    #[error("the event could not be serialized to JSON: {0}")]
    Json(#[from] serde_json::Error),
}
