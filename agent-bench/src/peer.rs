//! A raw WebSocket peer that plays the model's side of tool turns as fast as it can, and
//! measures the client's dispatch overhead on the server side.
//!
//! Per connection: `session.created`, then `session.updated` for the client's
//! `session.update`; then, turn after turn, `input_audio_buffer.speech_stopped` (so the client
//! opens a turn, as with server VAD), `response.created` and one `response.output_item.done` per
//! function call, flushed together; after a short gap (the client has started the calls, as it
//! would while a live response streams), `response.done` listing the calls. The clock starts
//! when `response.done` is handed to the socket and stops when the client's `response.create`
//! arrives (after its `function_call_output`s): that interval is what the framework adds, plus
//! both loopback writes. The follow-up
//! response is answered with an empty `response.done`, and the next turn starts.
//!
//! Frames are matched by substring, not parsed, so the peer's own cost stays small.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::{net::TcpListener, sync::watch};
use tokio_tungstenite::tungstenite::Message;

/// How the peer paces turns.
#[derive(Debug, Clone, Copy)]
pub struct PeerConfig {
    /// Function calls per response.
    pub calls: usize,
    /// Pause between turns on one connection (`None`: back to back).
    pub interval: Option<Duration>,
    /// Pause between the response's items and its `response.done`, so the measured interval
    /// starts with the client idle (as when a live response streams for a while).
    pub gap: Duration,
}

/// What the peer measured.
#[derive(Debug, Default)]
pub struct PeerStats {
    /// `response.done` flushed → `response.create` received, per turn.
    pub samples: Mutex<Vec<Duration>>,
    /// Turns where the outputs before the create were not all there.
    pub anomalies: AtomicU64,
    /// Connections that completed the setup.
    pub ready: AtomicU64,
}

/// Serves connections on `listener` until the task is dropped. Turns run while `go` is true.
pub async fn serve(
    listener: TcpListener,
    config: PeerConfig,
    stats: Arc<PeerStats>,
    go: watch::Receiver<bool>,
) {
    let mut index = 0u64;
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        index += 1;
        tokio::spawn(connection(stream, index, config, stats.clone(), go.clone()));
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    index: u64,
    config: PeerConfig,
    stats: Arc<PeerStats>,
    mut go: watch::Receiver<bool>,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let session = format!(
        r#"{{"type":"realtime","object":"realtime.session","id":"sess_{index}","model":"gpt-realtime","output_modalities":["text"]}}"#
    );
    if ws
        .send(Message::Text(
            format!(r#"{{"type":"session.created","event_id":"e0","session":{session}}}"#).into(),
        ))
        .await
        .is_err()
    {
        return;
    }
    // Wait for the client's session.update.
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) if text.contains("\"session.update\"") => break,
            Some(Ok(_)) => {}
            _ => return,
        }
    }
    let updated = format!(r#"{{"type":"session.updated","event_id":"e1","session":{session}}}"#);
    if ws.send(Message::Text(updated.into())).await.is_err() {
        return;
    }
    stats.ready.fetch_add(1, Ordering::Relaxed);
    // Each connection ticks at its own phase of the interval, so a thousand sessions do not
    // all take their turn at the same instant.
    let phase = config
        .interval
        .map_or(Duration::ZERO, |i| i.mul_f64(fastrand::f64()));
    let mut turn = 0u64;
    let mut next_at = tokio::time::Instant::now();
    loop {
        if !*go.borrow() {
            // Idle until told to go; keep answering pings meanwhile.
            tokio::select! {
                changed = go.changed() => if changed.is_err() { return },
                frame = ws.next() => match frame {
                    Some(Ok(_)) => continue,
                    _ => return,
                },
            }
            next_at = tokio::time::Instant::now() + phase;
            continue;
        }
        if let Some(interval) = config.interval {
            tokio::time::sleep_until(next_at).await;
            next_at += interval;
        }
        turn += 1;
        let response_id = format!("resp_{index}_{turn}");
        let mut batch = Vec::with_capacity(config.calls + 3);
        batch.push(format!(
            r#"{{"type":"input_audio_buffer.speech_stopped","event_id":"s{turn}","audio_end_ms":{turn},"item_id":"u{turn}"}}"#
        ));
        batch.push(format!(
            r#"{{"type":"response.created","event_id":"c{turn}","response":{{"object":"realtime.response","id":"{response_id}","status":"in_progress","output":[]}}}}"#
        ));
        let mut items = Vec::with_capacity(config.calls);
        for call in 0..config.calls {
            let item = format!(
                r#"{{"id":"item_{turn}_{call}","type":"function_call","status":"completed","call_id":"call_{index}_{turn}_{call}","name":"noop","arguments":"{{}}"}}"#
            );
            batch.push(format!(
                r#"{{"type":"response.output_item.done","event_id":"o{turn}_{call}","response_id":"{response_id}","output_index":{call},"item":{item}}}"#
            ));
            items.push(item);
        }
        for frame in batch.drain(..) {
            if ws.feed(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
        if !config.gap.is_zero() {
            tokio::time::sleep(config.gap).await;
        }
        batch.push(format!(
            r#"{{"type":"response.done","event_id":"d{turn}","response":{{"object":"realtime.response","id":"{response_id}","status":"completed","output":[{}],"usage":{{"total_tokens":120,"input_tokens":100,"output_tokens":20,"input_token_details":{{"text_tokens":100,"audio_tokens":0,"cached_tokens":64,"cached_tokens_details":{{"text_tokens":64,"audio_tokens":0}}}},"output_token_details":{{"text_tokens":20,"audio_tokens":0}}}}}}}}"#,
            items.join(",")
        ));
        for frame in batch {
            if ws.feed(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
        // The clock starts as the frame is handed to the kernel: the peer's own write is
        // counted against the client, never in its favour.
        let started = Instant::now();
        if ws.flush().await.is_err() {
            return;
        }
        let mut outputs = 0usize;
        let took = loop {
            match ws.next().await {
                Some(Ok(Message::Text(text))) => {
                    if text.contains("function_call_output") {
                        outputs += 1;
                    } else if text.contains("\"response.create\"") {
                        break started.elapsed();
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        };
        if outputs != config.calls {
            stats.anomalies.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut samples) = stats.samples.lock() {
            samples.push(took);
        }
        let follow_up = format!("{response_id}_f");
        let frames = [
            format!(
                r#"{{"type":"response.created","event_id":"fc{turn}","response":{{"id":"{follow_up}","status":"in_progress","output":[]}}}}"#
            ),
            format!(
                r#"{{"type":"response.done","event_id":"fd{turn}","response":{{"id":"{follow_up}","status":"completed","output":[],"usage":{{"total_tokens":130,"input_tokens":120,"output_tokens":10,"input_token_details":{{"text_tokens":120,"cached_tokens":64}},"output_token_details":{{"text_tokens":10}}}}}}}}"#
            ),
        ];
        for frame in frames {
            if ws.feed(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}
