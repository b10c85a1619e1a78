//! The web console: plain HTML, CSS and JavaScript modules compiled into the binary
//! (`include_str!`, no build step), served only when `[browser]` turns an endpoint on.
//!
//! - `GET /` lists the agents open to browsers. The list itself comes from
//!   `GET /console/agents`, which passes the browser endpoints' guard: when
//!   `[browser] operator_token_env` is set it needs `Authorization: Bearer <token>`, which the
//!   page asks for once and keeps in the tab's `sessionStorage` (never in a URL or a page).
//! - `GET /agents/{name}` calls the agent from the browser: microphone, a peer connection with
//!   the `oai-events` channel, the offer relayed by `POST /agents/{name}/calls`, then the call's
//!   feed (`.../feed?token=`), shown as a live transcript, tool calls, cost and latency per
//!   turn, and a filterable event log. With `[browser] client_secrets` on, a mode switch lets
//!   the page mint a client secret instead, post the offer to the platform itself and ask the
//!   server to attach (`.../attach`), as a page that holds a secret would.
//!
//! The pages hold no data and no secret: everything comes from the guarded endpoints.

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
    routing::get,
};

use crate::{
    browser::{self, guard},
    rate_limit::ClientAddr,
    state::AppState,
};

/// What a page may load: only this server's own scripts, styles and endpoints, and (for the
/// client-secret mode) the platform's calls endpoint.
fn csp(state: &AppState) -> String {
    let platform = state
        .browser
        .as_ref()
        .filter(|b| b.config.client_secrets)
        .and_then(|b| b.platform.origin())
        .map(|origin| format!(" {origin}"))
        .unwrap_or_default();
    format!(
        "default-src 'self'; connect-src 'self'{platform}; media-src 'self' blob: mediastream:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )
}

/// The console's routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/",
            get(|State(state): State<Arc<AppState>>| async move {
                page(&state, include_str!("index.html"))
            }),
        )
        .route("/agents/{name}", get(agent_page))
        .route("/console/agents", get(agents))
        .route(
            "/console/style.css",
            get(|| async { asset("text/css", include_str!("style.css")) }),
        )
        .route(
            "/console/common.js",
            get(|| async { asset("text/javascript", include_str!("common.js")) }),
        )
        .route(
            "/console/index.js",
            get(|| async { asset("text/javascript", include_str!("index.js")) }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript", include_str!("app.js")) }),
        )
}

/// The agent's page, for an agent open to browsers.
async fn agent_page(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if browser::route_named(&state, &name).is_none() {
        return browser::unknown_agent(&name);
    }
    page(&state, include_str!("agent.html"))
}

/// `{"agents": [{"name", "calls", "client_secrets", "platform_calls_url"}]}`: the agents open to browsers, behind
/// the browser endpoints' guard (origin, operator's token, rates).
async fn agents(
    State(state): State<Arc<AppState>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
) -> Response {
    let (browser, admitted) = match guard::admit_request(&state, |_| true, &headers, client) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    let list: Vec<_> = state
        .config
        .routes
        .iter()
        .zip(&state.agents)
        .filter(|(route, _)| route.browser)
        .map(|(_, agent)| {
            serde_json::json!({
                "name": agent.name(),
                "calls": browser.config.calls,
                "client_secrets": browser.config.client_secrets,
                "platform_calls_url": browser.config.client_secrets.then(|| browser.platform.calls_url()),
            })
        })
        .collect();
    let mut response = guard::json(StatusCode::OK, &serde_json::json!({ "agents": list }));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    admitted.cors(response)
}

fn page(state: &AppState, html: &'static str) -> Response {
    let mut response = asset("text/html; charset=utf-8", html);
    if let Ok(csp) = HeaderValue::from_str(&csp(state)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Small and compiled in: always fresh, so a new binary's console is what runs.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
