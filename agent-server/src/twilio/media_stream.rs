//! `GET /twilio/media-stream`: the WebSocket Twilio opens after our TwiML.
//!
//! Nothing is trusted until the stream's `start` message presents a valid, unused, unexpired
//! token issued for its `CallSid`: before that, only `connected` may come, within
//! `stream_start_secs`. Anything else closes the socket at once (policy violation) and is
//! logged; the token is never logged.

use std::{sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::State,
    http::Request,
    response::{IntoResponse as _, Response},
};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::{
    Message,
    protocol::{CloseFrame, frame::coding::CloseCode},
};

use super::{
    call,
    messages::{self, Inbound, Start},
    tokens::TOKEN_PARAMETER,
};
use crate::{
    state::AppState,
    websocket::{ServerSocket, Upgrade},
};

/// Answers the handshake and runs the stream on its own (tracked) task.
pub async fn upgrade(State(state): State<Arc<AppState>>, mut request: Request<Body>) -> Response {
    let (response, upgrade) = match Upgrade::from_request(&mut request) {
        Ok(pair) => pair,
        Err(why) => return (axum::http::StatusCode::BAD_REQUEST, why).into_response(),
    };
    let tracked = state.clone();
    tracked
        .calls
        .spawn(async move { run(state, upgrade).await });
    response
}

async fn run(state: Arc<AppState>, upgrade: Upgrade) {
    let limits = state.config.limits;
    let mut socket = match tokio::time::timeout(
        limits.stream_start,
        upgrade.into_socket(limits.max_frame_bytes),
    )
    .await
    {
        Ok(Ok(socket)) => socket,
        Ok(Err(err)) => return tracing::warn!("a media stream's upgrade failed: {err}"),
        Err(_) => return tracing::warn!("a media stream's upgrade did not complete in time"),
    };
    let start = match tokio::time::timeout(limits.stream_start, wait_for_start(&mut socket)).await {
        Ok(Ok(start)) => start,
        Ok(Err(why)) => return refuse(socket, &state, None, why).await,
        Err(_) => {
            let why = format!("no start message within {:?}", limits.stream_start);
            return refuse(socket, &state, None, why).await;
        }
    };
    let token = start.custom_parameters.get(TOKEN_PARAMETER);
    let pending =
        match state
            .tokens
            .take(token.map(String::as_str), &start.call_sid, Instant::now())
        {
            Ok(pending) => pending,
            Err(refusal) => {
                return refuse(socket, &state, Some(&start.call_sid), refusal.to_string()).await;
            }
        };
    if let Some(format) = &start.media_format
        && !format.is_pcmu()
    {
        let why = format!(
            "the stream's audio is {} at {} Hz, {} channel(s); only 8 kHz mono audio/x-mulaw passes through",
            format.encoding, format.sample_rate, format.channels
        );
        return refuse(socket, &state, Some(&start.call_sid), why).await;
    }
    call::run(state, socket, start, pending).await;
}

/// Reads until `start`: `connected` and pings may come first, anything else is a refusal.
async fn wait_for_start(socket: &mut ServerSocket) -> Result<Start, String> {
    while let Some(frame) = socket.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) => {
                return Err("the stream closed before its start message".into());
            }
            Ok(_) => return Err("a binary frame came before the start message".into()),
            Err(err) => return Err(format!("the stream failed before its start message: {err}")),
        };
        match messages::parse(&text) {
            Ok(Inbound::Connected {}) => {}
            Ok(Inbound::Start { start }) => {
                if !super::voice::valid_sid(&start.call_sid) {
                    return Err("the start message has no valid callSid".into());
                }
                return Ok(start);
            }
            Ok(_) => return Err("a media stream must begin with its start message".into()),
            Err(_) => return Err("a malformed message came before the start message".into()),
        }
    }
    Err("the stream closed before its start message".into())
}

/// Closes a stream that may not run, and says why in the log.
async fn refuse(mut socket: ServerSocket, state: &AppState, call_sid: Option<&str>, why: String) {
    tracing::warn!(call_sid, "refused a media stream: {why}");
    let frame = CloseFrame {
        code: CloseCode::Policy,
        reason: "refused".into(),
    };
    let _ = tokio::time::timeout(
        state.config.limits.stream_write,
        socket.send(Message::Close(Some(frame))),
    )
    .await;
}
