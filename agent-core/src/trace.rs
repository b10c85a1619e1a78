//! Trace files: every wire event in both directions, one JSON object a line, secrets redacted.
//!
//! A line looks like `{"ts_ms":1764090000123,"t_ms":12.5,"dir":"sent","event":{...}}`. Audio
//! payloads are replaced by their size unless audio tracing is on, and anything that can hold a
//! credential — `Authorization` values, API keys, ephemeral `client_secret`s, MCP tool headers —
//! is replaced by `"[redacted]"` before it reaches the disk.

use std::{
    io::{self, BufWriter, Write},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
        mpsc::{self, SyncSender},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Map, Value, json};

use crate::batch_queue::{JobQueue, Next, Refused, StopOnExit, Urgency};
use crate::session::{Direction, WireObserver};

/// The replacement for every secret.
pub const REDACTED: &str = "[redacted]";

/// How many records may wait for the trace thread. Past it records are dropped (and counted in
/// the trace) rather than making the session wait for a slow disk.
const QUEUE: usize = 8192;

/// The most records the thread takes (and writes with one flush) at a time.
const BATCH: usize = 512;

/// How long a record may wait before the thread writes it. The thread sleeps until then (or
/// a full batch, or a flush) instead of waking for every frame: a turn's twenty frames cost
/// one wake-up and one `write` instead of twenty of each, and the file still follows the
/// session within a tenth of a second.
const LINGER: Duration = Duration::from_millis(100);

/// How long [`TraceWriter::flush`] waits for the trace thread.
const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// One record on its way to the trace thread, as cheap as possible to make on the session
/// task: the frame's text is copied, and parsing, redaction and the write happen on the thread.
enum Record {
    Frame {
        ts_ms: u64,
        t_ms: f64,
        direction: Direction,
        text: String,
    },
    Note {
        ts_ms: u64,
        t_ms: f64,
        kind: String,
        data: Value,
    },
    /// Answers once everything queued before it is written and flushed.
    Flush(SyncSender<()>),
}

/// Writes a trace file as a session runs. The file is readable by its owner only: it holds the
/// conversation.
///
/// The session task only timestamps each frame and queues a copy; a thread named
/// `agent-trace` parses, redacts and writes it in batches (at least every 100 ms), so tracing
/// costs the session little and a slow disk never delays it. If the disk falls more than 8192
/// records behind, records are dropped and a `trace_dropped` note says how many. Dropping the
/// writer (or [`TraceWriter::flush`]) writes everything still queued.
pub struct TraceWriter {
    records: Arc<JobQueue<Record>>,
    include_audio: bool,
    thread: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
    started: Instant,
}

impl std::fmt::Debug for TraceWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceWriter")
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl TraceWriter {
    /// Creates (or truncates) `path`. Audio payloads are written only if `include_audio`.
    pub fn create(path: impl AsRef<Path>, include_audio: bool) -> io::Result<Self> {
        let out = BufWriter::new(crate::private_file::create(path.as_ref())?);
        Self::with_output(out, include_audio)
    }

    /// A writer whose thread writes to `out`.
    fn with_output(out: impl Write + Send + 'static, include_audio: bool) -> io::Result<Self> {
        let records = Arc::new(JobQueue::new(BATCH, QUEUE));
        let stop = StopOnExit(records.clone());
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = dropped.clone();
        let thread = std::thread::Builder::new()
            .name("agent-trace".to_owned())
            .spawn(move || write_records(&stop.0, out, include_audio, &counter))?;
        Ok(TraceWriter {
            records,
            include_audio,
            thread: Some(thread),
            dropped,
            started: Instant::now(),
        })
    }

    /// Writes a record that is not a wire frame, e.g. a usage or latency summary.
    pub fn note(&self, kind: &str, data: Value) {
        self.send(Record::Note {
            ts_ms: unix_ms(),
            t_ms: self.elapsed_ms(),
            kind: kind.to_owned(),
            data,
        });
    }

    /// Waits (at most five seconds) until everything queued so far is on disk.
    pub fn flush(&self) {
        let (done, finished) = mpsc::sync_channel(1);
        if self
            .records
            .push(Record::Flush(done), Urgency::Awaited)
            .is_ok()
            && finished.recv_timeout(FLUSH_DEADLINE).is_err()
        {
            tracing::warn!("the trace file did not flush within {FLUSH_DEADLINE:?}");
        }
    }

    fn send(&self, record: Record) {
        if let Err(Refused::Full(_)) = self.records.push(record, Urgency::Deferred) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn elapsed_ms(&self) -> f64 {
        (self.started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
    }
}

impl Drop for TraceWriter {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has written what is queued.
        self.records.close();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the trace thread panicked; the trace file may be incomplete");
        }
    }
}

