//! What every phone agent gets, whatever the transport: the greeting, silence handling, a
//! maximum call length, keypad digits, and the `end_call` / `transfer_call` tools.
//!
//! - [`policy`] decides when (sans-IO);
//! - [`dtmf`] turns keypad digits into what the model reads;
//! - [`tools`] are the call-control tools, registered per call;
//! - [`control`] is the transport's side: [`CallControl`] hangs up or transfers on the
//!   platform (Twilio's REST API in [`crate::twilio::rest`]).

pub mod control;
pub mod dtmf;
pub mod policy;
pub mod tools;

pub use control::{CallControl, CallControlError};
pub use policy::{Action, CallPolicy, EndReason};
pub use tools::{CallRequest, CallRequests, add_call_tools};
