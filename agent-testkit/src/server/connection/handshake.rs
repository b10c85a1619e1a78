//! The HTTP upgrade: what the request says (secrets redacted), the API-key check, subprotocols.

use super::*;

/// What the handshake callback learned (no secret values kept).
#[derive(Debug, Default)]
pub(super) struct Handshake {
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) has_authorization: bool,
    pub(super) auth_ok: bool,
    pub(super) beta: bool,
    pub(super) model: Option<String>,
}

pub(super) fn is_secret_header(name: &str, value: &str) -> bool {
    matches!(
        name,
        "authorization"
            | "proxy-authorization"
            | "api-key"
            | "x-api-key"
            | "openai-api-key"
            | "cookie"
    ) || (name == "sec-websocket-protocol" && value.contains("api-key"))
}

pub(super) fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| {
            let (k, _) = pair.split_once('=').unwrap_or((pair, ""));
            let lower = k.to_ascii_lowercase();
            if ["key", "token", "secret", "auth"]
                .iter()
                .any(|s| lower.contains(s))
            {
                format!("{k}=[redacted]")
            } else {
                pair.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

pub(super) fn inspect(req: &Request, auth: &AuthCheck) -> Handshake {
    let mut h = Handshake {
        path: req.uri().path().to_string(),
        query: req.uri().query().map(redact_query),
        ..Handshake::default()
    };
    h.model = req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| *k == "model")
            .map(|(_, v)| v.to_string())
    });
    let mut presented: Vec<String> = Vec::new();
    for (name, value) in req.headers() {
        let name = name.as_str().to_ascii_lowercase();
        let value = value.to_str().unwrap_or("<non-ascii>");
        match name.as_str() {
            "authorization" => {
                h.has_authorization = true;
                if let Some(key) = value.strip_prefix("Bearer ") {
                    presented.push(key.trim().to_string());
                }
            }
            "api-key" => {
                h.has_authorization = true;
                presented.push(value.trim().to_string());
            }
            "sec-websocket-protocol" => {
                for p in value.split(',') {
                    if let Some(key) = p.trim().strip_prefix("openai-insecure-api-key.") {
                        h.has_authorization = true;
                        presented.push(key.to_string());
                    }
                }
            }
            "openai-beta" => h.beta = value.contains("realtime=v1"),
            _ => {}
        }
        let shown = if is_secret_header(&name, value) {
            "[redacted]".to_string()
        } else {
            value.to_string()
        };
        h.headers.push((name, shown));
    }
    h.auth_ok = match auth {
        AuthCheck::Off => true,
        AuthCheck::Bearer(key) => presented.iter().any(|p| p == key),
    };
    h
}

/// Picks the subprotocol to echo: `realtime` when offered, else the first one offered.
pub(super) fn choose_subprotocol(req: &Request) -> Option<String> {
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    offered
        .iter()
        .find(|p| *p == "realtime")
        .or_else(|| offered.first())
        .cloned()
}

/// Small buffers: thousands of idle test sessions should cost little memory.
///
/// Outgoing frames have no size limit (tungstenite checks sizes only on read, and the write
/// buffer may grow to hold one big frame), so `oversized_frame_after` sends whatever size a test
/// asks for and the client's read limit decides what happens.
pub(super) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(32 * 1024)
        .max_write_buffer_size(usize::MAX)
}
