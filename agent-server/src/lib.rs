//! `agent serve`: an HTTP server that answers phone calls with Realtime agents.
//!
//! One process serves several agents (`serve.toml` routes a called number, a SIP user or a
//! path to an agent file) and many calls at once, each on its own task. Every call runs the
//! same session loop as `agent run` (agent-core's [`Session`](agent_core::session::Session)):
//! tools, history, cost and limits live there, and a transport only moves audio and events.
//!
//! Transports so far: Twilio Media Streams ([`twilio`]): a signed voice webhook answered with
//! TwiML, a media stream admitted by a one-time token, μ-law passed through as `audio/pcmu`,
//! marks for playback and `clear` for barge-in. OpenAI SIP ([`sip`]): a signed webhook, an
//! accept through the platform's REST API ([`platform`]), and the session loop attached to the
//! call by the sideband, in platform-held mode. Both get what every phone agent gets
//! ([`phone`]: greeting, silence, call length, keypad digits, `end_call`, `transfer_call`),
//! the call history and the metrics.
//!
//! The server is an axum [`Router`](axum::Router) plus tower layers (tracing, a limit on
//! requests in flight, a request timeout, a body limit) in [`router`], over one `Arc` of typed
//! handles ([`AppState`]), served by hyper-util with a header-read timeout ([`Server`]).
//! Endpoints are an attack surface: signatures are checked before anything is believed, sizes
//! and waits are bounded, and no answer or log line carries a secret.

#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod approvals;
pub mod browser;
pub mod call_history;
pub mod capacity;
pub mod config;
mod console;
mod error;
mod health;
pub mod metrics;
pub mod phone;
pub mod phone_session;
pub mod platform;
mod random;
pub mod rate_limit;
pub mod router;
mod server;
pub mod sip;
pub mod spend;
mod state;
mod takeover;
pub mod twilio;
pub mod websocket;

pub use config::{ConfigError, ServeConfig};
pub use error::ServeError;
pub use server::{DEFAULT_DRAIN, Secrets, ServeOptions, Server, check_routes};
pub use state::AppState;
