//! Latency per turn, from the points in time a session (or a trace) reports.
//!
//! A turn starts when the user's turn ends — `input_audio_buffer.speech_stopped`, or the moment a
//! typed message (or a commit, or a bare `response.create`) goes out — and ends when the
//! conversation is quiet again or the next turn starts. For each turn the tracker measures:
//!
//! - the time to the first response delta (text, transcript or audio) and to the first audio;
//! - each tool's round trip: the call received (its item done) → its output sent;
//! - the framework's overhead before each follow-up `response.create`: from `response.done`
//!   received (or the last tool finishing, whichever is later) to `response.create` sent — the
//!   tools' own time is not the framework's.
//!
//! The tracker is pure: it takes times as offsets from any origin, so the session runner feeds
//! it `Instant`s and `agent trace summarize` feeds it a trace's `t_ms`. Measuring never fails;
//! events out of order are ignored.

use std::{collections::HashMap, time::Duration};

use serde::{Deserialize, Serialize};

/// What ended the user's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStart {
    /// A typed message was sent.
    Text,
    /// The server's VAD heard the user stop (`speech_stopped`), or the app committed audio.
    Speech,
    /// A response was requested without new input (e.g. the model greets first).
    Request,
}

/// One tool call's round trip.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolTiming {
    /// The call's id.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// From the call received to its output sent.
    #[serde(with = "millis")]
    pub round_trip: Duration,
}

/// What one turn took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnLatency {
    /// The turn's number in the session, from 1.
    pub turn: u64,
    /// What ended the user's turn.
    pub start: TurnStart,
    /// End of the user's turn → first response delta.
    #[serde(with = "millis_opt")]
    pub first_delta: Option<Duration>,
    /// End of the user's turn → first audio delta.
    #[serde(with = "millis_opt")]
    pub first_audio: Option<Duration>,
    /// Every tool call of the turn.
    pub tools: Vec<ToolTiming>,
    /// Framework overhead before each follow-up `response.create`.
    #[serde(with = "millis_vec")]
    pub overhead: Vec<Duration>,
    /// Responses that finished in the turn.
    pub responses: u32,
    /// End of the user's turn → the end of the turn.
    #[serde(with = "millis")]
    pub total: Duration,
}

#[derive(Debug)]
struct OpenTurn {
    number: u64,
    start: TurnStart,
    at: Duration,
    first_delta: Option<Duration>,
    first_audio: Option<Duration>,
    tools: Vec<ToolTiming>,
    overhead: Vec<Duration>,
    responses: u32,
    last_event: Duration,
    /// Calls received but not answered yet.
    open_calls: HashMap<String, OpenCall>,
    /// When the latest tool finished (returned, or its output was sent).
    last_tool_end: Option<Duration>,
    /// When the latest `response.done` arrived.
    last_done: Option<Duration>,
    /// A tool finished since the last `response.create`: the next create is a follow-up.
    follow_up_owed: bool,
}

#[derive(Debug)]
struct OpenCall {
    name: String,
    received: Duration,
    /// When the tool returned, if the feeder knows it.
    finished: Option<Duration>,
}

/// Builds [`TurnLatency`] records from points in time.
#[derive(Debug, Default)]
pub struct LatencyTracker {
    turns: u64,
    open: Option<OpenTurn>,
}

impl LatencyTracker {
    /// A tracker with no turn yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The user's turn ended at `at`: a new turn starts. Returns the previous turn if it was
    /// still open (e.g. the user barged in).
    pub fn turn_started(&mut self, at: Duration, start: TurnStart) -> Option<TurnLatency> {
        let previous = self.finish(at);
        self.turns += 1;
        self.open = Some(OpenTurn {
            number: self.turns,
            start,
            at,
            first_delta: None,
            first_audio: None,
            tools: Vec::new(),
            overhead: Vec::new(),
            responses: 0,
            last_event: at,
            open_calls: HashMap::new(),
            last_tool_end: None,
            last_done: None,
            follow_up_owed: false,
        });
        previous
    }

