//! The WebSocket under a session: connecting with the right headers, and nothing else.
//!
//! Keeping the transport this small keeps secrets in one place: the API key goes into the
//! `Authorization` header here and nowhere else, and no error built here contains a header.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{self, client::IntoClientRequest, http::HeaderValue},
};

use super::secret::Secret;
use crate::protocol::Dialect;

/// The WebSocket stream a session reads and writes.
pub type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How to open a Realtime connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// `ws://` or `wss://` URL; `model=` is added when the URL names neither a model nor an
    /// Azure deployment.
    pub url: String,
    /// The model, added to the URL as described above.
    pub model: String,
    /// Which protocol dialect to speak; beta adds `OpenAI-Beta: realtime=v1`.
    pub dialect: Dialect,
    /// Sent as `Authorization: Bearer ...` (or in `api_key_header`) when present.
    pub api_key: Option<Secret>,
    /// The header that carries `api_key` as is, instead of `Authorization: Bearer`.
    pub api_key_header: Option<String>,
    /// Extra headers (already expanded), e.g. Azure's `api-key`.
    pub headers: Vec<(String, Secret)>,
    /// How long the TCP + TLS + upgrade may take.
    pub connect_timeout: Duration,
    /// The largest message (and frame) the server may send; a bigger one ends the connection
    /// with a message that says so.
    pub max_message_bytes: usize,
}

/// The default [`ConnectOptions::max_message_bytes`]: 16 MiB, well above any Realtime event
/// (an audio delta is a few KB) and small enough that a runaway server cannot exhaust memory.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Why a connection could not be opened. Messages never contain header values.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL cannot be used.
    #[error("invalid Realtime URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, which holds no secret (keys travel in headers).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A header name or value is not valid HTTP.
    #[error("header `{name}` is not a valid HTTP header (value not shown); check the agent file")]
    InvalidHeader {
        /// The header's name.
        name: String,
    },
    /// The server refused the credentials: retrying will not help.
    #[error(
        "the server at {url} rejected the credentials (HTTP {status}); check the API key's environment variable"
    )]
    Unauthorized {
        /// Where we connected.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// The server answered the upgrade with another HTTP status.
    #[error("the server at {url} refused the WebSocket upgrade with HTTP {status}")]
    Rejected {
        /// Where we connected.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// Connecting took too long.
    #[error("connecting to {url} timed out after {after:?}")]
    Timeout {
        /// Where we connected.
        url: String,
        /// The limit that passed.
        after: Duration,
    },
    /// A network or TLS failure; usually worth a retry.
    #[error("cannot connect to {url}: {message}")]
    Io {
        /// Where we connected.
        url: String,
        /// What failed.
        message: String,
    },
}

impl TransportError {
    /// Whether trying again might succeed (network trouble) or not (bad URL, bad key).
    pub fn is_retryable(&self) -> bool {
        match self {
            TransportError::Timeout { .. } | TransportError::Io { .. } => true,
            TransportError::Rejected { status, .. } => *status == 429 || *status >= 500,
            TransportError::InvalidUrl { .. }
            | TransportError::InvalidHeader { .. }
            | TransportError::Unauthorized { .. } => false,
        }
    }
}

/// Whether `url` names this machine (`localhost`, 127.0.0.0/8, `::1`): where test servers run,
/// and where `ws://` crosses no network.
pub fn is_loopback_url(url: &str) -> bool {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        })
}

/// Whether `url` is unencrypted `ws://` to another machine.
pub fn is_insecure_remote(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| u.scheme() == "ws") && !is_loopback_url(url)
}

/// The URL actually dialled: `model=` added unless the URL already selects a model, an Azure
/// deployment or a call (a sideband `?call_id=` attaches to a call whose model the accept chose).
pub fn effective_url(url: &str, model: &str) -> Result<url::Url, TransportError> {
    let mut parsed = url::Url::parse(url).map_err(|err| TransportError::InvalidUrl {
        url: crate::redact::redact_url(url),
        reason: err.to_string(),
    })?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return Err(TransportError::InvalidUrl {
            url: crate::redact::redact_url(url),
            reason: "the scheme must be ws:// or wss://".to_owned(),
        });
    }
    let selects_model = parsed
        .query_pairs()
        .any(|(k, _)| k == "model" || k == "deployment" || k == "call_id");
    if !selects_model && !model.is_empty() {
        parsed.query_pairs_mut().append_pair("model", model);
    }
    Ok(parsed)
}

/// The WebSocket read buffer per connection (see [`connect`]).
const READ_BUFFER: usize = 16 * 1024;

