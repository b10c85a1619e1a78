//! Synthetic audio (a sine tone in the session's format), G.711, and a small energy VAD.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use super::AudioSettings;

/// An audio format of the Realtime API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AudioFormat {
    /// PCM16 little-endian mono, 24 kHz.
    Pcm16,
    /// G.711 μ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
}

impl AudioFormat {
    /// Reads a GA format object (`{"type": "audio/pcm", "rate": 24000}`) or a beta string.
    pub(crate) fn from_session_value(v: Option<&Value>) -> AudioFormat {
        let name = match v {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Object(o)) => o.get("type").and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        match name {
            "audio/pcmu" | "g711_ulaw" => AudioFormat::Pcmu,
            "audio/pcma" | "g711_alaw" => AudioFormat::Pcma,
            _ => AudioFormat::Pcm16,
        }
    }

    pub(crate) fn sample_rate(self) -> u32 {
        match self {
            AudioFormat::Pcm16 => 24_000,
            AudioFormat::Pcmu | AudioFormat::Pcma => 8_000,
        }
    }

    pub(crate) fn bytes_per_sample(self) -> u32 {
        match self {
            AudioFormat::Pcm16 => 2,
            AudioFormat::Pcmu | AudioFormat::Pcma => 1,
        }
    }

    pub(crate) fn bytes_per_ms(self) -> u32 {
        self.sample_rate() / 1000 * self.bytes_per_sample()
    }

    /// Whole milliseconds of audio in `bytes` bytes.
    pub(crate) fn ms(self, bytes: usize) -> u64 {
        bytes as u64 / u64::from(self.bytes_per_ms())
    }

    fn encode(self, sample: i16, out: &mut Vec<u8>) {
        match self {
            AudioFormat::Pcm16 => out.extend_from_slice(&sample.to_le_bytes()),
            AudioFormat::Pcmu => out.push(linear_to_ulaw(sample)),
            AudioFormat::Pcma => out.push(linear_to_alaw(sample)),
        }
    }
}

/// One chunk of tone, raw and base64, reused for every delta of a response.
#[derive(Debug)]
pub(crate) struct ToneChunk {
    pub(crate) format: AudioFormat,
    pub(crate) bytes: Vec<u8>,
    pub(crate) base64: String,
}

impl ToneChunk {
    pub(crate) fn new(format: AudioFormat, settings: &AudioSettings) -> ToneChunk {
        let chunk_ms = settings.chunk_ms.clamp(10, 1000);
        let rate = format.sample_rate();
        let samples = (rate / 1000 * chunk_ms) as usize;
        let amplitude = f64::from(settings.amplitude.clamp(0.0, 1.0)) * 32767.0;
        let step = std::f64::consts::TAU * f64::from(settings.tone_hz) / f64::from(rate);
        let mut bytes = Vec::with_capacity(samples * format.bytes_per_sample() as usize);
        for i in 0..samples {
            let s = (amplitude * (step * i as f64).sin()).round() as i16;
            format.encode(s, &mut bytes);
        }
        let base64 = STANDARD.encode(&bytes);
        ToneChunk {
            format,
            bytes,
            base64,
        }
    }

    /// Base64 deltas for `ms` of audio: full chunks, then a shorter last one.
    pub(crate) fn deltas(&self, ms: u32) -> Vec<(String, usize)> {
        let total = ms as usize * self.format.bytes_per_ms() as usize;
        let mut out = Vec::new();
        let mut left = total;
        while left > 0 {
            let n = left.min(self.bytes.len());
            if n == 0 {
                break;
            }
            if n == self.bytes.len() {
                out.push((self.base64.clone(), n));
            } else {
                out.push((STANDARD.encode(self.bytes.get(..n).unwrap_or(&[])), n));
            }
            left -= n;
        }
        out
    }
}

/// Decodes base64 audio from `input_audio_buffer.append`.
pub(crate) fn decode_base64(audio: &str) -> Option<Vec<u8>> {
    STANDARD.decode(audio).ok()
}

/// G.711 μ-law encoding of one 16-bit sample.
pub(crate) fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// G.711 μ-law decoding.
pub(crate) fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0F);
    let s = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -s } else { s }) as i16
}

/// G.711 A-law encoding of one 16-bit sample.
pub(crate) fn linear_to_alaw(sample: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut pcm = i32::from(sample) >> 3;
    let mask: u8 = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let Some(seg) = SEG_END.iter().position(|&end| pcm <= end) else {
        return 0x7F ^ mask;
    };
    let mut aval = (seg as i32) << 4;
    aval |= if seg < 2 {
        (pcm >> 1) & 0x0F
    } else {
        (pcm >> seg) & 0x0F
    };
    (aval as u8) ^ mask
}

/// G.711 A-law decoding.
pub(crate) fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let mut t = i32::from(a & 0x0F) << 4;
    let seg = i32::from((a & 0x70) >> 4);
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// What the VAD noticed in appended audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VadEvent {
    /// Speech began; `audio_start_ms` includes the prefix padding.
    Started { audio_start_ms: u64 },
    /// Speech ended after `silence_duration_ms` of silence.
    Stopped { audio_end_ms: u64 },
}

/// Turn-detection parameters read from the session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct VadParams {
    pub(crate) threshold: f64,
    pub(crate) prefix_padding_ms: u64,
    pub(crate) silence_duration_ms: u64,
    pub(crate) create_response: bool,
    pub(crate) interrupt_response: bool,
}

