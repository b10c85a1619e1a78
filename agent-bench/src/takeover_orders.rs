//! The HTTP tool's endpoint in the takeover benchmark: where duplicate tool runs are counted.
//!
//! Every request is logged with its `Idempotency-Key` (the call's conversation and call id,
//! the same on every node), when it arrived and when its answer was written, so a key seen
//! twice is a tool that ran twice, and a request that arrived before the kill and was answered
//! after it was in flight when its node died. Each answer waits [`Orders::latency`] first,
//! like a real backend, so some requests are in flight at the kill.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// One request the endpoint received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its `Idempotency-Key` (`(no key)` when it had none).
    pub key: String,
    /// When its head and body were read.
    pub arrived: Instant,
    /// When its answer was written, if the write went through.
    pub answered: Option<Instant>,
}

/// The endpoint; it serves until the runtime it was started on stops.
#[derive(Debug, Clone)]
pub struct Orders {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Request>>>,
}

/// How long a request may take to arrive.
const READ_DEADLINE: Duration = Duration::from_secs(30);

impl Orders {
    /// Listens on loopback (on the current runtime); answers after `latency`.
    pub async fn start(latency: Duration) -> std::io::Result<Orders> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let shared = log.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone(), latency));
            }
        });
        Ok(Orders { addr, log })
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

async fn serve(stream: TcpStream, log: Arc<Mutex<Vec<Request>>>, latency: Duration) {
    let mut reader = BufReader::new(stream);
    let Ok(Ok(Some(key))) = tokio::time::timeout(READ_DEADLINE, read_request(&mut reader)).await
    else {
        return;
    };
    let index = {
        let Ok(mut log) = log.lock() else { return };
        log.push(Request {
            key,
            arrived: Instant::now(),
            answered: None,
        });
        log.len() - 1
    };
    tokio::time::sleep(latency).await;
    let answer = r#"{"recorded":true}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let mut stream = reader.into_inner();
    if stream.write_all(response.as_bytes()).await.is_ok()
        && stream.flush().await.is_ok()
        && let Ok(mut log) = log.lock()
        && let Some(request) = log.get_mut(index)
    {
        request.answered = Some(Instant::now());
    }
}

/// Reads one request's head and body; returns its idempotency key.
async fn read_request(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<String>> {
    let (mut length, mut key) = (0usize, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "idempotency-key" => key = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length.min(64 * 1024)];
    reader.read_exact(&mut body).await?;
    Ok(Some(key.unwrap_or_else(|| "(no key)".into())))
}
