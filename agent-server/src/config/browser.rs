//! `[browser]` in `serve.toml`, checked: which browser endpoints are on, for which origins,
//! behind which token, at which rates.
//!
//! Both endpoints spend the owner's money (a relayed call, a minted secret), so the checks
//! refuse the configurations that would expose them by accident: an origin that is not an
//! origin, `*`, a token variable that is named but empty, an endpoint that is on while no
//! route lets a browser reach its agent.

use std::time::Duration;

use super::{Route, check::Checker, spec::BrowserSpec};

/// The platform's bounds on a client secret's life (`expires_after.seconds`).
const SECRET_TTL_SECS: std::ops::RangeInclusive<u32> = 10..=7200;

/// The browser endpoints as the server runs them.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserConfig {
    /// `POST /agents/{name}/calls` is served.
    pub calls: bool,
    /// `POST /agents/{name}/client-secret` is served.
    pub client_secrets: bool,
    /// With `client_secrets`: `.../calls/{call_id}/attach` is served (the server runs the
    /// agent's tools on a page's call).
    pub attach: bool,
    /// Origins allowed to call the endpoints, as `scheme://host[:port]`.
    pub allowed_origins: Vec<String>,
    /// The environment variable holding the operator's bearer token, when one is required.
    pub operator_token_env: Option<String>,
    /// How long a minted client secret lives.
    pub client_secret_ttl: Duration,
    /// Requests per client IP and minute.
    pub requests_per_minute: u32,
    /// Requests per client IP in a burst.
    pub burst: u32,
    /// Requests per minute from all clients together.
    pub global_requests_per_minute: u32,
}

impl BrowserConfig {
    /// Whether any browser endpoint is on.
    pub fn any(&self) -> bool {
        self.calls || self.client_secrets
    }
}

pub(super) fn check(c: &mut Checker<'_>, spec: &BrowserSpec, routes: &[Route]) -> BrowserConfig {
    let mut allowed_origins = Vec::new();
    for origin in &spec.allowed_origins {
        match origin_of(origin.get_ref()) {
            Some(o) => allowed_origins.push(o),
            None => c.at(
                origin.span(),
                format!(
                    "`{}` is not an origin: write scheme://host[:port], with no path (and not `*`)",
                    origin.get_ref()
                ),
                Some("for example \"https://app.example.com\" or \"http://127.0.0.1:8080\""),
            ),
        }
    }
    let ttl = *spec.client_secret_ttl_secs.get_ref();
    if !SECRET_TTL_SECS.contains(&ttl) {
        c.at(
            spec.client_secret_ttl_secs.span(),
            "`browser.client_secret_ttl_secs` must be between 10 and 7200 (the platform's bounds)",
            Some("the default, 60, is enough for a page to connect"),
        );
    }
    let operator_token_env = spec.operator_token_env.as_ref().map(|name| {
        if name.get_ref().trim().is_empty() {
            c.at(
                name.span(),
                "`browser.operator_token_env` names no variable",
                Some("name the environment variable that holds the token, or remove the key"),
            );
        }
        name.get_ref().clone()
    });
    let enabled = spec.calls || spec.client_secrets;
    if enabled && !routes.iter().any(|r| r.browser) {
        c.at(
            0..0,
            "`[browser]` turns endpoints on, but no `[[route]]` has `browser = true`",
            Some("add browser = true to the route of each agent browsers may call"),
        );
    }
    for (key, value) in [
        ("requests_per_minute", spec.requests_per_minute),
        ("burst", spec.burst),
        (
            "global_requests_per_minute",
            spec.global_requests_per_minute,
        ),
    ] {
        if value == 0 {
            c.at(0..0, format!("`browser.{key}` must be at least 1"), None);
        }
    }
    BrowserConfig {
        calls: spec.calls,
        client_secrets: spec.client_secrets,
        attach: spec.client_secrets && spec.attach,
        allowed_origins,
        operator_token_env,
        client_secret_ttl: Duration::from_secs(u64::from(ttl)),
        requests_per_minute: spec.requests_per_minute.max(1),
        burst: spec.burst.max(1),
        global_requests_per_minute: spec.global_requests_per_minute.max(1),
    }
}

/// `text` as a browser sends it in `Origin` (`scheme://host[:port]`, lower case, no default
/// port), or `None` when it is not one.
pub fn origin_of(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && matches!(url.path(), "" | "/")
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !plain {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_anything_else_is_not_one() {
        assert_eq!(
            origin_of("https://App.Example.com").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("https://app.example.com:443/").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        for bad in [
            "*",
            "null",
            "app.example.com",
            "https://app.example.com/page",
            "ftp://app.example.com",
            "https://user@app.example.com",
        ] {
            assert_eq!(origin_of(bad), None, "{bad}");
        }
    }
}
