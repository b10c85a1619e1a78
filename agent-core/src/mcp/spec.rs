//! `[[mcp_clients]]`: an MCP server the framework starts (stdio) or reaches (streamable HTTP)
//! and calls itself, as written in an agent file.
//!
//! Everything a load-time check can see is checked by [`McpClientSpec::problems`]: one
//! transport, keys that belong to it, URLs, `${ENV}` templates (and that their variables are
//! set), timeouts and limits. What only the server can tell (its tools) is checked when the
//! framework connects (see [`super::McpClients`]).

use std::{collections::BTreeMap, time::Duration};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::tool::EnvTemplate;

/// The default `startup_timeout_secs`: starting (or reaching) the server, the MCP handshake
/// and listing its tools.
pub const DEFAULT_STARTUP_TIMEOUT_SECS: f64 = 10.0;

/// The default `max_output_bytes`: the most text one call gives the model (as for HTTP tools).
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// The largest `max_output_bytes` accepted; the model's context is the real limit.
pub const MAX_OUTPUT_BYTES_LIMIT: usize = 4 * 1024 * 1024;

/// The largest single message read from a server (a line on stdio, a JSON body or an SSE event
/// over HTTP), as for the Realtime connection's frames. Larger ones are dropped unread.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The longest timeout accepted, in seconds.
const MAX_TIMEOUT_SECS: f64 = 3600.0;

/// Variables a stdio server inherits from this process without being asked (as in the official
/// MCP SDKs): enough to find programs and a home directory, and nothing that usually holds a
/// secret, so the agent's own API key never reaches a server by accident.
#[cfg(unix)]
pub const INHERITED_ENV: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ",
];

/// Variables a stdio server inherits from this process without being asked (as in the official
/// MCP SDKs): enough to find programs and a home directory, and nothing that usually holds a
/// secret, so the agent's own API key never reaches a server by accident.
#[cfg(not(unix))]
pub const INHERITED_ENV: &[&str] = &[
    "APPDATA",
    "HOMEDRIVE",
    "HOMEPATH",
    "LOCALAPPDATA",
    "PATH",
    "PATHEXT",
    "PROCESSOR_ARCHITECTURE",
    "SYSTEMDRIVE",
    "SYSTEMROOT",
    "TEMP",
    "USERNAME",
    "USERPROFILE",
    "PROGRAMFILES",
];

/// An MCP server whose tools the framework calls, declared in an agent file
/// (`[[mcp_clients]]`). Set `command` for a server that speaks MCP on its standard input and
/// output, or `url` for a streamable HTTP server.
///
/// Not to be confused with `[[mcp_servers]]`, which the Realtime API itself calls.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpClientSpec {
    /// A short name for the server (letters, digits, `_`, `-`), used in messages and logs.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// stdio: the program to start (looked up on `PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// stdio: its arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// stdio: environment variables set for it; values may use `${ENV_VAR}` (treated as
    /// secrets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// stdio: more variables passed through from this process as they are. Besides these and
    /// `env`, the server sees only a few harmless ones (`PATH`, `HOME`, ...), never the API key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inherit_env: Vec<String>,
    /// stdio: the working directory, relative to the agent file (default: the agent file's
    /// folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// streamable HTTP: the MCP endpoint, e.g. `https://mcp.example.com/mcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// streamable HTTP: headers sent with every request; values may use `${ENV_VAR}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// streamable HTTP: a token sent as `Authorization: Bearer TOKEN`; may use `${ENV_VAR}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<String>,
    /// streamable HTTP: allow `http://` to another machine (headers and token in clear).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure: bool,
    /// Only these of the server's tools (its own names) are offered; all when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Put before each tool's name, e.g. `files_`, so tools of different servers cannot clash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Starting the server (or reaching it), the MCP handshake and listing its tools, in
    /// seconds.
    #[serde(default = "default_startup_timeout_secs")]
    #[schemars(range(min = 0.001, max = 3600.0))]
    pub startup_timeout_secs: f64,
    /// One call, in seconds; the agent's `tool_options.timeout_secs` still applies on top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.001, max = 3600.0))]
    pub call_timeout_secs: Option<f64>,
    /// The most text one call gives the model; a larger result is an error the model reads.
    #[serde(default = "default_max_output_bytes")]
    pub max_output_bytes: usize,
}

fn default_startup_timeout_secs() -> f64 {
    DEFAULT_STARTUP_TIMEOUT_SECS
}

fn default_max_output_bytes() -> usize {
    DEFAULT_MAX_OUTPUT_BYTES
}

/// How the framework reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum McpTransportKind {
    /// A child process speaking newline-delimited JSON-RPC on stdin and stdout.
    Stdio,
    /// Streamable HTTP (JSON or server-sent events over POST).
    Http,
}

impl McpClientSpec {
    /// The server's name.
    pub fn name(&self) -> &str {
        self.name.get_ref()
    }

    /// Stdio or HTTP; `None` when the declaration sets neither or both (see
    /// [`McpClientSpec::problems`]).
    pub fn transport(&self) -> Option<McpTransportKind> {
        match (&self.command, &self.url) {
            (Some(_), None) => Some(McpTransportKind::Stdio),
            (None, Some(_)) => Some(McpTransportKind::Http),
            _ => None,
        }
    }

