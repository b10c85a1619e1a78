//! Writing a [`Recording`] as a scenario file (the format of [`crate::scenario`]).

use serde_json::Value;

use super::{Call, Recording, Turn};

/// What the written file is called and which tools' outputs it expects verbatim.
pub struct WriteOptions<'a> {
    /// The scenario's name.
    pub name: String,
    /// Where the recording came from, for the file's header (a trace file's path).
    pub source: String,
    /// Whether the tool of this name gives the same output for the same arguments.
    pub deterministic: &'a dyn Fn(&str) -> bool,
}

impl std::fmt::Debug for WriteOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteOptions")
            .field("name", &self.name)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The text a step gets when the recording ends right after its calls: the client asks for
/// one more response after sending their outputs, so a reply must follow.
const ENDED_AFTER_CALLS: &str = "(the recording ended after these calls)";

/// The text a spoken turn gets when no transcript was recorded.
const NO_TRANSCRIPT: &str = "(a spoken turn; no transcript was recorded)";

impl Recording {
    /// The scenario file's text.
    pub fn to_scenario_toml(&self, options: &WriteOptions<'_>) -> String {
        let mut out = format!(
            "# Recorded from {}: the model's side is replayed and the tools run for real.\n\
             # Expected: each recorded call's tool and arguments, and the output of the tools\n\
             # marked deterministic. Edit freely: loosen an output to a word, add reply_contains.\n\
             # Run it with: agent test AGENT.toml --scenarios THIS_FILE\n\n\
             [[scenario]]\nname = {}\ndescription = {}\n",
            options.source,
            string(&options.name),
            string(&format!("Recorded from {}", options.source)),
        );
        let turns = self.turns.iter().filter(|t| !t.steps.is_empty());
        for (index, turn) in turns.enumerate() {
            out.push_str(&self.turn_toml(index, turn, options));
        }
        out
    }

    fn turn_toml(&self, index: usize, turn: &Turn, options: &WriteOptions<'_>) -> String {
        let mut out = String::from("\n[[scenario.turn]]\n");
        match &turn.user {
            Some(user) => out.push_str(&format!("user = {}\n", string(user))),
            None if index > 0 => out.push_str(&format!("user = {}\n", string(NO_TRANSCRIPT))),
            None => {}
        }
        for step in &turn.steps {
            out.push_str("\n  [[scenario.turn.model]]\n");
            if !step.say.trim().is_empty() {
                out.push_str(&format!("  say = {}\n", string(&step.say)));
            }
            if !step.calls.is_empty() {
                let calls: Vec<String> = step.calls.iter().map(scripted_call).collect();
                out.push_str(&format!("  calls = [{}]\n", calls.join(", ")));
            }
        }
        if turn.steps.last().is_some_and(|s| !s.calls.is_empty()) {
            out.push_str(&format!(
                "\n  [[scenario.turn.model]]\n  say = {}\n",
                string(ENDED_AFTER_CALLS)
            ));
        }
        for call in turn.steps.iter().flat_map(|s| &s.calls) {
            out.push_str(&self.expectation(call, options));
        }
        out
    }

    fn expectation(&self, call: &Call, options: &WriteOptions<'_>) -> String {
        let mut out = format!(
            "\n  [[scenario.turn.expect]]\n  tool = {}\n",
            string(&call.name)
        );
        if let Ok(arguments) = &call.arguments {
            out.push_str(&format!("  arguments = {}\n", inline(arguments)));
        }
        match self.outputs.get(&call.call_id) {
            Some(output) if (options.deterministic)(&call.name) => {
                out.push_str(&format!("  output_contains = {}\n", string(output)));
            }
            Some(_) => out.push_str("  # output not expected: the tool is not deterministic\n"),
            None => out.push_str("  # no output was recorded for this call\n"),
        }
        out
    }
}

/// A call as the scripted model makes it.
fn scripted_call(call: &Call) -> String {
    match &call.arguments {
        Ok(arguments) => format!(
            "{{ name = {}, arguments = {} }}",
            string(&call.name),
            inline(arguments)
        ),
        Err(raw) => format!(
            "{{ name = {}, arguments_raw = {} }}",
            string(&call.name),
            string(raw)
        ),
    }
}

