//! The meter of one session: usage in, cost per response and a running total out, and the
//! budget's two thresholds.
//!
//! It is pure (no I/O, no clock), so the session runner, the trace summariser and tests all use
//! the same arithmetic. A model with no price is still metered in tokens; its cost is `None`
//! and the budget cannot be enforced, which [`CostMeter::budget_enforceable`] says up front.

use serde::{Deserialize, Serialize};

use super::{
    prices::{ModelPrices, PriceTable, TranscriptionPrices},
    tokens::{TokenCounts, TranscriptionCounts},
};
use crate::protocol::{TranscriptionUsage, Usage};

/// The share of the budget at which [`BudgetEvent::Warning`] fires.
pub const BUDGET_WARNING_SHARE: f64 = 0.8;

/// Everything a session used so far.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotals {
    /// Responses whose `response.done` carried usage.
    pub responses: u64,
    /// Their tokens.
    pub tokens: TokenCounts,
    /// Input transcriptions that reported usage.
    pub transcriptions: u64,
    /// Their usage.
    pub transcription: TranscriptionCounts,
    /// The cost of everything that could be priced, in US dollars.
    pub cost_usd: f64,
    /// Whether some usage could not be priced (so `cost_usd` is a lower bound).
    pub unpriced: bool,
}

impl UsageTotals {
    /// Adds another session's totals (e.g. several offline scenarios).
    pub fn merge(&mut self, other: &UsageTotals) {
        self.responses += other.responses;
        self.tokens += other.tokens;
        self.transcriptions += other.transcriptions;
        self.transcription += other.transcription;
        self.cost_usd += other.cost_usd;
        self.unpriced |= other.unpriced;
    }

    /// The cost when every bit of usage was priced, `None` otherwise.
    pub fn known_cost(&self) -> Option<f64> {
        (!self.unpriced).then_some(self.cost_usd)
    }
}

/// A threshold of the budget that was just crossed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BudgetEvent {
    /// Spending passed [`BUDGET_WARNING_SHARE`] of the limit.
    Warning {
        /// Spent so far, US dollars.
        spent_usd: f64,
        /// The limit, US dollars.
        limit_usd: f64,
    },
    /// Spending reached the limit.
    Exhausted {
        /// Spent so far, US dollars.
        spent_usd: f64,
        /// The limit, US dollars.
        limit_usd: f64,
    },
}

/// What one recorded usage came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Charge {
    /// Its cost in US dollars, `None` when the model has no price.
    pub cost_usd: Option<f64>,
    /// A budget threshold this charge crossed, if any (each fires once per session).
    pub budget: Option<BudgetEvent>,
}

/// Meters one session.
#[derive(Debug, Clone)]
pub struct CostMeter {
    model: String,
    prices: Option<(String, ModelPrices)>,
    transcription_model: Option<String>,
    transcription_prices: Option<TranscriptionPrices>,
    prices_taken: Option<String>,
    limit_usd: Option<f64>,
    totals: UsageTotals,
    warned: bool,
    exhausted: bool,
}

impl CostMeter {
    /// A meter for `model` (and the input transcription model, if any) at `table`'s prices, with
    /// an optional budget in US dollars.
    pub fn new(
        table: &PriceTable,
        model: &str,
        transcription_model: Option<&str>,
        limit_usd: Option<f64>,
    ) -> CostMeter {
        let prices = table
            .model(model)
            .map(|m| (m.entry.to_owned(), m.prices.clone()));
        let transcription_prices = transcription_model
            .and_then(|t| table.transcription_model(t).map(|m| m.prices.clone()));
        CostMeter {
            model: model.to_owned(),
            prices,
            transcription_model: transcription_model.map(str::to_owned),
            transcription_prices,
            prices_taken: table.taken.clone(),
            limit_usd: limit_usd.filter(|l| l.is_finite() && *l >= 0.0),
            totals: UsageTotals::default(),
            warned: false,
            exhausted: false,
        }
    }

    /// The model being metered.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The price-table entry used for the model (its family for a snapshot), if it has one.
    pub fn priced_as(&self) -> Option<&str> {
        self.prices.as_ref().map(|(entry, _)| entry.as_str())
    }

    /// The date of the price table, if it has one.
    pub fn prices_taken(&self) -> Option<&str> {
        self.prices_taken.as_deref()
    }

    /// The budget, US dollars.
    pub fn limit_usd(&self) -> Option<f64> {
        self.limit_usd
    }

    /// Whether a budget is set and the model's price is known, so it can be enforced.
    pub fn budget_enforceable(&self) -> bool {
        self.limit_usd.is_some() && self.prices.is_some()
    }

    /// Whether the budget has been reached.
    pub fn exhausted(&self) -> bool {
        self.exhausted
    }

    /// Everything used so far.
    pub fn totals(&self) -> &UsageTotals {
        &self.totals
    }

    /// Records the usage of one `response.done`.
    pub fn record_response(&mut self, usage: &Usage) -> (TokenCounts, Charge) {
        let tokens = TokenCounts::from_usage(usage);
        self.totals.responses += 1;
        self.totals.tokens += tokens;
        let cost = self.prices.as_ref().map(|(_, p)| p.cost(&tokens));
        (tokens, self.charge(cost, tokens.total() > 0))
    }

