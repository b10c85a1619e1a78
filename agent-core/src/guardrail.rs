//! Guardrails, compiled: the checks an agent file declares under `[guardrails]`, ready to run
//! on text.
//!
//! Built-in kinds (a blocklist, a regular expression, a maximum length) are compiled once when
//! the agent loads, so a bad pattern is an error at its line, never at run time. Rust
//! guardrails come from the inventory ([`agent_tool::register_guardrail!`]). What happens when
//! one trips — the answer cut off, the model told why — is the session's (see
//! `session::runner::guardrails`).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

pub use agent_tool::{Guardrail, GuardrailRegistration, GuardrailStage};

use crate::agent::{GuardrailSpec, GuardrailsSpec, InputGuardMode};

/// The longest pattern or blocklist accepted, so a hostile agent file cannot make every check
/// slow (regex compiles to a bounded automaton; this bounds its size).
const MAX_PATTERN_BYTES: usize = 4096;

/// A guardrail that tripped: which, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trip {
    /// The guardrail's name.
    pub guardrail: String,
    /// Why, in plain words (the agent file's `message`, else the check's own reason).
    pub reason: String,
}

/// One compiled check.
#[derive(Clone)]
enum Check {
    Blocklist(regex::Regex),
    Pattern(regex::Regex),
    MaxLength(usize),
    Rust(Arc<dyn Guardrail>),
}

#[derive(Clone)]
struct Compiled {
    name: String,
    check: Check,
    message: Option<String>,
}

impl Compiled {
    fn run(&self, text: &str, stage: GuardrailStage) -> Option<Trip> {
        let reason = match &self.check {
            Check::Blocklist(words) => words
                .is_match(text)
                .then(|| "it uses a blocked word or phrase".to_owned()),
            Check::Pattern(pattern) => pattern
                .is_match(text)
                .then(|| "it matches a blocked pattern".to_owned()),
            Check::MaxLength(max) => {
                (text.chars().count() > *max).then(|| format!("it is longer than {max} characters"))
            }
            Check::Rust(guardrail) => {
                let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    guardrail.check(text, stage)
                }));
                match checked {
                    Ok(Ok(())) => None,
                    Ok(Err(why)) => Some(why),
                    // A guardrail that cannot decide does not let the text through.
                    Err(_) => Some(format!("the guardrail `{}` failed", self.name)),
                }
            }
        }?;
        Some(Trip {
            guardrail: self.name.clone(),
            reason: self.message.clone().unwrap_or(reason),
        })
    }
}

/// An agent's guardrails, compiled.
#[derive(Clone)]
pub struct Guardrails {
    input: Vec<Compiled>,
    output: Vec<Compiled>,
    /// How spoken input is checked.
    pub input_mode: InputGuardMode,
    /// How often a streaming answer is checked, at most.
    pub output_debounce: Duration,
    /// Answers asked for again after an output trip, per user turn.
    pub max_retries: u32,
}

impl std::fmt::Debug for Guardrails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |list: &[Compiled]| list.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        f.debug_struct("Guardrails")
            .field("input", &names(&self.input))
            .field("output", &names(&self.output))
            .field("input_mode", &self.input_mode)
            .finish_non_exhaustive()
    }
}

/// Why a guardrail declaration cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardrailError {
    /// The pattern is not a valid regular expression, or too large.
    #[error("guardrail pattern: {0}")]
    Pattern(String),
    /// A blocklist with no words.
    #[error("a blocklist guardrail needs at least one non-empty word")]
    EmptyBlocklist,
    /// No registered Rust guardrail has this name.
    #[error("no Rust guardrail named `{name}` is registered{}", known_list(.known))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The registered names.
        known: Vec<String>,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (none is: register one with agent_tool::register_guardrail!)".into()
    } else {
        format!(" (registered: {})", known.join(", "))
    }
}

/// The Rust guardrails linked into this program, by name.
pub fn registered() -> BTreeMap<String, Arc<dyn Guardrail>> {
    inventory::iter::<GuardrailRegistration>
        .into_iter()
        .map(|r| {
            let guardrail = r.construct();
            (guardrail.name().to_owned(), guardrail)
        })
        .collect()
}

fn compile(
    spec: &GuardrailSpec,
    rust: &BTreeMap<String, Arc<dyn Guardrail>>,
) -> Result<Compiled, GuardrailError> {
    let build = |pattern: &str| {
        regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|err| GuardrailError::Pattern(err.to_string()))
    };
    let (name, check, message) = match spec {
        GuardrailSpec::Blocklist {
            name,
            words,
            message,
        } => {
            let words: Vec<String> = words
                .iter()
                .map(|w| w.trim())
                .filter(|w| !w.is_empty())
                .map(regex::escape)
                .collect();
            if words.is_empty() {
                return Err(GuardrailError::EmptyBlocklist);
            }
            let alternatives = words.join("|");
            if alternatives.len() > MAX_PATTERN_BYTES * 4 {
                return Err(GuardrailError::Pattern("the blocklist is too long".into()));
            }
            let pattern = format!(r"(?:^|\b|\W)(?:{alternatives})(?:$|\b|\W)");
            (
                name.clone().unwrap_or_else(|| "blocklist".into()),
                Check::Blocklist(build(&pattern)?),
                message.clone(),
            )
        }
        GuardrailSpec::Regex {
            name,
            pattern,
            message,
        } => {
            if pattern.len() > MAX_PATTERN_BYTES {
                return Err(GuardrailError::Pattern(format!(
                    "longer than {MAX_PATTERN_BYTES} bytes"
                )));
            }
            (
                name.clone().unwrap_or_else(|| "regex".into()),
                Check::Pattern(build(pattern)?),
                message.clone(),
            )
        }
        GuardrailSpec::MaxLength {
            name,
            max_chars,
            message,
        } => (
            name.clone().unwrap_or_else(|| "max_length".into()),
            Check::MaxLength(*max_chars),
            message.clone(),
        ),
        GuardrailSpec::Rust { name, message } => {
            let guardrail = rust
                .get(name)
                .cloned()
                .ok_or_else(|| GuardrailError::Unknown {
                    name: name.clone(),
                    known: rust.keys().cloned().collect(),
                })?;
            (name.clone(), Check::Rust(guardrail), message.clone())
        }
    };
    Ok(Compiled {
        name,
        check,
        message,
    })
}

