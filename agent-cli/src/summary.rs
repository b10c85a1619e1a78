//! The end-of-run summary: usage, cost and latency, gathered from the session events.
//!
//! Each session's [`SessionStats`] follows its events (the last `Cost` event carries the running
//! total, `TurnLatency` events carry the turns); a [`RunSummary`] adds up the sessions of a run
//! (`--offline` plays one session per scenario) and prints the block `agent run` ends with.

use agent_core::{
    cost::{ChargeSource, CostReport, CostSettings, TokenCounts, UsageTotals, format_usd},
    latency::LatencySummary,
    session::{CloseReason, SessionEvent},
};

/// What one session used and how fast it was.
#[derive(Debug, Clone, Default)]
pub struct SessionStats {
    /// The session's running usage total (from its latest `Cost` event).
    pub usage: UsageTotals,
    /// Its turns' latencies.
    pub latency: LatencySummary,
    /// The budget was reached.
    pub budget_exhausted: bool,
    /// Why each turn that did not complete failed, in order.
    pub turn_failures: Vec<String>,
    /// Why the session ended, once it did.
    pub closed: Option<CloseReason>,
    /// The session's events stopped without a `Closed` event (its task died, or it did not
    /// wind down in time).
    pub unclean_end: bool,
}

impl SessionStats {
    /// Takes in one event.
    pub fn observe(&mut self, event: &SessionEvent) {
        match event {
            SessionEvent::Cost(report) => self.usage = report.session.clone(),
            SessionEvent::TurnLatency(turn) => self.latency.add(turn),
            SessionEvent::BudgetExhausted { .. } => self.budget_exhausted = true,
            SessionEvent::TurnFailed { failure } => self.turn_failures.push(failure.to_string()),
            SessionEvent::Closed { reason } => self.closed = Some(reason.clone()),
            _ => {}
        }
    }

    /// What keeps the session from counting as a success: its failed turns, and an end the
    /// app did not ask for (the budget running out is a limit doing its job, not a failure).
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.turn_failures.clone();
        match &self.closed {
            None | Some(CloseReason::Requested | CloseReason::BudgetExhausted) => {}
            Some(reason) => problems.push(format!("the session ended: {reason}")),
        }
        if self.unclean_end {
            problems.push("the session stopped without saying why".to_owned());
        }
        problems
    }
}

/// Every session of one `agent run`.
#[derive(Debug, Default)]
pub struct RunSummary {
    sessions: usize,
    usage: UsageTotals,
    latency: LatencySummary,
}

impl RunSummary {
    /// Adds a finished session.
    pub fn add(&mut self, stats: &SessionStats) {
        self.sessions += 1;
        self.usage.merge(&stats.usage);
        self.latency.merge(&stats.latency);
    }

    /// The summary block: usage, cost (at `prices` for `model`) and latency percentiles.
    pub fn render(&self, model: &str, prices: &CostSettings) -> String {
        let mut out = String::from("── usage, cost and latency ──\n");
        let u = &self.usage;
        let sessions = match self.sessions {
            1 => "1 session".to_owned(),
            n => format!("{n} sessions"),
        };
        out.push_str(&format!(
            "usage    {} responses in {sessions}: {}\n",
            u.responses,
            describe_tokens(&u.tokens)
        ));
        if u.transcriptions > 0 {
            let t = &u.transcription;
            let mut what = format!(
                "{} in / {} out tokens",
                group(t.input_tokens),
                group(t.output_tokens)
            );
            if t.seconds > 0.0 {
                what.push_str(&format!(", {:.1} s of audio", t.seconds));
            }
            out.push_str(&format!(
                "         {} input transcriptions: {what}\n",
                u.transcriptions
            ));
        }
        let priced = prices.prices.model(model);
        let taken = prices
            .prices
            .taken
            .as_deref()
            .map(|d| format!(" of {d}"))
            .unwrap_or_default();
        match (priced, u.known_cost()) {
            (Some(entry), Some(cost)) => out.push_str(&format!(
                "cost     {} at {} prices{taken}",
                format_usd(cost),
                entry.entry
            )),
            (Some(entry), None) => out.push_str(&format!(
                "cost     at least {} at {} prices{taken}; some usage (e.g. a transcription model) has no known price",
                format_usd(u.cost_usd),
                entry.entry
            )),
            (None, _) => out.push_str(&format!(
                "cost     unknown: no price for model `{model}` (tokens above); add it with --prices FILE"
            )),
        }
        if let Some(limit) = prices.max_cost_usd {
            out.push_str(&format!(" (budget ${limit:.2} per session)"));
        }
        out.push('\n');
        if self.latency.is_empty() {
            out.push_str("latency  no turns measured\n");
        } else {
            out.push_str(&format!("latency  {} turns\n", self.latency.turns));
            for line in self.latency.lines() {
                out.push_str("  ");
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

/// The line `agent run -v` prints after each response: its tokens, its cost, the session's.
pub fn cost_line(report: &CostReport) -> String {
    let cost = report
        .cost_usd
        .map(format_usd)
        .unwrap_or_else(|| format!("price unknown for `{}`", report.model));
    let session = match report.session.known_cost() {
        Some(total) => format_usd(total),
        None if report.session.cost_usd > 0.0 => {
            format!("≥ {}", format_usd(report.session.cost_usd))
        }
        None => "unknown".to_owned(),
    };
    match &report.source {
        ChargeSource::Response { tokens, .. } => format!(
            "· {} in ({} cached) / {} out tokens · {cost} · session {session}",
            group(tokens.input()),
            group(tokens.cached()),
            group(tokens.output())
        ),
        ChargeSource::Transcription { usage, .. } => format!(
            "· transcription {} in / {} out tokens · {cost} · session {session}",
            group(usage.input_tokens),
            group(usage.output_tokens)
        ),
    }
}

/// `1,234 tokens in (512 cached; text 700, audio 534), 120 out (text 120)`.
pub fn describe_tokens(t: &TokenCounts) -> String {
    let mut input = vec![
        format!("text {}", group(t.text_in + t.text_cached_in)),
        format!("audio {}", group(t.audio_in + t.audio_cached_in)),
    ];
    let image = t.image_in + t.image_cached_in;
    if image > 0 {
        input.push(format!("image {}", group(image)));
    }
    format!(
        "{} tokens in ({} cached; {}), {} out (text {}, audio {})",
        group(t.input()),
        group(t.cached()),
        input.join(", "),
        group(t.output()),
        group(t.text_out),
        group(t.audio_out)
    )
}

/// `12345` → `12,345`.
pub fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn unknown_model_says_the_price_is_unknown() {
        let mut run = RunSummary::default();
        run.add(&SessionStats::default());
        let text = run.render("my-model", &CostSettings::default());
        assert!(
            text.contains("unknown: no price for model `my-model`"),
            "{text}"
        );
        let text = run.render("gpt-realtime-2025-08-28", &CostSettings::default());
        assert!(text.contains("at gpt-realtime prices of"), "{text}");
    }
}
