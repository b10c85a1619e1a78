//! The platform's side of one WebRTC call: str0m answering the browser's offer on a UDP port of
//! 127.0.0.1, driven by a tokio task.
//!
//! The browser is the offerer: it brings an audio track and the `oai-events` data channel.
//! The peer relays the channel's text to the call's session and the session's events back,
//! turns the microphone's RTP packets into [`CallInput::Audio`], and plays the answers' audio
//! as Opus frames paced by [`Playout`]. Every wait has a deadline: a browser that has not
//! opened `oai-events` within the connect deadline is given up and the call ends, and so it
//! does when the browser closes the peer connection or the channel, or ICE disconnects. When
//! the call ends on the platform's side, the peer closes politely (DTLS close_notify), so the
//! browser learns of it at once.

use std::{
    collections::VecDeque,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant as StdInstant},
};

use str0m::{
    Event, IceConnectionState, Rtc, RtcError,
    change::SdpOffer,
    channel::ChannelId,
    format::{Codec, FormatParams},
    media::{Frequency, MediaKind, Mid},
};
use tokio::time::Instant;

use super::{
    MediaCounters,
    playout::{Playout, Step},
};

/// Opus's payload type, the one browsers offer.
const OPUS_PT: u8 = 111;
use crate::{
    server::{
        media_call::{CallInput, PeerEnds, ToPeer},
        packet_vad,
    },
    webrtc::{
        EVENTS_CHANNEL,
        io::RtcSocket,
        opus::{self, FRAME, TICKS_PER_FRAME, TONE_FRAME},
    },
};

/// Server events queued for a data channel that is not open yet, at most: a browser that never
/// opens it is given up long before, so reaching this means something loops.
const MAX_PENDING: usize = 10_000;

/// Why an offer gets no answer.
#[derive(Debug)]
pub(super) enum AnswerError {
    /// The offer is not SDP the platform can answer (400).
    BadSdp(String),
    /// The platform could not set up its side (500).
    Internal(String),
}

/// A peer that answered an offer and waits for its task.
pub(super) struct Peer {
    rtc: Rtc,
    io: RtcSocket,
}

/// Answers `offer` (SDP text): the answer's SDP, with the host candidate of a fresh UDP port on
/// 127.0.0.1, and the peer to run.
pub(super) async fn answer(offer: &str) -> Result<(String, Peer), AnswerError> {
    if !offer
        .lines()
        .any(|l| l.trim_start().starts_with("m=application"))
    {
        return Err(AnswerError::BadSdp(format!(
            "the offer has no data channel (m=application): create the `{EVENTS_CHANNEL}` channel before making the offer"
        )));
    }
    let offer = SdpOffer::from_sdp_string(offer)
        .map_err(|e| AnswerError::BadSdp(format!("the offer is not valid SDP: {e}")))?;
    let mut io = RtcSocket::bind_loopback()
        .await
        .map_err(|e| AnswerError::Internal(format!("cannot bind a UDP port on 127.0.0.1: {e}")))?;
    let internal = |e: RtcError| AnswerError::Internal(e.to_string());
    let mut builder = Rtc::builder().clear_codecs();
    // Opus as str0m enables it, plus `usedtx=1` in the answer: a browser then sends nothing
    // (DTX) while its microphone is silent, as the platform's packet VAD expects; without it
    // Chromium spends ~35 bytes a frame on silence, which reads as voice.
    builder.codec_config().add_config(
        OPUS_PT.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        FormatParams {
            min_p_time: Some(10),
            use_inband_fec: Some(true),
            use_dtx: Some(true),
            ..FormatParams::default()
        },
    );
    let mut rtc = builder.build(StdInstant::now());
    let candidate = io.candidate().map_err(internal)?;
    io.mutate(&mut rtc, |rtc| {
        rtc.add_local_candidate(candidate);
        Ok(())
    })
    .map_err(internal)?;
    // str0m answers what it can parse; a hostile offer must still never take the platform
    // down, so a panic deep in negotiation is a refused offer like any other.
    let accepted = catch_unwind(AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)));
    let answer = match accepted {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            return Err(AnswerError::BadSdp(format!(
                "the offer cannot be answered: {e}"
            )));
        }
        Err(_) => {
            return Err(AnswerError::BadSdp(
                "the offer cannot be answered: the WebRTC stack failed on it".into(),
            ));
        }
    };
    io.drain(&mut rtc).map_err(internal)?;
    Ok((answer.to_sdp_string(), Peer { rtc, io }))
}

