//! A connected SIP call's conversation: the session's events, the call-control tools'
//! requests, the platform's playback and the policy's deadlines, until one side ends the call.
//!
//! The [`CallPolicy`] decides (greeting, silence, call length, keypad digits, when a hang-up or
//! a transfer may happen); this module feeds it and carries out its actions: prompts through
//! the session, hang-ups and transfers through [`CallControl`] (the platform's `/hangup` and
//! `/refer`). "Played" is the platform's word here: its `output_audio_buffer.stopped`
//! ([`PlaybackWatch`]). Each call is stored in the history with transport `sip` and counted
//! in the metrics, like a Twilio call.

use std::{ops::ControlFlow, sync::Arc, time::Instant};

use agent_core::{
    agent::PhoneSpec,
    session::{CloseReason, Session, SessionEvent},
};

use super::playback::PlaybackWatch;
use crate::{
    call_history::StoredCall,
    metrics::Outcome,
    phone::{self, Action, CallControl, CallPolicy, CallRequests, EndReason},
    state::AppState,
};

/// Why a SIP call's conversation ended.
#[derive(Debug)]
enum End {
    /// The session closed (the call ended, the sideband could not re-attach, the limit...).
    Closed(CloseReason),
    /// The session's events ended without a reason.
    Vanished,
    /// The server's drain time ran out.
    Drained,
    /// The agent's side hung up (`end_call`, silence, the call-length limit).
    AgentEnded(EndReason),
    /// The agent transferred the call.
    Transferred,
    /// Another node took the call over (this one stalled past its lease).
    TakenOver,
}

impl End {
    fn outcome(&self) -> Outcome {
        match self {
            End::Closed(reason) => Outcome::of_sideband_close(reason),
            End::Vanished => Outcome::Failed,
            End::Drained => Outcome::Drained,
            End::AgentEnded(EndReason::Agent) => Outcome::AgentHungUp,
            End::AgentEnded(EndReason::Silence) => Outcome::Silence,
            End::AgentEnded(EndReason::MaxLength) => Outcome::MaxLength,
            End::Transferred => Outcome::Transferred,
            End::TakenOver => Outcome::TakenOver,
        }
    }

    /// Whether the call may still be up on the platform, so the server hangs it up: not
    /// after its own hang-up or transfer, and not when another node has the call now.
    fn needs_hang_up(&self) -> bool {
        !matches!(self, End::AgentEnded(_) | End::Transferred | End::TakenOver)
    }
}

/// A started sideband session with what the call needs beside it.
pub(super) struct Started {
    pub session: Session,
    pub requests: CallRequests,
    pub playback: PlaybackWatch,
    pub stored: Option<StoredCall>,
    pub control: Arc<dyn CallControl>,
    /// The agent's `[phone]`, capped by the session's limit.
    pub phone: PhoneSpec,
    /// When the session started: the policy's clock.
    pub connected: Instant,
    /// Taken over from a node that died: the caller was greeted already.
    pub resumed: bool,
}

/// One connected SIP call.
pub(super) struct SipCall {
    state: Arc<AppState>,
    call_id: String,
    route: usize,
    session: Session,
    requests: CallRequests,
    playback: PlaybackWatch,
    stored: Option<StoredCall>,
    control: Arc<dyn CallControl>,
    policy: CallPolicy,
    resumed: bool,
}

impl SipCall {
    pub(super) fn new(state: Arc<AppState>, call_id: String, route: usize, s: Started) -> Self {
        SipCall {
            policy: CallPolicy::new(&s.phone, s.connected),
            state,
            call_id,
            route,
            session: s.session,
            requests: s.requests,
            playback: s.playback,
            stored: s.stored,
            control: s.control,
            resumed: s.resumed,
        }
    }

    /// Greets (when the route says so), converses until the call ends, then winds down.
    pub(super) async fn run(mut self) {
        self.state.metrics.call_started();
        let greeted = if self.state.config.routes[self.route].greet && !self.resumed {
            let greeting = self.policy.greeting();
            self.execute(greeting).await
        } else {
            ControlFlow::Continue(())
        };
        let end = match greeted {
            ControlFlow::Break(end) => end,
            ControlFlow::Continue(()) => self.converse().await,
        };
        self.finish(end).await;
    }

