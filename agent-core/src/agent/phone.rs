//! `[phone]`: what an agent does on a phone call (`agent serve`), beyond what any session does.
//!
//! The greeting it speaks first, how it handles a silent caller, how long a call may last, how
//! keypad digits reach the model, and where it may transfer a call. `agent run` ignores the
//! table; `agent check` and `agent serve` check it like every other key, so a mistake shows up
//! before the first call and not in the middle of one.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A phone agent's call settings.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneSpec {
    /// What the agent says first when a call connects, e.g. "Thanks for calling Acme, how can
    /// I help?". Unset: the agent still speaks first, as its instructions say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Silence, in ms, after which a quiet caller is prompted (once the agent finished
    /// speaking). Unset: silence is left to the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 600000))]
    pub idle_timeout_ms: Option<u32>,
    /// Prompts after silence before the agent says goodbye and hangs up.
    #[serde(default = "default_idle_prompts")]
    pub idle_prompts: u32,
    /// What the model is told to do when the caller is silent.
    #[serde(default = "default_idle_prompt")]
    pub idle_prompt: String,
    /// What the model is told before the agent hangs up on its own (silence, call length).
    #[serde(default = "default_goodbye")]
    pub goodbye: String,
    /// The longest call, in seconds; the caller is warned first, then the call ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1.0, max = 86400.0))]
    pub max_call_secs: Option<f64>,
    /// How long before `max_call_secs` the caller is warned.
    #[serde(default = "default_warning_secs")]
    pub max_call_warning_secs: f64,
    /// What the model is told when the warning is due.
    #[serde(default = "default_warning")]
    pub max_call_warning: String,
    /// At `max_call_secs` (or, on SIP, the session's time limit) the call is transferred to
    /// this `transfer_targets` name instead of ended, e.g. to a human line that has no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_call_transfer: Option<String>,
    /// How keypad digits reach the model.
    #[serde(default)]
    pub dtmf: DtmfSpec,
    /// Where `transfer_call` may send the call: a name the model picks → an E.164 number
    /// (`+15550123`) or a SIP URI (`sip:sales@example.com`). Empty: no transfers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub transfer_targets: BTreeMap<String, String>,
}

impl Default for PhoneSpec {
    /// What an agent without a `[phone]` table does on a call.
    fn default() -> Self {
        PhoneSpec {
            greeting: None,
            idle_timeout_ms: None,
            idle_prompts: default_idle_prompts(),
            idle_prompt: default_idle_prompt(),
            goodbye: default_goodbye(),
            max_call_secs: None,
            max_call_warning_secs: default_warning_secs(),
            max_call_warning: default_warning(),
            max_call_transfer: None,
            dtmf: DtmfSpec::default(),
            transfer_targets: BTreeMap::new(),
        }
    }
}

fn default_idle_prompts() -> u32 {
    2
}

fn default_idle_prompt() -> String {
    "The caller has been silent for a while. Ask briefly whether they are still there.".into()
}

fn default_goodbye() -> String {
    "The call is ending now. Say a short, polite goodbye and nothing else.".into()
}

fn default_warning_secs() -> f64 {
    60.0
}

fn default_warning() -> String {
    "The call will end in about a minute. Tell the caller politely and help them wrap up.".into()
}

/// Keypad digits (DTMF).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DtmfSpec {
    /// `each`: every digit is a user message ("The caller pressed 1 on the keypad.");
    /// `batch`: digits are gathered until `terminator` or `pause_ms` without a digit, then sent
    /// as one message; `off`: digits are ignored.
    #[serde(default)]
    pub mode: DtmfMode,
    /// The key that ends a batch (not sent to the model). Only with `mode = "batch"`.
    #[serde(default = "default_terminator")]
    pub terminator: String,
    /// A batch is sent after this long without a digit, in ms.
    #[serde(default = "default_pause_ms")]
    #[schemars(range(min = 100, max = 60000))]
    pub pause_ms: u32,
    /// The most digits in one batch; more are sent as the next batch.
    #[serde(default = "default_max_digits")]
    #[schemars(range(min = 1, max = 64))]
    pub max_digits: u32,
}

impl Default for DtmfSpec {
    fn default() -> Self {
        DtmfSpec {
            mode: DtmfMode::default(),
            terminator: default_terminator(),
            pause_ms: default_pause_ms(),
            max_digits: default_max_digits(),
        }
    }
}

fn default_terminator() -> String {
    "#".into()
}

fn default_pause_ms() -> u32 {
    2000
}

fn default_max_digits() -> u32 {
    32
}

