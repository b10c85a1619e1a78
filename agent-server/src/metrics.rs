//! `GET /metrics`: the server's counters in Prometheus' text format, for the operator only
//! (served on the admin listener, see `[admin]` in serve.toml).
//!
//! Everything is an atomic, so a call's task records without a lock and a scrape reads
//! without stopping anyone. Phone numbers and call ids are never labels: they are personal
//! data, and unbounded label values would grow the scrape without end.

use agent_core::session::SessionEvent;
use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::Mutex,
    sync::atomic::{AtomicI64, AtomicU64, Ordering},
    time::Duration,
};

/// How a call ended, as counted in `agent_serve_calls_total{outcome=...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The caller hung up.
    CallerHungUp,
    /// The agent hung up (`end_call`).
    AgentHungUp,
    /// The agent transferred the call.
    Transferred,
    /// The caller stayed silent through every prompt.
    Silence,
    /// The call reached its maximum length.
    MaxLength,
    /// The server shut down before the call ended.
    Drained,
    /// The session could not start, or the stream or session failed.
    Failed,
    /// Another node took the call over while this one stalled (its lease ran out): this node
    /// lets go of it without hanging up, and the other records how it ends.
    TakenOver,
}

impl Outcome {
    /// Every outcome, in the order `/metrics` lists them.
    pub const ALL: [Outcome; 8] = [
        Outcome::CallerHungUp,
        Outcome::AgentHungUp,
        Outcome::Transferred,
        Outcome::Silence,
        Outcome::MaxLength,
        Outcome::Drained,
        Outcome::Failed,
        Outcome::TakenOver,
    ];

    /// How a call whose session the platform holds (SIP, WebRTC: the server is on the
    /// sideband) ended, from why that session closed. The session ends when its call does:
    /// the sideband closes, and a re-attach finds the call gone (the platform answers 404).
    pub fn of_sideband_close(reason: &agent_core::session::CloseReason) -> Outcome {
        use agent_core::session::CloseReason;
        match reason {
            CloseReason::CallEnded
            | CloseReason::Requested
            | CloseReason::ConnectionLost { .. } => Outcome::CallerHungUp,
            CloseReason::SessionLimit => Outcome::MaxLength,
            _ => Outcome::Failed,
        }
    }

    /// The label value, also stored in the call history.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::CallerHungUp => "caller_hung_up",
            Outcome::AgentHungUp => "agent_hung_up",
            Outcome::Transferred => "transferred",
            Outcome::Silence => "silence",
            Outcome::MaxLength => "max_length",
            Outcome::Drained => "drained",
            Outcome::Failed => "failed",
            Outcome::TakenOver => "taken_over",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|o| *o == self).unwrap_or(0)
    }
}

/// Bucket bounds in seconds: from 5 ms (a quick tool) to 30 s (a slow one).
const BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram of durations, cumulative in the text format.
#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative), the last one for `+Inf`.
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, value: Duration) {
        let secs = value.as_secs_f64();
        let bucket = BOUNDS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BOUNDS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, bound) in BOUNDS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.buckets[BOUNDS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// The server's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    active: AtomicI64,
    outcomes: [AtomicU64; Outcome::ALL.len()],
    turn_latency: Histogram,
    tool_duration: Histogram,
    input_tokens: AtomicU64,
    output_tokens: AtomicU64,
    cost_micro_usd: AtomicU64,
    reconnects: AtomicU64,
    takeovers: AtomicU64,
    rate_limited: AtomicU64,
    /// Handoffs by the agent that took the conversation. Agent names come from the
    /// operator's agent files, so the label's values are few and known; handoffs are rare, so
    /// a lock costs nothing that matters.
    handoffs: Mutex<BTreeMap<String, u64>>,
    /// Guardrail trips: on the caller's input, on the agent's output.
    guardrail_trips: [AtomicU64; 2],
    /// This node's name, the `node` label of every series (empty: no label).
    node: String,
}