    /// Records the usage of one input transcription.
    pub fn record_transcription(
        &mut self,
        usage: &TranscriptionUsage,
    ) -> (TranscriptionCounts, Charge) {
        let counts = TranscriptionCounts::from_usage(usage);
        self.totals.transcriptions += 1;
        self.totals.transcription += counts;
        let cost = self
            .transcription_prices
            .as_ref()
            .and_then(|p| p.cost(&counts));
        (counts, self.charge(cost, !counts.is_empty()))
    }

    /// The transcription model being metered, if any.
    pub fn transcription_model(&self) -> Option<&str> {
        self.transcription_model.as_deref()
    }

    fn charge(&mut self, cost: Option<f64>, used_something: bool) -> Charge {
        match cost {
            Some(cost) => self.totals.cost_usd += cost,
            None if used_something => self.totals.unpriced = true,
            None => {}
        }
        Charge {
            cost_usd: cost,
            budget: self.check_budget(),
        }
    }

    fn check_budget(&mut self) -> Option<BudgetEvent> {
        let limit_usd = self.limit_usd?;
        let spent_usd = self.totals.cost_usd;
        if !self.exhausted && spent_usd >= limit_usd {
            self.exhausted = true;
            self.warned = true;
            return Some(BudgetEvent::Exhausted {
                spent_usd,
                limit_usd,
            });
        }
        if !self.warned && spent_usd >= limit_usd * BUDGET_WARNING_SHARE {
            self.warned = true;
            return Some(BudgetEvent::Warning {
                spent_usd,
                limit_usd,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(input_text: u64, output_text: u64) -> Usage {
        serde_json::from_value(json!({
            "input_tokens": input_text, "output_tokens": output_text,
            "input_token_details": {"text_tokens": input_text},
            "output_token_details": {"text_tokens": output_text}
        }))
        .unwrap()
    }

    #[test]
    fn running_total_and_per_response_cost() {
        let mut meter = CostMeter::new(PriceTable::builtin(), "gpt-realtime", None, None);
        // 1M text in at $4 + 100k text out at $16 = $5.60.
        let (tokens, charge) = meter.record_response(&usage(1_000_000, 100_000));
        assert_eq!(tokens.text_in, 1_000_000);
        assert!((charge.cost_usd.unwrap() - 5.6).abs() < 1e-9);
        meter.record_response(&usage(1_000_000, 100_000));
        assert_eq!(meter.totals().responses, 2);
        assert!((meter.totals().known_cost().unwrap() - 11.2).abs() < 1e-9);
        assert_eq!(meter.priced_as(), Some("gpt-realtime"));
    }

    #[test]
    fn budget_warns_at_80_percent_then_exhausts_once() {
        // Each response: 100k text in = $0.40. Limit $1.00.
        let mut meter = CostMeter::new(PriceTable::builtin(), "gpt-realtime", None, Some(1.0));
        assert!(meter.budget_enforceable());
        let mut events = Vec::new();
        for _ in 0..4 {
            events.push(meter.record_response(&usage(100_000, 0)).1.budget);
        }
        assert_eq!(events[0], None);
        assert!(matches!(events[1], Some(BudgetEvent::Warning { .. })));
        assert!(matches!(events[2], Some(BudgetEvent::Exhausted { .. })));
        assert_eq!(events[3], None, "fires once");
        assert!(meter.exhausted());

        let mut meter = CostMeter::new(PriceTable::builtin(), "gpt-realtime", None, Some(1.0));
        meter.record_response(&usage(100_000, 0));
        let warning = meter.record_response(&usage(110_000, 0)).1.budget;
        assert!(
            matches!(warning, Some(BudgetEvent::Warning { spent_usd, limit_usd })
                if (spent_usd - 0.84).abs() < 1e-9 && limit_usd == 1.0),
            "{warning:?}"
        );
        assert!(!meter.exhausted());
    }

    #[test]
    fn unknown_model_keeps_tokens_and_says_so() {
        let mut meter = CostMeter::new(PriceTable::builtin(), "my-model", None, Some(1.0));
        assert!(!meter.budget_enforceable());
        let (tokens, charge) = meter.record_response(&usage(10, 5));
        assert_eq!(tokens.total(), 15);
        assert_eq!(charge.cost_usd, None);
        assert_eq!(charge.budget, None);
        assert_eq!(meter.totals().known_cost(), None);
        assert_eq!(meter.totals().tokens.total(), 15);
    }

    #[test]
    fn transcription_usage_is_metered() {
        let mut meter = CostMeter::new(
            PriceTable::builtin(),
            "gpt-realtime",
            Some("gpt-4o-mini-transcribe"),
            None,
        );
        let usage: TranscriptionUsage = serde_json::from_value(json!({
            "type": "tokens", "input_tokens": 1_000_000, "output_tokens": 0, "total_tokens": 1_000_000
        }))
        .unwrap();
        let (counts, charge) = meter.record_transcription(&usage);
        assert_eq!(counts.input_tokens, 1_000_000);
        assert!((charge.cost_usd.unwrap() - 1.25).abs() < 1e-9);
        assert_eq!(meter.totals().transcriptions, 1);

        // An unpriced transcription model makes the total a lower bound.
        let mut meter = CostMeter::new(
            PriceTable::builtin(),
            "gpt-realtime",
            Some("whisper-9"),
            None,
        );
        meter.record_transcription(&usage);
        assert!(meter.totals().unpriced);
    }
}
