//! A fake OpenAI platform for SIP and WebRTC calls, on loopback: what `agent serve` talks to
//! when a phone call comes in over SIP, and what a browser talks to for a WebRTC call
//! (shared/realtime-spec/realtime-rest.md).
//!
//! - **Webhooks:** [`FakePlatform::incoming_call`] announces a call and sends the server's
//!   webhook URL a `realtime.call.incoming` event signed the Standard Webhooks way
//!   ([`webhook`]), correctly or in one of the ways a forger would ([`WebhookSigning`]);
//!   [`FakePlatform::send_webhook`] sends any event, under any `webhook-id`.
//! - **Call control:** `POST /v1/realtime/calls/{id}/accept|reject|refer|hangup` on
//!   [`FakePlatform::api_base`], recorded ([`FakePlatform::requests`]) and checked like the
//!   live API ([`rest`]).
//! - **The sideband:** the scripted server at [`FakePlatform::realtime_url`] serves
//!   `?call_id=` connections for accepted calls only, plays the scenario over them, keeps each
//!   call's conversation across sidebands, and sends no audio (it stays on the media path).
//! - **The caller:** [`FakePlatform::control`] makes the caller speak the next scripted turn,
//!   press a key, or drop the sideband; [`SidebandDrop`] says whether a call outlives a
//!   dropped sideband.
//! - **Client secrets:** `POST /v1/realtime/client_secrets` mints `ek_...` secrets, each with
//!   its session and expiry ([`client_secrets`]); [`FakePlatform::advance_clock`] and
//!   [`FakePlatform::issue_client_secret`] make expired ones without waiting.
//! - **WebRTC calls:** `POST /v1/realtime/calls` with an SDP offer, as `application/sdp` with a
//!   client secret or as `multipart/form-data` with the API key, answers `201` with the SDP
//!   answer and `Location: /v1/realtime/calls/{call_id}` ([`webrtc`]). The call's session
//!   plays the scenario over the browser's `oai-events` data channel; sidebands attach to the
//!   same session by call id and see the same events. The browser's microphone packets drive
//!   turn detection, and answers are played as Opus frames on the audio track, between
//!   `output_audio_buffer.started` and `.stopped`. The testkit's own browser is
//!   [`crate::webrtc::TestBrowser`].

pub mod client_secrets;
pub mod rest;
pub mod webhook;
pub mod webrtc;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinHandle};

pub use crate::server::calls::{CallControl, CallKind, CallState, PlatformCalls, SidebandDrop};
pub use client_secrets::{ClientSecret, ClientSecretRequest};
pub use rest::CallRequest;
pub use webhook::WebhookSigning;
/// Whether this build answers WebRTC offers (agent-testkit's `webrtc` feature). Without it,
/// `POST /v1/realtime/calls` answers 501 and says how to build a platform that can.
pub const WEBRTC_MEDIA: bool = cfg!(feature = "webrtc");

pub use webrtc::{CallCreateRequest, DEFAULT_CONNECT_DEADLINE, MediaStats, OfferForm};

use crate::{
    server::{ScriptedServer, ServerConfig, ServerHandle, lock},
    twilio::{FakeTwilioError, http},
};

/// How long a webhook delivery may take.
const WEBHOOK_DEADLINE: Duration = Duration::from_secs(10);
/// How long shutting down waits for WebRTC calls to end before it aborts them.
const CALLS_END_DEADLINE: Duration = Duration::from_secs(5);

/// A call as the SIP trunk presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// The platform's id, `rtc_...`.
    pub call_id: String,
    /// The caller's SIP URI (`From`).
    pub from: String,
    /// The called SIP URI (`To`); its user part picks the agent.
    pub to: String,
}

impl IncomingCall {
    /// A call from `from` to `to` (SIP URIs, e.g. `sip:+15550111@carrier.example`).
    pub fn new(call_id: &str, from: &str, to: &str) -> Self {
        IncomingCall {
            call_id: call_id.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
        }
    }

