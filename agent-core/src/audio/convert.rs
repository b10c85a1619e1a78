//! From whatever the app has to what the session speaks, and back: channel downmix, resampling,
//! and encoding in the session's [`AudioFormat`] (PCM16 at 24 kHz, or G.711 at 8 kHz).
//!
//! [`InputConverter`] is the microphone/file side: interleaved samples at any rate and channel
//! count in, `input_audio_buffer.append` events out. [`OutputDecoder`] is the speaker side:
//! audio deltas in the session's output format in, mono 16-bit samples at the rate a device
//! wants out.

use base64::Engine as _;
use base64::engine::general_purpose;

use super::g711::G711;
use super::pcm16::{AppendChunker, AppendChunks, AudioError};
use super::resample::{Resampler, f32_to_i16};
use crate::protocol::{AudioFormat, ClientEvent};

/// Samples converted per round through the stack buffer when encoding (a multiple of 3 bytes
/// for both 1- and 2-byte samples, so rounds need no base64 padding between them).
const SAMPLES_PER_ROUND: usize = 1536;

/// The G.711 law of a format, `None` for PCM16.
pub fn g711_law(format: AudioFormat) -> Option<G711> {
    match format {
        AudioFormat::Pcm { .. } => None,
        AudioFormat::Pcmu => Some(G711::MuLaw),
        AudioFormat::Pcma => Some(G711::ALaw),
    }
}

/// Bytes per sample on the wire: 2 for PCM16, 1 for G.711.
pub fn bytes_per_sample(format: AudioFormat) -> usize {
    match format {
        AudioFormat::Pcm { .. } => 2,
        AudioFormat::Pcmu | AudioFormat::Pcma => 1,
    }
}

/// How many samples `bytes` bytes of `format` hold (a trailing odd PCM16 byte is not counted).
pub fn samples_in(format: AudioFormat, bytes: usize) -> usize {
    bytes / bytes_per_sample(format)
}

/// Appends base64 of `samples` encoded in `format` to `out`, through a stack buffer: no
/// intermediate byte vector per chunk.
pub fn encode_base64_into(format: AudioFormat, samples: &[i16], out: &mut String) {
    match g711_law(format) {
        None => super::encode_pcm16_base64_into(samples, out),
        Some(law) => {
            let mut bytes = [0u8; SAMPLES_PER_ROUND];
            for round in samples.chunks(SAMPLES_PER_ROUND) {
                for (byte, &sample) in bytes.iter_mut().zip(round) {
                    *byte = law.encode(sample);
                }
                general_purpose::STANDARD.encode_string(&bytes[..round.len()], out);
            }
        }
    }
}

/// Appends `samples` encoded in `format` (raw bytes, e.g. for a file or a phone bridge).
pub fn encode_into(format: AudioFormat, samples: &[i16], out: &mut Vec<u8>) {
    match g711_law(format) {
        None => {
            out.reserve(samples.len() * 2);
            for sample in samples {
                out.extend_from_slice(&sample.to_le_bytes());
            }
        }
        Some(law) => law.encode_into(samples, out),
    }
}

/// Decodes raw bytes of `format` (PCM16 little-endian, or G.711) and appends the samples.
/// Fails on an odd number of PCM16 bytes, leaving `out` as it was.
pub fn decode_into(
    format: AudioFormat,
    bytes: &[u8],
    out: &mut Vec<i16>,
) -> Result<(), AudioError> {
    match g711_law(format) {
        None => {
            if !bytes.len().is_multiple_of(2) {
                return Err(AudioError::OddByteCount { bytes: bytes.len() });
            }
            out.extend(
                bytes
                    .chunks_exact(2)
                    .map(|pair| i16::from_le_bytes([pair[0], pair[1]])),
            );
        }
        Some(law) => law.decode_into(bytes, out),
    }
    Ok(())
}

/// Averages interleaved frames of `channels` channels into mono, appending to `out`. A partial
/// frame at the end is ignored.
pub fn downmix_i16(interleaved: &[i16], channels: u16, out: &mut Vec<i16>) {
    let channels = usize::from(channels.max(1));
    if channels == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    out.extend(interleaved.chunks_exact(channels).map(|frame| {
        let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
        (sum / channels as i32) as i16
    }));
}

/// Averages interleaved float frames into mono, appending to `out`.
pub fn downmix_f32(interleaved: &[f32], channels: u16, out: &mut Vec<f32>) {
    let channels = usize::from(channels.max(1));
    if channels == 1 {
        out.extend_from_slice(interleaved);
        return;
    }
    out.extend(
        interleaved
            .chunks_exact(channels)
            .map(|frame| frame.iter().sum::<f32>() / channels as f32),
    );
}