    /// Handles events, requests, playback and deadlines until the conversation ends.
    async fn converse(&mut self) -> End {
        let hang_up = self.state.hang_up.clone();
        let stored = self.stored.clone();
        let taken_over = async {
            match &stored {
                Some(stored) => stored.taken_over().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(taken_over);
        loop {
            let wake = self.policy.deadline();
            let step = tokio::select! {
                event = self.session.events.recv() => match event {
                    Some(event) => self.on_session(event).await,
                    None => ControlFlow::Break(End::Vanished),
                },
                Some(request) = self.requests.recv() => {
                    self.policy.on_request(request, Instant::now());
                    ControlFlow::Continue(())
                }
                () = self.playback.changed() => ControlFlow::Continue(()),
                () = crate::phone::sleep_until(wake) => ControlFlow::Continue(()),
                () = hang_up.cancelled() => ControlFlow::Break(End::Drained),
                () = &mut taken_over => ControlFlow::Break(End::TakenOver),
            };
            if let ControlFlow::Break(end) = step {
                return end;
            }
            // Read after every step: a `started` seen on the wire before a response's end is
            // known here before that end is handled.
            let playing = usize::from(self.playback.playing());
            self.policy.on_playback(playing, Instant::now());
            for action in self.policy.poll(Instant::now()) {
                if let ControlFlow::Break(end) = self.execute(action).await {
                    return end;
                }
            }
        }
    }

    /// Carries out one action of the policy.
    async fn execute(&mut self, action: Action) -> ControlFlow<End> {
        let handle = self.session.handle.clone();
        let call_id = &self.call_id;
        let sent = match action {
            Action::Prompt(text) => crate::phone::prompt(&handle, text).await,
            Action::UserText(text) => handle.send_text(text).await,
            Action::HangUp(reason) => {
                if let Err(err) = self.control.hang_up().await {
                    tracing::error!(
                        call_id,
                        "hanging up through the platform failed: {err}; the call lasts until the platform ends it"
                    );
                }
                tracing::info!(call_id, ?reason, "the agent hung up");
                return ControlFlow::Break(End::AgentEnded(reason));
            }
            Action::Transfer { name, destination } => {
                match self.control.transfer(&destination).await {
                    Ok(()) => {
                        tracing::info!(call_id, target = %name, "call transferred");
                        return ControlFlow::Break(End::Transferred);
                    }
                    Err(err) => {
                        tracing::error!(call_id, target = %name, "the transfer failed: {err}");
                        let tell = self.policy.transfer_failed(Instant::now());
                        return Box::pin(self.execute(tell)).await;
                    }
                }
            }
        };
        match sent {
            Ok(()) => ControlFlow::Continue(()),
            Err(_) => ControlFlow::Break(End::Vanished),
        }
    }

    async fn on_session(&mut self, event: SessionEvent) -> ControlFlow<End> {
        self.policy.on_session(&event, Instant::now());
        self.state.metrics.observe(&event);
        let call_id = &self.call_id;
        match event {
            SessionEvent::Cost(report) => self.charge(report.cost_usd),
            SessionEvent::Dtmf { digit, .. } => return self.keypad(&digit).await,
            SessionEvent::SessionLimitNear { remaining } => {
                tracing::info!(call_id, ?remaining, "the call nears its time limit");
            }
            SessionEvent::Reconnecting {
                attempt, reason, ..
            } => {
                // The platform closes the sideband when the caller hangs up, and only a
                // re-attach tells that from a dropped connection: the first try is routine.
                if attempt <= 1 {
                    tracing::info!(
                        call_id,
                        attempt,
                        "the sideband closed ({reason}); re-attaching, or finding the call over"
                    );
                } else {
                    tracing::warn!(
                        call_id,
                        attempt,
                        "the sideband dropped ({reason}); re-attaching"
                    );
                }
            }
            SessionEvent::Reconnected { replayed_items, .. } => {
                tracing::info!(call_id, replayed_items, "the sideband re-attached");
                self.playback.reset();
            }
            SessionEvent::ToolCallFinished { name, duration, .. } => {
                tracing::info!(call_id, tool = %name, ?duration, "tool call finished");
            }
            SessionEvent::TurnFailed { failure } => {
                tracing::warn!(call_id, "a turn failed: {failure}");
            }
            SessionEvent::Closed { reason } => return ControlFlow::Break(End::Closed(reason)),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    /// A keypad press goes to the policy, which sends it (or a batch of them) as the agent
    /// file's `[phone.dtmf]` says; anything that is no key is logged and dropped.
    async fn keypad(&mut self, digit: &str) -> ControlFlow<End> {
        if crate::phone::dtmf::single_key(digit).is_none() {
            tracing::warn!(call_id = %self.call_id, "skipped a keypad event that is not 0-9, * or #");
            return ControlFlow::Continue(());
        }
        match self.policy.on_digit(digit, Instant::now()) {
            Some(action) => self.execute(action).await,
            None => ControlFlow::Continue(()),
        }
    }

    fn charge(&self, usd: Option<f64>) {
        phone::charge(&self.state, self.route, usd);
    }

    /// Hangs up unless the agent's side already did (a call the platform already ended
    /// answers 404, which is fine), closes the session charging its last costs, and records
    /// the outcome in the metrics and the history.
    async fn finish(mut self, end: End) {
        tracing::info!(call_id = %self.call_id, "SIP call ended: {end:?}");
        if end.needs_hang_up()
            && let Err(err) = self.control.hang_up().await
        {
            tracing::warn!(call_id = %self.call_id, "the hang-up did not go through: {err}");
        }
        // A call another node took over is that node's to record.
        let stored = match end {
            End::TakenOver => None,
            _ => self.stored.as_ref(),
        };
        phone::wind_down(
            &self.state,
            self.route,
            &mut self.session,
            stored,
            end.outcome(),
            &self.call_id,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_re_attach_that_finds_the_call_gone_means_the_caller_hung_up() {
        assert_eq!(
            End::Closed(CloseReason::CallEnded).outcome(),
            Outcome::CallerHungUp
        );
        let refused = End::Closed(CloseReason::Fatal {
            code: None,
            message: "the server at ws://x refused the WebSocket upgrade with HTTP 500".into(),
        });
        assert_eq!(refused.outcome(), Outcome::Failed);
    }
}