impl WireObserver for TraceWriter {
    fn note(&self, kind: &str, data: &Value) {
        TraceWriter::note(self, kind, data.clone());
    }

    fn frame(&self, direction: Direction, text: &str) {
        // An audio payload the trace leaves out is cut here, not copied to the thread: a
        // 100 ms delta is 6 KB of base64 to allocate, copy and free for nothing.
        let text = (!self.include_audio)
            .then(|| without_audio_payload(text))
            .flatten()
            .unwrap_or_else(|| text.to_owned());
        self.send(Record::Frame {
            ts_ms: unix_ms(),
            t_ms: self.elapsed_ms(),
            direction,
            text,
        });
    }
}

/// The trace thread: writes each record as one line, flushing after every batch, so the file
/// is readable as the session runs and complete when the writer is dropped.
fn write_records(
    queue: &JobQueue<Record>,
    mut out: impl Write,
    include_audio: bool,
    dropped: &AtomicU64,
) {
    let mut failed = false;
    while let Next::Batch(batch) = queue.next_batch(LINGER, None) {
        for record in batch {
            let lost = dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                let line = json!({
                    "ts_ms": unix_ms(), "dir": "local", "kind": "trace_dropped",
                    "data": {"records": lost},
                });
                write_line(&mut out, &line, &mut failed);
            }
            match record {
                Record::Frame {
                    ts_ms,
                    t_ms,
                    direction,
                    text,
                } => match traced_event(&text, include_audio) {
                    Event::Text(event) => {
                        let t_ms = serde_json::to_string(&t_ms).unwrap_or_else(|_| "0".into());
                        let line = format!(
                            r#"{{"ts_ms":{ts_ms},"t_ms":{t_ms},"dir":"{}","event":{event}}}"#,
                            direction.as_str()
                        );
                        write_text(&mut out, &line, &mut failed);
                    }
                    Event::Value(event) => {
                        let line = json!({
                            "ts_ms": ts_ms, "t_ms": t_ms, "dir": direction.as_str(),
                            "event": event,
                        });
                        write_line(&mut out, &line, &mut failed);
                    }
                },
                Record::Note {
                    ts_ms,
                    t_ms,
                    kind,
                    data,
                } => {
                    let line = json!({
                        "ts_ms": ts_ms, "t_ms": t_ms, "dir": "local", "kind": kind, "data": data,
                    });
                    write_line(&mut out, &line, &mut failed);
                }
                Record::Flush(done) => {
                    flush(&mut out, &mut failed);
                    let _ = done.send(());
                }
            }
        }
        flush(&mut out, &mut failed);
    }
}

/// A frame's event as its trace line shows it.
#[derive(Debug)]
enum Event<'t> {
    /// The frame's own text: redacting would change nothing (most frames).
    Text(&'t str),
    /// Parsed and redacted, or its size when it is not JSON.
    Value(Value),
}

/// `text` is the frame as [`TraceWriter::frame`] queued it (its audio payload cut, when the
/// trace leaves audio out).
fn traced_event(text: &str, include_audio: bool) -> Event<'_> {
    if crate::trace_scan::unchanged_by_redact(text, include_audio) {
        return Event::Text(text);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(mut value) => {
            redact(&mut value, include_audio);
            Event::Value(value)
        }
        Err(_) => Event::Value(json!({ "unparsed_frame_bytes": text.len() })),
    }
}

