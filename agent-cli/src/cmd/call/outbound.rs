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
//! The agent file is loaded and checked first, so a typo fails before anyone's phone rings.
//! The auth token never appears in output: it is registered as a secret, and errors quote
//! Twilio's message, never the request.

use std::{
    process::ExitCode,
    time::{Duration, Instant},
};

use agent_core::{agent::Agent, session::transport::is_loopback_url};
use anyhow::{Context, bail};
use serde_json::Value;

use super::{CallArgs, check_e164};

/// Where the account SID comes from.
const ACCOUNT_SID_ENV: &str = "TWILIO_ACCOUNT_SID";
/// Where the auth token comes from (the variable `agent serve` reads by default too).
const AUTH_TOKEN_ENV: &str = "TWILIO_AUTH_TOKEN";
/// How long one REST request may take.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How often the call's status is read.
const POLL: Duration = Duration::from_millis(500);
/// Statuses after which nothing more happens to a call.
const FINAL: [&str; 5] = ["completed", "busy", "failed", "no-answer", "canceled"];
/// The most of Twilio's answer quoted in an error.
const QUOTED: usize = 300;

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
    agent_core::tls::ensure_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_DEADLINE)
        .connect_timeout(REQUEST_DEADLINE)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("cannot build an HTTP client")?;
    let calls = format!("{api_base}/2010-04-01/Accounts/{account_sid}/Calls");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("To", to)
        .append_pair("From", from)
        .append_pair("Url", &webhook)
        .append_pair("Method", "POST")
        .finish();
    let created = client
        .post(format!("{calls}.json"))
        .basic_auth(&account_sid, Some(&token))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await;
    let created = answer(created, "creating the call").await?;
    let Some(sid) = created["sid"].as_str().map(str::to_owned) else {
        bail!("Twilio created the call but its answer has no sid");
    };
    crate::output::outln!(
        "calling {to} from {from} as `{}` (call {sid}); when answered, Twilio fetches {webhook}",
        agent.name()
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(args.max_secs);
    let mut last = created["status"].as_str().unwrap_or("queued").to_owned();
    crate::output::outln!("  status: {last}");
    while !FINAL.contains(&last.as_str()) {
        if Instant::now() >= deadline {
            bail!(
                "call {sid} is still {last} after {} s; it goes on at Twilio (see the Twilio console)",
                args.max_secs
            );
        }
        tokio::time::sleep(POLL).await;
        let fetched = client
            .get(format!("{calls}/{sid}.json"))
            .basic_auth(&account_sid, Some(&token))
            .send()
            .await;
        let status = answer(fetched, "reading the call's status")
            .await?
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned();
        if status != last {
            crate::output::outln!("  status: {status}");
            last = status;
        }
    }
    crate::output::outln!(
        "── call over: {last} · {:.1} s ──",
        started.elapsed().as_secs_f64()
    );
    if last == "completed" {
        return Ok(ExitCode::SUCCESS);
    }
    bail!("call {sid} ended {last}")
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

/// Twilio's JSON answer, or an error with its status and message (never the request).
async fn answer(
    sent: Result<reqwest::Response, reqwest::Error>,
    doing: &str,
) -> anyhow::Result<Value> {
    let response = sent.map_err(|err| {
        anyhow::anyhow!(
            "{doing}: Twilio's REST API could not be reached: {}",
            err.without_url()
        )
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(json);
    }
    let message = json["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| text.chars().take(QUOTED).collect());
    let hint = if status.as_u16() == 401 {
        format!(" (check {ACCOUNT_SID_ENV} and {AUTH_TOKEN_ENV})")
    } else {
        String::new()
    };
    bail!("{doing}: Twilio answered {status}: {message}{hint}")
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
