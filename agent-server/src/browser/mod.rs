//! Browsers: the two ways a page reaches an agent (shared/realtime-spec/realtime-rest.md).
//!
//! - **The server relays the call** (the unified interface), for agents whose tools run on
//!   the server: `POST /agents/{name}/calls` takes the page's SDP offer, posts it with the
//!   agent's session and the server's own key to the platform, answers the page with the SDP
//!   answer, and attaches the sideband (`?call_id=`) that runs the tools, history and cost
//!   ([`sideband`]). The page never sees the key, a tool's secrets or its code.
//! - **The page holds a client secret**: `POST /agents/{name}/client-secret` mints one that
//!   carries the agent's session (no tools: the page's own are its business) and expires soon
//!   ([`secret`]). When the agent has server tools, the page posts its call id to
//!   `POST /agents/{name}/calls/{call_id}/attach` and the server attaches the sideband.
//!
//! Both spend the owner's money, so each is off until `[browser]` turns it on, and each
//! request passes [`guard`] first: allowed origins, the operator's token, rate limits. The
//! sideband is platform-held: it re-attaches without replay, never rolls over, and when a
//! page changes the session over its `oai-events` channel the agent's configuration is
//! applied again (agent-core's runner does it).

mod calls;
pub(crate) use calls::unknown_agent;
pub mod feed;
pub mod guard;
mod secret;
pub(crate) mod sideband;

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::State,
    http::HeaderMap,
    response::Response,
    routing::{get, post},
};

use crate::{config::BrowserConfig, platform::Platform, state::AppState};

/// What the browser endpoints share.
#[derive(Debug)]
pub struct BrowserState {
    /// `[browser]`, checked.
    pub config: BrowserConfig,
    /// Per-client and global rates.
    pub limits: guard::Limits,
    /// The platform's REST API: calls and client secrets, with the server's key.
    pub platform: Platform,
    /// The console's event feeds of the calls in progress.
    pub feeds: feed::Feeds,
    /// Calls a sideband of this server is attached to, so a call is attached once.
    attached: Mutex<HashSet<String>>,
}

impl BrowserState {
    /// The endpoints' state over `platform`.
    pub fn new(config: BrowserConfig, platform: Platform) -> Self {
        BrowserState {
            limits: guard::Limits::new(&config),
            config,
            platform,
            feeds: feed::Feeds::default(),
            attached: Mutex::new(HashSet::new()),
        }
    }

    /// Marks `call_id` attached; `false` when it already was.
    fn attach(&self, call_id: &str) -> bool {
        self.attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(call_id.to_owned())
    }

    /// The sideband of `call_id` is gone.
    fn detach(&self, call_id: &str) {
        self.attached
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(call_id);
    }
}

/// The route of the agent browsers reach as `name`: a route with `browser = true` whose agent
/// file is named so.
pub(crate) fn route_named(state: &AppState, name: &str) -> Option<usize> {
    state
        .config
        .routes
        .iter()
        .zip(&state.agents)
        .position(|(route, agent)| route.browser && agent.name() == name)
}

/// The browser routes (served only when `[browser]` turns an endpoint on).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/agents/{name}/calls",
            post(calls::create).options(preflight_calls),
        )
        .route(
            "/agents/{name}/client-secret",
            post(secret::mint).options(preflight_secrets),
        )
        .route(
            "/agents/{name}/calls/{call_id}/attach",
            post(calls::attach).options(preflight_attach),
        )
        .route("/agents/{name}/calls/{call_id}/feed", get(feed::serve))
}

async fn preflight_calls(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match &state.browser {
        Some(b) => guard::preflight(b, b.config.calls, &headers),
        None => not_enabled(),
    }
}

async fn preflight_secrets(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match &state.browser {
        Some(b) => guard::preflight(b, b.config.client_secrets, &headers),
        None => not_enabled(),
    }
}

async fn preflight_attach(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match &state.browser {
        Some(b) => guard::preflight(b, b.config.attach, &headers),
        None => not_enabled(),
    }
}

pub(crate) fn not_enabled() -> Response {
    guard::refuse(
        axum::http::StatusCode::NOT_FOUND,
        "not_enabled",
        "this endpoint is not enabled in serve.toml ([browser])",
    )
}
