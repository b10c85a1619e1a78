//! The call's transcript, printed as it happens from the wire of the server's session (an
//! [`WireObserver`] on `agent serve`): what the caller said, the agent's words, every tool call
//! with its arguments, result and duration, keypad digits, what the server told the model,
//! and the cost so far.
//!
//! The caller's words are the scenario's (the line carries a tone, not speech): the next one
//! is printed when the server commits a turn of the caller's audio.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::Instant,
};

use agent_core::session::{Direction, WireObserver};
use serde_json::Value;

/// The most of a tool's result printed.
const RESULT_CHARS: usize = 160;

/// Prints the transcript; keeps the cost and the tool calls for the call's summary.
pub struct Transcript {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    spoken: VecDeque<String>,
    calls: HashMap<String, (String, String, Instant)>,
    cost: Option<Value>,
    tools: usize,
    errors: Vec<String>,
}

/// What the transcript saw, for the summary line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// The session's usage totals (`UsageTotals` as JSON), from the last usage note.
    pub cost: Option<Value>,
    /// Tool calls that returned.
    pub tools: usize,
    /// Error events the Realtime server sent.
    pub errors: Vec<String>,
}

impl Transcript {
    /// A transcript whose caller says `spoken`, in order.
    pub fn new(spoken: Vec<String>) -> Self {
        Transcript {
            state: Mutex::new(State {
                spoken: spoken.into(),
                ..State::default()
            }),
        }
    }

    /// What it saw so far.
    pub fn seen(&self) -> Seen {
        let state = self.lock();
        Seen {
            cost: state.cost.clone(),
            tools: state.tools,
            errors: state.errors.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn line(who: &str, text: &str) {
    crate::output::outln!("  {who:<7} {}", text.trim());
}

impl WireObserver for Transcript {
    fn frame(&self, direction: Direction, text: &str) {
        // Audio frames are most of the wire and say nothing for the transcript.
        if text.contains("input_audio_buffer.append") || text.contains("output_audio.delta") {
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(text) else {
            return;
        };
        let kind = event["type"].as_str().unwrap_or_default();
        let mut state = self.lock();
        match (direction, kind) {
            (
                Direction::Received,
                "response.output_audio_transcript.done" | "response.audio_transcript.done",
            ) => line("agent:", event["transcript"].as_str().unwrap_or_default()),
            (Direction::Received, "response.output_text.done" | "response.text.done") => {
                line("agent:", event["text"].as_str().unwrap_or_default());
            }
            (Direction::Received, "input_audio_buffer.committed") => {
                let said = state.spoken.pop_front();
                line("caller:", said.as_deref().unwrap_or("(speaks)"));
            }
            (Direction::Received, "response.output_item.done")
                if event["item"]["type"] == "function_call" =>
            {
                let item = &event["item"];
                let call_id = item["call_id"].as_str().unwrap_or_default().to_owned();
                let name = item["name"].as_str().unwrap_or("?").to_owned();
                let arguments = item["arguments"].as_str().unwrap_or_default().to_owned();
                state
                    .calls
                    .insert(call_id, (name, arguments, Instant::now()));
            }
            (Direction::Received, "error") => {
                let message = event["error"]["message"].as_str().unwrap_or("(no message)");
                line("error:", message);
                state.errors.push(message.to_owned());
            }
            (Direction::Sent, "conversation.item.create") => {
                let item = &event["item"];
                if item["type"] == "function_call_output" {
                    let call_id = item["call_id"].as_str().unwrap_or_default();
                    let output = item["output"].as_str().unwrap_or_default();
                    let (name, arguments, ms) = match state.calls.remove(call_id) {
                        Some((name, arguments, at)) => (name, arguments, at.elapsed().as_millis()),
                        None => ("?".into(), String::new(), 0),
                    };
                    state.tools += 1;
                    line(
                        "tool:",
                        &format!("{name}({arguments}) → {} ({ms} ms)", shorten(output)),
                    );
                } else if item["type"] == "message" {
                    let text = item["content"][0]["text"].as_str().unwrap_or_default();
                    match item["role"].as_str() {
                        Some("user") => line("keypad:", text),
                        _ => line("server:", text),
                    }
                }
            }
            _ => {}
        }
    }

    fn note(&self, kind: &str, data: &Value) {
        match kind {
            "usage" => self.lock().cost = Some(data["session"].clone()),
            "handoff" => line(
                "handoff:",
                &format!(
                    "{} → {}",
                    data["from"].as_str().unwrap_or("?"),
                    data["to"].as_str().unwrap_or("?")
                ),
            ),
            _ => {}
        }
    }
}

/// `text` on one line, at most [`RESULT_CHARS`] characters.
fn shorten(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= RESULT_CHARS {
        return one_line;
    }
    let cut: String = one_line.chars().take(RESULT_CHARS).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_and_cost_are_kept_for_the_summary() {
        let t = Transcript::new(vec!["hi".into()]);
        t.frame(
            Direction::Received,
            r#"{"type":"response.output_item.done","item":{"type":"function_call","call_id":"c1","name":"lookup_order","arguments":"{}"}}"#,
        );
        t.frame(
            Direction::Sent,
            r#"{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"c1","output":"shipped"}}"#,
        );
        t.frame(
            Direction::Received,
            r#"{"type":"error","error":{"message":"bad"}}"#,
        );
        t.note("usage", &serde_json::json!({"session": {"cost_usd": 0.5}}));
        let seen = t.seen();
        assert_eq!(seen.tools, 1);
        assert_eq!(seen.errors, ["bad"]);
        assert_eq!(seen.cost.unwrap()["cost_usd"], 0.5);
        assert_eq!(shorten(&"a ".repeat(200)).chars().count(), RESULT_CHARS + 1);
    }
}
