//! Reading an agent file: TOML syntax, the file's shape, and every check that needs no registry.

use std::{
    ops::Range,
    path::{Path, PathBuf},
};

use toml::Spanned;

use super::{
    diagnostic::{AgentError, Diagnostic, closest},
    spec::{AgentKind, AgentSpec, Modality},
};
use crate::fs_limits;

/// Voices the Realtime API ships with. Other names are rejected with a suggestion, since a typo
/// here otherwise only shows up as a server error after connecting.
pub const VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar",
];

/// An agent file that parsed and passed every check that needs no tool registry.
#[derive(Debug, Clone)]
pub struct AgentFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// The file's text, kept so later checks can point at `line:col`.
    pub source: String,
    /// The parsed spec.
    pub spec: AgentSpec,
    /// The instructions, inline or read from `instructions_file`.
    pub instructions: Option<String>,
}

impl AgentFile {
    /// Reads and checks the agent file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, AgentError> {
        let path = path.as_ref();
        let source = fs_limits::read_text(path, fs_limits::MAX_AGENT_FILE_BYTES, "agent file")?;
        Self::parse(path, source)
    }

    /// Checks `source` as if read from `path` (relative `instructions_file`s resolve against it).
    pub fn parse(path: impl Into<PathBuf>, source: String) -> Result<Self, AgentError> {
        let (file, problems) = Self::parse_collecting(path.into(), source)?;
        if problems.is_empty() {
            Ok(file)
        } else {
            Err(AgentError::Invalid(problems))
        }
    }

    /// Parses `source` and checks it; a file that parses comes back with every problem the
    /// checks found, so later checks (tools, settings) can add theirs. Only a syntax or
    /// schema error, which leaves nothing to check, is an error here.
    pub(super) fn parse_collecting(
        path: PathBuf,
        source: String,
    ) -> Result<(Self, Vec<Diagnostic>), AgentError> {
        let spec: AgentSpec = match toml::from_str(&source) {
            Ok(spec) => spec,
            Err(err) => {
                let message = err.message().trim().to_owned();
                let span = refine_span(&source, err.span().unwrap_or(0..0), &message);
                let hint = hint_for_toml_error(&message);
                return Err(AgentError::Invalid(vec![Diagnostic::at(
                    &path, &source, span, message, hint,
                )]));
            }
        };
        let mut checker = Checker {
            path: &path,
            source: &source,
            problems: Vec::new(),
        };
        checker.check(&spec);
        let instructions = checker.instructions(&spec);
        let problems = checker.problems;
        let file = AgentFile {
            path,
            source,
            spec,
            instructions,
        };
        Ok((file, problems))
    }

    /// A diagnostic pointing at `span` in this file.
    pub fn diagnostic(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        Diagnostic::at(&self.path, &self.source, span, message, hint)
    }

    /// A diagnostic pointing at the line that sets `key` (for values that carry no span), or
    /// at the top of the file when the key is not written out.
    pub fn diagnostic_at_key(
        &self,
        key: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        self.diagnostic(key_span(&self.source, key), message, hint)
    }
}

/// Serde loses the exact position of an unknown key inside tagged tables (it buffers them), so
/// the parser reports the table. Point at the key itself when it can be found in that table.
fn refine_span(source: &str, span: Range<usize>, message: &str) -> Range<usize> {
    let Some(key) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    else {
        return span;
    };
    let start = span.start.min(source.len());
    let Some(table) = source.get(start..) else {
        return span;
    };
    let found = key_span(table, key);
    if found == (0..0) && !table.trim_start().starts_with(key) {
        return span;
    }
    start + found.start..start + found.end
}

/// Where `key = ...` or `[key]` first appears, for diagnostics on values without a span.
fn key_span(source: &str, key: &str) -> Range<usize> {
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let header = trimmed.trim_start_matches('[').trim_end();
        let is_key = trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if is_key || header.trim_end_matches(']') == key {
            return offset + indent..offset + indent + key.len();
        }
        offset += line.len();
    }
    0..0
}

