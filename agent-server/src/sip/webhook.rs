//! `POST /openai/webhook`: the platform announces events, SIP calls among them.
//!
//! The signature is checked before anything in the request is believed (400 for missing
//! headers, 401 for a wrong or stale signature, and nothing starts). A signed request is
//! answered 200 at once: a `webhook-id` already seen and any other event type are
//! acknowledged and not processed; a `realtime.call.incoming` is decided here (route, drain,
//! spend cap, capacity) and carried out on its own task, through REST, because a non-2xx
//! answer would only make the platform deliver it again.

use std::{
    sync::Arc,
    time::{Instant, SystemTime},
};

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};

use super::{
    call,
    incoming::{self, Event, IncomingCall},
    signature::SignatureError,
};
use crate::state::AppState;

/// The event type of an incoming SIP call.
pub const CALL_INCOMING: &str = "realtime.call.incoming";

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

/// `POST /openai/webhook`.
pub async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(sip) = &state.sip else {
        return plain(
            StatusCode::NOT_FOUND,
            "no route of this server answers SIP calls\n",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let id = header("webhook-id");
    let checked = sip.secret.verify(
        id,
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        SystemTime::now(),
    );
    let (Ok(()), Some(id)) = (checked.clone(), id) else {
        let err = checked.err().unwrap_or(SignatureError::NoMatch);
        tracing::warn!(
            "refused an OpenAI webhook: {err} (is OPENAI_WEBHOOK_SECRET the project's?)"
        );
        let status = match err {
            SignatureError::MissingHeader(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNAUTHORIZED,
        };
        return plain(status, "invalid or missing webhook signature\n");
    };
    let event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(_) => {
            tracing::warn!("a signed webhook whose body is no event: ignored");
            return plain(StatusCode::BAD_REQUEST, "the body is not a webhook event\n");
        }
    };
    // Nodes sharing a PostgreSQL store share the ids too: a retry that lands on another node
    // is still processed once. The local set is kept either way (and is all there is without
    // a shared store, or when it cannot answer).
    let first_here = sip.seen.first_time(id, Instant::now());
    let shared = match &state.history {
        Some(history) => history.claim_webhook(id, super::seen::REMEMBERED).await,
        None => None,
    };
    if !shared.unwrap_or(first_here) {
        tracing::info!(
            webhook_id = id,
            "a webhook delivered again: already processed"
        );
        return plain(StatusCode::OK, "already processed\n");
    }
    if event.kind != CALL_INCOMING {
        tracing::debug!(event_type = %event.kind.chars().take(64).collect::<String>(), "webhook event acknowledged, not processed");
        return plain(StatusCode::OK, "ok\n");
    }
    let call = match IncomingCall::from_event(&event) {
        Ok(call) => call,
        Err(why) => {
            tracing::warn!(
                webhook_id = id,
                "an incoming-call event that cannot be used: {why}"
            );
            return plain(StatusCode::BAD_REQUEST, "the event names no usable call\n");
        }
    };
    let decision = incoming::decide(&state, &call);
    state
        .calls
        .spawn(call::answer(state.clone(), call, decision));
    plain(StatusCode::OK, "ok\n")
}
