//! The beta wire shapes (`OpenAI-Beta: realtime=v1`), written from the GA models.
//!
//! What the beta dialect cannot express is handled in one of two ways:
//! - **dropped**, when it only tunes behaviour: `include`, `truncation`, `parallel_tool_calls`,
//!   `reasoning`, transcription `languages`/`keywords`/`delay`, the PCM sample rate;
//! - **an [`EncodeError::Unsupported`]**, when dropping it would change what the model does or
//!   says: MCP tools, a forced `tool_choice` (function or MCP), a custom voice, a stored
//!   `prompt`, image input, MCP items.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::protocol::error::EncodeError;
use crate::protocol::item::{ContentPart, ContentPartWire, Item};
use crate::protocol::response::{Response, ResponseAudio, ResponseCreateParams};
use crate::protocol::session::{Session, Voice};
use crate::protocol::tools::{ToolChoice, ToolDefinition};

use super::Dialect;

/// GA server types the beta dialect names differently: `(ga, beta)`.
const RENAMED_SERVER_TYPES: &[(&str, &str)] = &[
    ("response.output_text.delta", "response.text.delta"),
    ("response.output_text.done", "response.text.done"),
    ("response.output_audio.delta", "response.audio.delta"),
    ("response.output_audio.done", "response.audio.done"),
    (
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
    ),
    (
        "response.output_audio_transcript.done",
        "response.audio_transcript.done",
    ),
    ("conversation.item.added", "conversation.item.created"),
];

/// GA server types with no beta counterpart.
pub(crate) const GA_ONLY_SERVER_TYPES: &[&str] = &[
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.input_audio_transcription.segment",
    "input_audio_buffer.dtmf_event_received",
    "input_audio_buffer.timeout_triggered",
    "mcp_list_tools.completed",
    "mcp_list_tools.failed",
    "mcp_list_tools.in_progress",
    "response.mcp_call_arguments.delta",
    "response.mcp_call_arguments.done",
    "response.mcp_call.completed",
    "response.mcp_call.failed",
    "response.mcp_call.in_progress",
];

/// The GA name of a beta-only server event type (`response.audio.delta` →
/// `response.output_audio.delta`).
pub(crate) fn server_type_to_ga(beta: &str) -> Option<&'static str> {
    RENAMED_SERVER_TYPES
        .iter()
        .find(|(ga, renamed)| *renamed == beta && !GA_ONLY_SERVER_TYPES.contains(ga))
        .map(|(ga, _)| *ga)
}

/// The beta name of a GA server event type, or `None` if beta has no such event.
pub(crate) fn ga_server_type_to_beta(ga: &str) -> Option<&str> {
    if let Some((_, beta)) = RENAMED_SERVER_TYPES.iter().find(|(name, _)| *name == ga) {
        return Some(beta);
    }
    if GA_ONLY_SERVER_TYPES.contains(&ga) {
        None
    } else {
        Some(ga)
    }
}

fn unsupported(what: impl Into<String>, fix: &'static str) -> EncodeError {
    EncodeError::Unsupported {
        dialect: Dialect::Beta,
        what: what.into(),
        fix,
    }
}

/// Builds a JSON object, leaving out unset fields.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put<T: Serialize>(&mut self, key: &str, value: Option<T>) -> Result<(), EncodeError> {
        if let Some(value) = value {
            self.0.insert(key.to_owned(), serde_json::to_value(value)?);
        }
        Ok(())
    }

    fn put_value(&mut self, key: &str, value: Option<Value>) {
        if let Some(value) = value {
            self.0.insert(key.to_owned(), value);
        }
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

fn voice_name<'a>(voice: Option<&'a Voice>, path: &str) -> Result<Option<&'a str>, EncodeError> {
    match voice {
        None => Ok(None),
        Some(Voice::Named(name)) => Ok(Some(name)),
        Some(Voice::Custom { .. }) => Err(unsupported(
            format!("{path} (a custom voice)"),
            "use a built-in voice name or connect with the GA dialect",
        )),
    }
}

fn tools(tools: Option<&[ToolDefinition]>, path: &str) -> Result<Option<Value>, EncodeError> {
    let Some(tools) = tools else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(tools.len());
    for (index, tool) in tools.iter().enumerate() {
        match tool {
            ToolDefinition::Mcp(_) => {
                return Err(unsupported(
                    format!("{path}.tools[{index}] (an MCP tool)"),
                    "remove MCP tools or connect with the GA dialect",
                ));
            }
            other => out.push(serde_json::to_value(other)?),
        }
    }
    Ok(Some(Value::Array(out)))
}

fn tool_choice(
    choice: Option<&ToolChoice>,
    path: &str,
) -> Result<Option<&'static str>, EncodeError> {
    match choice {
        None => Ok(None),
        Some(choice) => choice.as_mode().map(Some).ok_or_else(|| {
            unsupported(
                format!("{path}.tool_choice (a forced function or MCP tool)"),
                "use \"required\" or connect with the GA dialect",
            )
        }),
    }
}

