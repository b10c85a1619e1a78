//! What the shared history says about the takeover benchmark's calls, read once the run is
//! over: each call's conversation must hold the greeting, every turn's answer and goodbye, in
//! order and once each, one tool output per tool turn, and the caller's hang-up as its
//! outcome. A call that meets all that completed with no gap in its conversation.

use std::collections::{BTreeMap, HashMap};

use agent_core::{
    history::HistoryStore,
    protocol::{Item, Role},
};

/// The history's verdict.
#[derive(Debug, Clone, Default)]
pub struct HistoryCheck {
    /// Calls stored.
    pub stored: usize,
    /// Calls whose conversation is complete and whose outcome is the caller's hang-up.
    pub complete: usize,
    /// Every problem found, one line per call.
    pub problems: Vec<String>,
    /// Tool outputs that say the call was interrupted (its node died while it ran; the new
    /// node reported it instead of running it again).
    pub interrupted: usize,
    /// How many calls ended with each outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// The platform's call id of each stored conversation (idempotency keys name the
    /// conversation).
    pub call_of: HashMap<String, String>,
}

/// Reads every call of the store at `db` and checks it against `said` (what the assistant
/// says in a complete call, in order) and `tool_turns` (its tool outputs).
pub fn check(db: &str, said: &[String], tool_turns: usize) -> anyhow::Result<HistoryCheck> {
    let store = HistoryStore::open(db)?;
    let mut result = HistoryCheck::default();
    let mut problems = Vec::new();
    for (id, record) in store.phone_calls()? {
        result.stored += 1;
        let outcome = record.outcome.clone().unwrap_or_else(|| "(running)".into());
        *result.outcomes.entry(outcome.clone()).or_default() += 1;
        result
            .call_of
            .insert(id.as_str().to_owned(), record.call_id.clone());
        let items: Vec<Item> = store.items(&id)?.into_iter().map(|s| s.item).collect();
        let spoken = assistant_texts(&items);
        let outputs: Vec<&str> = items
            .iter()
            .filter_map(|item| match item {
                Item::FunctionCallOutput(output) => Some(output.output.as_str()),
                _ => None,
            })
            .collect();
        result.interrupted += outputs
            .iter()
            .filter(|o| o.contains(r#""kind":"interrupted""#))
            .count();
        let mut wrong = Vec::new();
        if spoken != said {
            wrong.push(format!("the assistant said {spoken:?}"));
        }
        if outputs.len() != tool_turns {
            wrong.push(format!("{} tool outputs", outputs.len()));
        }
        if outcome != "caller_hung_up" {
            wrong.push(format!("outcome {outcome}"));
        }
        if wrong.is_empty() {
            result.complete += 1;
        } else {
            problems.push(format!("{}: {}", record.call_id, wrong.join("; ")));
        }
    }
    problems.sort();
    result.problems = problems;
    Ok(result)
}

/// The assistant's texts of a stored conversation, in order.
fn assistant_texts(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(Item::as_message)
        .filter(|m| m.role == Role::Assistant)
        .map(|m| m.content.iter().filter_map(|part| part.text()).collect())
        .collect()
}
