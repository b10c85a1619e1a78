//! Who may use a browser endpoint, checked before anything else runs or is spent: the
//! endpoint is on, the page's origin is allowed, the operator's token (when one is set) is
//! presented, and the client and the server as a whole are under their rates.
//!
//! An `Origin` check alone is not authentication (any program can send any `Origin`): it only
//! keeps other sites' pages from using the endpoint through a visitor's browser. The token and
//! the rate limits are what hold against a script. A request without `Origin` is not from a
//! cross-origin page, so it passes the origin check and meets the others.
//!
//! CORS is off unless origins are listed: without `Access-Control-Allow-Origin` a browser
//! gives no cross-origin page the answer.

use std::{net::IpAddr, time::Instant};

use axum::{
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};

use agent_core::session::Secret;

use super::BrowserState;
use crate::{config::BrowserConfig, rate_limit::RateLimiter};

/// The headers a page may read from an answer: the call's id and the console feed's token.
pub const EXPOSED_HEADERS: &str = "location, x-agent-call-id, x-agent-feed-token";

/// A refusal, answered as it is (boxed: a `Response` is large to move around in a `Result`).
pub type Refused = Box<Response>;

/// A request that passed: the origin to echo in the answer's CORS headers, if any.
#[derive(Debug, Clone, Default)]
pub struct Admitted {
    origin: Option<HeaderValue>,
}

impl Admitted {
    /// Adds the CORS headers an allowed cross-origin page needs to read `response`.
    pub fn cors(&self, mut response: Response) -> Response {
        if let Some(origin) = &self.origin {
            let headers = response.headers_mut();
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
            headers.insert(header::VARY, HeaderValue::from_static("origin"));
        }
        response
    }
}

/// The limits of the browser endpoints.
#[derive(Debug)]
pub struct Limits {
    per_client: RateLimiter,
    global: RateLimiter,
}

impl Limits {
    /// The rates `config` sets.
    pub fn new(config: &BrowserConfig) -> Self {
        let global = config.global_requests_per_minute;
        Limits {
            per_client: RateLimiter::new(config.requests_per_minute, config.burst),
            // The whole server's bucket: a tenth of a minute's worth at once.
            global: RateLimiter::new(global, (global / 10).max(1)),
        }
    }
}

/// Admits a request to an endpoint that `enabled` says is on, or answers the refusal;
/// `operator_token` is the token every request must present, when one is configured.
pub fn admit(
    browser: &BrowserState,
    operator_token: Option<&Secret>,
    enabled: bool,
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Result<Admitted, Refused> {
    if !enabled {
        return Err(Box::new(refuse(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "this endpoint is not enabled in serve.toml ([browser])",
        )));
    }
    let admitted = origin(&browser.config, headers)?;
    if let Some(expected) = operator_token
        && !bearer_matches(headers, expected.expose())
    {
        return Err(Box::new(admitted.cors(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs the operator's token: Authorization: Bearer <token>",
        ))));
    }
    let now = Instant::now();
    if let Some(ip) = client
        && let Err(wait) = browser.limits.per_client.check(ip, now)
    {
        tracing::warn!(client = %ip, "browser endpoint rate limit reached: 429");
        return Err(Box::new(admitted.cors(too_many(wait))));
    }
    if let Err(wait) = browser.limits.global.check(IpAddr::from([0, 0, 0, 0]), now) {
        tracing::warn!("the browser endpoints' global rate limit is reached: 429");
        return Err(Box::new(admitted.cors(too_many(wait))));
    }
    Ok(admitted)
}

/// [`admit`] for a request to the server in `state`: the browser state and the admitted
/// request, or the refusal (404 when no browser endpoint is on at all). `enabled` picks the
/// endpoint's switch from `[browser]`.
pub fn admit_request<'a>(
    state: &'a crate::state::AppState,
    enabled: fn(&BrowserConfig) -> bool,
    headers: &HeaderMap,
    client: Option<axum::Extension<crate::rate_limit::ClientAddr>>,
) -> Result<(&'a BrowserState, Admitted), Refused> {
    let Some(browser) = &state.browser else {
        return Err(Box::new(super::not_enabled()));
    };
    let ip = client.map(|axum::Extension(crate::rate_limit::ClientAddr(addr))| addr.ip());
    let admitted = admit(
        browser,
        state.operator_token(),
        enabled(&browser.config),
        headers,
        ip,
    )?;
    Ok((browser, admitted))
}

/// The answer to a CORS preflight (`OPTIONS`) for an endpoint that `enabled` says is on.
pub fn preflight(browser: &BrowserState, enabled: bool, headers: &HeaderMap) -> Response {
    if !enabled {
        return refuse(StatusCode::NOT_FOUND, "not_enabled", "not enabled");
    }
    match origin(&browser.config, headers) {
        Ok(admitted) if admitted.origin.is_some() => {
            let mut response = admitted.cors(StatusCode::NO_CONTENT.into_response());
            let h = response.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("POST"),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("authorization, content-type"),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            response
        }
        Ok(_) => refuse(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "a preflight needs an allowed Origin",
        ),
        Err(refused) => *refused,
    }
}

/// The request's origin, checked against the allowed ones.
fn origin(config: &BrowserConfig, headers: &HeaderMap) -> Result<Admitted, Refused> {
    let Some(value) = headers.get(header::ORIGIN) else {
        return Ok(Admitted::default());
    };
    let allowed = value
        .to_str()
        .ok()
        .and_then(crate::config::origin_of)
        .is_some_and(|o| config.allowed_origins.contains(&o));
    if !allowed {
        tracing::warn!(
            origin = %String::from_utf8_lossy(value.as_bytes()).chars().take(100).collect::<String>(),
            "refused a browser request from an origin serve.toml does not allow"
        );
        return Err(Box::new(refuse(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this page's origin is not in [browser] allowed_origins",
        )));
    }
    Ok(Admitted {
        origin: Some(value.clone()),
    })
}

/// Whether `Authorization` is `Bearer <expected>`, compared in constant time.
pub fn bearer_matches(headers: &HeaderMap, expected: &str) -> bool {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    same_token(presented, expected)
}

/// Whether `presented` is `expected`, in time that does not depend on where they differ:
/// length first (not secret: a token's length is in the docs), then every byte.
pub fn same_token(presented: &str, expected: &str) -> bool {
    let (a, b) = (presented.as_bytes(), expected.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn too_many(retry_after: u64) -> Response {
    let mut response = refuse(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests; slow down",
    );
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// An OpenAI-style error answer: `{"error": {"code", "message"}}`.
pub fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    json(status, &body)
}

/// A JSON answer (axum's `Json` needs a feature this workspace leaves off).
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_must_match_exactly() {
        let mut headers = HeaderMap::new();
        assert!(!bearer_matches(&headers, "op-token"));
        for (presented, ok) in [
            ("Bearer op-token", true),
            ("Bearer op-toke", false),
            ("Bearer op-tokenx", false),
            ("bearer op-token", false),
            ("op-token", false),
        ] {
            headers.insert(header::AUTHORIZATION, HeaderValue::from_static(presented));
            assert_eq!(bearer_matches(&headers, "op-token"), ok, "{presented}");
        }
    }
}
