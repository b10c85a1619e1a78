//! The calls a fake platform holds, for the scripted server's sidebands.
//!
//! On SIP and WebRTC calls the platform holds the conversation and the audio; a server attaches
//! to a call by the sideband (`/v1/realtime?call_id=...`). So a call's session and
//! conversation live here, not in one connection: a sideband that drops and attaches again
//! finds the call as it left it (or, with [`SidebandDrop::CallEnds`], finds it ended). A test
//! plays the caller through [`PlatformCalls::control`]: speaking the next scripted turn, a
//! keypad press, a dropped sideband.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use serde_json::Value;
use tokio::sync::mpsc;

use super::{ScriptProgress, conversation::Conversation, lock};

/// What happens to a call when its sideband drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SidebandDrop {
    /// The call goes on and accepts a new sideband, which finds the conversation as it was.
    #[default]
    CallSurvives,
    /// The call ends with the sideband; a new one is refused (HTTP 404).
    CallEnds,
}

/// Where a call stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    /// The webhook announced it; nobody answered yet.
    Incoming,
    /// Accepted through REST: sidebands may attach.
    Accepted,
    /// Rejected through REST with this SIP status.
    Rejected(u16),
    /// Transferred through REST (`refer`) to this URI.
    Transferred(String),
    /// Hung up through REST.
    HungUp,
    /// Ended by the caller, or by the platform (a dropped sideband under
    /// [`SidebandDrop::CallEnds`]).
    Ended,
}

/// What a test makes the platform do on a call's live sideband.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallControl {
    /// The caller says the next scripted turn (speech started, stopped, committed, answered
    /// when the session's turn detection creates responses).
    CallerSpeaks,
    /// The caller presses a key: `input_audio_buffer.dtmf_event_received`.
    Dtmf(String),
    /// The sideband's TCP connection drops, without a close frame.
    DropSideband,
    /// The call ended: the sideband is closed (1000).
    End,
}

/// A call's state between sidebands.
pub(crate) struct Saved {
    pub(crate) session: Value,
    pub(crate) conversation: Conversation,
    pub(crate) turn: Option<usize>,
    pub(crate) input_ms_total: u64,
    pub(crate) progress: Arc<Mutex<ScriptProgress>>,
}

struct Call {
    state: CallState,
    /// The session the accept asked for.
    accepted: Option<Value>,
    saved: Option<Saved>,
    control: Option<mpsc::UnboundedSender<CallControl>>,
    sidebands: usize,
}

/// A new sideband's start: the call's state when it had one before, else the accept's session.
pub(crate) struct Attached {
    pub(crate) saved: Option<Saved>,
    pub(crate) accepted: Option<Value>,
    pub(crate) control: mpsc::UnboundedReceiver<CallControl>,
}

/// Every call of one fake platform.
#[derive(Default)]
pub struct PlatformCalls {
    calls: Mutex<HashMap<String, Call>>,
    on_drop: SidebandDrop,
}

impl std::fmt::Debug for PlatformCalls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformCalls")
            .field("calls", &lock(&self.calls).len())
            .field("on_drop", &self.on_drop)
            .finish()
    }
}

impl PlatformCalls {
    /// No calls yet; `on_drop` says what a dropped sideband does to its call.
    pub fn new(on_drop: SidebandDrop) -> Self {
        PlatformCalls {
            calls: Mutex::new(HashMap::new()),
            on_drop,
        }
    }

    /// A call comes in (the platform is about to send its webhook).
    pub fn incoming(&self, call_id: &str) {
        lock(&self.calls).insert(
            call_id.to_owned(),
            Call {
                state: CallState::Incoming,
                accepted: None,
                saved: None,
                control: None,
                sidebands: 0,
            },
        );
    }

    /// Where the call stands, `None` for a call never announced.
    pub fn state(&self, call_id: &str) -> Option<CallState> {
        lock(&self.calls).get(call_id).map(|c| c.state.clone())
    }

    /// How many sidebands attached to the call so far.
    pub fn sidebands(&self, call_id: &str) -> usize {
        lock(&self.calls).get(call_id).map_or(0, |c| c.sidebands)
    }

    /// Whether a sideband is attached right now.
    pub fn attached(&self, call_id: &str) -> bool {
        lock(&self.calls)
            .get(call_id)
            .is_some_and(|c| c.control.as_ref().is_some_and(|tx| !tx.is_closed()))
    }

    /// Sends `control` to the call's live sideband; `false` when none is attached.
    pub fn control(&self, call_id: &str, control: CallControl) -> bool {
        lock(&self.calls)
            .get(call_id)
            .and_then(|c| c.control.as_ref())
            .is_some_and(|tx| tx.send(control).is_ok())
    }

    /// The caller hangs up: the call ends and its sideband is closed (1000); `false` when the
    /// call was not running.
    pub fn caller_hangs_up(&self, call_id: &str) -> bool {
        self.end(call_id, CallState::Ended, &[CallState::Accepted])
            .is_ok()
    }

    /// Answers an incoming call with `session`; `Err` says why the platform refuses.
    pub(crate) fn accept(&self, call_id: &str, session: Value) -> Result<(), &'static str> {
        let mut calls = lock(&self.calls);
        let call = calls.get_mut(call_id).ok_or("no such call")?;
        if call.state != CallState::Incoming {
            return Err("the call is not waiting to be answered");
        }
        call.state = CallState::Accepted;
        call.accepted = Some(session);
        Ok(())
    }

    /// Ends the call as `state` (a reject, a transfer, a hang-up); its sideband is closed.
    pub(crate) fn end(
        &self,
        call_id: &str,
        state: CallState,
        expected: &[CallState],
    ) -> Result<(), &'static str> {
        let mut calls = lock(&self.calls);
        let call = calls.get_mut(call_id).ok_or("no such call")?;
        if !expected.contains(&call.state) {
            // A call that is over is gone, as far as the API is concerned.
            let over = !matches!(call.state, CallState::Incoming | CallState::Accepted);
            return Err(if over {
                "no such call"
            } else {
                "the call is not in a state that allows this"
            });
        }
        call.state = state;
        if let Some(tx) = call.control.take() {
            let _ = tx.send(CallControl::End);
        }
        Ok(())
    }

    /// Whether a sideband may attach to `call_id` now.
    pub(crate) fn may_attach(&self, call_id: &str) -> bool {
        lock(&self.calls)
            .get(call_id)
            .is_some_and(|c| c.state == CallState::Accepted)
    }

    /// Attaches a sideband: it gets the call's state and a control channel.
    pub(crate) fn attach(&self, call_id: &str) -> Option<Attached> {
        let mut calls = lock(&self.calls);
        let call = calls
            .get_mut(call_id)
            .filter(|c| c.state == CallState::Accepted)?;
        let (tx, rx) = mpsc::unbounded_channel();
        call.control = Some(tx);
        call.sidebands += 1;
        Some(Attached {
            saved: call.saved.take(),
            accepted: call.accepted.clone(),
            control: rx,
        })
    }

    /// A sideband let go of the call (`dropped`: its connection failed, rather than the call
    /// or the client ending it): the call keeps `saved` for the next sideband, or ends.
    pub(crate) fn detach(&self, call_id: &str, saved: Saved, dropped: bool) {
        let mut calls = lock(&self.calls);
        let Some(call) = calls.get_mut(call_id) else {
            return;
        };
        call.control = None;
        call.saved = Some(saved);
        if dropped && self.on_drop == SidebandDrop::CallEnds && call.state == CallState::Accepted {
            call.state = CallState::Ended;
        }
    }
}
