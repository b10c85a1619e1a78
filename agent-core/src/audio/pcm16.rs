//! PCM16 ⇄ base64, and chunking samples into `input_audio_buffer.append` events.

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};

use crate::protocol::{AudioFormat, ClientEvent};

/// The Realtime API's PCM16 sample rate.
pub const DEFAULT_SAMPLE_RATE: u32 = crate::protocol::PCM16_SAMPLE_RATE;

/// A good default chunk length: small enough for low latency, large enough to keep the event
/// rate low (50 events per second).
pub const DEFAULT_CHUNK_MS: u32 = 20;

/// Samples converted per round through the stack buffer; a multiple of 3 bytes, so base64 of
/// each round needs no padding and rounds can be appended to each other.
const SAMPLES_PER_ROUND: usize = 1536;

/// Decodes standard base64, with or without padding (servers always pad; being lenient costs
/// nothing).
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What can go wrong with audio data.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The text is not valid base64.
    #[error("audio is not valid base64 ({0}); audio deltas must be standard base64")]
    InvalidBase64(#[from] base64::DecodeError),
    /// The decoded bytes cannot be 16-bit samples.
    #[error(
        "audio has an odd number of bytes ({bytes}); PCM16 needs 2 bytes per sample, so the \
         data is not PCM16 (check the session's output format)"
    )]
    OddByteCount {
        /// How many bytes the audio had.
        bytes: usize,
    },
    /// A resampler could not be built.
    #[error(transparent)]
    Resample(#[from] super::resample::ResampleError),
    /// Audio claims to have no channels.
    #[error("audio with 0 channels cannot be converted; the WAV header or device is broken")]
    NoChannels,
    /// A chunker was configured with a zero rate or length.
    #[error(
        "cannot cut audio into chunks of {chunk_ms} ms at {sample_rate} Hz; both must be \
         positive and give at least one sample per chunk"
    )]
    InvalidChunking {
        /// The requested sample rate.
        sample_rate: u32,
        /// The requested chunk length.
        chunk_ms: u32,
    },
}

/// Base64 of the samples as little-endian bytes.
pub fn encode_pcm16_base64(samples: &[i16]) -> String {
    let mut out = String::with_capacity(base64::encoded_len(samples.len() * 2, true).unwrap_or(0));
    encode_pcm16_base64_into(samples, &mut out);
    out
}

/// Appends base64 of the samples (little-endian) to `out`, e.g. to reuse one string buffer.
pub fn encode_pcm16_base64_into(samples: &[i16], out: &mut String) {
    let mut bytes = [0u8; SAMPLES_PER_ROUND * 2];
    for round in samples.chunks(SAMPLES_PER_ROUND) {
        for (pair, sample) in bytes.chunks_exact_mut(2).zip(round) {
            pair.copy_from_slice(&sample.to_le_bytes());
        }
        general_purpose::STANDARD.encode_string(&bytes[..round.len() * 2], out);
    }
}

/// Decodes base64 PCM16 (little-endian) into a new sample vector.
pub fn decode_pcm16_base64(audio: &str) -> Result<Vec<i16>, AudioError> {
    let mut samples = Vec::new();
    decode_pcm16_base64_into(audio, &mut samples)?;
    Ok(samples)
}

/// Appends the samples of base64 PCM16 to `out` and returns how many were appended.
///
/// Reuse one buffer across deltas (`clear()` it first) to decode without allocating. On error
/// `out` is left as it was.
pub fn decode_pcm16_base64_into(audio: &str, out: &mut Vec<i16>) -> Result<usize, AudioError> {
    let start = out.len();
    let result = decode_rounds(audio.trim_end().as_bytes(), out);
    if result.is_err() {
        out.truncate(start);
    }
    result.map(|()| out.len() - start)
}

