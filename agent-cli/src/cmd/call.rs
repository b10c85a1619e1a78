//! `agent call FILE`: a phone call to an agent, from the terminal.
//!
//! `--offline` simulates the whole phone path on this machine, with no account: the scripted
//! model plays the agent's scenario, a real `agent serve` (agent-server) answers, and a fake
//! Twilio (or, with `--transport sip`, a fake OpenAI platform) places the call and plays the
//! caller, in real time. The transcript is printed as the call goes (see [`transcript`]).
//! Every secret the pieces share is generated for the run and never printed; every wait has
//! a deadline; nothing leaves 127.0.0.1.
//!
//! `--to +1...` places a real outbound call through Twilio's REST API (see [`outbound`]); the
//! answered call reaches the `agent serve` at `--serve-url`, which routes it by `--from`.

pub(crate) mod offline;
mod outbound;
pub(crate) mod script;
mod transcript;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::bail;

/// Arguments of `agent call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The agent file that answers the call.
    pub file: PathBuf,
    /// Simulate the call on this machine: fake phone network, real `agent serve`, scripted
    /// model playing the agent's scenario (NAME.scenarios.toml beside the file). No account.
    #[arg(long, required_unless_present = "to", conflicts_with = "to")]
    pub offline: bool,
    /// With --offline: play the scenario with this name (default: the file's first).
    #[arg(long, requires = "offline")]
    pub scenario: Option<String>,
    /// With --offline: how the call reaches `agent serve`.
    #[arg(long, value_enum, default_value_t = Transport::Twilio, requires = "offline")]
    pub transport: Transport,
    /// Call this number (E.164, e.g. +15550123) through Twilio's REST API; needs
    /// TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.
    #[arg(long, value_name = "+NUMBER", requires_all = ["from", "serve_url"])]
    pub to: Option<String>,
    /// With --to: the calling number, one of your Twilio numbers that serve.toml routes to
    /// the agent (`numbers = [...]`); the server routes calls it placed by this number.
    #[arg(long, value_name = "+NUMBER", requires = "to")]
    pub from: Option<String>,
    /// With --to: the public base URL of the running `agent serve` (its `public_base_url`);
    /// Twilio fetches `URL/twilio/voice` when the call is answered.
    #[arg(long, value_name = "URL", requires = "to")]
    pub serve_url: Option<String>,
    /// With --to: reach the agent by serve.toml's `path = "..."` route
    /// (`URL/twilio/voice/PATH`) rather than by the --from number.
    #[arg(long, value_name = "PATH", requires = "to")]
    pub route: Option<String>,
    /// With --to: Twilio's REST base (e.g. `agent mock --twilio`'s).
    #[arg(
        long,
        value_name = "URL",
        default_value = "https://api.twilio.com",
        requires = "to"
    )]
    pub twilio_api_base: String,
    /// With --to: stop following the call after this many seconds (it goes on at Twilio).
    #[arg(long, value_name = "SECS", default_value_t = 600.0, requires = "to")]
    pub max_secs: f64,
}

/// How the simulated call reaches `agent serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// Twilio Media Streams: a signed voice webhook, then μ-law in real time both ways.
    Twilio,
    /// OpenAI SIP: a signed `realtime.call.incoming` webhook, an accept, then the sideband.
    Sip,
}

/// Places the call; exit code 0 when it completed.
pub fn run(args: CallArgs) -> anyhow::Result<ExitCode> {
    let agent = super::load_agent(&args.file)?;
    let runtime = super::runtime()?;
    let result = runtime.block_on(async {
        if args.offline {
            offline::run(&agent, &args).await
        } else {
            outbound::run(&agent, &args).await
        }
    });
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// A throwaway secret for one run, `bytes` random bytes as hex (hex is also valid base64, as
/// a `whsec_` secret must be). It only ever guards sockets on 127.0.0.1 for the life of
/// this process, and is registered so that no output can show it.
fn throwaway_secret(bytes: usize) -> String {
    let secret = random_hex(bytes);
    agent_core::redact::register_secret(&secret);
    secret
}

/// `bytes` random bytes as hex, for ids (call SIDs, webhook ids) that are not secret.
pub(crate) fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}

/// `+` and 1 to 15 digits.
fn check_e164(flag: &str, number: &str) -> anyhow::Result<()> {
    let digits = number.strip_prefix('+').unwrap_or("");
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("{flag} {number} is not an E.164 number: write \"+\" and the digits, e.g. +15550123");
    }
    Ok(())
}
