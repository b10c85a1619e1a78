//! WebRTC on loopback, the browser's side: [`TestBrowser`] calls the fake platform the way a
//! web page calls the Realtime API, so tests need no real browser.
//!
//! Like a page, it is the offerer: it adds an audio track (the microphone) and creates the
//! `oai-events` data channel, posts the offer to `POST /v1/realtime/calls` in either form
//! ([`CallVia`]), completes ICE and DTLS with the answer's host candidate, then sends and
//! receives Realtime events on the channel and Opus frames on the track. [`post_offer`] and
//! [`post_client_secret`] are the bare HTTP requests, for tests of refusals.
//!
//! Both peers are str0m, driven the same way; neither encodes audio: they send Opus frames
//! made once offline (a 400 Hz tone and the 3-byte silent frame).

mod browser;
mod client;
pub(crate) mod io;
pub(crate) mod opus;

pub use crate::twilio::http::HttpAnswer;
pub use browser::{BrowserError, TestBrowser};
pub use client::{CallVia, post_client_secret, post_offer};

/// The label of the data channel that carries the Realtime events.
pub const EVENTS_CHANNEL: &str = "oai-events";
