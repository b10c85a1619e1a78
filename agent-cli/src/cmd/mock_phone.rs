//! `agent mock FILE --twilio | --platform --serve-url URL`: the fake phone network beside the
//! scripted model, for an `agent serve` started separately (`--url`, `--api-base`,
//! `--twilio-api-base` pointed at what this prints).
//!
//! Secrets are shared through the environment, never printed nor written: the fake Twilio
//! signs with `TWILIO_AUTH_TOKEN` and the fake platform with `OPENAI_WEBHOOK_SECRET`, the
//! variables `agent serve` reads, so the user exports one test value in the shell both run in.
//! Each line on stdin (Enter) places an incoming call into the server, the caller playing the
//! scenario; with `--twilio`, `agent call --to --twilio-api-base URL` places outbound calls
//! through the fake REST API, whose called party plays the scenario too. With `--platform`,
//! the same REST base serves WebRTC calls as well (client secrets and SDP offers, see
//! `agent_testkit::platform`): a page or a server that relays one can call it directly.

use std::{net::SocketAddr, time::Duration};

use agent_testkit::{
    Scenario,
    platform::{FakePlatform, SidebandDrop},
    server::{PlaylistServer, ServerConfig},
    twilio::{ACCOUNT_SID, CallSpec, FakeTwilio, TwilioRest},
};
use anyhow::{Context, bail};

use super::call::{
    offline::{AGENT_NUMBER, sip_call},
    script::{self, CallerTurn},
};

/// Where the fake Twilio's auth token comes from (the variable `agent serve` reads).
const TWILIO_TOKEN_ENV: &str = "TWILIO_AUTH_TOKEN";
/// Where the fake platform's webhook secret comes from (the variable `agent serve` reads).
const WEBHOOK_SECRET_ENV: &str = "OPENAI_WEBHOOK_SECRET";
/// The caller of incoming calls.
const CALLER: &str = "+15550111";

/// Which fake phone network to serve.
pub enum Network<'a> {
    /// Twilio: incoming calls to `number`, and the REST API.
    Twilio {
        /// The called number of incoming calls.
        number: &'a str,
    },
    /// The OpenAI platform: SIP calls to `sip_user`.
    Platform {
        /// The SIP user of incoming calls.
        sip_user: &'a str,
    },
}

/// Serves `network` for the server at `serve_url` until Ctrl-C; `server` is the scripted
/// model's config (its scenario made a phone call), on `port` with Twilio (0: any free one;
/// the platform's sideband always takes a free one).
pub async fn run(
    network: Network<'_>,
    serve_url: &str,
    server: ServerConfig,
    scenario: &Scenario,
    agent_file: &str,
    port: u16,
) -> anyhow::Result<()> {
    let addr = loopback_addr(serve_url)?;
    let serve_url = serve_url.trim_end_matches('/');
    let turns = script::caller_turns(scenario);
    match network {
        Network::Twilio { number } => {
            let token = shared_secret(
                TWILIO_TOKEN_ENV,
                "--twilio signs its webhooks with the token `agent serve` checks: export TWILIO_AUTH_TOKEN=<any test value> in the shells of both",
            )?;
            let scripted = PlaylistServer::start(vec![server], port)
                .context("cannot start the scripted Realtime server on 127.0.0.1")?;
            let twilio = FakeTwilio::new(addr, serve_url, &token);
            let rest = twilio.start_rest().await?;
            rest.answer_with(script::twilio_script(&turns), script::call_deadline(&turns));
            crate::output::outln!("{}", scripted.url());
            crate::output::errln!(
                "fake Twilio for the server at {serve_url} (its public_base_url), signing with ${TWILIO_TOKEN_ENV}\n\
                 start the server:  agent serve --config serve.toml --url {} --twilio-api-base {}\n\
                 \x20 (serve.toml: public_base_url = \"{serve_url}\", a [[route]] with numbers = [\"{number}\"])\n\
                 place a call:      press Enter here (an incoming call to {number}), or an outbound one:\n\
                 \x20 TWILIO_ACCOUNT_SID={ACCOUNT_SID} agent call {agent_file} --to +15550123 --from {number} --serve-url {serve_url} --twilio-api-base {}\n\
                 Ctrl-C to stop.",
                scripted.url(),
                rest.api_base(),
                rest.api_base()
            );
            let mut reported = 0;
            let (twilio, turns) = (&twilio, &turns);
            calls_until_ctrl_c(
                move || twilio_call(twilio, number, turns),
                || reported = report_placed(&rest, reported),
            )
            .await;
            for violation in scripted.violations() {
                crate::output::errln!("client mistake: {violation}");
            }
            scripted.shutdown().await;
        }
        Network::Platform { sip_user } => {
            let secret = shared_secret(
                WEBHOOK_SECRET_ENV,
                "--platform signs its webhooks with the secret `agent serve` checks: export OPENAI_WEBHOOK_SECRET=whsec_$(openssl rand -base64 32) in the shells of both",
            )?;
            if !secret.starts_with("whsec_") {
                bail!(
                    "{WEBHOOK_SECRET_ENV} must be a whsec_... secret, e.g. whsec_$(openssl rand -base64 32)"
                );
            }
            let steps = script::responses_per_turn(scenario);
            let platform = FakePlatform::start(server, SidebandDrop::CallSurvives, &secret, None)
                .context("cannot start the fake OpenAI platform on 127.0.0.1")?;
            crate::output::outln!("{}", platform.realtime_url());
            crate::output::errln!(
                "fake OpenAI platform for the server at {serve_url}, signing webhooks with ${WEBHOOK_SECRET_ENV}\n\
                 start the server:  agent serve --config serve.toml --url {} --api-base {}\n\
                 \x20 (serve.toml: a [[route]] with sip_users = [\"{sip_user}\"])\n\
                 place a call:      press Enter here (a SIP call to sip:{sip_user}@sip.api.openai.com, webhook to {serve_url}/openai/webhook)\n\
                 WebRTC calls:      POST {api}/v1/realtime/client_secrets, then POST {api}/v1/realtime/calls with the SDP offer\n\
                 \x20 (application/sdp with the secret, or multipart/form-data sdp + session); sidebands attach with ?call_id=\n\
                 {media}\
                 Ctrl-C to stop.",
                platform.realtime_url(),
                platform.api_base(),
                api = platform.api_base(),
                media = if cfg!(feature = "webrtc-mock") {
                    ""
                } else {
                    "  (this build has no WebRTC media peer: offers get 501; rebuild with --features webrtc-mock)\n"
                }
            );
            let (network, turns, steps) = (&platform, &turns, &steps);
            calls_until_ctrl_c(
                move || async move {
                    let problems = sip_call(network, addr, sip_user, turns, steps).await;
                    report_call("SIP call", &problems);
                },
                || {},
            )
            .await;
            for violation in platform.sideband().violations().await {
                crate::output::errln!("client mistake: {violation}");
            }
            platform.shutdown().await;
        }
    }
    Ok(())
}

