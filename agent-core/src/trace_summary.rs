//! Summaries of recorded sessions: this project's trace files and other recorders' JSONL dumps.
//!
//! Two line shapes are read, and may even be mixed:
//!
//! - this project's traces ([`crate::trace::TraceWriter`]): `{"ts_ms","t_ms","dir","event"}` for
//!   wire frames (`dir` = `sent`/`received`) and `{"ts_ms","t_ms","dir":"local","kind","data"}`
//!   for notes (usage, latency, ...);
//! - plain dumps: one server event per line (`{"type": ...}`), as recorded by other tools; they
//!   have no timestamps, so no latency.
//!
//! Counting never fails on content: unknown event types are counted (and listed), lines that are
//! not JSON objects, or are objects of neither shape, are counted as malformed and skipped.
//! Usage is re-metered from `response.done` and transcription events at the given prices,
//! rather than trusted from notes, so dumps from other tools get a cost too. Latency comes from
//! the session's own `latency` notes when the trace has them (they know when each tool
//! returned), and is otherwise derived from the frames' timestamps. GA and beta event names are
//! both understood.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::{self, BufRead},
    sync::Arc,
    time::Duration,
};

use serde_json::Value;

use crate::{
    cost::{CostMeter, PriceTable, UsageTotals},
    fs_limits::MAX_TRACE_LINE_BYTES,
    latency::{LatencySummary, LatencyTracker, TurnLatency, TurnStart},
    protocol::{ServerEvent, TranscriptionUsage, Usage},
};

/// How often an event type was seen, per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCount {
    /// Sent by the client (only project traces record these).
    pub sent: u64,
    /// Received from the server.
    pub received: u64,
}

/// One function call found in the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallRecord {
    /// The call's id.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// Call received → output sent, when the trace has both and timestamps.
    pub duration: Option<Duration>,
    /// Whether the trace shows its `function_call_output` being sent.
    pub answered: bool,
}

/// What a trace holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceSummary {
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Lines that were neither a trace record nor an event (skipped).
    pub malformed: u64,
    /// 1-based numbers of the first few malformed lines, to go and look.
    pub malformed_examples: Vec<u64>,
    /// Wire events (frames) read.
    pub events: u64,
    /// Events per type.
    pub by_type: BTreeMap<String, EventCount>,
    /// Server event types this crate does not know, with their counts.
    pub unknown_types: BTreeMap<String, u64>,
    /// Notes (non-wire records) per kind.
    pub notes: BTreeMap<String, u64>,
    /// Whether the events carried timestamps (`t_ms`), so latency could be measured.
    pub timestamps: bool,
    /// User turns.
    pub turns: u64,
    /// `response.done` events.
    pub responses: u64,
    /// Every function call, in order.
    pub tool_calls: Vec<ToolCallRecord>,
    /// Latency per turn (empty without timestamps).
    pub latency: LatencySummary,
    /// The Realtime model, from `session.created`/`session.updated` (or the caller).
    pub model: Option<String>,
    /// The price-table entry the model was priced as, when known.
    pub priced_as: Option<String>,
    /// The date of the prices used.
    pub prices_taken: Option<String>,
    /// Tokens and cost.
    pub usage: UsageTotals,
}

/// Reads a trace line by line.
#[derive(Debug)]
pub struct TraceSummarizer {
    prices: Arc<PriceTable>,
    model_override: Option<String>,
    transcription_model: Option<String>,
    /// Usage is priced at the end, once the model is known (dumps may start mid-session).
    usages: Vec<Usage>,
    transcriptions: Vec<TranscriptionUsage>,
    tracker: LatencyTracker,
    summary: TraceSummary,
    /// A response started since the current turn started (so a new start is a new turn).
    response_in_turn: bool,
    calls: HashMap<String, usize>,
    call_received_at: HashMap<String, Duration>,
    seen_responses: HashSet<String>,
    last_t: Duration,
    /// Turns as the session measured them (`latency` notes), preferred over derived ones.
    noted_latency: LatencySummary,
}

/// How many malformed line numbers are kept as examples.
const MALFORMED_EXAMPLES: usize = 5;

