//! Hanging up and transferring a call: what each transport implements with its platform's
//! API (Twilio: a REST update of the call with `<Hangup/>` or `<Dial>` TwiML; OpenAI SIP:
//! `POST /v1/realtime/calls/{call_id}/hangup` and `/refer`).
//!
//! The call's bridge decides *when* ([`super::policy`]); an implementation only does it,
//! within its own deadline and retry budget, and never puts a credential in its error.

use agent_core::agent::TransferDestination;
use async_trait::async_trait;

/// Why a hang-up or a transfer did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallControlError {
    /// The platform's API could not be reached (every attempt of the retry budget).
    #[error("cannot reach {what}: {reason}; check the API base in serve.toml and the network")]
    Unreachable {
        /// Which API.
        what: &'static str,
        /// The last attempt's failure.
        reason: String,
    },
    /// The platform refused the request.
    #[error("{what} refused the request with HTTP {status}: {message}")]
    Refused {
        /// Which API.
        what: &'static str,
        /// The HTTP status.
        status: u16,
        /// The platform's message, shortened.
        message: String,
    },
    /// The call cannot be controlled (its account is unknown, say).
    #[error("{0}")]
    Unavailable(String),
}

/// Hangs up or transfers one call on its platform.
#[async_trait]
pub trait CallControl: Send + Sync {
    /// Ends the call.
    async fn hang_up(&self) -> Result<(), CallControlError>;

    /// Sends the call to `destination`; this server's part of the call ends.
    async fn transfer(&self, destination: &TransferDestination) -> Result<(), CallControlError>;
}