/// Turns audio as a microphone or a file delivers it — interleaved, any rate, any channel count
/// — into `input_audio_buffer.append` events in the session's input format, cut into chunks of
/// a fixed duration.
#[derive(Debug, Clone)]
pub struct InputConverter {
    channels: u16,
    resampler: Resampler,
    chunker: AppendChunker,
    mono: Vec<f32>,
    resampled: Vec<f32>,
    samples: Vec<i16>,
}

impl InputConverter {
    /// A converter from `source_rate` Hz, `channels`-channel audio to `format`, in chunks of
    /// `chunk_ms` ms (20–50 ms is a good range: low latency at a modest event rate).
    pub fn new(
        source_rate: u32,
        channels: u16,
        format: AudioFormat,
        chunk_ms: u32,
    ) -> Result<InputConverter, AudioError> {
        if channels == 0 {
            return Err(AudioError::NoChannels);
        }
        Ok(InputConverter {
            channels,
            resampler: Resampler::new(source_rate, format.sample_rate())?,
            chunker: AppendChunker::for_format(format, chunk_ms)?,
            mono: Vec::new(),
            resampled: Vec::new(),
            samples: Vec::new(),
        })
    }

    /// The format of the events.
    pub fn format(&self) -> AudioFormat {
        self.chunker.format()
    }

    /// The duration of one event's audio, in ms.
    pub fn chunk_ms(&self) -> u32 {
        self.chunker.chunk_ms()
    }

    /// Adds interleaved 16-bit audio; returns an event for every full chunk now available.
    pub fn push_i16(&mut self, interleaved: &[i16]) -> AppendChunks<'static> {
        self.mono.clear();
        let channels = usize::from(self.channels);
        self.mono
            .extend(interleaved.chunks_exact(channels).map(|frame| {
                frame.iter().map(|&s| f32::from(s)).sum::<f32>() / (channels as f32 * 32768.0)
            }));
        self.convert_mono()
    }

    /// Adds interleaved float audio (full scale ±1.0, as audio devices deliver it).
    pub fn push_f32(&mut self, interleaved: &[f32]) -> AppendChunks<'static> {
        self.mono.clear();
        downmix_f32(interleaved, self.channels, &mut self.mono);
        self.convert_mono()
    }

    /// Ends the stream: the resampler's look-ahead and the last partial chunk come out.
    pub fn finish(&mut self) -> Vec<ClientEvent> {
        self.resampled.clear();
        self.resampler.flush(&mut self.resampled);
        self.samples.clear();
        self.samples
            .extend(self.resampled.iter().map(|&f| f32_to_i16(f)));
        let mut events: Vec<ClientEvent> = self.chunker.push(&self.samples).collect();
        events.extend(self.chunker.flush());
        events
    }

    fn convert_mono(&mut self) -> AppendChunks<'static> {
        self.resampled.clear();
        self.resampler.process(&self.mono, &mut self.resampled);
        self.samples.clear();
        self.samples
            .extend(self.resampled.iter().map(|&f| f32_to_i16(f)));
        self.chunker.push(&self.samples)
    }
}

/// Decodes assistant audio in the session's output format into mono 16-bit samples at the rate
/// an output device or file wants.
#[derive(Debug, Clone)]
pub struct OutputDecoder {
    format: AudioFormat,
    resampler: Resampler,
    decoded: Vec<i16>,
}

impl OutputDecoder {
    /// A decoder from `format` to `rate` Hz.
    pub fn new(format: AudioFormat, rate: u32) -> Result<OutputDecoder, AudioError> {
        Ok(OutputDecoder {
            format,
            resampler: Resampler::new(format.sample_rate(), rate)?,
            decoded: Vec::new(),
        })
    }

