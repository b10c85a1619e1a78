//! A fake Twilio: the phone network's side of `agent serve`, on loopback.
//!
//! It does what Twilio does for an incoming call: a signed `POST /twilio/voice` (form
//! parameters, `X-Twilio-Signature` over the public URL), then, when the TwiML answer connects
//! a stream, the media-stream WebSocket with the `<Parameter>`s handed back in
//! `start.customParameters`. The caller's side is a script ([`CallerStep`]): 20 ms μ-law
//! frames in real time (a tone while speaking, silence otherwise), keypad digits, raw frames
//! for hostile tests. The audio the server sends is "played" at real time: each mark is echoed
//! once the audio queued before it has played, `clear` drops the queue and echoes pending marks
//! at once, as Twilio does. [`CallRecord`] keeps what the caller heard.
//!
//! [`FakeTwilio::start_rest`] adds Twilio's REST API for call control ([`TwilioRest`]): a
//! hang-up or a `<Dial>` ends the live call's stream and is recorded with what the caller had
//! still to hear. Its `Calls.json` places outbound calls ([`PlacedCall`]): the server the
//! call's `Url` names gets the signed webhook of an answered call, and the called party runs
//! a script on the stream.
//!
//! [`FakeTwilio::call_resuming`] plays Twilio's `<Connect action>`: when a stream drops
//! while the call is not over (the server's node died), the action URL is requested, signed,
//! and its TwiML followed (`<Connect><Stream>`, `<Pause>`, `<Redirect>`, `<Hangup/>`), so a
//! test sees the call come back on another node ([`Resume`]).
//!
//! Refusal tests use the pieces alone: [`FakeTwilio::voice`] with a wrong or missing
//! signature, [`FakeTwilio::stream`] with a stolen, replayed or missing token.

mod caller;
pub mod http;
mod outbound;
pub mod rest;
mod resume;

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use base64::Engine as _;
pub use caller::{CallRecord, CallerStep, StreamStart};
pub use http::HttpAnswer;
pub use outbound::PlacedCall;
pub use rest::{CallUpdate, TwilioRest};
pub use resume::{
    ActionAnswer, ActionRequest, Resume, ResumedCallRecord, connect_action, parse_action_answer,
};

/// The account every fake call belongs to.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";

/// How long a webhook request may take.
const WEBHOOK_DEADLINE: Duration = Duration::from_secs(10);

/// What went wrong on the fake Twilio's side (not a refusal by the server: those are results).
#[derive(Debug, thiserror::Error)]
pub enum FakeTwilioError {
    /// A socket failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A wait passed its deadline.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server's answer was not what Twilio could use.
    #[error("{0}")]
    Protocol(String),
}

/// How the voice webhook request is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// As Twilio signs: over the public URL, with the right token.
    Valid,
    /// With another auth token.
    WrongToken,
    /// Over the URL the request was really sent to (`Host`), not the public one.
    HostUrl,
    /// No `X-Twilio-Signature` header.
    Missing,
}

/// What TwiML said to do with the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Twiml {
    /// `<Connect><Stream url=...>` with its parameters.
    Connect {
        /// The stream's WebSocket URL.
        url: String,
        /// The `<Parameter>`s, by name.
        parameters: BTreeMap<String, String>,
    },
    /// `<Reject reason=...>`.
    Reject {
        /// `busy` or `rejected`.
        reason: String,
    },
    /// Anything else (kept as text in [`VoiceAnswer::answer`]).
    Other,
}

/// The server's answer to the voice webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceAnswer {
    /// The HTTP answer.
    pub answer: HttpAnswer,
    /// Its TwiML, parsed.
    pub twiml: Twiml,
}

/// One incoming call to place.
#[derive(Debug, Clone)]
pub struct CallSpec {
    /// `CallSid`.
    pub call_sid: String,
    /// The caller's number.
    pub from: String,
    /// The called number.
    pub to: String,
    /// The webhook path, `/twilio/voice` by default.
    pub path: String,
    /// What the caller does once the stream is up.
    pub script: Vec<CallerStep>,
    /// The whole stream must be over by then.
    pub deadline: Duration,
}

impl CallSpec {
    /// A call from `from` to `to` doing `script`, within 30 s.
    pub fn new(call_sid: &str, from: &str, to: &str, script: Vec<CallerStep>) -> Self {
        CallSpec {
            call_sid: call_sid.into(),
            from: from.into(),
            to: to.into(),
            path: "/twilio/voice".into(),
            script,
            deadline: Duration::from_secs(30),
        }
    }
}

/// The fake Twilio, pointed at one server.
#[derive(Debug, Clone)]
pub struct FakeTwilio {
    server: SocketAddr,
    public_base_url: String,
    auth_token: String,
    live: rest::LiveCalls,
}

impl FakeTwilio {
    /// Twilio for the server at `server`, which it knows as `public_base_url`, signing with
    /// `auth_token`.
    pub fn new(server: SocketAddr, public_base_url: &str, auth_token: &str) -> Self {
        FakeTwilio {
            server,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
            auth_token: auth_token.to_owned(),
            live: rest::LiveCalls::default(),
        }
    }

    /// Starts Twilio's REST API for this fake's calls, on loopback, with the fake's account
    /// and auth token.
    pub async fn start_rest(&self) -> std::io::Result<TwilioRest> {
        TwilioRest::start(ACCOUNT_SID, &self.auth_token, self.live.clone()).await
    }