fn no_prompt<T>(prompt: Option<&T>, path: &str) -> Result<(), EncodeError> {
    match prompt {
        None => Ok(()),
        Some(_) => Err(unsupported(
            format!("{path}.prompt (a stored prompt template)"),
            "inline the instructions or connect with the GA dialect",
        )),
    }
}

/// The beta flat `input_audio_transcription` object (`model`, `language`, `prompt`).
fn transcription(session: &Session) -> Result<Option<Value>, EncodeError> {
    let Some(transcription) = session
        .audio_input()
        .and_then(|input| input.transcription.as_ref())
    else {
        return Ok(None);
    };
    let mut obj = Obj::default();
    obj.put("model", transcription.model.as_ref())?;
    obj.put("language", transcription.language.as_ref())?;
    obj.put("prompt", transcription.prompt.as_ref())?;
    Ok(Some(obj.done()))
}

fn shared_input_fields(obj: &mut Obj, session: &Session) -> Result<(), EncodeError> {
    let input = session.audio_input();
    obj.put(
        "input_audio_format",
        session.input_format().map(|f| f.beta_name()),
    )?;
    obj.put_value("input_audio_transcription", transcription(session)?);
    obj.put(
        "turn_detection",
        input.and_then(|i| i.turn_detection.as_ref()),
    )?;
    obj.put(
        "input_audio_noise_reduction",
        input.and_then(|i| i.noise_reduction.as_ref()),
    )?;
    Ok(())
}

fn server_fields(obj: &mut Obj, session: &Session) -> Result<(), EncodeError> {
    obj.put("id", session.id.as_ref())?;
    obj.put("object", session.object.as_ref())?;
    obj.put("expires_at", session.expires_at)?;
    Ok(())
}

/// A realtime session in the beta flat shape. `server` adds the fields only the server sends.
pub(crate) fn session(session: &Session, server: bool) -> Result<Value, EncodeError> {
    let mut obj = Obj::default();
    if server {
        server_fields(&mut obj, session)?;
        obj.put("include", session.include.as_ref())?;
        obj.put("truncation", session.truncation.as_ref())?;
        obj.put("prompt", session.prompt.as_ref())?;
    } else {
        no_prompt(session.prompt.as_ref(), "session")?;
    }
    obj.put("modalities", session.output_modalities.as_ref())?;
    obj.put("model", session.model.as_ref())?;
    obj.put("instructions", session.instructions.as_ref())?;
    obj.put(
        "voice",
        voice_name(session.voice(), "session.audio.output.voice")?,
    )?;
    obj.put("speed", session.audio_output().and_then(|o| o.speed))?;
    obj.put(
        "output_audio_format",
        session.output_format().map(|f| f.beta_name()),
    )?;
    shared_input_fields(&mut obj, session)?;
    obj.put_value("tools", tools(session.tools.as_deref(), "session")?);
    obj.put(
        "tool_choice",
        tool_choice(session.tool_choice.as_ref(), "session")?,
    )?;
    obj.put("temperature", session.temperature)?;
    obj.put("max_response_output_tokens", session.max_output_tokens)?;
    obj.put("tracing", session.tracing.as_ref())?;
    Ok(obj.done())
}

/// A transcription session in the flat shape of `transcription_session.update` (beta, and the
/// legacy GA event of the same name).
pub(crate) fn transcription_session(session: &Session, server: bool) -> Result<Value, EncodeError> {
    if let Some(field) = session.realtime_only_field() {
        return Err(EncodeError::NotInTranscriptionSession { field });
    }
    let mut obj = Obj::default();
    if server {
        server_fields(&mut obj, session)?;
    }
    shared_input_fields(&mut obj, session)?;
    obj.put("include", session.include.as_ref())?;
    Ok(obj.done())
}

/// An item in the beta flat shape: content types `text`/`audio` for assistant output.
pub(crate) fn item(item: &Item, path: &str) -> Result<Value, EncodeError> {
    let mut obj = Obj::default();
    match item {
        Item::Message(message) => {
            obj.put("id", message.id.as_ref())?;
            obj.put("type", Some("message"))?;
            obj.put("object", message.object.as_ref())?;
            obj.put("status", message.status.as_ref())?;
            obj.put("role", Some(&message.role))?;
            let mut content = Vec::with_capacity(message.content.len());
            for (index, part) in message.content.iter().enumerate() {
                content.push(content_part(part, &format!("{path}.content[{index}]"))?);
            }
            obj.put_value("content", Some(Value::Array(content)));
        }
        Item::FunctionCall(call) => {
            obj.put("id", call.id.as_ref())?;
            obj.put("type", Some("function_call"))?;
            obj.put("object", call.object.as_ref())?;
            obj.put("status", call.status.as_ref())?;
            obj.put("call_id", Some(&call.call_id))?;
            obj.put("name", Some(&call.name))?;
            obj.put("arguments", Some(&call.arguments))?;
        }
        Item::FunctionCallOutput(output) => {
            obj.put("id", output.id.as_ref())?;
            obj.put("type", Some("function_call_output"))?;
            obj.put("object", output.object.as_ref())?;
            obj.put("status", output.status.as_ref())?;
            obj.put("call_id", Some(&output.call_id))?;
            obj.put("output", Some(&output.output))?;
        }
        Item::ItemReference(reference) => {
            obj.put("type", Some("item_reference"))?;
            obj.put("id", Some(&reference.id))?;
        }
        Item::Unknown(raw) => return Ok(raw.clone()),
        Item::McpApprovalRequest(_)
        | Item::McpApprovalResponse(_)
        | Item::McpListTools(_)
        | Item::McpCall(_) => {
            return Err(unsupported(
                format!("{path} (an {} item)", item.item_type()),
                "MCP exists in the GA dialect only; connect with the GA dialect",
            ));
        }
    }
    Ok(obj.done())
}

