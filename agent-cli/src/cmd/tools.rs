//! `agent tools [--agent FILE] [--json] [--relaxed]`: list the registered tools, or one agent's.
//!
//! The listing shows exactly what the model is sent: each tool's name, description and
//! parameters schema (strict mode by default, as agents use it unless
//! `tool_options.strict = false`). With `--agent`, the agent's own tools: those it names, its
//! HTTP tools, and the tools of its `[[mcp_clients]]` servers, which are started to list them.

use std::{path::PathBuf, process::ExitCode};

use agent_core::tool::{ToolDescription, schema};

/// Arguments of `agent tools`.
#[derive(Debug, clap::Args)]
pub struct ToolsArgs {
    /// List this agent file's tools (its MCP servers' included) instead of every registered
    /// tool; the schemas are as strict as the agent's `tool_options.strict`.
    #[arg(long, value_name = "FILE")]
    pub agent: Option<PathBuf>,
    /// Print machine-readable JSON instead of a human listing.
    #[arg(long)]
    pub json: bool,
    /// Show the relaxed schemas (optional parameters not required) instead of strict ones.
    #[arg(long)]
    pub relaxed: bool,
}

/// Lists the tools.
pub fn run(args: ToolsArgs) -> anyhow::Result<ExitCode> {
    let (registry, strict) = match &args.agent {
        Some(file) => {
            let mut agent = super::load_agent(file)?;
            let runtime = super::runtime()?;
            let mcp = runtime.block_on(agent.connect_mcp())?;
            runtime.block_on(mcp.shutdown());
            let strict = agent.spec().tool_options.strict;
            ((*agent.tools).clone(), strict)
        }
        None => (agent_tools::registry()?, true),
    };
    let definitions = registry.definitions(strict && !args.relaxed);
    let text = if args.json {
        serde_json::to_string_pretty(&definitions)? + "\n"
    } else {
        human(&definitions, |name| registry.source(name))
    };
    // A closed pipe (`agent tools | head`) ends the program quietly.
    crate::output::stdout(&text);
    Ok(ExitCode::SUCCESS)
}

/// The human listing: name, source, description, then one line per parameter.
fn human<'a>(definitions: &[ToolDescription], source: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut text = String::new();
    for (i, definition) in definitions.iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        text.push_str(&definition.name);
        if let Some(source) = source(&definition.name) {
            text.push_str(&format!("  ({source})"));
        }
        text.push('\n');
        for line in definition.description.lines() {
            text.push_str(&format!("    {line}\n").replace("    \n", "\n"));
        }
        let params = schema::summarize(&definition.parameters);
        if params.is_empty() {
            text.push_str("    parameters: none\n");
        } else {
            text.push_str("    parameters:\n");
            for param in params {
                text.push_str(&format!("      {param}"));
                if let Some(description) = &param.description {
                    let one_line = description.split_whitespace().collect::<Vec<_>>().join(" ");
                    text.push_str(&format!(" — {one_line}"));
                }
                text.push('\n');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_listing_reads_well() {
        let definitions = vec![ToolDescription {
            name: "calculate".into(),
            description: "Evaluates arithmetic.\n\nUse it for sums.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"expression": {"type": "string", "description": "The expression.\nMore."}},
                "required": ["expression"],
                "additionalProperties": false
            }),
        }];
        let text = human(&definitions, |_| {
            Some("agent_tools::calculate (tools/src/calculate.rs:12)")
        });
        assert_eq!(
            text,
            "calculate  (agent_tools::calculate (tools/src/calculate.rs:12))\n    Evaluates arithmetic.\n\n    Use it for sums.\n    parameters:\n      expression: string (required) — The expression. More.\n"
        );
    }
}
