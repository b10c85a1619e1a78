//! Errors in agent files, pointing at `file:line:col` and saying what to do.

use std::{fmt, ops::Range, path::PathBuf};

/// One problem in an agent file: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the problem is in.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at the byte offset `span.start` of `source`.
    pub fn at(
        path: impl Into<PathBuf>,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        let (line, column) = line_col(source, span.start);
        Diagnostic {
            path: path.into(),
            line,
            column,
            message: message.into(),
            hint,
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of a byte offset; offsets past the end or inside a
/// UTF-8 sequence are clamped rather than trusted.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Everything wrong with an agent file.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The file could not be read: missing, not a regular file, too large or not UTF-8. The
    /// message names the file (and, for bad UTF-8, the line and column) once.
    #[error(transparent)]
    Read(#[from] crate::fs_limits::ReadError),
    /// The file is not valid TOML or does not match the agent file's shape; or it does but
    /// names things that do not exist. All problems found are listed.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

impl AgentError {
    /// The individual problems, empty for read errors.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            AgentError::Invalid(d) => d,
            AgentError::Read(_) => &[],
        }
    }
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Up to three candidates closest to `name`, best first: used so an unknown name comes with a
/// "did you mean" that points at what exists. This is the one rule for every such hint (tool
/// names, `[tool_config.NAME]` tables, settings keys, voices).
///
/// Case is ignored. A candidate is close when one name contains the other (`ticket` →
/// `create_ticket`; a candidate shorter than three letters must match whole), or when the edit
/// distance is at most a third of the longer name, and never less than two.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let wanted = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|candidate| {
            let lower = candidate.to_lowercase();
            let distance = strsim::levenshtein(&wanted, &lower);
            let longer = wanted.chars().count().max(lower.chars().count());
            let related = !wanted.is_empty()
                && (lower.contains(&wanted)
                    || (wanted.contains(&lower) && lower.chars().count() >= 3));
            let near = distance <= (longer / 3).max(2);
            (related || near).then_some((if related { 0 } else { distance }, candidate))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 9), (2, 3));
        assert_eq!(line_col(src, 1000), (3, 1));
    }

    #[test]
    fn line_col_clamps_inside_a_char() {
        let src = "é";
        assert_eq!(line_col(src, 1), (1, 1));
    }

    #[test]
    fn closest_prefers_related_names() {
        let names = ["lookup_order", "create_ticket", "current_time", "calculate"];
        assert_eq!(closest("lookup_ordr", names), vec!["lookup_order"]);
        assert_eq!(closest("ticket", names), vec!["create_ticket"]);
        assert!(closest("zzzzzzzz", names).is_empty());
        assert_eq!(closest("Current_Tme", names), vec!["current_time"]);
        assert!(closest("", names).is_empty());
    }
}
