//! Responses: the `response` object of `response.created`/`response.done`, the parameters of
//! `response.create`, and the content parts streamed by `response.content_part.*`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::item::Item;
use super::lenient::null_as_default;
use super::session::{AudioFormat, MaxTokens, Modality, Prompt, Reasoning, Voice};
use super::string_enum::string_enum;
use super::tools::{ToolChoice, ToolDefinition};
use super::usage::Usage;

string_enum! {
    /// Where a response stands.
    pub enum ResponseStatus {
        /// Finished normally.
        Completed = "completed",
        /// Cancelled by the client or by the user speaking.
        Cancelled = "cancelled",
        /// Failed; see the status details' error.
        Failed = "failed",
        /// Cut short, e.g. by the token limit or the content filter.
        Incomplete = "incomplete",
        /// Still being generated.
        InProgress = "in_progress",
    }
}

string_enum! {
    /// Why a response was cancelled or is incomplete.
    pub enum StatusReason {
        /// The user started speaking (server VAD interrupted the response).
        TurnDetected = "turn_detected",
        /// The client sent `response.cancel`.
        ClientCancelled = "client_cancelled",
        /// The response hit `max_output_tokens`.
        MaxOutputTokens = "max_output_tokens",
        /// The content filter stopped the response.
        ContentFilter = "content_filter",
    }
}

/// Why a response ended the way it did (`null` while in progress or when completed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusDetails {
    /// The final status again.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ResponseStatus>,
    /// The reason for `cancelled` or `incomplete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
    /// The error for `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StatusError>,
}

/// The error behind a failed response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusError {
    /// The error type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// Output audio settings of one response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseAudioOutput {
    /// Format of the audio deltas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<AudioFormat>,
    /// The voice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Voice>,
}

/// Audio settings of one response (`response.audio`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseAudio {
    /// Output audio settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<ResponseAudioOutput>,
}

/// A response, as `response.created` (empty, in progress) and `response.done` (final, with
/// usage) report it. Decodes from GA and beta (`modalities`, `voice`, `output_audio_format`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Response {
    /// Response ID, referenced by the events that stream it.
    pub id: String,
    /// Always `realtime.response` when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Where the response stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ResponseStatus>,
    /// Why it ended that way (`None` while in progress or when completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_details: Option<StatusDetails>,
    /// The items produced: messages and function calls.
    pub output: Vec<Item>,
    /// Token usage (`None` in `response.created`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The conversation the response was added to (`None` for out-of-band responses).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Output modalities (beta `modalities`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_modalities: Option<Vec<Modality>>,
    /// Output token limit of this response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<MaxTokens>,
    /// Metadata the client attached in `response.create`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// Output audio settings (beta `voice` and `output_audio_format`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<ResponseAudio>,
    /// Sampling temperature (beta only).
    #[serde(skip)]
    pub temperature: Option<f64>,
}

impl Response {
    /// The function calls among the output items, in order.
    pub fn function_calls(&self) -> impl Iterator<Item = &super::item::FunctionCallItem> {
        self.output.iter().filter_map(Item::as_function_call)
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseWire {
    #[serde(deserialize_with = "null_as_default")]
    id: String,
    object: Option<String>,
    status: Option<ResponseStatus>,
    status_details: Option<StatusDetails>,
    #[serde(deserialize_with = "null_as_default")]
    output: Vec<Item>,
    usage: Option<Usage>,
    conversation_id: Option<String>,
    output_modalities: Option<Vec<Modality>>,
    max_output_tokens: Option<MaxTokens>,
    metadata: Option<Map<String, Value>>,
    audio: Option<ResponseAudio>,
    // Beta flat fields.
    modalities: Option<Vec<Modality>>,
    voice: Option<Voice>,
    output_audio_format: Option<AudioFormat>,
    temperature: Option<f64>,
}

impl<'de> Deserialize<'de> for Response {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ResponseWire::deserialize(deserializer)?;
        Ok(Response {
            id: wire.id,
            object: wire.object,
            status: wire.status,
            status_details: wire.status_details,
            output: wire.output,
            usage: wire.usage,
            conversation_id: wire.conversation_id,
            output_modalities: wire.output_modalities.or(wire.modalities),
            max_output_tokens: wire.max_output_tokens,
            metadata: wire.metadata,
            audio: merge_audio(wire.audio, wire.voice, wire.output_audio_format),
            temperature: wire.temperature,
        })
    }
}

/// Folds the beta flat `voice`/`output_audio_format` into the GA `audio.output`.
fn merge_audio(
    audio: Option<ResponseAudio>,
    voice: Option<Voice>,
    format: Option<AudioFormat>,
) -> Option<ResponseAudio> {
    if voice.is_none() && format.is_none() {
        return audio;
    }
    let mut audio = audio.unwrap_or_default();
    let output = audio
        .output
        .get_or_insert_with(ResponseAudioOutput::default);
    output.voice = output.voice.take().or(voice);
    output.format = output.format.or(format);
    Some(audio)
}

string_enum! {
    /// Which conversation a response is added to.
    pub enum ConversationTarget {
        /// The default conversation (the default).
        Auto = "auto",
        /// No conversation: an out-of-band response that leaves the history untouched.
        None = "none",
    }
}

/// Parameters of `response.create`; set fields override the session for this response only.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseCreateParams {
    /// `auto` (default) or `none` for an out-of-band response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationTarget>,
    /// Items to use as the whole context instead of the conversation; `Some(vec![])` clears it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<Vec<Item>>,
    /// Instructions for this response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Output modalities for this response (beta `modalities`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_modalities: Option<Vec<Modality>>,
    /// Output audio settings (beta `voice` and `output_audio_format`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<ResponseAudio>,
    /// Tools for this response; `Some(vec![])` disables the session's tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolDefinition>>,
    /// How the model chooses tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tools may be called at once (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Reasoning effort (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Output token limit (beta `max_response_output_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<MaxTokens>,
    /// Up to 16 string pairs echoed back in the response, to tell responses apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
    /// A stored prompt template (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
    /// Sampling temperature (beta only).
    #[serde(skip)]
    pub temperature: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponseCreateParamsWire {
    conversation: Option<ConversationTarget>,
    input: Option<Vec<Item>>,
    instructions: Option<String>,
    output_modalities: Option<Vec<Modality>>,
    audio: Option<ResponseAudio>,
    tools: Option<Vec<ToolDefinition>>,
    tool_choice: Option<ToolChoice>,
    parallel_tool_calls: Option<bool>,
    reasoning: Option<Reasoning>,
    max_output_tokens: Option<MaxTokens>,
    metadata: Option<Map<String, Value>>,
    prompt: Option<Prompt>,
    // Beta flat fields.
    modalities: Option<Vec<Modality>>,
    voice: Option<Voice>,
    output_audio_format: Option<AudioFormat>,
    max_response_output_tokens: Option<MaxTokens>,
    temperature: Option<f64>,
}

impl<'de> Deserialize<'de> for ResponseCreateParams {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = ResponseCreateParamsWire::deserialize(deserializer)?;
        Ok(ResponseCreateParams {
            conversation: wire.conversation,
            input: wire.input,
            instructions: wire.instructions,
            output_modalities: wire.output_modalities.or(wire.modalities),
            audio: merge_audio(wire.audio, wire.voice, wire.output_audio_format),
            tools: wire.tools,
            tool_choice: wire.tool_choice,
            parallel_tool_calls: wire.parallel_tool_calls,
            reasoning: wire.reasoning,
            max_output_tokens: wire.max_output_tokens.or(wire.max_response_output_tokens),
            metadata: wire.metadata,
            prompt: wire.prompt,
            temperature: wire.temperature,
        })
    }
}

