//! `http_get`: fetches a web page or API response from a host the agent allows.
//!
//! Settings (`[tool_config.http_get]`, checked when the agent file loads: unknown keys, wrong
//! types, malformed hosts and out-of-range timeouts fail `agent check`):
//! - `allow_hosts`: the [`HostAllowlist`]; empty (the default) denies everything;
//! - `timeout_secs` (default 10, at most 300) and `max_response_bytes` (default 64 KiB).
//!
//! SSRF protection: the URL's host must match the allowlist; the name is resolved once, every
//! resolved address is checked, and the connection is pinned to the checked addresses (so DNS
//! cannot change its answer between the check and the connection). Special addresses
//! (loopback, private, link-local, ...) are reachable only when the allowlist names the host or
//! the address exactly. Redirects are followed by hand, at most 5, and each hop is checked the
//! same way. No proxy is used.

use std::{net::SocketAddr, time::Duration};

use agent_core::tool::http::{HttpResponseSummary, read_response, request_error};
use agent_tool::{ToolContext, ToolError, tool};
use serde::{Deserialize, Deserializer, de::Error as _};

use crate::net_policy::{HostAllowlist, Match, is_special_address};

link_anchor!();

/// The settings key and tool name.
pub const NAME: &str = "http_get";
const DEFAULT_TIMEOUT_SECS: f64 = 10.0;
const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 5;

/// `[tool_config.http_get]`. Deserializing checks the values too, so the loader reports a
/// malformed host or timeout with the file's line and column.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpGetSettings {
    /// Hosts the tool may reach; see [`HostAllowlist`].
    #[serde(default, deserialize_with = "allow_hosts")]
    pub allow_hosts: Vec<String>,
    /// The time limit of one call, redirects included, in seconds (more than 0, at most 300).
    #[serde(default, deserialize_with = "timeout_secs")]
    #[schemars(range(min = 0.001, max = 300))]
    pub timeout_secs: Option<f64>,
    /// How much of the body the model reads.
    pub max_response_bytes: Option<usize>,
}

fn allow_hosts<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let hosts = Vec::<String>::deserialize(deserializer)?;
    HostAllowlist::parse(&hosts).map_err(D::Error::custom)?;
    Ok(hosts)
}

fn timeout_secs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    let secs = f64::deserialize(deserializer)?;
    if !(secs.is_finite() && secs > 0.0 && secs <= 300.0) {
        return Err(D::Error::custom(format!(
            "{secs} is not between 0 and 300 seconds"
        )));
    }
    Ok(Some(secs))
}

/// Fetches a URL with HTTP GET and returns the status and the (possibly truncated) body. Only
/// hosts this agent allows can be reached; use it for public web pages and APIs the
/// instructions mention.
#[tool(settings = HttpGetSettings)]
pub async fn http_get(
    /// The full http:// or https:// URL to fetch.
    url: String,
    ctx: ToolContext,
) -> Result<HttpResponseSummary, ToolError> {
    let settings: HttpGetSettings = ctx.setting(NAME)?.unwrap_or_default();
    let allowlist = HostAllowlist::parse(&settings.allow_hosts).map_err(|problem| {
        ToolError::failed(format!(
            "the agent's `[tool_config.http_get] allow_hosts` is invalid: {problem}"
        ))
    })?;
    if allowlist.is_empty() {
        return Err(ToolError::failed(
            "http_get may not reach any host: this agent's `[tool_config.http_get] allow_hosts` is empty",
        ));
    }
    let timeout_secs = settings.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
    if !(timeout_secs.is_finite() && timeout_secs > 0.0 && timeout_secs <= 300.0) {
        return Err(ToolError::failed(
            "`[tool_config.http_get] timeout_secs` must be between 0 and 300",
        ));
    }
    let timeout = Duration::from_secs_f64(timeout_secs);
    let max_bytes = settings
        .max_response_bytes
        .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES)
        .clamp(1, agent_core::tool::http::MAX_RESPONSE_BYTES_LIMIT);
    let url = reqwest::Url::parse(url.trim()).map_err(|err| {
        ToolError::invalid_arguments(
            NAME,
            format!("`{url}` is not a URL: {err}"),
            "a full URL such as `https://example.com/page`",
        )
    })?;
    let fetch = fetch(url, &allowlist, timeout, max_bytes);
    tokio::select! {
        () = ctx.cancelled() => Err(ToolError::Cancelled),
        result = tokio::time::timeout(timeout, fetch) => match result {
            Ok(result) => result,
            Err(_) => Err(ToolError::Timeout { after: timeout }),
        },
    }
}

