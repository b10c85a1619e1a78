//! Helpers shared by the integration tests.

pub mod harness;
pub mod spec;

/// The dialect type `spec` validates for (it is shared with agent-testkit's tests, which have
/// their own).
pub use agent_core::protocol::Dialect;