impl TraceSummarizer {
    /// A summariser pricing usage with `prices`; `model` overrides the model the trace names.
    pub fn new(prices: Arc<PriceTable>, model: Option<String>) -> Self {
        TraceSummarizer {
            prices,
            model_override: model,
            transcription_model: None,
            usages: Vec::new(),
            transcriptions: Vec::new(),
            tracker: LatencyTracker::new(),
            summary: TraceSummary::default(),
            response_in_turn: false,
            calls: HashMap::new(),
            call_received_at: HashMap::new(),
            seen_responses: HashSet::new(),
            last_t: Duration::ZERO,
            noted_latency: LatencySummary::default(),
        }
    }

    /// Reads every line of `reader`. Only I/O errors fail; bad lines are counted, and so are
    /// lines over [`MAX_TRACE_LINE_BYTES`], which are skipped without being held in memory.
    pub fn read(self, reader: impl BufRead) -> io::Result<TraceSummary> {
        self.read_lines_of_at_most(reader, MAX_TRACE_LINE_BYTES)
    }

    fn read_lines_of_at_most(
        mut self,
        mut reader: impl BufRead,
        max: u64,
    ) -> io::Result<TraceSummary> {
        let mut buf = Vec::new();
        while let Some(fits) = next_line(&mut reader, &mut buf, max)? {
            match std::str::from_utf8(&buf) {
                Ok(line) if fits => self.line(line),
                _ => {
                    self.summary.lines += 1;
                    self.malformed();
                }
            }
        }
        Ok(self.finish())
    }

