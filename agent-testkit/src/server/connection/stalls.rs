//! The two stall faults: a connection that goes silent (`stall_after`) and a response whose
//! stream stops while requests are still answered (`stall_stream_after`).

use super::*;

/// Where the `stall_stream_after` fault stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum StreamStall {
    /// The count was reached while no response was active: hold the next one.
    NextResponse,
    /// The events of this response are held back until it is cancelled.
    Holding(String),
}

impl Conn {
    /// The silent connection: read (so pings get pongs) and record until the client leaves.
    ///
    /// tungstenite queues the pong when it reads a ping; the flush before each read writes it.
    /// Waiting on the socket, not polling it, keeps the stall from spinning.
    pub(super) async fn stall(&mut self, link: &mut Link) {
        tracing::debug!(connection = self.index, "stalled: reading only");
        loop {
            if !link.flush().await {
                return;
            }
            let inbound = link.next(self.index, None).await;
            // A stalled WebRTC call still ends when its browser goes.
            let gone = matches!(
                inbound,
                Inbound::Call(crate::server::media_call::CallInput::PeerGone { .. })
            );
            if gone {
                self.detach(false);
                link.close(&super::sideband::call_ended()).await;
                return;
            }
            if self.on_frame(inbound) == Flow::Stop {
                let _ = link.flush().await;
                return;
            }
        }
    }

    /// The `stall_stream_after` count was reached: hold the active response, or the next one.
    pub(super) fn arm_stream_stall(&mut self) {
        let stall = match &self.active {
            Some(active) if !self.cancelling => StreamStall::Holding(active.id.clone()),
            _ => StreamStall::NextResponse,
        };
        tracing::debug!(connection = self.index, ?stall, "fault: stream stall");
        self.stream_stall = Some(stall);
    }

    /// A response started: it is the held one if the stall waits for the next response.
    pub(super) fn hold_if_stall_waits(&mut self, response_id: &str) {
        if self.stream_stall == Some(StreamStall::NextResponse) {
            self.stream_stall = Some(StreamStall::Holding(response_id.to_string()));
        }
    }

    /// The held response is being cancelled: its closing events flow, and the stall is spent.
    pub(super) fn release_stream_stall(&mut self) {
        let held = matches!(
            (&self.stream_stall, &self.active),
            (Some(StreamStall::Holding(id)), Some(active)) if *id == active.id
        );
        if held {
            self.stream_stall = None;
        }
    }

    /// Whether a stream event may be sent now (there is one and it is not held back).
    pub(super) fn stream_open(&self) -> bool {
        if self.stream.is_empty() {
            return false;
        }
        match (&self.stream_stall, &self.active) {
            (Some(StreamStall::Holding(id)), Some(active)) => *id != active.id,
            _ => true,
        }
    }
}
