//! `POST /twilio/voice`: Twilio asks what to do with an incoming call.
//!
//! The signature is checked first, over `public_base_url` and the request's path, so nothing
//! about an unsigned request is believed. Then the route picks the agent (by our number: the
//! called one for incoming calls, the calling one for calls we placed), the capacity and
//! spend checks may refuse the call as busy, and the answer connects a media stream with a
//! one-time token for this `CallSid`.

use std::{sync::Arc, time::Instant};

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

use super::{
    signature,
    tokens::{PendingCall, TOKEN_PARAMETER},
    twiml::{self, RejectReason},
};
use crate::state::AppState;

/// The header Twilio signs its requests with.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// `POST /twilio/voice`: the agent is picked by the called number.
pub async fn answer(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &uri, &headers, &body, None)
}

/// `POST /twilio/voice/{route}`: the route's agent answers, whatever the number.
pub async fn answer_route(
    State(state): State<Arc<AppState>>,
    Path(route): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&state, &uri, &headers, &body, Some(&route))
}

pub(super) fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// Why a Twilio request is refused before anything in it is believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refused {
    /// This server has no Twilio auth token: it takes no Twilio calls (404).
    NotServed,
    /// The signature is missing or wrong (403).
    BadSignature,
    /// A signed request about a call without a valid `CallSid` (400).
    NoCallSid,
}

impl Refused {
    /// The answer to the refused request.
    pub(super) fn response(self) -> Response {
        match self {
            Refused::NotServed => plain(
                StatusCode::NOT_FOUND,
                "no route of this server answers Twilio calls\n",
            ),
            Refused::BadSignature => plain(
                StatusCode::FORBIDDEN,
                "invalid or missing X-Twilio-Signature\n",
            ),
            Refused::NoCallSid => plain(
                StatusCode::BAD_REQUEST,
                "the request has no valid CallSid\n",
            ),
        }
    }
}

/// The request's form parameters, once `X-Twilio-Signature` proved Twilio sent them to
/// `base_url` plus the request's path and query; else why the request is refused.
fn verified_params(
    state: &AppState,
    base_url: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, Refused> {
    let Some(token) = &state.twilio_auth_token else {
        return Err(Refused::NotServed);
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{base_url}{path}");
    let signed = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sig| signature::verify(token.expose(), &url, &params, sig));
    if !signed {
        tracing::warn!(
            path = uri.path(),
            "refused a Twilio request whose X-Twilio-Signature is missing or wrong (is the configured base URL the one Twilio calls?)"
        );
        return Err(Refused::BadSignature);
    }
    Ok(params)
}

/// A signed Twilio request's parameters, whose `CallSid` is valid.
pub(super) struct CallParams(Vec<(String, String)>);

impl CallParams {
    /// The parameter `name`, if the request has it.
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The call's `CallSid` (checked valid).
    pub(super) fn call_sid(&self) -> &str {
        self.get("CallSid").unwrap_or_default()
    }
}

/// The parameters of a request about a call, once signed over `base_url` plus the request's
/// path and query ([`verified_params`]) and found to name a valid `CallSid`; else why the
/// request is refused.
pub(super) fn verified_call(
    state: &AppState,
    base_url: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<CallParams, Refused> {
    let params = CallParams(verified_params(state, base_url, uri, headers, body)?);
    if !params.get("CallSid").is_some_and(valid_sid) {
        return Err(Refused::NoCallSid);
    }
    Ok(params)
}

pub(super) fn twiml(xml: String) -> Response {
    ([(header::CONTENT_TYPE, twiml::CONTENT_TYPE)], xml).into_response()
}

fn handle(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    route_path: Option<&str>,
) -> Response {
    let params = match verified_call(state, &state.config.public_base_url, uri, headers, body) {
        Ok(params) => params,
        Err(refused) => return refused.response(),
    };
    let call_sid = params.call_sid();
    let to = params.get("To").unwrap_or_default();
    let from = params.get("From").unwrap_or_default();
    let route = match route_path {
        Some(path) => state.config.route_for_path(path),
        None => state
            .config
            .route_for_number(our_number(params.get("Direction"), from, to)),
    };
    let Some(route) = route else {
        tracing::info!(
            call_sid,
            "no route for this call's number or path: rejected"
        );
        return twiml(twiml::reject(RejectReason::Rejected));
    };
    let now = Instant::now();
    state.tokens.prune(now);
    let slot = match state.admit_call(route) {
        Ok(slot) => slot,
        Err(no) => {
            tracing::warn!(call_sid, route, "{}: busy", no.why());
            return twiml(twiml::reject(RejectReason::Busy));
        }
    };
    let pending = PendingCall {
        call_sid: call_sid.to_owned(),
        route,
        from: from.to_owned(),
        to: to.to_owned(),
        account_sid: params.get("AccountSid").unwrap_or_default().to_owned(),
        slot,
        resumed: None,
    };
    match state.tokens.issue(pending, now) {
        Ok(token) => {
            tracing::info!(
                call_sid,
                route,
                "call accepted; waiting for its media stream"
            );
            twiml(twiml::connect_stream(
                &state.config.media_stream_url(),
                super::resume::action_url(state, 1).as_deref(),
                &[(TOKEN_PARAMETER, &token)],
            ))
        }
        Err(err) => {
            tracing::error!("{err}");
            plain(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
        }
    }
}

/// Which of the call's numbers is ours, and so picks the route: the called one (`To`) when
/// the call came in, the calling one (`From`) when we placed it (`agent call --to`, Twilio's
/// `Direction` is `outbound-api` or `outbound-dial`).
fn our_number<'a>(direction: Option<&str>, from: &'a str, to: &'a str) -> &'a str {
    if direction.is_some_and(|d| d.starts_with("outbound")) {
        from
    } else {
        to
    }
}

/// A Twilio SID: letters and digits, at most 64 of them.
pub fn valid_sid(sid: &str) -> bool {
    !sid.is_empty() && sid.len() <= 64 && sid.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_we_placed_are_routed_by_the_calling_number() {
        assert_eq!(
            our_number(Some("inbound"), "+1555111", "+1555100"),
            "+1555100"
        );
        assert_eq!(our_number(None, "+1555111", "+1555100"), "+1555100");
        assert_eq!(
            our_number(Some("outbound-api"), "+1555100", "+1555222"),
            "+1555100"
        );
        assert_eq!(
            our_number(Some("outbound-dial"), "+1555100", "+1555222"),
            "+1555100"
        );
    }
}