    /// How many turns have started.
    pub fn turns(&self) -> u64 {
        self.turns
    }

    /// Whether a turn is open.
    pub fn in_turn(&self) -> bool {
        self.open.is_some()
    }

    /// A response delta arrived; `audio` for audio deltas.
    pub fn delta(&mut self, at: Duration, audio: bool) {
        let Some(turn) = self.open.as_mut() else {
            return;
        };
        let since = at.saturating_sub(turn.at);
        turn.first_delta.get_or_insert(since);
        if audio {
            turn.first_audio.get_or_insert(since);
        }
        turn.last_event = turn.last_event.max(at);
    }

    /// A function call was received (its item completed) and started.
    pub fn call_received(&mut self, at: Duration, call_id: &str, name: &str) {
        if let Some(turn) = self.open.as_mut() {
            turn.open_calls.insert(
                call_id.to_owned(),
                OpenCall {
                    name: name.to_owned(),
                    received: at,
                    finished: None,
                },
            );
            turn.last_event = turn.last_event.max(at);
        }
    }

    /// A tool returned (before its output is sent). Optional: without it the output's send time
    /// counts as the tool's end.
    pub fn call_finished(&mut self, at: Duration, call_id: &str) {
        if let Some(call) = self
            .open
            .as_mut()
            .and_then(|turn| turn.open_calls.get_mut(call_id))
        {
            call.finished = Some(at);
        }
    }

    /// A call's `function_call_output` was sent.
    pub fn call_output_sent(&mut self, at: Duration, call_id: &str) {
        let Some(turn) = self.open.as_mut() else {
            return;
        };
        let Some(call) = turn.open_calls.remove(call_id) else {
            return;
        };
        turn.tools.push(ToolTiming {
            call_id: call_id.to_owned(),
            name: call.name,
            round_trip: at.saturating_sub(call.received),
        });
        let end = call.finished.unwrap_or(at);
        turn.last_tool_end = Some(turn.last_tool_end.map_or(end, |t| t.max(end)));
        turn.follow_up_owed = true;
        turn.last_event = turn.last_event.max(at);
    }

    /// A `response.done` arrived.
    pub fn response_done(&mut self, at: Duration) {
        if let Some(turn) = self.open.as_mut() {
            turn.responses += 1;
            turn.last_done = Some(at);
            turn.last_event = turn.last_event.max(at);
        }
    }

    /// A `response.create` was sent. When a tool finished since the previous one, this is the
    /// follow-up that carries the tools' outputs, and its overhead is recorded.
    pub fn response_create_sent(&mut self, at: Duration) {
        let Some(turn) = self.open.as_mut() else {
            return;
        };
        if turn.follow_up_owed
            && let Some(done) = turn.last_done
        {
            let ready = turn.last_tool_end.map_or(done, |t| t.max(done));
            turn.overhead.push(at.saturating_sub(ready));
        }
        turn.follow_up_owed = false;
        turn.last_tool_end = None;
        turn.last_event = turn.last_event.max(at);
    }

    /// The conversation is quiet: the open turn, if any, ends at `at`.
    pub fn finish(&mut self, at: Duration) -> Option<TurnLatency> {
        let turn = self.open.take()?;
        let end = at.max(turn.last_event);
        Some(TurnLatency {
            turn: turn.number,
            start: turn.start,
            first_delta: turn.first_delta,
            first_audio: turn.first_audio,
            tools: turn.tools,
            overhead: turn.overhead,
            responses: turn.responses,
            total: end.saturating_sub(turn.at),
        })
    }

    /// Ends the open turn at its last event (the end of a trace).
    pub fn finish_at_last_event(&mut self) -> Option<TurnLatency> {
        let at = self.open.as_ref()?.last_event;
        self.finish(at)
    }
}

/// Percentiles of a set of durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// How many samples.
    pub count: usize,
    /// The median (nearest rank).
    #[serde(with = "millis")]
    pub p50: Duration,
    /// The 95th percentile (nearest rank).
    #[serde(with = "millis")]
    pub p95: Duration,
    /// The 99th percentile (nearest rank).
    #[serde(with = "millis")]
    pub p99: Duration,
    /// The largest sample.
    #[serde(with = "millis")]
    pub max: Duration,
}