impl VadParams {
    /// Reads `turn_detection`; `None` when it is null/absent (push-to-talk).
    pub(crate) fn from_turn_detection(td: Option<&Value>) -> Option<VadParams> {
        let td = td?.as_object()?;
        let kind = td
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("server_vad");
        let semantic = kind == "semantic_vad";
        let num = |k: &str| td.get(k).and_then(Value::as_f64);
        let flag = |k: &str| td.get(k).and_then(Value::as_bool).unwrap_or(true);
        let silence = if semantic {
            match td.get("eagerness").and_then(Value::as_str) {
                Some("high") => 200,
                Some("low") => 1000,
                _ => 500,
            }
        } else {
            num("silence_duration_ms").map_or(200, |v| v.max(0.0) as u64)
        };
        Some(VadParams {
            threshold: num("threshold").unwrap_or(0.5).clamp(0.0, 1.0),
            prefix_padding_ms: num("prefix_padding_ms").map_or(300, |v| v.max(0.0) as u64),
            silence_duration_ms: silence,
            create_response: flag("create_response"),
            interrupt_response: flag("interrupt_response"),
        })
    }
}

/// An energy detector over 10 ms frames: speech when the RMS level exceeds `threshold × 2%` of
/// full scale. Deterministic, so tests can script barge-in with a tone followed by silence.
#[derive(Debug, Default)]
pub(crate) struct Vad {
    /// Samples seen since the session started (the audio timeline).
    samples: u64,
    frame_len: u64,
    frame_sum_sq: f64,
    leftover: Option<u8>,
    speaking: bool,
    silence_ms: u64,
}

impl Vad {
    /// Forgets an ongoing utterance (after `input_audio_buffer.clear` or a manual commit).
    pub(crate) fn reset_utterance(&mut self) {
        self.speaking = false;
        self.silence_ms = 0;
    }

    /// Feeds appended audio; returns what was detected, in order.
    pub(crate) fn feed(
        &mut self,
        bytes: &[u8],
        format: AudioFormat,
        params: &VadParams,
    ) -> Vec<VadEvent> {
        let mut events = Vec::new();
        let rate = u64::from(format.sample_rate());
        let frame_samples = rate / 100;
        let limit = params.threshold * 0.02 * 32768.0;
        let mut feed_sample = |this: &mut Vad, s: i16| {
            this.samples += 1;
            this.frame_len += 1;
            this.frame_sum_sq += f64::from(s) * f64::from(s);
            if this.frame_len < frame_samples {
                return;
            }
            let rms = (this.frame_sum_sq / this.frame_len as f64).sqrt();
            this.frame_len = 0;
            this.frame_sum_sq = 0.0;
            let now_ms = this.samples * 1000 / rate;
            if rms > limit {
                this.silence_ms = 0;
                if !this.speaking {
                    this.speaking = true;
                    let start = now_ms.saturating_sub(10 + params.prefix_padding_ms);
                    events.push(VadEvent::Started {
                        audio_start_ms: start,
                    });
                }
            } else if this.speaking {
                this.silence_ms += 10;
                if this.silence_ms >= params.silence_duration_ms {
                    this.speaking = false;
                    this.silence_ms = 0;
                    events.push(VadEvent::Stopped {
                        audio_end_ms: now_ms,
                    });
                }
            }
        };
        match format {
            AudioFormat::Pcm16 => {
                let mut rest = bytes;
                if let Some(lo) = self.leftover.take() {
                    if let Some((&hi, tail)) = rest.split_first() {
                        feed_sample(self, i16::from_le_bytes([lo, hi]));
                        rest = tail;
                    } else {
                        self.leftover = Some(lo);
                    }
                }
                let mut pairs = rest.chunks_exact(2);
                for pair in &mut pairs {
                    if let [lo, hi] = pair {
                        feed_sample(self, i16::from_le_bytes([*lo, *hi]));
                    }
                }
                if let [last] = pairs.remainder() {
                    self.leftover = Some(*last);
                }
            }
            AudioFormat::Pcmu => bytes
                .iter()
                .for_each(|&b| feed_sample(self, ulaw_to_linear(b))),
            AudioFormat::Pcma => bytes
                .iter()
                .for_each(|&b| feed_sample(self, alaw_to_linear(b))),
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_round_trips_within_bounds() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            let tol = (i32::from(s).abs() / 16).max(16);
            assert!(
                (i32::from(u) - i32::from(s)).abs() <= tol,
                "ulaw {s} -> {u}"
            );
            assert!(
                (i32::from(a) - i32::from(s)).abs() <= tol,
                "alaw {s} -> {a}"
            );
        }
    }

    #[test]
    fn deltas_cover_the_requested_length() {
        let chunk = ToneChunk::new(AudioFormat::Pcm16, &AudioSettings::default());
        let d = chunk.deltas(250);
        assert_eq!(d.len(), 3);
        assert_eq!(d.iter().map(|(_, n)| n).sum::<usize>(), 250 * 48);
        let mu = ToneChunk::new(AudioFormat::Pcmu, &AudioSettings::default());
        assert_eq!(mu.deltas(100)[0].1, 800);
    }

    #[test]
    fn vad_finds_a_tone_between_silences() {
        let format = AudioFormat::Pcm16;
        let params =
            VadParams::from_turn_detection(Some(&serde_json::json!({"type": "server_vad"})))
                .unwrap();
        let mut vad = Vad::default();
        let silence = vec![0u8; 48 * 500];
        let tone = ToneChunk::new(format, &AudioSettings::default());
        let mut events = vad.feed(&silence, format, &params);
        for _ in 0..5 {
            events.extend(vad.feed(&tone.bytes, format, &params));
        }
        events.extend(vad.feed(&silence, format, &params));
        assert_eq!(
            events,
            vec![
                VadEvent::Started {
                    audio_start_ms: 200
                },
                VadEvent::Stopped { audio_end_ms: 1200 }
            ]
        );
    }
}
