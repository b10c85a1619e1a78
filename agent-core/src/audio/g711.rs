//! G.711 μ-law and A-law, as specified by ITU-T G.711 (the phone network's 8 kHz codecs).
//!
//! Phone bridges (SIP trunks, Twilio media streams) carry G.711, and the Realtime API accepts and
//! produces it directly (`audio/pcmu`, `audio/pcma`), so a phone agent needs no resampling on the
//! wire — only these codecs to show, record or mix the audio.
//!
//! Both laws map a 16-bit linear sample to 8 bits with 8 segments of 16 steps each; the step
//! doubles from one segment to the next. Decoding returns the middle of the step, so a round trip
//! is off by at most half a step:
//!
//! | law | segment `s` (0–7) covers magnitudes | step (16-bit units) | largest round-trip error |
//! | --- | --- | --- | --- |
//! | μ-law | `[(2^(s+7)) − 132, 2^(s+8) − 132)` | `2^(s+3)`: 8 … 1024 | step / 2 (4 … 512); magnitudes beyond 32635 clip to ±32124 (error ≤ 644) |
//! | A-law | `[0, 512)` for `s` = 0, `[2^(s+8), 2^(s+9))` above | 16 for `s` ≤ 1, `2^(s+3)` above: 16 … 1024 | step / 2 (8 … 512) |
//!
//! Decoding goes through 256-entry tables built at compile time; encoding finds the segment from
//! the position of the highest set bit, with no table and no branch per segment.

/// The μ-law bias (33 in 14-bit units, scaled to 16 bits): it makes segment 0 start at zero.
const ULAW_BIAS: i32 = 0x84;
/// The largest magnitude μ-law can represent before clipping.
const ULAW_CLIP: i32 = 32635;

/// Which G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// μ-law (`audio/pcmu`, `g711_ulaw`): North America and Japan.
    MuLaw,
    /// A-law (`audio/pcma`, `g711_alaw`): most other countries.
    ALaw,
}

impl G711 {
    /// Encodes one 16-bit linear sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711::MuLaw => ulaw_encode(sample),
            G711::ALaw => alaw_encode(sample),
        }
    }

    /// Decodes one G.711 byte to a 16-bit linear sample.
    pub fn decode(self, byte: u8) -> i16 {
        match self {
            G711::MuLaw => ulaw_decode(byte),
            G711::ALaw => alaw_decode(byte),
        }
    }

    /// Encodes samples, appending one byte per sample to `out`.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        out.reserve(samples.len());
        match self {
            G711::MuLaw => out.extend(samples.iter().map(|&s| ulaw_encode(s))),
            G711::ALaw => out.extend(samples.iter().map(|&s| alaw_encode(s))),
        }
    }

    /// Decodes bytes, appending one sample per byte to `out`.
    pub fn decode_into(self, bytes: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            G711::MuLaw => &ULAW_TABLE,
            G711::ALaw => &ALAW_TABLE,
        };
        out.reserve(bytes.len());
        out.extend(bytes.iter().map(|&b| table[usize::from(b)]));
    }

    /// The quantization step (16-bit units) of the segment `sample` falls in; a round trip of
    /// `sample` is off by at most half of it (μ-law inputs beyond ±32635 clip, see the module
    /// docs).
    pub fn step(self, sample: i16) -> i32 {
        let magnitude = i32::from(sample).unsigned_abs() as i32;
        match self {
            G711::MuLaw => {
                let biased = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
                8 << ulaw_segment(biased)
            }
            G711::ALaw => {
                // The encoder's 13-bit magnitude: negative values are one's complement.
                let pcm = i32::from(sample) >> 3;
                let segment = alaw_segment(if pcm < 0 { -pcm - 1 } else { pcm });
                if segment < 2 { 16 } else { 8 << segment }
            }
        }
    }
}

/// The segment (exponent) of a biased μ-law magnitude in `[132, 32767]`.
fn ulaw_segment(biased: i32) -> u32 {
    // The highest set bit is bit 7 (segment 0) up to bit 14 (segment 7).
    (31 - biased.leading_zeros()).saturating_sub(7).min(7)
}

/// The segment of a 13-bit A-law magnitude (0..=4095), 0 to 7; 8 means beyond the range.
fn alaw_segment(magnitude: i32) -> u32 {
    if magnitude < 32 {
        0
    } else {
        (31 - magnitude.leading_zeros()).saturating_sub(4).min(8)
    }
}