fn decode_rounds(text: &[u8], out: &mut Vec<i16>) -> Result<(), AudioError> {
    // 2048 base64 characters decode to at most 1536 bytes.
    const CHARS_PER_ROUND: usize = 2048;
    let mut bytes = [0u8; CHARS_PER_ROUND / 4 * 3];
    out.reserve(text.len() / 4 * 3 / 2);
    let mut carry: Option<u8> = None;
    let mut total = 0usize;
    for round in text.chunks(CHARS_PER_ROUND) {
        let len = LENIENT
            .decode_slice(round, &mut bytes)
            .map_err(|error| match error {
                base64::DecodeSliceError::DecodeError(error) => AudioError::InvalidBase64(error),
                // The buffer always fits a round; report it as bad input rather than panic.
                base64::DecodeSliceError::OutputSliceTooSmall => {
                    AudioError::InvalidBase64(base64::DecodeError::InvalidLength(round.len()))
                }
            })?;
        total += len;
        let mut rest = bytes.get(..len).unwrap_or_default();
        if let Some(low) = carry.take() {
            if let Some((&high, tail)) = rest.split_first() {
                out.push(i16::from_le_bytes([low, high]));
                rest = tail;
            } else {
                carry = Some(low);
            }
        }
        let pairs = rest.chunks_exact(2);
        if let [odd] = pairs.remainder() {
            carry = Some(*odd);
        }
        out.extend(pairs.map(|pair| i16::from_le_bytes([pair[0], pair[1]])));
    }
    if carry.is_some() {
        return Err(AudioError::OddByteCount { bytes: total });
    }
    Ok(())
}

/// How many samples make `ms` milliseconds at `sample_rate` (rounded down).
pub fn samples_for_ms(ms: u32, sample_rate: u32) -> usize {
    usize::try_from(u64::from(ms) * u64::from(sample_rate) / 1000).unwrap_or(usize::MAX)
}

/// How long `samples` samples last at `sample_rate`, in whole milliseconds (rounded down, so a
/// truncation point computed from it never lies past the audio actually played).
pub fn duration_ms(samples: usize, sample_rate: u32) -> u64 {
    if sample_rate == 0 {
        return 0;
    }
    u64::try_from(samples)
        .unwrap_or(u64::MAX)
        .saturating_mul(1000)
        / u64::from(sample_rate)
}

/// Cuts 16-bit samples into `input_audio_buffer.append` events of a fixed duration, encoded in
/// the session's input format (PCM16, or G.711 μ-law/A-law at 8 kHz).
///
/// [`AppendChunker::push`] takes audio as it arrives from a microphone in buffers of any size,
/// emits every full chunk and keeps the remainder for the next call; [`AppendChunker::flush`]
/// emits that remainder at the end of an utterance. [`AppendChunker::chunks`] cuts a whole
/// buffer at once.
#[derive(Debug, Clone)]
pub struct AppendChunker {
    format: AudioFormat,
    sample_rate: u32,
    chunk_ms: u32,
    samples_per_chunk: usize,
    pending: Vec<i16>,
}

impl Default for AppendChunker {
    /// 20 ms chunks of 24 kHz audio.
    fn default() -> Self {
        AppendChunker {
            format: AudioFormat::pcm16(),
            sample_rate: DEFAULT_SAMPLE_RATE,
            chunk_ms: DEFAULT_CHUNK_MS,
            samples_per_chunk: samples_for_ms(DEFAULT_CHUNK_MS, DEFAULT_SAMPLE_RATE),
            pending: Vec::new(),
        }
    }
}

impl AppendChunker {
    /// A chunker for `sample_rate` Hz PCM16 audio cut into `chunk_ms` ms events. Fails when
    /// either is zero or a chunk would hold no sample.
    pub fn new(sample_rate: u32, chunk_ms: u32) -> Result<Self, AudioError> {
        Self::for_format(AudioFormat::Pcm { rate: sample_rate }, chunk_ms)
    }

    /// A chunker for samples at `format`'s rate, encoded in `format` (G.711 samples are
    /// compressed to one byte each on the way into base64).
    pub fn for_format(format: AudioFormat, chunk_ms: u32) -> Result<Self, AudioError> {
        let sample_rate = format.sample_rate();
        let samples_per_chunk = samples_for_ms(chunk_ms, sample_rate);
        if samples_per_chunk == 0 {
            return Err(AudioError::InvalidChunking {
                sample_rate,
                chunk_ms,
            });
        }
        Ok(AppendChunker {
            format,
            sample_rate,
            chunk_ms,
            samples_per_chunk,
            pending: Vec::new(),
        })
    }

