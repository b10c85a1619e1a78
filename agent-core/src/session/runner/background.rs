//! Background calls: the model reads "started" at once, and the result follows on its own.
//!
//! The call is recorded started (and runs at most once) like any other; its "started" output
//! goes back with the other outputs of its response, so that response's follow-up is not held
//! up. When the tool finishes, its output is what the history store records as the call's
//! output, and a user message labelled with the call id brings it into the conversation:
//! queued in the sequencer, so it goes out once the model is idle and never over a response;
//! logged under the call id when it is sent, so a replay after a reconnect carries it once.

use std::collections::HashMap;

use super::{Flow, Input, Runner};
use crate::{
    protocol::Item,
    session::{
        dispatch::{CallOutcome, CallRequest},
        events::{NotRun, SessionEvent},
        slow,
    },
    tool::ToolError,
};

/// The calls running in the background: call id → tool name.
#[derive(Debug, Default)]
pub(super) struct Background {
    running: HashMap<String, String>,
}

impl Background {
    /// Whether `call_id` runs in the background.
    pub(super) fn runs(&self, call_id: &str) -> bool {
        self.running.contains_key(call_id)
    }
}

impl Runner {
    /// Whether calls of `tool` run in the background: the agent file names it, or its code
    /// says so (the tools of an agent reached by a handoff too).
    pub(super) fn runs_in_background(&self, tool: &str) -> bool {
        self.config.slow_tools.background.contains(tool) || self.dispatcher.runs_in_background(tool)
    }

    /// Starts a background call: "started" is its output for the model, at once.
    pub(super) fn start_background(&mut self, request: CallRequest) {
        self.background
            .running
            .insert(request.call_id.clone(), request.name.clone());
        let started = Item::function_call_output(request.call_id.clone(), slow::started_output());
        self.finished.insert(request.call_id.clone(), started);
        self.note(
            "background_started",
            &serde_json::json!({"call_id": request.call_id, "name": request.name}),
        );
        self.spawn_call(request);
    }

    /// A background call ended: its output is recorded as the call's, and its result queued
    /// for the conversation. Hands `outcome` back when it is not a background call's.
    pub(super) async fn background_done(
        &mut self,
        outcome: CallOutcome,
    ) -> Result<Flow, CallOutcome> {
        if self
            .background
            .running
            .remove(&outcome.request.call_id)
            .is_none()
        {
            return Err(outcome);
        }
        let output = outcome.output_text();
        self.call_settled(&outcome);
        let CallOutcome {
            request,
            duration,
            result,
            not_run,
            ..
        } = outcome;
        if not_run != Some(NotRun::AlreadyRan)
            && let Some(sink) = &self.config.history_sink
        {
            sink.call_finished(&request.call_id, &output);
        }
        let text = slow::result_message(&request.call_id, &request.name, &output);
        let call_id = request.call_id.clone();
        // Cancelled with its response (the user cut it off) or the session: nobody waits for
        // the result any more, and no response is asked for it.
        let cancelled = matches!(result, Err(ToolError::Cancelled));
        match not_run {
            // The store answered for it: an earlier run delivered this result already.
            Some(NotRun::AlreadyRan) => {
                self.emit_not_run(request, NotRun::AlreadyRan, output);
                return Ok(Flow::Continue);
            }
            Some(why) => self.emit_not_run(request, why, output),
            None => self.emit(SessionEvent::ToolCallFinished {
                call_id: request.call_id,
                name: request.name,
                arguments: request.arguments,
                duration,
                result: result.map_err(|_| output),
            }),
        }
        if cancelled {
            return Ok(Flow::Continue);
        }
        let steps = self
            .sequencer
            .submit(Input::BackgroundResult { call_id, text });
        Ok(self.apply(steps).await)
    }

    fn emit_not_run(&mut self, request: CallRequest, why: NotRun, output: String) {
        self.emit(SessionEvent::ToolCallNotRun {
            call_id: request.call_id,
            name: request.name,
            arguments: request.arguments,
            why,
            output,
        });
    }
}