/// Encodes one sample with μ-law (ITU-T G.711, the classic biased-segment algorithm).
pub fn ulaw_encode(sample: i16) -> u8 {
    let s = i32::from(sample);
    let (sign, magnitude) = if s < 0 { (0x80, -s) } else { (0x00, s) };
    let biased = magnitude.min(ULAW_CLIP) + ULAW_BIAS;
    let segment = ulaw_segment(biased);
    let mantissa = (biased >> (segment + 3)) & 0x0F;
    // Every bit is inverted on the wire (more transitions on idle lines).
    !((sign | ((segment as i32) << 4) | mantissa) as u8)
}

/// Decodes one μ-law byte.
pub fn ulaw_decode(byte: u8) -> i16 {
    ULAW_TABLE[usize::from(byte)]
}

/// Encodes one sample with A-law (ITU-T G.711, on the 13-bit magnitude).
pub fn alaw_encode(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let segment = alaw_segment(pcm);
    if segment >= 8 {
        return 0x7F ^ mask;
    }
    let mantissa = if segment < 2 {
        (pcm >> 1) & 0x0F
    } else {
        (pcm >> segment) & 0x0F
    };
    (((segment as i32) << 4) | mantissa) as u8 ^ mask
}

/// Decodes one A-law byte.
pub fn alaw_decode(byte: u8) -> i16 {
    ALAW_TABLE[usize::from(byte)]
}

const fn ulaw_decode_const(byte: u8) -> i16 {
    let u = !byte;
    let segment = ((u >> 4) & 0x07) as i32;
    let mantissa = (u & 0x0F) as i32;
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << segment) - ULAW_BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_decode_const(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = ((a & 0x0F) as i32) << 4;
    let segment = ((a & 0x70) >> 4) as i32;
    if segment == 0 {
        t += 8;
    } else {
        t += 0x108;
        if segment > 1 {
            t <<= segment - 1;
        }
    }
    if a & 0x80 != 0 { t as i16 } else { -t as i16 }
}

/// μ-law byte → linear sample.
static ULAW_TABLE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = ulaw_decode_const(i as u8);
        i += 1;
    }
    table
};

/// A-law byte → linear sample.
static ALAW_TABLE: [i16; 256] = {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = alaw_decode_const(i as u8);
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        // Silence, the extremes and the sign convention of G.711.
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }

    #[test]
    fn round_trip_is_within_half_a_step_for_every_sample() {
        for law in [G711::MuLaw, G711::ALaw] {
            let mut worst = 0;
            for s in i16::MIN..=i16::MAX {
                let back = law.decode(law.encode(s));
                let error = (i32::from(back) - i32::from(s)).abs();
                let clipped = law == G711::MuLaw && i32::from(s).abs() > ULAW_CLIP;
                let bound = if clipped {
                    i32::from(s).abs() - 32124
                } else {
                    law.step(s) / 2
                };
                assert!(
                    error <= bound,
                    "{law:?}: {s} → {back}, error {error} > {bound}"
                );
                worst = worst.max(error);
            }
            // The largest error is half the top segment's step, 512, except where μ-law clips
            // (−32768 decodes as −32124).
            let limit = if law == G711::MuLaw { 644 } else { 512 };
            assert!(worst <= limit, "{law:?} worst {worst}");
        }
    }

    #[test]
    fn steps_double_per_segment() {
        assert_eq!(G711::MuLaw.step(0), 8);
        assert_eq!(G711::MuLaw.step(200), 16);
        assert_eq!(G711::MuLaw.step(30_000), 1024);
        assert_eq!(G711::ALaw.step(0), 16);
        assert_eq!(G711::ALaw.step(300), 16);
        assert_eq!(G711::ALaw.step(600), 32);
        assert_eq!(G711::ALaw.step(-30_000), 1024);
    }

    #[test]
    fn decode_then_encode_is_the_identity_on_codes() {
        for law in [G711::MuLaw, G711::ALaw] {
            for b in 0..=255u8 {
                let s = law.decode(b);
                let again = law.encode(s);
                // μ-law has two codes for zero (0xFF and 0x7F); both decode to 0.
                if law == G711::MuLaw && s == 0 {
                    assert!(again == 0xFF || again == 0x7F);
                } else {
                    assert_eq!(again, b, "{law:?} code {b:#04x} → {s}");
                }
            }
        }
    }

    #[test]
    fn slices_round_trip() {
        let samples: Vec<i16> = (0..800)
            .map(|i| ((i * 97) % 60_000 - 30_000) as i16)
            .collect();
        for law in [G711::MuLaw, G711::ALaw] {
            let mut bytes = Vec::new();
            law.encode_into(&samples, &mut bytes);
            assert_eq!(bytes.len(), samples.len());
            let mut back = Vec::new();
            law.decode_into(&bytes, &mut back);
            for (s, b) in samples.iter().zip(&back) {
                assert!((i32::from(*s) - i32::from(*b)).abs() <= law.step(*s) / 2);
            }
        }
    }
}
