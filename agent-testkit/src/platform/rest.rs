//! The platform's REST endpoints on loopback, one request per connection:
//!
//! - `POST /v1/realtime/calls/{call_id}/accept|reject|refer|hangup`, call control (here);
//! - `POST /v1/realtime/client_secrets` ([`client_secrets`](super::client_secrets));
//! - `POST /v1/realtime/calls`, a WebRTC call from an SDP offer ([`webrtc`](super::webrtc)).
//!
//! Each request is recorded, its bearer key checked (when the platform has one), and its body
//! checked the way the live API does: an accept is a GA session config (`type` required,
//! unknown keys refused), a reject has at most an integer `status_code`, a refer a `tel:` or
//! `sip:` `target_uri` (SIP calls only), a hang-up nothing. A bad body gets 400 and changes
//! nothing. A request whose head and body do not arrive within 10 seconds is dropped.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Map, Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
};

use super::webrtc::{WebRtc, bearer};
use crate::{
    mcp::http::{Request, read_request, respond},
    server::{
        Dialect,
        calls::{CallKind, CallState, PlatformCalls},
        lock,
    },
};

/// How long a client has to send a whole request.
pub(super) const REQUEST_DEADLINE: Duration = Duration::from_secs(10);

/// One call-control request as the platform received it.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRequest {
    /// The call it names.
    pub call_id: String,
    /// `accept`, `reject`, `refer` or `hangup`.
    pub action: String,
    /// The body, when it was JSON.
    pub body: Option<Value>,
    /// Whether it carried the platform's key (always true when the platform checks none).
    pub authorized: bool,
    /// The HTTP status it was answered with.
    pub status: u16,
}

pub(super) struct Rest {
    pub(super) calls: Arc<PlatformCalls>,
    pub(super) api_key: Option<String>,
    pub(super) requests: Mutex<Vec<CallRequest>>,
    pub(super) webrtc: WebRtc,
}

/// What a request asks for.
enum Route {
    /// `/v1/realtime/calls/{call_id}/{action}`.
    Control { call_id: String, action: String },
    /// `/v1/realtime/client_secrets`.
    ClientSecrets,
    /// `/v1/realtime/calls`.
    CreateCall,
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    rest: Arc<Rest>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tasks.spawn(serve(stream, Arc::clone(&rest)));
                }
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

async fn serve(mut stream: TcpStream, rest: Arc<Rest>) {
    let Ok(Ok(Some(request))) =
        tokio::time::timeout(REQUEST_DEADLINE, read_request(&mut stream)).await
    else {
        return;
    };
    let Some(route) = route(&request.path) else {
        return reply(&mut stream, 404, error("not_found", "Unknown path.")).await;
    };
    // A page posts its offer cross-origin, as to the real platform: answer its preflight.
    if request.method == "OPTIONS" && matches!(route, Route::CreateCall) {
        let headers = [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Methods", "POST"),
            (
                "Access-Control-Allow-Headers",
                "authorization, content-type",
            ),
        ];
        return respond(&mut stream, 204, "No Content", &headers, b"").await;
    }
    if request.method != "POST" {
        return reply(&mut stream, 405, error("method_not_allowed", "Use POST.")).await;
    }
    let authorized = rest
        .api_key
        .as_ref()
        .is_none_or(|key| bearer(&request) == Some(key.as_str()));
    match route {
        Route::Control { call_id, action } => {
            control(&mut stream, &rest, &request, call_id, action, authorized).await;
        }
        Route::ClientSecrets => {
            let (status, body) = rest.webrtc.secrets.handle(&request.body, authorized);
            let text = body.to_string();
            let reason = if status == 200 { "OK" } else { "Error" };
            let headers = [("Content-Type", "application/json")];
            respond(&mut stream, status, reason, &headers, text.as_bytes()).await;
        }
        Route::CreateCall => {
            let answer = rest.webrtc.create_call(&request).await;
            let reason = if answer.status == 201 {
                "Created"
            } else {
                "Error"
            };
            let mut headers = vec![
                ("Content-Type", answer.body.0),
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Expose-Headers", "Location"),
            ];
            if let Some(location) = &answer.location {
                headers.push(("Location", location.as_str()));
            }
            respond(&mut stream, answer.status, reason, &headers, &answer.body.1).await;
        }
    }
}

/// A call-control request.
async fn control(
    stream: &mut TcpStream,
    rest: &Rest,
    request: &Request,
    call_id: String,
    action: String,
    authorized: bool,
) {
    let body: Option<Value> = serde_json::from_slice(&request.body).ok();
    let (status, answer) = if authorized {
        rest.handle(&call_id, &action, &request.body, body.as_ref())
    } else {
        (
            401,
            error(
                "invalid_api_key",
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            ),
        )
    };
    lock(&rest.requests).push(CallRequest {
        call_id,
        action,
        body,
        authorized,
        status,
    });
    reply(stream, status, answer).await;
}

