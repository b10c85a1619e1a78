//! The agent file, as written: every key an `agents/*.toml` file may hold.
//!
//! These types mirror the TOML one to one (unknown keys are rejected) and carry source spans
//! where a later check — an unknown tool, an invalid voice — must point back into the file.
//! Turning a spec into the wire's `session.update` happens in [`super::session_config`].

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::{
    mcp::McpClientSpec,
    tool::{HttpToolSpec, McpToolSpec},
};

/// The default model when an agent file does not name one.
pub const DEFAULT_MODEL: &str = "gpt-realtime";

/// The default GA endpoint; the model is added as a query parameter.
pub const DEFAULT_URL: &str = "wss://api.openai.com/v1/realtime";

/// The default environment variable that holds the API key.
pub const DEFAULT_API_KEY_ENV: &str = "OPENAI_API_KEY";

/// One agent, as declared in its TOML file.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// A short name, shown in logs and passed to tools (`ToolContext::agent`).
    pub name: String,
    /// What the agent is for; shown by `agent check`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `realtime` (speech or text conversation) or `transcription` (live transcripts only).
    #[serde(default, rename = "type")]
    pub kind: AgentKind,
    /// The Realtime model. Defaults to `gpt-realtime`.
    #[serde(default = "default_model")]
    pub model: String,
    /// System instructions, inline. Exclusive with `instructions_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// System instructions read from a file, relative to the agent file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub instructions_file: Option<Spanned<String>>,
    /// The output voice, e.g. `marin`, `cedar`, `alloy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub voice: Option<Spanned<String>>,
    /// What the model answers with: `["text"]` or `["audio"]` (audio comes with a transcript).
    #[serde(default = "default_modalities")]
    pub output_modalities: Vec<Modality>,
    /// Input and output audio formats, speed and noise reduction.
    #[serde(default)]
    pub audio: AudioSpec,
    /// Who decides when the user's turn ends. Defaults to `server_vad`.
    #[serde(default)]
    pub turn_detection: TurnDetectionSpec,
    /// Transcribe the user's audio (needed for transcripts of spoken input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<TranscriptionSpec>,
    /// Names of registered tools (`agent tools` lists them).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub tools: Vec<Spanned<String>>,
    /// How the model may use tools, and how the runtime runs them.
    #[serde(default)]
    pub tool_options: ToolOptions,
    /// Per-tool settings, keyed by tool name (for example `http_get.allow_hosts`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub tool_config: BTreeMap<String, toml::Table>,
    /// Plugin tools that call an HTTP endpoint; no Rust needed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_tools: Vec<HttpToolSpec>,
    /// Hosted MCP servers whose tools the model may call directly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<McpToolSpec>,
    /// MCP servers the framework starts or reaches and calls itself (stdio or streamable
    /// HTTP); their tools join the agent's tools.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mcp_clients: Vec<McpClientSpec>,
    /// The longest answer, in tokens, or `"inf"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<MaxTokens>,
    /// Where tools keep their files (e.g. `create_ticket`'s tickets), relative to the agent
    /// file. `AGENT_DATA_DIR` overrides it; without either, the user's data directory is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<String>,
    /// Where and how to connect.
    #[serde(default)]
    pub connection: ConnectionSpec,
    /// Session length and spending limits.
    #[serde(default)]
    pub limits: LimitsSpec,
    /// How long each wait may take before the runtime acts (see `[timeouts]` in the README).
    #[serde(default)]
    pub timeouts: TimeoutsSpec,
    /// Agents this one may hand the conversation to: the name of an agent file beside this
    /// one (`"billing"` is `billing.toml`) or a path relative to it. The model gets a
    /// `transfer_to_NAME` tool for each; calling it switches the session to that agent's
    /// instructions and tools. The voice, audio formats, model, turn detection and output
    /// modalities stay those of the agent the conversation started with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub handoffs: Vec<Spanned<String>>,
    /// When another agent should hand the conversation to this one; the model reads it in
    /// that agent's `transfer_to_NAME` tool. Defaults to `description`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff_description: Option<String>,
    /// Checks on the user's input and the assistant's output (see `[guardrails]` in the
    /// README): built-in blocklists, patterns and lengths, or Rust guardrails.
    #[serde(default, skip_serializing_if = "GuardrailsSpec::is_empty")]
    pub guardrails: GuardrailsSpec,
    /// What the agent does on a phone call (`agent serve`): greeting, silence, call length,
    /// keypad digits, transfer targets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<super::phone::PhoneSpec>,
}

