//! The session object: what `session.update` sends and `session.created`/`session.updated`
//! report back.
//!
//! [`Session`] follows the GA shape (`type`, nested `audio.input`/`audio.output`). It decodes
//! from the GA shape and from the beta flat shape (`voice`, `input_audio_format`,
//! `turn_detection`, ... at the top level) into the same struct, so the runtime never cares
//! which dialect the server speaks. Encoding to either shape happens in the client events.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::string_enum::string_enum;
use super::tools::{ToolChoice, ToolDefinition};

/// The sample rate of `audio/pcm` (PCM16) audio in the Realtime API.
pub const PCM16_SAMPLE_RATE: u32 = 24_000;

/// Whether a session talks (`realtime`) or only transcribes (`transcription`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// A speech-to-speech (or text) conversation with the model.
    #[default]
    Realtime,
    /// Input transcription only; the model never answers.
    Transcription,
}

string_enum! {
    /// An output modality of the model.
    pub enum Modality {
        /// Text output.
        Text = "text",
        /// Audio output (with a transcript).
        Audio = "audio",
    }
}

string_enum! {
    /// How eagerly semantic VAD ends the user's turn.
    pub enum Eagerness {
        /// Wait longer for the user to continue.
        Low = "low",
        /// The middle ground.
        Medium = "medium",
        /// Answer quickly.
        High = "high",
        /// Let the server choose (equivalent to medium).
        Auto = "auto",
    }
}

string_enum! {
    /// The kind of microphone noise reduction is tuned for.
    pub enum NoiseReductionType {
        /// Close-talking microphones such as headsets.
        NearField = "near_field",
        /// Laptop or conference-room microphones.
        FarField = "far_field",
    }
}

string_enum! {
    /// How much the model reasons before answering (GA reasoning models only).
    pub enum ReasoningEffort {
        /// Least reasoning.
        Minimal = "minimal",
        /// Little reasoning (the default).
        Low = "low",
        /// More reasoning.
        Medium = "medium",
        /// Much reasoning.
        High = "high",
        /// The most reasoning.
        Xhigh = "xhigh",
    }
}

/// An audio encoding. Both dialects know the same three; they only spell them differently
/// (GA `{"type": "audio/pcm", "rate": 24000}`, beta `"pcm16"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// 16-bit little-endian mono PCM at `rate` Hz (the API only accepts 24 kHz).
    Pcm {
        /// Sample rate in Hz.
        rate: u32,
    },
    /// G.711 µ-law at 8 kHz, the usual format of phone lines in North America and Japan.
    Pcmu,
    /// G.711 A-law at 8 kHz, the usual format of phone lines elsewhere.
    Pcma,
}

impl AudioFormat {
    /// PCM16 at 24 kHz, the API's default format.
    pub const fn pcm16() -> Self {
        AudioFormat::Pcm {
            rate: PCM16_SAMPLE_RATE,
        }
    }

    /// The beta dialect's name for this format.
    pub fn beta_name(self) -> &'static str {
        match self {
            AudioFormat::Pcm { .. } => "pcm16",
            AudioFormat::Pcmu => "g711_ulaw",
            AudioFormat::Pcma => "g711_alaw",
        }
    }

    /// The GA dialect's MIME-like type name.
    pub fn ga_name(self) -> &'static str {
        match self {
            AudioFormat::Pcm { .. } => "audio/pcm",
            AudioFormat::Pcmu => "audio/pcmu",
            AudioFormat::Pcma => "audio/pcma",
        }
    }

    /// Samples per second of this format (G.711 is always 8 kHz).
    pub fn sample_rate(self) -> u32 {
        match self {
            AudioFormat::Pcm { rate } => rate,
            AudioFormat::Pcmu | AudioFormat::Pcma => 8_000,
        }
    }
}

impl Default for AudioFormat {
    fn default() -> Self {
        AudioFormat::pcm16()
    }
}