/// What `path` (its query ignored) asks for.
fn route(path: &str) -> Option<Route> {
    let path = path.split('?').next().unwrap_or_default();
    match path {
        "/v1/realtime/client_secrets" => return Some(Route::ClientSecrets),
        "/v1/realtime/calls" => return Some(Route::CreateCall),
        _ => {}
    }
    let rest = path.strip_prefix("/v1/realtime/calls/")?;
    let (call_id, action) = rest.split_once('/')?;
    let known = matches!(action, "accept" | "reject" | "refer" | "hangup");
    (known && !call_id.is_empty() && !call_id.contains('/')).then(|| Route::Control {
        call_id: call_id.to_owned(),
        action: action.to_owned(),
    })
}

impl Rest {
    fn handle(
        &self,
        call_id: &str,
        action: &str,
        raw: &[u8],
        body: Option<&Value>,
    ) -> (u16, Value) {
        let empty = raw.iter().all(u8::is_ascii_whitespace);
        let object = match (body, empty) {
            (Some(Value::Object(map)), _) => map.clone(),
            (None, true) if action != "accept" => Map::new(),
            _ => {
                return (
                    400,
                    error("invalid_json", "The body must be a JSON object."),
                );
            }
        };
        let outcome = match action {
            "accept" => match crate::server::session::validate_update(
                Dialect::Ga,
                Some(&Value::Object(object.clone())),
            ) {
                Ok(()) => self.calls.accept(call_id, Value::Object(object)),
                Err(spec) => return (400, error("invalid_request_error", &spec.message)),
            },
            "reject" => match only(&object, "status_code") {
                Err(e) => return (400, e),
                Ok(None) => self.reject(call_id, 603),
                Ok(Some(Value::Number(n))) => match n.as_u64().filter(|c| (100..700).contains(c)) {
                    Some(code) => self.reject(call_id, code as u16),
                    None => {
                        return (
                            400,
                            error("invalid_value", "status_code must be a SIP status."),
                        );
                    }
                },
                Ok(Some(_)) => {
                    return (
                        400,
                        error("invalid_type", "status_code must be an integer."),
                    );
                }
            },
            "refer" if self.calls.kind(call_id) == Some(CallKind::WebRtc) => {
                return (
                    400,
                    error(
                        "invalid_request_error",
                        "refer transfers SIP calls; this is a WebRTC call.",
                    ),
                );
            }
            "refer" => match only(&object, "target_uri") {
                Ok(Some(Value::String(uri)))
                    if uri.starts_with("tel:") || uri.starts_with("sip:") =>
                {
                    let to = CallState::Transferred(uri.clone());
                    self.calls.end(call_id, to, &[CallState::Accepted])
                }
                Ok(_) => {
                    return (
                        400,
                        error("invalid_value", "target_uri must be a tel: or sip: URI."),
                    );
                }
                Err(e) => return (400, e),
            },
            _ => match object.keys().next() {
                Some(k) => {
                    return (
                        400,
                        error("unknown_parameter", &format!("Unknown parameter: '{k}'.")),
                    );
                }
                None => self
                    .calls
                    .end(call_id, CallState::HungUp, &[CallState::Accepted]),
            },
        };
        match outcome {
            Ok(()) => (200, Value::Null),
            Err("no such call") => (404, error("not_found", "No such call.")),
            Err(why) => (400, error("invalid_state", why)),
        }
    }

    fn reject(&self, call_id: &str, code: u16) -> Result<(), &'static str> {
        self.calls
            .end(call_id, CallState::Rejected(code), &[CallState::Incoming])
    }
}

/// The value of `key`, the object's only allowed key.
fn only<'a>(object: &'a Map<String, Value>, key: &str) -> Result<Option<&'a Value>, Value> {
    match object.keys().find(|k| *k != key) {
        Some(k) => Err(error(
            "unknown_parameter",
            &format!("Unknown parameter: '{k}'."),
        )),
        None => Ok(object.get(key)),
    }
}

/// An OpenAI-style error body.
pub(crate) fn error(code: &str, message: &str) -> Value {
    json!({"error": {"type": "invalid_request_error", "code": code, "message": message}})
}

async fn reply(stream: &mut TcpStream, status: u16, body: Value) {
    let (reason, text) = match status {
        200 => ("OK", String::new()),
        _ => ("Error", body.to_string()),
    };
    let headers: &[(&str, &str)] = if text.is_empty() {
        &[]
    } else {
        &[("Content-Type", "application/json")]
    };
    respond(stream, status, reason, headers, text.as_bytes()).await;
}

/// Where a REST listener is bound.
pub(super) fn bind() -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    Ok((TcpListener::from_std(listener)?, addr))
}