    /// The `realtime.call.incoming` event, with the SIP headers of the INVITE.
    pub fn event(&self, event_id: &str) -> Value {
        json!({
            "object": "event",
            "id": event_id,
            "type": "realtime.call.incoming",
            "created_at": unix_now(),
            "data": {
                "call_id": self.call_id,
                "sip_headers": [
                    {"name": "From", "value": format!("<{}>;tag=8a1f", self.from)},
                    {"name": "To", "value": format!("<{}>", self.to)},
                    {"name": "Call-ID", "value": format!("{}@trunk.example", self.call_id)},
                ],
            },
        })
    }
}

/// The fake platform; dropping it stops its servers.
pub struct FakePlatform {
    sideband: ServerHandle,
    calls: Arc<PlatformCalls>,
    rest: Arc<rest::Rest>,
    rest_addr: SocketAddr,
    webhook_secret: String,
    rest_task: RestTask,
}

/// The REST side's accept loop; dropping it stops the loop.
struct RestTask {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RestTask {
    async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RestTask {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl std::fmt::Debug for FakePlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakePlatform")
            .field("rest", &self.rest_addr)
            .field("sideband", &self.sideband.addr())
            .finish_non_exhaustive()
    }
}

impl FakePlatform {
    /// Starts the REST side and the sideband (`server` plays the agent's scenario there);
    /// webhooks are signed with `webhook_secret` (`whsec_...`), REST requests must carry
    /// `api_key` when one is given. Needs a running Tokio runtime.
    pub fn start(
        server: ServerConfig,
        on_drop: SidebandDrop,
        webhook_secret: &str,
        api_key: Option<&str>,
    ) -> std::io::Result<FakePlatform> {
        let calls = Arc::new(PlatformCalls::new(on_drop));
        let sideband = ScriptedServer::start(server.platform_calls(Arc::clone(&calls)))?;
        let runtime = tokio::runtime::Handle::current();
        let _guard = runtime.enter();
        let (listener, rest_addr) = rest::bind()?;
        let rest = Arc::new(rest::Rest {
            calls: Arc::clone(&calls),
            api_key: api_key.map(str::to_owned),
            requests: Mutex::new(Vec::new()),
            webrtc: webrtc::WebRtc::new(api_key.map(str::to_owned), sideband.media_calls()),
        });
        let (stop, stopped) = watch::channel(false);
        let task = runtime.spawn(rest::accept_loop(listener, Arc::clone(&rest), stopped));
        Ok(FakePlatform {
            sideband,
            calls,
            rest,
            rest_addr,
            webhook_secret: webhook_secret.to_owned(),
            rest_task: RestTask {
                stop,
                task: Some(task),
            },
        })
    }

    /// The REST base: `http://127.0.0.1:PORT` (paths are `/v1/realtime/calls/...` and
    /// `/v1/realtime/client_secrets`).
    pub fn api_base(&self) -> String {
        format!("http://{}", self.rest_addr)
    }

    /// The Realtime WebSocket that sidebands attach to with `?call_id=`.
    pub fn realtime_url(&self) -> String {
        self.sideband.url()
    }

    /// The scripted server behind the sidebands: what each sideband sent and received.
    pub fn sideband(&self) -> &ServerHandle {
        &self.sideband
    }

    /// The platform's calls.
    pub fn calls(&self) -> &PlatformCalls {
        &self.calls
    }

    /// Every call-control request so far, in arrival order.
    pub fn requests(&self) -> Vec<CallRequest> {
        lock(&self.rest.requests).clone()
    }

    /// Every `POST /v1/realtime/client_secrets` so far, in arrival order.
    pub fn client_secret_requests(&self) -> Vec<ClientSecretRequest> {
        self.rest.webrtc.secrets.requests()
    }

    /// Every client secret minted so far, with its session and expiry.
    pub fn client_secrets(&self) -> Vec<ClientSecret> {
        self.rest.webrtc.secrets.minted()
    }

    /// Mints a client secret for `session` (a GA session config, checked as the endpoint
    /// checks it) that expires `expires_in` seconds from now on the platform's clock, without
    /// the endpoint's 10..7200 limits: a negative or zero value makes an expired one. `Err` is
    /// the error body the endpoint would answer.
    pub fn issue_client_secret(
        &self,
        session: &Value,
        expires_in: i64,
    ) -> Result<ClientSecret, Value> {
        self.rest.webrtc.secrets.issue(session, expires_in)
    }