    /// The format events are encoded in.
    pub fn format(&self) -> AudioFormat {
        self.format
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The chunk length in ms.
    pub fn chunk_ms(&self) -> u32 {
        self.chunk_ms
    }

    /// Samples per full chunk.
    pub fn samples_per_chunk(&self) -> usize {
        self.samples_per_chunk
    }

    /// Samples held back, waiting for a full chunk.
    pub fn pending_samples(&self) -> usize {
        self.pending.len()
    }

    /// Events for a whole buffer: full chunks, then one shorter chunk for the rest.
    pub fn chunks<'a>(&self, samples: &'a [i16]) -> AppendChunks<'a> {
        AppendChunks {
            rest: std::borrow::Cow::Borrowed(samples),
            at: 0,
            samples_per_chunk: self.samples_per_chunk,
            format: self.format,
        }
    }

    /// Adds samples and returns an event for every full chunk now available; the remainder is
    /// kept for the next call.
    pub fn push(&mut self, samples: &[i16]) -> AppendChunks<'static> {
        self.pending.extend_from_slice(samples);
        let full = self.pending.len() / self.samples_per_chunk * self.samples_per_chunk;
        let rest = self.pending.split_off(full);
        let ready = std::mem::replace(&mut self.pending, rest);
        AppendChunks {
            rest: std::borrow::Cow::Owned(ready),
            at: 0,
            samples_per_chunk: self.samples_per_chunk,
            format: self.format,
        }
    }

    /// An event for the held-back samples, if any (at the end of an utterance).
    pub fn flush(&mut self) -> Option<ClientEvent> {
        if self.pending.is_empty() {
            return None;
        }
        let event = append_event(self.format, &self.pending);
        self.pending.clear();
        Some(event)
    }
}

/// An iterator of `input_audio_buffer.append` events over 16-bit samples.
#[derive(Debug, Clone)]
pub struct AppendChunks<'a> {
    rest: std::borrow::Cow<'a, [i16]>,
    at: usize,
    samples_per_chunk: usize,
    format: AudioFormat,
}

impl AppendChunks<'static> {
    /// An iterator that yields nothing.
    pub fn empty(format: AudioFormat) -> Self {
        AppendChunks {
            rest: std::borrow::Cow::Owned(Vec::new()),
            at: 0,
            samples_per_chunk: 1,
            format,
        }
    }
}

/// `input_audio_buffer.append` of `samples` encoded in `format`, base64 written straight into
/// the event's string.
fn append_event(format: AudioFormat, samples: &[i16]) -> ClientEvent {
    let mut audio = String::with_capacity(
        base64::encoded_len(samples.len() * super::bytes_per_sample(format), true).unwrap_or(0),
    );
    super::encode_base64_into(format, samples, &mut audio);
    ClientEvent::input_audio_buffer_append(audio)
}

impl Iterator for AppendChunks<'_> {
    type Item = ClientEvent;

    fn next(&mut self) -> Option<ClientEvent> {
        let remaining = self.rest.get(self.at..)?;
        if remaining.is_empty() {
            return None;
        }
        let len = remaining.len().min(self.samples_per_chunk.max(1));
        let chunk = remaining.get(..len)?;
        self.at += len;
        Some(append_event(self.format, chunk))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = self.rest.len().saturating_sub(self.at);
        let count = remaining.div_ceil(self.samples_per_chunk.max(1));
        (count, Some(count))
    }
}