fn default_model() -> String {
    DEFAULT_MODEL.to_owned()
}

fn default_modalities() -> Vec<Modality> {
    vec![Modality::Text]
}

/// A conversation agent or a transcription-only agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// A speech-to-speech or text conversation with tools.
    #[default]
    Realtime,
    /// Live transcription of the input audio; no responses, no tools.
    Transcription,
}

/// One output modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Text replies.
    Text,
    /// Spoken replies, with their transcript.
    Audio,
}

/// Audio settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AudioSpec {
    /// Format of the audio the app sends. Defaults to `pcm16` (24 kHz mono).
    #[serde(default)]
    pub input_format: AudioFormatName,
    /// Format of the audio the model speaks. Defaults to `pcm16`.
    #[serde(default)]
    pub output_format: AudioFormatName,
    /// Speaking speed, 0.25 to 1.5 (1.0 is normal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.25, max = 1.5))]
    pub speed: Option<f64>,
    /// Server-side noise reduction for the microphone's distance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_reduction: Option<NoiseReduction>,
}

/// The audio formats the Realtime API accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AudioFormatName {
    /// 16-bit little-endian PCM, 24 kHz, mono.
    #[default]
    Pcm16,
    /// G.711 μ-law, 8 kHz (telephony in North America and Japan).
    #[serde(alias = "pcmu")]
    G711Ulaw,
    /// G.711 A-law, 8 kHz (telephony elsewhere).
    #[serde(alias = "pcma")]
    G711Alaw,
}

/// Noise reduction tuned for the microphone's distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoiseReduction {
    /// Headsets and close-talking microphones.
    NearField,
    /// Laptop and conference-room microphones.
    FarField,
}

/// Turn detection, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TurnDetectionSpec {
    /// Voice activity detection on the server, by loudness and silence.
    ServerVad {
        /// Activation threshold, 0.0 to 1.0; higher needs louder speech.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 0.0, max = 1.0))]
        threshold: Option<f64>,
        /// Audio kept before detected speech, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix_padding_ms: Option<u32>,
        /// Silence that ends the turn, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        silence_duration_ms: Option<u32>,
        /// Whether the server answers by itself at the end of a turn (default true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create_response: Option<bool>,
        /// Whether the server cancels its answer when the user talks over it (default true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interrupt_response: Option<bool>,
        /// Prompt the user after this much silence, 5000 to 30000 ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(range(min = 5000, max = 30000))]
        idle_timeout_ms: Option<u32>,
    },
    /// A model decides when the user has finished their thought.
    SemanticVad {
        /// How eagerly to end the turn: low, medium, high or auto.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eagerness: Option<Eagerness>,
        /// Whether the server answers by itself at the end of a turn (default true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        create_response: Option<bool>,
        /// Whether the server cancels its answer when the user talks over it (default true).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interrupt_response: Option<bool>,
    },
    /// Push-to-talk: the app commits the audio buffer and asks for a response.
    None,
}

impl Default for TurnDetectionSpec {
    fn default() -> Self {
        TurnDetectionSpec::ServerVad {
            threshold: None,
            prefix_padding_ms: None,
            silence_duration_ms: None,
            create_response: None,
            interrupt_response: None,
            idle_timeout_ms: None,
        }
    }
}

impl TurnDetectionSpec {
    /// Whether the server cancels a response by itself when the user starts talking.
    pub fn server_interrupts(&self) -> bool {
        match self {
            TurnDetectionSpec::ServerVad {
                interrupt_response, ..
            }
            | TurnDetectionSpec::SemanticVad {
                interrupt_response, ..
            } => interrupt_response.unwrap_or(true),
            TurnDetectionSpec::None => false,
        }
    }
}

/// How eagerly semantic VAD ends the user's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Eagerness {
    /// Waits longer; lets the user take their time.
    Low,
    /// A balance.
    Medium,
    /// Answers quickly.
    High,
    /// The server's default (medium).
    Auto,
}

