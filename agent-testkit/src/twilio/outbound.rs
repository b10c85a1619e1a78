//! Calls placed through the fake REST API (`POST /2010-04-01/Accounts/{AccountSid}/Calls.json`,
//! as `agent call --to` does), and their status (`GET .../Calls/{CallSid}.json`).
//!
//! The request is checked as Twilio checks it: `To` and `From` are phone numbers (or `sip:` /
//! `client:` addresses), and exactly one of `Url` and `Twiml` says what to do once the call
//! is answered. Then the call is answered at once and placed like an incoming one, with
//! `Direction=outbound-api`: the server the `Url` names gets the signed webhook, and the stream
//! its TwiML connects runs the called party's script ([`super::TwilioRest::answer_with`]).
//! Only servers on this machine are called: a `Url` or stream elsewhere fails the call, so no
//! test ever reaches the internet.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::json;

use super::{
    CallRecord, CallSpec, CallerStep, FakeTwilio, FakeTwilioError, StreamStart, Twiml, parse_twiml,
    rest::{NOT_FOUND, RestState, lock},
};

/// How long the called party takes to pick up.
const RINGING: Duration = Duration::from_millis(100);

/// One call placed through `Calls.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedCall {
    /// The call's SID, as the creation answered it.
    pub call_sid: String,
    /// The called number.
    pub to: String,
    /// The calling number.
    pub from: String,
    /// `Url`, when the request gave one.
    pub url: Option<String>,
    /// `Twiml`, when the request gave it.
    pub twiml: Option<String>,
    /// Twilio's call status: `queued`, `in-progress`, then `completed`, `busy` or `failed`.
    pub status: String,
    /// What the called party heard, once the call is over.
    pub record: Option<CallRecord>,
    /// Why the call failed, when it did.
    pub error: Option<String>,
}

/// The calls placed so far, and what the called party does.
#[derive(Debug)]
pub(super) struct Outbound {
    pub(super) placed: Mutex<Vec<PlacedCall>>,
    pub(super) answer: Mutex<(Vec<CallerStep>, Duration)>,
}

impl Default for Outbound {
    fn default() -> Self {
        let listen = vec![
            CallerStep::WaitAnswer {
                quiet: Duration::from_millis(800),
                within: Duration::from_secs(20),
            },
            CallerStep::HangUp,
        ];
        Outbound {
            placed: Mutex::new(Vec::new()),
            answer: Mutex::new((listen, Duration::from_secs(60))),
        }
    }
}

fn bad_request(code: u32, message: &str) -> (&'static str, String) {
    (
        "400 Bad Request",
        json!({"code": code, "message": message, "status": 400}).to_string(),
    )
}