impl ExactSizeIterator for AppendChunks<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ClientEvent;

    fn audio_of(event: &ClientEvent) -> &str {
        match event {
            ClientEvent::InputAudioBufferAppend(append) => &append.audio,
            other => panic!("not an append: {other:?}"),
        }
    }

    fn ramp(len: usize) -> Vec<i16> {
        (0..len).map(|i| (i as i32 * 37 - 20_000) as i16).collect()
    }

    #[test]
    fn round_trips_through_base64() {
        for len in [0, 1, 2, 3, 767, 768, 1535, 1536, 1537, 4000, 24_000] {
            let samples = ramp(len);
            let text = encode_pcm16_base64(&samples);
            assert_eq!(text.len(), base64::encoded_len(len * 2, true).unwrap());
            assert_eq!(decode_pcm16_base64(&text).unwrap(), samples, "len {len}");
        }
        let extremes = [i16::MIN, -1, 0, 1, i16::MAX];
        assert_eq!(
            decode_pcm16_base64(&encode_pcm16_base64(&extremes)).unwrap(),
            extremes
        );
    }

    #[test]
    fn encodes_little_endian() {
        // 0x0102 → bytes 02 01; 0xFFFF → FF FF.
        assert_eq!(encode_pcm16_base64(&[0x0102, -1]), "AgH//w==");
        assert_eq!(encode_pcm16_base64(&[]), "");
    }

    #[test]
    fn decode_into_appends_and_reuses() {
        let mut buffer = vec![7];
        let added = decode_pcm16_base64_into("AgH//w==", &mut buffer).unwrap();
        assert_eq!(added, 2);
        assert_eq!(buffer, [7, 0x0102, -1]);
        buffer.clear();
        decode_pcm16_base64_into("AgH//w", &mut buffer).unwrap(); // unpadded
        assert_eq!(buffer, [0x0102, -1]);
    }

    #[test]
    fn odd_byte_counts_and_bad_base64_are_errors() {
        // "AQID" is 3 bytes.
        let mut buffer = vec![1, 2];
        assert!(matches!(
            decode_pcm16_base64_into("AQID", &mut buffer),
            Err(AudioError::OddByteCount { bytes: 3 })
        ));
        assert_eq!(buffer, [1, 2], "buffer restored on error");
        assert!(matches!(
            decode_pcm16_base64("AQ=="),
            Err(AudioError::OddByteCount { bytes: 1 })
        ));
        assert!(matches!(
            decode_pcm16_base64("not base64!"),
            Err(AudioError::InvalidBase64(_))
        ));
        assert_eq!(decode_pcm16_base64("").unwrap(), Vec::<i16>::new());
        // Odd total spread over several rounds (2048 chars → 1536 bytes per round).
        let long = encode_pcm16_base64(&ramp(1000));
        let odd = format!("{}AQID", &long[..long.len() - 4]);
        assert!(decode_pcm16_base64(&odd).is_err());
    }

    #[test]
    fn chunks_have_the_configured_duration() {
        let chunker = AppendChunker::new(24_000, 20).unwrap();
        assert_eq!(chunker.samples_per_chunk(), 480);
        let samples = ramp(480 * 3 + 100);
        let events: Vec<_> = chunker.chunks(&samples).collect();
        assert_eq!(events.len(), 4);
        let lengths: Vec<_> = events
            .iter()
            .map(|e| decode_pcm16_base64(audio_of(e)).unwrap().len())
            .collect();
        assert_eq!(lengths, [480, 480, 480, 100]);
        let joined: Vec<i16> = events
            .iter()
            .flat_map(|e| decode_pcm16_base64(audio_of(e)).unwrap())
            .collect();
        assert_eq!(joined, samples);
        assert_eq!(chunker.chunks(&[]).count(), 0);
        assert_eq!(chunker.chunks(&samples).len(), 4);
    }

    #[test]
    fn push_keeps_the_remainder_until_flush() {
        let mut chunker = AppendChunker::new(8_000, 10).unwrap();
        assert_eq!(chunker.samples_per_chunk(), 80);
        assert_eq!(chunker.push(&ramp(50)).count(), 0);
        assert_eq!(chunker.pending_samples(), 50);
        let events: Vec<_> = chunker.push(&ramp(200)).collect();
        assert_eq!(events.len(), 3);
        assert_eq!(chunker.pending_samples(), 10);
        let last = chunker.flush().unwrap();
        assert_eq!(decode_pcm16_base64(audio_of(&last)).unwrap().len(), 10);
        assert!(chunker.flush().is_none());
    }

    #[test]
    fn rejects_empty_chunks() {
        assert!(AppendChunker::new(0, 20).is_err());
        assert!(AppendChunker::new(24_000, 0).is_err());
        assert!(AppendChunker::new(100, 1).is_err());
        assert!(AppendChunker::new(1000, 1).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(samples_for_ms(20, 24_000), 480);
        assert_eq!(duration_ms(480, 24_000), 20);
        assert_eq!(duration_ms(479, 24_000), 19);
        assert_eq!(duration_ms(5, 0), 0);
    }
}
