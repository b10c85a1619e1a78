//! A response's end (`response.done`): its calls start if they had not, its slots in the log
//! are settled, it is accounted for, and a response that stalled, failed or was cut off ends
//! the turn (or, once, is asked for again). How a final status reads as a turn failure is a
//! plain function, tested below.

use std::time::Instant;

use super::{Flow, Input, Runner};
use crate::{
    protocol::{Response, ResponseDone, StatusDetails},
    session::{
        events::{SessionEvent, TurnFailure},
        sequencer::Step,
    },
};

impl Runner {
    pub(super) async fn on_response_done(&mut self, done: ResponseDone) -> Flow {
        // A filler is no part of the turn: it only frees the slot (see `filler`).
        if self.filler.is_active(&done.response.id) {
            return self.on_filler_done(done).await;
        }
        let ResponseDone {
            response,
            malformed,
            ..
        } = done;
        let id = response.id.clone();
        for note in &malformed {
            self.warn(&format!(
                "a malformed response.done for {id} was read in part: {note}"
            ));
        }
        // Calls whose `response.output_item.done` we missed still run if their item completed;
        // MCP approval requests missed the same way are still asked.
        for item in &response.output {
            self.maybe_start_call(&id, item).await;
            self.maybe_ask_mcp_approval(&id, item);
        }
        let status = status_of(&response);
        let (stalled, ours) = self.end_response(&id, &status, &response);
        // After `end_response` settled the slots: stopped answers there are placeholders.
        self.guard_response_done(&id);
        let mut steps = self.sequencer.response_done(&id);
        let accounted = self
            .accounting
            .response_done(&id, &status, response.usage.as_ref());
        self.emit(SessionEvent::ResponseDone {
            response_id: id.clone(),
            status: status.clone(),
            usage: response.usage.clone(),
        });
        self.emit_all(accounted);
        let failure = if stalled {
            self.ask_again_after_stall(&mut steps)
        } else {
            turn_failure(&status, response.status_details.as_ref(), ours)
        };
        if self.over_limit.remove(&id) {
            let failure = TurnFailure::ToolRounds {
                limit: self.config.max_tool_rounds,
            };
            self.accounting.spans.turn_failed(&failure);
            self.emit(SessionEvent::TurnFailed { failure });
        }
        if let Some(failure) = failure {
            steps.extend(self.fail_turn(failure));
        }
        self.flush_and_apply(steps).await
    }

    /// The bookkeeping of a response's end. Returns whether it is one we cancelled because it
    /// stalled (one that says it completed anyway is taken at its word and not asked for
    /// again), and whether we (barge-in, the app) cancelled it.
    fn end_response(&mut self, id: &str, status: &str, response: &Response) -> (bool, bool) {
        let stalled = self.watchdog.done(id) && status != "completed";
        let ours = self.cancelled_by_us.remove(id);
        if let Some(token) = self.response_tokens.remove(id)
            && status == "cancelled"
        {
            token.cancel();
        }
        if status == "completed" {
            self.rerequests = 0;
            self.budget.response_completed();
        } else {
            // A cancelled, failed or cut-off response's calls deliver their outputs, but never
            // ask the model to go on: the user interrupted, or it went wrong.
            self.sequencer.suppress_follow_up(id);
        }
        if let Some(calls) = self.response_calls.get_mut(id) {
            calls.done = true;
        }
        self.release_slots(id, response);
        self.barge_in.on_response_done(id, Instant::now());
        (stalled, ours)
    }

    /// A response we cancelled for stalling is asked for again, while the budget for that
    /// lasts; then the turn fails.
    fn ask_again_after_stall(&mut self, steps: &mut Vec<Step<Input>>) -> Option<TurnFailure> {
        if self.rerequests < self.budget.policy().rerequest_cut_responses {
            self.rerequests += 1;
            steps.extend(self.sequencer.request_again());
            None
        } else {
            Some(TurnFailure::Stalled {
                waited: self.watchdog.response_idle(),
                started: true,
            })
        }
    }
}

/// A response's final status as the wire spells it (`completed` when the server left it out).
fn status_of(response: &Response) -> String {
    response
        .status
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|| "completed".to_owned())
}

/// How a response that did not stall ended the turn: `None` when the turn goes on as usual.
/// `ours` says that we (barge-in, the app) asked for the cancel.
fn turn_failure(status: &str, details: Option<&StatusDetails>, ours: bool) -> Option<TurnFailure> {
    let reason = details
        .and_then(|d| d.reason.as_ref())
        .map(|r| r.as_str().to_owned());
    match status {
        "failed" => Some(TurnFailure::Failed {
            reason: details.and_then(|d| d.error.as_ref()).map(|e| {
                [e.kind.as_deref(), e.code.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ")
            }),
        }),
        "incomplete" => Some(TurnFailure::Incomplete { reason }),
        // The user speaking over it, or our own cancel, is how conversations go; a cancel
        // nobody here asked for is not.
        "cancelled" if !ours && reason.as_deref() != Some("turn_detected") => {
            Some(TurnFailure::Cancelled { reason })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{StatusError, StatusReason};

    fn reason(reason: StatusReason) -> StatusDetails {
        StatusDetails {
            reason: Some(reason),
            ..StatusDetails::default()
        }
    }

    #[test]
    fn a_missing_status_means_completed() {
        assert_eq!(status_of(&Response::default()), "completed");
        assert_eq!(turn_failure("completed", None, false), None);
    }

    #[test]
    fn a_failed_response_names_the_error_type_and_code() {
        let details = StatusDetails {
            error: Some(StatusError {
                kind: Some("server_error".into()),
                code: Some("overloaded".into()),
            }),
            ..StatusDetails::default()
        };
        assert_eq!(
            turn_failure("failed", Some(&details), false),
            Some(TurnFailure::Failed {
                reason: Some("server_error: overloaded".into())
            })
        );
        assert_eq!(
            turn_failure("failed", None, false),
            Some(TurnFailure::Failed { reason: None })
        );
    }

    #[test]
    fn an_incomplete_response_says_why() {
        let details = reason(StatusReason::MaxOutputTokens);
        assert_eq!(
            turn_failure("incomplete", Some(&details), true),
            Some(TurnFailure::Incomplete {
                reason: Some("max_output_tokens".into())
            })
        );
    }

    #[test]
    fn only_a_cancel_nobody_here_asked_for_fails_the_turn() {
        let barge_in = reason(StatusReason::TurnDetected);
        assert_eq!(turn_failure("cancelled", Some(&barge_in), false), None);
        let client = reason(StatusReason::ClientCancelled);
        assert_eq!(turn_failure("cancelled", Some(&client), true), None);
        assert_eq!(
            turn_failure("cancelled", Some(&client), false),
            Some(TurnFailure::Cancelled {
                reason: Some("client_cancelled".into())
            })
        );
        assert_eq!(
            turn_failure("cancelled", None, false),
            Some(TurnFailure::Cancelled { reason: None })
        );
    }
}