impl Serialize for AudioFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let len = if matches!(self, AudioFormat::Pcm { .. }) {
            2
        } else {
            1
        };
        let mut map = serializer.serialize_map(Some(len))?;
        map.serialize_entry("type", self.ga_name())?;
        if let AudioFormat::Pcm { rate } = self {
            map.serialize_entry("rate", rate)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AudioFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Beta(String),
            Ga {
                #[serde(rename = "type")]
                kind: String,
                #[serde(default)]
                rate: Option<u32>,
            },
        }
        let (name, rate) = match Wire::deserialize(deserializer)? {
            Wire::Beta(name) => (name, None),
            Wire::Ga { kind, rate } => (kind, rate),
        };
        match name.as_str() {
            "audio/pcm" | "pcm16" => Ok(AudioFormat::Pcm {
                rate: rate.unwrap_or(PCM16_SAMPLE_RATE),
            }),
            "audio/pcmu" | "g711_ulaw" => Ok(AudioFormat::Pcmu),
            "audio/pcma" | "g711_alaw" => Ok(AudioFormat::Pcma),
            other => Err(serde::de::Error::custom(format_args!(
                "unknown audio format `{other}` (expected audio/pcm, audio/pcmu, audio/pcma, pcm16, g711_ulaw or g711_alaw)"
            ))),
        }
    }
}

/// A voice: one of the built-in names (`alloy`, `marin`, ...) or a custom voice by ID (GA).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Voice {
    /// A built-in voice such as `alloy`, `ash`, `ballad`, `coral`, `echo`, `sage`, `shimmer`,
    /// `verse`, `marin` or `cedar`.
    Named(String),
    /// A custom voice (GA only).
    Custom {
        /// The custom voice's ID.
        id: String,
    },
}

impl Voice {
    /// The built-in voice name, or `None` for a custom voice.
    pub fn name(&self) -> Option<&str> {
        match self {
            Voice::Named(name) => Some(name),
            Voice::Custom { .. } => None,
        }
    }
}

impl From<&str> for Voice {
    fn from(name: &str) -> Self {
        Voice::Named(name.to_owned())
    }
}

impl From<String> for Voice {
    fn from(name: String) -> Self {
        Voice::Named(name)
    }
}

/// Input transcription settings (`audio.input.transcription`; beta `input_audio_transcription`).
/// The beta dialect only knows `model`, `language` and `prompt`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcription {
    /// Transcription model, e.g. `gpt-4o-transcribe` or `whisper-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// ISO-639-1 language of the input audio, which improves accuracy and latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Several expected languages (GA only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub languages: Option<Vec<String>>,
    /// Words the transcriber should expect (GA only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keywords: Option<Vec<String>>,
    /// Free text guiding the transcriber's style or vocabulary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    /// Latency/accuracy trade-off of streaming transcription (GA only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
}

impl Transcription {
    /// Transcription with the given model and no other settings.
    pub fn with_model(model: impl Into<String>) -> Self {
        Transcription {
            model: Some(model.into()),
            ..Transcription::default()
        }
    }
}

/// Noise reduction applied to input audio before VAD and the model hear it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoiseReduction {
    /// Which microphone the filter is tuned for.
    #[serde(rename = "type")]
    pub kind: NoiseReductionType,
}

impl NoiseReduction {
    /// Noise reduction of the given kind.
    pub fn new(kind: NoiseReductionType) -> Self {
        NoiseReduction { kind }
    }
}

/// Server VAD: turns end after a stretch of silence.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerVad {
    /// Activation threshold, 0.0 to 1.0 (server default 0.5); raise it in noisy rooms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Audio kept from before speech was detected, in ms (server default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_padding_ms: Option<u32>,
    /// Silence that ends a turn, in ms (server default 500 or 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_duration_ms: Option<u32>,
    /// Whether the server starts a response when a turn ends (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_response: Option<bool>,
    /// Whether speech interrupts the current response (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_response: Option<bool>,
    /// Prompt the model after this much user silence, in ms (5000 to 30000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u32>,
}