    /// Decodes one delta's bytes and appends the samples at the target rate.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<i16>) -> Result<(), AudioError> {
        if self.resampler.is_passthrough() {
            return decode_into(self.format, bytes, out);
        }
        self.decoded.clear();
        decode_into(self.format, bytes, &mut self.decoded)?;
        self.resampler.process_i16(&self.decoded, out);
        Ok(())
    }

    /// Ends an item's audio: the resampler's look-ahead comes out and it starts afresh.
    pub fn finish(&mut self, out: &mut Vec<i16>) {
        self.resampler.flush_i16(out);
    }

    /// Drops what is buffered (after an interruption).
    pub fn reset(&mut self) {
        self.resampler.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::decode_pcm16_base64;

    fn audio_of(event: &ClientEvent) -> &str {
        match event {
            ClientEvent::InputAudioBufferAppend(append) => &append.audio,
            other => panic!("not an append: {other:?}"),
        }
    }

    #[test]
    fn g711_chunks_are_one_byte_per_sample() {
        let samples: Vec<i16> = (0..1000).map(|i| (i * 29 - 14_000) as i16).collect();
        for format in [AudioFormat::Pcmu, AudioFormat::Pcma] {
            let chunker = AppendChunker::for_format(format, 20).unwrap();
            assert_eq!(chunker.samples_per_chunk(), 160);
            let events: Vec<_> = chunker.chunks(&samples).collect();
            assert_eq!(events.len(), 7);
            let mut bytes = Vec::new();
            for event in &events {
                bytes.extend(crate::audio::decode_base64(audio_of(event)).unwrap());
            }
            assert_eq!(bytes.len(), samples.len());
            let mut expected = Vec::new();
            encode_into(format, &samples, &mut expected);
            assert_eq!(bytes, expected);
        }
    }

    #[test]
    fn base64_matches_the_raw_encoding_across_rounds() {
        let samples: Vec<i16> = (0..5000).map(|i| (i * 13) as i16).collect();
        for format in [AudioFormat::pcm16(), AudioFormat::Pcmu, AudioFormat::Pcma] {
            let mut text = String::new();
            encode_base64_into(format, &samples, &mut text);
            let mut raw = Vec::new();
            encode_into(format, &samples, &mut raw);
            assert_eq!(text, general_purpose::STANDARD.encode(&raw));
            let mut back = Vec::new();
            decode_into(format, &raw, &mut back).unwrap();
            assert_eq!(back.len(), samples.len());
        }
    }

    #[test]
    fn downmix_averages_frames() {
        let mut out = Vec::new();
        downmix_i16(&[100, 300, -200, 0, 7], 2, &mut out);
        assert_eq!(out, [200, -100]);
        let mut f = Vec::new();
        downmix_f32(&[0.5, -0.5, 1.0, 0.0], 2, &mut f);
        assert_eq!(f, [0.0, 0.5]);
    }

    #[test]
    fn input_converter_turns_stereo_44k_into_24k_chunks() {
        let rate = 44_100;
        let frames = rate as usize; // one second
        let mut interleaved = Vec::with_capacity(frames * 2);
        for i in 0..frames {
            let s = (8000.0
                * (2.0 * std::f64::consts::PI * 500.0 * i as f64 / f64::from(rate)).sin())
                as i16;
            interleaved.extend([s, s]);
        }
        let mut converter = InputConverter::new(rate, 2, AudioFormat::pcm16(), 40).unwrap();
        let mut events: Vec<ClientEvent> = Vec::new();
        for piece in interleaved.chunks(882 * 2 + 6) {
            events.extend(converter.push_i16(piece));
        }
        events.extend(converter.finish());
        let total: usize = events
            .iter()
            .map(|e| decode_pcm16_base64(audio_of(e)).unwrap().len())
            .sum();
        assert_eq!(total, 24_000);
        assert_eq!(events.len(), 25);
    }

    #[test]
    fn input_converter_to_g711_is_8k() {
        let mut converter = InputConverter::new(16_000, 1, AudioFormat::Pcmu, 20).unwrap();
        let mut events: Vec<ClientEvent> = converter.push_i16(&vec![1000; 16_000]).collect();
        events.extend(converter.finish());
        let bytes: usize = events
            .iter()
            .map(|e| crate::audio::decode_base64(audio_of(e)).unwrap().len())
            .sum();
        assert_eq!(bytes, 8_000);
        assert!(InputConverter::new(16_000, 0, AudioFormat::Pcmu, 20).is_err());
        assert!(InputConverter::new(16_000, 1, AudioFormat::Pcmu, 0).is_err());
    }

    #[test]
    fn output_decoder_resamples_g711_to_the_device_rate() {
        let mut raw = Vec::new();
        encode_into(AudioFormat::Pcma, &vec![500; 800], &mut raw);
        let mut decoder = OutputDecoder::new(AudioFormat::Pcma, 48_000).unwrap();
        let mut out = Vec::new();
        decoder.push(&raw, &mut out).unwrap();
        decoder.finish(&mut out);
        assert_eq!(out.len(), 4_800);
        let mut odd = Vec::new();
        assert!(
            OutputDecoder::new(AudioFormat::pcm16(), 24_000)
                .unwrap()
                .push(&[1, 2, 3], &mut odd)
                .is_err()
        );
    }
}
