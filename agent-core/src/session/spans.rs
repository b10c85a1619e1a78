//! The session's `tracing` spans: one per call, one per turn, one per response, one per tool
//! call, each the child of the one before, with the call's tokens, cost, latency and agent as
//! fields. A subscriber turns them into whatever it wants; `agent` exports them over OTLP.
//!
//! The tree is built with explicit parents, never from the current span: the session loop is one
//! task on which turns, responses and calls interleave, so "current" means nothing there. Each
//! tool call runs on its own task inside its span, so what a tool logs lands in it.
//!
//! Fields are declared up front (empty) and recorded when they are known, with OpenTelemetry's
//! names where there is one (`gen_ai.usage.input_tokens`, `gen_ai.response.id`, `error.type`).
//! Nothing is recorded from the conversation itself (no text, no arguments, no error message
//! that could quote a key): only ids, names, counts, times and one-word outcomes.
//!
//! When no subscriber wants these spans, each is a disabled handle and nothing else happens:
//! no map entry, no string copied, no clock read beyond the ones the session makes anyway.
//!
//! A span closes when its last child does (`tracing` keeps a parent alive for its children), so
//! a response that asked for a slow tool ends after it; `latency.duration_ms` is the response's
//! own time, `response.created` to `response.done`.

use std::{collections::HashMap, time::Instant};

use tracing::{Span, field::Empty};

use super::{CloseReason, NotRun, SessionConfig, TurnFailure};
use crate::{
    cost::{TokenCounts, UsageTotals},
    latency::{TurnLatency, TurnStart},
    protocol::Usage,
    tool::ToolError,
};

/// The target of every span here, for filters: `agent_core::spans=info` turns them all on.
pub const TARGET: &str = "agent_core::spans";

/// The ids the platform gave a call, recorded on its span so that the call can be matched with
/// the platform's own logs and traces. The session's own id (`session.created`) is recorded by
/// the session itself, as `openai.session_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformIds {
    /// How the call reached the agent: `twilio`, `sip` or `webrtc` (`call.transport`); `None`
    /// for a session the app opened itself.
    pub transport: Option<String>,
    /// OpenAI's `call_id` of a SIP or WebRTC call (`openai.call_id`).
    pub openai_call_id: Option<String>,
    /// Twilio's `CallSid` (`twilio.call_sid`).
    pub twilio_call_sid: Option<String>,
    /// Twilio's `StreamSid` of the call's media stream (`twilio.stream_sid`).
    pub twilio_stream_sid: Option<String>,
}

impl PlatformIds {
    /// A call OpenAI holds (`sip`, `webrtc`), with its `call_id`.
    pub fn openai(transport: &str, call_id: &str) -> Self {
        PlatformIds {
            transport: Some(transport.to_owned()),
            openai_call_id: Some(call_id.to_owned()),
            ..PlatformIds::default()
        }
    }

    /// A Twilio Media Streams call, with its `CallSid` and `StreamSid`.
    pub fn twilio(call_sid: &str, stream_sid: &str) -> Self {
        PlatformIds {
            transport: Some("twilio".to_owned()),
            twilio_call_sid: Some(call_sid.to_owned()),
            twilio_stream_sid: Some(stream_sid.to_owned()),
            ..PlatformIds::default()
        }
    }
}

/// A response whose span is open.
struct OpenResponse {
    id: String,
    span: Span,
    created: Instant,
    first_delta: bool,
    first_audio: bool,
}

/// The open spans of one session, and what they still need to record.
pub(crate) struct Spans {
    call: Span,
    /// The agent that has the conversation now (handoffs change it).
    agent: String,
    /// The Realtime session the connection is on now (a reconnect opens another).
    session_id: Option<String>,
    turn: Option<Span>,
    /// Only enabled spans are kept, so these stay empty when nothing listens.
    responses: Vec<OpenResponse>,
    tools: HashMap<String, Span>,
    input_tokens: u64,
    output_tokens: u64,
}

impl Spans {
    /// Opens the span of a call to `config`'s agent, a child of the current span (if the app
    /// has one).
    pub(crate) fn start(config: &SessionConfig) -> Spans {
        Spans::open(&config.agent, &config.connect.model, &config.platform_ids)
    }