    /// Moves the platform's clock (what client secrets expire by) `seconds` forward, or
    /// backwards when negative.
    pub fn advance_clock(&self, seconds: i64) {
        self.rest.webrtc.secrets.advance_clock(seconds);
    }

    /// The platform's clock, unix seconds.
    pub fn now(&self) -> i64 {
        self.rest.webrtc.secrets.now()
    }

    /// Every `POST /v1/realtime/calls` so far, in arrival order.
    pub fn call_create_requests(&self) -> Vec<CallCreateRequest> {
        self.rest.webrtc.requests()
    }

    /// How long a browser has, from its offer, to complete ICE and DTLS and open
    /// `oai-events` before its call is given up; calls started later use it
    /// ([`DEFAULT_CONNECT_DEADLINE`] until set).
    pub fn set_webrtc_connect_deadline(&self, deadline: Duration) {
        self.rest.webrtc.set_connect_deadline(deadline);
    }

    /// The packets WebRTC call `call_id` carried so far; `None` for a call that is not one.
    pub fn media_stats(&self, call_id: &str) -> Option<MediaStats> {
        self.rest.webrtc.media_stats(call_id)
    }

    /// Makes the caller (or the platform) do something on the call's live sideband (a WebRTC
    /// call: on its session, so the data channel sees it too); `false` when none is attached.
    pub fn control(&self, call_id: &str, control: CallControl) -> bool {
        self.calls.control(call_id, control)
    }

    /// Announces `call` and delivers its `realtime.call.incoming` webhook to
    /// `http://{server}{path}`, as `webhook_id`, signed as `signing` says.
    pub async fn incoming_call(
        &self,
        server: SocketAddr,
        path: &str,
        call: &IncomingCall,
        webhook_id: &str,
        signing: WebhookSigning,
    ) -> Result<http::HttpAnswer, FakeTwilioError> {
        self.calls.incoming(&call.call_id);
        let body = call.event(&format!("evt_{webhook_id}"));
        self.send_webhook(server, path, webhook_id, &body, signing)
            .await
    }

    /// Delivers any webhook event as `webhook_id`, signed as `signing` says.
    pub async fn send_webhook(
        &self,
        server: SocketAddr,
        path: &str,
        webhook_id: &str,
        event: &Value,
        signing: WebhookSigning,
    ) -> Result<http::HttpAnswer, FakeTwilioError> {
        let body = event.to_string();
        let signed = webhook::headers(
            &self.webhook_secret,
            webhook_id,
            unix_now(),
            body.as_bytes(),
            signing,
        );
        let mut headers: Vec<(&str, &str)> = vec![("content-type", "application/json")];
        headers.extend(signed.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        http::request(
            server,
            "POST",
            path,
            &headers,
            body.as_bytes(),
            WEBHOOK_DEADLINE,
        )
        .await
    }

    /// Waits until `done` holds (checked every 20 ms), `within` at most; whether it did.
    pub async fn until(&self, within: Duration, done: impl Fn(&FakePlatform) -> bool) -> bool {
        let wait = async {
            while !done(self) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(within, wait).await.is_ok()
    }

    /// Stops the REST side, ends the WebRTC calls (bounded, then aborted) and stops the
    /// sideband server.
    pub async fn shutdown(self) {
        let FakePlatform {
            sideband,
            rest_task,
            calls,
            rest,
            ..
        } = self;
        rest_task.shutdown().await;
        for call_id in calls.live_media_calls() {
            let _ = calls.end(&call_id, CallState::HungUp, &[CallState::Accepted]);
        }
        rest.webrtc.shutdown(CALLS_END_DEADLINE).await;
        sideband.shutdown().await;
    }
}

/// 16 random hex digits, so ids and secrets of two platforms never collide.
pub(crate) fn random_hex() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    // A failing system RNG leaves zeros; callers add a counter where uniqueness matters.
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
