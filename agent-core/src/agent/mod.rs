//! Agent files: the TOML that declares an agent, checked and resolved into what a session needs.
//!
//! Loading has two steps. [`AgentFile::load`] parses and checks everything the file can say
//! about itself (syntax, keys, voices, limits, URLs); [`AgentFile::resolve`] then looks its
//! tools up in a [`crate::tool::ToolRegistry`]. Every problem names `file:line:col`, says what
//! is wrong and what to do, and all problems of a stage are reported at once;
//! [`AgentFile::check_all`] (`agent check`) runs every stage and reports all of them together.

mod check;
mod diagnostic;
mod handoffs;
mod load;
mod phone;
mod spec;

pub use diagnostic::{AgentError, Diagnostic, closest, line_col};
pub use handoffs::HandoffTarget;
pub use load::{AgentFile, VOICES};
pub use phone::{DtmfMode, DtmfSpec, PhoneSpec, TransferDestination, valid_target_name};
pub use spec::*;
mod resolve;
mod strict;
mod tool_settings;

pub use resolve::{Agent, ConnectConfigError, ConnectOverrides};
