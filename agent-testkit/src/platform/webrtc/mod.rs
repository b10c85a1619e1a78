//! The fake platform's WebRTC calls: `POST /v1/realtime/calls` answers a browser's SDP offer
//! and runs the call.
//!
//! Each call gets a UDP port on 127.0.0.1 and a str0m peer that answers the offer
//! with that host candidate, and a session on the scripted server (the platform-held call of
//! [`calls`](crate::server::calls)) that plays the scenario over the `oai-events` data channel.
//! A sideband attached with `?call_id=` joins the same session. The answer is `201` with the
//! SDP and `Location: /v1/realtime/calls/{call_id}`.

mod multipart;
#[cfg(feature = "webrtc")]
mod peer;
#[cfg_attr(not(feature = "webrtc"), allow(dead_code))]
mod playout;
mod sdp_http;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, atomic::Ordering},
    time::Duration,
};

use serde_json::Value;
use tokio::task::JoinSet;

pub(crate) use multipart::encode as encode_multipart;
pub use sdp_http::OfferForm;
pub(crate) use sdp_http::bearer;

use super::{client_secrets::ClientSecrets, rest::error};
use crate::{
    mcp::http::Request,
    server::{MediaCalls, lock, media_call::PeerEnds},
};
#[cfg(feature = "webrtc")]
use peer::AnswerError;

/// Packets of one call's audio tracks, counted as they pass.
#[derive(Debug, Default)]
pub(crate) struct MediaCounters {
    pub(crate) received: std::sync::atomic::AtomicU64,
    pub(crate) sent: std::sync::atomic::AtomicU64,
}

/// How long a browser has, from its offer, to complete ICE and DTLS and open `oai-events`.
pub const DEFAULT_CONNECT_DEADLINE: Duration = Duration::from_secs(10);

/// One `POST /v1/realtime/calls` as the platform received it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallCreateRequest {
    /// Its `Content-Type`, as sent.
    pub content_type: Option<String>,
    /// Its form, when the content type named one.
    pub form: Option<OfferForm>,
    /// The session config the call was to start with (the secret's, or the `session` part),
    /// when the request got that far.
    pub session: Option<Value>,
    /// The SDP offer, when the request got that far.
    pub offer: Option<String>,
    /// The HTTP status it was answered with: 201 when a call started.
    pub status: u16,
    /// The call it started.
    pub call_id: Option<String>,
    /// The error body, when refused.
    pub error: Option<Value>,
}

/// Packets a WebRTC call's audio tracks carried so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaStats {
    /// RTP packets of the browser's microphone that arrived.
    pub packets_received: u64,
    /// Opus frames of the answers' audio sent to the browser.
    pub packets_sent: u64,
}

/// An HTTP answer of the create endpoint.
pub(super) struct CreateAnswer {
    pub(super) status: u16,
    /// `(Content-Type, body)`.
    pub(super) body: (&'static str, Vec<u8>),
    pub(super) location: Option<String>,
}

/// The WebRTC side of one fake platform.
pub(super) struct WebRtc {
    pub(super) secrets: ClientSecrets,
    api_key: Option<String>,
    media: MediaCalls,
    connect_deadline: Mutex<Duration>,
    requests: Mutex<Vec<CallCreateRequest>>,
    counters: Mutex<HashMap<String, Arc<MediaCounters>>>,
    /// Every call's peer and session tasks; dropping the platform aborts them.
    tasks: Mutex<JoinSet<()>>,
}

impl WebRtc {
    pub(super) fn new(api_key: Option<String>, media: MediaCalls) -> WebRtc {
        WebRtc {
            secrets: ClientSecrets::default(),
            api_key,
            media,
            connect_deadline: Mutex::new(DEFAULT_CONNECT_DEADLINE),
            requests: Mutex::new(Vec::new()),
            counters: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
        }
    }

    pub(super) fn set_connect_deadline(&self, deadline: Duration) {
        *lock(&self.connect_deadline) = deadline;
    }

    pub(super) fn requests(&self) -> Vec<CallCreateRequest> {
        lock(&self.requests).clone()
    }

