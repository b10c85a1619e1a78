//! A sideband attached to a WebRTC call: a pump between the WebSocket and the call's session.
//!
//! The session of a WebRTC call runs beside its data channel (see `media`), so a sideband holds
//! no session of its own: it forwards the client's events to the call and the call's server
//! events to the client, until either side ends. Both directions are recorded by the session
//! (client events under this connection's index).

use super::*;
use crate::server::media_call::{CallInput, ToSideband};

/// Serves sideband `index` of WebRTC call `call_id` until the client or the call ends it.
pub(super) async fn pump(
    mut ws: Ws,
    index: usize,
    call_id: &str,
    call: tokio::sync::mpsc::UnboundedSender<CallInput>,
    shared: &Arc<Shared>,
) {
    let Some(calls) = shared.config.calls.clone() else {
        return;
    };
    let (events, mut from_call) = tokio::sync::mpsc::unbounded_channel();
    if call
        .send(CallInput::SidebandJoined {
            from: index,
            events,
        })
        .is_err()
    {
        close(&mut ws, &sideband::call_ended()).await;
        return;
    }
    calls.media_sideband(call_id, true);
    let ending = loop {
        tokio::select! {
            msg = ws.next() => {
                // A clean close frame is the client letting go; anything else is a drop.
                let clean = matches!(msg, Some(Ok(Message::Close(_))));
                match link::from_ws(msg, index) {
                    Inbound::Closed => break Ending::ClientLeft { dropped: !clean },
                    Inbound::Event { from, text } => {
                        let forwarded = call.send(CallInput::ClientEvent { from, text });
                        if forwarded.is_err() {
                            break Ending::Close(sideband::call_ended()); // the session is gone
                        }
                    }
                    _ => {}
                }
                // Pongs to the client's pings go out with the next flush.
                if ws.flush().await.is_err() {
                    break Ending::ClientLeft { dropped: true };
                }
            }
            out = from_call.recv() => match out {
                Some(ToSideband::Event(text)) => {
                    let frame = Message::Text(Utf8Bytes::from(text.as_ref()));
                    if ws.send(frame).await.is_err() {
                        break Ending::ClientLeft { dropped: true };
                    }
                }
                Some(ToSideband::Drop) => break Ending::Drop,
                Some(ToSideband::Close(spec)) => break Ending::Close(spec),
                None => break Ending::Close(sideband::call_ended()),
            },
        }
    };
    // The call hears first: ending the socket may wait seconds for the client.
    calls.media_sideband(call_id, false);
    let dropped = matches!(ending, Ending::Drop | Ending::ClientLeft { dropped: true });
    let _ = call.send(CallInput::SidebandLeft {
        from: index,
        dropped,
    });
    match ending {
        Ending::Drop => {
            tracing::debug!(connection = index, "platform: sideband dropped");
            drop_connection(&mut ws).await;
        }
        Ending::Close(spec) => close(&mut ws, &spec).await,
        Ending::ClientLeft { .. } => {}
    }
}

/// How a sideband's relay ends.
enum Ending {
    /// The client closed (cleanly, or its connection failed: `dropped`).
    ClientLeft { dropped: bool },
    /// The platform drops the connection without a close frame.
    Drop,
    /// The platform closes the WebSocket with this frame.
    Close(CloseSpec),
}
