//! Usage and cost: what each response used, what it cost, and the session's budget.
//!
//! `response.done` carries token usage and input transcription reports its own; a
//! [`CostMeter`] turns both into dollars with a [`PriceTable`] (the published prices compiled in
//! from `agent-core/prices.toml`, optionally merged with the user's own file) and watches
//! `max_cost_usd`. A running session reports each charge as a [`crate::session::SessionEvent::Cost`]
//! carrying a [`CostReport`], and writes it to the trace.

mod meter;
mod prices;
mod tokens;

use serde::{Deserialize, Serialize};

pub use meter::{BUDGET_WARNING_SHARE, BudgetEvent, Charge, CostMeter, UsageTotals};
pub use prices::{
    BUILTIN_PRICES_TOML, ModelPrices, PriceError, PriceMatch, PriceTable, TranscriptionPrices,
    strip_snapshot_date,
};
pub use tokens::{TokenCounts, TranscriptionCounts};

/// What a session meters and against which budget: part of
/// [`crate::session::SessionConfig`]. The model is the session's (`connect.model`).
#[derive(Debug, Clone)]
pub struct CostSettings {
    /// The prices to use.
    pub prices: std::sync::Arc<PriceTable>,
    /// The input transcription model, priced separately.
    pub transcription_model: Option<String>,
    /// `max_cost_usd`: warn at 80 %, and at 100 % let the current answer finish, then close.
    pub max_cost_usd: Option<f64>,
}

impl Default for CostSettings {
    /// The published prices, no budget.
    fn default() -> Self {
        CostSettings {
            prices: PriceTable::shared(),
            transcription_model: None,
            max_cost_usd: None,
        }
    }
}

/// What one charge was for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChargeSource {
    /// A response, from its `response.done`.
    Response {
        /// The response's id.
        response_id: String,
        /// Its tokens.
        tokens: TokenCounts,
    },
    /// An input transcription, from `...input_audio_transcription.completed`.
    Transcription {
        /// The user item that was transcribed.
        item_id: String,
        /// What it used.
        usage: TranscriptionCounts,
    },
}

/// One charge and the session's running total, as sessions report them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostReport {
    /// What was charged.
    pub source: ChargeSource,
    /// The model billed: the Realtime model, or the transcription model.
    pub model: String,
    /// The cost of this charge in US dollars; `None` when the model has no known price.
    pub cost_usd: Option<f64>,
    /// Everything the session used so far, this charge included.
    pub session: UsageTotals,
}

/// `$0.0123`, with more digits for small amounts so a cheap turn does not read as `$0.00`.
pub fn format_usd(usd: f64) -> String {
    if usd == 0.0 {
        "$0.00".to_owned()
    } else if usd.abs() < 0.01 {
        format!("${usd:.5}")
    } else if usd.abs() < 10.0 {
        format!("${usd:.4}")
    } else {
        format!("${usd:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_small_and_large_amounts() {
        assert_eq!(format_usd(0.0), "$0.00");
        assert_eq!(format_usd(0.000123), "$0.00012");
        assert_eq!(format_usd(0.5), "$0.5000");
        assert_eq!(format_usd(12.345), "$12.35");
    }
}
