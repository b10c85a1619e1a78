//! Price tables: US dollars per 1M tokens per model, kept in TOML so they can change without a
//! release.
//!
//! The built-in table (`agent-core/prices.toml`, compiled in) holds the published prices with the
//! date they were read and where. A user's table is merged over it ([`PriceTable::merge`]), so a
//! file only needs the models it adds or corrects. Snapshot names map to their family
//! (`gpt-realtime-2025-08-28` → `gpt-realtime`) unless the table names the snapshot itself.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, OnceLock},
};

use serde::{Deserialize, Serialize};

use super::tokens::{TokenCounts, TranscriptionCounts};
use crate::fs_limits::{MAX_PRICE_TABLE_BYTES, ReadError, read_text};

/// The compiled-in table's text, so tools can print or diff it.
pub const BUILTIN_PRICES_TOML: &str = include_str!("../../prices.toml");

/// Prices per model, with where and when they were taken.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    /// The date the prices were read, e.g. `2026-11-25`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken: Option<String>,
    /// Where they were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Realtime models by name (a family like `gpt-realtime`, or a dated snapshot).
    #[serde(default)]
    pub models: BTreeMap<String, ModelPrices>,
    /// Input transcription models by name.
    #[serde(default)]
    pub transcription: BTreeMap<String, TranscriptionPrices>,
}

/// One Realtime model's prices, US dollars per 1M tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrices {
    /// Text input.
    pub text_in: f64,
    /// Cached text input.
    pub text_cached_in: f64,
    /// Text output.
    pub text_out: f64,
    /// Audio input.
    pub audio_in: f64,
    /// Cached audio input.
    pub audio_cached_in: f64,
    /// Audio output.
    pub audio_out: f64,
    /// Image input; text input's rate when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_in: Option<f64>,
    /// Cached image input; cached text input's rate when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_cached_in: Option<f64>,
    /// Where this entry's numbers come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// One transcription model's prices: per 1M tokens, per minute of audio, or both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscriptionPrices {
    /// Per 1M input tokens (audio and prompt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<f64>,
    /// Per 1M output (text) tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<f64>,
    /// Per minute of audio.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<f64>,
    /// Where this entry's numbers come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Why a price table could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    /// The file could not be read: missing, not a regular file, too large or not UTF-8.
    #[error(
        "{error} (the price table comes from --prices, AGENT_PRICES or `price_table` under [limits])"
    )]
    Read {
        /// What went wrong, with the path (shown in the message, so not chained).
        error: ReadError,
    },
    /// The file is not a price table.
    #[error(
        "{origin} is not a valid price table: {message}; see agent-core/prices.toml for the format"
    )]
    Parse {
        /// The file name.
        origin: String,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// A price is negative, infinite or missing.
    #[error(
        "{origin}: `{entry}` has {problem}; prices are US dollars per 1M tokens (or per minute) and must be finite and ≥ 0"
    )]
    Invalid {
        /// The file name.
        origin: String,
        /// The table entry, e.g. `models.gpt-realtime`.
        entry: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// A model's prices as found in a table, and under which name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceMatch<'a, P> {
    /// The table entry that matched (the family for a snapshot).
    pub entry: &'a str,
    /// Its prices.
    pub prices: &'a P,
}

