//! Session objects (GA nested / beta flat), `session.update` validation and merging.

use serde_json::{Map, Value, json};

use super::Dialect;
use super::audio::{AudioFormat, VadParams};
use super::faults::ErrorSpec;
use super::wire::invalid_request;

const GA_REALTIME_KEYS: &[&str] = &[
    "type",
    "model",
    "output_modalities",
    "instructions",
    "audio",
    "include",
    "tracing",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "max_output_tokens",
    "truncation",
    "prompt",
];
const GA_TRANSCRIPTION_KEYS: &[&str] = &["type", "audio", "include"];
const GA_AUDIO_INPUT_KEYS: &[&str] = &[
    "format",
    "transcription",
    "noise_reduction",
    "turn_detection",
];
const GA_AUDIO_OUTPUT_KEYS: &[&str] = &["format", "voice", "speed"];
const BETA_KEYS: &[&str] = &[
    "modalities",
    "model",
    "instructions",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "turn_detection",
    "input_audio_noise_reduction",
    "tools",
    "tool_choice",
    "temperature",
    "max_response_output_tokens",
    "speed",
    "tracing",
    "client_secret",
    "truncation",
    "prompt",
    "include",
];

const DEFAULT_INSTRUCTIONS: &str = "You are a helpful, witty, and friendly AI.";

fn default_turn_detection() -> Value {
    json!({
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": null,
        "create_response": true,
        "interrupt_response": true
    })
}

/// The session a connection starts with, shaped like live `session.created` payloads.
pub(crate) fn initial(dialect: Dialect, id: &str, model: &str, expires_at: u64) -> Value {
    match dialect {
        Dialect::Ga => json!({
            "type": "realtime",
            "object": "realtime.session",
            "id": id,
            "model": model,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": null,
            "truncation": "auto",
            "prompt": null,
            "expires_at": expires_at,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": null,
                    "noise_reduction": null,
                    "turn_detection": default_turn_detection()
                },
                "output": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "voice": "alloy",
                    "speed": 1.0
                }
            },
            "include": null
        }),
        Dialect::Beta => json!({
            "object": "realtime.session",
            "id": id,
            "model": model,
            "modalities": ["audio", "text"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "voice": "alloy",
            "output_audio_format": "pcm16",
            "tools": [],
            "tool_choice": "auto",
            "temperature": 0.8,
            "max_response_output_tokens": "inf",
            "turn_detection": default_turn_detection(),
            "speed": 1.0,
            "tracing": null,
            "truncation": "auto",
            "prompt": null,
            "expires_at": expires_at,
            "input_audio_noise_reduction": null,
            "input_audio_format": "pcm16",
            "input_audio_transcription": null,
            "client_secret": null,
            "include": null
        }),
    }
}

/// Checks a `session.update` payload the way the live API does; `Err` is the error to send.
pub(crate) fn validate_update(dialect: Dialect, session: Option<&Value>) -> Result<(), ErrorSpec> {
    let Some(session) = session else {
        return Err(invalid_request(
            "missing_required_parameter",
            "Missing required parameter: 'session'.",
            Some("session"),
        ));
    };
    let Some(obj) = session.as_object() else {
        return Err(invalid_request(
            "invalid_type",
            "Invalid type for 'session': expected an object.",
            Some("session"),
        ));
    };
    let allowed: &[&str] = match dialect {
        Dialect::Beta => BETA_KEYS,
        Dialect::Ga => match obj.get("type").and_then(Value::as_str) {
            None => {
                return Err(invalid_request(
                    "missing_required_parameter",
                    "Missing required parameter: 'session.type'.",
                    Some("session.type"),
                ));
            }
            Some("realtime") => GA_REALTIME_KEYS,
            Some("transcription") => GA_TRANSCRIPTION_KEYS,
            Some(other) => {
                return Err(invalid_request(
                    "invalid_value",
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'realtime' and 'transcription'."
                    ),
                    Some("session.type"),
                ));
            }
        },
    };
    unknown_keys(obj, allowed, "session")?;
    if dialect == Dialect::Ga
        && let Some(audio) = obj.get("audio").and_then(Value::as_object)
    {
        unknown_keys(audio, &["input", "output"], "session.audio")?;
        if let Some(input) = audio.get("input").and_then(Value::as_object) {
            unknown_keys(input, GA_AUDIO_INPUT_KEYS, "session.audio.input")?;
        }
        if let Some(output) = audio.get("output").and_then(Value::as_object) {
            unknown_keys(output, GA_AUDIO_OUTPUT_KEYS, "session.audio.output")?;
        }
    }
    if let Some(tools) = obj.get("tools") {
        validate_tools(tools)?;
    }
    Ok(())
}

fn unknown_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), ErrorSpec> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid_request(
            "unknown_parameter",
            format!("Unknown parameter: '{path}.{k}'."),
            Some(&format!("{path}.{k}")),
        )),
        None => Ok(()),
    }
}

fn validate_tools(tools: &Value) -> Result<(), ErrorSpec> {
    let Some(list) = tools.as_array() else {
        return Err(invalid_request(
            "invalid_type",
            "Invalid type for 'session.tools': expected an array.",
            Some("session.tools"),
        ));
    };
    for (i, tool) in list.iter().enumerate() {
        let path = format!("session.tools[{i}]");
        let Some(t) = tool.as_object() else {
            return Err(invalid_request(
                "invalid_type",
                format!("Invalid type for '{path}': expected an object."),
                Some(&path),
            ));
        };
        match t.get("type").and_then(Value::as_str) {
            Some("function") | None => {
                // Chat Completions nests the function; Realtime tools are flat.
                unknown_keys(t, &["type", "name", "description", "parameters"], &path)?;
                if t.get("name")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(invalid_request(
                        "missing_required_parameter",
                        format!("Missing required parameter: '{path}.name'."),
                        Some(&format!("{path}.name")),
                    ));
                }
            }
            Some("mcp") => {}
            Some(other) => {
                return Err(invalid_request(
                    "invalid_value",
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'function' and 'mcp'."
                    ),
                    Some(&format!("{path}.type")),
                ));
            }
        }
    }
    Ok(())
}

