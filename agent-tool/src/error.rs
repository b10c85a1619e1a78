//! What can go wrong when a tool is called or registered.
//!
//! A [`ToolError`] is never fatal to a session: the runtime turns it into a
//! `function_call_output` the model reads ([`ToolError::to_model_output`]) so it can correct
//! its arguments, pick another tool or tell the user.

use std::{any::Any, time::Duration};

use serde_json::{Value, json};

/// Why a tool call produced no output.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The arguments were not JSON, or did not match the tool's parameters.
    #[error("invalid arguments for tool `{tool}`: {message}; expected {expected}")]
    InvalidArguments {
        /// The tool that rejected them.
        tool: String,
        /// What was wrong, naming the argument when one is to blame.
        message: String,
        /// What a valid argument object looks like.
        expected: String,
    },
    /// The tool ran and reported a failure.
    #[error("{message}")]
    Failed {
        /// The tool's error, as its `Display` renders it.
        message: String,
    },
    /// The call took longer than the agent allows.
    #[error("the tool did not finish within {:.1} s", after.as_secs_f64())]
    Timeout {
        /// The limit that ran out.
        after: Duration,
    },
    /// The tool panicked; the session goes on.
    #[error("the tool crashed: {message}")]
    Panicked {
        /// The panic payload, when it is a string.
        message: String,
    },
    /// The model asked for a tool this agent does not have.
    #[error(
        "there is no tool named `{name}`{}",
        render_hint(suggestions, available)
    )]
    UnknownTool {
        /// The name the model used.
        name: String,
        /// Every tool the agent has.
        available: Vec<String>,
        /// The registered names closest to `name`, best first.
        suggestions: Vec<String>,
    },
    /// The response that asked for the call was cancelled (the user interrupted) or the session
    /// ended before the tool finished.
    #[error("the call was cancelled before it finished")]
    Cancelled,
    /// The call started before the program running it stopped (a crash, a kill) and never
    /// finished. It may or may not have taken effect, so it is not run again by itself.
    #[error(
        "the call to `{tool}` was interrupted: the program running it stopped before it finished, so it may or may not have taken effect; do not assume either, check or ask the user before calling it again"
    )]
    Interrupted {
        /// The tool that was running.
        tool: String,
    },
    /// The turn already used the agent's `max_tool_rounds`.
    #[error(
        "not run: this turn already used {limit} rounds of tool calls (max_tool_rounds); answer the user with what you have"
    )]
    RoundLimit {
        /// The limit.
        limit: u32,
    },
    /// The call needed a person's approval and did not get it: denied, or no answer in time.
    #[error(
        "not run: the user did not approve this call to `{tool}` ({reason}); tell the user it was not done, and call it again only if they ask"
    )]
    NotApproved {
        /// The tool.
        tool: String,
        /// Why: "denied", "denied: <their reason>", "no answer within 60 s".
        reason: String,
    },
}

fn render_hint(suggestions: &[String], available: &[String]) -> String {
    if !suggestions.is_empty() {
        format!("; did you mean `{}`?", suggestions.join("` or `"))
    } else if available.is_empty() {
        "; this agent has no tools".to_owned()
    } else {
        format!("; available tools: `{}`", available.join("`, `"))
    }
}

impl ToolError {
    /// A tool-reported failure with this message.
    pub fn failed(message: impl Into<String>) -> Self {
        ToolError::Failed {
            message: message.into(),
        }
    }

    /// Arguments that `tool` cannot use: what was wrong and what it expected instead.
    pub fn invalid_arguments(
        tool: impl Into<String>,
        message: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        ToolError::InvalidArguments {
            tool: tool.into(),
            message: message.into(),
            expected: expected.into(),
        }
    }

    /// The error for a tool that panicked, from the panic's payload (as `catch_unwind` or a
    /// task's `JoinError` hands it over): its message when the payload is a string.
    pub fn from_panic(payload: &(dyn Any + Send)) -> Self {
        let message = if let Some(text) = payload.downcast_ref::<&str>() {
            (*text).to_owned()
        } else if let Some(text) = payload.downcast_ref::<String>() {
            text.clone()
        } else {
            "the tool panicked".to_owned()
        };
        ToolError::Panicked { message }
    }

