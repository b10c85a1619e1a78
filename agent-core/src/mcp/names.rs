//! The names the model calls MCP tools by.
//!
//! MCP allows tool names the Realtime API does not (`files.read`, `search/web`); the API wants
//! `^[a-zA-Z0-9_-]{1,64}$`. The model therefore sees `prefix + name` with every other character
//! replaced by `_`, and each call goes back to the server under the tool's own name. A name that
//! stays too long, or two tools that end up with one name, are errors naming both, never a
//! silent choice.

use super::spec::is_plain_name;

/// The name the model sees for the server's tool `remote`, or why there can be none.
pub(crate) fn exposed_name(prefix: Option<&str>, remote: &str) -> Result<String, String> {
    if remote.is_empty() {
        return Err("a tool has an empty name".to_owned());
    }
    let mut name = String::with_capacity(prefix.map_or(0, str::len) + remote.len());
    name.push_str(prefix.unwrap_or_default());
    name.extend(remote.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            c
        } else {
            '_'
        }
    }));
    if is_plain_name(&name) {
        Ok(name)
    } else {
        Err(format!(
            "tool `{remote}` would be called `{name}`, {} characters long; the Realtime API allows at most 64: use a shorter `prefix`, or leave the tool out with `tools = [...]`",
            name.chars().count()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prefixed_and_made_acceptable() {
        assert_eq!(exposed_name(None, "read_file").unwrap(), "read_file");
        assert_eq!(
            exposed_name(Some("fs_"), "read_file").unwrap(),
            "fs_read_file"
        );
        assert_eq!(exposed_name(None, "files.read").unwrap(), "files_read");
        assert_eq!(
            exposed_name(None, "search/web v2").unwrap(),
            "search_web_v2"
        );
        assert_eq!(exposed_name(None, "café").unwrap(), "caf_");
        assert!(exposed_name(None, "").unwrap_err().contains("empty name"));
        let long = "x".repeat(60);
        let err = exposed_name(Some("server_"), &long).unwrap_err();
        assert!(
            err.contains("67 characters") && err.contains("prefix"),
            "{err}"
        );
        assert_eq!(exposed_name(None, &"y".repeat(64)).unwrap().len(), 64);
    }
}