impl LatencyStats {
    /// The stats of `samples`, or `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<LatencyStats> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let count = sorted.len();
        let max = *sorted.last()?;
        Some(LatencyStats {
            count,
            p50: percentile(&sorted, 50.0),
            p95: percentile(&sorted, 95.0),
            p99: percentile(&sorted, 99.0),
            max,
        })
    }
}

/// The nearest-rank percentile of sorted samples (`Duration::ZERO` when empty).
pub fn percentile(sorted: &[Duration], pct: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()) - 1)
        .copied()
        .unwrap_or_default()
}

/// How many samples of one measure a [`Samples`] keeps: every one up to this, then a uniform
/// sample of this many. 512 durations are 8 KB, and give the median and the 95th percentile
/// within a percent or two over any number of turns.
pub const SAMPLES_KEPT: usize = 512;

/// The samples of one measure over a run of any length, in bounded memory: all of them up to
/// [`SAMPLES_KEPT`], then a uniform random subset of that size (reservoir sampling), with the
/// exact count and maximum beside it. A session that runs for days keeps 8 KB per measure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    kept: Vec<Duration>,
    seen: usize,
    max: Duration,
    /// The reservoir's random state (splitmix64): deterministic, so runs compare.
    state: u64,
}

impl Samples {
    /// Adds one sample.
    pub fn push(&mut self, sample: Duration) {
        self.seen += 1;
        self.max = self.max.max(sample);
        if self.kept.len() < SAMPLES_KEPT {
            self.kept.push(sample);
            return;
        }
        // Algorithm R: the n-th sample replaces a kept one with probability kept/n.
        let slot = self.next_random() % self.seen as u64;
        if let Some(kept) = usize::try_from(slot)
            .ok()
            .and_then(|slot| self.kept.get_mut(slot))
        {
            *kept = sample;
        }
    }

    fn next_random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The samples kept: every one, in order, while no more than [`SAMPLES_KEPT`] were seen.
    pub fn kept(&self) -> &[Duration] {
        &self.kept
    }

    /// How many samples were seen.
    pub fn count(&self) -> usize {
        self.seen
    }

    /// The percentiles (estimated from the kept samples past [`SAMPLES_KEPT`]), with the exact
    /// count and maximum; `None` when empty.
    pub fn stats(&self) -> Option<LatencyStats> {
        LatencyStats::of(&self.kept).map(|stats| LatencyStats {
            count: self.seen,
            max: self.max,
            ..stats
        })
    }
}

impl Extend<Duration> for Samples {
    fn extend<T: IntoIterator<Item = Duration>>(&mut self, samples: T) {
        for sample in samples {
            self.push(sample);
        }
    }
}

/// Many turns' latencies, for an end-of-run summary, in bounded memory (see [`Samples`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencySummary {
    /// Turns seen.
    pub turns: usize,
    /// End of user turn → first delta, per turn.
    pub first_delta: Samples,
    /// End of user turn → first audio, per turn with audio.
    pub first_audio: Samples,
    /// Every tool round trip.
    pub tool_round_trips: Samples,
    /// Round trips by tool name.
    pub by_tool: std::collections::BTreeMap<String, Samples>,
    /// Every framework overhead sample.
    pub overhead: Samples,
}

impl LatencySummary {
    /// Adds one turn.
    pub fn add(&mut self, turn: &TurnLatency) {
        self.turns += 1;
        self.first_delta.extend(turn.first_delta);
        self.first_audio.extend(turn.first_audio);
        for tool in &turn.tools {
            self.tool_round_trips.push(tool.round_trip);
            match self.by_tool.get_mut(&tool.name) {
                Some(samples) => samples.push(tool.round_trip),
                None => {
                    let mut samples = Samples::default();
                    samples.push(tool.round_trip);
                    self.by_tool.insert(tool.name.clone(), samples);
                }
            }
        }
        self.overhead.extend(turn.overhead.iter().copied());
    }