impl Guardrails {
    /// Compiles `spec` against the registered Rust guardrails; `None` when it declares none.
    pub fn compile(spec: &GuardrailsSpec) -> Result<Option<Guardrails>, GuardrailError> {
        let mut first = None;
        let compiled = Self::compile_reporting(spec, |err| {
            first.get_or_insert(err);
        });
        match first {
            Some(err) => Err(err),
            None => Ok(compiled),
        }
    }

    /// Compiles every declaration of `spec` once, handing each problem to `problem` (so a
    /// file's checks can list them all); `None` when there are none or any failed.
    pub fn compile_reporting(
        spec: &GuardrailsSpec,
        mut problem: impl FnMut(GuardrailError),
    ) -> Option<Guardrails> {
        if spec.is_empty() {
            return None;
        }
        let rust = registered();
        let mut failed = false;
        let mut all = |list: &[GuardrailSpec]| -> Vec<Compiled> {
            list.iter()
                .filter_map(|g| {
                    compile(g, &rust)
                        .map_err(|err| {
                            failed = true;
                            problem(err);
                        })
                        .ok()
                })
                .collect()
        };
        let input = all(&spec.input);
        let output = all(&spec.output);
        (!failed).then(|| Guardrails {
            input,
            output,
            input_mode: spec.input_mode,
            output_debounce: Duration::from_millis(u64::from(spec.output_debounce_ms)),
            max_retries: spec.max_retries,
        })
    }

    /// Whether any input guardrail is declared.
    pub fn checks_input(&self) -> bool {
        !self.input.is_empty()
    }

    /// Whether any output guardrail is declared.
    pub fn checks_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// The first guardrail of `stage` that `text` trips, if any.
    pub fn check(&self, stage: GuardrailStage, text: &str) -> Option<Trip> {
        let list = match stage {
            GuardrailStage::Input => &self.input,
            GuardrailStage::Output => &self.output,
        };
        list.iter().find_map(|c| c.run(text, stage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guardrails(toml: &str) -> Guardrails {
        let spec: GuardrailsSpec = toml::from_str(toml).unwrap();
        Guardrails::compile(&spec).unwrap().unwrap()
    }

    #[test]
    fn blocklists_match_whole_words_ignoring_case() {
        let g = guardrails(
            "[[output]]\ntype = \"blocklist\"\nwords = [\"refund guaranteed\", \"Acme+\"]\n",
        );
        assert!(
            g.check(GuardrailStage::Output, "Your REFUND GUARANTEED!")
                .is_some()
        );
        assert!(g.check(GuardrailStage::Output, "try acme+ today").is_some());
        assert!(
            g.check(GuardrailStage::Output, "a refund, guaranteed")
                .is_none()
        );
        assert!(
            g.check(GuardrailStage::Input, "refund guaranteed")
                .is_none(),
            "output only"
        );
    }

    #[test]
    fn patterns_lengths_and_messages() {
        let g = guardrails(
            "[[input]]\ntype = \"regex\"\nname = \"card\"\npattern = '\\b(?:\\d[ -]?){13,16}\\b'\nmessage = \"no card numbers\"\n\
             [[input]]\ntype = \"max_length\"\nmax_chars = 10\n",
        );
        let trip = g
            .check(GuardrailStage::Input, "4111 1111 1111 1111")
            .unwrap();
        assert_eq!(
            trip,
            Trip {
                guardrail: "card".into(),
                reason: "no card numbers".into()
            }
        );
        let trip = g
            .check(GuardrailStage::Input, "a long message indeed")
            .unwrap();
        assert_eq!(trip.guardrail, "max_length");
        assert!(g.check(GuardrailStage::Input, "short").is_none());
    }

    #[test]
    fn bad_declarations_are_errors() {
        let bad = |toml: &str| {
            let spec: GuardrailsSpec = toml::from_str(toml).unwrap();
            Guardrails::compile(&spec).unwrap_err()
        };
        assert!(matches!(
            bad("[[input]]\ntype = \"regex\"\npattern = \"(\"\n"),
            GuardrailError::Pattern(_)
        ));
        assert_eq!(
            bad("[[input]]\ntype = \"blocklist\"\nwords = [\" \"]\n"),
            GuardrailError::EmptyBlocklist
        );
        assert!(matches!(
            bad("[[input]]\ntype = \"rust\"\nname = \"nope\"\n"),
            GuardrailError::Unknown { .. }
        ));
    }

    struct Panics;
    impl Guardrail for Panics {
        fn name(&self) -> &str {
            "panics"
        }
        fn check(&self, _: &str, _: GuardrailStage) -> Result<(), String> {
            panic!("boom")
        }
    }
    agent_tool::register_guardrail!(Panics);

    #[test]
    fn a_panicking_rust_guardrail_trips() {
        let g = guardrails("[[output]]\ntype = \"rust\"\nname = \"panics\"\n");
        let trip = g.check(GuardrailStage::Output, "anything").unwrap();
        assert!(trip.reason.contains("failed"), "{trip:?}");
    }
}
