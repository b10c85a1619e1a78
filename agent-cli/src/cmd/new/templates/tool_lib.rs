//! The `{{tool}}` tool for realtime agents.
//!
//! Each `#[tool]` function is a tool the model can call: its name, description and parameters
//! (a JSON schema) come from the signature and the doc comments. Add more functions like it;
//! the binary in `agent/` links this crate, so `agent tools` lists them and `agent run`,
//! `agent test` and `agent mock` use them beside the built-in tools.

use agent_tool::tool;

// Made by `agent new tool`: replace the doc comments and the body with what `{{tool}}` does.
// The model reads the doc comment to decide when to call the tool, and each parameter's
// doc comment to know what to pass.

/// Greets someone by name. Use it when the user tells you their name.
{{tool_attribute}}
pub fn {{function}}(
    /// The person's name, as they said it, e.g. "Ada".
    name: String,
    /// Greet loudly, in capitals. Optional: the model may leave it out.
    loud: Option<bool>,
) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        // The model reads the error and can ask the user.
        return Err("the name is empty; ask the user for their name".to_owned());
    }
    let greeting = format!("Hello, {name}!");
    Ok(if loud.unwrap_or(false) {
        greeting.to_uppercase()
    } else {
        greeting
    })
}

#[cfg(test)]
mod tests {
    use super::{{function}} as greet;

    // A tool stays a normal function, so it is tested like one.
    #[test]
    fn greets_by_name() {
        assert_eq!(greet("Ada".into(), None).unwrap(), "Hello, Ada!");
        assert_eq!(greet(" Ada ".into(), Some(true)).unwrap(), "HELLO, ADA!");
        assert!(greet("  ".into(), None).is_err());
    }
}