/// Opens the WebSocket.
pub async fn connect(options: &ConnectOptions) -> Result<WsStream, TransportError> {
    crate::tls::ensure_crypto_provider();
    let url = effective_url(&options.url, &options.model)?;
    let shown = crate::redact::redact_url(url.as_str());
    let mut request =
        url.as_str()
            .into_client_request()
            .map_err(|err| TransportError::InvalidUrl {
                url: shown.clone(),
                reason: err.to_string(),
            })?;
    let headers = request.headers_mut();
    if let Some(key) = &options.api_key {
        match &options.api_key_header {
            None => {
                let value =
                    HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                        TransportError::InvalidHeader {
                            name: "Authorization".to_owned(),
                        }
                    })?;
                headers.insert(tungstenite::http::header::AUTHORIZATION, sensitive(value));
            }
            Some(name) => {
                let invalid = || TransportError::InvalidHeader { name: name.clone() };
                let header_name = tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| invalid())?;
                let value = HeaderValue::from_str(key.expose()).map_err(|_| invalid())?;
                headers.insert(header_name, sensitive(value));
            }
        }
    }
    if options.dialect == Dialect::Beta {
        headers.insert("OpenAI-Beta", HeaderValue::from_static("realtime=v1"));
    }
    for (name, value) in &options.headers {
        let invalid = || TransportError::InvalidHeader { name: name.clone() };
        let header_name =
            tungstenite::http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let header_value = HeaderValue::from_str(value.expose()).map_err(|_| invalid())?;
        headers.insert(header_name, sensitive(header_value));
    }

    // tungstenite zero-fills its whole read buffer before every read, so its 128 KiB default
    // costs each read a 128 KiB memset and keeps 128 KiB resident per idle session. Realtime
    // frames are small (an audio delta is about 6 KB); larger ones are read in several steps.
    let config = tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(options.max_message_bytes))
        .max_frame_size(Some(options.max_message_bytes));
    let dial = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
    match tokio::time::timeout(options.connect_timeout, dial).await {
        Err(_) => Err(TransportError::Timeout {
            url: shown,
            after: options.connect_timeout,
        }),
        Ok(Ok((stream, _response))) => Ok(stream),
        Ok(Err(err)) => Err(classify(err, shown)),
    }
}

fn sensitive(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

fn classify(err: tungstenite::Error, url: String) -> TransportError {
    match err {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            if status == 401 || status == 403 {
                TransportError::Unauthorized { url, status }
            } else {
                TransportError::Rejected { url, status }
            }
        }
        tungstenite::Error::Url(reason) => TransportError::InvalidUrl {
            url,
            reason: reason.to_string(),
        },
        other => TransportError::Io {
            url,
            message: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_model_unless_the_url_selects_one() {
        let u = effective_url("wss://api.openai.com/v1/realtime", "gpt-realtime").unwrap();
        assert_eq!(
            u.as_str(),
            "wss://api.openai.com/v1/realtime?model=gpt-realtime"
        );
        let u = effective_url("wss://x/v1/realtime?model=m", "gpt-realtime").unwrap();
        assert_eq!(u.as_str(), "wss://x/v1/realtime?model=m");
        let u = effective_url(
            "wss://r.openai.azure.com/openai/realtime?api-version=2024-10-01-preview&deployment=d",
            "gpt-realtime",
        )
        .unwrap();
        assert!(!u.as_str().contains("model="));
        let u = effective_url("wss://api.openai.com/v1/realtime?call_id=rtc_1", "m").unwrap();
        assert_eq!(
            u.as_str(),
            "wss://api.openai.com/v1/realtime?call_id=rtc_1",
            "a sideband's call chose its model at accept"
        );
    }

    #[test]
    fn loopback_and_insecure_urls() {
        assert!(is_loopback_url("ws://127.0.0.1:9000/v1/realtime"));
        assert!(is_loopback_url("ws://localhost:9000"));
        assert!(is_loopback_url("ws://[::1]:9000"));
        assert!(!is_loopback_url("wss://api.openai.com/v1/realtime"));
        assert!(!is_loopback_url("not a url"));
        assert!(is_insecure_remote("ws://10.0.0.5/v1/realtime"));
        assert!(!is_insecure_remote("ws://127.0.0.1/v1/realtime"));
        assert!(!is_insecure_remote("wss://10.0.0.5/v1/realtime"));
    }

    #[test]
    fn rejects_non_websocket_urls() {
        assert!(matches!(
            effective_url("https://api.openai.com/v1/realtime", "m"),
            Err(TransportError::InvalidUrl { .. })
        ));
        assert!(matches!(
            effective_url("not a url", "m"),
            Err(TransportError::InvalidUrl { .. })
        ));
    }

    #[tokio::test]
    async fn refused_connection_is_retryable_and_secret_free() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let options = ConnectOptions {
            url: format!("ws://127.0.0.1:{port}/v1/realtime"),
            model: "m".into(),
            dialect: Dialect::Ga,
            api_key: Some(Secret::new("sk-should-not-leak")),
            api_key_header: None,
            headers: vec![("api-key".into(), Secret::new("also-secret"))],
            connect_timeout: Duration::from_secs(5),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        };
        let err = connect(&options).await.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        let shown = format!("{err} {err:?} {options:?}");
        assert!(!shown.contains("sk-should-not-leak") && !shown.contains("also-secret"));
    }
}