/// How keypad digits reach the model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DtmfMode {
    /// One user message per digit.
    #[default]
    Each,
    /// One user message per batch of digits.
    Batch,
    /// Digits are ignored.
    Off,
}

/// Where a transfer goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferDestination {
    /// An E.164 phone number, `+` and 6 to 15 digits.
    Number(String),
    /// A `sip:` or `sips:` URI.
    Sip(String),
}

impl TransferDestination {
    /// Reads a transfer target's value; `None` when it is neither an E.164 number nor a SIP URI
    /// (without spaces, quotes or angle brackets, which could break out of TwiML or a header).
    pub fn parse(value: &str) -> Option<TransferDestination> {
        if let Some(digits) = value.strip_prefix('+') {
            let ok = (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
            return ok.then(|| TransferDestination::Number(value.to_owned()));
        }
        let lower = value.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("sip:")
            .or_else(|| lower.strip_prefix("sips:"))?;
        let clean = !rest.is_empty()
            && value.len() <= 256
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'<' | b'>' | b'\'' | b'&'));
        clean.then(|| TransferDestination::Sip(value.to_owned()))
    }

    /// The number or URI.
    pub fn as_str(&self) -> &str {
        match self {
            TransferDestination::Number(s) | TransferDestination::Sip(s) => s,
        }
    }
}

