//! What every phone agent gets, whatever the transport: the greeting, silence handling, a
//! maximum call length, keypad digits, and the `end_call` / `transfer_call` tools.
//!
//! - [`policy`] decides when (sans-IO);
//! - [`dtmf`] turns keypad digits into what the model reads;
//! - [`tools`] are the call-control tools, registered per call;
//! - [`wind_down`] ends a call the same way on every transport (last costs, outcome);
//! - [`control`] is the transport's side: [`CallControl`] hangs up or transfers on the
//!   platform (Twilio's REST API in [`crate::twilio::rest`], the OpenAI platform's `/hangup`
//!   and `/refer` in [`crate::sip::control`]).

pub mod control;
pub mod dtmf;
pub mod policy;
pub mod tools;
pub mod wind_down;

pub use control::{CallControl, CallControlError};
pub use policy::{Action, CallPolicy, END_GRACE, EndReason};
pub use tools::{CallRequest, CallRequests, add_call_tools};
pub use wind_down::{SESSION_CLOSE, charge, wind_down};

use agent_core::{
    protocol::{ClientEvent, Item},
    session::{SessionEnded, SessionHandle},
};

/// Carries out a policy's [`Action::Prompt`]: the model is told (a system message) and asked
/// to answer, so what it says follows the agent's voice and language, not a fixed text.
pub async fn prompt(handle: &SessionHandle, text: String) -> Result<(), SessionEnded> {
    let note = ClientEvent::conversation_item_create(Item::system_text(text));
    handle.send_event(note).await?;
    handle.request_response().await
}

/// Sleeps until the policy's next deadline, or forever when it has none (the bridge's other
/// branches wake it).
pub async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