/// Semantic VAD: a model judges whether the user has finished their thought.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SemanticVad {
    /// How quickly the turn ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eagerness: Option<Eagerness>,
    /// Whether the server starts a response when a turn ends (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_response: Option<bool>,
    /// Whether speech interrupts the current response (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_response: Option<bool>,
}

/// How the server detects the end of the user's turn.
///
/// `Disabled` is its own variant because "off" and "unset" differ on the wire: an unset
/// `Option<TurnDetection>` is omitted (the server keeps its setting), while
/// `Some(TurnDetection::Disabled)` is sent as `"turn_detection": null`, which turns VAD off so the
/// client must commit audio and request responses itself.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnDetection {
    /// Silence-based VAD.
    ServerVad(ServerVad),
    /// Model-based VAD.
    SemanticVad(SemanticVad),
    /// No automatic turn detection (JSON `null`).
    Disabled,
}

impl TurnDetection {
    /// Server VAD with the server's defaults.
    pub fn server_vad() -> Self {
        TurnDetection::ServerVad(ServerVad::default())
    }

    /// Semantic VAD with the server's defaults.
    pub fn semantic_vad() -> Self {
        TurnDetection::SemanticVad(SemanticVad::default())
    }

    /// Whether the server detects turns at all.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, TurnDetection::Disabled)
    }

    /// Whether the server starts a response by itself when a turn ends (its default is yes).
    pub fn creates_response(&self) -> bool {
        match self {
            TurnDetection::ServerVad(vad) => vad.create_response.unwrap_or(true),
            TurnDetection::SemanticVad(vad) => vad.create_response.unwrap_or(true),
            TurnDetection::Disabled => false,
        }
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TurnDetectionRef<'a> {
    ServerVad(&'a ServerVad),
    SemanticVad(&'a SemanticVad),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TurnDetectionWire {
    ServerVad(ServerVad),
    SemanticVad(SemanticVad),
}

impl Serialize for TurnDetection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            TurnDetection::ServerVad(vad) => TurnDetectionRef::ServerVad(vad).serialize(serializer),
            TurnDetection::SemanticVad(vad) => {
                TurnDetectionRef::SemanticVad(vad).serialize(serializer)
            }
            TurnDetection::Disabled => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for TurnDetection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(
            match Option::<TurnDetectionWire>::deserialize(deserializer)? {
                Some(TurnDetectionWire::ServerVad(vad)) => TurnDetection::ServerVad(vad),
                Some(TurnDetectionWire::SemanticVad(vad)) => TurnDetection::SemanticVad(vad),
                None => TurnDetection::Disabled,
            },
        )
    }
}

/// Field helper: a present `null` means [`TurnDetection::Disabled`], an absent field `None`.
pub(crate) fn turn_detection_field<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<TurnDetection>, D::Error> {
    TurnDetection::deserialize(deserializer).map(Some)
}

/// Input audio settings (`session.audio.input`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioInput {
    /// Format of the audio the client appends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<AudioFormat>,
    /// Input transcription; `None` leaves it unset (servers report `null` when it is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcription: Option<Transcription>,
    /// Noise reduction; `None` leaves it unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_reduction: Option<NoiseReduction>,
    /// Turn detection; see [`TurnDetection`] for unset versus disabled.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "turn_detection_field"
    )]
    pub turn_detection: Option<TurnDetection>,
}

/// Output audio settings (`session.audio.output`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioOutput {
    /// Format of the audio the server streams back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<AudioFormat>,
    /// The model's voice; it cannot change once the model has spoken in the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<Voice>,
    /// Speaking speed, 0.25 to 1.5 (default 1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

/// The session's audio settings (`session.audio`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioConfig {
    /// What the client sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<AudioInput>,
    /// What the server sends back (realtime sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<AudioOutput>,
}

/// `max_output_tokens`: a limit, or `"inf"` for the model's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaxTokens {
    /// At most this many output tokens per response.
    Limited(u32),
    /// No limit beyond the model's own (`"inf"`).
    Inf,
}

