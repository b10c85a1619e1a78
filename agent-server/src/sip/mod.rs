//! SIP calls through the OpenAI platform (shared/realtime-spec/realtime-rest.md).
//!
//! The trunk sends calls to `sip:<project id>@sip.api.openai.com;transport=tls`, never to us;
//! the platform then posts a signed `realtime.call.incoming` webhook to `POST /openai/webhook`.
//!
//! - [`signature`] checks Standard Webhooks signatures;
//! - [`seen`] remembers processed `webhook-id`s, so a redelivery is processed once;
//! - [`incoming`] reads the event and decides: accept with the route of the SIP `To` user,
//!   or reject (404 unknown user, 486 busy, 503 draining);
//! - [`webhook`] is the endpoint: verify, acknowledge at once, hand the call to its task;
//! - `call` accepts through REST ([`crate::platform`]), attaches the sideband and runs the
//!   session loop in platform-held mode;
//! - `conversation` runs a connected call with the phone [`CallPolicy`](crate::phone::CallPolicy)
//!   (greeting, silence, call length, keypad digits, `end_call`, `transfer_call`);
//! - [`control`] hangs up and transfers through the platform; [`playback`] follows what the
//!   platform plays, so a hang-up waits for the goodbye.

pub(crate) mod call;
pub mod control;
mod conversation;
pub mod incoming;
pub mod playback;
pub mod seen;
pub mod signature;
pub mod webhook;

pub use call::{accept_body, limited_by_session, sideband_url};

use crate::platform::Platform;

/// What the SIP path holds: the webhook secret, the ids seen, the platform's REST client.
#[derive(Debug)]
pub struct SipState {
    /// Verifies the platform's webhooks.
    pub secret: signature::WebhookSecret,
    /// Webhook ids already processed.
    pub seen: seen::SeenIds,
    /// Accept, reject, refer and hang up.
    pub platform: Platform,
}