impl Peer {
    /// Runs the call's media until the call ends or the browser goes; the session hears why.
    pub(super) async fn run(
        self,
        ends: PeerEnds,
        connect_deadline: Duration,
        counters: Arc<MediaCounters>,
    ) {
        let mut task = PeerTask {
            rtc: self.rtc,
            io: self.io,
            ends,
            counters,
            events_channel: None,
            connected: false,
            pending: VecDeque::new(),
            audio_mid: None,
            playout: Playout::default(),
            rtp_ticks: 0,
            last_frame_at: None,
        };
        let why = task.drive(connect_deadline).await;
        tracing::debug!(connection = task.ends.index, %why, "platform: WebRTC peer ends");
        let _ = task.ends.inbound.send(CallInput::PeerGone { why });
        task.io.close(&mut task.rtc).await;
    }
}

struct PeerTask {
    rtc: Rtc,
    io: RtcSocket,
    ends: PeerEnds,
    counters: Arc<MediaCounters>,
    /// `oai-events`, once the browser opened it.
    events_channel: Option<ChannelId>,
    /// ICE and DTLS are up.
    connected: bool,
    /// Server events waiting for the channel (or for room in its buffer).
    pending: VecDeque<Arc<str>>,
    /// The audio track, once negotiated.
    audio_mid: Option<Mid>,
    playout: Playout,
    rtp_ticks: u64,
    last_frame_at: Option<Instant>,
}

impl PeerTask {
    /// The loop; returns why it ended.
    async fn drive(&mut self, connect_deadline: Duration) -> String {
        let connect_by = Instant::now() + connect_deadline;
        loop {
            if let Err(why) = self.handle_events() {
                return why;
            }
            if self.events_channel.is_none() && Instant::now() >= connect_by {
                return format!(
                    "the browser did not connect within {connect_deadline:?} (ICE, DTLS and the `{EVENTS_CHANNEL}` data channel)"
                );
            }
            let mut wake = self.io.timeout;
            if self.events_channel.is_none() {
                wake = wake.min(connect_by);
            }
            if let Some(at) = self.playout.deadline() {
                wake = wake.min(at);
            }
            let step = tokio::select! {
                readable = self.io.readable() => match readable {
                    Ok(()) => self.io.receive(&mut self.rtc).map_err(gone),
                    Err(e) => Err(format!("the UDP socket failed: {e}")),
                },
                command = self.ends.commands.recv() => match command {
                    None | Some(ToPeer::Hangup) => return "the call ended".into(),
                    Some(command) => {
                        self.on_command(command);
                        self.flush_pending()
                    }
                },
                () = tokio::time::sleep_until(wake) => self.on_time(),
            };
            if let Err(why) = step {
                return why;
            }
        }
    }

    /// A timer came: str0m's, the playout's, or the connect deadline (checked by the loop).
    fn on_time(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if now >= self.io.timeout {
            self.io.tick(&mut self.rtc).map_err(gone)?;
        }
        while let Some(step) = self.playout.poll(now) {
            match step {
                Step::Frame => self.send_frame(now)?,
                Step::Drained(response_id) => {
                    let _ = self
                        .ends
                        .inbound
                        .send(CallInput::PlayoutDrained { response_id });
                }
            }
        }
        Ok(())
    }

    fn on_command(&mut self, command: ToPeer) {
        let now = Instant::now();
        match command {
            ToPeer::Event(text) => {
                if self.pending.len() >= MAX_PENDING {
                    tracing::warn!(
                        connection = self.ends.index,
                        "platform: {MAX_PENDING} events wait for `{EVENTS_CHANNEL}`; dropping the oldest"
                    );
                    self.pending.pop_front();
                }
                self.pending.push_back(text);
            }
            ToPeer::Play { ms } => self.playout.play(ms, now),
            ToPeer::PlayoutEnds { response_id } => self.playout.end(response_id, now),
            ToPeer::ClearPlayout => self.playout.clear(),
            ToPeer::Hangup => {} // handled by the loop
        }
    }

