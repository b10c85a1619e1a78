//! TOML → scenarios: serde with spans, then a validation pass that collects every problem.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde_json::Value;
use serde_spanned::Spanned;

use super::{
    Expectation, Location, ModelStep, Scenario, ScenarioFile, ScriptedCall, ScriptedMcpApproval,
    Turn,
};

/// Why a scenario file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read: missing, not a regular file, too large or not UTF-8.
    #[error("{error} (scenario files sit beside the agent file, named NAME.scenarios.toml)")]
    Read {
        /// What went wrong, with the path (shown in the message, so not chained).
        error: agent_fs_limits::ReadError,
    },
    /// The file is not valid TOML or does not have the scenario shape; every problem is listed.
    #[error("{}", render(.0))]
    Invalid(Vec<ScenarioDiagnostic>),
}

impl ScenarioError {
    /// The individual problems (empty for I/O errors), e.g. for editor integration.
    pub fn diagnostics(&self) -> &[ScenarioDiagnostic] {
        match self {
            ScenarioError::Read { .. } => &[],
            ScenarioError::Invalid(d) => d,
        }
    }
}

/// One problem in a scenario file, with its position and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioDiagnostic {
    /// File name or origin.
    pub origin: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub help: String,
}

impl fmt::Display for ScenarioDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.column, self.message
        )?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

fn render(diags: &[ScenarioDiagnostic]) -> String {
    diags
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    scenario: Vec<Spanned<RawScenario>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Spanned<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    turn: Vec<Spanned<RawTurn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTurn {
    #[serde(default)]
    user: Option<Spanned<String>>,
    #[serde(default)]
    model: Vec<Spanned<RawStep>>,
    #[serde(default)]
    expect: Vec<Spanned<RawExpect>>,
    #[serde(default)]
    approvals: std::collections::BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default)]
    say: Option<String>,
    #[serde(default)]
    calls: Vec<Spanned<RawCall>>,
    #[serde(default)]
    mcp_approval: Option<Spanned<RawMcpApproval>>,
    #[serde(default)]
    audio_ms: Option<u32>,
    #[serde(default)]
    barge_in_after_ms: Option<u32>,
    #[serde(default)]
    calls_first: bool,
    #[serde(default)]
    usage: Option<Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCall {
    name: Spanned<String>,
    #[serde(default)]
    arguments: Option<Spanned<Value>>,
    #[serde(default)]
    arguments_raw: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcpApproval {
    server_label: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    arguments: Option<Spanned<Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    #[serde(default)]
    tool: Option<Spanned<String>>,
    #[serde(default)]
    arguments: Option<Spanned<Value>>,
    #[serde(default)]
    output_contains: Option<String>,
    #[serde(default)]
    output_is_error: Option<bool>,
    #[serde(default)]
    times: Option<usize>,
    #[serde(default)]
    not_tool: Option<Spanned<String>>,
    #[serde(default)]
    reply_contains: Option<String>,
    #[serde(default)]
    reply_not_contains: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    guardrail: Option<String>,
    approval: Option<Spanned<String>>,
    #[serde(default)]
    approved: Option<bool>,
}

/// Collects diagnostics with positions computed from byte spans.
struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
    diags: Vec<ScenarioDiagnostic>,
}

impl Ctx<'_> {
    fn location(&self, span: &Range<usize>) -> Location {
        let offset = span.start.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        Location { line, column }
    }

    fn error(&mut self, span: &Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        let loc = self.location(span);
        self.diags.push(ScenarioDiagnostic {
            origin: self.origin.to_string(),
            line: loc.line,
            column: loc.column,
            message: message.into(),
            help: help.into(),
        });
    }
}

