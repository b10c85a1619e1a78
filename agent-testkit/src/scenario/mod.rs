//! Scenario files: scripted conversations and what a passing run must show.
//!
//! A scenario file sits beside an agent file (`agents/support.toml` →
//! `agents/support.scenarios.toml`, see [`ScenarioFile::beside`]). The scripted server plays the
//! model's side of each scenario; `agent test` plays the user's side, runs the tools for real and
//! checks the expectations. Unknown keys are rejected, and every error names `file:line:col`.
//!
//! # Format
//!
//! ```toml
//! [[scenario]]
//! name = "order status"                 # required, unique in the file
//! description = "One tool call."        # optional, for reports
//!
//! [[scenario.turn]]
//! user = "Where is my order A1001?"     # what the user types; only the first turn may omit it
//!                                       # (the model then speaks first, e.g. a greeting)
//! approvals = { create_ticket = "approve" }
//!                                       # optional: the user's answer when a call of this turn
//!                                       # waits for approval: "approve", "deny", or "wait" (no
//!                                       # answer: the call times out, a denial). A call waiting
//!                                       # for approval that this does not name is denied.
//!
//!   [[scenario.turn.model]]             # the first response of this turn
//!   say = "Let me look that up."        # optional: text deltas, or audio + transcript deltas
//!                                       # when the session's output modalities include audio
//!   calls = [{ name = "lookup_order", arguments = { order_id = "A1001" } }]
//!                                       # optional: several calls = several function_call items
//!                                       # in ONE response
//!   audio_ms = 1500                     # optional: length of the synthetic audio (default: from
//!                                       # the text length)
//!   barge_in_after_ms = 400             # optional: the user starts speaking (the next turn's
//!                                       # `user` text) once this much audio was sent; needs
//!                                       # server VAD in the session (see `server` docs)
//!   calls_first = false                 # optional: stream the calls before `say` (the model
//!                                       # calls a tool, then talks while it runs)
//!   usage = { input_tokens = 900 }      # optional: merged over the computed `usage` object
//!
//!   [[scenario.turn.model]]             # played on the next response.create, once the outputs
//!   say = "Your order A1001 shipped."   # of the calls above have arrived
//!
//!   [[scenario.turn.model]]             # a hosted MCP server (`[[mcp_servers]]`) asks to approve
//!   mcp_approval = { server_label = "wiki", name = "ask_question", arguments = { q = "x" } }
//!                                       # a call: an `mcp_approval_request` item; the client
//!                                       # answers it (see `approvals`) and asks for the next
//!                                       # step, which must follow. `arguments` is a table or a
//!                                       # JSON string
//!
//!   [[scenario.turn.expect]]            # every key that is set must hold
//!   tool = "lookup_order"               # this tool was called in the turn ...
//!   arguments = { order_id = "A1001" }  # ... with at least these arguments (subset match)
//!   output_contains = "A1001"           # ... and its output contains this (case-insensitive)
//!   output_is_error = false             # ... and the output is (not) an error output
//!   times = 1                           # the tool was called exactly this often (0 = never)
//!
//!   [[scenario.turn.expect]]
//!   approval = "ask_question"           # a call of this tool (the agent's, or an MCP server's
//!                                       # by its tool name) waited for approval in the turn ...
//!   approved = true                     # ... and was approved (false: denied or timed out)
//!
//!   [[scenario.turn.expect]]
//!   reply_contains = "shipped"          # the assistant's text/transcript in this turn
//!   reply_not_contains = "sorry"
//!   not_tool = "create_ticket"          # this tool was not called in the turn
//!   guardrail = "no guarantees"         # this guardrail tripped in the turn
//!   agent = "billing"                   # the agent that has the conversation at the turn's
//!                                       # end (a handoff is the call `transfer_to_billing`)
//! ```
//!
//! A call may carry `arguments_raw = "{not json"` instead of `arguments`, to script a model that
//! sends arguments which do not parse (the runtime must answer with an error output).
//!
//! A scenario for a transcription agent sets `type = "transcription"`. Its turns only have
//! `user`: the text the server gives as the transcript of that turn's audio (the user's audio is
//! what the client streams; server VAD or a commit ends each turn). Such turns have no model
//! steps and no expectations, since a transcription session never answers:
//!
//! ```toml
//! [[scenario]]
//! name = "stand-up"
//! type = "transcription"
//!
//! [[scenario.turn]]
//! user = "Yesterday I finished the billing export."
//! ```
//!
//! The file is checked as a whole and every problem is reported at once: a turn without a model
//! step, a step with neither `say`, `calls` nor `mcp_approval`, a turn whose last step calls tools
//! or asks for an MCP approval (the client will ask for one more response after sending the
//! outputs or the decision, so a reply must follow), an expectation or an approval answer about
//! a tool that no step of its turn calls, duplicate scenario names.
//!
//! `approvals` keys and `approval` expectations name an MCP server's tool by its tool name, the
//! `name` the session's approval event carries.