/// A content part as `response.content_part.added`/`.done` carry it. Both dialects use the
/// type names `text` and `audio` here, unlike GA items (`output_text`, `output_audio`).
#[derive(Debug, Clone, PartialEq)]
pub enum ResponsePart {
    /// A text part.
    Text {
        /// The text so far (empty in `added`).
        text: String,
    },
    /// An audio part.
    Audio {
        /// Base64 audio, rarely present.
        audio: Option<String>,
        /// The transcript so far (empty in `added`).
        transcript: Option<String>,
    },
    /// A part type this version does not know, kept verbatim.
    Unknown(Value),
}

impl Serialize for ResponsePart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "lowercase")]
        enum Wire<'a> {
            Text {
                text: &'a str,
            },
            Audio {
                #[serde(skip_serializing_if = "Option::is_none")]
                audio: Option<&'a str>,
                #[serde(skip_serializing_if = "Option::is_none")]
                transcript: Option<&'a str>,
            },
        }
        match self {
            ResponsePart::Text { text } => Wire::Text { text }.serialize(serializer),
            ResponsePart::Audio { audio, transcript } => Wire::Audio {
                audio: audio.as_deref(),
                transcript: transcript.as_deref(),
            }
            .serialize(serializer),
            ResponsePart::Unknown(raw) => raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for ResponsePart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Fields {
            #[serde(default)]
            text: Option<String>,
            #[serde(default)]
            audio: Option<String>,
            #[serde(default)]
            transcript: Option<String>,
        }
        let raw = Value::deserialize(deserializer)?;
        let kind = raw.get("type").and_then(Value::as_str);
        let Ok(fields) = Fields::deserialize(&raw) else {
            return Ok(ResponsePart::Unknown(raw));
        };
        Ok(match kind {
            Some("text" | "output_text") => ResponsePart::Text {
                text: fields.text.unwrap_or_default(),
            },
            Some("audio" | "output_audio") => ResponsePart::Audio {
                audio: fields.audio,
                transcript: fields.transcript,
            },
            _ => ResponsePart::Unknown(raw),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn beta_response_folds_into_ga_fields() {
        let response: Response = serde_json::from_value(json!({
            "object": "realtime.response", "id": "resp_1", "status": "in_progress",
            "status_details": null, "output": [], "usage": null,
            "modalities": ["text"], "voice": "alloy", "output_audio_format": "pcm16",
            "temperature": 0.8, "max_output_tokens": "inf",
            "metadata": {"request_id": "a"}
        }))
        .unwrap();
        assert_eq!(response.output_modalities, Some(vec![Modality::Text]));
        let output = response
            .audio
            .as_ref()
            .and_then(|a| a.output.as_ref())
            .unwrap();
        assert_eq!(output.voice, Some(Voice::from("alloy")));
        assert_eq!(output.format, Some(AudioFormat::pcm16()));
        assert_eq!(response.temperature, Some(0.8));
        assert_eq!(response.status, Some(ResponseStatus::InProgress));
    }

    #[test]
    fn cancelled_response_reports_its_reason() {
        let response: Response = serde_json::from_value(json!({
            "id": "resp_2", "status": "cancelled",
            "status_details": {"type": "cancelled", "reason": "turn_detected"},
            "output": null
        }))
        .unwrap();
        let details = response.status_details.unwrap();
        assert_eq!(details.reason, Some(StatusReason::TurnDetected));
        assert!(response.output.is_empty());
    }

    #[test]
    fn response_parts_round_trip() {
        for raw in [
            json!({"type": "text", "text": ""}),
            json!({"type": "audio", "transcript": "Hi"}),
            json!({"type": "image", "url": "x"}),
        ] {
            let part: ResponsePart = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(serde_json::to_value(&part).unwrap(), raw);
        }
    }
}
