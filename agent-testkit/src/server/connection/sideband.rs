//! A sideband: a connection attached to a platform call by `?call_id=` (see
//! [`PlatformCalls`](crate::server::calls::PlatformCalls)). It starts from the call's session
//! and conversation, hands them back when it ends, carries no audio (the call's media path
//! does) but says when the platform plays it (`output_audio_buffer.started` / `.stopped`),
//! and plays what the test makes the caller do. A WebRTC call's session (see `media`) uses the
//! same controls and playback events; its playout is real, so `.stopped` comes when the peer
//! has played the answer rather than after [`PLAYBACK_TAIL`].

use super::*;
use crate::server::calls::{Attached, CallControl, Saved};

/// How long after a response is done the platform finishes playing its audio on a sideband's
/// call: long enough that a server hanging up at `response.done` (rather than at
/// `output_audio_buffer.stopped`) is seen cutting the answer off.
pub(super) const PLAYBACK_TAIL: Duration = Duration::from_millis(200);

/// What the loop waits for next on a connection.
pub(super) enum Input {
    /// What the transport delivered.
    Link(Inbound),
    /// A control for this sideband's call (`None`: the platform let go of it).
    Control(Option<CallControl>),
}

impl Conn {
    /// Starts this sideband from the call: where the last sideband left it, else from the
    /// session the accept asked for.
    pub(super) fn attach(&mut self, call_id: String, attached: Attached) {
        if let Some(saved) = attached.saved {
            self.session = saved.session;
            self.conversation = saved.conversation;
            self.turn = saved.turn;
            self.input_ms_total = saved.input_ms_total;
            self.progress = saved.progress;
        } else if let Some(accepted) = &attached.accepted {
            session::merge(&mut self.session, accepted);
        }
        self.conversation_id = format!("conv_{call_id}");
        if let Some(calls) = &self.shared.config.calls {
            calls.follow_progress(&call_id, Arc::clone(&self.progress));
        }
        self.control = Some(attached.control);
        self.call_id = Some(call_id);
    }

    /// Hands the call's state back to the platform, once; `dropped` when the connection ended
    /// without the call ending. A media call's session ends with its call.
    pub(super) fn detach(&mut self, dropped: bool) {
        let (Some(call_id), Some(calls)) = (self.call_id.take(), self.shared.config.calls.clone())
        else {
            return;
        };
        self.control = None;
        if self.media.is_some() {
            calls.media_ended(&call_id);
            return;
        }
        let saved = Saved {
            session: self.session.clone(),
            conversation: std::mem::take(&mut self.conversation),
            turn: self.turn,
            input_ms_total: self.input_ms_total,
            progress: Arc::clone(&self.progress),
        };
        calls.detach(&call_id, saved, dropped);
    }

    /// The next client frame or, on a sideband, the next control of its call.
    pub(super) async fn next_input(&mut self, link: &mut Link) -> Input {
        let wake_at = self.media_wake_at();
        match &mut self.control {
            None => Input::Link(link.next(self.index, wake_at).await),
            Some(control) => tokio::select! {
                inbound = link.next(self.index, wake_at) => Input::Link(inbound),
                control = control.recv() => Input::Control(control),
            },
        }
    }

    /// Handles one input of [`Conn::next_input`].
    pub(super) async fn on_input(&mut self, input: Input, link: &mut Link) -> Flow {
        match input {
            Input::Link(Inbound::Call(event)) => self.on_call_input(event, link).await,
            Input::Link(Inbound::Wake) => {
                self.on_media_wake();
                Flow::Continue
            }
            Input::Link(inbound) => self.on_frame(inbound),
            Input::Control(Some(control)) => self.on_control(control, link).await,
            Input::Control(None) => {
                self.control = None;
                Flow::Continue
            }
        }
    }

    async fn on_control(&mut self, control: CallControl, link: &mut Link) -> Flow {
        match control {
            CallControl::CallerSpeaks => {
                self.barge_in();
                Flow::Continue
            }
            CallControl::Dtmf(digit) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.reply(json!({
                    "type": "input_audio_buffer.dtmf_event_received",
                    "event": digit,
                    "received_at": now,
                }));
                Flow::Continue
            }
            CallControl::DropSideband => {
                tracing::debug!(connection = self.index, "platform: sideband dropped");
                if let Some(call) = link.call() {
                    // The call has its own media path: only the sidebands go (each says so,
                    // and the call ends then if the platform ends calls with their sideband).
                    call.drop_sidebands();
                    return Flow::Continue;
                }
                self.detach(true);
                link.drop_connection().await;
                Flow::Stop
            }
            CallControl::End => {
                self.detach(false);
                link.close(&call_ended()).await;
                Flow::Stop
            }
        }
    }

    /// The platform plays the audio a sideband does not carry, and says so: a response's first
    /// audio delta becomes `output_audio_buffer.started`; the others are withheld (`None`).
    pub(super) fn playback_started(&mut self, delta: &Value) -> Option<Value> {
        let response_id = delta.get("response_id").and_then(Value::as_str)?;
        if self.playing.as_deref() == Some(response_id) {
            return None;
        }
        self.playing = Some(response_id.to_owned());
        Some(json!({"type": "output_audio_buffer.started", "response_id": response_id}))
    }

    /// After a sideband sent `response.done` for the response it is playing: its
    /// `output_audio_buffer.stopped` follows once the rest has played ([`PLAYBACK_TAIL`]; on a
    /// WebRTC call, once its peer says so).
    pub(super) fn playback_done(&mut self, sent: &Value, link: &mut Link) {
        if sent.get("type").and_then(Value::as_str) != Some("response.done") {
            return;
        }
        let id = sent.pointer("/response/id").and_then(Value::as_str);
        if self.playing.is_none() || self.playing.as_deref() != id {
            return;
        }
        if let (Some(call), Some(id)) = (link.call(), id) {
            call.playout_ends(id);
            return;
        }
        let response_id = self.playing.take();
        let mut stopped = Outgoing::new(
            json!({"type": "output_audio_buffer.stopped", "response_id": response_id}),
        );
        stopped.delay = PLAYBACK_TAIL;
        self.replies.push_back(stopped);
    }

    /// Audio stays on the call's media path: a sideband gets no audio deltas (the response is
    /// played all the same, and its items keep their audio length).
    pub(super) fn withheld(&self, value: &Value) -> bool {
        self.call_id.is_some()
            && matches!(
                value.get("type").and_then(Value::as_str),
                Some("response.output_audio.delta" | "response.audio.delta")
            )
    }
}

/// The close frame of a call that ended.
pub(super) fn call_ended() -> CloseSpec {
    CloseSpec {
        code: 1000,
        reason: "call ended".into(),
    }
}

/// The `call_id` of a sideband's upgrade request, if any.
pub(super) fn call_id_of(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == "call_id")
        .map(|(_, v)| v.to_owned())
}
