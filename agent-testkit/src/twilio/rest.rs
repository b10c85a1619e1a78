//! The fake Twilio's REST API: `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`,
//! the call update `agent serve` hangs up (`<Hangup/>` or `Status=completed`) and transfers
//! (`<Dial>`) with; `POST .../Calls.json`, which places an outbound call (`agent call --to`,
//! see [`PlacedCall`](super::PlacedCall)); and `GET .../Calls/{CallSid}.json`, that call's status.
//!
//! Like Twilio it wants HTTP Basic auth with the account SID and the auth token (401
//! otherwise), and it acts on the live call: a hang-up or a dial ends the call's media stream
//! (`stop`, then close), as the call leaves its `<Connect>`. Every update is recorded with
//! what the caller had left to hear at that moment, so a test can tell whether the goodbye
//! was played before the hang-up.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

/// The largest request read.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// How long one request may take to arrive.
const REQUEST_DEADLINE: Duration = Duration::from_secs(5);

/// One accepted call update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallUpdate {
    /// The call.
    pub call_sid: String,
    /// The `Twiml` parameter, when given.
    pub twiml: Option<String>,
    /// The `Status` parameter, when given.
    pub status: Option<String>,
    /// Milliseconds of audio still queued for the caller when the update arrived (`None`: the
    /// call's stream was not live).
    pub unplayed_ms: Option<u64>,
}

impl CallUpdate {
    /// Whether this update hangs up.
    pub fn is_hangup(&self) -> bool {
        self.status.as_deref() == Some("completed")
            || self.twiml.as_deref().is_some_and(|t| t.contains("<Hangup"))
    }

    /// The `<Dial>` target, when this update transfers.
    pub fn dial_target(&self) -> Option<String> {
        let twiml = self.twiml.as_deref()?;
        let start = twiml.find("<Dial>")? + "<Dial>".len();
        let end = twiml[start..].find("</Dial>")? + start;
        let inner = &twiml[start..end];
        let inner = inner
            .strip_prefix("<Sip>")
            .and_then(|s| s.strip_suffix("</Sip>"))
            .unwrap_or(inner);
        Some(inner.replace("&amp;", "&"))
    }
}

/// A live call's stream, as the REST API reaches it: the update ends the stream, which
/// answers with how much audio was still queued.
pub(super) type LiveCalls = Arc<Mutex<HashMap<String, oneshot::Sender<oneshot::Sender<u64>>>>>;

#[derive(Debug)]
pub(super) struct RestState {
    pub(super) account_sid: String,
    pub(super) auth_token: String,
    updates: Mutex<Vec<CallUpdate>>,
    refused: Mutex<u32>,
    pub(super) live: LiveCalls,
    pub(super) outbound: super::outbound::Outbound,
}

/// The REST API, serving on loopback until dropped.
#[derive(Debug)]
pub struct TwilioRest {
    addr: SocketAddr,
    state: Arc<RestState>,
    task: JoinHandle<()>,
}