mod expect;
mod parse;
mod record;

use std::path::{Path, PathBuf};

use serde_json::Value;

pub use expect::{ObservedApproval, ObservedCall, ObservedTurn, check_turn};
pub use parse::{ScenarioDiagnostic, ScenarioError};
pub use record::{Recording, WriteOptions};

/// The largest scenario file [`ScenarioFile::load`] reads. Scenarios are hand-written scripts of
/// a few KiB; the limit only keeps a wrong path (a log, a device) from filling memory.
pub const MAX_SCENARIO_FILE_BYTES: u64 = 4 << 20;

/// A 1-based position in a scenario file, so reports can point at the scenario or expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Every scenario of one file, with the name of the file for reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioFile {
    /// Where the scenarios came from (a path, or the name given to [`ScenarioFile::from_str`]).
    pub origin: String,
    /// The scenarios, in file order.
    pub scenarios: Vec<Scenario>,
}

impl ScenarioFile {
    /// Reads and validates a scenario file; errors name `file:line:col`. Only a regular file
    /// of at most [`MAX_SCENARIO_FILE_BYTES`] is read.
    pub fn load(path: impl AsRef<Path>) -> Result<ScenarioFile, ScenarioError> {
        let path = path.as_ref();
        let text = agent_fs_limits::read_text(path, MAX_SCENARIO_FILE_BYTES, "scenario file")
            .map_err(|error| ScenarioError::Read { error })?;
        Self::from_str(&text, &path.display().to_string())
    }

    /// Parses and validates scenario text; `origin` names it in error messages.
    #[allow(clippy::should_implement_trait)] // needs the origin name, so not `FromStr`
    pub fn from_str(text: &str, origin: &str) -> Result<ScenarioFile, ScenarioError> {
        parse::parse_file(text, origin)
    }

    /// The conventional scenario file of an agent file: `x/support.toml` → `x/support.scenarios.toml`.
    pub fn beside(agent_file: impl AsRef<Path>) -> PathBuf {
        let agent_file = agent_file.as_ref();
        let stem = agent_file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        agent_file.with_file_name(format!("{stem}.scenarios.toml"))
    }

    /// The scenario with this name, so `agent test --scenario NAME` can pick one.
    pub fn get(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }
}

/// One scripted conversation: the user's turns and the model's scripted answers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scenario {
    /// Unique name within the file, shown in reports.
    pub name: String,
    /// Free text for reports.
    pub description: Option<String>,
    /// The turns, in order.
    pub turns: Vec<Turn>,
    /// Where `[[scenario]]` starts, when it came from a file.
    pub location: Option<Location>,
    /// A transcription-only scenario (`type = "transcription"`): every turn is only said by
    /// the user and transcribed; no turn has model steps.
    pub transcription: bool,
}

impl Scenario {
    /// An empty scenario, to be filled with [`Scenario::turn`] (tests and benchmarks build
    /// scenarios in code).
    pub fn new(name: impl Into<String>) -> Self {
        Scenario {
            name: name.into(),
            ..Self::default()
        }
    }

    /// An empty transcription-only scenario (turns with `user` text and no model steps).
    pub fn transcription(name: impl Into<String>) -> Self {
        Scenario {
            transcription: true,
            ..Self::new(name)
        }
    }

    /// Appends a turn.
    pub fn turn(mut self, turn: Turn) -> Self {
        self.turns.push(turn);
        self
    }

    /// How many function calls the whole scenario scripts, e.g. to assert dispatch counts.
    pub fn call_count(&self) -> usize {
        self.turns
            .iter()
            .flat_map(|t| &t.model)
            .map(|s| s.calls.len())
            .sum()
    }
}

/// One user turn: what the user says, the model's responses, and what must be observed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Turn {
    /// The user's text; `None` only on a first turn where the model speaks first.
    pub user: Option<String>,
    /// The model's responses, one per `response.create`, in order.
    pub model: Vec<ModelStep>,
    /// What a correct client shows at the end of the turn.
    pub expect: Vec<Expectation>,
    /// The user's answers to calls of this turn that wait for approval, by tool name (an MCP
    /// server's tool by its own name).
    pub approvals: std::collections::BTreeMap<String, ApprovalAnswer>,
    /// Where `[[scenario.turn]]` starts, when it came from a file.
    pub location: Option<Location>,
}