impl Metrics {
    /// Counts what a call's session reports, whatever the transport: tokens, turn latency,
    /// tool durations and reconnects. Costs are not among them: a call counts them where it
    /// charges its route's spend, so the two never disagree.
    pub fn observe(&self, event: &SessionEvent) {
        match event {
            SessionEvent::ResponseDone {
                usage: Some(usage), ..
            } => self.tokens(usage.input_tokens, usage.output_tokens),
            SessionEvent::TurnLatency(latency) => {
                if let Some(first) = latency.first_audio.or(latency.first_delta) {
                    self.turn_latency(first);
                }
            }
            SessionEvent::Reconnected { .. } => self.reconnect(),
            SessionEvent::ToolCallFinished { duration, .. } => self.tool_duration(*duration),
            SessionEvent::Handoff { to, .. } => self.handoff(to),
            SessionEvent::GuardrailTripped { stage, .. } => {
                let index = usize::from(*stage == agent_core::guardrail::GuardrailStage::Output);
                self.guardrail_trips[index].fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Metrics whose every series carries `node="NAME"`, so several nodes' series stay apart.
    pub fn for_node(node: &str) -> Self {
        Metrics {
            node: node.to_owned(),
            ..Metrics::default()
        }
    }

    /// A call's session started.
    pub fn call_started(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    /// A call whose session started has ended.
    pub fn call_ended(&self, outcome: Outcome) {
        self.active.fetch_sub(1, Ordering::Relaxed);
        self.count_outcome(outcome);
    }

    /// A call ended before its session started (counted, never active).
    pub fn count_outcome(&self, outcome: Outcome) {
        self.outcomes[outcome.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// How many calls ended with `outcome` so far.
    pub fn outcome_count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()].load(Ordering::Relaxed)
    }

    /// A turn's latency: end of the caller's turn to the first audio of the answer.
    pub fn turn_latency(&self, latency: Duration) {
        self.turn_latency.observe(latency);
    }

    /// A tool call's duration.
    pub fn tool_duration(&self, duration: Duration) {
        self.tool_duration.observe(duration);
    }

    /// Tokens a response used.
    pub fn tokens(&self, input: u64, output: u64) {
        self.input_tokens.fetch_add(input, Ordering::Relaxed);
        self.output_tokens.fetch_add(output, Ordering::Relaxed);
    }

    /// What a response cost.
    pub fn cost(&self, usd: f64) {
        if usd.is_finite() && usd > 0.0 {
            self.cost_micro_usd
                .fetch_add((usd * 1e6).round() as u64, Ordering::Relaxed);
        }
    }

    /// A session reconnected (or rolled over).
    pub fn reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// A call of a node that died went on here.
    pub fn count_takeover(&self) {
        self.takeovers.fetch_add(1, Ordering::Relaxed);
    }

    /// How many calls this node took over.
    pub fn takeover_count(&self) -> u64 {
        self.takeovers.load(Ordering::Relaxed)
    }

    /// A conversation was handed to the agent `to`.
    pub fn handoff(&self, to: &str) {
        let mut handoffs = self.handoffs.lock().unwrap_or_else(|e| e.into_inner());
        *handoffs.entry(to.to_owned()).or_default() += 1;
    }

    /// A webhook request was refused with 429.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// Everything, in Prometheus' text format; `slots` is call slots in use and their maximum.
    pub fn render(&self, slots: (usize, usize), draining: bool) -> String {
        let mut out = String::with_capacity(4096);
        let gauge = |out: &mut String, name: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        let counter = |out: &mut String, name: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        let active = self.active.load(Ordering::Relaxed).max(0);
        gauge(
            &mut out,
            "agent_serve_calls_active",
            "Calls whose session is running.",
            active.to_string(),
        );
        gauge(
            &mut out,
            "agent_serve_call_slots_in_use",
            "Call slots taken, calls about to start included.",
            slots.0.to_string(),
        );
        gauge(
            &mut out,
            "agent_serve_call_slots_max",
            "The most calls at once (max_calls).",
            slots.1.to_string(),
        );
        gauge(
            &mut out,
            "agent_serve_draining",
            "1 while the server drains and refuses new calls.",
            u8::from(draining).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP agent_serve_calls_total Calls ended, by outcome.\n# TYPE agent_serve_calls_total counter"
        );
        for outcome in Outcome::ALL {
            let n = self.outcomes[outcome.index()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "agent_serve_calls_total{{outcome=\"{}\"}} {n}",
                outcome.as_str()
            );
        }
        self.turn_latency.render(
            &mut out,
            "agent_serve_turn_latency_seconds",
            "End of the caller's turn to the first audio of the answer.",
        );
        self.tool_duration.render(
            &mut out,
            "agent_serve_tool_duration_seconds",
            "Tool call durations.",
        );
        let _ = writeln!(
            out,
            "# HELP agent_serve_tokens_total Tokens used, by direction.\n# TYPE agent_serve_tokens_total counter\n\
             agent_serve_tokens_total{{direction=\"input\"}} {}\nagent_serve_tokens_total{{direction=\"output\"}} {}",
            self.input_tokens.load(Ordering::Relaxed),
            self.output_tokens.load(Ordering::Relaxed)
        );
        let usd = self.cost_micro_usd.load(Ordering::Relaxed) as f64 / 1e6;
        counter(
            &mut out,
            "agent_serve_cost_usd_total",
            "What the calls cost, in US dollars.",
            usd.to_string(),
        );
        counter(
            &mut out,
            "agent_serve_reconnects_total",
            "Realtime sessions reconnected or rolled over.",
            self.reconnects.load(Ordering::Relaxed).to_string(),
        );
        counter(
            &mut out,
            "agent_serve_takeovers_total",
            "Calls of a node that died that this node took over.",
            self.takeovers.load(Ordering::Relaxed).to_string(),
        );
        counter(
            &mut out,
            "agent_serve_rate_limited_total",
            "Webhook requests refused with 429.",
            self.rate_limited.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP agent_serve_guardrail_trips_total Inputs and answers a guardrail stopped.\n# TYPE agent_serve_guardrail_trips_total counter\n\
             agent_serve_guardrail_trips_total{{stage=\"input\"}} {}\nagent_serve_guardrail_trips_total{{stage=\"output\"}} {}",
            self.guardrail_trips[0].load(Ordering::Relaxed),
            self.guardrail_trips[1].load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP agent_serve_handoffs_total Conversations handed to another agent, by the agent that took them.\n# TYPE agent_serve_handoffs_total counter"
        );
        let handoffs = self.handoffs.lock().unwrap_or_else(|e| e.into_inner());
        for (to, n) in handoffs.iter() {
            let _ = writeln!(
                out,
                "agent_serve_handoffs_total{{to=\"{}\"}} {n}",
                label_value(to)
            );
        }
        with_label(&out, "node", &self.node)
    }
}

/// `text` (Prometheus' text format) with `name="value"` added to every series; unchanged
/// when `value` is empty. Comment lines stay as they are.
fn with_label(text: &str, name: &str, value: &str) -> String {
    if value.is_empty() {
        return text.to_owned();
    }
    let label = format!("{name}=\"{}\"", label_value(value));
    let mut out = String::with_capacity(text.len() + text.lines().count() * (label.len() + 3));
    for line in text.lines() {
        if line.starts_with('#') {
            out.push_str(line);
        } else if let Some(open) = line.find('{').filter(|&i| i < line.find(' ').unwrap_or(0)) {
            out.push_str(&line[..=open]);
            out.push_str(&label);
            out.push(',');
            out.push_str(&line[open + 1..]);
        } else if let Some(space) = line.find(' ') {
            out.push_str(&line[..space]);
            out.push('{');
            out.push_str(&label);
            out.push('}');
            out.push_str(&line[space..]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_carries_the_node() {
        let m = Metrics::for_node("voice-1");
        m.handoff("billing");
        let text = m.render((0, 4), false);
        for line in [
            "agent_serve_calls_active{node=\"voice-1\"} 0",
            "agent_serve_handoffs_total{node=\"voice-1\",to=\"billing\"} 1",
            "agent_serve_turn_latency_seconds_bucket{node=\"voice-1\",le=\"0.25\"} 0",
            "# TYPE agent_serve_calls_active gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .all(|l| l.contains("node=\"voice-1\"")),
            "{text}"
        );
    }

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.call_started();
        m.call_started();
        m.call_ended(Outcome::AgentHungUp);
        m.turn_latency(Duration::from_millis(300));
        m.tool_duration(Duration::from_secs(60));
        m.tokens(100, 20);
        m.cost(0.0125);
        m.reconnect();
        m.handoff("billing");
        m.handoff("billing");
        m.handoff("a\"b");
        let text = m.render((2, 10), false);
        for line in [
            "agent_serve_calls_active 1",
            "agent_serve_call_slots_max 10",
            "agent_serve_calls_total{outcome=\"agent_hung_up\"} 1",
            "agent_serve_calls_total{outcome=\"caller_hung_up\"} 0",
            "agent_serve_turn_latency_seconds_bucket{le=\"0.25\"} 0",
            "agent_serve_turn_latency_seconds_bucket{le=\"0.5\"} 1",
            "agent_serve_turn_latency_seconds_count 1",
            "agent_serve_tool_duration_seconds_bucket{le=\"30\"} 0",
            "agent_serve_tool_duration_seconds_bucket{le=\"+Inf\"} 1",
            "agent_serve_tokens_total{direction=\"output\"} 20",
            "agent_serve_cost_usd_total 0.0125",
            "agent_serve_reconnects_total 1",
            "agent_serve_handoffs_total{to=\"billing\"} 2",
            "agent_serve_guardrail_trips_total{stage=\"output\"} 0",
            "agent_serve_handoffs_total{to=\"a\\\"b\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(text.contains("# TYPE agent_serve_turn_latency_seconds histogram"));
    }
}
