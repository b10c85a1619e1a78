//! Token counts split the way they are billed: modality × cached/uncached, input and output.
//!
//! `response.done` reports `input_tokens` with details that *include* the cached tokens; prices
//! are per bucket, so [`TokenCounts::from_usage`] turns the wire shape into disjoint buckets
//! once, and everything downstream (cost, totals, summaries) just adds them up.

use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

use crate::protocol::{TranscriptionUsage, Usage};

/// Tokens of one or more responses, in disjoint billing buckets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCounts {
    /// Text input not served from the cache.
    pub text_in: u64,
    /// Text input served from the cache.
    pub text_cached_in: u64,
    /// Audio input not served from the cache.
    pub audio_in: u64,
    /// Audio input served from the cache.
    pub audio_cached_in: u64,
    /// Image input not served from the cache.
    pub image_in: u64,
    /// Image input served from the cache.
    pub image_cached_in: u64,
    /// Text output (including transcripts of spoken replies).
    pub text_out: u64,
    /// Audio output.
    pub audio_out: u64,
}

impl TokenCounts {
    /// Splits a `response.done` usage object into billing buckets.
    ///
    /// Cached tokens come from `cached_tokens_details` when present; otherwise `cached_tokens`
    /// is attributed to text first, then audio, then image (the cached prefix starts with the
    /// instructions). Tokens the details do not account for are counted as text, so a server
    /// that sends only totals is still metered.
    pub fn from_usage(usage: &Usage) -> TokenCounts {
        let mut counts = TokenCounts::default();
        match &usage.input_token_details {
            Some(details) => {
                let (cached_text, cached_audio, cached_image) = match &details.cached_tokens_details
                {
                    Some(c) => (c.text_tokens, c.audio_tokens, c.image_tokens),
                    None => {
                        let text = details.cached_tokens.min(details.text_tokens);
                        let rest = details.cached_tokens - text;
                        let audio = rest.min(details.audio_tokens);
                        let image = (rest - audio).min(details.image_tokens);
                        (text, audio, image)
                    }
                };
                counts.text_cached_in = cached_text.min(details.text_tokens);
                counts.text_in = details.text_tokens - counts.text_cached_in;
                counts.audio_cached_in = cached_audio.min(details.audio_tokens);
                counts.audio_in = details.audio_tokens - counts.audio_cached_in;
                counts.image_cached_in = cached_image.min(details.image_tokens);
                counts.image_in = details.image_tokens - counts.image_cached_in;
                let detailed = details
                    .text_tokens
                    .saturating_add(details.audio_tokens)
                    .saturating_add(details.image_tokens);
                counts.text_in += usage.input_tokens.saturating_sub(detailed);
            }
            None => counts.text_in = usage.input_tokens,
        }
        match &usage.output_token_details {
            Some(details) => {
                counts.text_out = details.text_tokens;
                counts.audio_out = details.audio_tokens;
                let detailed = details.text_tokens.saturating_add(details.audio_tokens);
                counts.text_out += usage.output_tokens.saturating_sub(detailed);
            }
            None => counts.text_out = usage.output_tokens,
        }
        counts
    }

    /// All input tokens, cached or not.
    pub fn input(&self) -> u64 {
        self.text_in
            + self.text_cached_in
            + self.audio_in
            + self.audio_cached_in
            + self.image_in
            + self.image_cached_in
    }

    /// Input tokens served from the cache.
    pub fn cached(&self) -> u64 {
        self.text_cached_in + self.audio_cached_in + self.image_cached_in
    }

    /// All output tokens.
    pub fn output(&self) -> u64 {
        self.text_out + self.audio_out
    }

    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input() + self.output()
    }
}

impl AddAssign for TokenCounts {
    fn add_assign(&mut self, other: TokenCounts) {
        self.text_in += other.text_in;
        self.text_cached_in += other.text_cached_in;
        self.audio_in += other.audio_in;
        self.audio_cached_in += other.audio_cached_in;
        self.image_in += other.image_in;
        self.image_cached_in += other.image_cached_in;
        self.text_out += other.text_out;
        self.audio_out += other.audio_out;
    }
}

impl Add for TokenCounts {
    type Output = TokenCounts;

    fn add(mut self, other: TokenCounts) -> TokenCounts {
        self += other;
        self
    }
}