async fn fetch(
    mut url: reqwest::Url,
    allowlist: &HostAllowlist,
    timeout: Duration,
    max_bytes: usize,
) -> Result<HttpResponseSummary, ToolError> {
    agent_core::tls::ensure_crypto_provider();
    for _ in 0..=MAX_REDIRECTS {
        let addrs = check_url(&url, allowlist).await?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(timeout);
        // Pin the connection to the addresses just checked.
        if let Some(url::Host::Domain(domain)) = url.host() {
            builder = builder.resolve_to_addrs(domain, &addrs);
        }
        let client = builder
            .build()
            .map_err(|err| ToolError::failed(format!("cannot build an HTTP client: {err}")))?;
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|err| request_error(&err, timeout))?;
        if response.status().is_redirection()
            && let Some(location) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|value| value.to_str().ok())
        {
            url = url.join(location).map_err(|err| {
                ToolError::failed(format!("the server redirected to an invalid URL: {err}"))
            })?;
            continue;
        }
        return read_response(response, max_bytes, true)
            .await
            .map_err(|err| request_error(&err, timeout));
    }
    Err(ToolError::failed(format!(
        "more than {MAX_REDIRECTS} redirects"
    )))
}

/// Checks `url` against the policy and returns the addresses the connection may use.
async fn check_url(
    url: &reqwest::Url,
    allowlist: &HostAllowlist,
) -> Result<Vec<SocketAddr>, ToolError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ToolError::invalid_arguments(
            NAME,
            format!("`{}` URLs are not supported", url.scheme()),
            "an http:// or https:// URL",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ToolError::invalid_arguments(
            NAME,
            "URLs with credentials are not allowed",
            "a URL without `user:password@`",
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(ToolError::invalid_arguments(
            NAME,
            "the URL has no host",
            "a full URL such as `https://example.com/page`",
        ));
    };
    let Some(how) = allowlist.matches(host) else {
        return Err(ToolError::failed(format!(
            "host `{host}` is not in this agent's allowlist (`[tool_config.http_get] allow_hosts`)"
        )));
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        _ => tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| ToolError::failed(format!("cannot resolve `{host}`: {err}")))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(ToolError::failed(format!("`{host}` has no addresses")));
    }
    if how == Match::Wildcard
        && let Some(blocked) = addrs.iter().find(|addr| is_special_address(addr.ip()))
    {
        return Err(ToolError::failed(format!(
            "`{host}` resolves to {}, a loopback, private or otherwise internal address; only an allowlist entry that names the host exactly may reach such addresses",
            blocked.ip()
        )));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_tool::ToolConfig;
    use serde_json::json;
    use std::sync::Arc;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    fn ctx(settings: serde_json::Value) -> ToolContext {
        ToolContext::standalone()
            .with_config(Arc::new(ToolConfig::new().with_setting(NAME, settings)))
    }

    /// Serves canned responses on loopback, one per connection, for `count` connections.
    async fn serve(responses: Vec<String>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for response in responses {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        addr
    }

    fn ok_body(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn settings_are_checked_when_the_agent_loads() {
        let registry = crate::registry().unwrap();
        let tool = registry.get(NAME).unwrap();
        tool.check_settings(&json!({"allow_hosts": ["example.com", "*.example.org", "127.0.0.1"], "timeout_secs": 5, "max_response_bytes": 100}))
            .unwrap();
        let cases = [
            (
                json!({"allowed_hosts": ["example.com"]}),
                "allowed_hosts",
                "unknown field `allowed_hosts`",
            ),
            (json!({"bogus": 1}), "bogus", "unknown field `bogus`"),
            (
                json!({"allow_hosts": "example.com"}),
                "allow_hosts",
                "invalid type",
            ),
            (
                json!({"allow_hosts": ["exa mple.com"]}),
                "allow_hosts",
                "is not a host name",
            ),
            (
                json!({"timeout_secs": 0}),
                "timeout_secs",
                "between 0 and 300",
            ),
        ];
        for (settings, field, want) in cases {
            let err = tool.check_settings(&settings).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{settings}: {err}");
            assert!(
                err.message.contains(want),
                "{settings}: `{err}` lacks `{want}`"
            );
        }
    }

    #[tokio::test]
    async fn denied_by_default_and_outside_the_allowlist() {
        let err = http_get("http://127.0.0.1/".into(), ToolContext::standalone())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("allow_hosts` is empty"), "{err}");
        let err = http_get(
            "http://127.0.0.1/".into(),
            ctx(json!({"allow_hosts": ["example.com"]})),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("not in this agent's allowlist"),
            "{err}"
        );
        let err = http_get(
            "file:///etc/passwd".into(),
            ctx(json!({"allow_hosts": ["*"]})),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err}");
    }

    #[tokio::test]
    async fn wildcards_never_reach_internal_addresses() {
        for url in [
            "http://127.0.0.1:9/",
            "http://[::1]:9/",
            "http://169.254.169.254/latest/meta-data/",
            "http://localhost:9/",
        ] {
            let err = http_get(url.into(), ctx(json!({"allow_hosts": ["*"]})))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("internal address"), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn named_loopback_hosts_are_fetched_and_truncated() {
        let addr = serve(vec![ok_body("hello, world")]).await;
        let out = http_get(
            format!("http://127.0.0.1:{}/page", addr.port()),
            ctx(json!({"allow_hosts": ["127.0.0.1"], "max_response_bytes": 5})),
        )
        .await
        .unwrap();
        assert_eq!(out.status, 200);
        assert_eq!(out.body, json!("hello"));
        assert!(out.truncated);

        let addr = serve(vec![ok_body("hi")]).await;
        let out = http_get(
            format!("http://localhost:{}/", addr.port()),
            ctx(json!({"allow_hosts": ["localhost"]})),
        )
        .await
        .unwrap();
        assert_eq!(out.body, json!("hi"));
    }

    #[tokio::test]
    async fn redirects_are_checked_hop_by_hop() {
        let addr = serve(vec![
            "HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
            ok_body("arrived"),
        ])
        .await;
        let settings = json!({"allow_hosts": ["127.0.0.1"]});
        let out = http_get(
            format!("http://127.0.0.1:{}/start", addr.port()),
            ctx(settings.clone()),
        )
        .await
        .unwrap();
        assert_eq!(out.body, json!("arrived"));
        assert!(out.url.unwrap().ends_with("/next"));

        let addr = serve(vec![format!(
            "HTTP/1.1 301 Moved\r\nLocation: http://localhost:{}/x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            1
        )])
        .await;
        let err = http_get(format!("http://127.0.0.1:{}/", addr.port()), ctx(settings))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("host `localhost` is not in this agent's allowlist"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn slow_servers_time_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let err = http_get(
            format!("http://127.0.0.1:{}/", addr.port()),
            ctx(json!({"allow_hosts": ["127.0.0.1"], "timeout_secs": 0.2})),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ToolError::Timeout { .. }), "{err}");
        server.abort();
    }
}
