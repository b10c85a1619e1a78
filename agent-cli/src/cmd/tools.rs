//! `agent tools [--json] [--relaxed]`: list the registered tools.
//!
//! The listing shows exactly what the model is sent: each tool's name, description and
//! parameters schema (strict mode by default, as agents use it unless
//! `tool_options.strict = false`).

use std::process::ExitCode;

use agent_core::tool::{ToolDescription, schema};

/// Arguments of `agent tools`.
#[derive(Debug, clap::Args)]
pub struct ToolsArgs {
    /// Print machine-readable JSON instead of a human listing.
    #[arg(long)]
    pub json: bool,
    /// Show the relaxed schemas (optional parameters not required) instead of strict ones.
    #[arg(long)]
    pub relaxed: bool,
}

/// Lists the tools.
pub fn run(args: ToolsArgs) -> anyhow::Result<ExitCode> {
    let registry = agent_tools::registry()?;
    let definitions = registry.definitions(!args.relaxed);
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