impl Serialize for MaxTokens {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MaxTokens::Limited(limit) => serializer.serialize_u32(*limit),
            MaxTokens::Inf => serializer.serialize_str("inf"),
        }
    }
}

impl<'de> Deserialize<'de> for MaxTokens {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = MaxTokens;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a token count or \"inf\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<MaxTokens, E> {
                Ok(MaxTokens::Limited(u32::try_from(v).unwrap_or(u32::MAX)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<MaxTokens, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("max_output_tokens must not be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<MaxTokens, E> {
                if v == "inf" {
                    Ok(MaxTokens::Inf)
                } else {
                    Err(E::custom(format_args!(
                        "max_output_tokens must be a number or \"inf\", not \"{v}\""
                    )))
                }
            }
        }
        deserializer.deserialize_any(Visit)
    }
}

/// Tracing of the session in the OpenAI dashboard (GA; beta servers echo it too).
#[derive(Debug, Clone, PartialEq)]
pub enum Tracing {
    /// Trace with default workflow name, group and metadata (`"auto"`).
    Auto,
    /// Trace with explicit settings.
    Configured(TracingConfig),
}

/// Explicit tracing settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TracingConfig {
    /// Name of the workflow in the trace dashboard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_name: Option<String>,
    /// Group ID for filtering traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// Arbitrary metadata attached to the trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Serialize for Tracing {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Tracing::Auto => serializer.serialize_str("auto"),
            Tracing::Configured(config) => config.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Tracing {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Mode(String),
            Config(TracingConfig),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Mode(mode) if mode == "auto" => Ok(Tracing::Auto),
            Wire::Mode(mode) => Err(serde::de::Error::custom(format_args!(
                "tracing must be \"auto\" or an object, not \"{mode}\""
            ))),
            Wire::Config(config) => Ok(Tracing::Configured(config)),
        }
    }
}

/// What the server does when the conversation outgrows the context window (GA).
#[derive(Debug, Clone, PartialEq)]
pub enum Truncation {
    /// Drop the oldest turns as needed (the default).
    Auto,
    /// Never truncate; the response fails instead.
    Disabled,
    /// Drop a fixed fraction of the conversation at once, which keeps the prompt cache warm.
    RetentionRatio(RetentionRatio),
}

/// Settings of [`Truncation::RetentionRatio`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetentionRatio {
    /// Fraction of the conversation kept after truncating, 0.0 to 1.0.
    pub retention_ratio: f64,
    /// Token limits that trigger truncation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_limits: Option<TokenLimits>,
}

/// Token limits of [`RetentionRatio`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenLimits {
    /// Truncate when the conversation after the instructions exceeds this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_instructions: Option<u64>,
}

impl Serialize for Truncation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Tagged<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            ratio: &'a RetentionRatio,
        }
        match self {
            Truncation::Auto => serializer.serialize_str("auto"),
            Truncation::Disabled => serializer.serialize_str("disabled"),
            Truncation::RetentionRatio(ratio) => Tagged {
                kind: "retention_ratio",
                ratio,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Truncation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Mode(String),
            Ratio(RetentionRatio),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Mode(mode) => match mode.as_str() {
                "auto" => Ok(Truncation::Auto),
                "disabled" => Ok(Truncation::Disabled),
                other => Err(serde::de::Error::custom(format_args!(
                    "truncation must be \"auto\", \"disabled\" or an object, not \"{other}\""
                ))),
            },
            Wire::Ratio(ratio) => Ok(Truncation::RetentionRatio(ratio)),
        }
    }
}

/// A stored prompt template to use instead of (or with) inline instructions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prompt {
    /// The prompt template's ID.
    pub id: String,
    /// Template version; latest when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Values substituted into the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Map<String, Value>>,
}

/// Reasoning settings (GA reasoning models only).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    /// How much to reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort: Option<ReasoningEffort>,
}

