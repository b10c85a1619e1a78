//! Checking expectations against what a client observed in one turn.

use serde_json::Value;

use super::{Expectation, Turn};

/// What the client showed during one user turn; the CLI fills it from runtime events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedTurn {
    /// All assistant text (or audio transcript) of the turn, responses concatenated.
    pub reply: String,
    /// Every tool call the client ran in the turn, in order.
    pub tool_calls: Vec<ObservedCall>,
    /// The agent that has the conversation when the turn ends (handoffs move it); `None`
    /// when the runner did not say.
    pub agent: Option<String>,
    /// The guardrails that tripped in the turn, in order.
    pub guardrails: Vec<String>,
    /// Every wait for approval that ended in the turn (the agent's tools and MCP servers'), in
    /// order.
    pub approvals: Vec<ObservedApproval>,
}

/// How one wait for approval ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedApproval {
    /// The tool's name (an MCP server's tool by its own name).
    pub name: String,
    /// Whether it was approved.
    pub approved: bool,
    /// What happened, in words ("approved", "denied: ...", "no answer within 60 s").
    pub how: String,
}

/// One tool call as the client ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedCall {
    /// Tool name.
    pub name: String,
    /// Parsed arguments (`Value::String` with the raw text when they did not parse).
    pub arguments: Value,
    /// The output sent back to the model.
    pub output: String,
    /// Whether the output is an error output (failure, timeout, panic, bad arguments).
    pub is_error: bool,
}

/// Checks every expectation of `turn`, in order, so a report can list each with its result.
pub fn check_turn<'t>(
    turn: &'t Turn,
    observed: &ObservedTurn,
) -> Vec<(&'t Expectation, Result<(), String>)> {
    turn.expect.iter().map(|e| (e, e.check(observed))).collect()
}

