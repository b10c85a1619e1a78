//! The runner's bookkeeping of cost, budget and latency, so the session loop only says what
//! happened and when.
//!
//! Each hook is cheap (a clock read, a map update); the ones that produce something return the
//! [`SessionEvent`]s to emit and write the same records to the trace through
//! [`WireObserver::note`]: `usage` and `transcription_usage` per charge, `budget` when a
//! threshold is crossed, `latency` per turn, `session_summary` when the session closes.
//!
//! The budget rule: once `max_cost_usd` is reached the current answer may finish — tool outputs
//! still go out, with at most one follow-up `response.create` — but no new input is sent, and
//! the session closes with [`CloseReason::BudgetExhausted`] at the next quiet moment.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{CloseReason, SessionConfig, SessionEvent, WireObserver, spans::Spans};
use crate::{
    cost::{BudgetEvent, ChargeSource, CostMeter, CostReport, format_usd},
    latency::{LatencySummary, LatencyTracker, Samples, TurnStart},
    protocol::{TranscriptionUsage, Usage},
};

/// What the runner just put on the wire, as far as accounting cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// User input (or a bare request for a response) that starts a turn.
    Input(TurnStart),
    /// A `response.create`.
    Create,
}

/// How many `response.create`s may still go out after the budget is spent: the follow-up that
/// finishes a tool-calling answer.
const FOLLOW_UPS_AFTER_BUDGET: u8 = 1;

pub(crate) struct Accounting {
    origin: Instant,
    meter: Option<CostMeter>,
    latency: LatencyTracker,
    summary: LatencySummary,
    observer: Option<Arc<dyn WireObserver>>,
    /// `Some(n)` once the budget is spent: follow-ups still allowed.
    after_budget: Option<u8>,
    warned_unenforceable: bool,
    /// The call's spans: turns open and close with the latency's turns, responses and calls
    /// carry what is accounted for them. The runner records the rest (handoffs, reconnects).
    pub(crate) spans: Spans,
}

impl Accounting {
    pub(crate) fn new(config: &SessionConfig, spans: Spans) -> Self {
        let meter = config.cost.as_ref().map(|cost| {
            CostMeter::new(
                &cost.prices,
                &config.connect.model,
                cost.transcription_model.as_deref(),
                cost.max_cost_usd,
            )
        });
        Accounting {
            origin: Instant::now(),
            meter,
            latency: LatencyTracker::new(),
            summary: LatencySummary::default(),
            observer: config.observer.clone(),
            after_budget: None,
            warned_unenforceable: false,
            spans,
        }
    }

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    /// Whether the budget is spent: no new input goes out.
    pub(crate) fn budget_exhausted(&self) -> bool {
        self.after_budget.is_some()
    }

    /// Whether `sent` may go out; `Some(reason)` means close the session instead.
    pub(crate) fn refuse(&mut self, sent: Sent) -> Option<CloseReason> {
        let left = self.after_budget.as_mut()?;
        match sent {
            Sent::Input(_) => Some(CloseReason::BudgetExhausted),
            Sent::Create if *left > 0 => {
                *left -= 1;
                None
            }
            Sent::Create => Some(CloseReason::BudgetExhausted),
        }
    }

    /// `sent` went out.
    pub(crate) fn sent(&mut self, sent: Sent) -> Vec<SessionEvent> {
        match sent {
            Sent::Input(start) => self.turn_started(start),
            Sent::Create => {
                if !self.latency.in_turn() {
                    // The server asked for nothing and no input started a turn (a create the
                    // app sent by hand): measure from here.
                    return self.turn_started(TurnStart::Request);
                }
                self.latency.response_create_sent(self.now());
                Vec::new()
            }
        }
    }

    /// `input_audio_buffer.speech_stopped`: the user's spoken turn ended.
    pub(crate) fn speech_stopped(&mut self) -> Vec<SessionEvent> {
        self.turn_started(TurnStart::Speech)
    }

    /// A new turn starts now: the open one, if any, ends first (its events are returned).
    fn turn_started(&mut self, start: TurnStart) -> Vec<SessionEvent> {
        let previous = self.latency.turn_started(self.now(), start);
        let events = self.turn_events(previous);
        self.spans.turn_started(self.latency.turns(), start);
        events
    }

    /// `response.created`.
    pub(crate) fn response_created(&mut self, response_id: &str) {
        self.spans.response_created(response_id);
    }

    /// A delta of `response_id` arrived; `audio` for audio.
    pub(crate) fn delta(&mut self, response_id: &str, audio: bool) {
        let now = self.now();
        self.latency.delta(now, audio);
        self.spans.response_delta(response_id, audio);
    }

    /// A tool call of `response_id` starts running: the span its task runs in.
    pub(crate) fn call_started(
        &mut self,
        response_id: &str,
        call_id: &str,
        name: &str,
    ) -> tracing::Span {
        let now = self.now();
        self.latency.call_received(now, call_id, name);
        self.spans.tool_started(response_id, call_id, name)
    }

    /// A tool call returned, with `outcome`, after running for `duration`.
    pub(crate) fn call_finished(
        &mut self,
        call_id: &str,
        outcome: super::spans::ToolOutcome,
        duration: Duration,
    ) {
        let now = self.now();
        self.latency.call_finished(now, call_id);
        self.spans
            .tool_finished(call_id, outcome, duration.as_secs_f64() * 1000.0);
    }

    /// A call's output was sent.
    pub(crate) fn output_sent(&mut self, call_id: &str) {
        let now = self.now();
        self.latency.call_output_sent(now, call_id);
    }

