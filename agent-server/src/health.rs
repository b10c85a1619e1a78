//! `GET /healthz` (the process answers), `GET /readyz` (it takes new calls) and, on the admin
//! listener, `GET /metrics`.

use std::sync::Arc;

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};

use crate::state::AppState;

/// Always 200 while the process serves HTTP.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 while new calls are taken; 503 when draining or with every call slot in use, so a
/// load balancer sends calls elsewhere.
pub async fn readyz(State(state): State<Arc<AppState>>) -> (StatusCode, String) {
    let capacity = &state.capacity;
    if capacity.is_draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining\n".into());
    }
    state.tokens.prune(std::time::Instant::now());
    let (used, max) = (capacity.in_use(), capacity.max());
    if used >= max {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("full: {used}/{max} calls\n"),
        );
    }
    (StatusCode::OK, format!("ready: {used}/{max} calls\n"))
}

/// The metrics in Prometheus' text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let capacity = &state.capacity;
    let text = state
        .metrics
        .render((capacity.in_use(), capacity.max()), capacity.is_draining());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}
