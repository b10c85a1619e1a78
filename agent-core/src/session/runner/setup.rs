//! Setting up a connection before the loop runs on it: connect, send `session.update` and wait
//! for `session.updated`, then replay the conversation. Used for the first connection and for
//! every replacement.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::wire::{describe, final_close};
use crate::{
    protocol::{ClientEvent, Item, ServerEvent, SessionKind},
    session::{
        Direction, SessionConfig, SessionError,
        log::for_replay,
        reconnect::is_final_close,
        transport::{self, WsStream},
    },
};

/// Bytes of frames kept from before the configuration was confirmed (see
/// [`Established::early`]); a server that sends more than this during setup loses the excess,
/// with a warning, rather than growing memory without bound.
const EARLY_BYTES_MAX: usize = 4 << 20;

/// A connection ready for the session loop.
pub(crate) struct Established {
    pub ws: WsStream,
    /// The session id `session.updated` (or `session.created`) reported.
    pub session_id: Option<String>,
    /// The model `session.updated` reported.
    pub model: Option<String>,
    /// Frames the server sent before it confirmed the configuration, already observed, in
    /// order. On a call the platform holds, the caller may speak while the sideband attaches:
    /// that turn's events (a function call among them) come before `session.updated` and must
    /// reach the loop, or the call would wait for an output forever.
    pub early: Vec<Utf8Bytes>,
}

impl Established {
    /// A connection with nothing to report (a re-attach, which sends no `session.update`).
    pub(crate) fn bare(ws: WsStream) -> Self {
        Self {
            ws,
            session_id: None,
            model: None,
            early: Vec::new(),
        }
    }
}

/// Connects, configures the session and replays `conversation` (every item, in order) into
/// it.
pub(crate) async fn establish(
    config: &SessionConfig,
    conversation: &[(String, Item)],
) -> Result<Established, SessionError> {
    let mut ws = transport::connect(&config.connect).await?;
    let (session_id, model, early) = configure(&mut ws, config).await?;
    let established = Established {
        ws,
        session_id,
        model,
        early,
    };
    if config.session.kind == SessionKind::Transcription {
        // A transcription session has no conversation to restore: its items are transcripts.
        return Ok(established);
    }
    let mut ws = established.ws;
    let compacted;
    let entries = match config.compaction {
        Some(compaction) => {
            compacted = compaction.apply(conversation);
            &compacted[..]
        }
        None => conversation,
    };
    for (_, item) in entries {
        let event = ClientEvent::conversation_item_create(for_replay(item));
        send_during_setup(&mut ws, config, &event).await?;
    }
    Ok(Established { ws, ..established })
}

/// Sends one event before the session loop runs (setup and replay), traced like any other.
async fn send_during_setup(
    ws: &mut WsStream,
    config: &SessionConfig,
    event: &ClientEvent,
) -> Result<(), SessionError> {
    let text = event
        .encode(config.connect.dialect)
        .map_err(SessionError::Encode)?;
    if let Some(observer) = &config.observer {
        observer.frame(Direction::Sent, &text);
    }
    let wait = config.ready_timeout;
    match tokio::time::timeout(wait, ws.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(SessionError::ConnectionLost(describe(&err))),
        Err(_) => Err(SessionError::NotReady { after: wait }),
    }
}

/// Sends `session.update` and waits for `session.updated`, reporting a server error verbatim.
/// Returns the session id, the model, and the other frames that came first (see
/// [`Established::early`]).
async fn configure(
    ws: &mut WsStream,
    config: &SessionConfig,
) -> Result<(Option<String>, Option<String>, Vec<Utf8Bytes>), SessionError> {
    let update = ClientEvent::session_update(config.session.clone());
    send_during_setup(ws, config, &update).await?;
    let deadline = tokio::time::Instant::now() + config.ready_timeout;
    let mut session_id = None;
    let mut early = Vec::new();
    let mut early_bytes = 0usize;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| SessionError::NotReady {
                after: config.ready_timeout,
            })?;
        let Some(text) = setup_text(frame)? else {
            continue;
        };
        if let Some(observer) = &config.observer {
            observer.frame(Direction::Received, text.as_str());
        }
        match ServerEvent::decode(text.as_str()) {
            Ok(ServerEvent::SessionCreated(e)) => session_id = e.session.id.clone(),
            Ok(ServerEvent::SessionUpdated(e)) => {
                let model = e.session.model.clone();
                return Ok((e.session.id.clone().or(session_id), model, early));
            }
            Ok(ServerEvent::Error(e)) => {
                return Err(SessionError::Rejected {
                    code: e.error.code,
                    message: e.error.message,
                });
            }
            Ok(_) if early_bytes + text.len() <= EARLY_BYTES_MAX => {
                early_bytes += text.len();
                early.push(text);
            }
            Ok(_) => tracing::warn!(
                "dropped a server frame sent before the session was configured: over {} MiB \
                 of such frames",
                EARLY_BYTES_MAX >> 20
            ),
            Err(err) => tracing::warn!("skipped a server frame during setup: {err}"),
        }
    }
}

/// The text of a frame read during setup: `None` for frames to skip, an error when the
/// connection ended.
fn setup_text(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Option<tokio_tungstenite::tungstenite::Utf8Bytes>, SessionError> {
    match frame {
        None => Err(SessionError::ConnectionLost(
            "the server closed the connection".into(),
        )),
        Some(Err(err)) => Err(SessionError::ConnectionLost(describe(&err))),
        Some(Ok(Message::Text(text))) => Ok(Some(text)),
        Some(Ok(Message::Close(frame))) => Err(match frame {
            Some(f) if is_final_close(u16::from(f.code)) => SessionError::Ended(final_close(&f)),
            Some(f) => SessionError::ConnectionLost(format!(
                "closed by the server ({}: {})",
                f.code, f.reason
            )),
            None => SessionError::ConnectionLost("closed by the server".into()),
        }),
        Some(Ok(_)) => Ok(None),
    }
}
