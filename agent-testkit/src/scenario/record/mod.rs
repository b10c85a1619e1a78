//! Recorded sessions become scenarios: a trace (`agent run --trace`, one JSON object a line)
//! is read back into a scenario file that `agent test` plays.
//!
//! - **The model's side is replayed:** each `response.done` the client received becomes a
//!   model step (its text or transcript as `say`, its function calls as `calls`).
//! - **The user's side** is what the client sent: each typed user message (or the transcript
//!   of a spoken turn) starts a turn.
//! - **The tools run for real** when the scenario is played, so the expectations are each
//!   recorded call's tool and arguments, plus the output of the tools `deterministic` says give
//!   the same output for the same arguments. A clock's or a network tool's output is not
//!   expected verbatim.
//!
//! A background call's result (the user message `[result of background call ID (tool)]: ...`)
//! is the call's output, not a new turn, and a filler (an out-of-band response with
//! `metadata.purpose = "filler"`) is no model step: the scripted server plays both by itself.
//!
//! Replays after a reconnect (the client sends the conversation again on a new connection)
//! are recognised and not taken for new turns; a call id is recorded once. Lines that are not
//! JSON, and local records (usage, latency), are skipped. A plain JSONL dump with one server
//! event a line (no `dir`) is read as received events.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// A recorded model step: what the assistant said and the calls it made, in one response.
#[derive(Debug, Clone, Default, PartialEq)]
struct Step {
    say: String,
    calls: Vec<Call>,
}

/// A recorded function call.
#[derive(Debug, Clone, PartialEq)]
struct Call {
    call_id: String,
    name: String,
    /// The arguments when they are a JSON object, else the raw text.
    arguments: Result<Value, String>,
}

/// A recorded turn.
#[derive(Debug, Clone, Default, PartialEq)]
struct Turn {
    user: Option<String>,
    steps: Vec<Step>,
}

/// A session read back from its trace, ready to be written as a scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recording {
    turns: Vec<Turn>,
    /// Outputs the client sent, by call id.
    outputs: HashMap<String, String>,
    /// Call ids already taken into a step.
    seen_calls: HashSet<String>,
    /// `session.update`s sent: every one after the first opens a new connection, which the
    /// client replays the conversation into.
    sessions: usize,
    /// While replaying: how many recorded user turns the replay has repeated so far.
    replaying: Option<usize>,
    /// Streamed text per response, for a `response.done` whose output holds none.
    deltas: HashMap<String, String>,
    /// A spoken turn waiting for its transcript: its item id and turn index.
    spoken: HashMap<String, usize>,
    /// Lines that were not JSON objects.
    skipped: usize,
}