/// A JSON value as an inline TOML value. `null`s are left out of tables and arrays: TOML has
/// none, and the runtime treats a `null` argument as absent anyway.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "\"\"".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().filter(|v| !v.is_null()).map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            if entries.is_empty() {
                "{}".to_owned()
            } else {
                format!("{{ {} }}", entries.join(", "))
            }
        }
    }
}

/// A table key: bare when TOML allows it, quoted otherwise.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare { k.to_owned() } else { string(k) }
}

/// A TOML basic string, on one line.
fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::scenario::ScenarioFile;

    fn trace(lines: &[Value]) -> Recording {
        let text: Vec<String> = lines.iter().map(Value::to_string).collect();
        Recording::from_lines(text.iter().map(String::as_str))
    }

    fn sent(event: Value) -> Value {
        json!({"dir": "sent", "event": event})
    }

    fn received(event: Value) -> Value {
        json!({"dir": "received", "event": event})
    }

    fn user(text: &str) -> Value {
        sent(
            json!({"type": "conversation.item.create", "item": {"type": "message",
            "role": "user", "content": [{"type": "input_text", "text": text}]}}),
        )
    }

    fn done(id: &str, output: Value) -> Value {
        received(json!({"type": "response.done", "response": {"id": id,
            "status": "completed", "output": output}}))
    }

    fn call(call_id: &str, name: &str, arguments: &str) -> Value {
        json!({"type": "function_call", "call_id": call_id, "name": name,
            "arguments": arguments, "status": "completed"})
    }

    fn say(text: &str) -> Value {
        json!({"type": "message", "role": "assistant",
            "content": [{"type": "output_text", "text": text}]})
    }

    fn output(call_id: &str, output: &str) -> Value {
        sent(json!({"type": "conversation.item.create", "item": {
            "type": "function_call_output", "call_id": call_id, "output": output}}))
    }

    fn options(deterministic: &dyn Fn(&str) -> bool) -> WriteOptions<'_> {
        WriteOptions {
            name: "recorded".into(),
            source: "t.jsonl".into(),
            deterministic,
        }
    }

    fn session() -> Value {
        sent(json!({"type": "session.update", "session": {}}))
    }

    #[test]
    fn a_recorded_turn_becomes_a_valid_scenario() {
        let recording = trace(&[
            session(),
            user("Where is \"A1001\"?\nThanks"),
            done(
                "r1",
                json!([
                    say("Let me look."),
                    call(
                        "c1",
                        "lookup_order",
                        r#"{"order_id":"A1001","details":null}"#
                    ),
                    call("c2", "current_time", "{}")
                ]),
            ),
            output("c1", r#"{"status":"shipped"}"#),
            output("c2", "12:00"),
            done("r2", json!([say("It shipped.")])),
            json!({"dir": "local", "kind": "usage", "data": {}}),
            json!("not an object"),
        ]);
        assert_eq!(recording.turns(), 1);
        assert_eq!(recording.skipped_lines(), 1);
        let text = recording.to_scenario_toml(&options(&|name| name == "lookup_order"));
        let file = ScenarioFile::from_str(&text, "recorded").expect(&text);
        let scenario = &file.scenarios[0];
        assert_eq!(
            scenario.turns[0].user.as_deref(),
            Some("Where is \"A1001\"?\nThanks")
        );
        assert_eq!(scenario.turns[0].model.len(), 2);
        assert_eq!(scenario.turns[0].expect.len(), 2);
        let lookup = &scenario.turns[0].expect[0];
        assert_eq!(lookup.tool.as_deref(), Some("lookup_order"));
        assert_eq!(lookup.arguments, Some(json!({"order_id": "A1001"})));
        assert_eq!(
            lookup.output_contains.as_deref(),
            Some(r#"{"status":"shipped"}"#)
        );
        let time = &scenario.turns[0].expect[1];
        assert_eq!(
            time.output_contains, None,
            "the clock's output is not expected"
        );
    }

    #[test]
    fn a_reconnect_replay_is_not_a_new_turn_and_calls_count_once() {
        let recording = trace(&[
            session(),
            user("first"),
            done(
                "r1",
                json!([call("c1", "calculate", r#"{"expression":"1+1"}"#)]),
            ),
            // The connection dropped; the client replays the conversation.
            session(),
            user("first"),
            sent(
                json!({"type": "conversation.item.create", "item": call("c1", "calculate", "{}")}),
            ),
            output("c1", "2"),
            sent(json!({"type": "response.create"})),
            done(
                "r2",
                json!([call("c1", "calculate", r#"{"expression":"1+1"}"#), say("2")]),
            ),
            user("second"),
            done("r3", json!([say("ok")])),
        ]);
        assert_eq!(recording.turns(), 2);
        let text = recording.to_scenario_toml(&options(&|_| true));
        let file = ScenarioFile::from_str(&text, "recorded").expect(&text);
        let turns = &file.scenarios[0].turns;
        assert_eq!(turns[0].user.as_deref(), Some("first"));
        assert_eq!(turns[0].expect.len(), 1, "{text}");
        assert_eq!(turns[1].user.as_deref(), Some("second"));
    }

    #[test]
    fn a_background_result_is_its_calls_output_and_a_filler_no_step() {
        let recording = trace(&[
            session(),
            user("make the report"),
            done("r1", json!([call("c1", "report", "{}")])),
            output("c1", r#"{"status":"started"}"#),
            received(json!({"type": "response.done", "response": {"id": "f1",
                "status": "completed", "conversation_id": null,
                "metadata": {"purpose": "filler"}, "output": [say("One moment.")]}})),
            done("r2", json!([say("I started it.")])),
            user(r#"[result of background call c1 (report)]: {"pages":3}"#),
            done("r3", json!([say("It has 3 pages.")])),
        ]);
        assert_eq!(recording.turns(), 1);
        let text = recording.to_scenario_toml(&options(&|_| true));
        let file = ScenarioFile::from_str(&text, "recorded").expect(&text);
        let turn = &file.scenarios[0].turns[0];
        assert_eq!(turn.model.len(), 3, "{text}");
        assert!(!text.contains("One moment."), "{text}");
        assert_eq!(
            turn.expect[0].output_contains.as_deref(),
            Some(r#"{"pages":3}"#)
        );
    }

    #[test]
    fn a_recording_that_ends_after_calls_still_gets_a_reply_step() {
        let recording = trace(&[
            user("go"),
            done("r1", json!([call("c1", "lookup_order", "{not json")])),
        ]);
        let text = recording.to_scenario_toml(&options(&|_| false));
        let file = ScenarioFile::from_str(&text, "recorded").expect(&text);
        let turn = &file.scenarios[0].turns[0];
        assert_eq!(turn.model.len(), 2);
        assert!(text.contains("arguments_raw = \"{not json\""), "{text}");
    }

    #[test]
    fn a_greeting_and_a_spoken_turn_are_kept() {
        let recording = trace(&[
            done("r0", json!([say("Hello!")])),
            received(json!({"type": "input_audio_buffer.committed", "item_id": "i1"})),
            received(
                json!({"type": "response.output_text.delta", "response_id": "r1",
                "delta": "Sure."}),
            ),
            done("r1", json!([])),
            received(
                json!({"type": "conversation.item.input_audio_transcription.completed",
                "item_id": "i1", "transcript": " What time is it? "}),
            ),
        ]);
        let text = recording.to_scenario_toml(&options(&|_| false));
        let file = ScenarioFile::from_str(&text, "recorded").expect(&text);
        let turns = &file.scenarios[0].turns;
        assert_eq!(turns[0].user, None);
        assert_eq!(turns[1].user.as_deref(), Some("What time is it?"));
        assert_eq!(turns[1].model[0].say.as_deref(), Some("Sure."));
    }

    #[test]
    fn values_render_as_inline_toml() {
        let value = json!({"a b": [1, 2.5, null, "x", true]});
        assert_eq!(inline(&value), r#"{ "a b" = [1, 2.5, "x", true] }"#);
        assert_eq!(inline(&json!({"nested": {"k": null}})), "{ nested = {} }");
        assert_eq!(string("tab\tquote\"\u{1}"), r#""tab\tquote\"\u0001""#);
    }
}