/// Transcription of the user's audio.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TranscriptionSpec {
    /// The transcription model, e.g. `gpt-4o-mini-transcribe` or `whisper-1`.
    pub model: String,
    /// The input language as ISO-639-1 (`en`), which improves accuracy and latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// A hint for the transcription model: vocabulary, names, style.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// How the model may use tools, and how the runtime runs them.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolOptions {
    /// `auto`, `none`, `required`, or the name of one tool the model must call.
    #[serde(default = "default_choice")]
    #[schemars(with = "String")]
    pub choice: Spanned<String>,
    /// Time a single call may take before the model gets a timeout error, in seconds.
    #[serde(default = "default_tool_timeout_secs")]
    #[schemars(range(min = 0.001))]
    pub timeout_secs: f64,
    /// Strict schemas: every property required, optional ones nullable, no unsupported keywords.
    #[serde(default = "default_true")]
    pub strict: bool,
    /// Tools whose every call waits for a person's approval (besides those marked
    /// `#[tool(needs_approval)]`): `agent run` asks at the terminal, `agent serve` over its
    /// approvals endpoint. A denial or no answer reaches the model as the call's output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub needs_approval: Vec<Spanned<String>>,
    /// How long a call waits for approval, in seconds; no answer counts as a denial.
    #[serde(default = "default_approval_timeout_secs")]
    #[schemars(range(min = 1, max = 3600))]
    pub approval_timeout_secs: f64,
    /// Tools whose calls run in the background (besides those marked `#[tool(background)]`):
    /// the model reads "started" at once and goes on talking; the result joins the
    /// conversation, as a user message labelled with the call, when it is ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub background: Vec<Spanned<String>>,
    /// How long a background call may run, in seconds.
    #[serde(default = "default_background_timeout_secs")]
    #[schemars(range(min = 1, max = 86400))]
    pub background_timeout_secs: f64,
    /// When a response's calls are still running after this many milliseconds, the agent
    /// says one short filler line (out of band, kept out of the conversation). Unset: silence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 60000))]
    pub filler_after_ms: Option<u64>,
    /// What the filler response is told to say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filler_instructions: Option<String>,
}

impl Default for ToolOptions {
    fn default() -> Self {
        ToolOptions {
            choice: default_choice(),
            timeout_secs: default_tool_timeout_secs(),
            strict: true,
            needs_approval: Vec::new(),
            approval_timeout_secs: default_approval_timeout_secs(),
            background: Vec::new(),
            background_timeout_secs: default_background_timeout_secs(),
            filler_after_ms: None,
            filler_instructions: None,
        }
    }
}

fn default_choice() -> Spanned<String> {
    Spanned::new(0..0, "auto".to_owned())
}

fn default_tool_timeout_secs() -> f64 {
    30.0
}

fn default_approval_timeout_secs() -> f64 {
    crate::session::approval::DEFAULT_TIMEOUT.as_secs_f64()
}

fn default_background_timeout_secs() -> f64 {
    crate::session::slow::DEFAULT_BACKGROUND_TIMEOUT.as_secs_f64()
}

fn default_true() -> bool {
    true
}

/// A token limit that may be unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum MaxTokens {
    /// At most this many tokens, 1 to 4096.
    Limit(u32),
    /// The literal string `"inf"`: the model's maximum.
    Inf(InfLiteral),
}

/// The string `"inf"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub enum InfLiteral {
    /// `"inf"`.
    #[serde(rename = "inf")]
    Inf,
}

