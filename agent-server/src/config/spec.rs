//! `serve.toml` as written: everything that belongs to the server rather than to one agent.
//!
//! Unknown keys are rejected so a misspelled limit never silently falls back to a default;
//! values that later checks must point back at carry their source span.

use serde::Deserialize;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSpec {
    /// Where the server listens, e.g. `0.0.0.0:8080` (TLS ends at a reverse proxy in front).
    pub listen: Spanned<String>,
    /// The URL callers' platforms use to reach this server, e.g. `https://voice.example.com`.
    /// Twilio signatures are computed over it (never over the request's `Host` header), and
    /// the media-stream URL handed to Twilio is derived from it.
    pub public_base_url: Spanned<String>,
    /// This node's name, the `node` label on every metric, so the series of several nodes
    /// behind one load balancer stay apart. Defaults to `AGENT_NODE_ID`, else the host's name.
    #[serde(default)]
    pub node: Option<Spanned<String>>,
    /// The most calls that run at once; further calls are refused as busy.
    #[serde(default = "default_max_calls")]
    pub max_calls: Spanned<usize>,
    /// Where each secret comes from.
    #[serde(default)]
    pub secrets: SecretsSpec,
    /// Twilio's side.
    #[serde(default)]
    pub twilio: TwilioSpec,
    /// OpenAI's side: the Realtime WebSocket and the REST base.
    #[serde(default)]
    pub openai: OpenAiSpec,
    /// Limits and deadlines of the HTTP endpoints and media streams.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// Which agent answers which call.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSpec>,
    /// The operator's endpoints (`/metrics`), on an address of their own.
    #[serde(default)]
    pub admin: Option<AdminSpec>,
    /// Where calls are stored, and for how long.
    #[serde(default)]
    pub history: HistorySpec,
    /// The browser endpoints: each spends the owner's money, so each is off until enabled.
    #[serde(default)]
    pub browser: BrowserSpec,
}

/// Browsers (`/agents/{name}/...`): WebRTC calls relayed by the server, and client secrets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrowserSpec {
    /// `POST /agents/{name}/calls`: the server relays the browser's SDP offer with its own key
    /// and runs the agent's tools over the sideband.
    pub calls: bool,
    /// `POST /agents/{name}/client-secret`: mints a short-lived secret the browser connects
    /// with directly; `POST /agents/{name}/calls/{call_id}/attach` then runs server tools.
    pub client_secrets: bool,
    /// With `client_secrets`: whether `POST /agents/{name}/calls/{call_id}/attach` is served,
    /// so the server runs the agent's tools on the page's call. Off only for pages that
    /// implement every tool themselves; then an agent with server-side tools is refused.
    pub attach: bool,
    /// Origins (`https://app.example.com`) whose pages may call the endpoints; a request from
    /// any other origin is refused. Empty: no cross-origin page at all (CORS off).
    pub allowed_origins: Vec<Spanned<String>>,
    /// When set, the endpoints (and the console's agent list) require
    /// `Authorization: Bearer <token>` with the token this environment variable holds.
    pub operator_token_env: Option<Spanned<String>>,
    /// How long a minted client secret lives (10 to 7200 seconds).
    pub client_secret_ttl_secs: Spanned<u32>,
    /// Requests one client IP may make per minute, sustained, across the endpoints.
    pub requests_per_minute: u32,
    /// Requests one client IP may make in a burst, above the sustained rate.
    pub burst: u32,
    /// Requests all clients together may make per minute.
    pub global_requests_per_minute: u32,
}

impl Default for BrowserSpec {
    fn default() -> Self {
        BrowserSpec {
            calls: false,
            client_secrets: false,
            attach: true,
            allowed_origins: Vec::new(),
            operator_token_env: None,
            client_secret_ttl_secs: Spanned::new(0..0, 60),
            requests_per_minute: 10,
            burst: 5,
            global_requests_per_minute: 300,
        }
    }
}

/// The admin listener: `/metrics` (and `/healthz`, `/readyz`) on an address that is not
/// exposed to callers' platforms, e.g. `127.0.0.1:9090`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSpec {
    /// Where the admin endpoints listen.
    pub listen: Spanned<String>,
}

/// The call history: every call is a conversation with its caller, callee and agent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistorySpec {
    /// Store calls at all.
    pub store: bool,
    /// The database, relative to `serve.toml`; unset, the one `agent history` reads by default.
    pub path: Option<Spanned<String>>,
    /// Delete calls (caller numbers are personal data) this many days after they started;
    /// unset, calls are kept until `agent history delete`.
    pub retention_days: Option<Spanned<f64>>,
    /// With a PostgreSQL store shared by several nodes: how long, in seconds, a node's claim
    /// on a call lasts unless renewed (every third of it). Once it runs out (the node died),
    /// another node takes the call over. Default 10.
    pub lease_secs: Option<Spanned<f64>>,
}

