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
    let dropped = loop {
        tokio::select! {
            msg = ws.next() => {
                // A clean close frame is the client letting go; anything else is a drop.
                let clean = matches!(msg, Some(Ok(Message::Close(_))));
                match link::from_ws(msg, index) {
                    Inbound::Event { from, text } => {
                        if call.send(CallInput::ClientEvent { from, text }).is_err() {
                            break false;
                        }
                    }
                    Inbound::Closed => break !clean,
                    _ => {}
                }
                // Pongs to the client's pings go out with the next flush.
                if ws.flush().await.is_err() {
                    break true;
                }
            }
            out = from_call.recv() => match out {
                Some(ToSideband::Event(text)) => {
                    let frame = Message::Text(Utf8Bytes::from(text.as_ref()));
                    if ws.send(frame).await.is_err() {
                        break true;
                    }
                }
                Some(ToSideband::Drop) => {
                    tracing::debug!(connection = index, "platform: sideband dropped");
                    drop_connection(&mut ws).await;
                    break true;
                }
                Some(ToSideband::Close(spec)) => {
                    close(&mut ws, &spec).await;
                    break false;
                }
                None => {
                    close(&mut ws, &sideband::call_ended()).await;
                    break false;
                }
            },
        }
    };
    calls.media_sideband(call_id, false);
    let _ = call.send(CallInput::SidebandLeft {
        from: index,
        dropped,
    });
}