/// Where to connect, and how.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionSpec {
    /// The WebSocket URL. Defaults to OpenAI's; set it for Azure or a compatible server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub url: Option<Spanned<String>>,
    /// `ga` (OpenAI today) or `beta` (`OpenAI-Beta: realtime=v1`, Azure and older servers).
    #[serde(default)]
    pub dialect: DialectName,
    /// The environment variable that holds the API key.
    #[serde(default = "default_api_key_env")]
    pub api_key_env: String,
    /// How the key is sent: `bearer` (`Authorization: Bearer KEY`, the default), `header` (the
    /// key as the value of `auth_header`, e.g. Azure's `api-key`), or `none` (no key is read or
    /// sent; `[connection.headers]` may carry credentials instead).
    #[serde(default)]
    pub auth: AuthScheme,
    /// The header that carries the key when `auth = "header"`, e.g. `api-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_header: Option<String>,
    /// Allow `ws://` (unencrypted) to a host other than this machine. Off by default: the key
    /// and the whole conversation would cross the network in clear text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure: bool,
    /// Extra HTTP headers for the WebSocket upgrade; `${VAR}` reads an environment variable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// New connections (reconnects after a drop, and rollovers) allowed within
    /// `reconnect_window_secs` before the session gives up; only a completed response refills
    /// the budget (0 disables reconnecting).
    #[serde(default = "default_reconnect_attempts")]
    pub max_reconnect_attempts: u32,
    /// The sliding window `max_reconnect_attempts` is counted in, in seconds.
    #[serde(default = "default_reconnect_window_secs")]
    #[schemars(range(min = 0.001))]
    pub reconnect_window_secs: f64,
    /// The first delay before reconnecting, in seconds; it doubles with each attempt in the
    /// window (with ±25% jitter).
    #[serde(default = "default_reconnect_delay_secs")]
    #[schemars(range(min = 0.0))]
    pub reconnect_delay_secs: f64,
    /// The longest delay between attempts, in seconds.
    #[serde(default = "default_reconnect_max_delay_secs")]
    #[schemars(range(min = 0.0))]
    pub reconnect_max_delay_secs: f64,
}

fn default_reconnect_attempts() -> u32 {
    6
}

fn default_reconnect_window_secs() -> f64 {
    60.0
}

fn default_reconnect_delay_secs() -> f64 {
    0.25
}

fn default_reconnect_max_delay_secs() -> f64 {
    8.0
}

impl Default for ConnectionSpec {
    fn default() -> Self {
        ConnectionSpec {
            url: None,
            dialect: DialectName::Ga,
            api_key_env: default_api_key_env(),
            auth: AuthScheme::default(),
            auth_header: None,
            allow_insecure: false,
            headers: BTreeMap::new(),
            max_reconnect_attempts: default_reconnect_attempts(),
            reconnect_window_secs: default_reconnect_window_secs(),
            reconnect_delay_secs: default_reconnect_delay_secs(),
            reconnect_max_delay_secs: default_reconnect_max_delay_secs(),
        }
    }
}

fn default_api_key_env() -> String {
    DEFAULT_API_KEY_ENV.to_owned()
}

/// How the API key reaches the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthScheme {
    /// `Authorization: Bearer KEY` (OpenAI).
    #[default]
    Bearer,
    /// The key as the value of the header named by `auth_header` (Azure's `api-key`).
    Header,
    /// No key: the server needs none, or `[connection.headers]` carry the credentials.
    None,
}

/// The protocol dialect, as named in agent files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DialectName {
    /// The GA protocol (`gpt-realtime`, no beta header).
    #[default]
    Ga,
    /// The beta protocol (`OpenAI-Beta: realtime=v1`).
    Beta,
}

/// Session length and spending limits.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Roll over to a new session after this many minutes (the API ends sessions at 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 60.0))]
    pub max_session_minutes: Option<f64>,
    /// When replaying the conversation into a new session (rollover, reconnect, resume), keep
    /// this many recent turns verbatim and fold older ones into one summary message, to bound
    /// cost. Unset replays everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_keep_turns: Option<u32>,
    /// End the session once this much has been spent, in US dollars (warns at 80%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub max_cost_usd: Option<f64>,
    /// A price table (TOML, like agent-core/prices.toml) merged over the published prices,
    /// relative to the agent file. `agent run --prices FILE` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_table: Option<String>,
    /// Rounds of tool calls the model may make in one user turn; past it, the calls get an
    /// error output and the turn ends with a message (0 = no limit). Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tool_rounds: Option<u32>,
}

/// The default `max_tool_rounds`.
pub const DEFAULT_MAX_TOOL_ROUNDS: u32 = 10;

