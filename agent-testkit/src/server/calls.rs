//! The calls a fake platform holds, for the scripted server's sidebands.
//!
//! On SIP and WebRTC calls the platform holds the conversation and the audio; a server attaches
//! to a call by the sideband (`/v1/realtime?call_id=...`). So a call's session and
//! conversation live here, not in one connection: a sideband that drops and attaches again
//! finds the call as it left it (or, with [`SidebandDrop::CallEnds`], finds it ended). A test
//! plays the caller through [`PlatformCalls::control`]: speaking the next scripted turn, a
//! keypad press, a dropped sideband.
//!
//! A WebRTC call is different: its session runs beside the browser's data channel for the
//! whole call (see `server::media_call`), and its sidebands only relay events to
//! and from that session. It is accepted from the start (the browser's offer was the answer to
//! nothing), and controls go to its session.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::Value;
use tokio::sync::mpsc;

use super::{ScriptProgress, conversation::Conversation, lock, media_call::CallInput};

/// What happens to a call when its sideband drops (a WebRTC call: any of its sidebands).
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
    /// The sideband's TCP connection drops, without a close frame (on a WebRTC call: every
    /// sideband's; the call and its data channel go on unless [`SidebandDrop::CallEnds`]).
    DropSideband,
    /// The call ended: the sideband is closed (1000).
    End,
}

/// How a call reached the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Through a SIP trunk: a webhook announced it and REST answered it.
    Sip,
    /// From a browser: `POST /v1/realtime/calls` with an SDP offer.
    WebRtc,
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
    kind: CallKind,
    state: CallState,
    /// The session the accept asked for.
    accepted: Option<Value>,
    saved: Option<Saved>,
    control: Option<mpsc::UnboundedSender<CallControl>>,
    sidebands: usize,
    /// When each SIP sideband attached, in order.
    attached_at: Vec<Instant>,
    /// The script's progress on this call, once a sideband attached (it travels with the
    /// call from sideband to sideband).
    progress: Option<Arc<Mutex<ScriptProgress>>>,
    /// A WebRTC call's session, while it runs.
    media: Option<MediaCall>,
}

/// A WebRTC call's session as the platform holds it.
struct MediaCall {
    inbound: mpsc::UnboundedSender<CallInput>,
    /// Sidebands relaying to it right now.
    live_sidebands: usize,
}