pub(super) fn parse_file(text: &str, origin: &str) -> Result<ScenarioFile, ScenarioError> {
    let mut ctx = Ctx {
        text,
        origin,
        diags: Vec::new(),
    };
    let raw: RawFile = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_string();
            let help = toml_help(&message);
            ctx.error(&span, message, help);
            return Err(ScenarioError::Invalid(ctx.diags));
        }
    };
    if raw.scenario.is_empty() {
        ctx.error(
            &(0..0),
            "the file holds no scenario",
            "add at least one [[scenario]] table with a name and [[scenario.turn]] entries",
        );
    }
    let mut scenarios = Vec::new();
    let mut names: Vec<(String, Range<usize>)> = Vec::new();
    for raw_scenario in raw.scenario {
        let span = raw_scenario.span();
        let raw_scenario = raw_scenario.into_inner();
        let name_span = raw_scenario.name.span();
        let name = raw_scenario.name.into_inner();
        if name.trim().is_empty() {
            ctx.error(
                &name_span,
                "the scenario name is empty",
                "give every scenario a short unique name, e.g. name = \"order status\"",
            );
        } else if let Some((_, first)) = names.iter().find(|(n, _)| *n == name) {
            let first = ctx.location(first);
            ctx.error(
                &name_span,
                format!("a scenario named \"{name}\" already exists (line {})", first.line),
                "scenario names must be unique so `agent test` can report and select them; rename one",
            );
        } else {
            names.push((name.clone(), name_span.clone()));
        }
        if raw_scenario.turn.is_empty() {
            ctx.error(
                &span,
                format!("scenario \"{name}\" has no turns"),
                "add [[scenario.turn]] entries with `user` and [[scenario.turn.model]]",
            );
        }
        let transcription = match raw_scenario.kind {
            None => false,
            Some(kind) => match kind.get_ref().as_str() {
                "realtime" => false,
                "transcription" => true,
                other => {
                    ctx.error(
                        &kind.span(),
                        format!("unknown scenario type \"{other}\""),
                        "use type = \"realtime\" (the default) or type = \"transcription\"",
                    );
                    false
                }
            },
        };
        let mut turns = Vec::new();
        let turn_count = raw_scenario.turn.len();
        for (index, raw_turn) in raw_scenario.turn.into_iter().enumerate() {
            let is_last = index + 1 == turn_count;
            if transcription {
                check_transcription_turn(&mut ctx, &name, index, &raw_turn);
            }
            turns.push(convert_turn(
                &mut ctx,
                &name,
                index,
                is_last,
                transcription,
                raw_turn,
            ));
        }
        scenarios.push(Scenario {
            name,
            description: raw_scenario.description,
            turns,
            location: Some(ctx.location(&span)),
            transcription,
        });
    }
    if ctx.diags.is_empty() {
        Ok(ScenarioFile {
            origin: origin.to_string(),
            scenarios,
        })
    } else {
        Err(ScenarioError::Invalid(ctx.diags))
    }
}

fn toml_help(message: &str) -> String {
    if message.contains("unknown field") {
        "check the spelling against the accepted keys named in the message (the format is documented in agent_testkit::scenario)".into()
    } else if message.contains("missing field") {
        "add the missing key".into()
    } else if message.contains("invalid type") {
        "change the value to the expected type".into()
    } else {
        "fix the TOML syntax at this position".into()
    }
}