/// How long each wait may take, in seconds. Every default is what a live session needs; tests
/// set them low.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeoutsSpec {
    /// Opening the connection (TCP, TLS and the WebSocket upgrade).
    #[serde(default = "default_connect_secs")]
    #[schemars(range(min = 0.001))]
    pub connect_secs: f64,
    /// The server confirming the session (`session.updated`).
    #[serde(default = "default_session_ready_secs")]
    #[schemars(range(min = 0.001))]
    pub session_ready_secs: f64,
    /// A response (or a `response.create`) that gets no event for this long is cancelled and
    /// asked for once more; if that fails too, the turn fails with a message.
    #[serde(default = "default_response_idle_secs")]
    #[schemars(range(min = 0.001))]
    pub response_idle_secs: f64,
    /// How long a cancelled response may take to confirm (`response.done`) before the
    /// connection is replaced.
    #[serde(default = "default_cancel_secs")]
    #[schemars(range(min = 0.001))]
    pub cancel_secs: f64,
    /// How often a ping goes out, so a dead connection is noticed.
    #[serde(default = "default_ping_secs")]
    #[schemars(range(min = 0.001))]
    pub ping_secs: f64,
    /// A connection with no frame at all (not even a pong) for this long is replaced; a write
    /// that takes this long means the server stopped reading.
    #[serde(default = "default_dead_after_secs")]
    #[schemars(range(min = 0.001))]
    pub dead_after_secs: f64,
}

impl Default for TimeoutsSpec {
    fn default() -> Self {
        TimeoutsSpec {
            connect_secs: default_connect_secs(),
            session_ready_secs: default_session_ready_secs(),
            response_idle_secs: default_response_idle_secs(),
            cancel_secs: default_cancel_secs(),
            ping_secs: default_ping_secs(),
            dead_after_secs: default_dead_after_secs(),
        }
    }
}

fn default_connect_secs() -> f64 {
    15.0
}

fn default_session_ready_secs() -> f64 {
    15.0
}

fn default_response_idle_secs() -> f64 {
    30.0
}

fn default_cancel_secs() -> f64 {
    5.0
}

fn default_ping_secs() -> f64 {
    20.0
}

fn default_dead_after_secs() -> f64 {
    60.0
}

/// `[guardrails]`: what the user may say and what the assistant may answer.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailsSpec {
    /// How spoken input is checked. `blocking` (the default): the server's turn detection does
    /// not answer by itself (`create_response = false`), and the response is asked for once
    /// the transcript passed, which adds the transcription's latency to every spoken turn.
    /// `parallel`: the answer starts at once, and is cancelled and cut off when the transcript
    /// trips a guardrail. Typed text is always checked before it is sent.
    #[serde(default)]
    pub input_mode: InputGuardMode,
    /// How often a streaming answer is checked, at most, in milliseconds (its end is always
    /// checked).
    #[serde(default = "default_output_debounce_ms")]
    #[schemars(range(min = 0, max = 5000))]
    pub output_debounce_ms: u32,
    /// How many times in one user turn the model may be asked to answer again after an
    /// output guardrail stopped it; past that the turn fails.
    #[serde(default = "default_guardrail_retries")]
    pub max_retries: u32,
    /// Checks on the user's text and speech transcripts (speech needs `[transcription]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub input: Vec<GuardrailSpec>,
    /// Checks on the assistant's text and audio transcripts, as they stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<GuardrailSpec>,
}

impl GuardrailsSpec {
    /// No guardrails at all.
    pub fn is_empty(&self) -> bool {
        self.input.is_empty() && self.output.is_empty()
    }
}

fn default_output_debounce_ms() -> u32 {
    200
}

fn default_guardrail_retries() -> u32 {
    2
}

/// How spoken input is checked (see [`GuardrailsSpec::input_mode`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputGuardMode {
    /// The answer waits for the transcript to pass.
    #[default]
    Blocking,
    /// The answer starts at once and is cut off if the transcript trips.
    Parallel,
}

/// One guardrail, tagged by `type`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GuardrailSpec {
    /// Trips on any of these words or phrases, ignoring case, matched at word boundaries.
    Blocklist {
        /// A label for logs and events; defaults to `blocklist`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The words or phrases.
        words: Vec<String>,
        /// What the model is told when it trips (the rule, in plain words).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Trips when this regular expression (Rust `regex` syntax) matches.
    Regex {
        /// A label for logs and events; defaults to `regex`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The pattern. (Not spanned: serde buffers tagged tables, which loses spans.)
        pattern: String,
        /// What the model is told when it trips.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Trips when the text is longer than this many characters.
    MaxLength {
        /// A label for logs and events; defaults to `max_length`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The most characters allowed.
        max_chars: usize,
        /// What the model is told when it trips.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A guardrail written in Rust and registered with `register_guardrail!`.
    Rust {
        /// Its registered name.
        name: String,
        /// What the model is told when it trips (else the guardrail's own reason).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}
