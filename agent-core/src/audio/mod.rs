//! PCM16 audio helpers: samples to base64 `input_audio_buffer.append` events and audio deltas
//! back to samples.
//!
//! The Realtime API carries audio as base64 of little-endian 16-bit mono PCM (24 kHz by
//! default). These helpers convert straight between `i16` samples and base64 text through a
//! small stack buffer, so no intermediate byte vector is allocated per chunk, and decoding can
//! reuse the caller's sample buffer.

mod pcm16;

pub use pcm16::{
    AppendChunker, AppendChunks, AudioError, DEFAULT_CHUNK_MS, DEFAULT_SAMPLE_RATE,
    decode_pcm16_base64, decode_pcm16_base64_into, duration_ms, encode_pcm16_base64,
    encode_pcm16_base64_into, samples_for_ms,
};

/// Decodes a base64 audio payload into raw bytes, whatever the format (PCM16 or G.711).
pub fn decode_base64(audio: &str) -> Result<Vec<u8>, AudioError> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(audio)
        .map_err(AudioError::InvalidBase64)
}