    /// Adds another summary's samples (its kept ones).
    pub fn merge(&mut self, other: &LatencySummary) {
        self.turns += other.turns;
        self.first_delta
            .extend(other.first_delta.kept().iter().copied());
        self.first_audio
            .extend(other.first_audio.kept().iter().copied());
        self.tool_round_trips
            .extend(other.tool_round_trips.kept().iter().copied());
        for (name, samples) in &other.by_tool {
            self.by_tool
                .entry(name.clone())
                .or_default()
                .extend(samples.kept().iter().copied());
        }
        self.overhead.extend(other.overhead.kept().iter().copied());
    }

    /// Whether nothing was measured.
    pub fn is_empty(&self) -> bool {
        self.turns == 0
    }

    /// Printable lines: one per measure that has samples, with p50/p95/max.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut add = |label: &str, samples: &Samples| {
            if let Some(s) = samples.stats() {
                lines.push(format!(
                    "{label:<34} p50 {:>9}  p95 {:>9}  max {:>9}  (n={})",
                    format_latency(s.p50),
                    format_latency(s.p95),
                    format_latency(s.max),
                    s.count
                ));
            }
        };
        add("end of user turn → first delta", &self.first_delta);
        add("end of user turn → first audio", &self.first_audio);
        add("tool round trip (all tools)", &self.tool_round_trips);
        for (name, samples) in &self.by_tool {
            add(&format!("  {name}"), samples);
        }
        add("framework overhead (done → create)", &self.overhead);
        lines
    }
}

/// `812 µs`, `12.3 ms`, `1.25 s`.
pub fn format_latency(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// Durations as fractional milliseconds in JSON (traces are read by people and scripts).
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(super::ms(*d))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(super::from_ms(f64::deserialize(d)?))
    }
}

mod millis_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::ms(*d)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(super::from_ms))
    }
}