fn convert_turn(
    ctx: &mut Ctx<'_>,
    scenario: &str,
    index: usize,
    is_last: bool,
    transcription: bool,
    raw: Spanned<RawTurn>,
) -> Turn {
    let span = raw.span();
    let raw = raw.into_inner();
    let number = index + 1;
    let user = match raw.user {
        Some(u) => {
            let u_span = u.span();
            let u = u.into_inner();
            if u.trim().is_empty() {
                ctx.error(&u_span, format!("turn {number} of \"{scenario}\" has an empty `user`"), "write what the user says, or omit `user` on the first turn to let the model speak first");
            }
            Some(u)
        }
        None => {
            if index > 0 {
                ctx.error(
                    &span,
                    format!("turn {number} of \"{scenario}\" has no `user`"),
                    "only the first turn may omit `user` (the model speaks first); add user = \"...\"",
                );
            }
            None
        }
    };
    // A transcription session never answers, so its turns have no model steps.
    if raw.model.is_empty() && !transcription {
        ctx.error(
            &span,
            format!("turn {number} of \"{scenario}\" has no model step"),
            "add a [[scenario.turn.model]] with `say` and/or `calls`",
        );
    }
    let step_count = raw.model.len();
    let mut model = Vec::new();
    for (i, step) in raw.model.into_iter().enumerate() {
        let step_span = step.span();
        let step = step.into_inner();
        if step.say.is_none() && step.calls.is_empty() && step.mcp_approval.is_none() {
            ctx.error(
                &step_span,
                format!("model step {} of turn {number} of \"{scenario}\" neither says anything nor calls a tool", i + 1),
                "add `say = \"...\"`, `calls = [{ name = \"...\", arguments = { ... } }]` or `mcp_approval = { server_label = \"...\", name = \"...\" }`",
            );
        }
        if i + 1 == step_count && !step.calls.is_empty() {
            ctx.error(
                &step_span,
                format!("the last model step of turn {number} of \"{scenario}\" calls tools, but no step follows to answer after their outputs"),
                "add another [[scenario.turn.model]] with the reply the model gives once the tool outputs arrived",
            );
        }
        if i + 1 == step_count && step.mcp_approval.is_some() {
            ctx.error(
                &step_span,
                format!("the last model step of turn {number} of \"{scenario}\" asks for an MCP approval, but no step follows to answer after the decision"),
                "add another [[scenario.turn.model]] with the reply the model gives once the approval was answered",
            );
        }
        if step.barge_in_after_ms.is_some() && is_last {
            ctx.error(
                &step_span,
                format!("model step {} of turn {number} of \"{scenario}\" has `barge_in_after_ms`, but no turn follows for the user to say", i + 1),
                "add a [[scenario.turn]] after this one: its `user` text is what the user says when barging in",
            );
        }
        let usage = step.usage.and_then(|u| {
            let u_span = u.span();
            let u = u.into_inner();
            if u.is_object() {
                Some(u)
            } else {
                ctx.error(
                    &u_span,
                    "`usage` must be a table",
                    "write usage = { input_tokens = 100, output_tokens = 20 }",
                );
                None
            }
        });
        let calls = step
            .calls
            .into_iter()
            .map(|c| convert_call(ctx, c))
            .collect();
        let mcp_approval = step.mcp_approval.map(|a| convert_mcp_approval(ctx, a));
        model.push(ModelStep {
            say: step.say,
            calls,
            mcp_approval,
            audio_ms: step.audio_ms,
            usage,
            barge_in_after_ms: step.barge_in_after_ms,
            calls_first: step.calls_first,
        });
    }
    let mut expect = Vec::new();
    for raw_expect in raw.expect {
        expect.push(convert_expect(ctx, &model, number, scenario, raw_expect));
    }
    let mut approvals = std::collections::BTreeMap::new();
    for (tool, answer) in raw.approvals {
        let answer_span = answer.span();
        let Some(parsed) = super::ApprovalAnswer::parse(answer.get_ref()) else {
            ctx.error(
                &answer_span,
                format!(
                    "`approvals.{tool}` is \"{}\"; it must be \"approve\", \"deny\" or \"wait\"",
                    answer.get_ref()
                ),
                "approve runs the call, deny refuses it, wait gives no answer (the call times out)",
            );
            continue;
        };
        if !asks_approval(&model, &tool) {
            ctx.error(
                &answer_span,
                format!("`approvals` answers for `{tool}`, which no model step of turn {number} of \"{scenario}\" calls"),
                "name a tool this turn's `calls` call or its `mcp_approval` names, or remove the answer",
            );
        }
        approvals.insert(tool, parsed);
    }
    Turn {
        user,
        model,
        expect,
        approvals,
        location: Some(ctx.location(&span)),
    }
}

