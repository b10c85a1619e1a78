//! The socket of the current connection: frames in (decoded and routed, or read as a drop or
//! a close), events and pings out, every write with the same deadline. How socket errors and
//! close frames read in words is plain functions, tested below.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes, protocol::CloseFrame};

use super::{Flow, Runner};
use crate::{
    protocol::{ClientEvent, ServerEvent},
    session::{
        Direction,
        events::{CloseReason, human},
        reconnect::is_final_close,
    },
};

impl Runner {
    pub(super) async fn on_keepalive(&mut self) -> Flow {
        let dead_after = self.config.keepalive.dead_after;
        if self.last_frame.elapsed() > dead_after {
            return Flow::Lost(format!(
                "no data from the server for {}, not even an answer to a ping",
                human(dead_after)
            ));
        }
        match self.write(Message::Ping(Vec::new().into())).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    pub(super) async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tungstenite::Error>>,
    ) -> Flow {
        self.last_frame = Instant::now();
        let text = match frame {
            None => return Flow::Lost("the connection dropped".into()),
            Some(Err(err)) => return Flow::Lost(describe(&err)),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => return closed(frame.as_ref()),
            Some(Ok(Message::Binary(_))) => {
                self.warn("ignored a binary frame; the Realtime protocol is JSON text");
                return Flow::Continue;
            }
            Some(Ok(_)) => return Flow::Continue,
        };
        self.observe(Direction::Received, text.as_str());
        self.on_text(text).await
    }

    /// One server frame's text, already observed.
    pub(super) async fn on_text(&mut self, text: Utf8Bytes) -> Flow {
        match ServerEvent::decode(text.as_str()) {
            Ok(event) => self.on_event(event).await,
            Err(err) => {
                self.warn(&format!("skipped a server frame: {err}"));
                Flow::Continue
            }
        }
    }

    /// Queues one event for the socket; the loop flushes once per step, so the frames of one
    /// step share a write. A failure means the connection is gone (`Flow::Lost`).
    pub(super) async fn send(&mut self, event: ClientEvent) -> Result<(), Flow> {
        if matches!(event, ClientEvent::SessionUpdate(_)) {
            self.updates_in_flight += 1;
        }
        let text = match event.encode(self.config.connect.dialect) {
            Ok(text) => text,
            Err(err) => {
                self.warn(&format!("did not send an event: {err}"));
                return Ok(());
            }
        };
        self.observe(Direction::Sent, &text);
        let dead_after = self.config.keepalive.dead_after;
        let fed = tokio::time::timeout(dead_after, self.ws.feed(Message::Text(text.into()))).await;
        written(fed, dead_after)
    }

    /// Sends one frame now (a ping), with the same deadline as every write.
    async fn write(&mut self, message: Message) -> Result<(), Flow> {
        let dead_after = self.config.keepalive.dead_after;
        written(
            tokio::time::timeout(dead_after, self.ws.send(message)).await,
            dead_after,
        )
    }

    /// Writes out what the step queued, with the same deadline as every write.
    pub(super) async fn flush(&mut self) -> Result<(), Flow> {
        let dead_after = self.config.keepalive.dead_after;
        written(
            tokio::time::timeout(dead_after, self.ws.flush()).await,
            dead_after,
        )
    }
}

/// What a write that had `deadline` to complete means for the connection.
fn written(
    result: Result<Result<(), tungstenite::Error>, tokio::time::error::Elapsed>,
    deadline: Duration,
) -> Result<(), Flow> {
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(Flow::Lost(describe(&err))),
        Err(_) => Err(Flow::Lost(stopped_reading(deadline))),
    }
}

fn stopped_reading(after: Duration) -> String {
    format!(
        "the server stopped reading: a write did not complete within {}",
        human(after)
    )
}

/// The server closed the connection: for good (a final close code), or to be replaced.
fn closed(frame: Option<&CloseFrame>) -> Flow {
    match frame {
        Some(f) if is_final_close(u16::from(f.code)) => Flow::Close(CloseReason::Fatal {
            code: None,
            message: final_close(f),
        }),
        Some(f) => Flow::Lost(format!(
            "the server closed the connection ({}: {})",
            f.code, f.reason
        )),
        None => Flow::Lost("the server closed the connection".into()),
    }
}

/// Why a final close ends the session, in words.
pub(super) fn final_close(frame: &CloseFrame) -> String {
    format!(
        "the server ended the session (close code {}: {}); reconnecting would not help",
        frame.code, frame.reason
    )
}

/// A socket error in words: an oversized or undecodable frame says so, rather than passing as
/// a generic drop.
pub(super) fn describe(err: &tungstenite::Error) -> String {
    use tungstenite::error::CapacityError;
    match err {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => format!(
            "the server sent a message of {size} bytes, over the {max_size}-byte limit (max_message_bytes); the connection cannot continue after it"
        ),
        tungstenite::Error::Capacity(other) => {
            format!("the server sent a frame over the size limit ({other})")
        }
        tungstenite::Error::Utf8(_) => {
            "the server sent a text frame that is not valid UTF-8".to_owned()
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        )
        | tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed => "the connection dropped".to_owned(),
        tungstenite::Error::Io(io) => format!("the connection failed ({io})"),
        tungstenite::Error::Protocol(problem) => {
            format!("the server broke the WebSocket protocol ({problem})")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::{
        error::{CapacityError, ProtocolError},
        protocol::frame::coding::CloseCode,
    };

    use super::*;

    fn frame(code: u16, reason: &str) -> CloseFrame {
        CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        }
    }

    #[test]
    fn oversized_frames_name_the_size_and_the_limit() {
        let err = tungstenite::Error::Capacity(CapacityError::MessageTooLong {
            size: 20,
            max_size: 10,
        });
        let text = describe(&err);
        assert!(
            text.contains("20 bytes") && text.contains("10-byte limit"),
            "{text}"
        );
    }

    #[test]
    fn resets_and_closed_sockets_read_as_a_drop() {
        for err in [
            tungstenite::Error::ConnectionClosed,
            tungstenite::Error::AlreadyClosed,
            tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake),
        ] {
            assert_eq!(describe(&err), "the connection dropped");
        }
        let io = tungstenite::Error::Io(std::io::Error::other("boom"));
        assert_eq!(describe(&io), "the connection failed (boom)");
    }

    #[test]
    fn a_final_close_code_ends_the_session_and_others_reconnect() {
        match closed(Some(&frame(1008, "policy"))) {
            Flow::Close(CloseReason::Fatal { message, .. }) => {
                assert!(message.contains("close code 1008: policy"), "{message}");
            }
            _ => panic!("1008 is final"),
        }
        match closed(Some(&frame(1001, "going away"))) {
            Flow::Lost(why) => assert!(why.contains("1001"), "{why}"),
            _ => panic!("1001 is not final"),
        }
        assert!(matches!(closed(None), Flow::Lost(_)));
    }

    #[test]
    fn a_write_that_times_out_means_the_server_stopped_reading() {
        let why = stopped_reading(Duration::from_secs(60));
        assert!(why.starts_with("the server stopped reading"), "{why}");
        assert!(written(Ok(Ok(())), Duration::from_secs(1)).is_ok());
    }
}
