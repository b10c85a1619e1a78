//! Handoffs: one conversation passed between the agents of a team, in the same session.
//!
//! Each agent may hand the conversation to others (`handoffs = [...]` in its file). The model
//! sees one `transfer_to_NAME` function per target; when it calls one, the runner switches the
//! session to the target: its instructions, its tools (with their settings, timeout and
//! approval policy), its tool choice and answer length, in a `session.update`. The voice, the
//! audio formats, the model, turn detection and output modalities stay those of the agent the
//! conversation started with. The API refuses a voice change once audio has been produced, and
//! a changed format breaks a phone call's audio mid-call.
//!
//! Tools the host added to the session rather than the agent (`agent serve`'s `end_call` and
//! `transfer_call`, typed extensions such as the phone call) stay through every handoff.
//!
//! The switch is a function call like any other, so it is in the conversation's history: a
//! resumed conversation starts with the agent its last handoff chose ([`Team::resume`]).

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use serde_json::json;

use super::{SessionConfig, approval::ApprovalPolicy};
use crate::{
    protocol::{Item, MaxTokens, Session, ToolChoice, ToolDefinition},
    tool::{ToolConfig, ToolRegistry},
};

/// The prefix of every transfer tool's name.
pub const TRANSFER_PREFIX: &str = "transfer_to_";

/// The transfer tool's name for the agent `agent`: `transfer_to_` and the name, with anything
/// a function name may not hold replaced by `_`.
pub fn transfer_tool_name(agent: &str) -> String {
    let safe: String = agent
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{TRANSFER_PREFIX}{safe}")
}

/// The function the model calls to hand the conversation to `agent`.
pub fn transfer_definition(agent: &str, when: Option<&str>) -> ToolDefinition {
    let mut description = format!(
        "Hand the conversation to the {agent} agent, who continues it with the user. Call it \
         alone, without answering the user yourself."
    );
    if let Some(when) = when.map(str::trim).filter(|w| !w.is_empty()) {
        description.push_str(" Use it for: ");
        description.push_str(when);
    }
    ToolDefinition::function(
        transfer_tool_name(agent),
        description,
        json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false}),
    )
}

/// One agent of a team: what the session takes from it when the conversation is handed to it.
#[derive(Clone)]
pub struct TeamAgent {
    /// The agent's name.
    pub name: String,
    /// Its instructions.
    pub instructions: Option<String>,
    /// Its own tools (the host's are added at run time).
    pub tools: Arc<ToolRegistry>,
    /// Its `session.tools`: its functions, hosted MCP servers and transfer tools.
    pub definitions: Vec<ToolDefinition>,
    /// Its tool choice.
    pub tool_choice: Option<ToolChoice>,
    /// Its answer length.
    pub max_output_tokens: Option<MaxTokens>,
    /// Its tools' settings and data directory.
    pub tool_config: Arc<ToolConfig>,
    /// How long one of its tool calls may run.
    pub tool_timeout: Duration,
    /// Which of its tools wait for approval.
    pub approval: ApprovalPolicy,
    /// Its transfer tools: tool name → target agent.
    pub transfers: BTreeMap<String, String>,
    /// Its guardrails. Spoken input is checked in blocking mode only when the starting
    /// agent's turn detection lets the runtime answer (turn detection is pinned).
    pub guardrails: Option<Arc<crate::guardrail::Guardrails>>,
    /// Its background tools and filler for slow calls.
    pub slow_tools: super::SlowTools,
}

impl std::fmt::Debug for TeamAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamAgent")
            .field("name", &self.name)
            .field("tools", &self.tools.names())
            .field("transfers", &self.transfers)
            .finish_non_exhaustive()
    }
}

/// Every agent a conversation may reach by handoffs from the one it starts with.
#[derive(Debug, Clone, Default)]
pub struct Team {
    agents: BTreeMap<String, TeamAgent>,
}

/// A handoff the runner applied: who had the conversation, who has it, and what to send.
#[derive(Debug, Clone)]
pub struct Handoff {
    /// The agent that had the conversation.
    pub from: String,
    /// The agent that has it now.
    pub to: String,
    /// The `session.update` that switches the server: instructions, tools, tool choice and
    /// answer length only, so voice and formats stay as they are.
    pub update: Session,
}

