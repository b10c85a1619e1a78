//! Where a connection's events go and where its client events come from.
//!
//! A WebSocket connection has one socket. A platform-held WebRTC call has several transports at
//! once, the browser's `oai-events` data channel and any sidebands, that all feed one session
//! (see [`media_call`](crate::server::media_call)). The session code is the same for both: it
//! talks to a [`Link`], and only the link knows which it is.

use super::*;
use crate::server::media_call::{CallInput, CallLink};

/// The transport(s) of one session.
pub(super) enum Link {
    /// One WebSocket (a plain connection, or a SIP call's sideband).
    Ws(Box<Ws>),
    /// A media call: the data channel and the sidebands attached to it.
    Call(CallLink),
}

/// What a link delivered.
pub(super) enum Inbound {
    /// A client event's text, and the connection index of the transport it came on.
    Event { from: usize, text: String },
    /// A frame that is no event (ping, pong): nothing to do.
    Ignore,
    /// The transport ended.
    Closed,
    /// Something a media call's peer or sidebands did (see [`CallInput`]).
    Call(CallInput),
    /// The time the session asked to be woken at came.
    Wake,
}

impl Link {
    /// The next input; `wake_at` ends the wait with [`Inbound::Wake`] even if nothing came
    /// (media calls only: a WebSocket session has no timers of its own here).
    pub(super) async fn next(&mut self, index: usize, wake_at: Option<Instant>) -> Inbound {
        match self {
            Link::Ws(ws) => from_ws(ws.next().await, index),
            Link::Call(call) => match wake_at {
                None => from_call(call.next().await),
                Some(at) => tokio::select! {
                    input = call.next() => from_call(input),
                    () = tokio::time::sleep_until(at) => Inbound::Wake,
                },
            },
        }
    }

    /// An input that is already there, without waiting.
    pub(super) fn try_next(&mut self, index: usize) -> Option<Inbound> {
        match self {
            Link::Ws(ws) => ws.next().now_or_never().map(|msg| from_ws(msg, index)),
            Link::Call(call) => call.try_next().map(|input| from_call(Some(input))),
        }
    }

    /// Queues one server event; `false` when the transport is gone.
    pub(super) async fn feed(&mut self, text: Utf8Bytes) -> bool {
        match self {
            Link::Ws(ws) => ws.feed(Message::Text(text)).await.is_ok(),
            Link::Call(call) => call.broadcast(text.as_str()),
        }
    }

    /// Writes what was queued; `false` when the transport is gone.
    pub(super) async fn flush(&mut self) -> bool {
        match self {
            Link::Ws(ws) => ws.flush().await.is_ok(),
            Link::Call(_) => true,
        }
    }

    /// Ends the transport without a goodbye: a TCP drop, or for a media call the platform
    /// dropping every sideband and the browser's peer connection.
    pub(super) async fn drop_connection(&mut self) {
        match self {
            Link::Ws(ws) => drop_connection(ws).await,
            Link::Call(call) => call.drop_all(),
        }
    }

    /// Ends the transport with a TCP reset (a media call: as [`Link::drop_connection`]).
    pub(super) async fn reset(&mut self) {
        match self {
            Link::Ws(ws) => {
                let _ = ws.flush().await;
                let _ = ws.get_ref().set_zero_linger();
            }
            Link::Call(call) => call.drop_all(),
        }
    }

    /// Ends the transport with a close frame (a media call: every sideband gets it, and the
    /// browser's peer connection is hung up).
    pub(super) async fn close(&mut self, spec: &CloseSpec) {
        match self {
            Link::Ws(ws) => close(ws, spec).await,
            Link::Call(call) => call.close_all(spec),
        }
    }

    /// The media call behind this link, if it is one.
    pub(super) fn call(&mut self) -> Option<&mut CallLink> {
        match self {
            Link::Ws(_) => None,
            Link::Call(call) => Some(call),
        }
    }
}

pub(super) fn from_ws(msg: Option<Result<Message, WsError>>, index: usize) -> Inbound {
    match msg {
        None | Some(Ok(Message::Close(_))) => Inbound::Closed,
        Some(Err(e)) => {
            tracing::debug!(connection = index, error = %e, "client connection ended");
            Inbound::Closed
        }
        Some(Ok(Message::Text(t))) => Inbound::Event {
            from: index,
            text: t.as_str().to_owned(),
        },
        Some(Ok(Message::Binary(b))) => Inbound::Event {
            from: index,
            text: String::from_utf8_lossy(&b).into_owned(),
        },
        Some(Ok(_)) => Inbound::Ignore,
    }
}

fn from_call(input: Option<CallInput>) -> Inbound {
    match input {
        None => Inbound::Closed,
        Some(CallInput::ClientEvent { from, text }) => Inbound::Event { from, text },
        Some(other) => Inbound::Call(other),
    }
}