    /// Handles the events str0m queued, including those that handling them queues.
    fn handle_events(&mut self) -> Result<(), String> {
        while let Some(event) = self.io.events.pop_front() {
            self.on_event(event)?;
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) -> Result<(), String> {
        let index = self.ends.index;
        match event {
            Event::Connected => self.connected = true,
            Event::Closed => return Err("the browser closed the peer connection".into()),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.connected => {
                return Err("ICE disconnected: the browser left".into());
            }
            Event::MediaAdded(media) if media.kind == MediaKind::Audio => {
                self.audio_mid = Some(media.mid);
            }
            Event::MediaData(data) => {
                self.counters.received.fetch_add(1, Ordering::Relaxed);
                let ms = opus::packet_duration(&data.data)
                    .unwrap_or(FRAME)
                    .as_millis();
                let _ = self.ends.inbound.send(CallInput::Audio {
                    at: Instant::now(),
                    ms: u32::try_from(ms).unwrap_or(u32::MAX),
                    voiced: packet_vad::voiced(&data.data),
                });
            }
            Event::ChannelOpen(id, label) => {
                if label == EVENTS_CHANNEL && self.events_channel.is_none() {
                    tracing::debug!(connection = index, "platform: `{EVENTS_CHANNEL}` open");
                    self.events_channel = Some(id);
                    self.flush_pending()?;
                } else {
                    tracing::debug!(connection = index, %label, "platform: ignoring a data channel");
                }
            }
            Event::ChannelData(data) => {
                if Some(data.id) != self.events_channel {
                    tracing::debug!(
                        connection = index,
                        bytes = data.data.len(),
                        "platform: ignoring data on a channel other than `{EVENTS_CHANNEL}`"
                    );
                    return Ok(());
                }
                // Not UTF-8 (or binary) still reaches the session, which answers `invalid_json`.
                let text = String::from_utf8_lossy(&data.data).into_owned();
                let _ = self
                    .ends
                    .inbound
                    .send(CallInput::ClientEvent { from: index, text });
            }
            Event::ChannelClose(id) if Some(id) == self.events_channel => {
                return Err(format!("the browser closed `{EVENTS_CHANNEL}`"));
            }
            Event::ChannelBufferedAmountLow(_) => self.flush_pending()?,
            _ => {}
        }
        Ok(())
    }

    /// Writes queued server events to `oai-events`, as many as its buffer takes.
    fn flush_pending(&mut self) -> Result<(), String> {
        let Some(id) = self.events_channel else {
            return Ok(());
        };
        while let Some(text) = self.pending.front().cloned() {
            let written = self
                .io
                .mutate(&mut self.rtc, |rtc| {
                    Ok(match rtc.channel(id) {
                        Some(mut channel) => channel.write(false, text.as_bytes()),
                        None => Ok(false),
                    })
                })
                .map_err(gone)?;
            match written {
                Ok(true) => {
                    self.pending.pop_front();
                }
                Ok(false) => break, // full: the rest goes when it drains
                Err(e) => {
                    tracing::warn!(
                        connection = self.ends.index,
                        error = %e,
                        bytes = text.len(),
                        "platform: the data channel refused a server event; it is dropped"
                    );
                    self.pending.pop_front();
                }
            }
        }
        Ok(())
    }

    /// Sends one frame of the answer's audio, if the track is up (playout keeps time either
    /// way, as a speaker would).
    fn send_frame(&mut self, now: Instant) -> Result<(), String> {
        // RTP time follows the clock: a pause between answers advances it too.
        if let Some(last) = self.last_frame_at {
            let idle = now.saturating_duration_since(last).saturating_sub(FRAME);
            if idle > FRAME {
                self.rtp_ticks += idle.as_micros() as u64 * opus::CLOCK_RATE / 1_000_000;
            }
        }
        self.last_frame_at = Some(now);
        self.rtp_ticks += TICKS_PER_FRAME;
        let (Some(mid), true) = (self.audio_mid, self.rtc.is_connected()) else {
            return Ok(());
        };
        let sent = self
            .io
            .write_opus(&mut self.rtc, mid, self.rtp_ticks, &TONE_FRAME)
            .map_err(gone)?;
        if sent {
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The reason a str0m error ends the call.
fn gone(e: RtcError) -> String {
    format!("the WebRTC stack failed: {e}")
}
