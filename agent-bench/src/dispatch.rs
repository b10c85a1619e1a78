//! (2) Dispatch overhead: `response.done` carrying 1, then 8, no-op function calls, until
//! `response.create` is on the wire — measured by the raw peer (server side), and by the
//! runtime itself (`TurnLatency::overhead`: `response.done` received or the last tool returned,
//! whichever is later → `response.create` sent).
//!
//! The peer runs on its own thread and runtime; the client on a one-worker runtime, so the two
//! sides do not steal each other's threads on a 2-core machine.
//!
//! With history on (`agent run`'s default: a SQLite store with power-loss durability), every
//! call is recorded as started before its tool runs and every item is appended: the same
//! measure shows what that costs.
//!
//! The same measure with a bare WebSocket client in place of the framework (it answers every
//! `response.done` with prebuilt outputs and a `response.create`, parsing nothing) gives the
//! floor: what loopback, the kernel and the peer cost by themselves on this machine.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use tokio::sync::watch;

use crate::{
    common::{self, TurnLog},
    peer::{self, PeerConfig, PeerStats},
};

/// One configuration's results.
#[derive(Debug, Clone)]
pub struct DispatchResult {
    /// Function calls per response.
    pub calls: usize,
    /// Turns measured (after warm-up).
    pub turns: usize,
    /// Server side: done flushed → create received.
    pub server: Vec<Duration>,
    /// Client side: the runtime's own overhead measure.
    pub client: Vec<Duration>,
    /// Turns whose outputs were incomplete when the create arrived (must be 0).
    pub anomalies: u64,
    /// Measured with the bare client (the floor), not the framework.
    pub bare: bool,
    /// The framework wrote history (items, and call records before each tool ran).
    pub history: bool,
}

/// Which client answers the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A session of this framework with one no-op tool.
    Framework,
    /// The same, storing its history as `agent run` does by default.
    FrameworkWithHistory,
    /// A bare WebSocket client: the floor.
    Bare,
}

/// Runs `turns` turns (plus a warm-up) with `calls` no-op calls each.
pub fn run(
    kind: Client,
    calls: usize,
    turns: usize,
    warmup: usize,
) -> anyhow::Result<DispatchResult> {
    let stats = Arc::new(PeerStats::default());
    let (go_tx, go_rx) = watch::channel(true);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let peer_stats = stats.clone();
    let peer_thread = std::thread::spawn(move || -> anyhow::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let config = PeerConfig {
                calls,
                interval: None,
                gap: Duration::from_millis(1),
            };
            // Serves until the process ends; the thread is detached.
            peer::serve(listener, config, peer_stats, go_rx).await;
            anyhow::Ok(())
        })
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let log: TurnLog = Default::default();
    let result = rt.block_on(async {
        let url = format!("ws://{addr}/v1/realtime");
        let (session, drain) = match kind {
            Client::Framework | Client::FrameworkWithHistory => {
                let agent = common::agent(&[("noop", Duration::ZERO)], false)?;
                let session = if kind == Client::FrameworkWithHistory {
                    common::start_with_history(&agent, &url).await?
                } else {
                    common::start(&agent, &url).await?
                };
                let drain = tokio::spawn(common::drain(session.events, log.clone()));
                (Some(session.handle), drain)
            }
            Client::Bare => (None, tokio::spawn(bare_client(url, calls))),
        };
        let wanted = turns + warmup;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
        loop {
            let done = stats.samples.lock().map_or(0, |s| s.len());
            if done >= wanted {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("dispatch bench: only {done} of {wanted} turns in 10 minutes");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = go_tx.send(false);
        if let Some(handle) = session {
            let _ = handle.close().await;
        } else {
            drain.abort();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        anyhow::Ok(())
    });
    drop(rt);
    // The peer thread blocks on its listener; it is detached and ends with the process.
    drop(peer_thread);
    result?;
    let server: Vec<Duration> = stats
        .samples
        .lock()
        .map(|s| s.iter().skip(warmup).copied().collect())
        .unwrap_or_default();
    let client: Vec<Duration> = log
        .lock()
        .map(|l| {
            l.iter()
                .flat_map(|t| t.overhead.iter().copied())
                .skip(warmup)
                .collect()
        })
        .unwrap_or_default();
    Ok(DispatchResult {
        calls,
        turns: server.len(),
        server,
        client,
        anomalies: stats.anomalies.load(Ordering::Relaxed),
        bare: kind == Client::Bare,
        history: kind == Client::FrameworkWithHistory,
    })
}

/// The floor: answers each `response.done` that lists calls with `calls` outputs and a
/// `response.create`, prebuilt, in one write; no decoding, no tools, no bookkeeping.
async fn bare_client(url: String, calls: usize) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async_with_config(url, None, true).await
    else {
        return;
    };
    let update = r#"{"type":"session.update","session":{"type":"realtime"}}"#;
    if ws.send(Message::Text(update.into())).await.is_err() {
        return;
    }
    let output = r#"{"type":"conversation.item.create","item":{"type":"function_call_output","call_id":"c","output":"ok"}}"#;
    let create = r#"{"type":"response.create"}"#;
    while let Some(Ok(frame)) = ws.next().await {
        let Message::Text(text) = frame else { continue };
        if text.contains("\"response.done\"") && text.contains("\"function_call\"") {
            for _ in 0..calls {
                if ws.feed(Message::Text(output.into())).await.is_err() {
                    return;
                }
            }
            if ws.feed(Message::Text(create.into())).await.is_err() || ws.flush().await.is_err() {
                return;
            }
        }
    }
}