    pub(super) fn media_stats(&self, call_id: &str) -> Option<MediaStats> {
        lock(&self.counters).get(call_id).map(|c| MediaStats {
            packets_received: c.received.load(Ordering::Relaxed),
            packets_sent: c.sent.load(Ordering::Relaxed),
        })
    }

    /// Answers `POST /v1/realtime/calls`: checks the request, answers the offer, and starts
    /// the call's peer and session.
    pub(super) async fn create_call(&self, request: &Request) -> CreateAnswer {
        let content_type = request
            .headers
            .iter()
            .find(|(n, _)| n == "content-type")
            .map(|(_, v)| v.clone());
        let mut record = CallCreateRequest {
            content_type,
            form: None,
            session: None,
            offer: None,
            status: 0,
            call_id: None,
            error: None,
        };
        let answer = self.open(request, &mut record).await;
        record.status = answer.status;
        lock(&self.requests).push(record);
        answer
    }

    async fn open(&self, request: &Request, record: &mut CallCreateRequest) -> CreateAnswer {
        let offer = match sdp_http::read_offer(request, self.api_key.as_deref(), &self.secrets) {
            Ok(offer) => offer,
            Err(refusal) => {
                record.form = refusal.form;
                return refused(record, refusal.status, refusal.body);
            }
        };
        record.form = Some(offer.form);
        record.session = Some(offer.session.clone());
        record.offer = Some(offer.sdp.clone());
        self.answer(offer, record).await
    }

    /// Without the `webrtc` feature there is no media peer: the call cannot be answered, and
    /// the refusal says how to build one that can.
    #[cfg(not(feature = "webrtc"))]
    async fn answer(
        &self,
        _offer: sdp_http::Offer,
        record: &mut CallCreateRequest,
    ) -> CreateAnswer {
        refused(
            record,
            501,
            error(
                "webrtc_not_built",
                "This fake platform was built without WebRTC media: build agent-testkit with \
                 the `webrtc` feature (agent: `--features webrtc-mock`).",
            ),
        )
    }

    #[cfg(feature = "webrtc")]
    async fn answer(&self, offer: sdp_http::Offer, record: &mut CallCreateRequest) -> CreateAnswer {
        let (answer_sdp, peer) = match peer::answer(&offer.sdp).await {
            Ok(answered) => answered,
            Err(AnswerError::BadSdp(why)) => {
                return refused(record, 400, error("invalid_sdp", &why));
            }
            Err(AnswerError::Internal(why)) => {
                tracing::warn!(%why, "platform: cannot set up a WebRTC call");
                return refused(record, 500, error("server_error", &why));
            }
        };
        let call_id = format!("rtc_{}", crate::platform::random_hex());
        let Some((ends, session)) = self.media.start(&call_id, offer.session) else {
            return refused(
                record,
                500,
                error("server_error", "This platform's server holds no calls."),
            );
        };
        self.spawn(&call_id, peer, ends, session);
        record.call_id = Some(call_id.clone());
        CreateAnswer {
            status: 201,
            body: ("application/sdp", answer_sdp.into_bytes()),
            location: Some(format!("/v1/realtime/calls/{call_id}")),
        }
    }

    #[cfg(feature = "webrtc")]
    fn spawn(
        &self,
        call_id: &str,
        peer: peer::Peer,
        ends: PeerEnds,
        session: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let counters = Arc::new(MediaCounters::default());
        lock(&self.counters).insert(call_id.to_owned(), Arc::clone(&counters));
        let deadline = *lock(&self.connect_deadline);
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {} // forget finished calls
        tasks.spawn(session);
        tasks.spawn(peer.run(ends, deadline, counters));
    }

    /// Waits (at most `within`) for every call's tasks to end, then aborts the rest.
    pub(super) async fn shutdown(&self, within: Duration) {
        let mut tasks = std::mem::take(&mut *lock(&self.tasks));
        let drained =
            tokio::time::timeout(within, async { while tasks.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            tasks.shutdown().await;
        }
    }
}

fn refused(record: &mut CallCreateRequest, status: u16, body: Value) -> CreateAnswer {
    record.error = Some(body.clone());
    CreateAnswer {
        status,
        body: ("application/json", body.to_string().into_bytes()),
        location: None,
    }
}
