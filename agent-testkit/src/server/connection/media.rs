//! The session of a WebRTC call: the connection code over a media call's transports (see
//! [`media_call`](crate::server::media_call)).
//!
//! What differs from a WebSocket session is only what the media path brings: the caller's
//! audio arrives as RTP packets (speech found by [`PacketVad`]), the answer's audio is played
//! by the peer (so `output_audio_buffer.stopped` comes when the peer has played it), and
//! sidebands join and leave while the call goes on.

use super::*;
use crate::server::{
    calls::{Attached, SidebandDrop},
    media_call::{CallInput, CallLink},
    packet_vad::{Edge, PacketVad},
};

/// A WebRTC call's media state.
#[derive(Debug, Default)]
pub(super) struct MediaState {
    vad: PacketVad,
    /// Audio position (ms) at the end of the last voiced packet.
    last_voiced_end_ms: u64,
}

/// Runs the session of WebRTC call `call_id` until the call ends. The call was registered with
/// the platform (`attached`); its data channel is recorded as connection `index`.
pub(crate) async fn serve_media_call(
    index: usize,
    shared: Arc<Shared>,
    call_id: String,
    attached: Attached,
    link: CallLink,
) {
    let mut conn = Conn::new(index, shared, Dialect::Ga, &Handshake::default());
    conn.attach(call_id, attached);
    conn.media = Some(MediaState::default());
    tracing::debug!(connection = index, "platform: WebRTC call session starts");
    conn.run(Link::Call(link), true).await;
    conn.detach(false);
}

impl Conn {
    /// When the session wants to wake up with nothing arriving: a media call whose caller is
    /// speaking, to notice the silence that ends the turn.
    pub(super) fn media_wake_at(&self) -> Option<Instant> {
        let media = self.media.as_ref()?;
        media.vad.deadline(self.silence())
    }

    fn silence(&self) -> Duration {
        let ms = self.view().vad().map_or(0, |p| p.silence_duration_ms);
        Duration::from_millis(ms)
    }

    /// The wake-up of [`Conn::media_wake_at`]: the caller's silence may have ended the turn.
    pub(super) fn on_media_wake(&mut self) {
        let silence = self.silence();
        let Some(media) = self.media.as_mut() else {
            return;
        };
        if media.vad.poll(Instant::now(), silence) != Some(Edge::Stopped) {
            return;
        }
        let end = media.last_voiced_end_ms;
        if let Some(params) = self.view().vad() {
            self.speech_stopped(end, &params);
        }
    }

    /// Handles what a media call's peer or sidebands did.
    pub(super) async fn on_call_input(&mut self, input: CallInput, link: &mut Link) -> Flow {
        match input {
            CallInput::ClientEvent { from, text } => self.on_frame(Inbound::Event { from, text }),
            CallInput::SidebandJoined { from, events } => {
                let mut welcome = json!({"type": "session.created", "session": self.session});
                self.stamp(&mut welcome);
                let text = welcome.to_string();
                self.shared.record(from, Direction::FromServer, &text);
                if let Some(call) = link.call() {
                    call.add_sideband(from, events, &text);
                }
                Flow::Continue
            }
            CallInput::SidebandLeft { from, dropped } => {
                if let Some(call) = link.call() {
                    call.remove_sideband(from);
                }
                let ends = self
                    .shared
                    .config
                    .calls
                    .as_ref()
                    .is_some_and(|c| c.on_drop() == SidebandDrop::CallEnds);
                if dropped && ends {
                    tracing::debug!(
                        connection = self.index,
                        "platform: call ends with its sideband"
                    );
                    self.detach(false);
                    link.close(&sideband::call_ended()).await;
                    return Flow::Stop;
                }
                Flow::Continue
            }
            CallInput::Audio { at, ms, voiced } => {
                self.on_media_audio(at, ms, voiced);
                Flow::Continue
            }
            CallInput::PlayoutDrained { response_id } => {
                // The next answer may already play (it started while this one drained); the
                // peer never reports an answer that was cleared.
                if self.playing.as_deref() == Some(response_id.as_str()) {
                    self.playing = None;
                }
                self.reply(json!({
                    "type": "output_audio_buffer.stopped",
                    "response_id": response_id,
                }));
                Flow::Continue
            }
            CallInput::PeerGone { why } => {
                tracing::debug!(connection = self.index, %why, "platform: WebRTC peer gone, the call ends");
                self.detach(false);
                link.close(&sideband::call_ended()).await;
                Flow::Stop
            }
        }
    }

    /// One packet of the caller's audio: it fills the input buffer (in the session's input
    /// format, so a manual commit measures it) and, with turn detection on, may start speech.
    fn on_media_audio(&mut self, at: Instant, ms: u32, voiced: bool) {
        let format = self.view().input_format();
        self.input_bytes += format.bytes_per_ms() as usize * ms as usize;
        let start = self.input_ms_total;
        self.input_ms_total += u64::from(ms);
        let position = self.input_ms_total;
        let params = self.view().vad();
        let Some(media) = self.media.as_mut() else {
            return;
        };
        let Some(params) = params else {
            media.vad.reset();
            return;
        };
        if voiced {
            media.last_voiced_end_ms = position;
        }
        if media.vad.packet(at, voiced) == Some(Edge::Started) {
            self.speech_started(start, &params);
        }
    }

    /// A response's audio delta on a media call goes to the peer's playout instead of the
    /// transports.
    pub(super) fn play_on_media_path(&mut self, delta: &Value, link: &mut Link) {
        let Some(call) = link.call() else { return };
        let bytes = delta
            .get("delta")
            .and_then(Value::as_str)
            .and_then(decode_base64)
            .map_or(0, |b| b.len());
        let format = self
            .active
            .as_ref()
            .map_or_else(|| self.view().output_format(), |a| a.format);
        call.play(format.ms(bytes));
    }

    /// The user spoke over the answer on a media call: the peer drops what it has not played,
    /// and the platform says so (`output_audio_buffer.cleared`, no `.stopped` after it).
    pub(super) fn interrupt_playout(&mut self) {
        if self.media.is_none() {
            return;
        }
        let Some(response_id) = self.playing.take() else {
            return;
        };
        self.replies
            .push_back(Outgoing::action(Effect::StopPlayout));
        self.reply(json!({"type": "output_audio_buffer.cleared", "response_id": response_id}));
    }
}