/// The user's scripted answer to a call that waits for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalAnswer {
    /// Run it.
    Approve,
    /// Do not run it.
    Deny,
    /// Give no answer: the call waits until its approval times out (a denial).
    Wait,
}

impl ApprovalAnswer {
    /// The answer a scenario file spells `text`, if it is one.
    pub fn parse(text: &str) -> Option<ApprovalAnswer> {
        match text {
            "approve" => Some(ApprovalAnswer::Approve),
            "deny" => Some(ApprovalAnswer::Deny),
            "wait" => Some(ApprovalAnswer::Wait),
            _ => None,
        }
    }
}

impl Turn {
    /// A turn that starts with the user's text.
    pub fn user(text: impl Into<String>) -> Self {
        Turn {
            user: Some(text.into()),
            ..Self::default()
        }
    }

    /// A turn where the model speaks first (only valid as the first turn).
    pub fn model_first() -> Self {
        Self::default()
    }

    /// Appends a scripted response.
    pub fn model(mut self, step: ModelStep) -> Self {
        self.model.push(step);
        self
    }

    /// Appends an expectation.
    pub fn expect(mut self, expectation: Expectation) -> Self {
        self.expect.push(expectation);
        self
    }

    /// Answers calls to `tool` (or MCP approval requests for it) in this turn that wait for
    /// approval with `answer`.
    pub fn approval(mut self, tool: impl Into<String>, answer: ApprovalAnswer) -> Self {
        self.approvals.insert(tool.into(), answer);
        self
    }
}

/// One scripted response: optional text/audio, then optional function calls, then an optional
/// MCP approval request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelStep {
    /// The assistant message, streamed as deltas.
    pub say: Option<String>,
    /// Function calls, each a `function_call` item of the same response.
    pub calls: Vec<ScriptedCall>,
    /// A hosted MCP server asks to approve a call: an `mcp_approval_request` item, last in the
    /// response.
    pub mcp_approval: Option<ScriptedMcpApproval>,
    /// Length of the synthetic audio when audio is on; default: derived from the text length.
    pub audio_ms: Option<u32>,
    /// Merged over the computed `usage` of `response.done` (a JSON object).
    pub usage: Option<Value>,
    /// Scripted barge-in: the user starts speaking once this much of the step's audio was sent
    /// (0 = before any audio; past the end = after `response.done`), saying the next turn.
    pub barge_in_after_ms: Option<u32>,
    /// Stream the function calls before the message (the model calls a tool, then talks while
    /// it runs), instead of after it.
    pub calls_first: bool,
}

impl ModelStep {
    /// A response that only says something.
    pub fn say(text: impl Into<String>) -> Self {
        ModelStep {
            say: Some(text.into()),
            ..Self::default()
        }
    }

    /// A response that only calls tools.
    pub fn calls(calls: impl IntoIterator<Item = ScriptedCall>) -> Self {
        ModelStep {
            calls: calls.into_iter().collect(),
            ..Self::default()
        }
    }

    /// A response whose only output is a hosted MCP server's approval request.
    pub fn mcp_approval(approval: ScriptedMcpApproval) -> Self {
        ModelStep {
            mcp_approval: Some(approval),
            ..Self::default()
        }
    }

    /// Adds a call to this response.
    pub fn call(mut self, call: ScriptedCall) -> Self {
        self.calls.push(call);
        self
    }

    /// Sets the audio length.
    pub fn audio_ms(mut self, ms: u32) -> Self {
        self.audio_ms = Some(ms);
        self
    }

    /// Scripts a barge-in after `ms` of this step's audio.
    pub fn barge_in_after_ms(mut self, ms: u32) -> Self {
        self.barge_in_after_ms = Some(ms);
        self
    }

    /// Streams the calls before the message.
    pub fn calls_first(mut self) -> Self {
        self.calls_first = true;
        self
    }
}

/// A function call the scripted model makes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedCall {
    /// Tool name.
    pub name: String,
    /// Arguments as JSON; serialised into the `arguments` string.
    pub arguments: Value,
    /// Sent verbatim instead of `arguments` when set, to script unparsable arguments.
    pub arguments_raw: Option<String>,
}

impl ScriptedCall {
    /// A call with JSON arguments.
    pub fn new(name: impl Into<String>, arguments: Value) -> Self {
        ScriptedCall {
            name: name.into(),
            arguments,
            arguments_raw: None,
        }
    }

    /// A call whose `arguments` string is sent exactly as given (e.g. invalid JSON).
    pub fn raw(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        ScriptedCall {
            name: name.into(),
            arguments: Value::Null,
            arguments_raw: Some(arguments.into()),
        }
    }

