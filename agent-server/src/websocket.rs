//! The server side of a WebSocket upgrade, on hyper, with the workspace's tokio-tungstenite.
//!
//! axum's own `ws` feature pins another tokio-tungstenite than the workspace's; this is the
//! same handshake (RFC 6455 §4.2) in a few lines, with the frame and message limits set where
//! the socket is made.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header},
};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};

/// How much one read of a stream asks for. tungstenite zero-fills this much before every
/// read, a frame's or a poll's that finds nothing: its 128 KiB default cost each Twilio frame
/// (about 400 bytes) two 128 KiB memsets, a tenth of `agent serve`'s CPU under load
/// (agent-bench §9), and kept 128 KiB resident per call. Larger messages take several reads.
const READ_BUFFER: usize = 4 * 1024;

/// An upgraded server-side WebSocket.
pub type ServerSocket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// The upgrade to await once the `101` was sent.
pub struct Upgrade {
    on_upgrade: OnUpgrade,
}

impl Upgrade {
    /// Checks the request's handshake headers: the `101 Switching Protocols` answer and the
    /// upgrade, or why the request is no WebSocket handshake (for a `400`).
    pub fn from_request(
        request: &mut Request<Body>,
    ) -> Result<(Response<Body>, Upgrade), &'static str> {
        let headers = request.headers();
        let key = handshake_key(headers).ok_or(
            "a WebSocket handshake is required
",
        )?;
        let on_upgrade = request.extensions_mut().remove::<OnUpgrade>().ok_or(
            "this connection cannot be upgraded
",
        )?;
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = response.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        Ok((response, Upgrade { on_upgrade }))
    }

    /// Waits for the upgrade (after the `101` was sent) and wraps the socket, with messages
    /// and frames limited to `max_bytes`.
    pub async fn into_socket(self, max_bytes: usize) -> Result<ServerSocket, hyper::Error> {
        let upgraded = self.on_upgrade.await?;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(max_bytes))
            .max_frame_size(Some(max_bytes));
        Ok(
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await,
        )
    }
}

/// The `Sec-WebSocket-Key` of a well-formed version-13 handshake.
fn handshake_key(headers: &HeaderMap) -> Option<String> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)? != "13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?.to_str().ok()?;
    (!key.is_empty() && key.len() <= 64).then(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_version_13_upgrade_with_a_key_is_a_handshake() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        assert_eq!(handshake_key(&headers), None, "no key");
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(
            handshake_key(&headers).as_deref(),
            Some("dGhlIHNhbXBsZSBub25jZQ==")
        );
        headers.insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("8"));
        assert_eq!(handshake_key(&headers), None, "old version");
        // RFC 6455's example.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