/// What input transcription used: tokens (token-billed models) and/or seconds of audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TranscriptionCounts {
    /// Input tokens (audio and prompt text).
    pub input_tokens: u64,
    /// Of `input_tokens`, audio tokens.
    pub audio_tokens: u64,
    /// Text tokens written.
    pub output_tokens: u64,
    /// Seconds of audio, for duration-billed models.
    pub seconds: f64,
}

impl TranscriptionCounts {
    /// The counts of one `conversation.item.input_audio_transcription.completed` usage object.
    pub fn from_usage(usage: &TranscriptionUsage) -> TranscriptionCounts {
        match usage {
            TranscriptionUsage::Tokens {
                input_tokens,
                output_tokens,
                input_token_details,
                ..
            } => TranscriptionCounts {
                input_tokens: *input_tokens,
                audio_tokens: input_token_details
                    .as_ref()
                    .map_or(*input_tokens, |d| d.audio_tokens),
                output_tokens: *output_tokens,
                seconds: 0.0,
            },
            TranscriptionUsage::Duration { seconds } => TranscriptionCounts {
                seconds: if seconds.is_finite() && *seconds > 0.0 {
                    *seconds
                } else {
                    0.0
                },
                ..TranscriptionCounts::default()
            },
        }
    }

    /// Whether nothing was used.
    pub fn is_empty(&self) -> bool {
        self.input_tokens == 0 && self.output_tokens == 0 && self.seconds == 0.0
    }
}

impl AddAssign for TranscriptionCounts {
    fn add_assign(&mut self, other: TranscriptionCounts) {
        self.input_tokens += other.input_tokens;
        self.audio_tokens += other.audio_tokens;
        self.output_tokens += other.output_tokens;
        self.seconds += other.seconds;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn usage(value: serde_json::Value) -> Usage {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn splits_cached_tokens_by_modality() {
        // A usage block as live gpt-realtime sends it.
        let counts = TokenCounts::from_usage(&usage(json!({
            "total_tokens": 821, "input_tokens": 789, "output_tokens": 32,
            "input_token_details": {"text_tokens": 313, "audio_tokens": 476, "cached_tokens": 640,
                "cached_tokens_details": {"text_tokens": 256, "audio_tokens": 384}},
            "output_token_details": {"text_tokens": 9, "audio_tokens": 23}
        })));
        assert_eq!(counts.text_in, 57);
        assert_eq!(counts.text_cached_in, 256);
        assert_eq!(counts.audio_in, 92);
        assert_eq!(counts.audio_cached_in, 384);
        assert_eq!((counts.text_out, counts.audio_out), (9, 23));
        assert_eq!(counts.input(), 789);
        assert_eq!(counts.total(), 821);
    }

    #[test]
    fn cached_total_without_details_goes_to_text_first() {
        let counts = TokenCounts::from_usage(&usage(json!({
            "input_tokens": 100, "output_tokens": 0,
            "input_token_details": {"text_tokens": 40, "audio_tokens": 60, "cached_tokens": 64}
        })));
        assert_eq!((counts.text_cached_in, counts.text_in), (40, 0));
        assert_eq!((counts.audio_cached_in, counts.audio_in), (24, 36));
    }

    #[test]
    fn totals_without_details_count_as_text() {
        let counts = TokenCounts::from_usage(&usage(json!({
            "input_tokens": 10, "output_tokens": 5
        })));
        assert_eq!((counts.text_in, counts.text_out), (10, 5));
        // Inconsistent details never underflow.
        let counts = TokenCounts::from_usage(&usage(json!({
            "input_tokens": 1,
            "input_token_details": {"text_tokens": 5, "cached_tokens": 9,
                "cached_tokens_details": {"text_tokens": 9}}
        })));
        assert_eq!((counts.text_cached_in, counts.text_in), (5, 0));
    }

    #[test]
    fn transcription_counts_both_shapes() {
        let tokens: TranscriptionUsage = serde_json::from_value(json!({
            "type": "tokens", "total_tokens": 22, "input_tokens": 13, "output_tokens": 9,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 13}
        }))
        .unwrap();
        let c = TranscriptionCounts::from_usage(&tokens);
        assert_eq!(
            (c.input_tokens, c.audio_tokens, c.output_tokens),
            (13, 13, 9)
        );
        let seconds = TranscriptionUsage::Duration { seconds: f64::NAN };
        assert!(TranscriptionCounts::from_usage(&seconds).is_empty());
    }
}