/// A phone number in E.164 (`+` and up to 15 digits), or a `sip:` or `client:` address.
fn valid_party(text: &str) -> bool {
    let e164 = text
        .strip_prefix('+')
        .is_some_and(|d| (1..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
    e164 || (text.starts_with("sip:") || text.starts_with("client:")) && text.len() > 6
}

/// `POST .../Calls.json`: checks the request, records the call as queued, answers 201 and
/// places the call on its own task.
pub(super) fn create(
    state: &Arc<RestState>,
    params: &HashMap<String, String>,
) -> (&'static str, String) {
    let field = |name: &str| params.get(name).filter(|v| !v.is_empty()).cloned();
    let Some(to) = field("To").filter(|to| valid_party(to)) else {
        return bad_request(21201, "No valid 'To' number is specified");
    };
    let Some(from) = field("From").filter(|from| valid_party(from)) else {
        return bad_request(21603, "A valid 'From' phone number is required.");
    };
    let (url, twiml) = (field("Url"), field("Twiml"));
    match (&url, &twiml) {
        (Some(_), Some(_)) => return bad_request(21205, "Give either Url or Twiml, not both"),
        (None, None) => return bad_request(21205, "Url or Twiml is required"),
        _ => {}
    }
    if field("Method").is_some_and(|m| !m.eq_ignore_ascii_case("POST")) {
        return bad_request(
            21205,
            "The fake Twilio fetches the call's Url with POST only",
        );
    }
    let call_sid = new_call_sid();
    let call = PlacedCall {
        call_sid: call_sid.clone(),
        to: to.clone(),
        from: from.clone(),
        url,
        twiml,
        status: "queued".into(),
        record: None,
        error: None,
    };
    let answer = status_json(state, &call);
    lock(&state.outbound.placed).push(call.clone());
    tokio::spawn(place(Arc::clone(state), call));
    ("201 Created", answer)
}

/// `GET .../Calls/{CallSid}.json`: the call's status.
pub(super) fn fetch(state: &RestState, call_sid: &str) -> (&'static str, String) {
    let placed = lock(&state.outbound.placed);
    match placed.iter().find(|c| c.call_sid == call_sid) {
        Some(call) => ("200 OK", status_json(state, call)),
        None => ("404 Not Found", NOT_FOUND.into()),
    }
}

fn status_json(state: &RestState, call: &PlacedCall) -> String {
    json!({
        "sid": call.call_sid,
        "account_sid": state.account_sid,
        "to": call.to,
        "from": call.from,
        "status": call.status,
        "direction": "outbound-api",
        "uri": format!("/2010-04-01/Accounts/{}/Calls/{}.json", state.account_sid, call.call_sid),
    })
    .to_string()
}

fn new_call_sid() -> String {
    let mut bytes = [0u8; 16];
    let random = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes);
    if random.is_err() {
        // Only uniqueness matters here: the time will do.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("CA{hex}")
}

/// Answers the call and runs it to its end, updating its status as Twilio would.
async fn place(state: Arc<RestState>, call: PlacedCall) {
    tokio::time::sleep(RINGING).await;
    set(&state, &call.call_sid, |c| c.status = "in-progress".into());
    let (script, deadline) = lock(&state.outbound.answer).clone();
    let outcome = run(&state, &call, script, deadline).await;
    set(&state, &call.call_sid, |c| match outcome {
        Ok(record) => {
            c.status = "completed".into();
            c.record = Some(record);
        }
        Err(Ended::Busy) => c.status = "busy".into(),
        Err(Ended::Failed(why)) => {
            c.status = "failed".into();
            c.error = Some(why);
        }
    });
}

enum Ended {
    Busy,
    Failed(String),
}

impl From<FakeTwilioError> for Ended {
    fn from(err: FakeTwilioError) -> Self {
        Ended::Failed(err.to_string())
    }
}

async fn run(
    state: &RestState,
    call: &PlacedCall,
    script: Vec<CallerStep>,
    deadline: Duration,
) -> Result<CallRecord, Ended> {
    if let Some(url) = &call.url {
        let (server, base, path) = loopback_http(url).map_err(Ended::Failed)?;
        let fake = FakeTwilio {
            server,
            public_base_url: base,
            auth_token: state.auth_token.clone(),
            live: state.live.clone(),
        };
        let spec = CallSpec {
            path,
            deadline,
            ..CallSpec::new(&call.call_sid, &call.from, &call.to, script)
        };
        return match fake.place(&spec, "outbound-api").await {
            Err(FakeTwilioError::Protocol(why)) if why.contains("reason=\"busy\"") => {
                Err(Ended::Busy)
            }
            other => Ok(other?),
        };
    }
    let twiml = call.twiml.as_deref().unwrap_or_default();
    let Twiml::Connect { url, parameters } = parse_twiml(twiml) else {
        return Err(Ended::Failed(format!(
            "the call's Twiml connects no stream: {twiml}"
        )));
    };
    let fake = FakeTwilio {
        server: SocketAddr::from(([127, 0, 0, 1], 0)),
        public_base_url: String::new(),
        auth_token: state.auth_token.clone(),
        live: state.live.clone(),
    };
    let start = StreamStart::new(&call.call_sid, parameters);
    Ok(fake.stream(&url, start, &script, deadline).await?)
}

fn set(state: &RestState, call_sid: &str, change: impl FnOnce(&mut PlacedCall)) {
    if let Some(call) = lock(&state.outbound.placed)
        .iter_mut()
        .find(|c| c.call_sid == call_sid)
    {
        change(call);
    }
}

/// `host:port` when the host is this machine (`localhost` or a loopback address), read
/// without any name lookup.
fn loopback_addr(authority: &str) -> Option<SocketAddr> {
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        return addr.ip().is_loopback().then_some(addr);
    }
    let port = authority.strip_prefix("localhost:")?.parse::<u16>().ok()?;
    Some(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// An `http://` URL on this machine: the address to connect to, the base (scheme and
/// authority, as signed) and the path with its query.
pub(super) fn loopback_http(url: &str) -> Result<(SocketAddr, String, String), String> {
    let refused = || {
        format!(
            "the fake Twilio calls plain http:// servers on this machine only (localhost or a loopback address, with a port), not {url}"
        )
    };
    let rest = url.strip_prefix("http://").ok_or_else(refused)?;
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let addr = loopback_addr(authority).ok_or_else(refused)?;
    Ok((addr, format!("http://{authority}"), path.to_owned()))
}

/// A `ws://` URL on this machine, or why it is not one.
pub(super) fn check_loopback_ws(url: &str) -> Result<(), FakeTwilioError> {
    let on_loopback = url
        .strip_prefix("ws://")
        .and_then(|rest| loopback_addr(rest.split('/').next().unwrap_or(rest)))
        .is_some();
    if on_loopback {
        Ok(())
    } else {
        Err(FakeTwilioError::Protocol(format!(
            "the fake Twilio opens media streams on this machine only (ws://localhost:PORT or a loopback address), not {url}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_servers_on_this_machine_are_called() {
        let (addr, base, path) = loopback_http("http://127.0.0.1:8080/twilio/voice?x=1").unwrap();
        assert_eq!(addr.port(), 8080);
        assert_eq!(base, "http://127.0.0.1:8080");
        assert_eq!(path, "/twilio/voice?x=1");
        assert!(loopback_http("https://127.0.0.1:8080/twilio/voice").is_err());
        assert!(loopback_http("http://192.0.2.1:80/twilio/voice").is_err());
        assert!(check_loopback_ws("ws://127.0.0.1:9/twilio/media-stream").is_ok());
        assert!(check_loopback_ws("wss://voice.example.com/twilio/media-stream").is_err());
        assert!(check_loopback_ws("ws://192.0.2.1:80/twilio/media-stream").is_err());
        assert!(check_loopback_ws("ws://localhost:80/twilio/media-stream").is_ok());
        assert!(loopback_http("http://example.com:80/twilio/voice").is_err());
    }

    #[test]
    fn parties_are_numbers_or_addresses() {
        assert!(valid_party("+15550100"));
        assert!(valid_party("sip:support@example.com"));
        assert!(!valid_party("5550100"));
        assert!(!valid_party("+1555010012345678"));
        assert!(!valid_party("sip:"));
    }
}
