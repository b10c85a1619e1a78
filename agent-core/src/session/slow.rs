//! Slow and background tools: what a session does while a tool takes its time.
//!
//! A voice conversation cannot sit in silence while a tool works. Two remedies, both set in the
//! agent file's `[tool_options]`:
//!
//! - **Background tools** (`background = [...]`, or `#[tool(background)]`) answer the model at
//!   once with a "started" output, so it can go on talking. When the tool finishes, its result
//!   enters the conversation once, as a user-role message labelled with the call id (never a
//!   system message: a tool's output is data, and a system message would let it give orders),
//!   and the sequencer asks for a response when the model is idle.
//! - **A filler** (`filler_after_ms`): when a response's calls are still running after that
//!   long, one out-of-band `response.create` (`conversation: "none"`) has the agent say a short
//!   line ("One moment, I'm checking."). It stays out of the conversation, and the follow-up
//!   with the tools' outputs waits for its end.
//!
//! This module holds the settings and the wire shapes, which need no session state.

use std::{collections::HashSet, time::Duration};

use serde_json::{Map, Value, json};

use crate::protocol::{
    ClientEvent, ConversationTarget, Modality, Response, ResponseCreateParams, ToolChoice,
};

/// How long a background call may run when the agent file does not say.
pub const DEFAULT_BACKGROUND_TIMEOUT: Duration = Duration::from_secs(300);

/// What the agent is told to say as a filler when the agent file does not say.
pub const DEFAULT_FILLER_INSTRUCTIONS: &str = "Say one short sentence telling the user you are still working on it, such as 'One moment, I'm checking.' Do not say anything else.";

/// The `metadata.purpose` of a filler response, so its events are told apart from the
/// conversation's own responses (the server echoes metadata in `response.created`).
pub const FILLER_PURPOSE: &str = "filler";

/// Which tools run in the background, and whether slow calls get a filler line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowTools {
    /// Tools whose calls run in the background (besides those whose code says so).
    pub background: HashSet<String>,
    /// How long a background call may run; it gets its own, longer deadline.
    pub background_timeout: Duration,
    /// The filler for slow calls; `None` says nothing while tools run.
    pub filler: Option<Filler>,
}

impl Default for SlowTools {
    fn default() -> Self {
        SlowTools {
            background: HashSet::new(),
            background_timeout: DEFAULT_BACKGROUND_TIMEOUT,
            filler: None,
        }
    }
}

/// A short line the agent says when a response's calls run long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filler {
    /// How long the calls run before the filler is asked for.
    pub after: Duration,
    /// The instructions of the filler response.
    pub instructions: String,
}

/// The output a background call answers with at once, so the model knows the result follows.
pub fn started_output() -> String {
    json!({
        "status": "started",
        "note": "running in the background; the result will follow",
    })
    .to_string()
}

/// The user-role message that brings a background call's result into the conversation,
/// labelled with the call it answers.
pub fn result_message(call_id: &str, tool: &str, output: &str) -> String {
    format!("[result of background call {call_id} ({tool})]: {output}")
}

/// The out-of-band `response.create` of a filler: outside the conversation, no tools, the
/// session's modalities, and `metadata.purpose = "filler"`.
pub fn filler_create(filler: &Filler, modalities: Option<Vec<Modality>>) -> ClientEvent {
    let mut metadata = Map::new();
    metadata.insert("purpose".into(), Value::from(FILLER_PURPOSE));
    ClientEvent::response_create_with(ResponseCreateParams {
        conversation: Some(ConversationTarget::None),
        instructions: Some(filler.instructions.clone()),
        output_modalities: modalities,
        tool_choice: Some(ToolChoice::None),
        metadata: Some(metadata),
        ..ResponseCreateParams::default()
    })
}

/// Whether `response` is a filler: out of band, with the filler's metadata.
pub fn is_filler(response: &Response) -> bool {
    response.conversation_id.is_none()
        && response
            .metadata
            .as_ref()
            .and_then(|m| m.get("purpose"))
            .and_then(Value::as_str)
            == Some(FILLER_PURPOSE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_started_output_says_the_result_follows() {
        let value: Value = serde_json::from_str(&started_output()).unwrap();
        assert_eq!(value["status"], "started");
        assert!(
            value["note"]
                .as_str()
                .unwrap()
                .contains("result will follow")
        );
    }

    #[test]
    fn a_result_names_its_call_and_tool() {
        assert_eq!(
            result_message("call_1", "report", "{\"pages\":3}"),
            "[result of background call call_1 (report)]: {\"pages\":3}"
        );
    }

    #[test]
    fn a_filler_is_out_of_band_without_tools_and_marked() {
        let filler = Filler {
            after: Duration::from_millis(800),
            instructions: DEFAULT_FILLER_INSTRUCTIONS.into(),
        };
        let event = filler_create(&filler, Some(vec![Modality::Audio]));
        let value = event.to_value(crate::protocol::Dialect::Ga).unwrap();
        let response = &value["response"];
        assert_eq!(response["conversation"], "none");
        assert_eq!(response["instructions"], DEFAULT_FILLER_INSTRUCTIONS);
        assert_eq!(response["output_modalities"], json!(["audio"]));
        assert_eq!(response["tool_choice"], "none");
        assert_eq!(response["metadata"], json!({"purpose": "filler"}));
        let beta = event.to_value(crate::protocol::Dialect::Beta).unwrap();
        assert_eq!(beta["response"]["conversation"], "none");
        assert_eq!(beta["response"]["modalities"], json!(["audio"]));
    }

    #[test]
    fn only_an_out_of_band_response_marked_filler_is_one() {
        let mut metadata = Map::new();
        metadata.insert("purpose".into(), Value::from("filler"));
        let mut response = Response {
            metadata: Some(metadata),
            ..Response::default()
        };
        assert!(is_filler(&response));
        response.conversation_id = Some("conv_1".into());
        assert!(!is_filler(&response), "in the conversation");
        assert!(!is_filler(&Response::default()));
    }
}
