//! `serve.toml`: parsed, checked, and turned into the values the server runs with.
//!
//! Like agent files, every problem names `file:line:col`, says what to do, and all problems
//! are reported at once ([`ConfigError::Invalid`]).

mod browser;
mod check;
mod operations;
mod spec;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use agent_core::agent::Diagnostic;
pub use browser::{BrowserConfig, origin_of};
pub use operations::HistoryConfig;
pub use spec::{
    AdminSpec, BrowserSpec, HistorySpec, LimitsSpec, OpenAiSpec, RouteSpec, SecretsSpec, ServeSpec,
    TwilioSpec,
};

/// The largest `serve.toml` read; the limit only keeps a wrong path from filling memory.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Why `serve.toml` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, not a regular file, too large, not UTF-8).
    #[error(transparent)]
    Read(#[from] agent_core::fs_limits::ReadError),
    /// The file does not parse, or says something the server cannot do; every problem found.
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(problems: &[Diagnostic]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The file it came from (agent paths are relative to it).
    pub path: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The public base URL, without a trailing `/`.
    pub public_base_url: String,
    /// The most calls at once.
    pub max_calls: usize,
    /// Where the secrets come from.
    pub secrets: SecretsSpec,
    /// Twilio's REST base, without a trailing `/`.
    pub twilio_api_base: String,
    /// `[twilio] resume_base_url`, without a trailing `/`: where Twilio brings back a call
    /// whose node died (see [`crate::twilio::resume`]).
    pub twilio_resume_base_url: Option<String>,
    /// The Realtime WebSocket URL, when the server overrides the agent files'.
    pub realtime_url: Option<String>,
    /// OpenAI's REST base, when set.
    pub api_base: Option<String>,
    /// Limits and deadlines.
    pub limits: Limits,
    /// Which agent answers which call.
    pub routes: Vec<Route>,
    /// Where `/metrics` is served; `None`: not at all.
    pub admin_listen: Option<SocketAddr>,
    /// This node's name: the `node` label on every metric.
    pub node: String,
    /// The call history.
    pub history: HistoryConfig,
    /// The browser endpoints.
    pub browser: BrowserConfig,
}

/// Limits and deadlines, as durations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The largest HTTP request body, in bytes.
    pub max_body_bytes: usize,
    /// How long an HTTP request may take.
    pub request_timeout: Duration,
    /// HTTP requests served at once.
    pub max_concurrent_requests: usize,
    /// The largest media-stream frame, in bytes.
    pub max_frame_bytes: usize,
    /// How long a stream token stays valid.
    pub stream_token_ttl: Duration,
    /// How long a media stream may take to send `start`.
    pub stream_start: Duration,
    /// How long a media stream may send nothing at all.
    pub stream_idle: Duration,
    /// How long one write to a media stream may take.
    pub stream_write: Duration,
    /// Webhook requests per client IP and minute.
    pub webhook_requests_per_minute: u32,
    /// Webhook requests per client IP in a burst.
    pub webhook_burst: u32,
}

/// One route, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The agent file, resolved against `serve.toml`'s folder.
    pub agent_path: PathBuf,
    /// Called numbers it answers.
    pub numbers: Vec<String>,
    /// SIP `To` users it answers.
    pub sip_users: Vec<String>,
    /// The path segment of `POST /twilio/voice/{path}` that reaches it.
    pub path: Option<String>,
    /// The daily spend cap, US dollars.
    pub max_cost_usd_per_day: Option<f64>,
    /// Whether the agent speaks first.
    pub greet: bool,
    /// Whether browsers may call it.
    pub browser: bool,
}

impl ServeConfig {
    /// Reads and checks `serve.toml`.
    pub fn load(path: impl AsRef<Path>) -> Result<ServeConfig, ConfigError> {
        let path = path.as_ref();
        let source = agent_core::fs_limits::read_text(path, MAX_CONFIG_BYTES, "serve.toml")?;
        Self::parse(path, &source)
    }

    /// Checks `source` as if read from `path`.
    pub fn parse(path: impl Into<PathBuf>, source: &str) -> Result<ServeConfig, ConfigError> {
        let path = path.into();
        let spec: ServeSpec = toml::from_str(source).map_err(|err| {
            let span = err.span().unwrap_or(0..0);
            ConfigError::Invalid(vec![Diagnostic::at(
                &path,
                source,
                span,
                err.message().to_owned(),
                Some("see the `serve.toml` section of the README for every key".into()),
            )])
        })?;
        check::check(path, source, spec)
    }

    /// The route whose numbers include `called`, else the one whose path is `path`.
    pub fn route_for_number(&self, called: &str) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| r.numbers.iter().any(|n| n == called))
    }

    /// The route reached by `POST /twilio/voice/{path}`.
    pub fn route_for_path(&self, path: &str) -> Option<usize> {
        self.routes
            .iter()
            .position(|r| r.path.as_deref() == Some(path))
    }

    /// The URL Twilio requests when a call's stream ends (`<Connect action>`), with the
    /// attempt it is; `None` without `[twilio] resume_base_url`.
    pub fn twilio_resume_url(&self, attempt: u32) -> Option<String> {
        let base = self.twilio_resume_base_url.as_ref()?;
        Some(format!(
            "{base}{}?attempt={attempt}",
            crate::twilio::resume::PATH
        ))
    }

    /// The WebSocket URL Twilio opens for media streams: the public base with `ws(s)://`.
    pub fn media_stream_url(&self) -> String {
        let base = &self.public_base_url;
        let ws = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.clone()
        };
        format!("{ws}/twilio/media-stream")
    }
}
