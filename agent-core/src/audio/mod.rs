//! Audio for Realtime sessions: formats, conversion, files and playback tracking.
//!
//! The Realtime API carries audio as base64 of PCM16 (little-endian, mono, 24 kHz) or G.711
//! μ-law/A-law (8 kHz, one byte per sample). This module holds everything between that wire
//! format and what apps have:
//!
//! - [`pcm16`](encode_pcm16_base64) and [`g711`] codecs, with base64 written straight from
//!   samples through a stack buffer (no byte vector per chunk);
//! - [`AppendChunker`]: samples → `input_audio_buffer.append` events of a fixed duration, in any
//!   of the three formats;
//! - [`Resampler`] (any rate ↔ 24 kHz / 8 kHz), channel downmix, and the two pipelines built from
//!   them: [`InputConverter`] (microphone or file → append events) and [`OutputDecoder`] (audio
//!   deltas → samples for a device or file);
//! - [`read_wav`] / [`WavWriter`];
//! - [`PlaybackTracker`] and [`PlaybackClock`]: how much of each assistant item was received
//!   and how much was actually heard, which barge-in truncation depends on.

mod convert;
pub mod g711;
mod pcm16;
mod playback;
mod resample;
mod wav;

pub use convert::{
    InputConverter, OutputDecoder, bytes_per_sample, decode_into, downmix_f32, downmix_i16,
    encode_base64_into, encode_into, g711_law, samples_in,
};
pub use g711::G711;
pub use pcm16::{
    AppendChunker, AppendChunks, AudioError, DEFAULT_CHUNK_MS, DEFAULT_SAMPLE_RATE,
    decode_pcm16_base64, decode_pcm16_base64_into, duration_ms, encode_pcm16_base64,
    encode_pcm16_base64_into, samples_for_ms,
};
pub use playback::{ItemPlayback, PlaybackClock, PlaybackMode, PlaybackTracker};
pub use resample::{ResampleError, Resampler, f32_to_i16, resample_i16};
pub use wav::{WavAudio, WavError, WavWriter, read_wav, read_wav_from};

/// Decodes a base64 audio payload into raw bytes, whatever the format (PCM16 or G.711).
pub fn decode_base64(audio: &str) -> Result<Vec<u8>, AudioError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(audio)
        .map_err(AudioError::InvalidBase64)
}