impl PriceTable {
    /// The compiled-in table of published prices (parsed once).
    pub fn builtin() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // The file is tested to parse; should that ever regress, costs show as unknown
            // rather than taking a session down.
            PriceTable::from_toml(BUILTIN_PRICES_TOML, "agent-core/prices.toml").unwrap_or_else(
                |err| {
                    tracing::error!("the built-in price table is invalid: {err}");
                    PriceTable::default()
                },
            )
        })
    }

    /// The compiled-in table behind a shared pointer, so thousands of sessions share one copy.
    pub fn shared() -> Arc<PriceTable> {
        static TABLE: OnceLock<Arc<PriceTable>> = OnceLock::new();
        TABLE
            .get_or_init(|| Arc::new(PriceTable::builtin().clone()))
            .clone()
    }

    /// Parses and checks a table; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<PriceTable, PriceError> {
        let table: PriceTable = toml::from_str(text).map_err(|err| PriceError::Parse {
            origin: origin.to_owned(),
            message: err.to_string().trim().to_owned(),
        })?;
        table.check(origin)?;
        Ok(table)
    }

    /// Reads and checks a table file.
    pub fn load(path: impl AsRef<Path>) -> Result<PriceTable, PriceError> {
        let path = path.as_ref();
        let text = read_text(path, MAX_PRICE_TABLE_BYTES, "price table")
            .map_err(|error| PriceError::Read { error })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// The built-in table with the file at `path` merged over it.
    pub fn builtin_with(path: impl AsRef<Path>) -> Result<PriceTable, PriceError> {
        let mut table = Self::builtin().clone();
        table.merge(Self::load(path)?);
        Ok(table)
    }

    /// Adds `other`'s entries, replacing entries of the same name; its date and source win when
    /// it has them.
    pub fn merge(&mut self, other: PriceTable) {
        if other.taken.is_some() {
            self.taken = other.taken;
        }
        if other.source.is_some() {
            self.source = other.source;
        }
        self.models.extend(other.models);
        self.transcription.extend(other.transcription);
    }

    /// The prices of a Realtime model: its own entry, or its family's for a dated snapshot.
    pub fn model(&self, name: &str) -> Option<PriceMatch<'_, ModelPrices>> {
        lookup(&self.models, name)
    }

    /// The prices of a transcription model, like [`PriceTable::model`].
    pub fn transcription_model(&self, name: &str) -> Option<PriceMatch<'_, TranscriptionPrices>> {
        lookup(&self.transcription, name)
    }

    fn check(&self, origin: &str) -> Result<(), PriceError> {
        let invalid = |entry: String, problem: String| PriceError::Invalid {
            origin: origin.to_owned(),
            entry,
            problem,
        };
        for (name, p) in &self.models {
            let fields = [
                ("text_in", Some(p.text_in)),
                ("text_cached_in", Some(p.text_cached_in)),
                ("text_out", Some(p.text_out)),
                ("audio_in", Some(p.audio_in)),
                ("audio_cached_in", Some(p.audio_cached_in)),
                ("audio_out", Some(p.audio_out)),
                ("image_in", p.image_in),
                ("image_cached_in", p.image_cached_in),
            ];
            for (field, value) in fields {
                if let Some(v) = value
                    && !(v.is_finite() && v >= 0.0)
                {
                    return Err(invalid(
                        format!("models.{name}"),
                        format!("`{field}` = {v}"),
                    ));
                }
            }
        }
        for (name, p) in &self.transcription {
            for (field, value) in [
                ("input", p.input),
                ("output", p.output),
                ("per_minute", p.per_minute),
            ] {
                if let Some(v) = value
                    && !(v.is_finite() && v >= 0.0)
                {
                    return Err(invalid(
                        format!("transcription.{name}"),
                        format!("`{field}` = {v}"),
                    ));
                }
            }
            if p.input.is_none() && p.per_minute.is_none() {
                return Err(invalid(
                    format!("transcription.{name}"),
                    "no price: give `input` (and `output`) per 1M tokens, or `per_minute`".into(),
                ));
            }
        }
        Ok(())
    }
}

impl ModelPrices {
    /// What `tokens` cost at these prices, in US dollars.
    pub fn cost(&self, tokens: &TokenCounts) -> f64 {
        let per_token = |count: u64, per_million: f64| count as f64 * per_million / 1_000_000.0;
        per_token(tokens.text_in, self.text_in)
            + per_token(tokens.text_cached_in, self.text_cached_in)
            + per_token(tokens.audio_in, self.audio_in)
            + per_token(tokens.audio_cached_in, self.audio_cached_in)
            + per_token(tokens.image_in, self.image_in.unwrap_or(self.text_in))
            + per_token(
                tokens.image_cached_in,
                self.image_cached_in.unwrap_or(self.text_cached_in),
            )
            + per_token(tokens.text_out, self.text_out)
            + per_token(tokens.audio_out, self.audio_out)
    }
}

impl TranscriptionPrices {
    /// What a transcription cost, or `None` when the usage is of a kind these prices do not
    /// cover (seconds for a token-priced model, or the reverse).
    pub fn cost(&self, usage: &TranscriptionCounts) -> Option<f64> {
        let tokens = usage.input_tokens + usage.output_tokens;
        if tokens > 0 {
            let input = self.input?;
            let output = self.output.unwrap_or(0.0);
            return Some(
                (usage.input_tokens as f64 * input + usage.output_tokens as f64 * output)
                    / 1_000_000.0,
            );
        }
        if usage.seconds > 0.0 {
            return Some(usage.seconds / 60.0 * self.per_minute?);
        }
        Some(0.0)
    }
}

fn lookup<'a, P>(entries: &'a BTreeMap<String, P>, name: &str) -> Option<PriceMatch<'a, P>> {
    let name = name.trim().to_ascii_lowercase();
    let found = |key: &str| {
        entries
            .get_key_value(key)
            .map(|(entry, prices)| PriceMatch {
                entry: entry.as_str(),
                prices,
            })
    };
    found(&name).or_else(|| strip_snapshot_date(&name).and_then(found))
}