/// A Realtime session's configuration, in the GA shape.
///
/// Every field is optional: a `session.update` only changes what it sets. `id`, `object` and
/// `expires_at` are assigned by the server and never sent. `temperature` only exists in the
/// beta dialect. What each dialect cannot express is listed on
/// [`ClientEvent::to_value`](super::ClientEvent::to_value).
///
/// `Serialize` writes the GA shape of every field that is set (except `temperature`);
/// `Deserialize` reads the GA shape and the beta flat shape alike.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Session {
    /// Realtime conversation or transcription only (GA `type`).
    #[serde(rename = "type")]
    pub kind: SessionKind,
    /// Server-assigned session ID (server events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `realtime.session` or `realtime.transcription_session` (server events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Unix time at which the session ends (server events only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// The model, e.g. `gpt-realtime`. Usually chosen in the connection URL instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The system prompt of the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// `["audio"]` (audio with transcript) or `["text"]` (beta `modalities`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_modalities: Option<Vec<Modality>>,
    /// Audio formats, voice, transcription, noise reduction and turn detection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioConfig>,
    /// Extra fields the server should include, e.g. `item.input_audio_transcription.logprobs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Dashboard tracing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracing: Option<Tracing>,
    /// Tools the model may call; `Some(vec![])` clears them, `None` leaves them unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolDefinition>>,
    /// How the model chooses tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one response (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Reasoning effort (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// Output token limit per response (beta `max_response_output_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<MaxTokens>,
    /// Context truncation strategy (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncation: Option<Truncation>,
    /// A stored prompt template (GA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Prompt>,
    /// Sampling temperature (beta only; GA models do not take one).
    #[serde(skip)]
    pub temperature: Option<f64>,
}

impl Session {
    /// An empty realtime session update (changes nothing until fields are set).
    pub fn realtime() -> Self {
        Session::default()
    }

    /// An empty transcription session update.
    pub fn transcription() -> Self {
        Session {
            kind: SessionKind::Transcription,
            ..Session::default()
        }
    }

    /// The input audio settings, created empty on first use.
    pub fn audio_input_mut(&mut self) -> &mut AudioInput {
        self.audio
            .get_or_insert_with(AudioConfig::default)
            .input
            .get_or_insert_with(AudioInput::default)
    }

    /// The output audio settings, created empty on first use.
    pub fn audio_output_mut(&mut self) -> &mut AudioOutput {
        self.audio
            .get_or_insert_with(AudioConfig::default)
            .output
            .get_or_insert_with(AudioOutput::default)
    }

    /// The input audio settings, if any are set.
    pub fn audio_input(&self) -> Option<&AudioInput> {
        self.audio.as_ref()?.input.as_ref()
    }

    /// The output audio settings, if any are set.
    pub fn audio_output(&self) -> Option<&AudioOutput> {
        self.audio.as_ref()?.output.as_ref()
    }

    /// The voice, if set.
    pub fn voice(&self) -> Option<&Voice> {
        self.audio_output()?.voice.as_ref()
    }

    /// The input audio format, if set.
    pub fn input_format(&self) -> Option<AudioFormat> {
        self.audio_input()?.format
    }

    /// The output audio format, if set.
    pub fn output_format(&self) -> Option<AudioFormat> {
        self.audio_output()?.format
    }

    /// The turn detection setting, if set (`Some(Disabled)` when turned off).
    pub fn turn_detection(&self) -> Option<&TurnDetection> {
        self.audio_input()?.turn_detection.as_ref()
    }