/// Whether `name` can be a transfer target's name: what the model writes, so short and plain.
pub fn valid_target_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// One problem of a `[phone]` table: the key to point at, the message and a hint.
pub(super) type PhoneProblem = (&'static str, String, String);

/// Every problem of `phone`, for the file's checker to place.
pub(super) fn problems(phone: &PhoneSpec) -> Vec<PhoneProblem> {
    let mut out = Vec::new();
    if let Some(greeting) = &phone.greeting
        && (greeting.trim().is_empty() || greeting.chars().count() > 2000)
    {
        out.push((
            "greeting",
            "`greeting` is empty or longer than 2000 characters".into(),
            "write one or two sentences, or remove the key".into(),
        ));
    }
    if let Some(ms) = phone.idle_timeout_ms
        && !(100..=600_000).contains(&ms)
    {
        out.push((
            "idle_timeout_ms",
            format!("`idle_timeout_ms` is {ms}; it must be from 100 to 600000"),
            "set the silence before a prompt, e.g. idle_timeout_ms = 8000".into(),
        ));
    }
    if phone.idle_prompts > 10 {
        out.push((
            "idle_prompts",
            format!("`idle_prompts` is {}; at most 10", phone.idle_prompts),
            "a silent caller is usually gone after 1 or 2 prompts".into(),
        ));
    }
    for (key, text) in [
        ("idle_prompt", &phone.idle_prompt),
        ("goodbye", &phone.goodbye),
        ("max_call_warning", &phone.max_call_warning),
    ] {
        if text.trim().is_empty() || text.chars().count() > 2000 {
            out.push((
                key,
                format!("`{key}` is empty or longer than 2000 characters"),
                "tell the model in a sentence what to say".into(),
            ));
        }
    }
    check_call_length(phone, &mut out);
    if let Some(target) = &phone.max_call_transfer
        && !phone.transfer_targets.contains_key(target)
    {
        out.push((
            "max_call_transfer",
            format!("`max_call_transfer` names `{target}`, which is not in `transfer_targets`"),
            "name one of [phone.transfer_targets], or remove the key to end the call instead"
                .into(),
        ));
    }
    check_dtmf(&phone.dtmf, &mut out);
    for (name, value) in &phone.transfer_targets {
        if !valid_target_name(name) {
            out.push((
                "transfer_targets",
                format!("transfer target name `{name}` is not lower-case letters, digits, `_` or `-` (at most 64)"),
                "the model picks a target by this name, e.g. sales = \"+15550123\"".into(),
            ));
        }
        if TransferDestination::parse(value).is_none() {
            out.push((
                "transfer_targets",
                format!(
                    "transfer target `{name}` = `{value}` is neither an E.164 number nor a SIP URI"
                ),
                "use \"+15550123\" or \"sip:sales@example.com\"".into(),
            ));
        }
    }
    out
}

fn check_call_length(phone: &PhoneSpec, out: &mut Vec<PhoneProblem>) {
    let warning = phone.max_call_warning_secs;
    if !(warning.is_finite() && warning >= 0.0) {
        out.push((
            "max_call_warning_secs",
            format!("`max_call_warning_secs` is {warning}"),
            "use a number of seconds, 0 or more".into(),
        ));
    }
    if let Some(max) = phone.max_call_secs
        && !(max.is_finite() && (1.0..=86_400.0).contains(&max))
    {
        out.push((
            "max_call_secs",
            format!("`max_call_secs` is {max}; it must be from 1 to 86400"),
            "set the longest call in seconds, e.g. max_call_secs = 900".into(),
        ));
    }
}

fn check_dtmf(dtmf: &DtmfSpec, out: &mut Vec<PhoneProblem>) {
    let key_ok = |s: &str| {
        s.len() == 1
            && s.bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
    };
    if !key_ok(&dtmf.terminator) {
        out.push((
            "terminator",
            format!(
                "`terminator` is `{}`; it must be one key: 0-9, * or #",
                dtmf.terminator
            ),
            "the usual end-of-entry key is \"#\"".into(),
        ));
    }
    if !(100..=60_000).contains(&dtmf.pause_ms) {
        out.push((
            "pause_ms",
            format!(
                "`pause_ms` is {}; it must be from 100 to 60000",
                dtmf.pause_ms
            ),
            "set how long a pause ends an entry, e.g. pause_ms = 2000".into(),
        ));
    }
    if !(1..=64).contains(&dtmf.max_digits) {
        out.push((
            "max_digits",
            format!(
                "`max_digits` is {}; it must be from 1 to 64",
                dtmf.max_digits
            ),
            "set the longest entry, e.g. max_digits = 16".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PhoneSpec, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_and_a_full_table_parse() {
        let phone = parse("").unwrap();
        assert_eq!(phone, PhoneSpec::default());
        assert_eq!(phone.dtmf.mode, DtmfMode::Each);
        assert_eq!(phone.idle_prompts, 2);
        assert!(problems(&phone).is_empty());
        let phone = parse(
            "greeting = \"Hi\"\nidle_timeout_ms = 8000\nmax_call_secs = 600\n\
             max_call_transfer = \"sales\"\n\
             [dtmf]\nmode = \"batch\"\nterminator = \"*\"\n\
             [transfer_targets]\nsales = \"+15550123\"\nbilling = \"sip:billing@example.com\"\n",
        )
        .unwrap();
        assert_eq!(phone.dtmf.mode, DtmfMode::Batch);
        assert!(problems(&phone).is_empty(), "{:?}", problems(&phone));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(parse("greting = \"Hi\"").is_err());
        assert!(parse("[dtmf]\nmode = \"each\"\ndelay = 1\n").is_err());
        assert!(parse("[dtmf]\nmode = \"sometimes\"\n").is_err());
    }

    #[test]
    fn bad_values_are_each_reported() {
        let phone = parse(
            "greeting = \" \"\nidle_timeout_ms = 5\nmax_call_secs = 0\n\
             max_call_transfer = \"nowhere\"\n\
             [dtmf]\nterminator = \"##\"\npause_ms = 0\n\
             [transfer_targets]\nSales = \"+1\"\nops = \"sip:a b\"\n",
        )
        .unwrap();
        let keys: Vec<&str> = problems(&phone).iter().map(|p| p.0).collect();
        for key in [
            "greeting",
            "idle_timeout_ms",
            "max_call_secs",
            "terminator",
            "pause_ms",
            "transfer_targets",
            "max_call_transfer",
        ] {
            assert!(keys.contains(&key), "{key} in {keys:?}");
        }
        assert_eq!(keys.iter().filter(|k| **k == "transfer_targets").count(), 3);
    }

    #[test]
    fn destinations_cannot_break_out_of_twiml() {
        assert_eq!(
            TransferDestination::parse("+15550123"),
            Some(TransferDestination::Number("+15550123".into()))
        );
        assert!(matches!(
            TransferDestination::parse("sip:sales@example.com;transport=tls"),
            Some(TransferDestination::Sip(_))
        ));
        for bad in [
            "15550123",
            "+1555abc",
            "sip:",
            "sip:a\"b",
            "sip:<x>",
            "tel:+1555",
            "+1",
        ] {
            assert_eq!(TransferDestination::parse(bad), None, "{bad}");
        }
        assert!(valid_target_name("front-desk_2"));
        assert!(!valid_target_name("Front Desk"));
    }
}

#[cfg(test)]
mod file_tests {
    use crate::agent::AgentFile;

    #[test]
    fn agent_check_places_phone_problems_at_their_key() {
        let source = "name = \"p\"\n[phone]\nidle_timeout_ms = 5\n";
        let err = AgentFile::parse("a.toml", source.into()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("a.toml:3:1") && text.contains("idle_timeout_ms"),
            "{text}"
        );
        let err = AgentFile::parse("a.toml", "name = \"p\"\n[phone]\ngreting = \"hi\"\n".into())
            .unwrap_err();
        assert!(err.to_string().contains("greting"), "{err}");
    }
}
