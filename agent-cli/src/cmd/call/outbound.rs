//! `agent call FILE --to +1...`: an outbound call through Twilio's REST API.
//!
//! `POST {api}/2010-04-01/Accounts/{AccountSid}/Calls.json` with `To`, `From` and `Url`
//! (HTTP Basic auth: the account SID and the auth token, from `TWILIO_ACCOUNT_SID` and
//! `TWILIO_AUTH_TOKEN`). When the callee answers, Twilio fetches `Url`, the running
//! `agent serve`'s signed `/twilio/voice`, which routes a call it placed by the calling number
//! (`--from`, one of serve.toml's `numbers`), or `/twilio/voice/{route}` with `--route`; from
//! there the call runs like an incoming one. This command then follows the call's status
//! (`GET .../Calls/{CallSid}.json`) until it is over, within `--max-secs`.
//!
//! The REST client is agent-server's ([`TwilioRest`]), the one that hangs up and transfers.
//! The agent file is loaded and checked first, so a typo fails before anyone's phone rings.
//! The auth token never appears in output: it is registered as a secret, and errors quote
//! Twilio's message, never the request.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use agent_core::{
    agent::Agent,
    session::{Secret, transport::is_loopback_url},
};
use agent_server::{phone::CallControlError, twilio::rest::TwilioRest};
use anyhow::{Context, bail};

use super::{CallArgs, check_e164};

/// Where the account SID comes from.
const ACCOUNT_SID_ENV: &str = "TWILIO_ACCOUNT_SID";
/// Where the auth token comes from (the variable `agent serve` reads by default too).
const AUTH_TOKEN_ENV: &str = "TWILIO_AUTH_TOKEN";
/// How often the call's status is read.
const POLL: Duration = Duration::from_millis(500);

/// Places the call and follows it; exit code 0 when it completed.
pub async fn run(agent: &Agent, args: &CallArgs) -> anyhow::Result<ExitCode> {
    let (Some(to), Some(from), Some(serve_url)) = (&args.to, &args.from, &args.serve_url) else {
        bail!("--to needs --from and --serve-url");
    };
    check_e164("--to", to)?;
    check_e164("--from", from)?;
    if !(args.max_secs.is_finite() && args.max_secs > 0.0) {
        bail!("--max-secs must be a number of seconds above 0");
    }
    let webhook = webhook_url(serve_url, args.route.as_deref())?;
    let api_base = args.twilio_api_base.trim_end_matches('/');
    if !api_base.starts_with("https://") && !is_loopback_url(api_base) {
        bail!(
            "--twilio-api-base {api_base}: the auth token is only sent over https:// (or to a server on this machine)"
        );
    }
    let account_sid = read_env(
        ACCOUNT_SID_ENV,
        "the account SID (Twilio console → Account Info, AC...)",
    )?;
    if !account_sid.starts_with("AC") || !account_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        bail!(
            "{ACCOUNT_SID_ENV} is not an account SID: it starts with AC, then letters and digits"
        );
    }
    let token = read_env(
        AUTH_TOKEN_ENV,
        "the auth token (Twilio console → Account Info)",
    )?;
    agent_core::redact::register_secret(&token);
    let rest = TwilioRest::new(api_base, Secret::new(token))?;
    let created = rest
        .create_call(&account_sid, to, from, &webhook)
        .await
        .map_err(|err| explain("creating the call", err))?;
    let sid = created.sid.clone();
    crate::output::outln!(
        "calling {to} from {from} as `{}` (call {sid}); when answered, Twilio fetches {webhook}",
        agent.name()
    );
    crate::output::outln!("  status: {}", created.status);
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.max_secs);
    let mut call = created;
    while !call.is_over() {
        if Instant::now() >= deadline {
            bail!(
                "call {sid} is still {} after {} s; it goes on at Twilio (see the Twilio console)",
                call.status,
                args.max_secs
            );
        }
        tokio::time::sleep(POLL).await;
        let now = rest
            .fetch_call(&account_sid, &sid)
            .await
            .map_err(|err| explain("reading the call's status", err))?;
        if now.status != call.status {
            crate::output::outln!("  status: {}", now.status);
        }
        call = now;
    }
    crate::output::outln!(
        "── call over: {} · {:.1} s ──",
        call.status,
        started.elapsed().as_secs_f64()
    );
    if call.status == "completed" {
        return Ok(ExitCode::SUCCESS);
    }
    bail!("call {sid} ended {}", call.status)
}

/// What went wrong `doing` something, with a hint when the credentials were refused.
fn explain(doing: &str, err: CallControlError) -> anyhow::Error {
    let hint = match err {
        CallControlError::Refused { status: 401, .. } => {
            format!(" (check {ACCOUNT_SID_ENV} and {AUTH_TOKEN_ENV})")
        }
        _ => String::new(),
    };
    anyhow::anyhow!("{doing}: {err}{hint}")
}

/// `URL/twilio/voice`, or `URL/twilio/voice/ROUTE`.
fn webhook_url(serve_url: &str, route: Option<&str>) -> anyhow::Result<String> {
    let base = serve_url.trim_end_matches('/');
    let parsed =
        url::Url::parse(base).with_context(|| format!("--serve-url {base} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || !parsed.username().is_empty()
    {
        bail!(
            "--serve-url must be the server's public http(s) base URL, without query or credentials, e.g. https://voice.example.com"
        );
    }
    Ok(match route {
        Some(route) => {
            if route.is_empty()
                || !route
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                bail!("--route must be a serve.toml `path`: letters, digits, `-` and `_`");
            }
            format!("{base}/twilio/voice/{route}")
        }
        None => format!("{base}/twilio/voice"),
    })
}

fn read_env(variable: &str, what: &str) -> anyhow::Result<String> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_owned()),
        _ => bail!("{variable} is not set: export {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_is_the_servers_voice_route() {
        assert_eq!(
            webhook_url("https://voice.example.com/", None).unwrap(),
            "https://voice.example.com/twilio/voice"
        );
        assert_eq!(
            webhook_url("https://voice.example.com", Some("support")).unwrap(),
            "https://voice.example.com/twilio/voice/support"
        );
        assert!(webhook_url("voice.example.com", None).is_err());
        assert!(webhook_url("https://voice.example.com/?a=1", None).is_err());
        assert!(webhook_url("https://voice.example.com", Some("a/b")).is_err());
    }
}
