//! History compaction: bounds what a replayed conversation costs.
//!
//! The method, deterministic and model-free so that it is cheap and testable:
//! 1. The conversation is split into turns; a turn starts at each user message.
//! 2. The last `keep_turns` turns stay verbatim.
//! 3. Older turns are folded into ONE system message, "Summary of the earlier conversation",
//!    with one line per turn: what the user said, what the assistant answered (each cut to
//!    [`LINE_CHARS`] characters), and the tools it called.
//! 4. Function calls that are still relevant stay verbatim, with their outputs, placed right
//!    after the summary: for each tool, its most recent call in the folded turns (the latest
//!    order lookup, the ticket just created). Older calls of the same tool appear only in the
//!    summary.
//!
//! Compaction applies to what is replayed into a new session (rollover, reconnect, resume); the
//! stored history always keeps every item.

use std::collections::{HashMap, HashSet};

use super::log::message_text;
use crate::protocol::{Item, Role};

/// How much of each folded message the summary keeps.
pub const LINE_CHARS: usize = 160;

/// Keep the last `keep_turns` turns verbatim and fold the rest (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    /// Turns kept verbatim.
    pub keep_turns: usize,
}

impl Compaction {
    /// The compacted conversation; unchanged when it has no more than `keep_turns` turns.
    pub fn apply(&self, items: &[(String, Item)]) -> Vec<(String, Item)> {
        let starts: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, (_, item))| is_user_message(item))
            .map(|(i, _)| i)
            .collect();
        if starts.len() <= self.keep_turns {
            return items.to_vec();
        }
        let cut = match self.keep_turns {
            0 => items.len(),
            keep => starts[starts.len() - keep],
        };
        let (old, recent) = items.split_at(cut);

        // The most recent call of each tool among the folded turns stays verbatim.
        let mut latest: HashMap<&str, &str> = HashMap::new();
        for (_, item) in old {
            if let Some(call) = item.as_function_call() {
                latest.insert(call.name.as_str(), call.call_id.as_str());
            }
        }
        let kept: HashSet<&str> = latest.values().copied().collect();

        let mut lines = Vec::new();
        let mut turn = String::new();
        for (_, item) in old {
            if is_user_message(item) && !turn.is_empty() {
                lines.push(std::mem::take(&mut turn));
            }
            match item {
                Item::Message(message) => {
                    let who = match message.role {
                        Role::User => "User",
                        Role::Assistant => "Assistant",
                        _ => "System",
                    };
                    if let Some(text) = message_text(item) {
                        turn.push_str(&format!("{who}: {} ", clip(&text)));
                    }
                }
                Item::FunctionCall(call) => {
                    turn.push_str(&format!(
                        "[called {}({})] ",
                        call.name,
                        clip(&call.arguments)
                    ));
                }
                _ => {}
            }
        }
        if !turn.is_empty() {
            lines.push(turn);
        }
        let summary = format!(
            "Summary of the earlier conversation ({} turns, oldest first):\n- {}",
            lines.len(),
            lines
                .iter()
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join("\n- ")
        );
        let mut out = vec![("summary".to_owned(), Item::system_text(summary))];
        out.extend(
            old.iter()
                .filter(|(_, item)| match item {
                    Item::FunctionCall(call) => kept.contains(call.call_id.as_str()),
                    Item::FunctionCallOutput(output) => kept.contains(output.call_id.as_str()),
                    _ => false,
                })
                .cloned(),
        );
        out.extend(recent.iter().cloned());
        out
    }
}

fn is_user_message(item: &Item) -> bool {
    item.as_message().is_some_and(|m| m.role == Role::User)
}

fn clip(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= LINE_CHARS {
        one_line
    } else {
        format!("{}…", one_line.chars().take(LINE_CHARS).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(n: usize, tool: Option<&str>) -> Vec<(String, Item)> {
        let mut items = vec![(format!("u{n}"), Item::user_text(format!("question {n}")))];
        if let Some(tool) = tool {
            let id = format!("call_{n}");
            items.push((format!("call:{id}"), Item::function_call(&id, tool, "{}")));
            items.push((
                format!("output:{id}"),
                Item::function_call_output(&id, format!("out {n}")),
            ));
        }
        items.push((format!("a{n}"), Item::assistant_text(format!("answer {n}"))));
        items
    }

    #[test]
    fn short_conversations_are_unchanged() {
        let items: Vec<_> = (0..3).flat_map(|n| turn(n, None)).collect();
        assert_eq!(Compaction { keep_turns: 3 }.apply(&items), items);
    }

    #[test]
    fn old_turns_fold_into_one_summary_and_latest_calls_stay() {
        let items: Vec<_> = [
            turn(0, Some("lookup_order")),
            turn(1, Some("lookup_order")),
            turn(2, Some("create_ticket")),
            turn(3, None),
            turn(4, None),
        ]
        .concat();
        let out = Compaction { keep_turns: 2 }.apply(&items);
        let keys: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "summary",
                "call:call_1",
                "output:call_1",
                "call:call_2",
                "output:call_2",
                "u3",
                "a3",
                "u4",
                "a4"
            ]
        );
        let summary = message_text(&out[0].1).unwrap();
        assert!(summary.contains("3 turns"), "{summary}");
        assert!(summary.contains("User: question 0"), "{summary}");
        assert!(summary.contains("[called lookup_order({})]"), "{summary}");
        assert!(summary.contains("Assistant: answer 2"), "{summary}");
    }
}