    /// Takes in one line.
    pub fn line(&mut self, line: &str) {
        self.summary.lines += 1;
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let Ok(Value::Object(record)) = serde_json::from_str::<Value>(line) else {
            self.malformed();
            return;
        };
        let t = record
            .get("t_ms")
            .and_then(Value::as_f64)
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1e3));
        match (
            record.get("dir").and_then(Value::as_str),
            record.get("event"),
        ) {
            (Some("local"), _) => {
                let kind = record
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("(no kind)");
                *self.summary.notes.entry(kind.to_owned()).or_default() += 1;
                if kind == "latency"
                    && let Some(turn) = record
                        .get("data")
                        .and_then(|d| serde_json::from_value::<TurnLatency>(d.clone()).ok())
                {
                    self.noted_latency.add(&turn);
                }
            }
            (Some(dir @ ("sent" | "received")), Some(event @ Value::Object(_))) => {
                self.event(dir == "sent", event, t);
            }
            (None, _) if record.get("type").and_then(Value::as_str).is_some() => {
                let event = Value::Object(record);
                self.event(false, &event, t);
            }
            _ => self.malformed(),
        }
    }

    fn malformed(&mut self) {
        self.summary.malformed += 1;
        if self.summary.malformed_examples.len() < MALFORMED_EXAMPLES {
            self.summary.malformed_examples.push(self.summary.lines);
        }
    }

    fn event(&mut self, sent: bool, event: &Value, t: Option<Duration>) {
        self.summary.events += 1;
        if t.is_some() {
            self.summary.timestamps = true;
        }
        let at = t.unwrap_or(self.last_t);
        self.last_t = self.last_t.max(at);
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("(no type)")
            .to_owned();
        let count = self.summary.by_type.entry(kind.clone()).or_default();
        if sent {
            count.sent += 1;
            self.client_event(&kind, event, at);
        } else {
            count.received += 1;
            self.server_event(&kind, event, at);
        }
    }

    fn client_event(&mut self, kind: &str, event: &Value, at: Duration) {
        match kind {
            "conversation.item.create" => {
                let item = event.get("item").unwrap_or(&Value::Null);
                match item.get("type").and_then(Value::as_str) {
                    Some("function_call_output") => {
                        let call_id = str_of(item, "call_id");
                        self.tracker.call_output_sent(at, call_id);
                        if let Some(&index) = self.calls.get(call_id)
                            && let Some(call) = self.summary.tool_calls.get_mut(index)
                            && !call.answered
                        {
                            call.answered = true;
                            call.duration = self
                                .call_received_at
                                .get(call_id)
                                .map(|received| at.saturating_sub(*received));
                        }
                    }
                    Some("message") if str_of(item, "role") == "user" => {
                        self.turn_started(at, TurnStart::Text);
                    }
                    _ => {}
                }
            }
            "input_audio_buffer.commit" => self.turn_started(at, TurnStart::Speech),
            "response.create" => {
                if !self.tracker.in_turn() {
                    self.turn_started(at, TurnStart::Request);
                }
                self.tracker.response_create_sent(at);
            }
            _ => {}
        }
    }

    fn server_event(&mut self, kind: &str, event: &Value, at: Duration) {
        match kind {
            "response.output_text.delta"
            | "response.text.delta"
            | "response.output_audio_transcript.delta"
            | "response.audio_transcript.delta" => {
                self.tracker.delta(at, false);
                return;
            }
            "response.output_audio.delta" | "response.audio.delta" => {
                self.tracker.delta(at, true);
                return;
            }
            _ => {}
        }
        if let Ok(decoded) = ServerEvent::decode(&event.to_string())
            && decoded.is_unknown()
        {
            *self
                .summary
                .unknown_types
                .entry(kind.to_owned())
                .or_default() += 1;
        }
        match kind {
            "session.created" | "session.updated" => {
                if kind == "session.created" {
                    // A new connection: ids (responses, calls) are only unique within one, and
                    // a file may hold several sessions (e.g. every scenario of an offline run).
                    self.calls.clear();
                    self.call_received_at.clear();
                    self.seen_responses.clear();
                }
                let session = event.get("session").unwrap_or(&Value::Null);
                if self.summary.model.is_none()
                    && let Some(model) = session.get("model").and_then(Value::as_str)
                {
                    self.summary.model = Some(model.to_owned());
                }
                let transcription = session
                    .pointer("/audio/input/transcription/model")
                    .or_else(|| session.pointer("/input_audio_transcription/model"))
                    .and_then(Value::as_str);
                if let Some(model) = transcription {
                    self.transcription_model = Some(model.to_owned());
                }
            }
            "input_audio_buffer.speech_stopped" => self.turn_started(at, TurnStart::Speech),
            "conversation.item.added" | "conversation.item.created" => {
                // Plain dumps have no client side: a user item the server confirms is the
                // only sign of a turn. (In project traces the sent item started it already.)
                let item = event.get("item").unwrap_or(&Value::Null);
                if item.get("type").and_then(Value::as_str) == Some("message")
                    && str_of(item, "role") == "user"
                {
                    let audio =
                        item.get("content")
                            .and_then(Value::as_array)
                            .is_some_and(|parts| {
                                parts.iter().any(|p| str_of(p, "type").contains("audio"))
                            });
                    let start = if audio {
                        TurnStart::Speech
                    } else {
                        TurnStart::Text
                    };
                    self.turn_started(at, start);
                }
            }
            "response.created" => self.response_in_turn = true,
            "response.output_item.done" => {
                if let Some(item) = event.get("item") {
                    self.call_item(item, at);
                }
            }
            "response.done" => {
                let response = event.get("response").unwrap_or(&Value::Null);
                let id = str_of(response, "id");
                if !id.is_empty() && !self.seen_responses.insert(id.to_owned()) {
                    return;
                }
                self.summary.responses += 1;
                self.response_in_turn = true;
                if let Some(items) = response.get("output").and_then(Value::as_array) {
                    for item in items {
                        self.call_item(item, at);
                    }
                }
                self.tracker.response_done(at);
                if let Some(usage) = response
                    .get("usage")
                    .filter(|u| u.is_object())
                    .and_then(|u| serde_json::from_value::<Usage>(u.clone()).ok())
                {
                    self.usages.push(usage);
                }
            }
            "conversation.item.input_audio_transcription.completed" => {
                if let Some(usage) = event
                    .get("usage")
                    .and_then(|u| serde_json::from_value::<TranscriptionUsage>(u.clone()).ok())
                {
                    self.transcriptions.push(usage);
                }
            }
            _ => {}
        }
    }

    fn call_item(&mut self, item: &Value, at: Duration) {
        if str_of(item, "type") != "function_call" {
            return;
        }
        let status = str_of(item, "status");
        if !(status.is_empty() || status == "completed") {
            return;
        }
        let call_id = str_of(item, "call_id");
        if call_id.is_empty() || self.calls.contains_key(call_id) {
            return;
        }
        let name = str_of(item, "name");
        self.calls
            .insert(call_id.to_owned(), self.summary.tool_calls.len());
        self.call_received_at.insert(call_id.to_owned(), at);
        self.summary.tool_calls.push(ToolCallRecord {
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            duration: None,
            answered: false,
        });
        self.tracker.call_received(at, call_id, name);
    }

    fn turn_started(&mut self, at: Duration, start: TurnStart) {
        // One user turn may show several signs (speech stopped, then the committed item):
        // only a sign after the turn's response started begins a new turn.
        if self.tracker.in_turn() && !self.response_in_turn {
            return;
        }
        self.summary.turns += 1;
        self.response_in_turn = false;
        if let Some(turn) = self.tracker.turn_started(at, start) {
            self.summary.latency.add(&turn);
        }
    }

    /// The summary of everything read.
    pub fn finish(mut self) -> TraceSummary {
        if let Some(turn) = self.tracker.finish_at_last_event() {
            self.summary.latency.add(&turn);
        }
        if !self.noted_latency.is_empty() {
            // The session measured its turns itself, with the tools' own end times: exact.
            self.summary.latency = std::mem::take(&mut self.noted_latency);
        } else if !self.summary.timestamps {
            // Without timestamps every duration is zero: not a measurement.
            self.summary.latency = LatencySummary::default();
        }
        if let Some(model) = &self.model_override {
            self.summary.model = Some(model.clone());
        }
        let model = self.summary.model.clone().unwrap_or_default();
        let mut meter = CostMeter::new(
            &self.prices,
            &model,
            self.transcription_model.as_deref(),
            None,
        );
        for usage in &self.usages {
            meter.record_response(usage);
        }
        for usage in &self.transcriptions {
            meter.record_transcription(usage);
        }
        self.summary.usage = meter.totals().clone();
        self.summary.priced_as = meter.priced_as().map(str::to_owned);
        self.summary.prices_taken = self.prices.taken.clone();
        self.summary
    }
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Reads the next line (with its `\n`) into `buf`, keeping at most `max` bytes of it: `None` at
/// the end, `Some(false)` for a longer line (its rest is skipped, `buf` left empty).
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: u64) -> io::Result<Option<bool>> {
    buf.clear();
    let mut fits = true;
    let mut started = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if chunk.is_empty() {
            return Ok(started.then_some(fits));
        }
        started = true;
        let (used, ends) = match chunk.iter().position(|&b| b == b'\n') {
            Some(newline) => (newline + 1, true),
            None => (chunk.len(), false),
        };
        if fits && (buf.len() + used) as u64 <= max {
            buf.extend_from_slice(&chunk[..used]);
        } else {
            fits = false;
            buf.clear();
        }
        reader.consume(used);
        if ends {
            return Ok(Some(fits));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn summarize(lines: &[Value], extra: &str) -> TraceSummary {
        let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        text.push_str(extra);
        TraceSummarizer::new(PriceTable::shared(), None)
            .read(text.as_bytes())
            .unwrap()
    }

    fn sent(t: f64, event: Value) -> Value {
        json!({"ts_ms": 1, "t_ms": t, "dir": "sent", "event": event})
    }

    fn received(t: f64, event: Value) -> Value {
        json!({"ts_ms": 1, "t_ms": t, "dir": "received", "event": event})
    }

    #[test]
    fn project_trace_gives_turns_tools_latency_and_cost() {
        let usage = json!({"input_tokens": 1000, "output_tokens": 100,
            "input_token_details": {"text_tokens": 1000},
            "output_token_details": {"text_tokens": 100}});
        let lines = [
            received(
                1.0,
                json!({"type": "session.created", "session": {"model": "gpt-realtime-2025-08-28"}}),
            ),
            sent(
                10.0,
                json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": []}}),
            ),
            sent(10.1, json!({"type": "response.create"})),
            received(
                11.0,
                json!({"type": "response.created", "response": {"id": "r1"}}),
            ),
            received(
                30.0,
                json!({"type": "response.output_text.delta", "delta": "hi"}),
            ),
            received(
                31.0,
                json!({"type": "response.output_item.done", "item": {"type": "function_call", "status": "completed", "call_id": "c1", "name": "lookup", "arguments": "{}"}}),
            ),
            received(
                32.0,
                json!({"type": "response.done", "response": {"id": "r1", "status": "completed", "output": [], "usage": usage}}),
            ),
            sent(
                36.0,
                json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c1", "output": "x"}}),
            ),
            sent(36.5, json!({"type": "response.create"})),
            received(
                40.0,
                json!({"type": "response.done", "response": {"id": "r2", "status": "completed", "output": [], "usage": usage}}),
            ),
            received(41.0, json!({"type": "brand.new.event"})),
            json!({"ts_ms": 1, "t_ms": 42.0, "dir": "local", "kind": "usage", "data": {}}),
        ];
        let s = summarize(&lines, "not json\n[1,2]\n{\"neither\": true}\n\n");
        assert_eq!(s.events, 11);
        assert_eq!(s.malformed, 3);
        assert_eq!(s.malformed_examples, vec![13, 14, 15]);
        assert_eq!(s.notes.get("usage"), Some(&1));
        assert_eq!(s.by_type["response.create"].sent, 2);
        assert_eq!(s.by_type["response.done"].received, 2);
        assert_eq!(s.unknown_types.get("brand.new.event"), Some(&1));
        assert_eq!((s.turns, s.responses), (1, 2));
        assert_eq!(s.tool_calls.len(), 1);
        assert_eq!(s.tool_calls[0].duration, Some(Duration::from_millis(5)));
        assert!(s.timestamps);
        assert_eq!(s.latency.first_delta.kept(), [Duration::from_millis(20)]);
        // Derived from the wire: the last output sent (36 ms) → the create (36.5 ms).
        assert_eq!(s.latency.overhead.kept(), [Duration::from_micros(500)]);
        assert_eq!(s.priced_as.as_deref(), Some("gpt-realtime"));
        assert_eq!(s.usage.responses, 2);
        // 2 × (1000 × $4 + 100 × $16) / 1M
        assert!((s.usage.known_cost().unwrap() - 0.0112).abs() < 1e-9);
    }

    #[test]
    fn plain_dumps_count_without_latency() {
        let lines = [
            json!({"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 1, "item_id": "u1"}),
            json!({"type": "conversation.item.created", "item": {"type": "message", "role": "user", "content": [{"type": "input_audio"}]}}),
            json!({"type": "response.audio.delta", "delta": "AAAA"}),
            json!({"type": "response.done", "response": {"id": "r1", "output": [{"type": "function_call", "call_id": "c9", "name": "f", "status": "completed"}], "usage": null}}),
        ];
        let s = summarize(&lines, "");
        assert_eq!(s.turns, 1, "speech_stopped and the user item are one turn");
        assert!(!s.timestamps);
        assert!(s.latency.is_empty());
        assert_eq!(s.tool_calls.len(), 1);
        assert!(!s.tool_calls[0].answered);
        assert_eq!(s.usage.responses, 0);
        assert!(s.unknown_types.is_empty());
    }

    #[test]
    fn invalid_utf8_is_a_malformed_line() {
        let bytes: &[u8] = b"\xff\xfe\n{\"type\":\"session.created\",\"session\":{}}\n";
        let s = TraceSummarizer::new(PriceTable::shared(), None)
            .read(bytes)
            .unwrap();
        assert_eq!((s.lines, s.malformed, s.events), (2, 1, 1));
    }

    #[test]
    fn lines_over_the_limit_are_skipped_not_held() {
        let event = "{\"type\":\"session.created\",\"session\":{}}\n";
        let long = format!("{{\"type\":\"x\",\"pad\":\"{}\"}}\n", "y".repeat(100));
        let text = format!("{long}{event}{}", long.trim_end());
        // A reader handing out 7 bytes at a time, so lines span many buffers.
        let reader = io::BufReader::with_capacity(7, text.as_bytes());
        let s = TraceSummarizer::new(PriceTable::shared(), None)
            .read_lines_of_at_most(reader, event.len() as u64)
            .unwrap();
        assert_eq!((s.lines, s.malformed, s.events), (3, 2, 1));
    }
}