/// Places a call (`place`) per line on stdin until Ctrl-C; `tick` runs twice a second while
/// no call is being placed. A closed stdin places no more calls, and the rest goes on.
async fn calls_until_ctrl_c<F: std::future::Future<Output = ()>>(
    mut place: impl FnMut() -> F,
    mut tick: impl FnMut(),
) {
    let mut lines = crate::terminal::stdin_lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            line = lines.recv(), if stdin_open => match line {
                Some(_) => place().await,
                None => stdin_open = false,
            },
            () = tokio::time::sleep(Duration::from_millis(500)) => tick(),
        }
    }
}

/// An incoming Twilio call to `number`, the caller playing `turns`.
async fn twilio_call(twilio: &FakeTwilio, number: &str, turns: &[CallerTurn]) {
    let sid = format!("CA{}", super::call::random_hex(16));
    let spec = CallSpec {
        deadline: script::call_deadline(turns),
        ..CallSpec::new(&sid, CALLER, number, script::twilio_script(turns))
    };
    crate::output::errln!("calling {number} (call {sid})…");
    let problems = match twilio.call(&spec).await {
        Ok(record) => {
            crate::output::errln!(
                "the caller heard {:.1} s of the agent{}",
                record.heard_ms() as f64 / 1000.0,
                if record.ended_by_update {
                    "; the agent ended the call"
                } else {
                    ""
                }
            );
            Vec::new()
        }
        Err(err) => vec![err.to_string()],
    };
    report_call("call", &problems);
}

fn report_call(what: &str, problems: &[String]) {
    if problems.is_empty() {
        crate::output::errln!("{what} over; Enter for another, Ctrl-C to stop");
    } else {
        crate::output::errln!("{what} failed: {}", problems.join("; "));
    }
}

/// Prints the calls placed through the REST API that ended since `reported`; returns how many
/// are reported now.
fn report_placed(rest: &TwilioRest, reported: usize) -> usize {
    let placed = rest.placed();
    let mut count = reported;
    for call in placed.iter().skip(reported) {
        if !matches!(call.status.as_str(), "completed" | "busy" | "failed") {
            break;
        }
        crate::output::errln!(
            "outbound call {} to {}: {}{}",
            call.call_sid,
            call.to,
            call.status,
            call.error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        count += 1;
    }
    count
}

fn shared_secret(variable: &str, hint: &str) -> anyhow::Result<String> {
    match std::env::var(variable) {
        Ok(value) if !value.trim().is_empty() => {
            let value = value.trim().to_owned();
            agent_core::redact::register_secret(&value);
            Ok(value)
        }
        _ => bail!("{variable} is not set: {hint}"),
    }
}

/// The address of `serve_url`, which must be `http://` on this machine with a port: the fake
/// network only ever calls loopback.
fn loopback_addr(serve_url: &str) -> anyhow::Result<SocketAddr> {
    let refused = || {
        anyhow::anyhow!(
            "--serve-url {serve_url}: give the http:// URL of an `agent serve` on this machine, with its port (e.g. http://127.0.0.1:8080); it must be its public_base_url"
        )
    };
    let url = url::Url::parse(serve_url).map_err(|_| refused())?;
    let port = url.port().ok_or_else(refused)?;
    let ip: std::net::IpAddr = match url.host() {
        Some(url::Host::Domain("localhost")) => [127, 0, 0, 1].into(),
        Some(url::Host::Ipv4(ip)) => ip.into(),
        Some(url::Host::Ipv6(ip)) => ip.into(),
        _ => return Err(refused()),
    };
    if url.scheme() != "http" || !ip.is_loopback() || url.path() != "/" {
        return Err(refused());
    }
    Ok(SocketAddr::new(ip, port))
}

/// The number `agent call --offline` answers, as the default of `--number`.
pub const DEFAULT_NUMBER: &str = AGENT_NUMBER;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_server_on_this_machine_is_called() {
        assert_eq!(
            loopback_addr("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert_eq!(loopback_addr("http://localhost:9/").unwrap().port(), 9);
        for bad in [
            "https://127.0.0.1:8080",
            "http://voice.example.com:8080",
            "http://127.0.0.1",
            "http://127.0.0.1:8080/x",
            "nonsense",
        ] {
            assert!(loopback_addr(bad).is_err(), "{bad}");
        }
    }
}
