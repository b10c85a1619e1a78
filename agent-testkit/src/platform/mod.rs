//! A fake OpenAI platform for SIP calls, on loopback: what `agent serve` talks to when a
//! phone call comes in over SIP (shared/realtime-spec/realtime-rest.md).
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

pub mod rest;
pub mod webhook;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};
use tokio::{sync::watch, task::JoinHandle};

pub use crate::server::calls::{CallControl, CallState, PlatformCalls, SidebandDrop};
pub use rest::CallRequest;
pub use webhook::WebhookSigning;

use crate::{
    server::{ScriptedServer, ServerConfig, ServerHandle, lock},
    twilio::{FakeTwilioError, http},
};

/// How long a webhook delivery may take.
const WEBHOOK_DEADLINE: Duration = Duration::from_secs(10);

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

    /// The REST base: `http://127.0.0.1:PORT` (paths are `/v1/realtime/calls/...`).
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

    /// Makes the caller (or the platform) do something on the call's live sideband; `false`
    /// when none is attached.
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

    /// Stops the REST side and the sideband server.
    pub async fn shutdown(self) {
        let FakePlatform {
            sideband,
            rest_task,
            ..
        } = self;
        rest_task.shutdown().await;
        sideband.shutdown().await;
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
