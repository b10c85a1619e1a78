//! A platform-held call with its own media path (WebRTC): one session, several transports.
//!
//! A SIP call's session lives in whichever sideband is attached ([`calls`](super::calls)): the
//! sideband is its only transport. A WebRTC call has a transport of its own, the browser's
//! `oai-events` data channel, which lives as long as the call, and sidebands come and go beside
//! it. So its session runs in a task of its own: the scripted server's connection code, over a
//! [`CallLink`]. Every server event goes to the data channel and to every attached sideband;
//! client events from any of them act on the one session; the browser's audio and the playout
//! of the answers reach the session as [`CallInput`]s.

use std::{future::Future, sync::Arc};

use serde_json::Value;
use tokio::sync::mpsc;

use super::{Shared, faults::CloseSpec};

/// What reaches a media call's session from its transports and its peer.
#[derive(Debug)]
pub(crate) enum CallInput {
    /// A client event, from the data channel (`from` = the call's own connection index) or a
    /// sideband (its connection index).
    ClientEvent { from: usize, text: String },
    /// A sideband attached: it gets `session.created`, then every server event.
    SidebandJoined {
        from: usize,
        events: mpsc::UnboundedSender<ToSideband>,
    },
    /// A sideband let go; `dropped` when its connection failed rather than closed.
    SidebandLeft { from: usize, dropped: bool },
    /// The caller's audio: one packet of `ms`, voiced or silent (see
    /// [`PacketVad`](super::packet_vad::PacketVad)), arrived at `at`.
    Audio {
        at: tokio::time::Instant,
        ms: u32,
        voiced: bool,
    },
    /// The peer played everything it was given up to this response's end.
    PlayoutDrained { response_id: String },
    /// The peer is gone (never connected in time, or the browser left): the call ends.
    PeerGone { why: String },
}

/// What a media call's session asks of its WebRTC peer.
#[derive(Debug)]
pub(crate) enum ToPeer {
    /// A server event for the `oai-events` data channel.
    Event(Arc<str>),
    /// Play this many milliseconds of the answer's audio.
    Play { ms: u64 },
    /// The answer `response_id` has no more audio: say when what was queued has played.
    PlayoutEnds { response_id: String },
    /// Drop the audio not played yet (`output_audio_buffer.clear`, a barge-in).
    ClearPlayout,
    /// The call is over.
    Hangup,
}

/// What a media call's session sends one sideband.
#[derive(Debug)]
pub(crate) enum ToSideband {
    /// A server event.
    Event(Arc<str>),
    /// Drop the TCP connection without a close frame.
    Drop,
    /// Close the WebSocket with this frame.
    Close(CloseSpec),
}

/// The session's end of a media call: its transports and its peer.
pub(crate) struct CallLink {
    inbound: mpsc::UnboundedReceiver<CallInput>,
    peer: mpsc::UnboundedSender<ToPeer>,
    sidebands: Vec<(usize, mpsc::UnboundedSender<ToSideband>)>,
}

impl CallLink {
    /// The next input; never `None` while the platform holds the call.
    pub(crate) async fn next(&mut self) -> Option<CallInput> {
        self.inbound.recv().await
    }

    /// An input that is already there.
    pub(crate) fn try_next(&mut self) -> Option<CallInput> {
        self.inbound.try_recv().ok()
    }

    /// Sends a server event to the data channel and every sideband. Always `true`: a
    /// transport that is gone says so through [`CallInput`], and the call goes on without it.
    pub(crate) fn broadcast(&mut self, text: &str) -> bool {
        let text: Arc<str> = Arc::from(text);
        let _ = self.peer.send(ToPeer::Event(Arc::clone(&text)));
        self.sidebands
            .retain(|(_, tx)| tx.send(ToSideband::Event(Arc::clone(&text))).is_ok());
        true
    }

    /// Adds a sideband to the broadcast, after `welcome` (its `session.created`) was sent to
    /// it alone.
    pub(crate) fn add_sideband(
        &mut self,
        from: usize,
        events: mpsc::UnboundedSender<ToSideband>,
        welcome: &str,
    ) {
        if events.send(ToSideband::Event(Arc::from(welcome))).is_ok() {
            self.sidebands.push((from, events));
        }
    }

    /// Forgets a sideband that let go.
    pub(crate) fn remove_sideband(&mut self, from: usize) {
        self.sidebands.retain(|(index, _)| *index != from);
    }

    /// Drops every sideband's connection (the call and its data channel go on).
    pub(crate) fn drop_sidebands(&mut self) {
        for (_, tx) in self.sidebands.drain(..) {
            let _ = tx.send(ToSideband::Drop);
        }
    }

    /// Ends the call abruptly: sidebands are dropped, the peer hangs up.
    pub(crate) fn drop_all(&mut self) {
        self.drop_sidebands();
        let _ = self.peer.send(ToPeer::Hangup);
    }

    /// Ends the call: sidebands get `spec` as their close frame, the peer hangs up.
    pub(crate) fn close_all(&mut self, spec: &CloseSpec) {
        for (_, tx) in self.sidebands.drain(..) {
            let _ = tx.send(ToSideband::Close(spec.clone()));
        }
        let _ = self.peer.send(ToPeer::Hangup);
    }

    /// Queues `ms` of the answer's audio on the media path.
    pub(crate) fn play(&mut self, ms: u64) {
        let _ = self.peer.send(ToPeer::Play { ms });
    }

    /// Asks the peer to say when the audio queued so far has played.
    pub(crate) fn playout_ends(&mut self, response_id: &str) {
        let _ = self.peer.send(ToPeer::PlayoutEnds {
            response_id: response_id.to_owned(),
        });
    }

    /// Drops the audio not played yet.
    pub(crate) fn clear_playout(&mut self) {
        let _ = self.peer.send(ToPeer::ClearPlayout);
    }
}

/// The peer's end of a new media call.
#[derive(Debug)]
pub(crate) struct PeerEnds {
    /// The call's connection index: data channel events are recorded under it.
    pub(crate) index: usize,
    /// Where the peer sends client events, audio and its own state.
    pub(crate) inbound: mpsc::UnboundedSender<CallInput>,
    /// What the session asks of the peer.
    pub(crate) commands: mpsc::UnboundedReceiver<ToPeer>,
}

/// Registers a WebRTC call `call_id` with the platform's calls, its session configured by
/// `session`, and returns the peer's end and the session's task (to be spawned). `None` when
/// this server holds no platform calls.
pub(crate) fn start(
    shared: &Arc<Shared>,
    call_id: &str,
    session: Value,
) -> Option<(PeerEnds, impl Future<Output = ()> + Send + 'static)> {
    let calls = shared.config.calls.clone()?;
    let (inbound_tx, inbound) = mpsc::unbounded_channel();
    let (peer, commands) = mpsc::unbounded_channel();
    let index = shared
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let attached = calls.add_media(call_id, session, inbound_tx.clone());
    let link = CallLink {
        inbound,
        peer,
        sidebands: Vec::new(),
    };
    let task = super::connection::serve_media_call(
        index,
        Arc::clone(shared),
        call_id.to_owned(),
        attached,
        link,
    );
    let ends = PeerEnds {
        index,
        inbound: inbound_tx,
        commands,
    };
    Some((ends, task))
}
