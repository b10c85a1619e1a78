//! Opus packets without a codec: the two frames both test peers send, and the length of a
//! packet read from its TOC byte (RFC 6716, section 3.1).
//!
//! Neither the fake platform nor the test browser encodes or decodes audio. They send frames
//! made once, offline, and measure what arrives by packet: that is all a test needs, and it
//! keeps a codec library out of the build.

use std::time::Duration;

/// The RTP clock of Opus: 48 kHz whatever the audio's bandwidth.
pub(crate) const CLOCK_RATE: u64 = 48_000;

/// The length of one frame of [`SILENT_FRAME`] or [`TONE_FRAME`].
pub(crate) const FRAME: Duration = Duration::from_millis(20);

/// RTP ticks per [`FRAME`].
pub(crate) const TICKS_PER_FRAME: u64 = CLOCK_RATE / 50;

/// 20 ms of silence: a TOC byte (CELT fullband, 20 ms, one frame) and two bytes that decode to
/// nothing, the frame most WebRTC stacks send for silence.
pub(crate) const SILENT_FRAME: [u8; 3] = [0xF8, 0xFF, 0xFE];

/// 20 ms of a 400 Hz sine at a fifth of full scale (the scripted server's default tone), one
/// mono CELT wideband frame. Made with libopus 1.3.1 (48 kHz, `OPUS_APPLICATION_AUDIO`, CBR
/// 24 kbit/s) as the 25th frame of a continuous tone, so the encoder had settled; 400 Hz fills
/// 20 ms with whole periods, and the frame repeated plays as a steady tone.
pub(crate) const TONE_FRAME: [u8; 60] = [
    0xB8, 0xAD, 0xA8, 0xDE, 0x33, 0x42, 0xE4, 0x62, 0xE5, 0x74, 0x94, 0x39, 0x24, 0x64, 0xEA, 0xB7,
    0x7A, 0xD1, 0xC3, 0x31, 0xCF, 0x01, 0xE9, 0x3F, 0xB6, 0x45, 0x90, 0x66, 0x5E, 0xF7, 0x6C, 0x0F,
    0xC1, 0x5C, 0xFF, 0x14, 0x7A, 0xD1, 0xE7, 0x94, 0xFE, 0x54, 0x5D, 0x8A, 0x4E, 0x36, 0x28, 0xDB,
    0xF0, 0x1C, 0x80, 0x46, 0x63, 0xA7, 0x5F, 0x9D, 0xDF, 0xC2, 0xAD, 0xB9,
];

/// How much audio an Opus packet holds, from its TOC byte (and, for code 3, its frame count
/// byte); `None` for an empty or truncated packet.
pub(crate) fn packet_duration(packet: &[u8]) -> Option<Duration> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame sizes in microseconds, by mode: SILK (0-11), hybrid (12-15), CELT (16-31).
    let frame_us: u64 = match config {
        0..=11 => [10_000, 20_000, 40_000, 60_000][usize::from(config % 4)],
        12..=15 => [10_000, 20_000][usize::from(config % 2)],
        _ => [2_500, 5_000, 10_000, 20_000][usize::from(config % 4)],
    };
    let frames: u64 = match toc & 0x3 {
        0 => 1,
        1 | 2 => 2,
        _ => u64::from(*packet.get(1)? & 0x3F),
    };
    Some(Duration::from_micros(frame_us * frames))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frames_last_20_ms() {
        assert_eq!(packet_duration(&SILENT_FRAME), Some(FRAME));
        assert_eq!(packet_duration(&TONE_FRAME), Some(FRAME));
    }

    #[test]
    fn durations_follow_the_toc_byte() {
        // SILK 60 ms, one frame.
        assert_eq!(packet_duration(&[3 << 3]), Some(Duration::from_millis(60)));
        // Hybrid 10 ms, two frames of equal size.
        assert_eq!(
            packet_duration(&[(12 << 3) | 1]),
            Some(Duration::from_millis(20))
        );
        // CELT 2.5 ms, code 3 with 6 frames.
        assert_eq!(
            packet_duration(&[(16 << 3) | 3, 6]),
            Some(Duration::from_micros(15_000))
        );
        assert_eq!(packet_duration(&[(16 << 3) | 3]), None, "truncated");
        assert_eq!(packet_duration(&[]), None);
    }
}