impl Recording {
    /// Reads every line of a trace.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Recording {
        let mut recording = Recording::default();
        for line in lines {
            recording.push_line(line);
        }
        recording
    }

    /// How many lines were not JSON objects (and were skipped).
    pub fn skipped_lines(&self) -> usize {
        self.skipped
    }

    /// How many turns were recorded (turns without any response are left out).
    pub fn turns(&self) -> usize {
        self.turns.iter().filter(|t| !t.steps.is_empty()).count()
    }

    /// Reads one more line of a trace.
    pub fn push_line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
            self.skipped += 1;
            return;
        };
        match record.get("dir").and_then(Value::as_str) {
            Some("sent") => self.sent(record.get("event").unwrap_or(&Value::Null)),
            Some("received") => self.received(record.get("event").unwrap_or(&Value::Null)),
            Some(_) => {}
            // Another recorder's dump: one server event a line.
            None => self.received(&Value::Object(record)),
        }
    }

    fn sent(&mut self, event: &Value) {
        match event_type(event) {
            "session.update" => {
                self.sessions += 1;
                if self.sessions > 1 {
                    self.replaying = Some(0);
                }
            }
            "conversation.item.create" => {
                let item = event.get("item").unwrap_or(&Value::Null);
                match item_type(item) {
                    "message" if item.get("role").and_then(Value::as_str) == Some("user") => {
                        let text = message_text(item);
                        match background_result(&text) {
                            Some((call_id, output)) => {
                                self.outputs.insert(call_id, output);
                            }
                            None => self.user_message(text),
                        }
                    }
                    "function_call_output" => {
                        let call_id = text_of(item, "call_id");
                        let output = text_of(item, "output");
                        self.outputs.insert(call_id, output);
                    }
                    _ => {}
                }
            }
            _ => self.replaying = None,
        }
    }

    /// A typed user message: a new turn, unless a reconnect is replaying the conversation.
    fn user_message(&mut self, text: String) {
        if let Some(repeated) = self.replaying {
            let users = self.turns.iter().filter_map(|t| t.user.as_deref());
            if users.clone().nth(repeated) == Some(text.as_str()) {
                self.replaying = Some(repeated + 1);
                return;
            }
            self.replaying = None;
        }
        self.turns.push(Turn {
            user: Some(text),
            steps: Vec::new(),
        });
    }

    fn received(&mut self, event: &Value) {
        match event_type(event) {
            "input_audio_buffer.committed" => {
                // A spoken turn: its text comes with the transcript.
                self.turns.push(Turn::default());
                let index = self.turns.len() - 1;
                self.spoken.insert(text_of(event, "item_id"), index);
            }
            "conversation.item.input_audio_transcription.completed" => {
                let item_id = text_of(event, "item_id");
                if let Some(turn) = self
                    .spoken
                    .remove(&item_id)
                    .and_then(|i| self.turns.get_mut(i))
                {
                    turn.user = Some(text_of(event, "transcript").trim().to_owned());
                }
            }
            "response.output_text.delta"
            | "response.text.delta"
            | "response.output_audio_transcript.delta"
            | "response.audio_transcript.delta" => {
                let response = text_of(event, "response_id");
                let delta = text_of(event, "delta");
                self.deltas.entry(response).or_default().push_str(&delta);
            }
            "response.done" => self.response_done(event.get("response").unwrap_or(&Value::Null)),
            _ => {}
        }
    }

    /// A finished response: one model step of the current turn.
    fn response_done(&mut self, response: &Value) {
        let id = text_of(response, "id");
        if is_filler(response) {
            self.deltas.remove(&id);
            return;
        }
        let output = response.get("output").and_then(Value::as_array);
        let mut step = Step::default();
        for item in output.into_iter().flatten() {
            match item_type(item) {
                "message" => step.say.push_str(&message_text(item)),
                "function_call" => {
                    let call_id = text_of(item, "call_id");
                    let completed = item
                        .get("status")
                        .and_then(Value::as_str)
                        .is_none_or(|s| s == "completed");
                    if completed && self.seen_calls.insert(call_id.clone()) {
                        step.calls.push(call(item, call_id));
                    }
                }
                _ => {}
            }
        }
        if step.say.is_empty()
            && let Some(streamed) = self.deltas.remove(&id)
        {
            step.say = streamed;
        }
        if step.say.trim().is_empty() && step.calls.is_empty() {
            return;
        }
        if self.turns.is_empty() {
            // The model spoke first (a greeting).
            self.turns.push(Turn::default());
        }
        if let Some(turn) = self.turns.last_mut() {
            turn.steps.push(step);
        }
    }
}

fn call(item: &Value, call_id: String) -> Call {
    let raw = text_of(item, "arguments");
    let arguments = match serde_json::from_str::<Value>(&raw) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(raw),
    };
    Call {
        call_id,
        name: text_of(item, "name"),
        arguments,
    }
}

/// The call id and output of a background call's result message.
fn background_result(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix("[result of background call ")?;
    let (call_id, rest) = rest.split_once(" (")?;
    let (_tool, output) = rest.split_once(")]: ")?;
    Some((call_id.to_owned(), output.to_owned()))
}

/// Whether a response is a filler: out of band, `metadata.purpose = "filler"`.
fn is_filler(response: &Value) -> bool {
    response.get("conversation_id").is_none_or(Value::is_null)
        && response
            .pointer("/metadata/purpose")
            .and_then(Value::as_str)
            == Some("filler")
}

fn event_type(event: &Value) -> &str {
    event.get("type").and_then(Value::as_str).unwrap_or("")
}

fn item_type(item: &Value) -> &str {
    item.get("type").and_then(Value::as_str).unwrap_or("")
}

fn text_of(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The text of a message: its text parts and transcripts, in order.
fn message_text(item: &Value) -> String {
    let parts = item.get("content").and_then(Value::as_array);
    parts
        .into_iter()
        .flatten()
        .filter_map(|part| {
            part.get("text")
                .or_else(|| part.get("transcript"))
                .and_then(Value::as_str)
        })
        .collect::<Vec<_>>()
        .join("")
}

mod write;

pub use write::WriteOptions;