    fn open(agent: &str, model: &str, ids: &PlatformIds) -> Spans {
        let call = tracing::info_span!(
            target: TARGET,
            "call",
            agent.name = agent,
            gen_ai.system = "openai",
            gen_ai.request.model = model,
            call.transport = Empty,
            openai.session_id = Empty,
            openai.call_id = Empty,
            twilio.call_sid = Empty,
            twilio.stream_sid = Empty,
            call.turns = Empty,
            call.close_reason = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            cost.usd = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        );
        if !call.is_disabled() {
            let fields = [
                ("call.transport", &ids.transport),
                ("openai.call_id", &ids.openai_call_id),
                ("twilio.call_sid", &ids.twilio_call_sid),
                ("twilio.stream_sid", &ids.twilio_stream_sid),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    call.record(name, value.as_str());
                }
            }
        }
        Spans {
            call,
            agent: agent.to_owned(),
            session_id: None,
            turn: None,
            responses: Vec::new(),
            tools: HashMap::new(),
            input_tokens: 0,
            output_tokens: 0,
        }
    }

    fn enabled(&self) -> bool {
        !self.call.is_disabled()
    }

    /// The first connection is configured: its session id, if the server gave one.
    pub(crate) fn session_started(&mut self, session_id: Option<&str>) {
        if let Some(id) = session_id.filter(|_| self.enabled()) {
            self.call.record("openai.session_id", id);
            self.session_id = Some(id.to_owned());
        }
    }

    /// The session could not start: the call's span ends as a failure.
    pub(crate) fn start_failed(&self) {
        self.call.record("error.type", "session_not_started");
        self.call.record("otel.status_code", "ERROR");
    }

    /// A new connection replaced the old one: responses the old one was streaming are cut
    /// off, and the new session id is an event of the call.
    pub(crate) fn connection_replaced(&mut self, session_id: Option<&str>, rollover: bool) {
        if !self.enabled() {
            return;
        }
        for open in self.responses.drain(..) {
            open.span.record("gen_ai.response.status", "cut_off");
        }
        let id = session_id.unwrap_or_default();
        tracing::event!(
            target: TARGET,
            parent: &self.call,
            tracing::Level::INFO,
            openai.session_id = id,
            rollover,
            "reconnected"
        );
        self.session_id = session_id.map(str::to_owned);
    }

    /// A turn started (the user's turn ended): its span is the call's child.
    pub(crate) fn turn_started(&mut self, number: u64, start: TurnStart) {
        self.turn = None;
        let start = match start {
            TurnStart::Text => "text",
            TurnStart::Speech => "speech",
            TurnStart::Request => "request",
        };
        let span = tracing::info_span!(
            target: TARGET,
            parent: &self.call,
            "turn",
            turn.number = count(number),
            turn.start = start,
            agent.name = %self.agent,
            turn.responses = Empty,
            turn.tool_calls = Empty,
            turn.failure = Empty,
            latency.first_delta_ms = Empty,
            latency.first_audio_ms = Empty,
            latency.overhead_ms = Empty,
            latency.duration_ms = Empty,
            otel.status_code = Empty,
        );
        if !span.is_disabled() {
            self.turn = Some(span);
        }
    }

    /// The turn ended: what it took goes on its span, which closes.
    pub(crate) fn turn_ended(&mut self, turn: &TurnLatency) {
        let Some(span) = self.turn.take() else {
            return;
        };
        span.record("turn.responses", i64::from(turn.responses));
        span.record("turn.tool_calls", count(turn.tools.len() as u64));
        if let Some(first) = turn.first_delta {
            span.record("latency.first_delta_ms", millis(first));
        }
        if let Some(first) = turn.first_audio {
            span.record("latency.first_audio_ms", millis(first));
        }
        if !turn.overhead.is_empty() {
            span.record(
                "latency.overhead_ms",
                turn.overhead.iter().map(|d| millis(*d)).sum::<f64>(),
            );
        }
        span.record("latency.duration_ms", millis(turn.total));
    }

    /// The turn ended without a complete answer.
    pub(crate) fn turn_failed(&self, failure: &TurnFailure) {
        let Some(span) = &self.turn else {
            return;
        };
        let kind = match failure {
            TurnFailure::Stalled { .. } => "stalled",
            TurnFailure::Refused { .. } => "refused",
            TurnFailure::Failed { .. } => "failed",
            TurnFailure::Cancelled { .. } => "cancelled",
            TurnFailure::Incomplete { .. } => "incomplete",
            TurnFailure::ConnectionLost { .. } => "connection_lost",
            TurnFailure::ToolRounds { .. } => "tool_rounds",
        };
        span.record("turn.failure", kind);
        span.record("otel.status_code", "ERROR");
    }

    /// `response.created`: the response's span is the turn's child (the call's, when no turn
    /// is open, e.g. a response the app asked for by hand).
    pub(crate) fn response_created(&mut self, response_id: &str) {
        let parent = self.turn.as_ref().unwrap_or(&self.call);
        let span = tracing::info_span!(
            target: TARGET,
            parent: parent,
            "response",
            gen_ai.response.id = response_id,
            gen_ai.response.status = Empty,
            agent.name = %self.agent,
            openai.session_id = Empty,
            gen_ai.usage.input_tokens = Empty,
            gen_ai.usage.output_tokens = Empty,
            gen_ai.usage.input_text_tokens = Empty,
            gen_ai.usage.input_audio_tokens = Empty,
            gen_ai.usage.input_cached_tokens = Empty,
            gen_ai.usage.output_text_tokens = Empty,
            gen_ai.usage.output_audio_tokens = Empty,
            cost.usd = Empty,
            latency.first_delta_ms = Empty,
            latency.first_audio_ms = Empty,
            latency.duration_ms = Empty,
            otel.status_code = Empty,
        );
        if span.is_disabled() {
            return;
        }
        if let Some(id) = &self.session_id {
            span.record("openai.session_id", id.as_str());
        }
        self.responses.push(OpenResponse {
            id: response_id.to_owned(),
            span,
            created: Instant::now(),
            first_delta: false,
            first_audio: false,
        });
    }

    /// A delta of `response_id` arrived: the first one (and the first audio) is timed.
    pub(crate) fn response_delta(&mut self, response_id: &str, audio: bool) {
        if self.responses.is_empty() {
            return;
        }
        let Some(open) = self.responses.iter_mut().find(|r| r.id == response_id) else {
            return;
        };
        if open.first_delta && (open.first_audio || !audio) {
            return;
        }
        let since = millis(open.created.elapsed());
        if !open.first_delta {
            open.first_delta = true;
            open.span.record("latency.first_delta_ms", since);
        }
        if audio && !open.first_audio {
            open.first_audio = true;
            open.span.record("latency.first_audio_ms", since);
        }
    }

    /// `response.done`: its status, tokens and cost (`None` when unpriced) go on its span.
    pub(crate) fn response_done(
        &mut self,
        response_id: &str,
        status: &str,
        usage: Option<&Usage>,
        cost_usd: Option<f64>,
    ) {
        let Some(at) = self.responses.iter().position(|r| r.id == response_id) else {
            return;
        };
        let open = self.responses.swap_remove(at);
        let span = &open.span;
        span.record("gen_ai.response.status", status);
        span.record("latency.duration_ms", millis(open.created.elapsed()));
        if status == "failed" {
            span.record("otel.status_code", "ERROR");
        }
        if let Some(usage) = usage {
            let tokens = TokenCounts::from_usage(usage);
            self.input_tokens += tokens.input();
            self.output_tokens += tokens.output();
            let fields = [
                ("gen_ai.usage.input_tokens", tokens.input()),
                ("gen_ai.usage.output_tokens", tokens.output()),
                (
                    "gen_ai.usage.input_text_tokens",
                    tokens.text_in + tokens.text_cached_in,
                ),
                (
                    "gen_ai.usage.input_audio_tokens",
                    tokens.audio_in + tokens.audio_cached_in,
                ),
                ("gen_ai.usage.input_cached_tokens", tokens.cached()),
                ("gen_ai.usage.output_text_tokens", tokens.text_out),
                ("gen_ai.usage.output_audio_tokens", tokens.audio_out),
            ];
            for (name, value) in fields {
                span.record(name, count(value));
            }
        }
        if let Some(cost) = cost_usd {
            span.record("cost.usd", cost);
        }
    }

    /// A tool call of `response_id` starts on its own task: its span (the response's child),
    /// for the task to run in.
    pub(crate) fn tool_started(&mut self, response_id: &str, call_id: &str, name: &str) -> Span {
        let span = self.tool_span(response_id, call_id, name);
        if !span.is_disabled() {
            self.tools.insert(call_id.to_owned(), span.clone());
        }
        span
    }

    /// The call ended: how, and how long it ran; its span closes once its task is gone.
    pub(crate) fn tool_finished(&mut self, call_id: &str, outcome: ToolOutcome, duration_ms: f64) {
        if let Some(span) = self.tools.remove(call_id) {
            outcome.record(&span);
            span.record("tool.duration_ms", duration_ms);
        }
    }

    /// A call the session answered itself, without a task (a handoff, an earlier run's
    /// output, the tool-round limit): a span of no length.
    pub(crate) fn tool_answered(
        &mut self,
        response_id: &str,
        call_id: &str,
        name: &str,
        outcome: ToolOutcome,
    ) {
        let span = self.tool_span(response_id, call_id, name);
        outcome.record(&span);
        span.record("tool.duration_ms", 0.0);
    }

    fn tool_span(&self, response_id: &str, call_id: &str, name: &str) -> Span {
        let parent = self
            .responses
            .iter()
            .find(|r| r.id == response_id)
            .map(|r| &r.span)
            .or(self.turn.as_ref())
            .unwrap_or(&self.call);
        tracing::info_span!(
            target: TARGET,
            parent: parent,
            "tool_call",
            tool.name = name,
            tool.call_id = call_id,
            gen_ai.response.id = response_id,
            agent.name = %self.agent,
            tool.outcome = Empty,
            tool.duration_ms = Empty,
            error.type = Empty,
            otel.status_code = Empty,
        )
    }

    /// The conversation passed to another agent: later spans carry its name, and the call
    /// has an event that says who from and who to.
    pub(crate) fn handoff(&mut self, from: &str, to: &str) {
        if !self.enabled() {
            return;
        }
        tracing::event!(
            target: TARGET,
            parent: &self.call,
            tracing::Level::INFO,
            agent.from = from,
            agent.to = to,
            "handoff"
        );
        to.clone_into(&mut self.agent);
    }

    /// The session ends: why, its turns, and its totals (cost from the meter, `None` when
    /// nothing is metered) go on the call's span, which closes once its children have.
    pub(crate) fn closing(
        &mut self,
        reason: &CloseReason,
        turns: u64,
        totals: Option<&UsageTotals>,
    ) {
        if !self.enabled() {
            return;
        }
        self.tools.clear();
        self.responses.clear();
        self.turn = None;
        let call = std::mem::replace(&mut self.call, Span::none());
        let kind = match reason {
            CloseReason::Requested => "requested",
            CloseReason::Fatal { .. } => "fatal",
            CloseReason::ConnectionLost { .. } => "connection_lost",
            CloseReason::BudgetExhausted => "budget_exhausted",
            CloseReason::SessionLimit => "session_limit",
            CloseReason::CallEnded => "call_ended",
            CloseReason::ConsumerTooSlow { .. } => "consumer_too_slow",
        };
        call.record("call.close_reason", kind);
        let error = match reason {
            CloseReason::Fatal { code, .. } => Some(code.as_deref().unwrap_or(kind)),
            CloseReason::ConnectionLost { .. } => Some(kind),
            _ => None,
        };
        if let Some(error) = error {
            call.record("error.type", error);
            call.record("otel.status_code", "ERROR");
        }
        call.record("call.turns", count(turns));
        call.record("gen_ai.usage.input_tokens", count(self.input_tokens));
        call.record("gen_ai.usage.output_tokens", count(self.output_tokens));
        if let Some(totals) = totals {
            call.record("cost.usd", totals.cost_usd);
        }
    }
}

