//! The routes, and the layers every request goes through, in one place: tracing (method and
//! path only: query strings and headers may carry credentials), a global limit on requests in
//! flight, a request timeout and a body size limit; on the webhook routes, a per-client-IP
//! rate limit. The admin router (`/metrics`) is served on its own listener.

use std::sync::Arc;

use axum::{
    Router,
    http::{Request, StatusCode},
    routing::{get, post},
};
use tower::ServiceBuilder;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer, trace::TraceLayer};

use crate::{approvals, browser, console, health, rate_limit, sip, state::AppState, twilio};

/// The server's router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let webhooks = Router::new()
        .route("/twilio/voice", post(twilio::voice::answer))
        .route("/twilio/voice/{route}", post(twilio::voice::answer_route))
        .route(twilio::resume::PATH, post(twilio::resume::resume))
        .route("/openai/webhook", post(sip::webhook::receive))
        // The operator's approvals: behind the token, and rate limited like the webhooks so a
        // wrong token cannot be guessed at speed.
        .route("/approvals", get(approvals::list))
        .route("/approvals/{id}", post(approvals::answer))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit,
        ));
    let mut routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/twilio/media-stream", get(twilio::media_stream::upgrade))
        .merge(webhooks);
    if state.browser.is_some() {
        routes = routes.merge(browser::routes()).merge(console::routes());
    }
    with_layers(routes, state)
}

/// The operator's router: `/metrics`, `/healthz` and `/readyz`, for the admin listener only.
pub fn admin_router(state: Arc<AppState>) -> Router {
    let routes = Router::new()
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    with_layers(routes, state)
}

fn with_layers(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    let limits = state.config.limits;
    let layers = ServiceBuilder::new()
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ));
    routes.with_state(state).layer(layers)
}
