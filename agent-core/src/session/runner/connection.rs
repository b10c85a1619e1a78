//! Replacing a connection that was lost or is about to expire: a new one comes out of the
//! session's [`ReconnectBudget`](crate::session::ReconnectBudget), is configured and replayed
//! into (see [`setup`](super::setup)), and then the response the old one cut off is settled.
//! Every wait here has a deadline, and the app can close the session meanwhile.

use std::time::{Duration, Instant};

use super::{Flow, Runner, platform::establish_again};
use crate::protocol::Item;
use crate::session::{
    Command,
    events::{CloseReason, SessionEvent, TurnFailure, human},
    sequencer::Step,
};

/// How long closing a connection we are leaving may take.
pub(super) const CLOSE_WAIT: Duration = Duration::from_secs(1);

impl Runner {
    /// Opens a new connection, configures it and replays the conversation, after a drop
    /// (`rollover == false`) or before the session's time limit. Tools keep running meanwhile;
    /// their outputs go out on the new connection. Gives up when the budget is spent, when
    /// the server refuses for good, or when the app closes the session meanwhile.
    pub(super) async fn replace_connection(
        &mut self,
        why: String,
        rollover: bool,
    ) -> Result<(), CloseReason> {
        let _ = tokio::time::timeout(CLOSE_WAIT, self.ws.close(None)).await;
        let mut reason = why;
        loop {
            let delay = self.take_attempt(rollover, &reason)?;
            if self.closed_while(tokio::time::sleep(delay)).await.is_none() {
                return Err(CloseReason::Requested);
            }
            let conversation = self.conversation_for_replay().await;
            let established = {
                let attempt = establish_again(&self.config, &conversation);
                match close_requested(&mut self.commands, &mut self.deferred, attempt).await {
                    Some(result) => result,
                    None => return Err(CloseReason::Requested),
                }
            };
            match established {
                Ok(established) => {
                    self.ws = established.ws;
                    self.early.extend(established.early);
                    self.accounting
                        .spans
                        .connection_replaced(established.session_id.as_deref(), rollover);
                    match self.reconnected(rollover, &reason).await {
                        Flow::Continue => return Ok(()),
                        Flow::Close(reason) => return Err(reason),
                        // The new connection failed at once: try again, out of the same budget.
                        Flow::Lost(why) | Flow::Rollover(why) => reason = why,
                    }
                }
                Err(err) if super::platform::call_gone(&self.config, &err) => {
                    return Err(CloseReason::CallEnded);
                }
                Err(err) if !err.is_retryable() => {
                    return Err(CloseReason::Fatal {
                        code: err.code(),
                        message: err.to_string(),
                    });
                }
                Err(err) => reason = err.to_string(),
            }
        }
    }

    /// The whole conversation, for a replay: read back from the history store when older
    /// items left memory. A store that cannot be read within the setup deadline costs the new
    /// session the older part of the conversation (the store still holds it), which the app
    /// is warned about; the session goes on with what memory holds.
    async fn conversation_for_replay(&mut self) -> Vec<(String, Item)> {
        if !self.config.ownership.replays() {
            return Vec::new(); // the platform still holds the conversation
        }
        let sink = match &self.config.history_sink {
            Some(sink) if self.log.evicted() > 0 => sink.clone(),
            _ => return self.log.entries(),
        };
        let wait = self.config.ready_timeout;
        let why = match tokio::time::timeout(wait, sink.load()).await {
            Ok(Ok(stored)) => return self.log.with_stored(stored),
            Ok(Err(error)) => error,
            Err(_) => format!("no answer within {}", human(wait)),
        };
        self.warn(&format!(
            "could not read the conversation back from the history store ({why}); the new \
             session gets only the last {} items",
            self.log.len() - self.log.evicted()
        ));
        self.log.entries()
    }

    /// Takes one new connection out of the budget and tells the app; returns how long to wait
    /// before dialling, or why the session ends.
    fn take_attempt(&mut self, rollover: bool, reason: &str) -> Result<Duration, CloseReason> {
        let delay = match self.budget.take(Instant::now(), rollover, fastrand::f64()) {
            Ok(delay) => delay,
            Err(spent) => {
                return Err(CloseReason::ConnectionLost {
                    message: format!(
                        "gave up after {} new connection(s) within {} without a completed response: {reason}",
                        spent.attempts,
                        human(spent.window)
                    ),
                });
            }
        };
        let attempt = self.budget.used();
        let max_attempts = self.budget.max_attempts(rollover);
        let reason = reason.to_owned();
        self.emit(if rollover {
            SessionEvent::RollingOver { reason }
        } else {
            SessionEvent::Reconnecting {
                attempt,
                max_attempts,
                delay,
                reason,
            }
        });
        self.outbox.drain();
        Ok(delay)
    }

    /// Runs `wait` unless the app closes the session first (`None`); other commands that
    /// arrive meanwhile are kept for later.
    async fn closed_while<T>(&mut self, wait: impl Future<Output = T>) -> Option<T> {
        close_requested(&mut self.commands, &mut self.deferred, wait).await
    }