fn hint_for_toml_error(message: &str) -> Option<String> {
    let hint = if message.starts_with("unknown field") || message.starts_with("unknown variant") {
        "check the spelling; `agent schema` prints every key and value an agent file accepts"
    } else if message.starts_with("missing field") {
        "add the field; `agent schema` shows what each one means"
    } else if message.starts_with("invalid type") {
        "change the value to the expected type (strings need quotes, lists need [ ])"
    } else if message.contains("duplicate key") {
        "remove one of the two definitions"
    } else {
        "fix the TOML syntax at this position (https://toml.io explains the format)"
    };
    Some(hint.to_owned())
}

struct Checker<'a> {
    path: &'a Path,
    source: &'a str,
    problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn at(&mut self, span: Range<usize>, message: String, hint: impl Into<Option<String>>) {
        self.problems.push(Diagnostic::at(
            self.path,
            self.source,
            span,
            message,
            hint.into(),
        ));
    }

    fn at_key(&mut self, key: &str, message: String, hint: impl Into<Option<String>>) {
        let span = key_span(self.source, key);
        self.at(span, message, hint);
    }

    fn check(&mut self, spec: &AgentSpec) {
        if spec.name.trim().is_empty() {
            self.at_key(
                "name",
                "`name` is empty".into(),
                "give the agent a short name, e.g. name = \"support\"".to_owned(),
            );
        }
        if let Some(voice) = &spec.voice {
            self.check_voice(voice);
        }
        match spec.output_modalities.as_slice() {
            [_] => {}
            [] => self.at_key(
                "output_modalities",
                "`output_modalities` is empty".into(),
                "use [\"text\"] or [\"audio\"]".to_owned(),
            ),
            _ => self.at_key(
                "output_modalities",
                "the Realtime API answers in one modality at a time".into(),
                "use [\"audio\"] (spoken, with a transcript) or [\"text\"]".to_owned(),
            ),
        }
        if let Some(speed) = spec.audio.speed
            && !(0.25..=1.5).contains(&speed)
        {
            self.at_key(
                "speed",
                format!("`speed` is {speed}, outside 0.25 to 1.5"),
                "use a value from 0.25 (slow) to 1.5 (fast); 1.0 is normal".to_owned(),
            );
        }
        let timeout = spec.tool_options.timeout_secs;
        if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
            self.at_key(
                "timeout_secs",
                format!("`timeout_secs` is {timeout}; it must be more than 0 and at most 3600"),
                "set how long one tool call may run, e.g. timeout_secs = 10".to_owned(),
            );
        }
        let approval = spec.tool_options.approval_timeout_secs;
        if !(approval.is_finite() && (1.0..=3600.0).contains(&approval)) {
            self.at_key(
                "approval_timeout_secs",
                format!("`approval_timeout_secs` is {approval}; it must be from 1 to 3600"),
                "set how long a call waits for a person's approval, e.g. approval_timeout_secs = 60"
                    .to_owned(),
            );
        }
        let background = spec.tool_options.background_timeout_secs;
        if !(background.is_finite() && (1.0..=86400.0).contains(&background)) {
            self.at_key(
                "background_timeout_secs",
                format!("`background_timeout_secs` is {background}; it must be from 1 to 86400"),
                "set how long a background call may run, e.g. background_timeout_secs = 300"
                    .to_owned(),
            );
        }
        if let Some(after) = spec.tool_options.filler_after_ms
            && !(1..=60_000).contains(&after)
        {
            self.at_key(
                "filler_after_ms",
                format!("`filler_after_ms` is {after}; it must be from 1 to 60000"),
                "say a filler line when tools run longer than this, e.g. filler_after_ms = 1500"
                    .to_owned(),
            );
        }
        if spec
            .tool_options
            .filler_instructions
            .as_deref()
            .is_some_and(|text| text.trim().is_empty())
        {
            self.at_key(
                "filler_instructions",
                "`filler_instructions` is empty".to_owned(),
                "say what the filler line should be, or leave the key out for the default"
                    .to_owned(),
            );
        }
        self.check_limits(spec);
        self.check_timeouts(spec);
        self.check_connection(spec);
        self.check_kind(spec);
        self.check_duplicate_tools(spec);
        if let Some(phone) = &spec.phone {
            for (key, message, hint) in super::phone::problems(phone) {
                self.at_key(key, message, hint);
            }
        }
    }

    fn check_voice(&mut self, voice: &Spanned<String>) {
        let name = voice.get_ref().as_str();
        if VOICES.contains(&name) {
            return;
        }
        let suggestions = closest(name, VOICES.iter().copied());
        let hint = if suggestions.is_empty() {
            format!("use one of: {}", VOICES.join(", "))
        } else {
            format!(
                "did you mean {}? Voices: {}",
                suggestions.join(" or "),
                VOICES.join(", ")
            )
        };
        self.at(voice.span(), format!("unknown voice `{name}`"), hint);
    }

    /// Every wait is a positive, finite number of seconds (at most a day): a zero would fire at
    /// once, and a NaN or a huge value would never fire.
    fn check_timeouts(&mut self, spec: &AgentSpec) {
        let t = &spec.timeouts;
        let c = &spec.connection;
        let waits = [
            ("connect_secs", t.connect_secs, false),
            ("session_ready_secs", t.session_ready_secs, false),
            ("response_idle_secs", t.response_idle_secs, false),
            ("cancel_secs", t.cancel_secs, false),
            ("ping_secs", t.ping_secs, false),
            ("dead_after_secs", t.dead_after_secs, false),
            ("reconnect_window_secs", c.reconnect_window_secs, false),
            ("reconnect_delay_secs", c.reconnect_delay_secs, true),
            ("reconnect_max_delay_secs", c.reconnect_max_delay_secs, true),
        ];
        for (key, secs, zero_ok) in waits {
            // A wait under a millisecond would round to nothing and fire (or tick) at once.
            let positive = if zero_ok { secs >= 0.0 } else { secs >= 0.001 };
            if !(secs.is_finite() && positive && secs <= 86_400.0) {
                let bound = if zero_ok {
                    "0 or more"
                } else {
                    "at least 0.001"
                };
                self.at_key(
                    key,
                    format!("`{key}` is {secs}; it must be {bound} and at most 86400 (a day)"),
                    format!("set a number of seconds, e.g. {key} = 5"),
                );
            }
        }
    }

    fn check_limits(&mut self, spec: &AgentSpec) {
        if let Some(minutes) = spec.limits.max_session_minutes
            && !(minutes.is_finite() && minutes > 0.0 && minutes <= 60.0)
        {
            self.at_key(
                "max_session_minutes",
                format!("`max_session_minutes` is {minutes}; the API allows sessions of up to 60"),
                "use a value above 0 and at most 60; the runtime rolls over to a new session before it"
                    .to_owned(),
            );
        }
        if let Some(cost) = spec.limits.max_cost_usd
            && !(cost.is_finite() && cost >= 0.0)
        {
            self.at_key(
                "max_cost_usd",
                format!("`max_cost_usd` is {cost}"),
                "use a budget in dollars, e.g. max_cost_usd = 2.50".to_owned(),
            );
        }
    }

    fn check_connection(&mut self, spec: &AgentSpec) {
        if let Some(url) = &spec.connection.url {
            match url::Url::parse(url.get_ref()) {
                Ok(_) if crate::session::transport::is_insecure_remote(url.get_ref())
                    && !spec.connection.allow_insecure =>
                {
                    self.at(
                        url.span(),
                        "`url` is ws:// to another machine: the API key and the conversation would travel unencrypted".to_owned(),
                        "use wss://, or set allow_insecure = true under [connection] if this network is trusted".to_owned(),
                    )
                }
                Ok(parsed) if matches!(parsed.scheme(), "ws" | "wss") => {}
                Ok(parsed) => self.at(
                    url.span(),
                    format!("`url` has scheme `{}`", parsed.scheme()),
                    "Realtime connections are WebSockets: use wss://... (or ws:// on loopback)"
                        .to_owned(),
                ),
                Err(err) => self.at(
                    url.span(),
                    format!("`url` is not a valid URL: {err}"),
                    "write a full URL, e.g. wss://api.openai.com/v1/realtime".to_owned(),
                ),
            }
        }
        match (spec.connection.auth, &spec.connection.auth_header) {
            (super::spec::AuthScheme::Header, None) => self.at_key(
                "auth",
                "`auth = \"header\"` needs `auth_header`, the header that carries the key"
                    .to_owned(),
                "add e.g. auth_header = \"api-key\" under [connection]".to_owned(),
            ),
            (super::spec::AuthScheme::Header, Some(name))
                if tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(
                    name.as_bytes(),
                )
                .is_err() =>
            {
                self.at_key(
                    "auth_header",
                    format!("`auth_header` is `{name}`, not a valid HTTP header name"),
                    "use a header name such as api-key".to_owned(),
                )
            }
            (super::spec::AuthScheme::Bearer | super::spec::AuthScheme::None, Some(_)) => self
                .at_key(
                    "auth_header",
                    "`auth_header` is set, but `auth` is not \"header\"".to_owned(),
                    "set auth = \"header\" to send the key in that header, or remove auth_header"
                        .to_owned(),
                ),
            _ => {}
        }
        let env = &spec.connection.api_key_env;
        if env.is_empty() || !env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            self.at_key(
                "api_key_env",
                format!("`api_key_env` is `{env}`, not an environment variable name"),
                "name the variable that holds the key, e.g. api_key_env = \"OPENAI_API_KEY\""
                    .to_owned(),
            );
        }
    }

    fn check_kind(&mut self, spec: &AgentSpec) {
        if spec.kind != AgentKind::Transcription {
            return;
        }
        if !spec.tools.is_empty()
            || !spec.http_tools.is_empty()
            || !spec.mcp_servers.is_empty()
            || !spec.mcp_clients.is_empty()
        {
            self.at_key(
                "tools",
                "a transcription agent does not answer, so it cannot call tools".into(),
                "remove the tools, or set type = \"realtime\"".to_owned(),
            );
        }
        if spec.transcription.is_none() {
            self.at_key(
                "type",
                "a transcription agent needs a [transcription] table".into(),
                "add [transcription] with model = \"gpt-4o-mini-transcribe\"".to_owned(),
            );
        }
        if spec.output_modalities.contains(&Modality::Audio) {
            self.at_key(
                "output_modalities",
                "a transcription agent produces no audio".into(),
                "remove output_modalities".to_owned(),
            );
        }
    }

    fn check_duplicate_tools(&mut self, spec: &AgentSpec) {
        let mut seen: Vec<&str> = Vec::new();
        for tool in &spec.tools {
            let name = tool.get_ref().as_str();
            if seen.contains(&name) {
                self.at(
                    tool.span(),
                    format!("tool `{name}` is listed twice"),
                    "remove the second mention".to_owned(),
                );
            }
            seen.push(name);
        }
        for http in &spec.http_tools {
            if seen.contains(&http.name.as_str()) {
                self.at_key(
                    "http_tools",
                    format!(
                        "HTTP tool `{}` has the same name as another tool of this agent",
                        http.name
                    ),
                    "give each tool a unique name".to_owned(),
                );
            }
            seen.push(&http.name);
        }
    }

    fn instructions(&mut self, spec: &AgentSpec) -> Option<String> {
        match (&spec.instructions, &spec.instructions_file) {
            (Some(_), Some(file)) => {
                self.at(
                    file.span(),
                    "both `instructions` and `instructions_file` are set".into(),
                    "keep one of them".to_owned(),
                );
                None
            }
            (Some(text), None) => Some(text.clone()),
            (None, Some(file)) => {
                let base = self.path.parent().unwrap_or(Path::new("."));
                let full = base.join(file.get_ref());
                match read_instructions(&full) {
                    Ok(text) => Some(text),
                    Err((message, hint)) => {
                        self.at(file.span(), message, hint);
                        None
                    }
                }
            }
            (None, None) => None,
        }
    }
}