mod millis_vec {
    use serde::{Deserialize, Deserializer, Serializer, ser::SerializeSeq};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for d in v {
            seq.serialize_element(&super::ms(*d))?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Ok(Vec::<f64>::deserialize(d)?
            .into_iter()
            .map(super::from_ms)
            .collect())
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn from_ms(ms: f64) -> Duration {
    if ms.is_finite() && ms > 0.0 {
        Duration::from_secs_f64(ms / 1e3)
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn samples_stay_bounded_and_keep_the_exact_count_and_max() {
        let mut samples = Samples::default();
        for n in 1..=100u64 {
            samples.push(Duration::from_millis(n));
        }
        // Below the cap every sample is kept, in order: exact percentiles.
        assert_eq!(samples.kept().len(), 100);
        let stats = samples.stats().unwrap();
        assert_eq!(stats.p50, Duration::from_millis(50));
        assert_eq!((stats.count, stats.max), (100, Duration::from_millis(100)));
        // Past it, memory stays put and the estimate stays close.
        for n in 101..=100_000u64 {
            samples.push(Duration::from_micros(n * 1000 % 1_000_000 + 1));
        }
        assert_eq!(samples.kept().len(), SAMPLES_KEPT);
        let stats = samples.stats().unwrap();
        assert_eq!(stats.count, 100_000);
        assert_eq!(stats.max, Duration::from_micros(999_001));
        let p50 = stats.p50.as_secs_f64();
        assert!((0.40..0.60).contains(&p50), "p50 {p50} of a uniform 0..1 s");
        assert!(Samples::default().stats().is_none());
    }
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn measures_a_turn_with_two_tools() {
        let mut t = LatencyTracker::new();
        assert_eq!(t.turn_started(ms(100), TurnStart::Text), None);
        t.delta(ms(150), false);
        t.call_received(ms(160), "c1", "lookup");
        t.call_received(ms(161), "c2", "search");
        t.call_finished(ms(170), "c1");
        t.call_output_sent(ms(171), "c1");
        t.response_done(ms(180));
        t.call_finished(ms(200), "c2");
        t.call_output_sent(ms(201), "c2");
        t.response_create_sent(ms(202));
        t.delta(ms(260), true);
        t.response_done(ms(300));
        let turn = t.finish(ms(301)).unwrap();
        assert_eq!(turn.turn, 1);
        assert_eq!(turn.first_delta, Some(ms(50)));
        assert_eq!(turn.first_audio, Some(ms(160)));
        let trips: Vec<_> = turn.tools.iter().map(|t| t.round_trip).collect();
        assert_eq!(trips, vec![ms(11), ms(40)]);
        // The follow-up went out 2 ms after the last tool returned.
        assert_eq!(turn.overhead, vec![ms(2)]);
        assert_eq!(turn.responses, 2);
        assert_eq!(turn.total, ms(201));
        assert_eq!(t.finish(ms(400)), None);
    }

    #[test]
    fn tools_done_before_response_done_count_from_the_done() {
        let mut t = LatencyTracker::new();
        t.turn_started(ms(0), TurnStart::Speech);
        t.call_received(ms(10), "c1", "x");
        // Only output times are known (a trace): the tool ends when its output is sent.
        t.call_output_sent(ms(12), "c1");
        t.response_done(ms(20));
        t.response_create_sent(ms(21));
        let turn = t.finish(ms(30)).unwrap();
        assert_eq!(turn.overhead, vec![ms(1)]);
    }

    #[test]
    fn a_create_without_tools_is_not_overhead_and_barge_in_closes_the_turn() {
        let mut t = LatencyTracker::new();
        t.turn_started(ms(0), TurnStart::Text);
        t.response_create_sent(ms(1));
        t.response_done(ms(5));
        let previous = t.turn_started(ms(7), TurnStart::Speech).unwrap();
        assert!(previous.overhead.is_empty());
        assert_eq!(previous.first_delta, None);
        assert!(t.in_turn());
        // Events outside a turn, and for unknown calls, are ignored.
        let mut idle = LatencyTracker::new();
        idle.delta(ms(1), true);
        idle.call_output_sent(ms(2), "nope");
        assert_eq!(idle.finish(ms(3)), None);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(ms).collect();
        let s = LatencyStats::of(&samples).unwrap();
        assert_eq!(
            (s.p50, s.p95, s.p99, s.max),
            (ms(50), ms(95), ms(99), ms(100))
        );
        assert_eq!(LatencyStats::of(&[]), None);
        assert_eq!(LatencyStats::of(&[ms(7)]).unwrap().p99, ms(7));
    }

    #[test]
    fn turn_latency_serialises_as_milliseconds() {
        let turn = TurnLatency {
            turn: 1,
            start: TurnStart::Text,
            first_delta: Some(Duration::from_micros(1500)),
            first_audio: None,
            tools: vec![],
            overhead: vec![Duration::from_micros(20)],
            responses: 1,
            total: ms(3),
        };
        let json = serde_json::to_value(&turn).unwrap();
        assert_eq!(json["first_delta"], 1.5);
        assert_eq!(json["first_audio"], serde_json::Value::Null);
        assert_eq!(json["overhead"][0], 0.02);
        let back: TurnLatency = serde_json::from_value(json).unwrap();
        assert_eq!(back, turn);
    }

    #[test]
    fn summary_lines_name_each_measure() {
        let mut summary = LatencySummary::default();
        summary.add(&TurnLatency {
            turn: 1,
            start: TurnStart::Text,
            first_delta: Some(ms(10)),
            first_audio: None,
            tools: vec![ToolTiming {
                call_id: "c".into(),
                name: "lookup".into(),
                round_trip: ms(3),
            }],
            overhead: vec![Duration::from_micros(40)],
            responses: 2,
            total: ms(20),
        });
        let text = summary.lines().join("\n");
        assert!(text.contains("first delta"), "{text}");
        assert!(!text.contains("first audio"), "{text}");
        assert!(text.contains("lookup") && text.contains("40 µs"), "{text}");
    }
}