    /// The startup deadline.
    pub fn startup_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.startup_timeout_secs)
            .unwrap_or(Duration::from_secs_f64(DEFAULT_STARTUP_TIMEOUT_SECS))
    }

    /// The per-call deadline, when one is set.
    pub fn call_timeout(&self) -> Option<Duration> {
        self.call_timeout_secs
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
    }

    /// Every problem a load-time check can find, each a sentence saying what to change. Also
    /// expands the `${ENV}` templates once, which registers their values as secrets (scrubbed
    /// from all output) before a server can echo them.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let name = self.name();
        if !is_plain_name(name) {
            problems.push(format!(
                "MCP server name `{name}` must be 1 to 64 letters, digits, `_` or `-`"
            ));
        }
        match self.transport() {
            None if self.command.is_some() => problems.push(
                "set either `command` (a stdio server) or `url` (a streamable HTTP server), not both"
                    .to_owned(),
            ),
            None => problems.push(
                "set `command` (a stdio server to start) or `url` (a streamable HTTP server)"
                    .to_owned(),
            ),
            Some(McpTransportKind::Stdio) => self.stdio_problems(&mut problems),
            Some(McpTransportKind::Http) => self.http_problems(&mut problems),
        }
        if let Some(prefix) = &self.prefix
            && (prefix.is_empty() || !prefix.bytes().all(is_name_byte))
        {
            problems.push(format!(
                "`prefix = \"{prefix}\"` must be letters, digits, `_` or `-` (tool names allow nothing else)"
            ));
        }
        if let Some(tools) = &self.tools
            && tools.iter().any(|t| t.trim().is_empty())
        {
            problems.push("`tools` lists an empty name".to_owned());
        }
        for (key, value) in [
            ("startup_timeout_secs", Some(self.startup_timeout_secs)),
            ("call_timeout_secs", self.call_timeout_secs),
        ] {
            if let Some(secs) = value
                && !(secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS)
            {
                problems.push(format!(
                    "`{key}` must be more than 0 and at most {MAX_TIMEOUT_SECS} seconds"
                ));
            }
        }
        if self.max_output_bytes == 0 || self.max_output_bytes > MAX_OUTPUT_BYTES_LIMIT {
            problems.push(format!(
                "`max_output_bytes` must be between 1 and {MAX_OUTPUT_BYTES_LIMIT}"
            ));
        }
        problems
    }

    fn stdio_problems(&self, problems: &mut Vec<String>) {
        if self.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            problems.push("`command` is empty; name the program that runs the server".to_owned());
        }
        let http_only = [
            ("headers", !self.headers.is_empty()),
            ("bearer_token", self.bearer_token.is_some()),
            ("allow_insecure", self.allow_insecure),
        ];
        for (key, set) in http_only {
            if set {
                problems.push(format!(
                    "`{key}` applies to HTTP servers (`url`), not to a `command`"
                ));
            }
        }
        for (variable, template) in &self.env {
            if !is_env_name(variable) {
                problems.push(format!(
                    "`env` key `{variable}` is not an environment variable name"
                ));
            }
            check_template(&format!("`env.{variable}`"), template, problems);
        }
        for variable in &self.inherit_env {
            if !is_env_name(variable) {
                problems.push(format!(
                    "`inherit_env` entry `{variable}` is not an environment variable name"
                ));
            }
        }
    }

    fn http_problems(&self, problems: &mut Vec<String>) {
        let stdio_only = [
            ("args", !self.args.is_empty()),
            ("env", !self.env.is_empty()),
            ("inherit_env", !self.inherit_env.is_empty()),
            ("cwd", self.cwd.is_some()),
        ];
        for (key, set) in stdio_only {
            if set {
                problems.push(format!(
                    "`{key}` applies to stdio servers (`command`), not to a `url`"
                ));
            }
        }
        let url = self.url.as_deref().unwrap_or_default();
        match url::Url::parse(url) {
            Err(err) => problems.push(format!(
                "`url` is not a valid URL ({err}); write e.g. https://mcp.example.com/mcp"
            )),
            Ok(parsed) => {
                if !matches!(parsed.scheme(), "http" | "https") {
                    problems.push("`url` must be http:// or https://".to_owned());
                } else if parsed.scheme() == "http"
                    && !crate::session::transport::is_loopback_url(url)
                    && !self.allow_insecure
                {
                    problems.push(
                        "`url` is http:// to another machine: headers and tokens would travel unencrypted; use https://, or set allow_insecure = true if the network is trusted"
                            .to_owned(),
                    );
                }
                if !parsed.username().is_empty() || parsed.password().is_some() {
                    problems.push(
                        "`url` holds credentials; put them in `headers` or `bearer_token` (with ${ENV_VAR})"
                            .to_owned(),
                    );
                }
            }
        }
        for (header, template) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
                problems.push(format!(
                    "`headers` key `{header}` is not a valid header name"
                ));
            }
            check_template(&format!("header `{header}`"), template, problems);
        }
        if let Some(token) = &self.bearer_token {
            check_template("`bearer_token`", token, problems);
            // A token is a secret even when written into the file as is.
            if let Ok(template) = EnvTemplate::parse(token)
                && let Ok(value) = template.expand()
            {
                crate::redact::register_secret(&value);
            }
        }
    }
}

