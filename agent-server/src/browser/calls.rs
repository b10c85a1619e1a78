//! `POST /agents/{name}/calls` (the server relays the page's offer) and
//! `POST /agents/{name}/calls/{call_id}/attach` (a page that holds a client secret asks the
//! server to run the agent's tools on its call).

use std::sync::Arc;

use axum::{
    Extension,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};

use super::{BrowserState, guard, route_named, sideband};
use crate::{
    platform::{PlatformError, valid_call_id},
    rate_limit::ClientAddr,
    state::AppState,
};

/// The longest SDP offer taken; a browser's is a few KB.
const MAX_OFFER_BYTES: usize = 32 * 1024;

/// Relays the page's SDP offer to the platform with the agent's session, answers with the SDP
/// answer (201, `Location` and `X-Agent-Call-Id` naming the call) and attaches the sideband.
pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (browser, admitted) = match guard::admit_request(&state, |c| c.calls, &headers, client) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    let answer = relay(&state, browser, &name, &headers, &body).await;
    admitted.cors(answer)
}

async fn relay(
    state: &Arc<AppState>,
    browser: &BrowserState,
    name: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let Some(route) = route_named(state, name) else {
        return unknown_agent(name);
    };
    let offer = match sdp_offer(headers, body) {
        Ok(offer) => offer,
        Err(why) => return guard::refuse(StatusCode::BAD_REQUEST, "invalid_sdp", why),
    };
    let slot = match admit_call(state, route) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let (config, session) = match sideband::prepare_or_refuse(state, route, name) {
        Ok(prepared) => prepared,
        Err(refused) => return *refused,
    };
    let created = match browser.platform.create_call(offer, &session).await {
        Ok(created) => created,
        Err(err) => return platform_error(&err),
    };
    if !browser.attach(&created.call_id) {
        // A fresh call id seen before: the platform's bug, not the page's.
        tracing::error!(call_id = %created.call_id, "the platform created a call id twice");
    }
    tracing::info!(call_id = %created.call_id, agent = name, "browser call created; attaching the sideband");
    let feed = browser.feeds.open(&created.call_id);
    let feed_token = feed.as_ref().map(|f| f.token().to_owned());
    let task = sideband::run(
        state.clone(),
        created.call_id.clone(),
        route,
        config,
        slot,
        feed,
    );
    state.calls.spawn(task);
    let mut response = (StatusCode::CREATED, created.answer_sdp).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sdp"),
    );
    if let Ok(id) = HeaderValue::from_str(&created.call_id) {
        h.insert("x-agent-call-id", id.clone());
    }
    if let Ok(location) =
        HeaderValue::from_str(&format!("/agents/{name}/calls/{}", created.call_id))
    {
        h.insert(header::LOCATION, location);
    }
    if let Some(Ok(token)) = feed_token.map(|t| HeaderValue::from_str(&t)) {
        h.insert("x-agent-feed-token", token);
    }
    response
}

/// Attaches the sideband to a call the page made with a client secret.
pub(super) async fn attach(
    State(state): State<Arc<AppState>>,
    Path((name, call_id)): Path<(String, String)>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
) -> Response {
    let (browser, admitted) = match guard::admit_request(&state, |c| c.attach, &headers, client) {
        Ok(admitted) => admitted,
        Err(refused) => return *refused,
    };
    let answer = attach_call(&state, browser, &name, &call_id);
    admitted.cors(answer)
}

fn attach_call(
    state: &Arc<AppState>,
    browser: &BrowserState,
    name: &str,
    call_id: &str,
) -> Response {
    let Some(route) = route_named(state, name) else {
        return unknown_agent(name);
    };
    if !valid_call_id(call_id) {
        return guard::refuse(
            StatusCode::BAD_REQUEST,
            "invalid_call_id",
            "not a call id (letters, digits, `_` and `-`, at most 128)",
        );
    }
    let slot = match admit_call(state, route) {
        Ok(slot) => slot,
        Err(refused) => return *refused,
    };
    let (config, _) = match sideband::prepare_or_refuse(state, route, name) {
        Ok(prepared) => prepared,
        Err(refused) => return *refused,
    };
    if !browser.attach(call_id) {
        return guard::refuse(
            StatusCode::CONFLICT,
            "already_attached",
            "this server is already attached to that call",
        );
    }
    tracing::info!(
        call_id,
        agent = name,
        "attaching the sideband to a browser's call"
    );
    let feed = browser.feeds.open(call_id);
    let feed_token = feed.as_ref().map(|f| f.token().to_owned());
    let task = sideband::run(state.clone(), call_id.to_owned(), route, config, slot, feed);
    state.calls.spawn(task);
    let body = serde_json::json!({"call_id": call_id, "attached": true, "feed_token": feed_token});
    guard::json(StatusCode::ACCEPTED, &body)
}

/// The offer in the body: `application/sdp` text that starts like an SDP.
fn sdp_offer<'a>(headers: &HeaderMap, body: &'a [u8]) -> Result<&'a str, &'static str> {
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/sdp"));
    if !is_sdp {
        return Err("send the SDP offer with Content-Type: application/sdp");
    }
    if body.len() > MAX_OFFER_BYTES {
        return Err("the SDP offer is too large");
    }
    let text = std::str::from_utf8(body).map_err(|_| "the SDP offer is not UTF-8 text")?;
    if !text.starts_with("v=0") || !text.contains("\nm=") {
        return Err("the body is not an SDP offer (it must start with v=0 and have a media line)");
    }
    Ok(text)
}

/// [`AppState::admit_call`], refused as 503 with the reason.
pub(super) fn admit_call(
    state: &AppState,
    route: usize,
) -> Result<crate::capacity::CallSlot, guard::Refused> {
    state.admit_call(route).map_err(|no| {
        Box::new(guard::refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            no.why(),
        ))
    })
}

pub(crate) fn unknown_agent(name: &str) -> Response {
    let shown: String = name.chars().take(64).collect();
    guard::refuse(
        StatusCode::NOT_FOUND,
        "unknown_agent",
        &format!("no agent named `{shown}` is open to browsers"),
    )
}

/// A platform failure, passed on: its status and message when it answered (the message is
/// scrubbed of secrets), 502 when it could not be reached.
pub(super) fn platform_error(err: &PlatformError) -> Response {
    tracing::warn!("the platform did not serve a browser request: {err}");
    match err {
        PlatformError::Refused {
            status, message, ..
        } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            guard::refuse(status, "platform_error", message)
        }
        other => guard::refuse(
            StatusCode::BAD_GATEWAY,
            "platform_unreachable",
            &other.to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_sdp_body_is_an_offer() {
        let mut headers = HeaderMap::new();
        let offer = b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n";
        assert!(sdp_offer(&headers, offer).is_err(), "no content type");
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/sdp"),
        );
        assert!(sdp_offer(&headers, offer).is_ok());
        assert!(sdp_offer(&headers, b"hello").is_err());
        assert!(
            sdp_offer(&headers, b"v=0\r\no=- 1 2 IN IP4 x\r\n").is_err(),
            "no media"
        );
        assert!(sdp_offer(&headers, &[0xff, 0xfe]).is_err());
        assert!(sdp_offer(&headers, &vec![b'v'; MAX_OFFER_BYTES + 1]).is_err());
    }
}
