//! Twilio Media Streams: the voice webhook, the stream's token check, and the bridge from a
//! stream to a Realtime session (shared/telephony.md).
//!
//! - [`voice`]: `POST /twilio/voice`, signed, answered with TwiML;
//! - [`signature`]: `X-Twilio-Signature`;
//! - [`twiml`]: the TwiML answers;
//! - [`tokens`]: one-time stream tokens bound to a `CallSid`;
//! - [`media_stream`]: `GET /twilio/media-stream`, refused without a valid token;
//! - [`messages`]: the stream's JSON messages;
//! - [`playback`]: what the caller heard, from marks (sans-IO);
//! - [`call`]: one call, the stream bridged to a session.

mod call;
pub mod media_stream;
pub mod messages;
pub mod playback;
pub mod signature;
pub mod tokens;
pub mod twiml;
pub mod voice;
