//! `POST /agents/{name}/client-secret`: a short-lived secret a page connects with directly.
//!
//! The secret carries the agent's session (instructions, voice, audio, turn detection) and no
//! tools: the page implements its own, and the agent's server tools run only through
//! `.../attach`, on the server. The answer is `{value, expires_at}` and is never cached.

use std::sync::Arc;

use axum::{
    Extension,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use serde_json::Value;

use super::{calls, guard, route_named, sideband};
use crate::{rate_limit::ClientAddr, state::AppState};

/// Mints a client secret for the agent `name`.
pub(super) async fn mint(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
) -> Response {
    let (browser, admitted) =
        match guard::admit_request(&state, |c| c.client_secrets, &headers, client) {
            Ok(admitted) => admitted,
            Err(refused) => return *refused,
        };
    let Some(route) = route_named(&state, &name) else {
        return admitted.cors(calls::unknown_agent(&name));
    };
    if state.capacity.is_draining() {
        return admitted.cors(guard::refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is shutting down; try again shortly",
        ));
    }
    let session = match sideband::prepare_or_refuse(&state, route, &name) {
        Ok((_, session)) => without_tools(session),
        Err(refused) => return admitted.cors(*refused),
    };
    let ttl = browser.config.client_secret_ttl;
    let minted = match browser.platform.client_secret(&session, ttl).await {
        Ok(minted) => minted,
        Err(err) => return admitted.cors(calls::platform_error(&err)),
    };
    tracing::info!(
        agent = name,
        expires_at = minted.expires_at,
        "minted a client secret"
    );
    let body = serde_json::json!({
        "value": minted.value.expose(),
        "expires_at": minted.expires_at,
    });
    let mut response = guard::json(StatusCode::OK, &body);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    admitted.cors(response)
}

/// The session without the agent's tools: their schemas are the server's business.
fn without_tools(mut session: Value) -> Value {
    if let Some(object) = session.as_object_mut() {
        object.remove("tools");
        object.remove("tool_choice");
    }
    session
}
