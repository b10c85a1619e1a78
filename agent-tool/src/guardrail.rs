//! Guardrails written in Rust: a check on the user's input or the assistant's output, named in
//! an agent file (`[[guardrails.output]] type = "rust", name = "..."`) and registered at link
//! time with [`register_guardrail!`](crate::register_guardrail), like `#[tool]`s.
//!
//! ```
//! use agent_tool::{Guardrail, GuardrailStage, register_guardrail};
//!
//! /// Stops any answer that promises a refund: only billing may.
//! struct NoRefundPromises;
//!
//! impl Guardrail for NoRefundPromises {
//!     fn name(&self) -> &str {
//!         "no_refund_promises"
//!     }
//!     fn check(&self, text: &str, _stage: GuardrailStage) -> Result<(), String> {
//!         if text.to_lowercase().contains("you will get a refund") {
//!             return Err("promised a refund".into());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! register_guardrail!(NoRefundPromises);
//! ```

/// What a guardrail looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GuardrailStage {
    /// The user's typed text, or the transcript of what they said.
    Input,
    /// The assistant's text or audio transcript, as it streams (the text so far).
    Output,
}

impl GuardrailStage {
    /// `"input"` or `"output"`.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardrailStage::Input => "input",
            GuardrailStage::Output => "output",
        }
    }
}

/// A check on text. It runs on the session's task, on every debounced piece of a streaming
/// answer, so it must be quick and must not block; a panic counts as a trip (a guardrail that
/// cannot decide does not let the text through).
pub trait Guardrail: Send + Sync + 'static {
    /// The name agent files use (`name = "..."` under `type = "rust"`).
    fn name(&self) -> &str;

    /// `Err(why)` when `text` must not pass; `why` is logged and, in the runtime's words, told
    /// to the model. Output checks see the whole answer so far, not only the newest piece.
    fn check(&self, text: &str, stage: GuardrailStage) -> Result<(), String>;
}

/// A guardrail submitted to `inventory` by [`register_guardrail!`](crate::register_guardrail).
pub struct GuardrailRegistration {
    constructor: fn() -> std::sync::Arc<dyn Guardrail>,
    source: &'static str,
}

impl GuardrailRegistration {
    /// A registration; `source` says where it is defined.
    pub const fn new(
        constructor: fn() -> std::sync::Arc<dyn Guardrail>,
        source: &'static str,
    ) -> Self {
        GuardrailRegistration {
            constructor,
            source,
        }
    }

    /// A fresh instance of the guardrail.
    pub fn construct(&self) -> std::sync::Arc<dyn Guardrail> {
        (self.constructor)()
    }

    /// Where it is defined.
    pub fn source(&self) -> &'static str {
        self.source
    }
}

impl std::fmt::Debug for GuardrailRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuardrailRegistration")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

inventory::collect!(GuardrailRegistration);

/// Registers a [`Guardrail`] value (an expression, built on first use of the registry), so
/// agent files can name it. As with tools, a crate's registrations are linked only if the
/// program uses the crate.
#[macro_export]
macro_rules! register_guardrail {
    ($value:expr) => {
        $crate::__private::inventory::submit! {
            $crate::GuardrailRegistration::new(
                || ::std::sync::Arc::new($value),
                concat!(module_path!(), " (", file!(), ":", line!(), ")"),
            )
        }
    };
}
