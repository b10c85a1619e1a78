//! The HTTP requests a page (or its server) makes to start a WebRTC call: minting a client
//! secret, and posting the SDP offer in one of the two forms.

use std::{net::SocketAddr, time::Duration};

use serde_json::Value;

use super::{BrowserError, HttpAnswer};
use crate::{platform::webrtc::encode_multipart, twilio::http};

/// How long one request may take.
const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// The boundary of the multipart bodies sent.
const BOUNDARY: &str = "agent-testkit-webrtc-offer";

/// How a call is asked for (shared/realtime-spec/realtime-rest.md, "WebRTC calls").
#[derive(Debug, Clone, PartialEq)]
pub enum CallVia {
    /// Browser direct: `application/sdp`, this client secret as the bearer.
    ClientSecret(String),
    /// Unified: `multipart/form-data` with parts `sdp` and `session`, this API key as the
    /// bearer (`None`: no `Authorization` header at all).
    Multipart {
        /// The bearer.
        api_key: Option<String>,
        /// The `session` part (a GA session config).
        session: Value,
    },
    /// Through an application server that relays the offer (`agent serve`'s
    /// `POST /agents/{name}/calls`): `application/sdp` to `path` on the base given, with these
    /// extra headers (an `Origin`, an operator's bearer); the call id comes back in
    /// `X-Agent-Call-Id`.
    Relay {
        /// The path, e.g. `/agents/support/calls`.
        path: String,
        /// Extra request headers.
        headers: Vec<(String, String)>,
    },
}

/// `POST {api_base}/v1/realtime/client_secrets` with `body`, `api_key` as the bearer (`None`:
/// no `Authorization` header).
pub async fn post_client_secret(
    api_base: &str,
    api_key: Option<&str>,
    body: &Value,
) -> Result<HttpAnswer, BrowserError> {
    let auth = api_key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth.as_str()));
    }
    let body = body.to_string();
    post(
        api_base,
        "/v1/realtime/client_secrets",
        &headers,
        body.as_bytes(),
    )
    .await
}

/// `POST {api_base}/v1/realtime/calls` with `offer` (SDP text), in the form `via` names.
pub async fn post_offer(
    api_base: &str,
    via: &CallVia,
    offer: &str,
) -> Result<HttpAnswer, BrowserError> {
    match via {
        CallVia::ClientSecret(secret) => {
            let auth = format!("Bearer {secret}");
            let headers = [
                ("content-type", "application/sdp"),
                ("authorization", auth.as_str()),
            ];
            post(api_base, "/v1/realtime/calls", &headers, offer.as_bytes()).await
        }
        CallVia::Multipart { api_key, session } => {
            let session = session.to_string();
            let body = encode_multipart(
                BOUNDARY,
                &[
                    ("sdp", "application/sdp", offer),
                    ("session", "application/json", &session),
                ],
            );
            let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
            let auth = api_key.as_ref().map(|k| format!("Bearer {k}"));
            let mut headers = vec![("content-type", content_type.as_str())];
            if let Some(auth) = &auth {
                headers.push(("authorization", auth.as_str()));
            }
            post(api_base, "/v1/realtime/calls", &headers, &body).await
        }
        CallVia::Relay { path, headers } => {
            let mut all = vec![("content-type", "application/sdp")];
            all.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            post(api_base, path, &all, offer.as_bytes()).await
        }
    }
}

async fn post(
    api_base: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpAnswer, BrowserError> {
    let addr = loopback(api_base)?;
    http::request(addr, "POST", path, headers, body, REQUEST_DEADLINE)
        .await
        .map_err(|e| BrowserError::Http(format!("POST {api_base}{path}: {e}")))
}

/// The address of an `http://IP:PORT` base (the fake platform's `api_base`).
fn loopback(api_base: &str) -> Result<SocketAddr, BrowserError> {
    api_base
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .and_then(|addr| addr.parse::<SocketAddr>().ok())
        .ok_or_else(|| {
            BrowserError::Http(format!(
                "{api_base} is not an http://IP:PORT base such as the fake platform's api_base"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_and_port_bases_are_called() {
        assert_eq!(
            loopback("http://127.0.0.1:9/").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
        assert!(loopback("https://127.0.0.1:9").is_err());
        assert!(loopback("http://api.openai.com").is_err());
    }
}