impl Default for HistorySpec {
    fn default() -> Self {
        HistorySpec {
            store: true,
            path: None,
            retention_days: None,
            lease_secs: None,
        }
    }
}

fn default_max_calls() -> Spanned<usize> {
    Spanned::new(0..0, 100)
}

/// The names of the environment variables that hold the secrets; the values themselves never
/// appear in a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsSpec {
    /// Twilio's auth token, which signs `/twilio/voice` requests.
    pub twilio_auth_token_env: String,
    /// The OpenAI API key the Realtime sessions use.
    pub openai_api_key_env: String,
    /// The secret that signs OpenAI's webhooks (SIP calls).
    pub openai_webhook_secret_env: String,
}

impl Default for SecretsSpec {
    fn default() -> Self {
        SecretsSpec {
            twilio_auth_token_env: "TWILIO_AUTH_TOKEN".into(),
            openai_api_key_env: "OPENAI_API_KEY".into(),
            openai_webhook_secret_env: "OPENAI_WEBHOOK_SECRET".into(),
        }
    }
}

/// Twilio's REST API, for call control (hang-up, transfer, outbound calls).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwilioSpec {
    /// The REST base, e.g. a fake Twilio on loopback in tests.
    pub api_base: Spanned<String>,
    /// The URL every node shares (the load balancer's), e.g. `https://voice.example.com`.
    /// When set and the history store is shared, calls are answered with
    /// `<Connect action=".../twilio/resume">`, so a call whose node dies comes back through
    /// it to another node, which resumes the conversation from the store.
    pub resume_base_url: Option<Spanned<String>>,
}

impl Default for TwilioSpec {
    fn default() -> Self {
        TwilioSpec {
            api_base: Spanned::new(0..0, "https://api.twilio.com".into()),
            resume_base_url: None,
        }
    }
}

/// OpenAI's endpoints; `--url` and `--api-base` override them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAiSpec {
    /// The Realtime WebSocket for Twilio calls; unset, each agent file's `[connection] url`.
    pub realtime_url: Option<Spanned<String>>,
    /// The REST base for SIP call control and client secrets.
    pub api_base: Option<Spanned<String>>,
}

/// Limits and deadlines; every wait has one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSpec {
    /// The largest HTTP request body, in bytes.
    pub max_body_bytes: usize,
    /// How long an HTTP request may take, headers and body, before it gets 408.
    pub request_timeout_secs: f64,
    /// How many HTTP requests are served at once; more wait (and time out).
    pub max_concurrent_requests: usize,
    /// The largest media-stream frame; a larger one ends that call.
    pub max_frame_bytes: usize,
    /// How long a stream token stays valid after `/twilio/voice` handed it out.
    pub stream_token_secs: f64,
    /// How long a new media stream may take to send its `start` message.
    pub stream_start_secs: f64,
    /// How long a media stream may stay silent (no frame at all) before the call ends.
    pub stream_idle_secs: f64,
    /// How long one frame to Twilio may take to write before the call ends.
    pub stream_write_secs: f64,
    /// Webhook requests one client IP may make per minute (sustained); more get 429.
    pub webhook_requests_per_minute: u32,
    /// Webhook requests one client IP may make in a burst, above the sustained rate.
    pub webhook_burst: u32,
}

impl Default for LimitsSpec {
    fn default() -> Self {
        LimitsSpec {
            max_body_bytes: 64 * 1024,
            request_timeout_secs: 10.0,
            max_concurrent_requests: 256,
            max_frame_bytes: 64 * 1024,
            stream_token_secs: 30.0,
            stream_start_secs: 5.0,
            stream_idle_secs: 20.0,
            stream_write_secs: 5.0,
            webhook_requests_per_minute: 600,
            webhook_burst: 60,
        }
    }
}

/// One route: which calls an agent answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The agent file, relative to `serve.toml`.
    pub agent: Spanned<String>,
    /// Called numbers (Twilio's `To`, E.164) this agent answers.
    #[serde(default)]
    pub numbers: Vec<Spanned<String>>,
    /// SIP `To` users this agent answers (OpenAI SIP calls).
    #[serde(default)]
    pub sip_users: Vec<Spanned<String>>,
    /// A path segment: `POST /twilio/voice/{path}` reaches this agent whatever the number.
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    /// The most this agent may spend per UTC day, in US dollars; once reached, its calls are
    /// refused as busy until the next day.
    #[serde(default)]
    pub max_cost_usd_per_day: Option<Spanned<f64>>,
    /// The agent speaks first when the call connects (its instructions say how to greet).
    #[serde(default = "default_true")]
    pub greet: bool,
    /// Browsers may call this agent at `/agents/{name}` (its file's `name`), through the
    /// endpoints `[browser]` enables.
    #[serde(default)]
    pub browser: bool,
}

fn default_true() -> bool {
    true
}