    /// `response.done` arrived with its final `status`, and its usage if the server reported
    /// it.
    pub(crate) fn response_done(
        &mut self,
        response_id: &str,
        status: &str,
        usage: Option<&Usage>,
    ) -> Vec<SessionEvent> {
        let now = self.now();
        self.latency.response_done(now);
        let mut events = Vec::new();
        let (Some(meter), Some(usage)) = (self.meter.as_mut(), usage) else {
            self.spans.response_done(response_id, status, usage, None);
            return events;
        };
        let (tokens, charge) = meter.record_response(usage);
        self.spans
            .response_done(response_id, status, Some(usage), charge.cost_usd);
        let report = CostReport {
            source: ChargeSource::Response {
                response_id: response_id.to_owned(),
                tokens,
            },
            model: meter.model().to_owned(),
            cost_usd: charge.cost_usd,
            session: meter.totals().clone(),
        };
        if !self.warned_unenforceable
            && let Some(limit) = meter.limit_usd()
            && !meter.budget_enforceable()
        {
            self.warned_unenforceable = true;
            events.push(SessionEvent::Warning {
                message: format!(
                    "max_cost_usd = {limit} cannot be enforced: the price of model `{}` is unknown; add it to a price table (--prices FILE, or price_table under [limits])",
                    meter.model()
                ),
            });
        }
        if self.observer.is_some() {
            let note = report_note(&report, meter.priced_as());
            self.note("usage", &note);
        }
        events.push(SessionEvent::Cost(report));
        events.extend(self.budget(charge.budget));
        events
    }

    /// An input transcription completed, with its usage if the server reported it.
    pub(crate) fn transcription(
        &mut self,
        item_id: &str,
        usage: Option<&TranscriptionUsage>,
    ) -> Vec<SessionEvent> {
        let (Some(meter), Some(usage)) = (self.meter.as_mut(), usage) else {
            return Vec::new();
        };
        let (counts, charge) = meter.record_transcription(usage);
        let report = CostReport {
            source: ChargeSource::Transcription {
                item_id: item_id.to_owned(),
                usage: counts,
            },
            model: meter
                .transcription_model()
                .unwrap_or("(transcription)")
                .to_owned(),
            cost_usd: charge.cost_usd,
            session: meter.totals().clone(),
        };
        if self.observer.is_some() {
            self.note("transcription_usage", &report_note(&report, None));
        }
        let mut events = vec![SessionEvent::Cost(report)];
        events.extend(self.budget(charge.budget));
        events
    }

    fn budget(&mut self, crossed: Option<BudgetEvent>) -> Vec<SessionEvent> {
        let Some(crossed) = crossed else {
            return Vec::new();
        };
        self.note(
            "budget",
            &serde_json::to_value(crossed).unwrap_or(Value::Null),
        );
        match crossed {
            BudgetEvent::Warning {
                spent_usd,
                limit_usd,
            } => vec![SessionEvent::BudgetWarning {
                spent_usd,
                limit_usd,
            }],
            BudgetEvent::Exhausted {
                spent_usd,
                limit_usd,
            } => {
                self.after_budget = Some(FOLLOW_UPS_AFTER_BUDGET);
                vec![SessionEvent::BudgetExhausted {
                    spent_usd,
                    limit_usd,
                }]
            }
        }
    }

    /// The conversation went quiet: the turn, if one is open, is complete.
    pub(crate) fn idle(&mut self) -> Vec<SessionEvent> {
        let turn = self.latency.finish(self.now());
        self.turn_events(turn)
    }

    /// The session is closing: the open turn ends, the summary goes to the trace and the
    /// totals to the call's span.
    pub(crate) fn closing(&mut self, reason: &CloseReason) -> Vec<SessionEvent> {
        let turn = self.latency.finish(self.now());
        let events = self.turn_events(turn);
        let totals = self.meter.as_ref().map(CostMeter::totals);
        self.spans.closing(reason, self.latency.turns(), totals);
        if self.observer.is_some() {
            let stats = |samples: &Samples| {
                samples
                    .stats()
                    .and_then(|s| serde_json::to_value(s).ok())
                    .unwrap_or(Value::Null)
            };
            let cost = self.meter.as_ref().map(|meter| {
                json!({
                    "model": meter.model(),
                    "priced_as": meter.priced_as(),
                    "prices_taken": meter.prices_taken(),
                    "max_cost_usd": meter.limit_usd(),
                    "totals": meter.totals(),
                })
            });
            let summary = json!({
                "close_reason": format!("{reason:?}"),
                "cost": cost,
                "latency": {
                    "turns": self.summary.turns,
                    "first_delta": stats(&self.summary.first_delta),
                    "first_audio": stats(&self.summary.first_audio),
                    "tool_round_trip": stats(&self.summary.tool_round_trips),
                    "framework_overhead": stats(&self.summary.overhead),
                },
            });
            self.note("session_summary", &summary);
        }
        events
    }

    fn turn_events(&mut self, turn: Option<crate::latency::TurnLatency>) -> Vec<SessionEvent> {
        let Some(turn) = turn else {
            return Vec::new();
        };
        self.spans.turn_ended(&turn);
        self.summary.add(&turn);
        if self.observer.is_some() {
            self.note(
                "latency",
                &serde_json::to_value(&turn).unwrap_or(Value::Null),
            );
        }
        vec![SessionEvent::TurnLatency(turn)]
    }

    fn note(&self, kind: &str, data: &Value) {
        if let Some(observer) = &self.observer {
            observer.note(kind, data);
        }
    }
}

fn report_note(report: &CostReport, priced_as: Option<&str>) -> Value {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("priced_as".into(), json!(priced_as));
        map.insert(
            "cost".into(),
            json!(
                report
                    .cost_usd
                    .map(format_usd)
                    .unwrap_or_else(|| "unknown".into())
            ),
        );
    }
    value
}
