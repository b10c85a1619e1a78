//! str0m on a tokio UDP socket on loopback, for both test peers.
//!
//! str0m is sans-IO: it takes datagrams and the time, and hands back datagrams to send, events
//! and the time it next wants to be woken. Its one rule: after every change (an input, a write)
//! drain [`Rtc::poll_output`] until it returns a timeout. [`RtcSocket::mutate`] is the only way
//! these peers change an `Rtc`, so the rule holds by construction; events found while draining
//! are queued for the caller.

use std::{collections::VecDeque, net::SocketAddr, time::Instant as StdInstant};

use str0m::{
    Candidate, Event, Input, Output, Rtc, RtcError,
    format::Codec,
    media::{Frequency, MediaTime, Mid},
    net::{Protocol, Receive},
};
use tokio::{net::UdpSocket, time::Instant};

/// The largest datagram read: above any MTU on loopback.
const MAX_DATAGRAM: usize = 2048;
/// How long a polite hang-up may take to send its goodbyes.
const CLOSE_DRAIN: std::time::Duration = std::time::Duration::from_millis(200);

/// A UDP socket on 127.0.0.1 and the events of the `Rtc` it carries.
#[derive(Debug)]
pub(crate) struct RtcSocket {
    socket: UdpSocket,
    local: SocketAddr,
    buf: Vec<u8>,
    /// Events found while draining, oldest first.
    pub(crate) events: VecDeque<Event>,
    /// When the `Rtc` wants to be woken next.
    pub(crate) timeout: Instant,
}

impl RtcSocket {
    /// Binds a free UDP port on 127.0.0.1.
    pub(crate) async fn bind_loopback() -> std::io::Result<RtcSocket> {
        let socket = UdpSocket::bind(("127.0.0.1", 0)).await?;
        let local = socket.local_addr()?;
        Ok(RtcSocket {
            socket,
            local,
            buf: vec![0; MAX_DATAGRAM],
            events: VecDeque::new(),
            timeout: Instant::now(),
        })
    }

    /// The host candidate to offer or answer with.
    pub(crate) fn candidate(&self) -> Result<Candidate, RtcError> {
        Candidate::host(self.local, "udp").map_err(RtcError::from)
    }

    /// Applies one change to `rtc`, then drains its output: datagrams are sent, events queued,
    /// the next timeout kept.
    pub(crate) fn mutate<T>(
        &mut self,
        rtc: &mut Rtc,
        change: impl FnOnce(&mut Rtc) -> Result<T, RtcError>,
    ) -> Result<T, RtcError> {
        let out = change(rtc)?;
        self.drain(rtc)?;
        Ok(out)
    }

    /// Writes one Opus `frame` at RTP time `ticks` (48 kHz) on the audio track `mid`, then
    /// drains. `Ok(false)` when the frame was not sent: the track has no writer yet, no Opus
    /// payload type was negotiated, or str0m refused the frame (dropped, as a media stack
    /// drops a late frame; logged at debug). An error is the connection's own failure.
    pub(crate) fn write_opus(
        &mut self,
        rtc: &mut Rtc,
        mid: Mid,
        ticks: u64,
        frame: &[u8],
    ) -> Result<bool, RtcError> {
        self.mutate(rtc, |rtc| {
            let Some(writer) = rtc.writer(mid) else {
                return Ok(false);
            };
            let Some(pt) = writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| p.pt())
            else {
                return Ok(false);
            };
            let time = MediaTime::new(ticks, Frequency::FORTY_EIGHT_KHZ);
            match writer.write(pt, StdInstant::now(), time, frame.to_vec()) {
                Ok(()) => Ok(true),
                Err(e) => {
                    tracing::debug!(error = %e, "WebRTC: an audio frame was not sent");
                    Ok(false)
                }
            }
        })
    }

    /// Drains `rtc`'s output (after a change made elsewhere, e.g. an SDP negotiation).
    pub(crate) fn drain(&mut self, rtc: &mut Rtc) -> Result<(), RtcError> {
        loop {
            match rtc.poll_output()? {
                Output::Timeout(at) => {
                    self.timeout = to_tokio(at);
                    return Ok(());
                }
                // UDP: a full send buffer loses the datagram, as a network would.
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(event) => self.events.push_back(event),
            }
        }
    }

    /// Waits for one datagram (cancel-safe: nothing is lost when another branch wins).
    pub(crate) async fn readable(&self) -> std::io::Result<()> {
        self.socket.readable().await
    }

    /// Feeds the datagrams waiting on the socket to `rtc`, each as its own change. Datagrams
    /// str0m does not recognise are skipped (anything may reach a port on loopback).
    pub(crate) fn receive(&mut self, rtc: &mut Rtc) -> Result<(), RtcError> {
        loop {
            let (n, source) = match self.socket.try_recv_from(&mut self.buf) {
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                // ICMP errors (a peer's port closed) surface here on Linux: not fatal.
                Err(e) => {
                    tracing::debug!(error = %e, "webrtc: UDP receive failed");
                    return Ok(());
                }
            };
            let Some(data) = self.buf.get(..n) else {
                return Ok(());
            };
            let Ok(contents) = data.try_into() else {
                tracing::debug!(bytes = n, %source, "webrtc: ignoring a datagram that is not WebRTC");
                continue;
            };
            let input = Input::Receive(
                StdInstant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.local,
                    contents,
                },
            );
            rtc.handle_input(input)?;
            self.drain(rtc)?;
        }
    }

    /// Hangs up politely: RTCP BYE, SCTP shutdown and DTLS close_notify go out (str0m waits
    /// for no reply), so the other peer learns of it at once rather than when ICE times out.
    /// Bounded by [`CLOSE_DRAIN`].
    pub(crate) async fn close(&mut self, rtc: &mut Rtc) {
        let until = Instant::now() + CLOSE_DRAIN;
        if self.mutate(rtc, Rtc::close).is_err() {
            rtc.disconnect();
            return;
        }
        while rtc.is_alive() && Instant::now() < until {
            tokio::time::sleep_until(self.timeout.min(until)).await;
            if self.tick(rtc).is_err() {
                break;
            }
        }
        rtc.disconnect();
    }

    /// Tells `rtc` the time passed (its timeout came).
    pub(crate) fn tick(&mut self, rtc: &mut Rtc) -> Result<(), RtcError> {
        self.mutate(rtc, |rtc| {
            rtc.handle_input(Input::Timeout(StdInstant::now()))
        })
    }
}

/// The tokio instant of a std one (str0m keeps std time; tokio sleeps on its own clock, which
/// is the same clock outside paused-time tests).
fn to_tokio(at: StdInstant) -> Instant {
    Instant::from_std(at)
}
