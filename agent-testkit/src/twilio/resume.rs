//! Twilio's side of `<Connect action>`: when a call's media stream ends without the call
//! being over (the server's node died, or the server closed the stream), Twilio requests the
//! `action` URL with the call's parameters, signed, and runs the TwiML it gets back:
//! `<Connect><Stream>` opens a new stream, `<Pause>` waits, `<Redirect>` requests again,
//! `<Hangup/>` ends the call. The fake does the same, with a bounded number of requests and
//! pauses that tests may shorten.

use std::time::Duration;

use super::{
    CallRecord, CallSpec, CallerStep, FakeTwilio, FakeTwilioError, Signing, StreamStart, Twiml,
    VoiceAnswer, attribute, element, http, parse_twiml, url_encode,
};

/// How the fake follows a call's `action` once its stream dropped.
#[derive(Debug, Clone)]
pub struct Resume {
    /// What the caller does on each new stream.
    pub script: Vec<CallerStep>,
    /// How long one second of `<Pause length>` lasts (Twilio: a second; tests shorten it).
    pub pause_second: Duration,
    /// The most action and redirect requests in one call.
    pub max_requests: usize,
}

impl Resume {
    /// Runs `script` on every new stream, with real-time pauses and at most 30 requests.
    pub fn new(script: Vec<CallerStep>) -> Self {
        Resume {
            script,
            pause_second: Duration::from_secs(1),
            max_requests: 30,
        }
    }
}

/// One request Twilio made to an `action` or `<Redirect>` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRequest {
    /// The URL requested.
    pub url: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The TwiML answered.
    pub twiml: String,
}

/// A call followed through every stream it had.
#[derive(Debug, Clone, Default)]
pub struct ResumedCallRecord {
    /// Each stream, in order.
    pub streams: Vec<CallRecord>,
    /// Each action and redirect request, in order.
    pub requests: Vec<ActionRequest>,
    /// The call ended with `<Hangup/>` from an action request.
    pub hung_up_by_action: bool,
}

/// What an action's TwiML says to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionAnswer {
    /// `<Connect action=...><Stream url=...>`.
    Connect {
        /// The stream's URL.
        url: String,
        /// Its `<Parameter>`s.
        parameters: std::collections::BTreeMap<String, String>,
        /// The new `action`, if any.
        action: Option<String>,
    },
    /// `<Pause length=N/>` (0 without one), then `<Redirect>` to the URL.
    Redirect {
        /// Seconds of `<Pause>`.
        pause_secs: u64,
        /// Where to request next.
        url: String,
    },
    /// `<Hangup/>`.
    HangUp,
    /// Anything else.
    Other,
}

/// The `action` of a TwiML answer's `<Connect>`, if any.
pub fn connect_action(xml: &str) -> Option<String> {
    element(xml, "Connect").and_then(|tag| attribute(tag, "action"))
}