    /// `POST path` with these form parameters, signed as `signing` says.
    pub async fn voice(
        &self,
        path: &str,
        params: &[(&str, &str)],
        signing: Signing,
    ) -> Result<VoiceAnswer, FakeTwilioError> {
        let body: String = url_encode(params);
        let url = match signing {
            Signing::HostUrl => format!("http://{}{path}", self.server),
            _ => format!("{}{path}", self.public_base_url),
        };
        let token = match signing {
            Signing::WrongToken => "not-the-auth-token",
            _ => self.auth_token.as_str(),
        };
        let signature = sign(token, &url, params);
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if signing != Signing::Missing {
            headers.push(("x-twilio-signature", &signature));
        }
        let answer = http::request(
            self.server,
            "POST",
            path,
            &headers,
            body.as_bytes(),
            WEBHOOK_DEADLINE,
        )
        .await?;
        let twiml = parse_twiml(&answer.body);
        Ok(VoiceAnswer { answer, twiml })
    }

    /// A whole call: the signed webhook, then the stream it connects, running the script.
    /// A TwiML answer that connects no stream is an error naming the answer.
    pub async fn call(&self, spec: &CallSpec) -> Result<CallRecord, FakeTwilioError> {
        self.place(spec, "inbound").await
    }

    /// [`FakeTwilio::call`] with Twilio's `Direction` (`inbound`, or `outbound-api` for a call
    /// created through the REST API).
    async fn place(&self, spec: &CallSpec, direction: &str) -> Result<CallRecord, FakeTwilioError> {
        let params = [
            ("AccountSid", ACCOUNT_SID),
            ("CallSid", spec.call_sid.as_str()),
            ("From", spec.from.as_str()),
            ("To", spec.to.as_str()),
            ("CallStatus", "ringing"),
            ("Direction", direction),
        ];
        let answer = self.voice(&spec.path, &params, Signing::Valid).await?;
        let Twiml::Connect { url, parameters } = answer.twiml else {
            return Err(FakeTwilioError::Protocol(format!(
                "the webhook did not connect a stream: {} {}",
                answer.answer.status, answer.answer.body
            )));
        };
        let start = StreamStart::new(&spec.call_sid, parameters);
        self.stream(&url, start, &spec.script, spec.deadline).await
    }

    /// Opens the media stream at `url` (as a TwiML `<Stream url>` names it), sends
    /// `connected` and `start`, and runs `script` in real time until it ends, the server
    /// closes, or `deadline` passes.
    pub async fn stream(
        &self,
        url: &str,
        start: StreamStart,
        script: &[CallerStep],
        deadline: Duration,
    ) -> Result<CallRecord, FakeTwilioError> {
        // Whatever a server's TwiML says, the fake never leaves this machine.
        outbound::check_loopback_ws(url)?;
        let (end, ended) = tokio::sync::oneshot::channel();
        let sid = start.call_sid.clone();
        rest::lock_live(&self.live).insert(sid.clone(), end);
        let record = caller::run(url, start, script, deadline, ended).await;
        rest::lock_live(&self.live).remove(&sid);
        record
    }
}

/// `X-Twilio-Signature` for `url` and `params`, as Twilio computes it.
pub fn sign(auth_token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut data = url.to_owned();
    for (name, value) in sorted {
        data.push_str(name);
        data.push_str(value);
    }
    let key = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        auth_token.as_bytes(),
    );
    let tag = ring::hmac::sign(&key, data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

fn url_encode(params: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                b => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Reads the TwiML verbs the fake acts on.
pub fn parse_twiml(xml: &str) -> Twiml {
    if let Some(reject) = element(xml, "Reject") {
        return Twiml::Reject {
            reason: attribute(reject, "reason").unwrap_or_else(|| "rejected".into()),
        };
    }
    let Some(url) = element(xml, "Stream").and_then(|s| attribute(s, "url")) else {
        return Twiml::Other;
    };
    let mut parameters = BTreeMap::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<Parameter ") {
        rest = &rest[at + 1..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        if let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value")) {
            parameters.insert(name, value);
        }
    }
    Twiml::Connect { url, parameters }
}

/// The attributes of the first `<name ...>` tag.
fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name} "))?;
    let tag = &xml[start..];
    Some(&tag[..tag.find('>')?])
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(
        tag[start..start + len]
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_twilio() {
        let params = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ];
        assert_eq!(
            sign(
                "12345",
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                &params
            ),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
        assert_eq!(url_encode(&[("To", "+1 5")]), "To=%2B1+5");
    }

    #[test]
    fn reads_connect_and_reject() {
        let xml = r#"<?xml version="1.0"?><Response><Connect><Stream url="wss://h/twilio/media-stream"><Parameter name="token" value="a&amp;b"/></Stream></Connect></Response>"#;
        assert_eq!(
            parse_twiml(xml),
            Twiml::Connect {
                url: "wss://h/twilio/media-stream".into(),
                parameters: BTreeMap::from([("token".into(), "a&b".into())]),
            }
        );
        assert_eq!(
            parse_twiml(r#"<Response><Reject reason="busy"/></Response>"#),
            Twiml::Reject {
                reason: "busy".into()
            }
        );
        assert_eq!(
            parse_twiml("<Response><Say>hi</Say></Response>"),
            Twiml::Other
        );
    }
}