/// Reads an `instructions_file` (regular files only, at most
/// [`fs_limits::MAX_INSTRUCTIONS_BYTES`]); on failure, the message and a hint for the diagnostic.
fn read_instructions(path: &Path) -> Result<String, (String, String)> {
    fs_limits::read_text(path, fs_limits::MAX_INSTRUCTIONS_BYTES, "instructions file").map_err(
        |err| {
            let hint = match &err {
                fs_limits::ReadError::Io { .. } => "the path is relative to the agent file",
                fs_limits::ReadError::TooLarge { .. } => {
                    "instructions are sent with every session; keep them short"
                }
                _ => "point `instructions_file` at a text file",
            };
            (err.to_string(), hint.to_owned())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AgentFile, AgentError> {
        AgentFile::parse("agents/test.toml", text.to_owned())
    }

    fn first_error(text: &str) -> Diagnostic {
        match parse(text) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(err) => err.diagnostics()[0].clone(),
        }
    }

    #[test]
    fn minimal_file_gets_defaults() {
        let file = parse("name = \"x\"\n").unwrap();
        assert_eq!(file.spec.model, "gpt-realtime");
        assert_eq!(file.spec.output_modalities, vec![Modality::Text]);
        assert!(file.spec.turn_detection.server_interrupts());
        assert_eq!(file.spec.tool_options.choice.get_ref(), "auto");
        assert!(file.spec.tool_options.strict);
    }

    #[test]
    fn slow_tool_options_parse_and_bad_values_are_refused() {
        let file = parse(
            "name = \"x\"\n[tool_options]\nbackground = [\"report\"]\nbackground_timeout_secs = 600\nfiller_after_ms = 1500\n",
        )
        .unwrap();
        let options = &file.spec.tool_options;
        assert_eq!(options.background[0].get_ref(), "report");
        assert_eq!(options.background_timeout_secs, 600.0);
        assert_eq!(options.filler_after_ms, Some(1500));
        assert_eq!(options.filler_instructions, None);
        let defaults = parse("name = \"x\"\n").unwrap();
        assert_eq!(defaults.spec.tool_options.background_timeout_secs, 300.0);
        assert_eq!(defaults.spec.tool_options.filler_after_ms, None);
        let d = first_error("name = \"x\"\n[tool_options]\nfiller_after_ms = 0\n");
        assert_eq!(d.line, 3);
        assert!(d.message.contains("filler_after_ms"), "{}", d.message);
        let d = first_error("name = \"x\"\n[tool_options]\nbackground_timeout_secs = 0.5\n");
        assert!(
            d.message.contains("background_timeout_secs"),
            "{}",
            d.message
        );
        let d = first_error("name = \"x\"\n[tool_options]\nfiller_instructions = \" \"\n");
        assert!(d.message.contains("filler_instructions"), "{}", d.message);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let d = first_error("name = \"x\"\nmodle = \"gpt-realtime\"\n");
        assert_eq!((d.line, d.column), (2, 1));
        assert!(d.message.contains("unknown field `modle`"), "{}", d.message);
        assert!(d.hint.as_deref().unwrap().contains("agent schema"));
        let shown = d.to_string();
        assert!(shown.starts_with("agents/test.toml:2:1: "), "{shown}");
    }

    #[test]
    fn nested_unknown_key_is_rejected() {
        let d = first_error(
            "name = \"x\"\n[turn_detection]\ntype = \"server_vad\"\nthreshhold = 0.5\n",
        );
        assert_eq!(d.line, 4);
        assert!(d.message.contains("threshhold"));
    }

    #[test]
    fn malformed_toml_points_at_the_error() {
        let d = first_error("name = \"x\nvoice = 3\n");
        assert_eq!(d.line, 1);
    }

    #[test]
    fn unknown_voice_suggests_close_names() {
        let d = first_error("name = \"x\"\nvoice = \"marine\"\n");
        assert_eq!((d.line, d.column), (2, 9));
        assert!(d.message.contains("unknown voice `marine`"));
        assert!(d.hint.unwrap().contains("marin"));
    }

    #[test]
    fn two_modalities_are_rejected() {
        let d = first_error("name = \"x\"\noutput_modalities = [\"text\", \"audio\"]\n");
        assert_eq!(d.line, 2);
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let err = parse(
            "name = \"x\"\nvoice = \"nope\"\ntools = [\"a\", \"a\"]\n[connection]\nurl = \"http://x\"\n",
        )
        .unwrap_err();
        assert_eq!(err.diagnostics().len(), 3, "{err}");
    }

    #[test]
    fn turn_detection_variants_parse() {
        let f = parse("name = \"x\"\n[turn_detection]\ntype = \"none\"\n").unwrap();
        assert!(!f.spec.turn_detection.server_interrupts());
        let f = parse(
            "name = \"x\"\n[turn_detection]\ntype = \"semantic_vad\"\neagerness = \"high\"\ninterrupt_response = false\n",
        )
        .unwrap();
        assert!(!f.spec.turn_detection.server_interrupts());
    }

    #[test]
    fn missing_instructions_file_is_reported() {
        let d = first_error("name = \"x\"\ninstructions_file = \"nope.md\"\n");
        assert_eq!((d.line, d.column), (2, 21));
        assert!(d.message.contains("nope.md"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_device_as_instructions_file_is_refused_at_once() {
        let d = first_error("name = \"x\"\ninstructions_file = \"/dev/zero\"\n");
        assert_eq!((d.line, d.column), (2, 21));
        assert!(
            d.message.contains("/dev/zero") && d.message.contains("a character device"),
            "{}",
            d.message
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_as_instructions_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        match std::process::Command::new("mkfifo")
            .arg(dir.path().join("prompt.md"))
            .status()
        {
            Ok(status) if status.success() => {}
            _ => {
                println!("skipped: mkfifo is not available");
                return;
            }
        }
        let agent = dir.path().join("agent.toml");
        // Opening a FIFO that has no writer blocks: a regression fails here instead of hanging.
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = send.send(AgentFile::parse(
                agent,
                "name = \"x\"\ninstructions_file = \"prompt.md\"\n".to_owned(),
            ));
        });
        let error = receive
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("a FIFO must be refused, not opened")
            .unwrap_err();
        let d = &error.diagnostics()[0];
        assert!(
            d.message
                .contains("a FIFO (named pipe), not a regular file"),
            "{d}"
        );
    }

    #[test]
    fn instructions_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let limit = fs_limits::MAX_INSTRUCTIONS_BYTES as usize;
        std::fs::write(dir.path().join("prompt.md"), "x".repeat(limit + 1)).unwrap();
        let agent = dir.path().join("agent.toml");
        let text = "name = \"x\"\ninstructions_file = \"prompt.md\"\n";
        let error = AgentFile::parse(&agent, text.to_owned()).unwrap_err();
        let d = &error.diagnostics()[0];
        assert!(
            d.message.contains("prompt.md") && d.message.contains("larger than 1 MiB"),
            "{d}"
        );
        std::fs::write(dir.path().join("prompt.md"), "x".repeat(limit)).unwrap();
        let file = AgentFile::parse(&agent, text.to_owned()).unwrap();
        assert_eq!(file.instructions.map(|i| i.len()), Some(limit));
    }

    #[test]
    fn an_agent_file_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let mut text = "name = \"x\"\n".to_owned();
        text.push_str(&"#".repeat(fs_limits::MAX_AGENT_FILE_BYTES as usize));
        std::fs::write(&path, text).unwrap();
        let error = AgentFile::load(&path).unwrap_err();
        assert!(
            matches!(
                error,
                AgentError::Read(fs_limits::ReadError::TooLarge { .. })
            ),
            "{error}"
        );
    }

    #[test]
    fn invalid_utf8_in_an_agent_file_is_located_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, b"name = \"x\"\nvoice = \"ma\xFFrin\"\n").unwrap();
        let error = AgentFile::load(&path).unwrap_err();
        let shown = error.to_string();
        let location = format!("{}:2:12: ", path.display());
        assert!(shown.starts_with(&location), "{shown}");
        assert!(shown.contains("0xFF at offset 22"), "{shown}");
        assert_eq!(shown.matches("not valid UTF-8").count(), 1, "{shown}");
        // Nothing is chained below it, so `{:#}` and error reporters print it once.
        assert!(std::error::Error::source(&error).is_none(), "{error:?}");
    }

    #[test]
    fn transcription_agents_cannot_have_tools() {
        let d = first_error(
            "name = \"x\"\ntype = \"transcription\"\ntools = [\"current_time\"]\n[transcription]\nmodel = \"whisper-1\"\n",
        );
        assert_eq!(d.line, 3);
    }

    #[test]
    fn key_span_finds_keys_and_tables() {
        let src = "name = \"x\"\n[limits]\n  max_cost_usd = -1\n";
        assert_eq!(key_span(src, "max_cost_usd"), 22..34);
        assert_eq!(key_span(src, "limits"), 11..17);
        assert_eq!(key_span(src, "absent"), 0..0);
    }
}