    /// The `arguments` string as it goes on the wire.
    pub fn arguments_string(&self) -> String {
        match &self.arguments_raw {
            Some(raw) => raw.clone(),
            None => serde_json::to_string(&self.arguments).unwrap_or_else(|_| "{}".into()),
        }
    }
}

/// A hosted MCP server's request to approve a call of one of its tools, as the scripted model's
/// response carries it (`mcp_approval_request`). The API calls the tool itself once approved, so
/// no tool of the agent runs; the scripted server only checks the client's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedMcpApproval {
    /// The `server_label` of an `[[mcp_servers]]` entry.
    pub server_label: String,
    /// The server's tool.
    pub name: String,
    /// The arguments, a JSON string as the wire carries it.
    pub arguments: String,
}

impl ScriptedMcpApproval {
    /// A request to approve `name` of `server_label` with JSON `arguments`.
    pub fn new(server_label: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        ScriptedMcpApproval {
            server_label: server_label.into(),
            name: name.into(),
            arguments: arguments.to_string(),
        }
    }
}

/// What a correct client shows at the end of a turn; every field that is set must hold.
///
/// Tool checks (`arguments`, `output_contains`, `output_is_error`) pass when at least one call of
/// `tool` matches all of them. Text comparisons ignore case.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Expectation {
    /// This tool was called in the turn.
    pub tool: Option<String>,
    /// The call's arguments contain these keys with these values (recursive subset match).
    pub arguments: Option<Value>,
    /// The call's output contains this text.
    pub output_contains: Option<String>,
    /// The call's output is (true) or is not (false) an error output.
    pub output_is_error: Option<bool>,
    /// `tool` was called exactly this many times in the turn.
    pub times: Option<usize>,
    /// This tool was not called in the turn.
    pub not_tool: Option<String>,
    /// The assistant's reply in this turn contains this text.
    pub reply_contains: Option<String>,
    /// The assistant's reply in this turn does not contain this text.
    pub reply_not_contains: Option<String>,
    /// The conversation is with this agent when the turn ends (after its handoffs).
    pub agent: Option<String>,
    /// This guardrail tripped in the turn (its `name`, or its kind for unnamed built-ins).
    pub guardrail: Option<String>,
    /// A call of this tool (the agent's or an MCP server's) waited for approval in the turn.
    pub approval: Option<String>,
    /// ... and was approved (`true`) or not (`false`: denied, timed out, cancelled).
    pub approved: Option<bool>,
    /// Where `[[scenario.turn.expect]]` starts, when it came from a file.
    pub location: Option<Location>,
}

impl Expectation {
    /// Expects a call of `name`.
    pub fn tool(name: impl Into<String>) -> Self {
        Expectation {
            tool: Some(name.into()),
            ..Self::default()
        }
    }

    /// Expects the reply to contain `text`.
    pub fn reply_contains(text: impl Into<String>) -> Self {
        Expectation {
            reply_contains: Some(text.into()),
            ..Self::default()
        }
    }

    /// Expects a wait for approval of `tool` that ended `approved` (or not).
    pub fn approval(tool: impl Into<String>, approved: bool) -> Self {
        Expectation {
            approval: Some(tool.into()),
            approved: Some(approved),
            ..Self::default()
        }
    }

    /// Adds an argument subset to a tool expectation.
    pub fn with_arguments(mut self, arguments: Value) -> Self {
        self.arguments = Some(arguments);
        self
    }

    /// Adds an output check to a tool expectation.
    pub fn with_output_contains(mut self, text: impl Into<String>) -> Self {
        self.output_contains = Some(text.into());
        self
    }

    /// Requires the output to be (or not be) an error output.
    pub fn with_output_is_error(mut self, is_error: bool) -> Self {
        self.output_is_error = Some(is_error);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_device_is_not_read_as_a_scenario_file() {
        let err = ScenarioFile::load("/dev/zero").unwrap_err();
        assert!(
            matches!(
                &err,
                ScenarioError::Read {
                    error: agent_fs_limits::ReadError::NotRegular { .. }
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("/dev/zero is a character device"),
            "{err}"
        );
    }

    #[test]
    fn a_scenario_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.scenarios.toml");
        let mut text = "[[scenario]]\nname = \"x\"\n".to_owned();
        text.push_str(&"#".repeat(MAX_SCENARIO_FILE_BYTES as usize));
        std::fs::write(&path, text).unwrap();
        let err = ScenarioFile::load(&path).unwrap_err();
        assert!(
            matches!(
                &err,
                ScenarioError::Read {
                    error: agent_fs_limits::ReadError::TooLarge { .. }
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("larger than 4 MiB"), "{err}");
    }
}
