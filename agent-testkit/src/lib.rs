//! A scripted OpenAI Realtime server on loopback, for tests and offline runs.
//!
//! `agent test`, `agent run --offline` and the end-to-end tests of the runtime need a Realtime
//! server that behaves like the real one without the network or a bill. This crate provides it:
//! [`ScriptedServer`] is a real WebSocket server on `127.0.0.1` that speaks the GA protocol (and
//! beta when asked), plays a [`Scenario`] (text, synthetic audio, function calls), checks the
//! client the way the live API does (same error codes), records every frame and every protocol
//! mistake, and injects faults on demand (drops, close codes, delays, error events, noise,
//! malformed frames).
//!
//! Scenarios live in TOML files beside agent files; [`scenario`] documents the format and checks
//! the expectations a run must meet.
//!
//! [`mcp`] is the other side of the Model Context Protocol: a small MCP server over stdio or
//! streamable HTTP, with fault knobs, for the framework's `[[mcp_clients]]`.
//!
//! [`platform`] is the OpenAI platform's side of SIP and WebRTC calls: signed
//! `realtime.call.incoming` webhooks, the call-control REST endpoints, sidebands attached by
//! call id that play the scenario and keep the call's conversation across reconnects, client
//! secrets, and WebRTC calls from SDP offers whose `oai-events` data channel and sidebands
//! share one session. [`webrtc`] is the browser's side: [`webrtc::TestBrowser`] makes such a
//! call on loopback.
//!
//! [`twilio`] is the phone network's side of `agent serve`: a fake Twilio that signs its voice
//! webhook, streams a caller's μ-law in real time, plays the server's audio, echoes marks and
//! honours `clear`.
//!
//! The wire is handled as `serde_json::Value` on purpose: a test server must be able to send
//! unknown fields, nulls, beta names and broken frames that a typed protocol would refuse.

// Without the `webrtc` feature, the media side of the platform-held calls (the data-channel
// session, playout, packet VAD) has no peer to serve: it stays compiled, so the feature cannot
// rot it, and is unused. Lints run with every feature on (CI's clippy), where it is used.
#![cfg_attr(not(feature = "webrtc"), allow(dead_code, unused_imports))]

pub mod mcp;
pub mod platform;
pub mod postgres;
pub mod scenario;
pub mod server;
pub mod twilio;
pub mod webrtc;

pub use scenario::{
    ApprovalAnswer, Expectation, Location, ModelStep, ObservedApproval, ObservedCall, ObservedTurn,
    Scenario, ScenarioDiagnostic, ScenarioError, ScenarioFile, ScriptedCall, ScriptedMcpApproval,
    Turn,
};
pub use server::{
    AudioProbe, AudioSettings, AuthCheck, CloseSpec, ConnectionFaults, ConnectionRequest, Dialect,
    DialectMode, Direction, ErrorSpec, Faults, InjectedError, LoggedFrame, MalformedDone,
    ReceivedEvent, ScriptScope, ScriptedServer, ServerConfig, ServerHandle,
};
