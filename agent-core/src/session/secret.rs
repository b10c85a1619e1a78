//! Secrets that must never reach a log, a trace, an error message or `Debug` output.

use std::fmt;

/// An API key, ephemeral token or secret header value.
///
/// It has no `Display`, and its `Debug` prints `[redacted]`, so formatting a struct that holds
/// one cannot leak it. Read it with [`Secret::expose`] only where it goes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place it is sent.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty (an unset variable exported as "").
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Replaces `${VAR}` in `template` with the environment's values. Missing variables are an error
/// naming the variable (never a value), so a misconfigured header fails loudly before connecting.
pub fn expand_env(template: &str) -> Result<String, MissingEnvVar> {
    expand_with(template, |name| std::env::var(name).ok())
}

/// [`expand_env`] with a custom lookup, for tests.
pub fn expand_with(
    template: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, MissingEnvVar> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        match lookup(name) {
            Some(value) => out.push_str(&value),
            None => {
                return Err(MissingEnvVar {
                    name: name.to_owned(),
                });
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A `${VAR}` reference to a variable that is not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable `{name}` is not set; export it before starting the agent")]
pub struct MissingEnvVar {
    /// The variable's name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("sk-very-secret");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s)), "Some([redacted])");
    }

    #[test]
    fn expands_variables() {
        let lookup = |n: &str| (n == "TOKEN").then(|| "abc".to_owned());
        assert_eq!(
            expand_with("Bearer ${TOKEN}", lookup).unwrap(),
            "Bearer abc"
        );
        assert_eq!(expand_with("plain", lookup).unwrap(), "plain");
        assert_eq!(
            expand_with("x ${unterminated", lookup).unwrap(),
            "x ${unterminated"
        );
        let err = expand_with("${NOPE}", lookup).unwrap_err();
        assert_eq!(err.name, "NOPE");
        assert!(!err.to_string().contains("abc"));
    }
}
