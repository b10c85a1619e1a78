//! Voice activity from packet arrival, for a WebRTC call's microphone track.
//!
//! The fake platform does not decode Opus, so it cannot measure energy. It does not need to:
//! an encoder spends only a few bytes on silence (a TOC-only frame, comfort noise) and sends
//! nothing at all with DTX, while speech takes tens of bytes a frame. So a packet larger than
//! [`SILENT_FRAME_MAX_BYTES`] is voice; speech starts with the first voiced packet and stops
//! once no voiced packet came for the session's `silence_duration_ms`, whether silent packets
//! or none arrived in between. Sans-IO: the caller passes the time and asks for the deadline.

use std::time::Duration;

use tokio::time::Instant;

/// The largest Opus packet still taken for silence: a TOC-only frame is 1 to 3 bytes, and
/// encoders spend a handful on silence and comfort noise.
pub(crate) const SILENT_FRAME_MAX_BYTES: usize = 10;

/// The shortest silence that ends speech, whatever the session asks: packets on loopback
/// arrive in bursts a few milliseconds apart, and a gap shorter than this is jitter.
const MIN_SILENCE: Duration = Duration::from_millis(60);

/// Whether an Opus packet's payload carries voice.
pub(crate) fn voiced(payload: &[u8]) -> bool {
    payload.len() > SILENT_FRAME_MAX_BYTES
}

/// A change the detector found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    /// The first voiced packet after silence.
    Started,
    /// No voiced packet for the silence duration.
    Stopped,
}

/// The detector; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct PacketVad {
    /// When the last voiced packet arrived, while speech goes on.
    last_voiced: Option<Instant>,
}

impl PacketVad {
    /// One packet arrived at `now`.
    pub(crate) fn packet(&mut self, now: Instant, voiced: bool) -> Option<Edge> {
        if !voiced {
            return None;
        }
        let started = self.last_voiced.is_none();
        self.last_voiced = Some(now);
        started.then_some(Edge::Started)
    }

    /// When speech stops if no voiced packet comes first; `None` while nobody speaks.
    pub(crate) fn deadline(&self, silence: Duration) -> Option<Instant> {
        self.last_voiced.map(|at| at + silence.max(MIN_SILENCE))
    }

    /// [`Edge::Stopped`] once the silence lasted long enough at `now`.
    pub(crate) fn poll(&mut self, now: Instant, silence: Duration) -> Option<Edge> {
        let due = self.deadline(silence)?;
        if now < due {
            return None;
        }
        self.last_voiced = None;
        Some(Edge::Stopped)
    }

    /// Forgets the utterance in progress (turn detection was turned off).
    pub(crate) fn reset(&mut self) {
        self.last_voiced = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_starts_with_a_voiced_packet_and_stops_after_the_silence() {
        let t0 = Instant::now();
        let silence = Duration::from_millis(200);
        let mut vad = PacketVad::default();
        assert_eq!(vad.packet(t0, false), None, "silence starts nothing");
        assert_eq!(vad.deadline(silence), None);
        assert_eq!(vad.packet(t0, true), Some(Edge::Started));
        let t1 = t0 + Duration::from_millis(20);
        assert_eq!(vad.packet(t1, true), None, "speech goes on");
        // Silent packets do not extend speech; the gap counts from the last voiced one.
        assert_eq!(vad.packet(t1 + Duration::from_millis(20), false), None);
        assert_eq!(vad.deadline(silence), Some(t1 + silence));
        assert_eq!(vad.poll(t1 + Duration::from_millis(199), silence), None);
        assert_eq!(vad.poll(t1 + silence, silence), Some(Edge::Stopped));
        assert_eq!(vad.poll(t1 + silence * 2, silence), None, "stopped once");
        assert_eq!(vad.packet(t1 + silence * 2, true), Some(Edge::Started));
    }

    #[test]
    fn a_tiny_silence_setting_is_raised_above_jitter() {
        let t0 = Instant::now();
        let mut vad = PacketVad::default();
        vad.packet(t0, true);
        assert_eq!(vad.deadline(Duration::ZERO), Some(t0 + MIN_SILENCE));
    }

    #[test]
    fn payload_size_tells_voice_from_silence() {
        assert!(!voiced(&[0xF8, 0xFF, 0xFE]), "the TOC-only silent frame");
        assert!(!voiced(&[]));
        assert!(voiced(&[0x78; 40]));
    }
}