/// The rules of a `type = "transcription"` scenario's turns: the user speaks (the `user` text is
/// the transcript of the turn's audio), and the model never answers.
fn check_transcription_turn(
    ctx: &mut Ctx<'_>,
    scenario: &str,
    index: usize,
    raw: &Spanned<RawTurn>,
) {
    let number = index + 1;
    let turn = raw.get_ref();
    if turn.user.is_none() && index == 0 {
        ctx.error(
            &raw.span(),
            format!("turn {number} of transcription scenario \"{scenario}\" has no `user`"),
            "in a transcription scenario every turn is something the user says; add user = \"...\"",
        );
    }
    if let Some(step) = turn.model.first() {
        ctx.error(
            &step.span(),
            format!("turn {number} of transcription scenario \"{scenario}\" has a model step"),
            "a transcription session never answers; remove the [[scenario.turn.model]] tables",
        );
    }
    if let Some(expect) = turn.expect.first() {
        ctx.error(
            &expect.span(),
            format!("turn {number} of transcription scenario \"{scenario}\" has expectations"),
            "a transcription session calls no tools and gives no replies; remove [[scenario.turn.expect]]",
        );
    }
}

/// Whether a step of the turn may make `tool` wait for approval: it calls it, or an MCP
/// approval request names it.
fn asks_approval(model: &[ModelStep], tool: &str) -> bool {
    model.iter().any(|s| {
        s.calls.iter().any(|c| c.name == tool)
            || s.mcp_approval.as_ref().is_some_and(|a| a.name == tool)
    })
}

fn convert_mcp_approval(ctx: &mut Ctx<'_>, raw: Spanned<RawMcpApproval>) -> ScriptedMcpApproval {
    let raw = raw.into_inner();
    let label_span = raw.server_label.span();
    let server_label = raw.server_label.into_inner();
    if !valid_tool_name(&server_label) {
        ctx.error(
            &label_span,
            format!("`{server_label}` is not a valid MCP server label"),
            "use the `server_label` of the agent file's [[mcp_servers]] entry: letters, digits, `_` or `-`",
        );
    }
    let name = checked_tool_name(ctx, raw.name);
    let arguments = match raw.arguments {
        None => "{}".to_owned(),
        Some(args) => {
            let a_span = args.span();
            match args.into_inner() {
                Value::String(text) => text,
                table @ Value::Object(_) => table.to_string(),
                _ => {
                    ctx.error(
                        &a_span,
                        format!("the arguments of the MCP approval of `{name}` must be a table or a JSON string"),
                        "write arguments = { key = \"value\" }, or arguments = '{\"key\": \"value\"}'",
                    );
                    "{}".to_owned()
                }
            }
        }
    };
    ScriptedMcpApproval {
        server_label,
        name,
        arguments,
    }
}

/// The tool name `raw` holds, reported at its place when the API would refuse it.
fn checked_tool_name(ctx: &mut Ctx<'_>, raw: Spanned<String>) -> String {
    let span = raw.span();
    let name = raw.into_inner();
    if !valid_tool_name(&name) {
        ctx.error(
            &span,
            format!("`{name}` is not a valid tool name"),
            "tool names use 1 to 64 letters, digits, `_` or `-`",
        );
    }
    name
}

fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn convert_call(ctx: &mut Ctx<'_>, raw: Spanned<RawCall>) -> ScriptedCall {
    let span = raw.span();
    let raw = raw.into_inner();
    let name = checked_tool_name(ctx, raw.name);
    let arguments = match (raw.arguments, &raw.arguments_raw) {
        (Some(_), Some(_)) => {
            ctx.error(
                &span,
                format!("the call of `{name}` has both `arguments` and `arguments_raw`"),
                "keep one: `arguments` for a table, `arguments_raw` for a verbatim (e.g. invalid) JSON string",
            );
            Value::Null
        }
        (Some(args), None) => {
            let a_span = args.span();
            let args = args.into_inner();
            if !args.is_object() {
                ctx.error(
                    &a_span,
                    format!("the arguments of `{name}` must be a table"),
                    "write arguments = { key = \"value\" }, or use arguments_raw for a verbatim string",
                );
            }
            args
        }
        (None, Some(_)) => Value::Null,
        (None, None) => Value::Object(Default::default()),
    };
    ScriptedCall {
        name,
        arguments,
        arguments_raw: raw.arguments_raw,
    }
}