/// The frame's text with its base64 audio already replaced by its size, when it is an audio
/// event whose payload can be cut out of the text as it stands. A 100 ms delta is 6 KB of
/// base64 that the trace drops: parsing it into a string, only to replace it, was most of a
/// trace's cost. What is left is parsed and redacted as usual.
///
/// The event is recognised by the first `"type":"..."` in the text, which is the event's own
/// in every frame seen; if a contrived frame nests another first, the cut drops that audio-like
/// value instead. Either way it only removes data (what is left is redacted as usual), so no
/// secret can reach the trace through it.
fn without_audio_payload(text: &str) -> Option<String> {
    const TYPE: &str = r#""type":""#;
    let kind = &text[text.find(TYPE)? + TYPE.len()..];
    let kind = &kind[..kind.find('"')?];
    if !is_audio_event_type(kind) {
        return None;
    }
    let (key, _) = [r#""delta":""#, r#""audio":""#]
        .iter()
        .filter_map(|key| text.find(key).map(|at| (at + key.len(), ())))
        .min()?;
    let body = &text[key..];
    let end = body.find('"')?;
    // Base64 has no escapes; a backslash means this is not the payload to cut.
    if body[..end].contains('\\') {
        return None;
    }
    Some(format!(
        "{}{{\"omitted_base64_chars\":{end}}}{}",
        &text[..key - 1],
        &body[end + 1..]
    ))
}

/// Whether `event` is one whose payload [`redact`] omits.
fn is_audio_event(event: &Value) -> bool {
    let kind = event
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    is_audio_event_type(kind)
}

fn is_audio_event_type(kind: &str) -> bool {
    kind.contains("audio.delta") || kind == "input_audio_buffer.append"
}

/// Whether a `type` value makes [`redact`] omit a `delta` or `audio` beside it or under it: an
/// audio event, or an audio content part.
pub(crate) fn is_audio_type(kind: &str) -> bool {
    is_audio_event_type(kind) || matches!(kind, "input_audio" | "output_audio" | "audio")
}

fn write_line(out: &mut impl Write, line: &Value, failed: &mut bool) {
    write_text(out, &line.to_string(), failed);
}

fn write_text(out: &mut impl Write, line: &str, failed: &mut bool) {
    // Known secret values go whatever field they hide in (a key the server echoed back).
    let text = crate::redact::scrub(line);
    let result = out
        .write_all(text.as_bytes())
        .and_then(|()| out.write_all(b"\n"));
    report(result, failed);
}

fn flush(out: &mut impl Write, failed: &mut bool) {
    report(out.flush(), failed);
}

/// A trace must never take the session down: the first I/O error is logged, not raised.
fn report(result: io::Result<()>, failed: &mut bool) {
    if let Err(err) = result
        && !std::mem::replace(failed, true)
    {
        tracing::warn!("could not write the trace: {err}");
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Keys whose values are credentials wherever they appear.
pub(crate) const SECRET_KEYS: &[&str] = &[
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
    let audio_event = is_audio_event(value);
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
    // (`trace_scan` decides which frames skip this function: keep it in step with what is
    // redacted here.)
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
    fn audio_cut_from_the_text_reads_as_redact_would_write_it() {
        let cases = [
            (
                r#"{"type":"response.output_audio.delta","event_id":"e1","delta":"QUJDRA==","item_id":"i"}"#,
                true,
            ),
            (
                r#"{"type":"input_audio_buffer.append","audio":"QUJD"}"#,
                true,
            ),
            // Not an audio event, an escaped payload, or a payload under a nested key: each is
            // parsed whole, and the trace reads the same either way.
            (
                r#"{"type":"response.output_text.delta","delta":"hello"}"#,
                false,
            ),
            (
                r#"{"type":"response.output_audio.delta","delta":"a\"b","x":1}"#,
                false,
            ),
            (
                r#"{"type":"response.output_audio.delta","meta":{"delta":"x"},"delta":"QUJD","authorization":"Bearer sk-1"}"#,
                true,
            ),
        ];
        for (text, cut) in cases {
            assert_traced_as_redacted(text);
            assert_eq!(without_audio_payload(text).is_some(), cut, "{text}");
        }
    }

    /// What the trace writes for `text` (with and without audio) reads as `redact` would
    /// write it, whichever path it took.
    fn assert_traced_as_redacted(text: &str) {
        for include_audio in [false, true] {
            let queued = (!include_audio)
                .then(|| without_audio_payload(text))
                .flatten()
                .unwrap_or_else(|| text.to_owned());
            let traced = match traced_event(&queued, include_audio) {
                Event::Text(raw) => serde_json::from_str(raw).unwrap(),
                Event::Value(value) => value,
            };
            let expected = match serde_json::from_str::<Value>(text) {
                Ok(mut value) => {
                    redact(&mut value, include_audio);
                    value
                }
                Err(_) => json!({ "unparsed_frame_bytes": queued.len() }),
            };
            assert_eq!(traced, expected, "{text} (audio {include_audio})");
        }
    }

    #[test]
    fn frames_written_as_they_came_are_those_redact_leaves_alone() {
        let unchanged = [
            r#"{"type":"response.output_audio_transcript.delta","delta":"One plus"}"#,
            r#"{"type":"response.created","response":{"id":"r1","output":[],"usage":{"input_tokens":3}}}"#,
            r#"{"type":"response.output_text.delta","delta":"hi"}"#,
            r#"[1,2,{"a":null}]"#,
            r#"{"type":"response.function_call_arguments.done","arguments":"{\"expression\":\"1+1\"}"}"#,
        ];
        for text in unchanged {
            assert!(
                matches!(traced_event(text, false), Event::Text(_)),
                "{text}"
            );
            assert_traced_as_redacted(text);
        }
        let redacted = [
            r#"{"type":"session.update","session":{"client_secret":{"value":"ek_1"}}}"#,
            r#"{"type":"x","nested":[{"Authorization":"Bearer sk-1"}]}"#,
            r#"{"type":"x","mcp":{"headers":{"X-Key":"k"}}}"#,
            r#"{"type":"x","token":"t-1"}"#,
            r#"{"type":"x","\u0074oken":"t-1"}"#,
            r#"{"type":"x","url":"https:\/\/x"}"#,
            r#"{"type":"conversation.item.create","item":{"content":[{"type":"input_audio","audio":"QUJD"}]}}"#,
            r#"{"type":"x","content":[{"type":"output_audio","delta":"QUJD"}]}"#,
            r#"{"type":{"weird":true},"delta":"QUJD"}"#,
            "{\"type\":\"x\",\n\"a\":1}",
            r#"{"type":"x","a":1"#,
            "not json",
        ];
        for text in redacted {
            let queued = without_audio_payload(text).unwrap_or_else(|| text.to_owned());
            assert!(
                matches!(traced_event(&queued, false), Event::Value(_)),
                "{text}"
            );
            assert_traced_as_redacted(text);
        }
    }

    #[test]
    fn writes_one_line_per_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let writer = TraceWriter::create(&path, false).unwrap();
        writer.frame(Direction::Sent, r#"{"type":"response.create"}"#);
        writer.frame(Direction::Received, "not json");
        writer.note("usage", json!({"total_tokens": 3}));
        writer.flush();
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

    /// Output that blocks its first write until released: a disk that has stalled.
    struct StalledDisk {
        release: Option<std::sync::mpsc::Receiver<()>>,
        written: Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl Write for StalledDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(release) = self.release.take() {
                let _ = release.recv_timeout(Duration::from_secs(10));
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_disk_never_blocks_the_session_and_drops_are_counted() {
        let (release, stalled) = std::sync::mpsc::channel();
        let written = Arc::new(std::sync::Mutex::new(Vec::new()));
        let disk = StalledDisk {
            release: Some(stalled),
            written: written.clone(),
        };
        let writer = TraceWriter::with_output(disk, false).unwrap();
        // Far more frames than the queue (and the batch the stalled thread holds) can take:
        // none of these calls may wait for the disk (if one did, this loop would never end, as
        // the disk is released only after it).
        let frames = QUEUE + BATCH + 500;
        for n in 0..frames {
            writer.frame(Direction::Received, &format!(r#"{{"type":"x","n":{n}}}"#));
        }
        release.send(()).unwrap();
        drop(writer);
        let text = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let dropped: u64 = lines
            .iter()
            .filter(|l| l["kind"] == "trace_dropped")
            .map(|l| l["data"]["records"].as_u64().unwrap())
            .sum();
        let kept = lines.iter().filter(|l| l["dir"] == "received").count();
        assert!(dropped >= 500, "{dropped} dropped");
        assert_eq!(
            kept as u64 + dropped,
            frames as u64,
            "every frame written or counted"
        );
        // What was kept is in order.
        let order: Vec<u64> = lines
            .iter()
            .filter_map(|l| l["event"]["n"].as_u64())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]));
    }
}
