//! Token usage, as `response.done` and input transcription report it; the basis of cost.
//!
//! Counters default to zero when a server leaves them out or sends `null`, so cost code can
//! add them up without unwrapping.

use serde::{Deserialize, Serialize};

use super::lenient::{lenient_option, null_as_default};

/// Tokens used by one response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input plus output tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub total_tokens: u64,
    /// Tokens read: instructions, tools, conversation (including cached tokens).
    #[serde(default, deserialize_with = "null_as_default")]
    pub input_tokens: u64,
    /// Tokens generated.
    #[serde(default, deserialize_with = "null_as_default")]
    pub output_tokens: u64,
    /// Input tokens by modality and cache.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_option"
    )]
    pub input_token_details: Option<InputTokenDetails>,
    /// Output tokens by modality.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_option"
    )]
    pub output_token_details: Option<OutputTokenDetails>,
}

/// Input tokens by modality; cached tokens are billed at a lower rate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTokenDetails {
    /// Input tokens served from the prompt cache (all modalities).
    #[serde(default, deserialize_with = "null_as_default")]
    pub cached_tokens: u64,
    /// Text input tokens (cached or not).
    #[serde(default, deserialize_with = "null_as_default")]
    pub text_tokens: u64,
    /// Audio input tokens (cached or not).
    #[serde(default, deserialize_with = "null_as_default")]
    pub audio_tokens: u64,
    /// Image input tokens (cached or not).
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_tokens: u64,
    /// Cached input tokens by modality.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_option"
    )]
    pub cached_tokens_details: Option<CachedTokenDetails>,
}

/// Cached input tokens by modality.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedTokenDetails {
    /// Cached text tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub text_tokens: u64,
    /// Cached audio tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub audio_tokens: u64,
    /// Cached image tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image_tokens: u64,
}

/// Output tokens by modality.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputTokenDetails {
    /// Text output tokens (including audio transcripts).
    #[serde(default, deserialize_with = "null_as_default")]
    pub text_tokens: u64,
    /// Audio output tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub audio_tokens: u64,
}

/// What an input transcription cost: tokens for token-billed models, seconds for the others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TranscriptionUsage {
    /// Token-billed transcription (`gpt-4o-transcribe` and friends).
    Tokens {
        /// Audio (and prompt) tokens read.
        #[serde(default, deserialize_with = "null_as_default")]
        input_tokens: u64,
        /// Text tokens written.
        #[serde(default, deserialize_with = "null_as_default")]
        output_tokens: u64,
        /// Input plus output tokens.
        #[serde(default, deserialize_with = "null_as_default")]
        total_tokens: u64,
        /// Input tokens by modality.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_token_details: Option<TranscriptionInputTokenDetails>,
    },
    /// Duration-billed transcription (`whisper-1`).
    Duration {
        /// Seconds of audio transcribed.
        #[serde(default, deserialize_with = "null_as_default")]
        seconds: f64,
    },
}

/// Input tokens of a transcription by modality.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptionInputTokenDetails {
    /// Text (prompt) tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub text_tokens: u64,
    /// Audio tokens.
    #[serde(default, deserialize_with = "null_as_default")]
    pub audio_tokens: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_tolerates_nulls_and_placeholders() {
        let usage: Usage = serde_json::from_value(json!({
            "total_tokens": 151, "input_tokens": null, "output_tokens": 79,
            "input_token_details": "__truncated_by_node_inspect__",
            "output_token_details": {"text_tokens": 79, "audio_tokens": null}
        }))
        .unwrap();
        assert_eq!(usage.total_tokens, 151);
        assert_eq!(usage.input_tokens, 0);
        assert_eq!(usage.input_token_details, None);
        assert_eq!(usage.output_token_details.unwrap().text_tokens, 79);
    }

    #[test]
    fn transcription_usage_has_two_shapes() {
        let tokens: TranscriptionUsage = serde_json::from_value(json!({
            "type": "tokens", "total_tokens": 22, "input_tokens": 13, "output_tokens": 9,
            "input_token_details": {"text_tokens": 0, "audio_tokens": 13}
        }))
        .unwrap();
        assert!(matches!(
            tokens,
            TranscriptionUsage::Tokens {
                total_tokens: 22,
                ..
            }
        ));
        let duration: TranscriptionUsage =
            serde_json::from_value(json!({"type": "duration", "seconds": 1.5})).unwrap();
        assert_eq!(duration, TranscriptionUsage::Duration { seconds: 1.5 });
    }
}
