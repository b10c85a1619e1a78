//! `error` events: an expired session rolls over, a fatal error ends the session, and an error
//! that answers our `response.create` ends the request (or, for the usual race with the
//! server's own response, puts it back in the queue). Which error answers a request is a plain
//! function, tested below.

use std::time::Instant;

use super::{Flow, Runner};
use crate::{
    protocol::{ErrorEvent, error_codes},
    session::events::{CloseReason, SessionEvent, TurnFailure},
};

impl Runner {
    pub(super) async fn on_error(&mut self, event: ErrorEvent) -> Flow {
        let code = event.error.code.clone();
        let message = event.error.message.clone();
        if event.error.has_code(error_codes::SESSION_EXPIRED) {
            return Flow::Rollover(format!("the server expired the session: {message}"));
        }
        if event
            .error
            .has_code(error_codes::RESPONSE_CANCEL_NOT_ACTIVE)
        {
            // Our cancel (a barge-in, a guardrail) met a response that had just ended: its
            // `response.done` is on the way, and nothing was lost.
            self.warn(&format!(
                "a cancel arrived after its response ended ({message})"
            ));
            return Flow::Continue;
        }
        let fatal = event.error.is_fatal();
        self.emit(SessionEvent::Error {
            code: code.clone(),
            message: message.clone(),
            fatal,
        });
        if fatal {
            return Flow::Close(CloseReason::Fatal { code, message });
        }
        let already_active =
            code.as_deref() == Some(error_codes::CONVERSATION_ALREADY_HAS_ACTIVE_RESPONSE);
        let answers = answers_create(
            event.error.event_id.as_deref(),
            self.pending_create.as_deref(),
            already_active,
            self.sequencer.create_pending(),
        );
        if !answers {
            return Flow::Continue;
        }
        if let Some(flow) = self.filler_refused().await {
            return flow;
        }
        self.pending_create = None;
        if already_active && let Some(flow) = self.create_raced().await {
            return flow;
        }
        // The server will not start this response: the request is over, and so is the turn.
        let steps = self.fail_turn(TurnFailure::Refused { code, message });
        self.flush_and_apply(steps).await
    }

    /// Our `response.create` met another active response. Returns `None` when the request is
    /// over after all.
    async fn create_raced(&mut self) -> Option<Flow> {
        if self.sequencer.active_response().is_some() {
            // The usual race: the server's turn detection started a response first. Ours goes
            // out again once that one is done.
            let steps = self.sequencer.create_refused();
            return Some(self.apply(steps).await);
        }
        // A response we have not seen is active: wait for it (or a short while), once.
        if self.rerequests < self.budget.policy().rerequest_cut_responses {
            self.rerequests += 1;
            self.watchdog.progress(Instant::now());
            let steps = self.sequencer.create_refused();
            return Some(self.apply(steps).await);
        }
        None
    }
}

/// Whether an error answers our pending `response.create`: it does when it names it. A server
/// that does not echo event ids gets the benefit of the doubt only for the one error that can
/// only be about a create; anything else unanswered is left to the watchdog.
fn answers_create(
    error_event_id: Option<&str>,
    pending_create: Option<&str>,
    already_active: bool,
    create_pending: bool,
) -> bool {
    match error_event_id {
        Some(id) => pending_create == Some(id),
        None => already_active && create_pending,
    }
}

#[cfg(test)]
mod tests {
    use super::answers_create;

    #[test]
    fn an_error_naming_our_create_answers_it() {
        assert!(answers_create(
            Some("create_1"),
            Some("create_1"),
            false,
            true
        ));
        assert!(!answers_create(
            Some("create_1"),
            Some("create_2"),
            true,
            true
        ));
        assert!(!answers_create(Some("create_1"), None, true, false));
    }

    #[test]
    fn without_an_event_id_only_the_active_response_error_answers_a_pending_create() {
        assert!(answers_create(None, Some("create_1"), true, true));
        assert!(!answers_create(None, Some("create_1"), false, true));
        assert!(!answers_create(None, None, true, false));
    }
}
