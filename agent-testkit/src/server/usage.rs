//! Deterministic token counts for `response.done.usage`.
//!
//! The model: text is 1 token per 4 characters (rounded up) plus 4 per item; user audio is 1
//! token per 100 ms and assistant audio 1 per 50 ms (the published Realtime rates); cached input
//! is the previous response's input rounded down to a multiple of 64 (prefix caching).

use serde_json::{Value, json};

use super::conversation::Conversation;
use super::session;

/// Input token counts of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InputTokens {
    pub(crate) text: u64,
    pub(crate) audio: u64,
}

impl InputTokens {
    pub(crate) fn total(self) -> u64 {
        self.text + self.audio
    }
}

pub(crate) fn text_tokens(chars: usize) -> u64 {
    (chars as u64).div_ceil(4)
}

/// Estimates the input of a response: instructions and tools plus the whole conversation.
pub(crate) fn input_tokens(conversation: &Conversation, view: &session::View<'_>) -> InputTokens {
    let mut tokens = InputTokens {
        text: text_tokens(view.prompt_chars()),
        audio: 0,
    };
    for (entry, chars) in conversation.with_text_chars() {
        tokens.text += 4 + text_tokens(chars);
        tokens.audio += entry.input_audio_ms.div_ceil(100);
        if let Some(ms) = entry.audio_ms_sent {
            tokens.audio += ms.div_ceil(50);
        }
    }
    tokens
}

pub(crate) fn item_text_chars(item: &Value) -> usize {
    let mut chars = 0;
    for key in ["arguments", "output", "name"] {
        chars += item.get(key).and_then(Value::as_str).map_or(0, str::len);
    }
    if let Some(content) = item.get("content").and_then(Value::as_array) {
        for part in content {
            for key in ["text", "transcript"] {
                chars += part.get(key).and_then(Value::as_str).map_or(0, str::len);
            }
        }
    }
    chars
}

/// Builds the usage object, then merges a scripted override over it.
pub(crate) fn usage(
    input: InputTokens,
    cached: u64,
    output_text: u64,
    output_audio: u64,
    scripted: Option<&Value>,
) -> Value {
    let cached = cached.min(input.total());
    let cached_text = cached.min(input.text);
    let cached_audio = (cached - cached_text).min(input.audio);
    let output = output_text + output_audio;
    let mut usage = json!({
        "total_tokens": input.total() + output,
        "input_tokens": input.total(),
        "output_tokens": output,
        "input_token_details": {
            "text_tokens": input.text,
            "audio_tokens": input.audio,
            "image_tokens": 0,
            "cached_tokens": cached_text + cached_audio,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached_audio,
                "image_tokens": 0
            }
        },
        "output_token_details": {
            "text_tokens": output_text,
            "audio_tokens": output_audio
        }
    });
    if let Some(over) = scripted {
        session::merge(&mut usage, over);
        let sets_total = over.get("total_tokens").is_some();
        if !sets_total {
            let i = usage
                .get("input_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let o = usage
                .get("output_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if let Some(obj) = usage.as_object_mut() {
                obj.insert("total_tokens".into(), json!(i + o));
            }
        }
    }
    usage
}

/// The cached prefix for the next response, given this response's input.
pub(crate) fn cached_prefix(previous_input: u64) -> u64 {
    previous_input / 64 * 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_keeps_totals_consistent() {
        let u = usage(
            InputTokens {
                text: 100,
                audio: 20,
            },
            64,
            10,
            40,
            Some(&json!({"input_tokens": 1000})),
        );
        assert_eq!(u["input_tokens"], 1000);
        assert_eq!(u["total_tokens"], 1050);
        assert_eq!(u["input_token_details"]["cached_tokens"], 64);
        assert_eq!(u["output_token_details"]["audio_tokens"], 40);
    }
}
