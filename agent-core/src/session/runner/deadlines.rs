//! What the loop does when the [`Watchdog`](crate::session::watchdog) finds something overdue.
//!
//! | overdue | what happens |
//! | --- | --- |
//! | `response.create` unanswered | the connection is replaced and the request sent again, once; then the turn fails |
//! | a response sends nothing | it is cancelled; once its `response.done` arrives it is asked for again, once; then the turn fails |
//! | that cancel is unanswered | the connection is replaced (a cut response is asked for again, once) |
//! | the server's own response does not come | the slot is freed for queued input |
//! | the user "speaks" for longer than `response_idle` without a stop | queued input goes on |

use std::time::Instant;

use super::{Flow, Runner};
use crate::{
    protocol::ClientEvent,
    session::{
        events::{TurnFailure, human},
        watchdog::Overdue,
    },
};

impl Runner {
    pub(super) async fn on_deadline(&mut self) -> Flow {
        let now = Instant::now();
        let Some(overdue) = self.watchdog.overdue(self.in_flight(), now) else {
            return Flow::Continue;
        };
        let waited = self.watchdog.response_idle();
        match overdue {
            Overdue::CreateUnanswered => {
                if let Some(flow) = self.filler_lapsed().await {
                    return flow;
                }
                self.pending_create = None;
                if self.rerequests < self.budget.policy().rerequest_cut_responses {
                    // The server ignores us on this connection: a fresh one is the best chance.
                    return Flow::Lost(format!(
                        "the server did not answer response.create within {}",
                        human(waited)
                    ));
                }
                self.watchdog.progress(now);
                let steps = self.fail_turn(TurnFailure::Stalled {
                    waited,
                    started: false,
                });
                self.flush_and_apply(steps).await
            }
            Overdue::Stalled(response_id) => self.cancel_stalled(&response_id).await,
            Overdue::CancelUnanswered(response_id) => Flow::Lost(format!(
                "response {response_id} sent nothing for {}, and the server did not confirm its cancellation in time",
                human(waited)
            )),
            Overdue::SpeechLapsed => {
                self.watchdog.speech_over();
                let steps = self.sequencer.input_ended();
                self.apply(steps).await
            }
            Overdue::ExpectationLapsed => {
                self.watchdog.progress(now);
                let steps = self.sequencer.expectation_lapsed();
                self.apply(steps).await
            }
        }
    }

    /// Cancels a response that sent nothing for too long, and starts waiting for its end.
    async fn cancel_stalled(&mut self, response_id: &str) -> Flow {
        let waited = self.watchdog.response_idle();
        self.warn(&format!(
            "response {response_id} sent nothing for {}; cancelling it to ask again",
            human(waited)
        ));
        self.watchdog.cancelled(response_id, Instant::now());
        match self
            .send(ClientEvent::response_cancel_id(response_id))
            .await
        {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }
}