    /// The first field that is set but exists in realtime sessions only, for checking a
    /// transcription session before it is sent.
    pub(crate) fn realtime_only_field(&self) -> Option<&'static str> {
        let audio_output = self
            .audio
            .as_ref()
            .is_some_and(|audio| audio.output.is_some());
        [
            (self.model.is_some(), "model"),
            (self.instructions.is_some(), "instructions"),
            (self.output_modalities.is_some(), "output_modalities"),
            (audio_output, "audio.output"),
            (self.tracing.is_some(), "tracing"),
            (self.tools.is_some(), "tools"),
            (self.tool_choice.is_some(), "tool_choice"),
            (self.parallel_tool_calls.is_some(), "parallel_tool_calls"),
            (self.reasoning.is_some(), "reasoning"),
            (self.max_output_tokens.is_some(), "max_output_tokens"),
            (self.truncation.is_some(), "truncation"),
            (self.prompt.is_some(), "prompt"),
            (self.temperature.is_some(), "temperature"),
        ]
        .into_iter()
        .find_map(|(set, field)| set.then_some(field))
    }
}

/// Every field either dialect may put in a session object, for decoding.
#[derive(Deserialize, Default)]
#[serde(default)]
struct SessionWire {
    #[serde(rename = "type")]
    kind: Option<SessionKind>,
    id: Option<String>,
    object: Option<String>,
    expires_at: Option<i64>,
    model: Option<String>,
    instructions: Option<String>,
    output_modalities: Option<Vec<Modality>>,
    audio: Option<AudioConfig>,
    include: Option<Vec<String>>,
    tracing: Option<Tracing>,
    tools: Option<Vec<ToolDefinition>>,
    tool_choice: Option<ToolChoice>,
    parallel_tool_calls: Option<bool>,
    reasoning: Option<Reasoning>,
    max_output_tokens: Option<MaxTokens>,
    truncation: Option<Truncation>,
    prompt: Option<Prompt>,
    // Beta flat fields.
    modalities: Option<Vec<Modality>>,
    voice: Option<Voice>,
    speed: Option<f64>,
    input_audio_format: Option<AudioFormat>,
    output_audio_format: Option<AudioFormat>,
    input_audio_transcription: Option<Transcription>,
    #[serde(deserialize_with = "turn_detection_field")]
    turn_detection: Option<TurnDetection>,
    input_audio_noise_reduction: Option<NoiseReduction>,
    max_response_output_tokens: Option<MaxTokens>,
    temperature: Option<f64>,
}