/// Reads an action request's TwiML.
pub fn parse_action_answer(xml: &str) -> ActionAnswer {
    if xml.contains("<Hangup/>") || xml.contains("<Hangup />") {
        return ActionAnswer::HangUp;
    }
    if let Twiml::Connect { url, parameters } = parse_twiml(xml) {
        return ActionAnswer::Connect {
            url,
            parameters,
            action: connect_action(xml),
        };
    }
    let Some(start) = xml.find("<Redirect") else {
        return ActionAnswer::Other;
    };
    let rest = &xml[start..];
    let (Some(open_end), Some(close)) = (rest.find('>'), rest.find("</Redirect>")) else {
        return ActionAnswer::Other;
    };
    if close < open_end {
        return ActionAnswer::Other;
    }
    let url = rest[open_end + 1..close]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    let pause_secs = element(xml, "Pause")
        .and_then(|tag| attribute(tag, "length"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    ActionAnswer::Redirect { pause_secs, url }
}

impl FakeTwilio {
    /// `POST` Twilio's action request for `call` to `url` (an absolute loopback URL, as TwiML
    /// names it), signed as `signing` says: refusal tests send it alone.
    pub async fn action(
        &self,
        url: &str,
        call: &CallSpec,
        signing: Signing,
    ) -> Result<VoiceAnswer, FakeTwilioError> {
        let (addr, _base, path) =
            super::outbound::loopback_http(url).map_err(FakeTwilioError::Protocol)?;
        let params = [
            ("AccountSid", super::ACCOUNT_SID),
            ("CallSid", call.call_sid.as_str()),
            ("From", call.from.as_str()),
            ("To", call.to.as_str()),
            ("CallStatus", "in-progress"),
            ("Direction", "inbound"),
        ];
        let token = match signing {
            Signing::WrongToken => "not-the-auth-token",
            _ => self.auth_token.as_str(),
        };
        let signature = super::sign(token, url, &params);
        let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
        if signing != Signing::Missing {
            headers.push(("x-twilio-signature", &signature));
        }
        let body = url_encode(&params);
        let answer = http::request(
            addr,
            "POST",
            &path,
            &headers,
            body.as_bytes(),
            super::WEBHOOK_DEADLINE,
        )
        .await?;
        let twiml = parse_twiml(&answer.body);
        Ok(VoiceAnswer { answer, twiml })
    }

    /// A whole call, as [`FakeTwilio::call`], that Twilio keeps going when its stream drops:
    /// the `action` of the `<Connect>` is requested and followed (see the module), and each
    /// new stream runs `resume.script`. Ends when a stream ends by the caller's script or a
    /// REST update, when an action answers `<Hangup/>`, or when a stream drops with no
    /// `action` to request.
    pub async fn call_resuming(
        &self,
        spec: &CallSpec,
        resume: &Resume,
    ) -> Result<ResumedCallRecord, FakeTwilioError> {
        let params = [
            ("AccountSid", super::ACCOUNT_SID),
            ("CallSid", spec.call_sid.as_str()),
            ("From", spec.from.as_str()),
            ("To", spec.to.as_str()),
            ("CallStatus", "ringing"),
            ("Direction", "inbound"),
        ];
        let answer = self.voice(&spec.path, &params, Signing::Valid).await?;
        let Twiml::Connect {
            mut url,
            mut parameters,
        } = answer.twiml
        else {
            return Err(FakeTwilioError::Protocol(format!(
                "the webhook did not connect a stream: {} {}",
                answer.answer.status, answer.answer.body
            )));
        };
        let mut action = connect_action(&answer.answer.body);
        let mut script = spec.script.clone();
        let mut record = ResumedCallRecord::default();
        loop {
            let start = StreamStart::new(&spec.call_sid, parameters.clone());
            let stream = self.stream(&url, start, &script, spec.deadline).await?;
            let dropped = stream.ended_by_server && !stream.ended_by_update;
            record.streams.push(stream);
            let Some(mut next) = action.take().filter(|_| dropped) else {
                return Ok(record);
            };
            loop {
                if record.requests.len() >= resume.max_requests {
                    return Err(FakeTwilioError::Protocol(format!(
                        "over {} action requests: {:?}",
                        resume.max_requests, record.requests
                    )));
                }
                let answer = self.action(&next, spec, Signing::Valid).await?;
                record.requests.push(ActionRequest {
                    url: next.clone(),
                    status: answer.answer.status,
                    twiml: answer.answer.body.clone(),
                });
                match parse_action_answer(&answer.answer.body) {
                    ActionAnswer::Connect {
                        url: new_url,
                        parameters: new_parameters,
                        action: new_action,
                    } => {
                        (url, parameters, action) = (new_url, new_parameters, new_action);
                        script = resume.script.clone();
                        break;
                    }
                    ActionAnswer::Redirect { pause_secs, url } => {
                        let pause = resume
                            .pause_second
                            .saturating_mul(u32::try_from(pause_secs.min(60)).unwrap_or(60));
                        tokio::time::sleep(pause).await;
                        next = url;
                    }
                    ActionAnswer::HangUp => {
                        record.hung_up_by_action = true;
                        return Ok(record);
                    }
                    ActionAnswer::Other => {
                        return Err(FakeTwilioError::Protocol(format!(
                            "an action answer Twilio could not follow: {} {}",
                            answer.answer.status, answer.answer.body
                        )));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_action_answers() {
        let connect = r#"<?xml version="1.0"?><Response><Connect action="http://127.0.0.1:1/twilio/resume?attempt=1" method="POST"><Stream url="ws://127.0.0.1:1/twilio/media-stream"><Parameter name="token" value="t"/></Stream></Connect></Response>"#;
        assert_eq!(
            connect_action(connect).as_deref(),
            Some("http://127.0.0.1:1/twilio/resume?attempt=1")
        );
        assert!(matches!(
            parse_action_answer(connect),
            ActionAnswer::Connect {
                action: Some(_),
                ..
            }
        ));
        assert_eq!(
            parse_action_answer(
                r#"<Response><Pause length="2"/><Redirect method="POST">http://127.0.0.1:1/twilio/resume?attempt=2&amp;x=1</Redirect></Response>"#
            ),
            ActionAnswer::Redirect {
                pause_secs: 2,
                url: "http://127.0.0.1:1/twilio/resume?attempt=2&x=1".into()
            }
        );
        assert_eq!(
            parse_action_answer("<Response><Hangup/></Response>"),
            ActionAnswer::HangUp
        );
        assert_eq!(
            parse_action_answer("<Response><Say>x</Say></Response>"),
            ActionAnswer::Other
        );
    }
}