fn content_part(part: &ContentPart, path: &str) -> Result<Value, EncodeError> {
    let kind = match part {
        ContentPart::InputText { .. } => "input_text",
        ContentPart::InputAudio { .. } => "input_audio",
        ContentPart::OutputText { .. } => "text",
        ContentPart::OutputAudio { .. } => "audio",
        ContentPart::ItemReference { .. } => "item_reference",
        ContentPart::Unknown(raw) => return Ok(raw.clone()),
        ContentPart::InputImage { .. } => {
            return Err(unsupported(
                format!("{path} (an input image)"),
                "image input exists in the GA dialect only; connect with the GA dialect",
            ));
        }
    };
    match ContentPartWire::new(part, kind) {
        Some(wire) => Ok(serde_json::to_value(wire)?),
        None => Ok(Value::Null),
    }
}

fn items(items: Option<&[Item]>, path: &str) -> Result<Option<Value>, EncodeError> {
    let Some(items) = items else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(items.len());
    for (index, entry) in items.iter().enumerate() {
        out.push(item(entry, &format!("{path}[{index}]"))?);
    }
    Ok(Some(Value::Array(out)))
}

fn audio_voice_and_format(
    obj: &mut Obj,
    audio: Option<&ResponseAudio>,
    path: &str,
) -> Result<(), EncodeError> {
    let output = audio.and_then(|audio| audio.output.as_ref());
    obj.put(
        "voice",
        voice_name(output.and_then(|o| o.voice.as_ref()), path)?,
    )?;
    obj.put(
        "output_audio_format",
        output.and_then(|o| o.format).map(|f| f.beta_name()),
    )?;
    Ok(())
}

/// `response.create` parameters in the beta shape.
pub(crate) fn response_create_params(params: &ResponseCreateParams) -> Result<Value, EncodeError> {
    no_prompt(params.prompt.as_ref(), "response")?;
    let mut obj = Obj::default();
    obj.put("modalities", params.output_modalities.as_ref())?;
    obj.put("instructions", params.instructions.as_ref())?;
    audio_voice_and_format(
        &mut obj,
        params.audio.as_ref(),
        "response.audio.output.voice",
    )?;
    obj.put_value("tools", tools(params.tools.as_deref(), "response")?);
    obj.put(
        "tool_choice",
        tool_choice(params.tool_choice.as_ref(), "response")?,
    )?;
    obj.put("temperature", params.temperature)?;
    obj.put("max_response_output_tokens", params.max_output_tokens)?;
    obj.put("conversation", params.conversation.as_ref())?;
    obj.put("metadata", params.metadata.as_ref())?;
    obj.put_value("input", items(params.input.as_deref(), "response.input")?);
    Ok(obj.done())
}

/// A response object (server side) in the beta shape.
pub(crate) fn response(response: &Response) -> Result<Value, EncodeError> {
    let mut obj = Obj::default();
    obj.put("id", Some(&response.id))?;
    obj.put("object", response.object.as_ref())?;
    obj.put("status", response.status.as_ref())?;
    obj.put("status_details", response.status_details.as_ref())?;
    obj.put_value("output", items(Some(&response.output), "response.output")?);
    obj.put("usage", response.usage.as_ref())?;
    obj.put("conversation_id", response.conversation_id.as_ref())?;
    obj.put("modalities", response.output_modalities.as_ref())?;
    audio_voice_and_format(
        &mut obj,
        response.audio.as_ref(),
        "response.audio.output.voice",
    )?;
    obj.put("temperature", response.temperature)?;
    obj.put("max_output_tokens", response.max_output_tokens)?;
    obj.put("metadata", response.metadata.as_ref())?;
    Ok(obj.done())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_type_names_map_both_ways() {
        assert_eq!(
            server_type_to_ga("response.audio.delta"),
            Some("response.output_audio.delta")
        );
        assert_eq!(server_type_to_ga("conversation.item.created"), None);
        assert_eq!(server_type_to_ga("response.done"), None);
        assert_eq!(
            ga_server_type_to_beta("response.output_text.done"),
            Some("response.text.done")
        );
        assert_eq!(
            ga_server_type_to_beta("conversation.item.added"),
            Some("conversation.item.created")
        );
        assert_eq!(ga_server_type_to_beta("conversation.item.done"), None);
        assert_eq!(
            ga_server_type_to_beta("response.done"),
            Some("response.done")
        );
    }
}
