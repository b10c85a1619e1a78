//! The MCP test server over streamable HTTP on 127.0.0.1: each JSON-RPC message is a POST,
//! answered with a JSON body (the specification lets a server answer with JSON instead of an
//! event stream); notifications get `202 Accepted`, `GET` (a server-to-client stream) gets
//! `405`, and `DELETE` ends the session. One request per connection (`Connection: close`), so
//! a hanging call never holds up another.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};

use super::{Action, McpServer};

/// The largest request head and body read.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 16 * 1024 * 1024;
/// The session id handed out with the answer to `initialize`.
pub const SESSION_ID: &str = "agent-testkit-mcp-session";

/// One HTTP request as the server received it (headers as sent, secrets included: this is
/// the test's own server).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedRequest {
    /// `POST`, `GET`, `DELETE`, ...
    pub method: String,
    /// Header names (lower case) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body, when it was JSON.
    pub body: Option<Value>,
}

impl ReceivedRequest {
    /// The value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    server: McpServer,
    requests: Mutex<Vec<ReceivedRequest>>,
    stop: watch::Sender<bool>,
}

/// A running streamable HTTP MCP test server; dropping it stops it.
pub struct McpHttpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for McpHttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpHttpServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl McpHttpServer {
    /// Binds 127.0.0.1 on `port` (0: a free one) and serves `server`; needs a Tokio runtime.
    pub fn start(server: McpServer, port: u16) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            std::io::Error::other("McpHttpServer::start needs a running Tokio runtime")
        })?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (stop, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            server,
            requests: Mutex::new(Vec::new()),
            stop,
        });
        let task = runtime.spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(McpHttpServer {
            addr,
            shared,
            task: Some(task),
        })
    }

    /// The MCP endpoint: `http://127.0.0.1:PORT/mcp`.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The JSON-RPC methods received so far (requests and notifications), in order.
    pub fn methods(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter_map(|r| r.body.as_ref()?.get("method")?.as_str().map(str::to_owned))
            .collect()
    }

    /// Resolves when the server stopped by itself (the `crash` tool) or was shut down.
    pub async fn stopped(&self) {
        until_stopped(self.shared.stop.subscribe()).await;
    }

    /// Stops listening, drops every connection and waits until all tasks ended.
    pub async fn shutdown(mut self) {
        let _ = self.shared.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for McpHttpServer {
    fn drop(&mut self) {
        let _ = self.shared.stop.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Resolves once the server is told to stop.
async fn until_stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let stop = until_stopped(shared.stop.subscribe());
    tokio::pin!(stop);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    tasks.spawn(async move {
                        tokio::select! {
                            () = until_stopped(shared.stop.subscribe()) => {}
                            () = serve(stream, &shared) => {}
                        }
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

/// A parsed request (the fake platform's REST side reads its requests the same way).
pub(crate) struct Request {
    pub(crate) method: String,
    /// The request target, query included.
    pub(crate) path: String,
    /// Header names (lower case) and values.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

async fn serve(mut stream: TcpStream, shared: &Shared) {
    let Ok(Some(request)) = read_request(&mut stream).await else {
        return;
    };
    let body: Option<Value> = serde_json::from_slice(&request.body).ok();
    let received = ReceivedRequest {
        method: request.method.clone(),
        headers: request.headers.clone(),
        body: body.clone(),
    };
    shared
        .requests
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(received.clone());
    match request.method.as_str() {
        "POST" => {}
        "DELETE" => return respond(&mut stream, 200, "OK", &[], b"").await,
        _ => return respond(&mut stream, 405, "Method Not Allowed", &[], b"").await,
    }
    if let Some((name, value)) = &shared.server.faults.require_header
        && received.header(name) != Some(value.as_str())
    {
        // A careless server: it repeats what it was sent.
        let body = json!({"error": format!(
            "unauthorized: header `{name}` was `{}`",
            received.header(name).unwrap_or("(missing)")
        )});
        return respond(
            &mut stream,
            401,
            "Unauthorized",
            &[],
            body.to_string().as_bytes(),
        )
        .await;
    }
    let Some(message) = body else {
        let reply = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "parse error"}});
        return respond(
            &mut stream,
            400,
            "Bad Request",
            &[],
            reply.to_string().as_bytes(),
        )
        .await;
    };
    let is_initialize = message.get("method").and_then(Value::as_str) == Some("initialize");
    let session: &[(&str, &str)] = if is_initialize {
        &[("Mcp-Session-Id", SESSION_ID)]
    } else {
        &[]
    };
    let headers = || {
        let mut lines: Vec<String> = received
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        lines.sort();
        lines.join("\n")
    };
    match shared.server.handle(&message, headers) {
        Action::Reply(reply) => json_reply(&mut stream, session, &reply.to_string()).await,
        Action::ReplyAfter(delay, reply) => {
            tokio::time::sleep(delay).await;
            json_reply(&mut stream, session, &reply.to_string()).await;
        }
        Action::Raw(text) => json_reply(&mut stream, session, &text).await,
        Action::Nothing => respond(&mut stream, 202, "Accepted", &[], b"").await,
        Action::Hang => std::future::pending().await,
        Action::Crash => {
            // The connection closes without an answer and nothing listens any more.
            let _ = shared.stop.send(true);
        }
    }
}

async fn json_reply(stream: &mut TcpStream, extra: &[(&str, &str)], body: &str) {
    let mut headers = vec![("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    respond(stream, 200, "OK", &headers, body.as_bytes()).await;
}

pub(crate) async fn respond(
    stream: &mut TcpStream,
    status: u16,
    reason: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

/// Reads one request: the head (at most 64 KiB), then a body of `Content-Length` bytes (at
/// most 16 MiB). `None` when the client closed first or sent something that is not HTTP.
pub(crate) async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_HEAD {
            return Ok(None);
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let mut parsed_headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut parsed_headers);
    if !matches!(
        parsed.parse(&buffer[..head_end]),
        Ok(httparse::Status::Complete(_))
    ) {
        return Ok(None);
    }
    let method = parsed.method.unwrap_or("").to_owned();
    let path = parsed.path.unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Ok(None);
    }
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..read]);
    }
    body.truncate(length);
    Ok(Some(Request {
        method,
        path,
        headers,
        body,
    }))
}
