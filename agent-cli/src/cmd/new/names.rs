//! What `agent new` accepts as a NAME, and the Rust and Cargo names derived from it.
//!
//! A tool's NAME must be a name the Realtime API accepts (`^[a-zA-Z0-9_-]{1,64}$`); it also
//! names the crate (lowercased), the function (`-` becomes `_`) and the binary (`NAME-agent`),
//! so it must make a valid crate name too. Every refusal says why and what would work.

use agent_core::tool::is_valid_name;

/// The names one tool crate is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolNames {
    /// The tool's name as the model calls it (the NAME given).
    pub tool: String,
    /// The tool crate's package name: NAME in lowercase.
    pub package: String,
    /// The crate as Rust code names it (`-` → `_`).
    pub lib: String,
    /// The `#[tool]` function's name (the same as `lib`).
    pub function: String,
    /// The binary crate's package (and binary) name: `PACKAGE-agent`.
    pub bin: String,
}

/// Why a NAME cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a name the Realtime API accepts for a tool, or not a safe file name for an agent.
    #[error("`{0}` is not a valid name: use 1 to 64 ASCII letters, digits, `_` or `-`")]
    Invalid(String),
    /// It would not make a valid crate or function name.
    #[error("`{name}` cannot name a crate: {why}; pick another NAME")]
    NotACrate {
        /// The NAME given.
        name: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Names Rust reserves (keywords) or Cargo refuses as package names, and the framework's own
/// crates (a second package of that name would clash with the path dependency).
const RESERVED: &[&str] = &[
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    "union",
    // Cargo: the standard library's crates, and names of its own output folders.
    "std",
    "core",
    "alloc",
    "proc_macro",
    "test",
    "build",
    "deps",
    "examples",
    "incremental",
    // Names Windows cannot give a folder.
    "con",
    "prn",
    "aux",
    "nul",
    "com1",
    "com2",
    "com3",
    "com4",
    "com5",
    "com6",
    "com7",
    "com8",
    "com9",
    "lpt1",
    "lpt2",
    "lpt3",
    "lpt4",
    "lpt5",
    "lpt6",
    "lpt7",
    "lpt8",
    "lpt9",
    // The framework's crates.
    "agent_tool",
    "agent_core",
    "agent_macros",
    "agent_tools",
    "agent_cli",
    "agent_testkit",
    "agent_fs_limits",
    "agent_bench",
    "agent_server",
];

impl ToolNames {
    /// Checks `name` and derives the crate, function and binary names from it.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if !is_valid_name(name) {
            return Err(NameError::Invalid(name.to_owned()));
        }
        let package = name.to_ascii_lowercase();
        let lib = package.replace('-', "_");
        let not_a_crate = |why: &str| NameError::NotACrate {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        if !package.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(not_a_crate("a crate name must start with a letter"));
        }
        if RESERVED.contains(&lib.as_str()) {
            return Err(not_a_crate(
                "it is a Rust keyword, a name Cargo reserves, or one of the framework's crates",
            ));
        }
        Ok(ToolNames {
            tool: name.to_owned(),
            bin: format!("{package}-agent"),
            function: lib.clone(),
            lib,
            package,
        })
    }

    /// The attribute on the function: `#[tool]`, or `#[tool(name = "...")]` when the tool's
    /// name is not the function's.
    pub fn attribute(&self) -> String {
        if self.tool == self.function {
            "#[tool]".to_owned()
        } else {
            format!("#[tool(name = \"{}\")]", self.tool)
        }
    }
}

/// Checks an agent's NAME, which names its files (`NAME.toml`, `NAME.scenarios.toml`).
pub fn check_agent_name(name: &str) -> Result<(), NameError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(NameError::Invalid(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_tool_name() {
        let names = ToolNames::new("Hello-Tool").unwrap();
        assert_eq!(names.tool, "Hello-Tool");
        assert_eq!(names.package, "hello-tool");
        assert_eq!(names.lib, "hello_tool");
        assert_eq!(names.function, "hello_tool");
        assert_eq!(names.bin, "hello-tool-agent");
        assert_eq!(names.attribute(), "#[tool(name = \"Hello-Tool\")]");
        assert_eq!(ToolNames::new("weather").unwrap().attribute(), "#[tool]");
    }

    #[test]
    fn bad_names_say_why() {
        for bad in ["", "has space", "dot.ted", "é", &"x".repeat(65)] {
            let err = ToolNames::new(bad).unwrap_err();
            assert!(err.to_string().contains("1 to 64 ASCII letters"), "{err}");
        }
        for (bad, why) in [
            ("9lives", "start with a letter"),
            ("_private", "start with a letter"),
            ("-dash", "start with a letter"),
            ("match", "keyword"),
            ("Test", "keyword"),
            ("agent-core", "framework"),
        ] {
            let err = ToolNames::new(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
            assert!(err.to_string().contains("pick another NAME"), "{err}");
        }
        check_agent_name("support-2").unwrap();
        assert!(check_agent_name("../escape").is_err());
    }
}