/// How a tool call ended, for its span: `tool.outcome` and, for an error, `error.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ToolOutcome {
    /// `ok`, `error`, `timeout`, `denied`, `cancelled`, `already_ran`, `interrupted`,
    /// `round_limit` or `handoff`.
    pub outcome: &'static str,
    /// For an `error`: which kind (`failed`, `invalid_arguments`, `panicked`, ...).
    pub error_type: Option<&'static str>,
}

impl ToolOutcome {
    /// A call answered without running for `why`.
    pub(crate) fn not_run(why: NotRun) -> ToolOutcome {
        let outcome = match why {
            NotRun::AlreadyRan => "already_ran",
            NotRun::Interrupted => "interrupted",
            NotRun::ToolRoundLimit => "round_limit",
            NotRun::NotApproved => "denied",
        };
        ToolOutcome {
            outcome,
            error_type: None,
        }
    }

    /// A transfer call: the session handed the conversation on.
    pub(crate) const HANDOFF: ToolOutcome = ToolOutcome {
        outcome: "handoff",
        error_type: None,
    };

    /// The outcome of a call that went to a task: its result, or why it did not run.
    pub(crate) fn of(result: &Result<String, ToolError>, not_run: Option<NotRun>) -> ToolOutcome {
        let plain = |outcome| ToolOutcome {
            outcome,
            error_type: None,
        };
        match (not_run, result) {
            // A wait for approval that its response's cancel ended is no one's denial.
            (Some(NotRun::NotApproved), Err(ToolError::Cancelled)) => plain("cancelled"),
            (Some(why), _) => ToolOutcome::not_run(why),
            (None, Ok(_)) => plain("ok"),
            (None, Err(ToolError::Timeout { .. })) => plain("timeout"),
            (None, Err(ToolError::Cancelled)) => plain("cancelled"),
            (None, Err(err)) => ToolOutcome {
                outcome: "error",
                error_type: Some(match err {
                    ToolError::InvalidArguments { .. } => "invalid_arguments",
                    ToolError::Failed { .. } => "failed",
                    ToolError::Panicked { .. } => "panicked",
                    ToolError::UnknownTool { .. } => "unknown_tool",
                    ToolError::Interrupted { .. } => "interrupted",
                    ToolError::RoundLimit { .. } => "round_limit",
                    _ => "other",
                }),
            },
        }
    }