impl Drop for TwilioRest {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TwilioRest {
    pub(super) async fn start(
        account_sid: &str,
        auth_token: &str,
        live: LiveCalls,
    ) -> std::io::Result<TwilioRest> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(RestState {
            account_sid: account_sid.to_owned(),
            auth_token: auth_token.to_owned(),
            updates: Mutex::new(Vec::new()),
            refused: Mutex::new(0),
            live,
            outbound: Default::default(),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = serving.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REQUEST_DEADLINE, serve(stream, &state)).await;
                });
            }
        });
        Ok(TwilioRest { addr, state, task })
    }

    /// The API base to configure, e.g. `http://127.0.0.1:PORT`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every accepted update, in order.
    pub fn updates(&self) -> Vec<CallUpdate> {
        lock(&self.state.updates).clone()
    }

    /// The accepted updates once there are at least `n` (an update is recorded once the
    /// stream it ended answered), or what there is after `within`.
    pub async fn wait_for_updates(&self, n: usize, within: Duration) -> Vec<CallUpdate> {
        let until = tokio::time::Instant::now() + within;
        loop {
            let updates = self.updates();
            if updates.len() >= n || tokio::time::Instant::now() >= until {
                return updates;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Requests refused for bad credentials.
    pub fn refused(&self) -> u32 {
        *lock(&self.state.refused)
    }

    /// What the called party of every call placed through `Calls.json` does once the stream
    /// is up, and by when the whole call must be over (by default: listen to the answer,
    /// then hang up, within 60 s).
    pub fn answer_with(&self, script: Vec<super::CallerStep>, deadline: Duration) {
        *lock(&self.state.outbound.answer) = (script, deadline);
    }

    /// Every call placed through `Calls.json`, in order, as it is now.
    pub fn placed(&self) -> Vec<super::PlacedCall> {
        lock(&self.state.outbound.placed).clone()
    }
}

pub(super) fn lock_live(
    live: &LiveCalls,
) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<oneshot::Sender<u64>>>> {
    lock(live)
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

async fn serve(mut stream: TcpStream, state: &Arc<RestState>) -> std::io::Result<()> {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_len, method, path, auth, length) = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || raw.len() > MAX_REQUEST_BYTES {
            return Ok(());
        }
        raw.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(len)) = request.parse(&raw) {
            let header = |name: &str| {
                request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned())
            };
            let length: usize = header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            break (
                len,
                request.method.unwrap_or("").to_owned(),
                request.path.unwrap_or("").to_owned(),
                header("authorization"),
                length.min(MAX_REQUEST_BYTES),
            );
        }
    };
    while raw.len() < head_len + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    let body = &raw[head_len..head_len + length];
    let (status, answer) = handle(state, &method, &path, auth.as_deref(), body).await;
    let text = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    stream.write_all(text.as_bytes()).await?;
    stream.shutdown().await
}

/// Twilio's answer for a resource that does not exist.
pub(super) const NOT_FOUND: &str =
    r#"{"code":20404,"message":"The requested resource was not found","status":404}"#;

async fn handle(
    state: &Arc<RestState>,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &[u8],
) -> (&'static str, String) {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", state.account_sid, state.auth_token))
    );
    if auth != Some(expected.as_str()) {
        *lock(&state.refused) += 1;
        return (
            "401 Unauthorized",
            r#"{"code":20003,"message":"Authenticate","status":401}"#.into(),
        );
    }
    let calls = format!("/2010-04-01/Accounts/{}/Calls", state.account_sid);
    let params: HashMap<String, String> = url_decode(body);
    if path == format!("{calls}.json") && method == "POST" {
        return super::outbound::create(state, &params);
    }
    let call_sid = path
        .strip_prefix(&calls)
        .and_then(|rest| rest.strip_prefix('/'))
        .and_then(|rest| rest.strip_suffix(".json"))
        .filter(|sid| !sid.is_empty() && sid.bytes().all(|b| b.is_ascii_alphanumeric()));
    let call_sid = match (call_sid, method) {
        (Some(sid), "GET") => return super::outbound::fetch(state, sid),
        (Some(sid), "POST") => sid,
        _ => return ("404 Not Found", NOT_FOUND.into()),
    };
    let mut update = CallUpdate {
        call_sid: call_sid.to_owned(),
        twiml: params.get("Twiml").cloned(),
        status: params.get("Status").cloned(),
        unplayed_ms: None,
    };
    if update.is_hangup() || update.dial_target().is_some() {
        let live = lock(&state.live).remove(call_sid);
        if let Some(end) = live {
            let (tx, rx) = oneshot::channel();
            if end.send(tx).is_ok() {
                update.unplayed_ms = tokio::time::timeout(Duration::from_secs(2), rx)
                    .await
                    .ok()
                    .and_then(Result::ok);
            }
        }
    }
    lock(&state.updates).push(update);
    (
        "200 OK",
        format!(r#"{{"sid":"{call_sid}","status":"completed"}}"#),
    )
}

fn url_decode(body: &[u8]) -> HashMap<String, String> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hangups_and_dials() {
        let decoded = url_decode(
            b"Twiml=%3CResponse%3E%3CDial%3E%2B15550123%3C%2FDial%3E%3C%2FResponse%3E&x=a+b",
        );
        assert_eq!(decoded["x"], "a b");
        let update = CallUpdate {
            call_sid: "CA1".into(),
            twiml: decoded.get("Twiml").cloned(),
            status: None,
            unplayed_ms: None,
        };
        assert_eq!(update.dial_target().as_deref(), Some("+15550123"));
        assert!(!update.is_hangup());
        assert_eq!(decode("%zz%4"), "%zz%4");
    }
}
