//! `agent check`: every problem of an agent file at once.
//!
//! Loading stops at the first stage that finds problems (a file with a bad key is not resolved
//! against the registry). A person fixing a file wants the whole list instead: after the file
//! parses, the file's own checks (voices, limits, timeouts, URLs), tool resolution (unknown
//! tools with a "did you mean"), `[tool_config.NAME]` settings and strict-mode schemas all
//! run, and their problems come back together, in file order. A syntax error still stops
//! everything, since nothing after it can be read.

use std::path::Path;

use super::{Agent, AgentError, AgentFile, Diagnostic};
use crate::{fs_limits, tool::ToolRegistry};

impl AgentFile {
    /// Reads the agent file at `path`, resolves it against `registry` and checks strict mode,
    /// reporting every problem found (see the module docs).
    pub fn check_all(path: impl AsRef<Path>, registry: &ToolRegistry) -> Result<Agent, AgentError> {
        let path = path.as_ref();
        let source = fs_limits::read_text(path, fs_limits::MAX_AGENT_FILE_BYTES, "agent file")?;
        Self::check_source(path, source, registry)
    }

    /// [`AgentFile::check_all`] for text already read, as if from `path`.
    pub fn check_source(
        path: impl AsRef<Path>,
        source: String,
        registry: &ToolRegistry,
    ) -> Result<Agent, AgentError> {
        let (file, mut problems) = Self::parse_collecting(path.as_ref().to_owned(), source)?;
        let (agent, resolving) = file.resolve_collecting(registry);
        problems.extend(resolving);
        problems.extend(agent.strict_mode_problems());
        for member in agent.members.values() {
            problems.extend(member.strict_mode_problems());
        }
        if problems.is_empty() {
            return Ok(agent);
        }
        sort(&mut problems);
        Err(AgentError::Invalid(problems))
    }
}

/// File order: by line and column, the same place once per message.
fn sort(problems: &mut Vec<Diagnostic>) {
    problems.sort_by_key(|d| (d.line, d.column));
    problems.dedup_by(|a, b| (a.line, a.column, &a.message) == (b.line, b.column, &b.message));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use serde_json::{Value, json};

    use super::*;
    use crate::tool::{Tool, ToolContext, ToolError, ToolOutput};

    struct Echo(&'static str, Value);

    #[async_trait]
    impl Tool for Echo {
        fn name(&self) -> &str {
            self.0
        }
        fn description(&self) -> &str {
            "echo"
        }
        fn parameters(&self, _strict: bool) -> &Value {
            &self.1
        }
        async fn call(&self, _args: Value, _ctx: ToolContext) -> Result<ToolOutput, ToolError> {
            Ok(ToolOutput::text("ok"))
        }
    }

    fn registry() -> ToolRegistry {
        let mut registry = ToolRegistry::new();
        let object = json!({"type": "object", "properties": {}, "required": [],
            "additionalProperties": false});
        let map = json!({"type": "object", "properties": {"tags": {"type": "object",
            "additionalProperties": {"type": "string"}}}, "required": ["tags"],
            "additionalProperties": false});
        registry
            .register(Arc::new(Echo("lookup_order", object)), "test")
            .unwrap();
        registry
            .register(Arc::new(Echo("tag_things", map)), "test")
            .unwrap();
        registry
    }

    #[test]
    fn every_stage_reports_together_in_file_order() {
        let source = "name = \"x\"\nvoice = \"marine\"\ntools = [\"lookup_ordr\", \"tag_things\"]\n\
                      [timeouts]\nconnect_secs = -1\n[tool_config.nope]\nx = 1\n";
        let err = AgentFile::check_source("a.toml", source.to_owned(), &registry()).unwrap_err();
        let problems = err.diagnostics();
        let text = err.to_string();
        assert!(text.contains("marin"), "voice with a did-you-mean: {text}");
        assert!(
            text.contains("lookup_order"),
            "tool with a did-you-mean: {text}"
        );
        assert!(text.contains("connect_secs"), "bad timeout: {text}");
        assert!(
            text.contains("[tool_config"),
            "settings for no tool: {text}"
        );
        assert!(text.contains("strict mode"), "strict-mode problem: {text}");
        assert!(problems.len() >= 5, "{text}");
        let places: Vec<(usize, usize)> = problems.iter().map(|d| (d.line, d.column)).collect();
        let mut sorted = places.clone();
        sorted.sort();
        assert_eq!(places, sorted, "in file order");
    }

    #[test]
    fn a_syntax_error_stops_everything() {
        let err =
            AgentFile::check_source("a.toml", "name = \n".to_owned(), &registry()).unwrap_err();
        assert_eq!(err.diagnostics().len(), 1, "{err}");
    }

    #[test]
    fn a_good_file_resolves() {
        let agent = AgentFile::check_source(
            "a.toml",
            "name = \"x\"\ntools = [\"lookup_order\"]\n".into(),
            &registry(),
        )
        .unwrap();
        assert_eq!(agent.tools.len(), 1);
    }
}