    /// The bookkeeping after a new connection is configured and replayed into.
    async fn reconnected(&mut self, rollover: bool, why: &str) -> Flow {
        let now = Instant::now();
        // A platform-held call's time limit counts from its start, not from this attach.
        if self.config.ownership.replays() {
            self.connected_at = now;
        }
        self.last_frame = now;
        self.watchdog.reset(now);
        self.pending_create = None;
        self.response_tokens.clear();
        // Audio items of the old connection cannot be truncated on the new one.
        self.barge_in.connection_reset();
        let active = self.sequencer.active_response().map(str::to_owned);
        let cut = self.cut_response(active.as_deref());
        self.settle_cut_responses();
        if let Some(id) = active.as_ref().filter(|_| cut.ours) {
            self.sequencer.suppress_follow_up(id);
        }
        let mut steps = self.sequencer.connection_reset(cut.rerequest);
        if cut.counts_as_rerequest(steps.iter().any(|s| matches!(s, Step::CreateResponse))) {
            self.rerequests += 1;
        }
        if cut.fails_turn() {
            steps.extend(self.fail_turn(TurnFailure::ConnectionLost {
                reason: why.to_owned(),
            }));
        }
        let replayed_items = if self.config.ownership.replays() {
            self.log.len()
        } else {
            0
        };
        self.emit(SessionEvent::Reconnected {
            replayed_items,
            rollover,
        });
        self.flush_and_apply(steps).await
    }

    /// What the drop did to the response in flight (`active`, when it had started).
    fn cut_response(&self, active: Option<&str>) -> CutResponse {
        // A response we cancelled ourselves (the user spoke over it, the app asked) is not
        // asked for again just because the connection dropped before its end.
        let ours = active.is_some_and(|id| self.cancelled_by_us.contains(id));
        CutResponse {
            cut: self.sequencer.response_in_flight() && !self.sequencer.response_expected(),
            had_calls: active.is_some_and(|id| self.response_calls.contains_key(id)),
            ours,
            // On a platform-held call the platform may still be playing the response the
            // sideband lost: asking again would answer twice.
            rerequest: self.rerequests < self.budget.policy().rerequest_cut_responses
                && !ours
                && self.config.ownership.replays(),
        }
    }

    /// Responses cut off by the drop will not send `response.done`. Their calls that completed
    /// finish on their own: their items and outputs go out on the new connection and then the
    /// model is asked to go on, so it sees what already ran instead of being asked the same
    /// question again (which could run a side effect twice under a new call id). Output the
    /// old connection never finished leaves the log; calls running or finished keep their
    /// slots.
    fn settle_cut_responses(&mut self) {
        // The new session knows what was replayed: every call in the log (those that left
        // memory were done long ago, and only running calls are asked about).
        self.in_session.clear();
        let replayed: Vec<String> = self
            .log
            .items()
            .filter_map(|item| item.as_function_call().map(|c| c.call_id.clone()))
            .collect();
        for call_id in &replayed {
            self.in_session.insert(call_id);
        }
        for calls in self.response_calls.values_mut() {
            calls.done = true;
        }
        for (_, keys) in std::mem::take(&mut self.response_slots) {
            for key in keys {
                let running = key
                    .strip_prefix("call:")
                    .is_some_and(|call_id| self.executed.contains(call_id));
                if !running {
                    self.log.abandon(&key);
                }
            }
        }
        self.settle();
    }
}

/// The response a dropped connection cut off, and what to do about it.
#[derive(Debug, Clone, Copy)]
struct CutResponse {
    /// A response was in flight (requested or streaming), not merely expected from the server.
    cut: bool,
    /// It had made function calls: those finish and ask the model to go on by themselves.
    had_calls: bool,
    /// We cancelled it (barge-in, the app).
    ours: bool,
    /// The budget allows asking for it again, and it was not ours.
    rerequest: bool,
}

impl CutResponse {
    /// Asking again for the cut response uses up one re-request (when one was queued).
    fn counts_as_rerequest(self, create_queued: bool) -> bool {
        self.cut && !self.had_calls && create_queued
    }

    /// The turn fails: a response without calls was cut off and cannot be asked for again.
    fn fails_turn(self) -> bool {
        self.cut && !self.rerequest && !self.had_calls && !self.ours
    }
}

/// Runs `work` unless a `Close` command (or the end of every handle) comes first; other
/// commands are kept in `deferred`.
async fn close_requested<T>(
    commands: &mut tokio::sync::mpsc::Receiver<Command>,
    deferred: &mut Vec<Command>,
    work: impl Future<Output = T>,
) -> Option<T> {
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => return Some(done),
            command = commands.recv() => match command {
                None | Some(Command::Close) => return None,
                Some(other) => deferred.push(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CutResponse;

    fn cut(had_calls: bool, ours: bool, rerequest: bool) -> CutResponse {
        CutResponse {
            cut: true,
            had_calls,
            ours,
            rerequest,
        }
    }

    #[test]
    fn nothing_in_flight_means_nothing_to_settle() {
        let idle = CutResponse {
            cut: false,
            ..cut(false, false, false)
        };
        assert!(!idle.fails_turn());
        assert!(!idle.counts_as_rerequest(true));
    }

    #[test]
    fn a_cut_response_without_calls_is_asked_again_or_fails_the_turn() {
        assert!(cut(false, false, true).counts_as_rerequest(true));
        assert!(!cut(false, false, true).counts_as_rerequest(false));
        assert!(!cut(false, false, true).fails_turn());
        assert!(cut(false, false, false).fails_turn());
    }

    #[test]
    fn a_cut_response_with_calls_goes_on_through_its_outputs() {
        assert!(!cut(true, false, false).fails_turn());
        assert!(!cut(true, false, true).counts_as_rerequest(true));
    }

    #[test]
    fn a_response_we_cancelled_never_fails_the_turn_when_cut() {
        assert!(!cut(false, true, false).fails_turn());
    }
}