fn convert_expect(
    ctx: &mut Ctx<'_>,
    model: &[ModelStep],
    turn: usize,
    scenario: &str,
    raw: Spanned<RawExpect>,
) -> Expectation {
    let span = raw.span();
    let raw = raw.into_inner();
    let scripted = |name: &str| model.iter().flat_map(|s| &s.calls).any(|c| c.name == name);
    let tool = raw.tool.map(|t| {
        let t_span = t.span();
        let t = t.into_inner();
        if raw.times != Some(0) && !scripted(&t) {
            ctx.error(
                &t_span,
                format!("turn {turn} of \"{scenario}\" expects a call of `{t}`, but no model step of the turn calls it"),
                "fix the tool name, or add the call to a [[scenario.turn.model]] `calls` list",
            );
        }
        t
    });
    let not_tool = raw.not_tool.map(|t| {
        let t_span = t.span();
        let t = t.into_inner();
        if scripted(&t) {
            ctx.error(
                &t_span,
                format!("turn {turn} of \"{scenario}\" expects `{t}` not to be called, but a model step of the turn calls it"),
                "remove the expectation or the scripted call",
            );
        }
        t
    });
    let arguments = raw.arguments.map(|a| {
        let a_span = a.span();
        let a = a.into_inner();
        if !a.is_object() {
            ctx.error(
                &a_span,
                "expected `arguments` must be a table",
                "write arguments = { key = \"value\" }",
            );
        }
        a
    });
    let approval = raw.approval.map(|a| {
        let a_span = a.span();
        let a = a.into_inner();
        if !asks_approval(model, &a) {
            ctx.error(
                &a_span,
                format!("turn {turn} of \"{scenario}\" expects an approval of `{a}`, but no model step of the turn calls it or asks to approve it"),
                "fix the tool name, or add the call (or an `mcp_approval`) to a [[scenario.turn.model]]",
            );
        }
        a
    });
    if raw.approved.is_some() && approval.is_none() {
        ctx.error(
            &span,
            "`approved` describes a wait for approval, but this expectation has no `approval`",
            "add approval = \"tool name\" to say which wait it applies to",
        );
    }
    let needs_tool = arguments.is_some()
        || raw.output_contains.is_some()
        || raw.output_is_error.is_some()
        || raw.times.is_some();
    if needs_tool && tool.is_none() {
        ctx.error(
            &span,
            "`arguments`, `output_contains`, `output_is_error` and `times` describe a tool call, but this expectation has no `tool`",
            "add tool = \"name\" to say which call they apply to",
        );
    }
    if tool.is_none()
        && not_tool.is_none()
        && approval.is_none()
        && raw.reply_contains.is_none()
        && raw.reply_not_contains.is_none()
        && raw.agent.is_none()
        && raw.guardrail.is_none()
        && !needs_tool
    {
        ctx.error(
            &span,
            "this expectation checks nothing",
            "set `tool`, `not_tool`, `approval`, `reply_contains`, `reply_not_contains`, `guardrail` or `agent`",
        );
    }
    Expectation {
        tool,
        arguments,
        output_contains: raw.output_contains,
        output_is_error: raw.output_is_error,
        times: raw.times,
        not_tool,
        reply_contains: raw.reply_contains,
        reply_not_contains: raw.reply_not_contains,
        agent: raw.agent,
        guardrail: raw.guardrail,
        approval,
        approved: raw.approved,
        location: Some(ctx.location(&span)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[scenario]]
name = "order status"

[[scenario.turn]]
user = "Where is my order A1001?"

  [[scenario.turn.model]]
  say = "Let me look that up."
  calls = [{ name = "lookup_order", arguments = { order_id = "A1001" } }]

  [[scenario.turn.model]]
  say = "It shipped."

  [[scenario.turn.expect]]
  tool = "lookup_order"
  arguments = { order_id = "A1001" }

  [[scenario.turn.expect]]
  reply_contains = "shipped"
"#;

    #[test]
    fn parses_the_documented_shape() {
        let file = ScenarioFile::from_str(GOOD, "good.toml").unwrap();
        let s = &file.scenarios[0];
        assert_eq!(s.name, "order status");
        assert_eq!(s.location, Some(Location { line: 2, column: 1 }));
        let turn = &s.turns[0];
        assert_eq!(turn.model.len(), 2);
        assert_eq!(
            turn.model[0].calls[0].arguments_string(),
            r#"{"order_id":"A1001"}"#
        );
        assert_eq!(turn.expect.len(), 2);
        assert_eq!(turn.expect[1].location.map(|l| l.line), Some(19));
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let text = GOOD.replace("say = \"It shipped.\"", "sya = \"It shipped.\"");
        let err = ScenarioFile::from_str(&text, "bad.toml").unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!((d.line, d.column), (13, 3), "{err}");
        assert!(d.message.contains("unknown field `sya`"), "{err}");
        assert!(err.to_string().starts_with("bad.toml:13:3: "), "{err}");
    }

    #[test]
    fn semantic_errors_are_all_reported() {
        let text = r#"
[[scenario]]
name = "x"
[[scenario.turn]]
user = "hi"
  [[scenario.turn.model]]
  calls = [{ name = "lookup_order" }]
  [[scenario.turn.expect]]
  tool = "lookup_ordr"
[[scenario.turn]]
  [[scenario.turn.model]]
  say = "hello"
"#;
        let err = ScenarioFile::from_str(text, "s.toml").unwrap_err();
        let msgs: Vec<String> = err.diagnostics().iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:#?}");
        assert!(msgs[0].contains("no step follows"), "{msgs:#?}");
        assert!(msgs[1].starts_with("s.toml:9:10:"), "{msgs:#?}");
        assert!(
            msgs[2].contains("turn 2") && msgs[2].contains("no `user`"),
            "{msgs:#?}"
        );
    }

    const MCP: &str = r#"
[[scenario]]
name = "wiki"

[[scenario.turn]]
user = "What does the repo do?"
approvals = { ask_question = "approve" }

  [[scenario.turn.model]]
  mcp_approval = { server_label = "wiki", name = "ask_question", arguments = { repo = "a/b" } }

  [[scenario.turn.model]]
  say = "It is a voice agent."

  [[scenario.turn.expect]]
  approval = "ask_question"
  approved = true
"#;

    #[test]
    fn an_mcp_approval_step_and_its_answer_parse() {
        let file = ScenarioFile::from_str(MCP, "mcp.toml").unwrap();
        let turn = &file.scenarios[0].turns[0];
        let approval = turn.model[0].mcp_approval.as_ref().unwrap();
        assert_eq!(approval.server_label, "wiki");
        assert_eq!(approval.name, "ask_question");
        assert_eq!(approval.arguments, r#"{"repo":"a/b"}"#);
        assert_eq!(
            turn.approvals.get("ask_question"),
            Some(&super::super::ApprovalAnswer::Approve)
        );
        assert_eq!(turn.expect[0].approval.as_deref(), Some("ask_question"));
        assert_eq!(turn.expect[0].approved, Some(true));
    }

    #[test]
    fn an_mcp_approval_needs_a_step_after_it_and_known_names() {
        let text = MCP
            .replace(
                "  [[scenario.turn.model]]\n  say = \"It is a voice agent.\"\n",
                "",
            )
            .replace("approval = \"ask_question\"", "approval = \"ask\"")
            .replace("arguments = { repo = \"a/b\" }", "arguments = 3");
        let err = ScenarioFile::from_str(&text, "mcp.toml").unwrap_err();
        let msgs: Vec<String> = err.diagnostics().iter().map(|d| d.to_string()).collect();
        assert_eq!(msgs.len(), 3, "{msgs:#?}");
        assert!(msgs[0].contains("no step follows"), "{msgs:#?}");
        assert!(
            msgs[1].contains("must be a table or a JSON string"),
            "{msgs:#?}"
        );
        assert!(msgs[2].contains("approval of `ask`"), "{msgs:#?}");
    }

    #[test]
    fn empty_file_is_an_error() {
        let err = ScenarioFile::from_str("", "e.toml").unwrap_err();
        assert!(err.to_string().contains("no scenario"), "{err}");
    }

    #[test]
    fn beside_agent_file() {
        assert_eq!(
            ScenarioFile::beside("agents/support.toml"),
            std::path::PathBuf::from("agents/support.scenarios.toml")
        );
    }
}
