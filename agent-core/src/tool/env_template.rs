//! `${ENV_VAR}` substitution in plugin tools' header values, so secrets stay out of agent files.
//!
//! Templates are parsed when the agent file is loaded (a malformed `${` is an error then) and
//! expanded at call time (so a rotated secret is picked up). Errors name the variable, never its
//! value; nothing here logs values.

use std::fmt;

/// A string with `${NAME}` placeholders. A `$` not followed by `{` is literal.
#[derive(Clone, PartialEq, Eq)]
pub struct EnvTemplate {
    parts: Vec<Part>,
}

#[derive(Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Var(String),
}

/// A template that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvTemplateError {
    /// `${` without a closing `}`.
    #[error("`${{` at byte {at} has no closing `}}`; write `${{NAME}}`")]
    Unterminated {
        /// Byte offset of the `$`.
        at: usize,
    },
    /// A name that is not an environment variable name.
    #[error(
        "`${{{name}}}` is not a valid variable name: use letters, digits and `_`, not starting with a digit"
    )]
    InvalidName {
        /// The text between the braces.
        name: String,
    },
}

/// An environment variable a template needs is not set (or not UTF-8).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable `{name}` is not set")]
pub struct MissingEnvVar {
    /// The variable's name.
    pub name: String,
}

impl EnvTemplate {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, EnvTemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        let mut offset = 0;
        while let Some(start) = rest.find("${") {
            literal.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(EnvTemplateError::Unterminated { at: offset + start });
            };
            let name = &after[..end];
            let valid = !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(EnvTemplateError::InvalidName {
                    name: name.to_owned(),
                });
            }
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var(name.to_owned()));
            let consumed = start + 2 + end + 1;
            offset += consumed;
            rest = &rest[consumed..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(EnvTemplate { parts })
    }

    /// The variables the template reads, in order.
    pub fn variables(&self) -> impl Iterator<Item = &str> + '_ {
        self.parts.iter().filter_map(|part| match part {
            Part::Var(name) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Expands the template from the process environment. Every value read from the
    /// environment is registered as a secret (see [`crate::redact`]): these templates fill
    /// headers and tokens.
    pub fn expand(&self) -> Result<String, MissingEnvVar> {
        let expanded = self.expand_with(|name| {
            let value = std::env::var(name).ok()?;
            crate::redact::register_secret(&value);
            Some(value)
        })?;
        if self.parts.iter().any(|p| matches!(p, Part::Var(_))) {
            crate::redact::register_secret(&expanded);
        }
        Ok(expanded)
    }

    /// Expands the template with `lookup` (tests, or a secret store).
    pub fn expand_with(
        &self,
        mut lookup: impl FnMut(&str) -> Option<String>,
    ) -> Result<String, MissingEnvVar> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Var(name) => match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => return Err(MissingEnvVar { name: name.clone() }),
                },
            }
        }
        Ok(out)
    }
}

/// Shows the template with its placeholders, never expanded values.
impl fmt::Debug for EnvTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(_) => text.push_str("<literal>"),
                Part::Var(name) => {
                    text.push_str("${");
                    text.push_str(name);
                    text.push('}');
                }
            }
        }
        write!(f, "EnvTemplate({text:?})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_expands() {
        let t = EnvTemplate::parse("Bearer ${API_TOKEN} ($x ok)").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["API_TOKEN"]);
        let lookup = |name: &str| (name == "API_TOKEN").then(|| "s3cret".to_owned());
        assert_eq!(t.expand_with(lookup).unwrap(), "Bearer s3cret ($x ok)");
        assert_eq!(
            t.expand_with(|_| None),
            Err(MissingEnvVar {
                name: "API_TOKEN".into()
            })
        );
        assert!(!format!("{t:?}").contains("Bearer"));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            EnvTemplate::parse("a ${B"),
            Err(EnvTemplateError::Unterminated { at: 2 })
        );
        assert!(matches!(
            EnvTemplate::parse("${}"),
            Err(EnvTemplateError::InvalidName { .. })
        ));
        assert!(matches!(
            EnvTemplate::parse("${1A}"),
            Err(EnvTemplateError::InvalidName { .. })
        ));
        assert!(matches!(
            EnvTemplate::parse("${A-B}"),
            Err(EnvTemplateError::InvalidName { .. })
        ));
    }
}