/// Merges an update into the session: objects recursively, everything else replaced.
pub(crate) fn merge(session: &mut Value, update: &Value) {
    match (session, update) {
        (Value::Object(target), Value::Object(source)) => {
            for (k, v) in source {
                match target.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        target.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (target, source) => *target = source.clone(),
    }
}

/// Typed views of the fields the server acts on.
pub(crate) struct View<'a> {
    pub(crate) dialect: Dialect,
    pub(crate) session: &'a Value,
}

impl View<'_> {
    fn get(&self, path: &[&str]) -> Option<&Value> {
        let mut v = self.session;
        for p in path {
            v = v.get(p)?;
        }
        Some(v)
    }

    pub(crate) fn is_transcription(&self) -> bool {
        self.session.get("type").and_then(Value::as_str) == Some("transcription")
    }

    pub(crate) fn output_modalities(&self) -> Vec<String> {
        let key = match self.dialect {
            Dialect::Ga => "output_modalities",
            Dialect::Beta => "modalities",
        };
        modalities(self.session.get(key))
    }

    pub(crate) fn output_format(&self) -> AudioFormat {
        match self.dialect {
            Dialect::Ga => {
                AudioFormat::from_session_value(self.get(&["audio", "output", "format"]))
            }
            Dialect::Beta => AudioFormat::from_session_value(self.get(&["output_audio_format"])),
        }
    }

    pub(crate) fn input_format(&self) -> AudioFormat {
        match self.dialect {
            Dialect::Ga => AudioFormat::from_session_value(self.get(&["audio", "input", "format"])),
            Dialect::Beta => AudioFormat::from_session_value(self.get(&["input_audio_format"])),
        }
    }

    pub(crate) fn output_format_value(&self) -> Value {
        self.get(&["audio", "output", "format"])
            .cloned()
            .unwrap_or_else(|| json!({"type": "audio/pcm", "rate": 24000}))
    }

    pub(crate) fn beta_output_format(&self) -> Value {
        self.get(&["output_audio_format"])
            .cloned()
            .unwrap_or_else(|| json!("pcm16"))
    }

    pub(crate) fn voice(&self) -> Value {
        match self.dialect {
            Dialect::Ga => self.get(&["audio", "output", "voice"]),
            Dialect::Beta => self.get(&["voice"]),
        }
        .cloned()
        .unwrap_or_else(|| json!("alloy"))
    }

    pub(crate) fn vad(&self) -> Option<VadParams> {
        let td = match self.dialect {
            Dialect::Ga => self.get(&["audio", "input", "turn_detection"]),
            Dialect::Beta => self.get(&["turn_detection"]),
        };
        VadParams::from_turn_detection(td)
    }

    /// The transcription model when input transcription is on.
    pub(crate) fn transcription_model(&self) -> Option<String> {
        let t = match self.dialect {
            Dialect::Ga => self.get(&["audio", "input", "transcription"]),
            Dialect::Beta => self.get(&["input_audio_transcription"]),
        }?;
        if t.is_null() {
            return None;
        }
        Some(
            t.get("model")
                .and_then(Value::as_str)
                .unwrap_or("whisper-1")
                .to_string(),
        )
    }

    /// Characters of instructions and tool definitions, for input token estimates.
    pub(crate) fn prompt_chars(&self) -> usize {
        let instructions = self
            .session
            .get("instructions")
            .and_then(Value::as_str)
            .map_or(0, str::len);
        let tools = self.session.get("tools").map_or(0, |t| t.to_string().len());
        instructions + tools
    }
}

/// Reads a modalities array, ignoring anything that is not a string.
pub(crate) fn modalities(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ga_requires_type() {
        let e = validate_update(Dialect::Ga, Some(&json!({"instructions": "x"}))).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("missing_required_parameter"));
        assert_eq!(e.param.as_deref(), Some("session.type"));
        assert!(validate_update(Dialect::Beta, Some(&json!({"instructions": "x"}))).is_ok());
    }

    #[test]
    fn dialect_mixups_are_unknown_parameters() {
        let e = validate_update(
            Dialect::Ga,
            Some(&json!({"type": "realtime", "modalities": ["text"]})),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.modalities"));
        let e = validate_update(Dialect::Beta, Some(&json!({"output_modalities": ["text"]})))
            .unwrap_err();
        assert_eq!(e.code.as_deref(), Some("unknown_parameter"));
        let e = validate_update(
            Dialect::Ga,
            Some(&json!({"type": "realtime", "tools": [{"type": "function", "function": {"name": "x"}}]})),
        )
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.tools[0].function"));
    }

    #[test]
    fn merge_is_deep() {
        let mut s = initial(Dialect::Ga, "sess_1", "gpt-realtime", 0);
        merge(
            &mut s,
            &json!({"type": "realtime", "audio": {"output": {"voice": "marin"}}, "output_modalities": ["text"]}),
        );
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert_eq!(s["audio"]["output"]["speed"], 1.0);
        assert_eq!(s["output_modalities"], json!(["text"]));
    }
}
