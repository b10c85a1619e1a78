//! Trace files: every wire event in both directions, one JSON object a line, secrets redacted.
//!
//! A line looks like `{"ts_ms":1764090000123,"t_ms":12.5,"dir":"sent","event":{...}}`. Audio
//! payloads are replaced by their size unless audio tracing is on, and anything that can hold a
//! credential — `Authorization` values, API keys, ephemeral `client_secret`s, MCP tool headers —
//! is replaced by `"[redacted]"` before it reaches the disk.

use std::{
    fs::File,
    io::{self, BufWriter, Write},
    path::Path,
    sync::Mutex,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};

use crate::session::{Direction, WireObserver};

/// The replacement for every secret.
pub const REDACTED: &str = "[redacted]";

/// Writes a trace file as a session runs. The file is readable by its owner only: it holds the
/// conversation.
#[derive(Debug)]
pub struct TraceWriter {
    out: Mutex<BufWriter<File>>,
    started: Instant,
    include_audio: bool,
}

impl TraceWriter {
    /// Creates (or truncates) `path`. Audio payloads are written only if `include_audio`.
    pub fn create(path: impl AsRef<Path>, include_audio: bool) -> io::Result<Self> {
        Ok(TraceWriter {
            out: Mutex::new(BufWriter::new(crate::private_file::create(path.as_ref())?)),
            started: Instant::now(),
            include_audio,
        })
    }

    /// Writes a record that is not a wire frame, e.g. a usage or latency summary.
    pub fn note(&self, kind: &str, data: Value) {
        self.write_line(json!({
            "ts_ms": unix_ms(),
            "t_ms": self.elapsed_ms(),
            "dir": "local",
            "kind": kind,
            "data": data,
        }));
    }

    fn elapsed_ms(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
    }

    fn write_line(&self, line: Value) {
        let Ok(mut out) = self.out.lock() else {
            return;
        };
        // Known secret values go whatever field they hide in (a key the server echoed back).
        let text = crate::redact::scrub(&line.to_string()).into_owned();
        // A trace must never take the session down: I/O errors are logged, not raised.
        let result = out
            .write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if let Err(err) = result {
            tracing::warn!("could not write the trace: {err}");
        }
    }
}

impl WireObserver for TraceWriter {
    fn note(&self, kind: &str, data: &Value) {
        TraceWriter::note(self, kind, data.clone());
    }

    fn frame(&self, direction: Direction, text: &str) {
        let event = match serde_json::from_str::<Value>(text) {
            Ok(mut value) => {
                redact(&mut value, self.include_audio);
                value
            }
            Err(_) => json!({ "unparsed_frame_bytes": text.len() }),
        };
        self.write_line(json!({
            "ts_ms": unix_ms(),
            "t_ms": self.elapsed_ms(),
            "dir": direction.as_str(),
            "event": event,
        }));
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Keys whose values are credentials wherever they appear.
const SECRET_KEYS: &[&str] = &[
    "authorization",
    "api_key",
    "api-key",
    "client_secret",
    "ephemeral_key",
    "token",
    "access_token",
    "password",
];

/// Keys whose values are base64 audio.
const AUDIO_KEYS: &[&str] = &["audio", "delta"];

/// Redacts secrets (and, unless `include_audio`, audio payloads) in a wire event, in place.
pub fn redact(value: &mut Value, include_audio: bool) {
    let event_type = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let audio_event =
        event_type.contains("audio.delta") || event_type == "input_audio_buffer.append";
    redact_value(value, include_audio, audio_event);
}

fn redact_value(value: &mut Value, include_audio: bool, audio_event: bool) {
    match value {
        Value::Object(map) => redact_map(map, include_audio, audio_event),
        Value::Array(items) => {
            for item in items {
                redact_value(item, include_audio, audio_event);
            }
        }
        _ => {}
    }
}

fn redact_map(map: &mut Map<String, Value>, include_audio: bool, audio_event: bool) {
    // Content parts carry audio under "audio"; deltas of audio events under "delta".
    let audio_part = map
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| matches!(t, "input_audio" | "output_audio" | "audio"));
    for (key, value) in map.iter_mut() {
        let lower = key.to_ascii_lowercase();
        if SECRET_KEYS.contains(&lower.as_str()) {
            *value = Value::String(REDACTED.to_owned());
        } else if lower == "headers" {
            redact_all_strings(value);
        } else if !include_audio
            && AUDIO_KEYS.contains(&lower.as_str())
            && (audio_event || audio_part || lower == "audio")
            && let Some(text) = value.as_str()
        {
            *value = json!({ "omitted_base64_chars": text.len() });
        } else {
            redact_value(value, include_audio, audio_event);
        }
    }
}

fn redact_all_strings(value: &mut Value) {
    match value {
        Value::String(s) => *s = REDACTED.to_owned(),
        Value::Object(map) => map.values_mut().for_each(redact_all_strings),
        Value::Array(items) => items.iter_mut().for_each(redact_all_strings),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_everywhere() {
        let mut v = json!({
            "type": "session.update",
            "session": {
                "client_secret": {"value": "ek_123", "expires_at": 1},
                "tools": [{"type": "mcp", "server_label": "x", "authorization": "Bearer abc",
                           "headers": {"X-Api-Key": "k"}}]
            }
        });
        redact(&mut v, false);
        let text = v.to_string();
        for secret in ["ek_123", "Bearer abc", "\"k\""] {
            assert!(!text.contains(secret), "{secret} leaked in {text}");
        }
        assert!(text.contains("server_label"));
    }

    #[test]
    fn omits_audio_unless_asked() {
        let event = json!({"type": "response.output_audio.delta", "delta": "AAAA"});
        let mut v = event.clone();
        redact(&mut v, false);
        assert_eq!(v["delta"], json!({"omitted_base64_chars": 4}));
        let mut v = event;
        redact(&mut v, true);
        assert_eq!(v["delta"], "AAAA");

        for kind in [
            "response.output_text.delta",
            "response.output_audio_transcript.delta",
            "conversation.item.input_audio_transcription.delta",
        ] {
            let mut text = json!({"type": kind, "delta": "hello"});
            redact(&mut text, false);
            assert_eq!(text["delta"], "hello", "{kind}");
        }

        let mut item = json!({"type": "conversation.item.create", "item": {"type": "message",
            "role": "user", "content": [{"type": "input_audio", "audio": "QUJD"}]}});
        redact(&mut item, false);
        assert_eq!(
            item["item"]["content"][0]["audio"],
            json!({"omitted_base64_chars": 4})
        );
    }

    #[test]
    fn writes_one_line_per_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let writer = TraceWriter::create(&path, false).unwrap();
        writer.frame(Direction::Sent, r#"{"type":"response.create"}"#);
        writer.frame(Direction::Received, "not json");
        writer.note("usage", json!({"total_tokens": 3}));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["dir"], "sent");
        assert_eq!(lines[0]["event"]["type"], "response.create");
        assert_eq!(lines[1]["event"]["unparsed_frame_bytes"], 8);
        assert_eq!(lines[2]["kind"], "usage");
    }
}
