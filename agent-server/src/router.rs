//! The routes, and the layers every request goes through, in one place: tracing (method and
//! path only: query strings and headers may carry credentials), a global limit on requests in
//! flight, a request timeout and a body size limit.

use std::sync::Arc;

use axum::{
    Router,
    http::{Request, StatusCode},
    routing::{get, post},
};
use tower::ServiceBuilder;
use tower_http::{limit::RequestBodyLimitLayer, timeout::TimeoutLayer, trace::TraceLayer};

use crate::{health, state::AppState, twilio};

/// The server's router over `state`.
pub fn router(state: Arc<AppState>) -> Router {
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
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/twilio/voice", post(twilio::voice::answer))
        .route("/twilio/voice/{route}", post(twilio::voice::answer_route))
        .route("/twilio/media-stream", get(twilio::media_stream::upgrade))
        .route("/openai/webhook", post(crate::sip::webhook::receive))
        .with_state(state)
        .layer(layers)
}