impl<'de> Deserialize<'de> for Session {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = SessionWire::deserialize(deserializer)?;
        let kind = wire.kind.unwrap_or(match wire.object.as_deref() {
            Some("realtime.transcription_session") => SessionKind::Transcription,
            _ => SessionKind::Realtime,
        });
        let mut session = Session {
            kind,
            id: wire.id,
            object: wire.object,
            expires_at: wire.expires_at,
            model: wire.model,
            instructions: wire.instructions,
            output_modalities: wire.output_modalities.or(wire.modalities),
            audio: wire.audio,
            include: wire.include,
            tracing: wire.tracing,
            tools: wire.tools,
            tool_choice: wire.tool_choice,
            parallel_tool_calls: wire.parallel_tool_calls,
            reasoning: wire.reasoning,
            max_output_tokens: wire.max_output_tokens.or(wire.max_response_output_tokens),
            truncation: wire.truncation,
            prompt: wire.prompt,
            temperature: wire.temperature,
        };
        // Fold the beta flat fields into the nested GA shape; nested values win.
        let has_flat_input = wire.input_audio_format.is_some()
            || wire.input_audio_transcription.is_some()
            || wire.turn_detection.is_some()
            || wire.input_audio_noise_reduction.is_some();
        if has_flat_input {
            let input = session.audio_input_mut();
            input.format = input.format.or(wire.input_audio_format);
            input.transcription = input
                .transcription
                .take()
                .or(wire.input_audio_transcription);
            input.turn_detection = input.turn_detection.take().or(wire.turn_detection);
            input.noise_reduction = input
                .noise_reduction
                .take()
                .or(wire.input_audio_noise_reduction);
        }
        if wire.voice.is_some() || wire.speed.is_some() || wire.output_audio_format.is_some() {
            let output = session.audio_output_mut();
            output.format = output.format.or(wire.output_audio_format);
            output.voice = output.voice.take().or(wire.voice);
            output.speed = output.speed.or(wire.speed);
        }
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_ga_and_beta_shapes_into_the_same_session() {
        let ga: Session = serde_json::from_value(json!({
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}, "turn_detection": null,
                          "transcription": {"model": "whisper-1"}},
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"}
            },
            "max_output_tokens": "inf"
        }))
        .unwrap();
        let beta: Session = serde_json::from_value(json!({
            "modalities": ["audio"],
            "input_audio_format": "g711_ulaw",
            "output_audio_format": "pcm16",
            "voice": "marin",
            "turn_detection": null,
            "input_audio_transcription": {"model": "whisper-1"},
            "max_response_output_tokens": "inf"
        }))
        .unwrap();
        assert_eq!(ga, beta);
        assert_eq!(ga.turn_detection(), Some(&TurnDetection::Disabled));
        assert_eq!(ga.input_format(), Some(AudioFormat::Pcmu));
        assert_eq!(ga.voice(), Some(&Voice::from("marin")));
    }

    #[test]
    fn turn_detection_distinguishes_unset_from_disabled() {
        let mut session = Session::realtime();
        session.audio_input_mut().format = Some(AudioFormat::pcm16());
        let unset = serde_json::to_value(&session).unwrap();
        assert_eq!(unset["audio"]["input"].get("turn_detection"), None);

        session.audio_input_mut().turn_detection = Some(TurnDetection::Disabled);
        let off = serde_json::to_value(&session).unwrap();
        assert_eq!(
            off["audio"]["input"].get("turn_detection"),
            Some(&Value::Null)
        );

        let absent: Session = serde_json::from_value(json!({"audio": {"input": {}}})).unwrap();
        assert_eq!(absent.turn_detection(), None);
    }

    #[test]
    fn tagged_values_round_trip() {
        let cases = [
            json!("auto"),
            json!("disabled"),
            json!({"type": "retention_ratio", "retention_ratio": 0.5,
                   "token_limits": {"post_instructions": 1000}}),
        ];
        for case in cases {
            let truncation: Truncation = serde_json::from_value(case.clone()).unwrap();
            assert_eq!(serde_json::to_value(&truncation).unwrap(), case);
        }
        for case in [json!("auto"), json!({"workflow_name": "support"})] {
            let tracing: Tracing = serde_json::from_value(case.clone()).unwrap();
            assert_eq!(serde_json::to_value(&tracing).unwrap(), case);
        }
        for case in [json!("inf"), json!(4096)] {
            let max: MaxTokens = serde_json::from_value(case.clone()).unwrap();
            assert_eq!(serde_json::to_value(max).unwrap(), case);
        }
        assert!(serde_json::from_value::<MaxTokens>(json!("lots")).is_err());
        for case in [
            json!({"type": "audio/pcma"}),
            json!({"type": "audio/pcm", "rate": 24000}),
        ] {
            let format: AudioFormat = serde_json::from_value(case.clone()).unwrap();
            assert_eq!(serde_json::to_value(format).unwrap(), case);
        }
    }

    #[test]
    fn unknown_string_values_survive() {
        let modality: Modality = serde_json::from_value(json!("video")).unwrap();
        assert_eq!(modality, Modality::Other("video".into()));
        assert_eq!(serde_json::to_value(&modality).unwrap(), json!("video"));
    }

    #[test]
    fn nulls_from_live_servers_are_accepted() {
        let session: Session = serde_json::from_value(json!({
            "type": "realtime", "object": "realtime.session", "id": "sess_1",
            "tracing": null, "prompt": null, "include": null, "tools": null,
            "audio": {"input": {"transcription": null, "noise_reduction": null,
                                "turn_detection": {"type": "server_vad", "idle_timeout_ms": null}},
                      "output": {"voice": "alloy", "speed": 1}}
        }))
        .unwrap();
        assert_eq!(session.tracing, None);
        assert_eq!(session.include, None);
        assert_eq!(session.turn_detection(), Some(&TurnDetection::server_vad()));
    }
}