impl Expectation {
    /// `Ok` when every set field holds; otherwise what failed, in plain words.
    pub fn check(&self, observed: &ObservedTurn) -> Result<(), String> {
        let mut failures = Vec::new();
        if let Some(tool) = &self.tool
            && let Err(e) = self.check_tool(tool, observed)
        {
            failures.push(e);
        }
        if let Some(tool) = &self.not_tool {
            let n = observed
                .tool_calls
                .iter()
                .filter(|c| &c.name == tool)
                .count();
            if n > 0 {
                failures.push(format!(
                    "`{tool}` was called {} but should not have been",
                    times(n)
                ));
            }
        }
        if let Some(tool) = &self.approval
            && let Err(e) = self.check_approval(tool, observed)
        {
            failures.push(e);
        }
        if let Some(want) = &self.reply_contains
            && !contains_ci(&observed.reply, want)
        {
            failures.push(format!(
                "the reply does not contain \"{want}\"; it was {}",
                quote_short(&observed.reply)
            ));
        }
        if let Some(want) = &self.guardrail
            && !observed.guardrails.contains(want)
        {
            failures.push(if observed.guardrails.is_empty() {
                format!("the guardrail `{want}` did not trip; none did")
            } else {
                format!(
                    "the guardrail `{want}` did not trip; {} did",
                    observed.guardrails.join(", ")
                )
            });
        }
        if let Some(want) = &self.agent
            && observed.agent.as_deref() != Some(want.as_str())
        {
            failures.push(match &observed.agent {
                Some(agent) => format!("the conversation is with `{agent}`, not `{want}`"),
                None => format!("the conversation's agent is unknown, not `{want}`"),
            });
        }
        if let Some(unwanted) = &self.reply_not_contains
            && contains_ci(&observed.reply, unwanted)
        {
            failures.push(format!(
                "the reply contains \"{unwanted}\"; it was {}",
                quote_short(&observed.reply)
            ));
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }

    fn check_tool(&self, tool: &str, observed: &ObservedTurn) -> Result<(), String> {
        let calls: Vec<&ObservedCall> = observed
            .tool_calls
            .iter()
            .filter(|c| c.name == tool)
            .collect();
        if let Some(want) = self.times {
            if calls.len() != want {
                return Err(format!(
                    "`{tool}` was called {}, expected {}",
                    times(calls.len()),
                    times(want)
                ));
            }
            if want == 0 {
                return Ok(());
            }
        }
        if calls.is_empty() {
            let others: Vec<&str> = observed
                .tool_calls
                .iter()
                .map(|c| c.name.as_str())
                .collect();
            return Err(if others.is_empty() {
                format!("`{tool}` was not called; no tool was called in this turn")
            } else {
                format!(
                    "`{tool}` was not called; the turn called {}",
                    others.join(", ")
                )
            });
        }
        let mut misses = Vec::new();
        for (i, call) in calls.iter().enumerate() {
            match self.call_mismatch(call) {
                None => return Ok(()),
                Some(why) if calls.len() == 1 => misses.push(why),
                Some(why) => misses.push(format!("call {}: {why}", i + 1)),
            }
        }
        Err(format!("`{tool}` was called, but {}", misses.join("; ")))
    }

    /// Whether a wait for approval of `tool` ended as `approved` says (any way, when unset).
    fn check_approval(&self, tool: &str, observed: &ObservedTurn) -> Result<(), String> {
        let waits: Vec<&ObservedApproval> = observed
            .approvals
            .iter()
            .filter(|a| a.name == tool)
            .collect();
        if waits.is_empty() {
            return Err(format!(
                "no call of `{tool}` waited for approval in this turn"
            ));
        }
        match self.approved {
            Some(want) if !waits.iter().any(|a| a.approved == want) => {
                let hows: Vec<&str> = waits.iter().map(|a| a.how.as_str()).collect();
                Err(format!(
                    "`{tool}` was {}, expected it {}",
                    hows.join(", then "),
                    if want { "approved" } else { "not approved" }
                ))
            }
            _ => Ok(()),
        }
    }

    /// Why this call does not satisfy the expectation, or `None` when it does.
    fn call_mismatch(&self, call: &ObservedCall) -> Option<String> {
        if let Some(want) = &self.arguments
            && !is_subset(want, &call.arguments)
        {
            return Some(format!(
                "its arguments {} do not include {}",
                compact(&call.arguments),
                compact(want)
            ));
        }
        if let Some(want) = &self.output_contains
            && !contains_ci(&call.output, want)
        {
            return Some(format!(
                "its output does not contain \"{want}\"; it was {}",
                quote_short(&call.output)
            ));
        }
        if let Some(want) = self.output_is_error
            && want != call.is_error
        {
            return Some(if want {
                format!(
                    "its output is not an error; it was {}",
                    quote_short(&call.output)
                )
            } else {
                format!("its output is an error: {}", quote_short(&call.output))
            });
        }
        None
    }

    /// A one-line description for reports, e.g. `lookup_order called with {"order_id":"A1001"}`.
    pub fn description(&self) -> String {
        let mut parts = Vec::new();
        if let Some(tool) = &self.tool {
            let mut s = match self.times {
                Some(0) => format!("`{tool}` not called"),
                Some(n) => format!("`{tool}` called {}", times(n)),
                None => format!("`{tool}` called"),
            };
            if let Some(args) = &self.arguments {
                s.push_str(&format!(" with {}", compact(args)));
            }
            if let Some(out) = &self.output_contains {
                s.push_str(&format!(", output contains \"{out}\""));
            }
            match self.output_is_error {
                Some(true) => s.push_str(", output is an error"),
                Some(false) => s.push_str(", output is not an error"),
                None => {}
            }
            parts.push(s);
        }
        if let Some(tool) = &self.not_tool {
            parts.push(format!("`{tool}` not called"));
        }
        if let Some(tool) = &self.approval {
            parts.push(match self.approved {
                Some(true) => format!("`{tool}` approved"),
                Some(false) => format!("`{tool}` not approved"),
                None => format!("`{tool}` waited for approval"),
            });
        }
        if let Some(t) = &self.reply_contains {
            parts.push(format!("reply contains \"{t}\""));
        }
        if let Some(t) = &self.reply_not_contains {
            parts.push(format!("reply does not contain \"{t}\""));
        }
        if let Some(guardrail) = &self.guardrail {
            parts.push(format!("the guardrail `{guardrail}` tripped"));
        }
        if let Some(agent) = &self.agent {
            parts.push(format!("the conversation is with `{agent}`"));
        }
        if parts.is_empty() {
            "(no checks)".into()
        } else {
            parts.join("; ")
        }
    }
}

fn times(n: usize) -> String {
    if n == 1 {
        "1 time".into()
    } else {
        format!("{n} times")
    }
}

fn contains_ci(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn compact(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "?".into())
}

fn quote_short(s: &str) -> String {
    const MAX: usize = 160;
    if s.is_empty() {
        return "empty".into();
    }
    if s.chars().count() <= MAX {
        format!("\"{s}\"")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("\"{head}…\"")
    }
}

/// `want` ⊆ `have`: objects by key (recursively), numbers by value (1 == 1.0), the rest equal.
/// A string in `have` that holds JSON is looked into, so raw-argument calls still match.
fn is_subset(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w
            .iter()
            .all(|(k, wv)| h.get(k).is_some_and(|hv| is_subset(wv, hv))),
        (Value::Number(w), Value::Number(h)) => match (w.as_f64(), h.as_f64()) {
            (Some(a), Some(b)) => a == b,
            _ => w == h,
        },
        (Value::Object(_), Value::String(s)) => serde_json::from_str::<Value>(s)
            .map(|parsed| parsed.is_object() && is_subset(want, &parsed))
            .unwrap_or(false),
        (Value::Array(w), Value::Array(h)) => {
            w.len() == h.len() && w.iter().zip(h).all(|(a, b)| is_subset(a, b))
        }
        _ => want == have,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observed() -> ObservedTurn {
        ObservedTurn {
            reply: "Your order A1001 has Shipped.".into(),
            tool_calls: vec![
                ObservedCall {
                    name: "lookup_order".into(),
                    arguments: json!({"order_id": "A1001", "verbose": true}),
                    output: "{\"status\":\"shipped\"}".into(),
                    is_error: false,
                },
                ObservedCall {
                    name: "lookup_order".into(),
                    arguments: json!({"order_id": "Z9999"}),
                    output: "error: order not found".into(),
                    is_error: true,
                },
            ],
            agent: Some("support".into()),
            guardrails: vec!["no guarantees".into()],
            approvals: vec![ObservedApproval {
                name: "ask_question".into(),
                approved: false,
                how: "no answer within 0.2 s".into(),
            }],
        }
    }

    #[test]
    fn approval_outcomes_are_checked_by_tool_name() {
        assert_eq!(
            Expectation::approval("ask_question", false).check(&observed()),
            Ok(())
        );
        let err = Expectation::approval("ask_question", true)
            .check(&observed())
            .unwrap_err();
        assert!(err.contains("no answer within 0.2 s"), "{err}");
        assert!(err.contains("expected it approved"), "{err}");
        let err = Expectation::approval("create_ticket", true)
            .check(&observed())
            .unwrap_err();
        assert!(err.contains("no call of `create_ticket` waited"), "{err}");
        assert_eq!(
            Expectation::approval("ask_question", true).description(),
            "`ask_question` approved"
        );
    }

    #[test]
    fn tool_subset_and_output_match_any_call() {
        let e = Expectation::tool("lookup_order")
            .with_arguments(json!({"order_id": "Z9999"}))
            .with_output_contains("NOT FOUND")
            .with_output_is_error(true);
        assert_eq!(e.check(&observed()), Ok(()));
    }

    #[test]
    fn mismatch_explains_each_call() {
        let e = Expectation::tool("lookup_order").with_arguments(json!({"order_id": "A1002"}));
        let err = e.check(&observed()).unwrap_err();
        assert!(err.contains("call 1"), "{err}");
        assert!(err.contains("A1002"), "{err}");
    }

    #[test]
    fn missing_tool_names_what_was_called() {
        let err = Expectation::tool("create_ticket")
            .check(&observed())
            .unwrap_err();
        assert!(err.contains("lookup_order"), "{err}");
    }

    #[test]
    fn times_and_not_tool() {
        let mut e = Expectation::tool("lookup_order");
        e.times = Some(2);
        assert_eq!(e.check(&observed()), Ok(()));
        e.times = Some(1);
        assert!(e.check(&observed()).is_err());
        let e = Expectation {
            not_tool: Some("lookup_order".into()),
            ..Default::default()
        };
        assert!(e.check(&observed()).is_err());
    }

    #[test]
    fn reply_checks_ignore_case() {
        assert_eq!(
            Expectation::reply_contains("shipped").check(&observed()),
            Ok(())
        );
        let e = Expectation {
            reply_not_contains: Some("SHIPPED".into()),
            ..Default::default()
        };
        assert!(e.check(&observed()).is_err());
    }

    #[test]
    fn a_guardrail_tripped() {
        let mut e = Expectation {
            guardrail: Some("no guarantees".into()),
            ..Default::default()
        };
        assert_eq!(e.check(&observed()), Ok(()));
        e.guardrail = Some("card".into());
        let err = e.check(&observed()).unwrap_err();
        assert!(
            err.contains("`card` did not trip; no guarantees did"),
            "{err}"
        );
    }

    #[test]
    fn the_agent_at_the_turns_end() {
        let mut e = Expectation {
            agent: Some("support".into()),
            ..Default::default()
        };
        assert_eq!(e.check(&observed()), Ok(()));
        e.agent = Some("billing".into());
        let err = e.check(&observed()).unwrap_err();
        assert!(err.contains("`support`, not `billing`"), "{err}");
    }

    #[test]
    fn numbers_compare_by_value() {
        assert!(is_subset(&json!({"n": 1}), &json!({"n": 1.0, "m": 2})));
        assert!(!is_subset(&json!({"n": 1}), &json!({"m": 1})));
        assert!(is_subset(
            &json!({"a": {"b": "c"}}),
            &json!({"a": {"b": "c", "d": null}})
        ));
        assert!(is_subset(&json!({"q": "x"}), &json!("{\"q\":\"x\"}")));
    }

    #[test]
    fn description_reads_well() {
        let e = Expectation::tool("lookup_order")
            .with_arguments(json!({"order_id": "A1001"}))
            .with_output_contains("shipped");
        assert_eq!(
            e.description(),
            "`lookup_order` called with {\"order_id\":\"A1001\"}, output contains \"shipped\""
        );
    }
}
