//! Tools whose schema strict mode cannot express, found before a session is opened.
//!
//! With `tool_options.strict = true` (the default) every tool is sent with its strict schema,
//! and some schemas cannot be made strict (a map-typed parameter needs `additionalProperties`
//! to be a schema, which strict mode forbids). `agent check` reports them as errors, pointing at
//! the tool in the agent file, so the author learns it from the checker and not from the server.

use std::ops::Range;

use super::{diagnostic::Diagnostic, resolve::Agent};

impl Agent {
    /// One error per tool whose strict schema breaks strict mode's rules, when the agent uses
    /// strict mode; none otherwise.
    pub fn strict_mode_problems(&self) -> Vec<Diagnostic> {
        if !self.spec().tool_options.strict {
            return Vec::new();
        }
        self.tools
            .strict_problems()
            .into_iter()
            .map(|(name, err)| {
                self.file.diagnostic(
                    self.tool_span(&name),
                    format!(
                        "tool `{name}` cannot be used in strict mode: {}",
                        err.problems.join("; ")
                    ),
                    Some(
                        "give every object fixed properties (a list of {key, value} objects instead of a map, say), or set `strict = false` under [tool_options]"
                            .to_owned(),
                    ),
                )
            })
            .collect()
    }

    /// Where the tool called `name` is named: its entry in `tools`, its `[[http_tools]]`
    /// declaration, or the `[[mcp_clients]]` server it comes from.
    fn tool_span(&self, name: &str) -> Range<usize> {
        if let Some(listed) = self.spec().tools.iter().find(|t| t.get_ref() == name) {
            return listed.span();
        }
        if let Some(source) = self.tools.source(name)
            && let Some(server) = self
                .spec()
                .mcp_clients
                .iter()
                .find(|s| source.starts_with(&format!("MCP server `{}` ", s.name())))
        {
            return server.name.span();
        }
        let source = &self.file.source;
        let quoted = format!("\"{name}\"");
        let declarations = source.find("http_tools").unwrap_or(0);
        source[declarations..]
            .find(&quoted)
            .map(|at| declarations + at..declarations + at + quoted.len())
            .unwrap_or(declarations..declarations)
    }
}

#[cfg(test)]
mod tests {
    use crate::{agent::AgentFile, tool::ToolRegistry};

    const MAP_TOOL: &str = r#"
[[http_tools]]
name = "tag_order"
description = "Tags an order."
url = "http://127.0.0.1:9/orders"
method = "POST"
parameters = { type = "object", properties = { labels = { type = "object", additionalProperties = { type = "string" } } }, required = ["labels"] }
"#;

    fn problems(head: &str) -> Vec<String> {
        let source = format!("name = \"x\"\n{head}{MAP_TOOL}");
        AgentFile::parse("agents/t.toml", source)
            .unwrap()
            .resolve(&ToolRegistry::new())
            .unwrap()
            .strict_mode_problems()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn map_parameters_are_reported_in_strict_mode_only() {
        let found = problems("");
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].starts_with("agents/t.toml:4:8: tool `tag_order` cannot be used in strict mode: /properties/labels: `additionalProperties` must be false"),
            "{found:#?}"
        );
        assert!(found[0].contains("strict = false"), "{found:#?}");
        assert!(problems("[tool_options]\nstrict = false\n").is_empty());
    }
}