impl Team {
    /// A team of `agents` (the starting agent among them).
    pub fn new(agents: impl IntoIterator<Item = TeamAgent>) -> Self {
        Team {
            agents: agents.into_iter().map(|a| (a.name.clone(), a)).collect(),
        }
    }

    /// The agent named `name`.
    pub fn agent(&self, name: &str) -> Option<&TeamAgent> {
        self.agents.get(name)
    }

    /// The agents' names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.agents.keys().map(String::as_str)
    }

    /// The agent that `current` hands to when the model calls `tool`, if `tool` is one of
    /// `current`'s transfer tools.
    pub fn target(&self, current: &str, tool: &str) -> Option<&TeamAgent> {
        let target = self.agents.get(current)?.transfers.get(tool)?;
        self.agents.get(target)
    }

    /// Switches `config` from its current agent (`config.agent`) to `to`: the agent's parts
    /// replaced, the host's tools and extensions kept, the voice and formats untouched.
    /// `None` when either agent is not in the team.
    pub fn apply(&self, config: &mut SessionConfig, to: &str) -> Option<Handoff> {
        let from = self.agents.get(&config.agent)?;
        let target = self.agents.get(to)?;
        // What the host added on top of the starting agent stays (phone call control).
        let mut tools = (*target.tools).clone();
        for tool in config.tools.iter() {
            if !from.tools.contains(tool.name()) && !tools.contains(tool.name()) {
                let _ = tools.register(tool.clone(), "the host, kept through a handoff");
            }
        }
        let own = |defs: &[ToolDefinition], name: Option<&str>| {
            defs.iter().any(|d| d.name().is_some() && d.name() == name)
        };
        let mut definitions = target.definitions.clone();
        for definition in config.session.tools.iter().flatten() {
            let name = definition.name();
            if !own(&from.definitions, name) && !own(&definitions, name) {
                definitions.push(definition.clone());
            }
        }
        config.agent = target.name.clone();
        config.tools = Arc::new(tools);
        config.tool_config = Arc::new(target.tool_config.with_extensions_of(&config.tool_config));
        config.tool_timeout = target.tool_timeout;
        config.approval = target.approval.clone();
        config.guardrails = target.guardrails.clone();
        config.slow_tools = target.slow_tools.clone();
        config.session.instructions = target.instructions.clone();
        config.session.tools = Some(definitions.clone());
        config.session.tool_choice = target.tool_choice.clone();
        config.session.max_output_tokens = target.max_output_tokens;
        let mut update = Session::realtime();
        update.instructions = target.instructions.clone();
        update.tools = Some(definitions);
        update.tool_choice = Some(target.tool_choice.clone().unwrap_or(ToolChoice::Auto));
        update.max_output_tokens = Some(target.max_output_tokens.unwrap_or(MaxTokens::Inf));
        Some(Handoff {
            from: from.name.clone(),
            to: target.name.clone(),
            update,
        })
    }

    /// The agent a resumed conversation is with: the starting agent, moved along by every
    /// transfer call in `items` that got an output (a transfer that never finished did not
    /// happen).
    pub fn resume<'a>(&self, start: &str, items: impl IntoIterator<Item = &'a Item>) -> String {
        let items: Vec<&Item> = items.into_iter().collect();
        let answered: std::collections::HashSet<&str> = items
            .iter()
            .filter_map(|item| match item {
                Item::FunctionCallOutput(output) => Some(output.call_id.as_str()),
                _ => None,
            })
            .collect();
        let mut current = start.to_owned();
        for item in items {
            if let Item::FunctionCall(call) = item
                && answered.contains(call.call_id.as_str())
                && let Some(target) = self.target(&current, &call.name)
            {
                current = target.name.clone();
            }
        }
        current
    }
}

/// The output the model reads for a transfer call.
pub fn transfer_output(to: &str) -> String {
    json!({"transferred_to": to, "status": "done"}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_function_safe() {
        assert_eq!(transfer_tool_name("billing"), "transfer_to_billing");
        assert_eq!(
            transfer_tool_name("Billing Desk.2"),
            "transfer_to_Billing_Desk_2"
        );
    }

    #[test]
    fn the_description_says_when() {
        let ToolDefinition::Function(f) = transfer_definition("billing", Some("refunds")) else {
            panic!("a function");
        };
        assert!(f.description.unwrap().ends_with("Use it for: refunds"));
    }
}