/// What a new sideband attaches to.
pub(crate) enum Attachment {
    /// A SIP call: the sideband runs the call's session itself.
    Sip(Box<Attached>),
    /// A WebRTC call: the sideband relays to and from the call's session.
    Media(mpsc::UnboundedSender<CallInput>),
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
                kind: CallKind::Sip,
                state: CallState::Incoming,
                accepted: None,
                saved: None,
                control: None,
                sidebands: 0,
                attached_at: Vec::new(),
                progress: None,
                media: None,
            },
        );
    }

    /// How the call reached the platform, `None` for an unknown call.
    pub fn kind(&self, call_id: &str) -> Option<CallKind> {
        lock(&self.calls).get(call_id).map(|c| c.kind)
    }

    /// Where the call stands, `None` for a call never announced.
    pub fn state(&self, call_id: &str) -> Option<CallState> {
        lock(&self.calls).get(call_id).map(|c| c.state.clone())
    }

    /// How many sidebands attached to the call so far.
    pub fn sidebands(&self, call_id: &str) -> usize {
        lock(&self.calls).get(call_id).map_or(0, |c| c.sidebands)
    }

    /// When each of the call's sidebands attached (a SIP call's), in order: a benchmark times
    /// a takeover from a node's death to the next attach.
    pub fn attach_times(&self, call_id: &str) -> Vec<Instant> {
        lock(&self.calls)
            .get(call_id)
            .map_or_else(Vec::new, |c| c.attached_at.clone())
    }

    /// How many model steps of scripted turn `turn` (0-based, a model-first turn included)
    /// the call's sidebands played to their `response.done`, across sidebands; 0 for a call
    /// no sideband attached to yet. A caller waits on it to know its turn was answered.
    pub fn steps_played(&self, call_id: &str, turn: usize) -> usize {
        let progress = lock(&self.calls)
            .get(call_id)
            .and_then(|c| c.progress.clone());
        progress.map_or(0, |p| lock(&p).done(turn))
    }

    /// Whether a sideband is attached right now.
    pub fn attached(&self, call_id: &str) -> bool {
        lock(&self.calls)
            .get(call_id)
            .is_some_and(|c| match &c.media {
                Some(media) => media.live_sidebands > 0,
                None => c.control.as_ref().is_some_and(|tx| !tx.is_closed()),
            })
    }

    /// What a dropped sideband does to its call.
    pub fn on_drop(&self) -> SidebandDrop {
        self.on_drop
    }

    /// Sends `control` to the call's live sideband (a WebRTC call: to its session); `false`
    /// when none is attached.
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

    /// Attaches a sideband: to a SIP call, it gets the call's state and a control channel; to
    /// a WebRTC call, the way to its session.
    pub(crate) fn attach(&self, call_id: &str) -> Option<Attachment> {
        let mut calls = lock(&self.calls);
        let call = calls
            .get_mut(call_id)
            .filter(|c| c.state == CallState::Accepted)?;
        if let Some(media) = &call.media {
            return Some(Attachment::Media(media.inbound.clone()));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        call.control = Some(tx);
        call.sidebands += 1;
        call.attached_at.push(Instant::now());
        Some(Attachment::Sip(Box::new(Attached {
            saved: call.saved.take(),
            accepted: call.accepted.clone(),
            control: rx,
        })))
    }

    /// A WebRTC call starts, accepted with `session`; its session reads `inbound` and gets
    /// the call's controls through the returned [`Attached`].
    pub(crate) fn add_media(
        &self,
        call_id: &str,
        session: Value,
        inbound: mpsc::UnboundedSender<CallInput>,
    ) -> Attached {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.calls).insert(
            call_id.to_owned(),
            Call {
                kind: CallKind::WebRtc,
                state: CallState::Accepted,
                accepted: Some(session.clone()),
                saved: None,
                control: Some(tx),
                sidebands: 0,
                attached_at: Vec::new(),
                progress: None,
                media: Some(MediaCall {
                    inbound,
                    live_sidebands: 0,
                }),
            },
        );
        Attached {
            saved: None,
            accepted: Some(session),
            control: rx,
        }
    }

    /// The script's progress on the call, as the sideband now attached plays it.
    pub(crate) fn follow_progress(&self, call_id: &str, progress: Arc<Mutex<ScriptProgress>>) {
        if let Some(call) = lock(&self.calls).get_mut(call_id) {
            call.progress = Some(progress);
        }
    }

    /// A sideband joined (`true`) or left a WebRTC call.
    pub(crate) fn media_sideband(&self, call_id: &str, joined: bool) {
        let mut calls = lock(&self.calls);
        let Some(call) = calls.get_mut(call_id) else {
            return;
        };
        if joined {
            call.sidebands += 1;
        }
        if let Some(media) = &mut call.media {
            media.live_sidebands = match joined {
                true => media.live_sidebands + 1,
                false => media.live_sidebands.saturating_sub(1),
            };
        }
    }

    /// A WebRTC call's session ended: the call is over, if nothing else ended it first.
    pub(crate) fn media_ended(&self, call_id: &str) {
        let mut calls = lock(&self.calls);
        let Some(call) = calls.get_mut(call_id) else {
            return;
        };
        call.control = None;
        call.media = None;
        if call.state == CallState::Accepted {
            call.state = CallState::Ended;
        }
    }

    /// The ids of the WebRTC calls whose session still runs.
    pub(crate) fn live_media_calls(&self) -> Vec<String> {
        lock(&self.calls)
            .iter()
            .filter(|(_, c)| c.media.is_some())
            .map(|(id, _)| id.clone())
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sideband_attaches_are_timed_and_the_script_progress_follows_the_call() {
        let calls = PlatformCalls::new(SidebandDrop::CallSurvives);
        calls.incoming("rtc_1");
        assert!(calls.attach("rtc_1").is_none(), "not answered yet");
        calls.accept("rtc_1", Value::Null).unwrap();
        assert!(calls.attach("rtc_1").is_some());
        assert_eq!(calls.attach_times("rtc_1").len(), 1);
        assert_eq!(calls.steps_played("rtc_1", 0), 0);
        let progress = Arc::new(Mutex::new(ScriptProgress::default()));
        calls.follow_progress("rtc_1", Arc::clone(&progress));
        lock(&progress).mark(1, 0);
        assert_eq!(calls.steps_played("rtc_1", 1), 1);
        assert_eq!(calls.steps_played("rtc_1", 0), 0);
        // A second sideband is timed too; unknown calls have nothing.
        assert!(calls.attach("rtc_1").is_some());
        let times = calls.attach_times("rtc_1");
        assert!(times.len() == 2 && times[0] <= times[1]);
        assert!(calls.attach_times("rtc_2").is_empty());
        assert_eq!(calls.steps_played("rtc_2", 0), 0);
    }
}
