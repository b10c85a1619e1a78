//! Twilio Media Streams: the voice webhook, the stream's token check, and the bridge from a
//! stream to a Realtime session (shared/telephony.md).
//!
//! - [`voice`] answers `POST /twilio/voice`, signed, with TwiML;
//! - [`resume`] answers `POST /twilio/resume`, Twilio's request when a call's stream ended,
//!   and brings back to this node a call whose node died;
//! - [`signature`] checks `X-Twilio-Signature`;
//! - [`twiml`] writes the TwiML answers;
//! - [`tokens`] holds the one-time stream tokens bound to a `CallSid`;
//! - [`media_stream`] admits `GET /twilio/media-stream` only with a valid token;
//! - [`messages`] are the stream's JSON messages;
//! - [`playback`] knows what the caller heard, from marks (sans-IO);
//! - [`rest`] hangs up and transfers calls through Twilio's REST API;
//! - `call` runs one call, the stream bridged to a session.

mod call;
pub mod media_stream;
pub mod messages;
pub mod playback;
pub mod rest;
pub mod resume;
pub mod signature;
pub mod tokens;
pub mod twiml;
pub mod voice;