/// `gpt-realtime-2025-08-28` → `gpt-realtime`: the family of a dated snapshot.
pub fn strip_snapshot_date(name: &str) -> Option<&str> {
    let (family, date) = name.len().checked_sub(11).map(|at| name.split_at(at))?;
    let date = date.strip_prefix('-')?;
    let bytes = date.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            _ => b.is_ascii_digit(),
        });
    (shape_ok && !family.is_empty()).then_some(family)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_parses_and_has_the_four_families() {
        let table = PriceTable::from_toml(BUILTIN_PRICES_TOML, "prices.toml").unwrap();
        assert!(table.taken.is_some() && table.source.is_some());
        for model in [
            "gpt-realtime",
            "gpt-realtime-mini",
            "gpt-4o-realtime-preview",
            "gpt-4o-mini-realtime-preview",
        ] {
            let found = table.model(model).unwrap();
            assert_eq!(found.entry, model);
            assert!(found.prices.source.is_some(), "{model} names its source");
        }
        assert_eq!(&table, PriceTable::builtin());
    }

    #[test]
    fn snapshots_map_to_their_family() {
        let table = PriceTable::builtin();
        assert_eq!(
            table.model("gpt-realtime-2025-08-28").unwrap().entry,
            "gpt-realtime"
        );
        assert_eq!(
            table.model("GPT-Realtime-Mini-2025-10-06").unwrap().entry,
            "gpt-realtime-mini"
        );
        assert_eq!(
            table
                .model("gpt-4o-realtime-preview-2024-12-17")
                .unwrap()
                .entry,
            "gpt-4o-realtime-preview"
        );
        // A different model is not a snapshot of a known one.
        assert!(table.model("gpt-realtime-9").is_none());
        assert!(table.model("my-local-model").is_none());
        assert_eq!(strip_snapshot_date("x-2025-1-028"), None);
        assert_eq!(strip_snapshot_date("-2025-10-28"), None);
    }

    #[test]
    fn cost_uses_every_bucket() {
        let prices = &PriceTable::builtin().model("gpt-realtime").unwrap().prices;
        let tokens = TokenCounts {
            text_in: 1_000_000,
            text_cached_in: 1_000_000,
            audio_in: 1_000_000,
            audio_cached_in: 1_000_000,
            text_out: 1_000_000,
            audio_out: 1_000_000,
            ..TokenCounts::default()
        };
        let expected = prices.text_in
            + prices.text_cached_in
            + prices.audio_in
            + prices.audio_cached_in
            + prices.text_out
            + prices.audio_out;
        assert!((prices.cost(&tokens) - expected).abs() < 1e-9);
    }

    #[test]
    fn user_tables_merge_over_the_builtin_one() {
        let mine = PriceTable::from_toml(
            r#"
taken = "2030-01-01"
[models.gpt-realtime]
text_in = 1
text_cached_in = 0
text_out = 2
audio_in = 3
audio_cached_in = 0
audio_out = 4
[models.local]
text_in = 0
text_cached_in = 0
text_out = 0
audio_in = 0
audio_cached_in = 0
audio_out = 0
"#,
            "mine.toml",
        )
        .unwrap();
        let mut table = PriceTable::builtin().clone();
        table.merge(mine);
        assert_eq!(table.taken.as_deref(), Some("2030-01-01"));
        assert_eq!(table.model("gpt-realtime").unwrap().prices.text_in, 1.0);
        assert!(table.model("local").is_some());
        assert!(table.model("gpt-realtime-mini").is_some());
    }

    #[test]
    fn bad_tables_say_what_to_fix() {
        let negative = "[models.x]\ntext_in = -1\ntext_cached_in = 0\ntext_out = 0\naudio_in = 0\naudio_cached_in = 0\naudio_out = 0\n";
        let err = PriceTable::from_toml(negative, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("models.x") && err.contains("text_in"), "{err}");
        let err = PriceTable::from_toml("[models.x]\ntext_in = 1\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("p.toml") && err.contains("missing field"),
            "{err}"
        );
        let err = PriceTable::from_toml("[transcription.t]\n", "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("per_minute"), "{err}");
        let err = PriceTable::load("/nonexistent/prices.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--prices"), "{err}");
    }

    #[test]
    fn price_tables_are_read_within_a_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.toml");
        let mut text = "[models.x]\n".to_owned();
        text.push_str(&"#".repeat(MAX_PRICE_TABLE_BYTES as usize));
        std::fs::write(&path, text).unwrap();
        let err = PriceTable::load(&path).unwrap_err();
        assert!(
            matches!(
                &err,
                PriceError::Read {
                    error: ReadError::TooLarge { .. }
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("prices.toml"), "{err}");
        let err = PriceTable::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a directory, not a regular file"), "{err}");
    }

    #[test]
    fn transcription_prices_by_tokens_or_minutes() {
        let table = PriceTable::builtin();
        let mini = table
            .transcription_model("gpt-4o-mini-transcribe")
            .unwrap()
            .prices;
        let used = TranscriptionCounts {
            input_tokens: 1_000_000,
            output_tokens: 1_000_000,
            ..TranscriptionCounts::default()
        };
        assert!((mini.cost(&used).unwrap() - 6.25).abs() < 1e-9);
        let whisper = table
            .transcription_model("gpt-realtime-whisper")
            .unwrap()
            .prices;
        let minute = TranscriptionCounts {
            seconds: 60.0,
            ..TranscriptionCounts::default()
        };
        assert!((whisper.cost(&minute).unwrap() - 0.017).abs() < 1e-12);
        // Tokens for a per-minute model cannot be priced.
        assert_eq!(whisper.cost(&used), None);
    }
}