    fn record(self, span: &Span) {
        span.record("tool.outcome", self.outcome);
        if self.outcome == "timeout" || self.error_type.is_some() {
            span.record("error.type", self.error_type.unwrap_or(self.outcome));
            span.record("otel.status_code", "ERROR");
        }
    }
}

fn millis(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A count as a signed integer: OpenTelemetry's integers are `i64`, and a `u64` field would
/// reach a subscriber as text.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_tool_s_outcome_is_one_word_and_errors_say_which() {
        let ok: Result<String, ToolError> = Ok("{}".into());
        assert_eq!(ToolOutcome::of(&ok, None).outcome, "ok");
        let timeout = Err(ToolError::Timeout {
            after: Duration::from_secs(1),
        });
        assert_eq!(ToolOutcome::of(&timeout, None).outcome, "timeout");
        let failed = Err(ToolError::Failed {
            message: "no such order".into(),
        });
        assert_eq!(
            ToolOutcome::of(&failed, None),
            ToolOutcome {
                outcome: "error",
                error_type: Some("failed")
            }
        );
        let denied = Err(ToolError::NotApproved {
            tool: "refund".into(),
            reason: "denied".into(),
        });
        assert_eq!(
            ToolOutcome::of(&denied, Some(NotRun::NotApproved)).outcome,
            "denied"
        );
        assert_eq!(
            ToolOutcome::of(&Err(ToolError::Cancelled), Some(NotRun::NotApproved)).outcome,
            "cancelled",
            "the response's cancel ended the wait"
        );
        assert_eq!(
            ToolOutcome::of(&ok, Some(NotRun::AlreadyRan)).outcome,
            "already_ran"
        );
    }

    #[test]
    fn without_a_subscriber_nothing_is_kept() {
        let mut spans = Spans::open("support", "gpt-realtime", &PlatformIds::default());
        spans.session_started(Some("sess_1"));
        spans.turn_started(1, TurnStart::Text);
        spans.response_created("resp_1");
        let tool = spans.tool_started("resp_1", "call_1", "lookup_order");
        assert!(tool.is_disabled());
        assert!(spans.turn.is_none());
        assert!(spans.responses.is_empty());
        assert!(spans.tools.is_empty());
        assert_eq!(spans.session_id, None);
    }
}
