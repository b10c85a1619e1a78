//! Streamable HTTP servers: rmcp's client transport on this workspace's reqwest, with the
//! limits the rest of the runtime keeps.
//!
//! - Headers and the bearer token are expanded from `${ENV}` here (their values are registered
//!   as secrets) and marked sensitive, so reqwest never prints them.
//! - Redirects are not followed: an endpoint that moved is an error naming the status, and the
//!   token never reaches another server. A server on this machine is reached without a proxy.
//! - Bodies and server-sent events are limited to [`super::spec::MAX_MESSAGE_BYTES`], and
//!   reconnecting a dropped event stream has a budget (three tries, backing off to 4 s) instead
//!   of rmcp's default of trying forever.

use std::{collections::HashMap, sync::Arc, time::Duration};

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::transport::{
    StreamableHttpClientTransport, common::client_side_sse::ExponentialBackoff,
    streamable_http_client::StreamableHttpClientTransportConfig,
};

use super::{McpError, spec::McpClientSpec};
use crate::tool::EnvTemplate;

/// Times a dropped event stream is reopened before the server counts as gone.
const STREAM_RETRIES: usize = 3;

/// The transport for the HTTP server `spec` declares. `connect_timeout` bounds each new TCP
/// and TLS connection; calls have their own deadlines.
pub(crate) fn transport(
    spec: &McpClientSpec,
    connect_timeout: Duration,
    max_message: usize,
) -> Result<StreamableHttpClientTransport<reqwest::Client>, McpError> {
    let fail = |reason: String| McpError::Startup {
        server: spec.name().to_owned(),
        reason,
    };
    let url = spec.url.clone().unwrap_or_default();
    let mut headers = HashMap::new();
    for (name, template) in &spec.headers {
        let value = expand(template).map_err(|err| fail(format!("header `{name}`: {err}")))?;
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| fail(format!("`{name}` is not a valid header name")))?;
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            fail(format!(
                "header `{name}` has characters a header value cannot hold"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    crate::tls::ensure_crypto_provider();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none());
    if crate::session::transport::is_loopback_url(&url) {
        // A server on this machine is never reached through a proxy (HTTP_PROXY and the like
        // are honoured for the others).
        builder = builder.no_proxy();
    }
    let client = builder
        .build()
        .map_err(|err| fail(format!("cannot build an HTTP client: {err}")))?;
    let mut retry = ExponentialBackoff::default();
    retry.max_times = Some(STREAM_RETRIES);
    retry.base_duration = Duration::from_millis(500);
    retry.max_delay = Some(Duration::from_secs(4));
    let mut config = StreamableHttpClientTransportConfig::with_uri(url)
        .custom_headers(headers)
        .max_json_response_size(max_message)
        .max_sse_event_size(max_message)
        .reinit_on_expired_session(true);
    config.retry_config = Arc::new(retry);
    if let Some(token) = &spec.bearer_token {
        let token = expand(token).map_err(|err| fail(format!("`bearer_token`: {err}")))?;
        // Registered even when written into the file as is: it is a credential.
        crate::redact::register_secret(&token);
        config = config.auth_header(token);
    }
    Ok(StreamableHttpClientTransport::with_client(client, config))
}

fn expand(template: &str) -> Result<String, String> {
    EnvTemplate::parse(template)
        .map_err(|err| err.to_string())?
        .expand()
        .map_err(|err| err.to_string())
}
