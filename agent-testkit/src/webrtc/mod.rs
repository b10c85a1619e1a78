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

#[cfg(feature = "webrtc")]
mod browser;
mod client;
#[cfg(feature = "webrtc")]
pub(crate) mod io;
pub(crate) mod opus;

pub use crate::twilio::http::HttpAnswer;
#[cfg(feature = "webrtc")]
pub use browser::TestBrowser;
pub use client::{CallVia, post_client_secret, post_offer};

/// What went wrong with a test browser's call.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    /// An HTTP request failed (no answer, a malformed one, a bad base URL).
    #[error("HTTP: {0}")]
    Http(String),
    /// The platform refused the offer.
    #[error("the platform answered the offer with {status}: {body}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The body (an error object).
        body: String,
    },
    /// WebRTC failed: the socket, the SDP, str0m.
    #[error("WebRTC: {0}")]
    Rtc(String),
    /// Something did not happen in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The call is over: the browser's task ended.
    #[error("the call is over")]
    Closed,
}

/// The label of the data channel that carries the Realtime events.
pub const EVENTS_CHANNEL: &str = "oai-events";