/// A `${ENV}` template that must parse and whose variables must be set; expanding it also
/// registers the values as secrets.
fn check_template(what: &str, template: &str, problems: &mut Vec<String>) {
    match EnvTemplate::parse(template) {
        Err(err) => problems.push(format!("{what}: {err}")),
        Ok(parsed) => {
            if let Err(missing) = parsed.expand() {
                problems.push(format!(
                    "{what} needs environment variable `{}`, which is not set; export it",
                    missing.name
                ));
            }
        }
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `^[A-Za-z0-9_-]{1,64}$`, the Realtime API's rule for function names.
pub(crate) fn is_plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(is_name_byte)
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> McpClientSpec {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn a_stdio_and_an_http_server_are_valid() {
        let stdio = spec(
            "name = \"files\"\ncommand = \"npx\"\nargs = [\"-y\", \"server\"]\nenv = { MODE = \"ro\" }\ntools = [\"read\"]\nprefix = \"files_\"\n",
        );
        assert_eq!(stdio.transport(), Some(McpTransportKind::Stdio));
        assert!(stdio.problems().is_empty(), "{:?}", stdio.problems());
        assert_eq!(stdio.startup_timeout(), Duration::from_secs(10));
        assert_eq!(stdio.call_timeout(), None);
        assert_eq!(stdio.max_output_bytes, DEFAULT_MAX_OUTPUT_BYTES);
        let http = spec(
            "name = \"docs\"\nurl = \"https://mcp.example.com/mcp\"\nheaders = { X-Team = \"a\" }\ncall_timeout_secs = 2.5\n",
        );
        assert_eq!(http.transport(), Some(McpTransportKind::Http));
        assert!(http.problems().is_empty(), "{:?}", http.problems());
        assert_eq!(http.call_timeout(), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn every_problem_is_reported_with_what_to_do() {
        let cases = [
            ("name = \"a b\"\ncommand = \"x\"", "MCP server name `a b`"),
            ("name = \"a\"", "set `command`"),
            (
                "name = \"a\"\ncommand = \"x\"\nurl = \"https://h/mcp\"",
                "not both",
            ),
            ("name = \"a\"\ncommand = \" \"", "`command` is empty"),
            (
                "name = \"a\"\ncommand = \"x\"\nheaders = { A = \"b\" }",
                "`headers` applies to HTTP servers",
            ),
            (
                "name = \"a\"\nurl = \"https://h/mcp\"\nargs = [\"x\"]",
                "`args` applies to stdio servers",
            ),
            ("name = \"a\"\nurl = \"ftp://h/mcp\"", "http:// or https://"),
            (
                "name = \"a\"\nurl = \"http://example.com/mcp\"",
                "unencrypted",
            ),
            (
                "name = \"a\"\nurl = \"https://u:p@example.com/mcp\"",
                "holds credentials",
            ),
            ("name = \"a\"\nurl = \"nope\"", "not a valid URL"),
            (
                "name = \"a\"\nurl = \"https://h/mcp\"\nheaders = { \"Bad Header\" = \"x\" }",
                "not a valid header name",
            ),
            (
                "name = \"a\"\nurl = \"https://h/mcp\"\nbearer_token = \"${AGENT_TEST_SURELY_UNSET}\"",
                "`AGENT_TEST_SURELY_UNSET`, which is not set",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\nenv = { T = \"${oops\" }",
                "no closing",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\nenv = { \"1X\" = \"v\" }",
                "not an environment variable name",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\nprefix = \"my.\"",
                "`prefix = \"my.\"`",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\nstartup_timeout_secs = 0",
                "`startup_timeout_secs` must be",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\ncall_timeout_secs = -1",
                "`call_timeout_secs` must be",
            ),
            (
                "name = \"a\"\ncommand = \"x\"\nmax_output_bytes = 0",
                "`max_output_bytes` must be",
            ),
        ];
        for (text, want) in cases {
            let problems = spec(text).problems();
            assert!(
                problems.iter().any(|p| p.contains(want)),
                "{text}: {problems:?} lacks `{want}`"
            );
        }
        // Loopback needs no TLS.
        assert!(
            spec("name = \"a\"\nurl = \"http://127.0.0.1:9/mcp\"")
                .problems()
                .is_empty()
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = toml::from_str::<McpClientSpec>("name = \"a\"\ncommand = \"x\"\ntimeout = 3\n")
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
    }

    #[test]
    fn a_literal_bearer_token_is_a_secret() {
        let token = "literal-token-in-the-file-1234";
        spec(&format!(
            "name = \"a\"\nurl = \"https://h/mcp\"\nbearer_token = \"{token}\""
        ))
        .problems();
        assert_eq!(crate::redact::scrub(token), crate::redact::REDACTED);
    }
}
