//! Twilio's REST API for call control: hang up (`<Hangup/>`) and transfer (`<Dial>`) by
//! updating the call with TwiML (`POST {api_base}/2010-04-01/Accounts/{AccountSid}/Calls/
//! {CallSid}.json`, HTTP Basic auth with the account SID and the auth token); and outbound
//! calls (`agent call --to`): created with `POST .../Calls.json`, followed with
//! `GET .../Calls/{CallSid}.json`.
//!
//! Each request has a deadline; a failure that may pass (no connection, HTTP 429 or 5xx) is
//! tried once more after a short pause, and that is the whole budget. Errors carry the
//! status and Twilio's message, never the credentials.

use std::{sync::Arc, time::Duration};

use agent_core::{agent::TransferDestination, session::Secret};
use async_trait::async_trait;

use crate::phone::{CallControl, CallControlError};

/// How long one request may take.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// Attempts per update.
const ATTEMPTS: u32 = 2;
/// The pause before the second attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(300);
/// The most of Twilio's answer quoted in an error.
const QUOTED: usize = 200;
const WHAT: &str = "Twilio's REST API";

/// The REST client shared by every Twilio call of the server.
#[derive(Debug)]
pub struct TwilioRest {
    client: reqwest::Client,
    api_base: String,
    auth_token: Secret,
}

impl TwilioRest {
    /// A client for `api_base` (e.g. `https://api.twilio.com`), signing in with `auth_token`.
    pub fn new(api_base: &str, auth_token: Secret) -> Result<Self, CallControlError> {
        agent_core::tls::ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(REQUEST_DEADLINE)
            .connect_timeout(REQUEST_DEADLINE)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| CallControlError::Unavailable(format!("no HTTP client: {err}")))?;
        Ok(TwilioRest {
            client,
            api_base: api_base.trim_end_matches('/').to_owned(),
            auth_token,
        })
    }

    /// Updates call `call_sid` of `account_sid` with `twiml`.
    async fn update(
        &self,
        account_sid: &str,
        call_sid: &str,
        twiml: &str,
    ) -> Result<(), CallControlError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{account_sid}/Calls/{call_sid}.json",
            self.api_base
        );
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Twiml", twiml)
            .finish();
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            if attempt > 1 {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
            let sent = self
                .client
                .post(&url)
                .basic_auth(account_sid, Some(self.auth_token.expose()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.clone())
                .send()
                .await;
            let error = match sent {
                Ok(answer) if answer.status().is_success() => return Ok(()),
                Ok(answer) => {
                    let status = answer.status().as_u16();
                    let text = answer.text().await.unwrap_or_default();
                    let error = CallControlError::Refused {
                        what: WHAT,
                        status,
                        message: text.chars().take(QUOTED).collect(),
                    };
                    if status != 429 && status < 500 {
                        return Err(error);
                    }
                    error
                }
                Err(err) => CallControlError::Unreachable {
                    what: WHAT,
                    reason: err.without_url().to_string(),
                },
            };
            tracing::warn!(call_sid, attempt, "a Twilio call update failed: {error}");
            last = Some(error);
        }
        Err(last.unwrap_or_else(|| CallControlError::Unavailable("no attempt was made".into())))
    }
}

/// A call as Twilio's REST API describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResource {
    /// The call's SID.
    pub sid: String,
    /// Twilio's status: `queued`, `ringing`, `in-progress`, then `completed`, `busy`,
    /// `failed`, `no-answer` or `canceled`.
    pub status: String,
}

impl CallResource {
    /// Whether nothing more happens to the call.
    pub fn is_over(&self) -> bool {
        matches!(
            self.status.as_str(),
            "completed" | "busy" | "failed" | "no-answer" | "canceled"
        )
    }
}

impl TwilioRest {
    /// Places a call from `from` to `to` in `account_sid`; when it is answered, Twilio fetches
    /// `url` (with POST) for what to do, e.g. a running server's `/twilio/voice`. One attempt
    /// only: a create tried again could ring a phone twice.
    pub async fn create_call(
        &self,
        account_sid: &str,
        to: &str,
        from: &str,
        url: &str,
    ) -> Result<CallResource, CallControlError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("To", to)
            .append_pair("From", from)
            .append_pair("Url", url)
            .append_pair("Method", "POST")
            .finish();
        let request = self
            .client
            .post(format!("{}.json", self.calls(account_sid)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.call_resource(account_sid, request).await
    }

    /// The call `call_sid` of `account_sid`, as it is now.
    pub async fn fetch_call(
        &self,
        account_sid: &str,
        call_sid: &str,
    ) -> Result<CallResource, CallControlError> {
        let request = self
            .client
            .get(format!("{}/{call_sid}.json", self.calls(account_sid)));
        self.call_resource(account_sid, request).await
    }

    fn calls(&self, account_sid: &str) -> String {
        format!("{}/2010-04-01/Accounts/{account_sid}/Calls", self.api_base)
    }

    async fn call_resource(
        &self,
        account_sid: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<CallResource, CallControlError> {
        let answer = request
            .basic_auth(account_sid, Some(self.auth_token.expose()))
            .send()
            .await
            .map_err(|err| CallControlError::Unreachable {
                what: WHAT,
                reason: err.without_url().to_string(),
            })?;
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if !(200..300).contains(&status) {
            // Twilio's errors are JSON with a `message`; anything else is quoted shortened.
            let message = json["message"]
                .as_str()
                .map_or_else(|| text.chars().take(QUOTED).collect(), str::to_owned);
            return Err(CallControlError::Refused {
                what: WHAT,
                status,
                message,
            });
        }
        match (json["sid"].as_str(), json["status"].as_str()) {
            (Some(sid), Some(status)) => Ok(CallResource {
                sid: sid.to_owned(),
                status: status.to_owned(),
            }),
            _ => Err(CallControlError::Unavailable(format!(
                "{WHAT} answered a call without its sid and status: {}",
                text.chars().take(QUOTED).collect::<String>()
            ))),
        }
    }
}

/// One call's control over Twilio.
#[derive(Debug, Clone)]
pub struct TwilioCall {
    rest: Arc<TwilioRest>,
    account_sid: String,
    call_sid: String,
}

impl TwilioCall {
    /// Control of `call_sid` in `account_sid` (both from the signed voice webhook).
    pub fn new(rest: Arc<TwilioRest>, account_sid: &str, call_sid: &str) -> Self {
        TwilioCall {
            rest,
            account_sid: account_sid.to_owned(),
            call_sid: call_sid.to_owned(),
        }
    }

    fn check(&self) -> Result<(), CallControlError> {
        if super::voice::valid_sid(&self.account_sid) {
            return Ok(());
        }
        Err(CallControlError::Unavailable(
            "the call's voice webhook carried no AccountSid, so Twilio's REST API cannot be asked"
                .into(),
        ))
    }
}

#[async_trait]
impl CallControl for TwilioCall {
    async fn hang_up(&self) -> Result<(), CallControlError> {
        self.check()?;
        let twiml = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>"#;
        self.rest
            .update(&self.account_sid, &self.call_sid, twiml)
            .await
    }

    async fn transfer(&self, destination: &TransferDestination) -> Result<(), CallControlError> {
        self.check()?;
        let twiml = super::twiml::dial(destination);
        self.rest
            .update(&self.account_sid, &self.call_sid, &twiml)
            .await
    }
}
