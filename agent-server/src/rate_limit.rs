//! Per-client-IP rate limits on the webhook routes: a token bucket per address, refilled at
//! `webhook_requests_per_minute` up to `webhook_burst`. A client over its rate gets 429 with
//! `Retry-After`, before the request's signature is even checked, so a flood of forged
//! webhooks costs one map lookup each.
//!
//! When several nodes share a PostgreSQL store, each client also has one bucket there, shared
//! by every node (checked after this node's own, which stops a flood at one node without a
//! database round trip).
//!
//! The address is the TCP peer's. Behind a reverse proxy every request comes from the proxy,
//! so the proxy should limit per client itself (forwarded headers are not trusted: anyone
//! can write them). The map is bounded: full, idle buckets are dropped when it grows.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Instant,
};

use axum::{
    body::Body,
    extract::State,
    http::{HeaderValue, Request, StatusCode, header},
    middleware::Next,
    response::{IntoResponse as _, Response},
};

use crate::state::AppState;

/// The peer address of the connection a request came on (set by the accept loop).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The most addresses tracked at once.
const MAX_TRACKED: usize = 65_536;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The buckets of every client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// `per_minute` sustained, `burst` at once, per address.
    pub fn new(per_minute: u32, burst: u32) -> Self {
        RateLimiter {
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The bucket's shape, for the store shared by several nodes.
    pub fn limit(&self) -> agent_core::history::RateLimit {
        agent_core::history::RateLimit {
            per_sec: self.per_sec,
            burst: self.burst,
        }
    }

    /// Takes one request's token for `ip` at `now`; `Err` holds the seconds until one is free.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(&ip) {
            self.prune(&mut buckets, now);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_sec).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(((1.0 - bucket.tokens) / self.per_sec).ceil().max(1.0) as u64)
    }

    /// Drops buckets that have refilled (their clients are as new); if every client is busy,
    /// the oldest half goes, which at worst gives a flooder a fresh burst.
    fn prune(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        let (per_sec, burst) = (self.per_sec, self.burst);
        buckets.retain(|_, b| {
            b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_sec < burst
        });
        if buckets.len() >= MAX_TRACKED {
            let mut ages: Vec<Instant> = buckets.values().map(|b| b.at).collect();
            ages.sort_unstable();
            let cutoff = ages[ages.len() / 2];
            buckets.retain(|_, b| b.at > cutoff);
        }
    }
}

/// The middleware on the webhook routes.
pub async fn limit(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let Some(ClientAddr(addr)) = request.extensions().get::<ClientAddr>().copied() else {
        return next.run(request).await;
    };
    // This node's own bucket first: a flood at one node costs a map lookup each, never a
    // database round trip. Then, with a store shared by several nodes, the client's bucket
    // there, so spreading requests over the nodes gains nothing.
    let mut checked = state.rate_limiter.check(addr.ip(), Instant::now());
    if checked.is_ok()
        && let Some(history) = &state.history
        && let Some(Err(wait)) = history
            .take_token(&addr.ip().to_string(), state.rate_limiter.limit())
            .await
    {
        checked = Err(wait.as_secs().max(1));
    }
    match checked {
        Ok(()) => next.run(request).await,
        Err(retry_after) => {
            state.metrics.rate_limited();
            tracing::warn!(client = %addr.ip(), path = request.uri().path(), "webhook rate limit reached: 429");
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                "too many requests; slow down\n",
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_client_past_its_burst_waits_and_others_do_not() {
        let limiter = RateLimiter::new(60, 2);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let t0 = Instant::now();
        assert_eq!(limiter.check(a, t0), Ok(()));
        assert_eq!(limiter.check(a, t0), Ok(()));
        assert_eq!(limiter.check(a, t0), Err(1));
        assert_eq!(limiter.check(b, t0), Ok(()), "per address");
        assert_eq!(
            limiter.check(a, t0 + Duration::from_secs(1)),
            Ok(()),
            "refilled at 1/s"
        );
    }

    #[test]
    fn the_map_stays_bounded() {
        let limiter = RateLimiter::new(60, 1);
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            let _ = limiter.check(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(limiter.buckets.lock().unwrap().len() <= MAX_TRACKED);
    }
}