    /// A stable, machine-readable name for the variant (`invalid_arguments`, `timeout`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            ToolError::InvalidArguments { .. } => "invalid_arguments",
            ToolError::Failed { .. } => "failed",
            ToolError::Timeout { .. } => "timeout",
            ToolError::Panicked { .. } => "panicked",
            ToolError::UnknownTool { .. } => "unknown_tool",
            ToolError::Cancelled => "cancelled",
            ToolError::Interrupted { .. } => "interrupted",
            ToolError::RoundLimit { .. } => "round_limit",
            ToolError::NotApproved { .. } => "not_approved",
        }
    }

    /// The `function_call_output` the model reads instead of a result: a JSON object with
    /// `error` (the message), `kind`, and where they help, `expected` or `did_you_mean`.
    pub fn to_model_output(&self) -> String {
        let mut out = json!({ "error": self.to_string(), "kind": self.kind() });
        match self {
            ToolError::InvalidArguments { expected, .. } => {
                out["expected"] = Value::from(expected.as_str());
            }
            ToolError::UnknownTool {
                suggestions,
                available,
                ..
            } => {
                out["did_you_mean"] = Value::from(suggestions.clone());
                out["available"] = Value::from(available.clone());
            }
            ToolError::Timeout { after } => {
                out["after_secs"] = Value::from(after.as_secs_f64());
            }
            _ => {}
        }
        out.to_string()
    }
}

/// Why a tool could not be added to a registry (agent-core's `ToolRegistry`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two tools claim one name; the model could not tell them apart.
    #[error(
        "two tools are named `{name}`: one from {first_source}, one from {second_source}; rename one with #[tool(name = \"...\")]"
    )]
    Duplicate {
        /// The shared name.
        name: String,
        /// Where the tool registered first comes from (`crate::module (file:line)`).
        first_source: String,
        /// Where the second one comes from.
        second_source: String,
    },
    /// The name is not one the Realtime API accepts (`^[a-zA-Z0-9_-]{1,64}$`).
    #[error(
        "tool name `{name}` (from {origin}) is invalid: use 1 to 64 letters, digits, `_` or `-`"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Where the tool comes from.
        origin: String,
    },
    /// The tool's parameters schema is not an object schema.
    #[error("tool `{name}` (from {origin}) has an unusable parameters schema: {problem}")]
    InvalidSchema {
        /// The tool.
        name: String,
        /// Where it comes from.
        origin: String,
        /// What is wrong with the schema.
        problem: String,
    },
    /// A tool a crate promises (a built-in) is not in the inventory: its submission was not
    /// linked into the program.
    #[error(
        "tool `{name}` is not registered: the crate that defines it was not linked in; call its `link()` or `registry()` function"
    )]
    NotLinked {
        /// The missing tool.
        name: String,
    },
    /// A name asked for (in an agent file, say) is not registered.
    #[error("there is no tool named `{name}`{}", render_hint(suggestions, &[]))]
    UnknownTool {
        /// The name asked for.
        name: String,
        /// The registered names closest to it.
        suggestions: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_output_is_json_with_the_hint() {
        let err = ToolError::invalid_arguments(
            "calc",
            "missing field `expression`",
            "a JSON object with `expression: string (required)`",
        );
        let out: Value = serde_json::from_str(&err.to_model_output()).unwrap();
        assert_eq!(out["kind"], "invalid_arguments");
        assert!(
            out["error"]
                .as_str()
                .unwrap()
                .contains("missing field `expression`")
        );
        assert!(out["expected"].as_str().unwrap().contains("expression"));

        let unknown = ToolError::UnknownTool {
            name: "calculater".into(),
            available: vec!["calculate".into(), "current_time".into()],
            suggestions: vec!["calculate".into()],
        };
        assert_eq!(
            unknown.to_string(),
            "there is no tool named `calculater`; did you mean `calculate`?"
        );
        let out: Value = serde_json::from_str(&unknown.to_model_output()).unwrap();
        assert_eq!(out["did_you_mean"], json!(["calculate"]));
    }

    #[test]
    fn panics_keep_their_message() {
        let text = std::panic::catch_unwind(|| panic!("boom {}", 1)).unwrap_err();
        assert_eq!(
            ToolError::from_panic(text.as_ref()),
            ToolError::Panicked {
                message: "boom 1".into()
            }
        );
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(
            ToolError::from_panic(other.as_ref()).to_string(),
            "the tool crashed: the tool panicked"
        );
    }
}
