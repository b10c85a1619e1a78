//! Running the model's function calls, and sending their outputs.
//!
//! Each call runs at most once, across reconnects (the `executed` set) and across restarts
//! (the calls an earlier run recorded). A call runs only after the durable record that it
//! started, so a crash while it runs is found after a restart. Its output goes back once every
//! call of its response finished and the response is done.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Flow, Runner};
use crate::{
    protocol::{ClientEvent, FunctionCallItem, Item, ItemStatus},
    session::{
        approval::{ApprovalRequest, Gate, Verdict},
        dispatch::{CallOutcome, CallRequest},
        events::{ApprovalKind, NotRun, SessionEvent},
        log::for_replay,
        sequencer::Step,
        spans::ToolOutcome,
    },
    tool::ToolError,
};

use super::{Input, OUTPUTS_DURABLE_WAIT, RECORD_WAIT};

impl Runner {
    /// Starts the call in `item` if it is a completed function call not seen before. A call
    /// whose item did not complete (its response was cancelled first) does not run.
    pub(super) async fn maybe_start_call(&mut self, response_id: &str, item: &Item) {
        let Some(call) = self.register_call(response_id, item) else {
            return;
        };
        if self.answer_early(response_id, call) || self.maybe_hand_off(response_id, call).await {
            return;
        }
        let request = CallRequest {
            response_id: response_id.to_owned(),
            call_id: call.call_id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        };
        if self.runs_in_background(&request.name) {
            self.start_background(request);
        } else {
            self.arm_filler(response_id);
            self.spawn_call(request);
        }
    }

    /// Takes on the calls a platform-held conversation was left with (their outputs never
    /// sent: the process that held the call died). They are handled as the calls of one
    /// response: a call whose record says it finished gets its recorded output, one that
    /// started and never finished is reported interrupted, one never started runs now; then,
    /// once every output is sent, the model is asked to go on. Returns what the session loop
    /// does next.
    pub(super) async fn adopt_calls(&mut self, calls: Vec<Item>) -> Flow {
        const ADOPTED: &str = "adopted_calls";
        tracing::info!(
            calls = calls.len(),
            "adopting the conversation's unanswered calls"
        );
        self.sequencer.response_created(ADOPTED);
        for item in &calls {
            self.maybe_start_call(ADOPTED, item).await;
        }
        // The response that made these calls ended long ago, on the platform.
        if let Some(adopted) = self.response_calls.get_mut(ADOPTED) {
            adopted.done = true;
        }
        let steps = self.sequencer.response_done(ADOPTED);
        if let Flow::Close(reason) = self.apply(steps).await {
            return Flow::Close(reason);
        }
        match self.flush_outputs().await {
            Ok(steps) => self.apply(steps).await,
            Err(flow) => flow,
        }
    }

    /// Notes a completed function call under its response. Returns it when it has never run:
    /// a call runs at most once, even when a response replayed after a reconnect asks for it
    /// again (that response then waits for its output, or, when that was already delivered,
    /// gets its follow-up once it is done).
    fn register_call<'a>(
        &mut self,
        response_id: &str,
        item: &'a Item,
    ) -> Option<&'a FunctionCallItem> {
        let Item::FunctionCall(call) = item else {
            return None;
        };
        if call
            .status
            .as_ref()
            .is_some_and(|status| *status != ItemStatus::Completed)
        {
            return None;
        }
        let call_id = call.call_id.clone();
        if call_id.is_empty() {
            self.warn(&format!(
                "function call `{}` has no call_id; it cannot be answered",
                call.name
            ));
            return None;
        }
        if !self.seen_calls.insert((&call_id, response_id)) {
            return None;
        }
        self.in_session.insert(&call_id);
        let calls = self
            .response_calls
            .entry(response_id.to_owned())
            .or_default();
        let first_of_response = calls.order.is_empty();
        if !calls.order.contains(&call_id) {
            self.sequencer.call_started(response_id, &call_id);
            calls.order.push(call_id.clone());
            calls.items.insert(call_id.clone(), item.clone());
        }
        if first_of_response {
            self.count_tool_round(response_id);
        }
        self.executed.insert(&call_id).then_some(call)
    }

    /// Answers a call without running it when its response is over the tool-round limit, or
    /// when an earlier run recorded it (its stored output, or "interrupted"). Returns whether
    /// it did.
    fn answer_early(&mut self, response_id: &str, call: &FunctionCallItem) -> bool {
        let request = CallRequest {
            response_id: response_id.to_owned(),
            call_id: call.call_id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        };
        if self.over_limit.contains(response_id) {
            let limit = self.config.max_tool_rounds;
            let output = ToolError::RoundLimit { limit }.to_model_output();
            self.answered_early(&request, NotRun::ToolRoundLimit);
            self.answer_without_running(request, NotRun::ToolRoundLimit, output);
            return true;
        }
        let Some(prior) = self.prior.remove(&request.call_id) else {
            return false;
        };
        let (why, output) = match prior {
            Some(output) => (NotRun::AlreadyRan, output),
            None => (
                NotRun::Interrupted,
                ToolError::Interrupted {
                    tool: request.name.clone(),
                }
                .to_model_output(),
            ),
        };
        self.answered_early(&request, why);
        self.answer_without_running(request, why, output);
        true
    }

    /// The span of a call answered without a task.
    fn answered_early(&mut self, request: &CallRequest, why: NotRun) {
        self.accounting.spans.tool_answered(
            &request.response_id,
            &request.call_id,
            &request.name,
            ToolOutcome::not_run(why),
        );
    }

    /// Runs a call on its own task, with the cancellation of its response; when there is a
    /// history store, only after the durable record that it started (or [`RECORD_WAIT`]).
    /// A background call gets its own, longer deadline.
    pub(super) fn spawn_call(&mut self, request: CallRequest) {
        let token = self
            .response_tokens
            .get(&request.response_id)
            .map(CancellationToken::child_token)
            .unwrap_or_else(|| self.shutdown.child_token());
        let span =
            self.accounting
                .call_started(&request.response_id, &request.call_id, &request.name);
        self.emit(SessionEvent::ToolCallStarted {
            call_id: request.call_id.clone(),
            name: request.name.clone(),
            arguments: request.arguments.clone(),
        });
        let gate = self.open_approval(&request);
        let dispatcher = if self.background.runs(&request.call_id) {
            self.dispatcher
                .with_timeout(self.config.slow_tools.background_timeout)
        } else {
            self.dispatcher.clone()
        };
        let task = match &self.config.history_sink {
            Some(sink) => {
                let recorded =
                    sink.call_started(&request.call_id, &request.name, &request.arguments);
                dispatcher.spawn_recorded(
                    &mut self.calls,
                    request.clone(),
                    token,
                    recorded,
                    RECORD_WAIT,
                    gate,
                    span,
                )
            }
            None => dispatcher.spawn(&mut self.calls, request.clone(), token, gate, span),
        };
        self.tasks.insert(task, (request, Instant::now()));
    }

    /// Opens the wait for approval of `request` when its tool needs one, and announces it
    /// (the slot is open before anyone can answer).
    fn open_approval(&mut self, request: &CallRequest) -> Option<Gate> {
        let policy = &self.config.approval;
        if !policy.applies_to(&request.name) {
            return None;
        }
        let gate = self.approvals.open(&request.call_id, policy.timeout);
        self.approval_requested(ApprovalRequest {
            id: request.call_id.clone(),
            kind: ApprovalKind::Tool,
            name: request.name.clone(),
            arguments: request.arguments.clone(),
            timeout: policy.timeout,
        });
        Some(gate)
    }

    /// Announces a wait for approval to the trace, the app and the approver.
    pub(super) fn approval_requested(&mut self, request: ApprovalRequest) {
        self.note(
            "approval_requested",
            &serde_json::json!({"id": request.id, "name": request.name, "arguments": request.arguments, "timeout_secs": request.timeout.as_secs_f64()}),
        );
        if let Some(approver) = &self.config.approver {
            approver.requested(&request, self.approvals.answerer(&request.id));
        }
        let ApprovalRequest {
            id,
            kind,
            name,
            arguments,
            timeout,
        } = request;
        self.emit(SessionEvent::ApprovalRequested {
            id,
            kind,
            name,
            arguments,
            timeout,
        });
    }

    /// A wait for approval ended: the trace and the app learn how.
    pub(super) fn approval_decided(&mut self, id: &str, name: &str, verdict: &Verdict) {
        let how = verdict.describe();
        if let Some(approver) = &self.config.approver {
            approver.decided(id, verdict);
        }
        self.note(
            "approval_decided",
            &serde_json::json!({"id": id, "name": name, "approved": verdict.approved(), "how": how}),
        );
        self.emit(SessionEvent::ApprovalDecided {
            id: id.to_owned(),
            name: name.to_owned(),
            approved: verdict.approved(),
            how,
        });
    }

    /// One more round of tool calls in this turn; past `max_tool_rounds` the response's calls
    /// are answered without running, and the turn ends.
    fn count_tool_round(&mut self, response_id: &str) {
        let limit = self.config.max_tool_rounds;
        if limit > 0 && self.tool_rounds >= limit {
            self.over_limit.insert(response_id.to_owned());
            self.sequencer.suppress_follow_up(response_id);
        } else {
            self.tool_rounds += 1;
        }
    }

    /// Answers a call with `output` without running its tool: it is sent with the other
    /// outputs of its response, and recorded as finished so it never runs later either.
    fn answer_without_running(&mut self, request: CallRequest, why: NotRun, output: String) {
        let CallRequest {
            call_id,
            name,
            arguments,
            ..
        } = request;
        if why != NotRun::AlreadyRan
            && let Some(sink) = &self.config.history_sink
        {
            sink.call_finished(&call_id, &output);
        }
        self.finished.insert(
            call_id.clone(),
            Item::function_call_output(call_id.clone(), output.clone()),
        );
        self.emit(SessionEvent::ToolCallNotRun {
            call_id,
            name,
            arguments,
            why,
            output,
        });
    }

    /// A call task ended: with its outcome, or with a panic that escaped it (a `Drop` that
    /// panicked during a timeout, say), which still answers the call.
    pub(super) async fn on_call_joined(
        &mut self,
        joined: Result<(tokio::task::Id, CallOutcome), tokio::task::JoinError>,
    ) -> Flow {
        let outcome = match joined {
            Ok((task, outcome)) => {
                self.tasks.remove(&task);
                outcome
            }
            Err(err) => {
                let Some((request, started)) = self.tasks.remove(&err.id()) else {
                    return Flow::Continue;
                };
                let result = if err.is_panic() {
                    Err(ToolError::from_panic(err.into_panic().as_ref()))
                } else {
                    Err(ToolError::Cancelled)
                };
                CallOutcome {
                    request,
                    duration: started.elapsed(),
                    result,
                    not_run: None,
                    approval: None,
                }
            }
        };
        self.on_call_done(outcome).await
    }

    async fn on_call_done(&mut self, outcome: CallOutcome) -> Flow {
        let outcome = match self.background_done(outcome).await {
            Ok(flow) => return flow,
            Err(outcome) => outcome,
        };
        let output = outcome.output_text();
        self.call_settled(&outcome);
        let CallOutcome {
            request,
            duration,
            result,
            not_run,
            ..
        } = outcome;
        if let Some(why) = not_run {
            // The store knew the call (an earlier run, or an id this session let go of).
            self.answer_without_running(request, why, output);
        } else {
            if let Some(sink) = &self.config.history_sink {
                sink.call_finished(&request.call_id, &output);
            }
            let item = Item::function_call_output(request.call_id.clone(), output.clone());
            self.finished.insert(request.call_id.clone(), item);
            self.emit(SessionEvent::ToolCallFinished {
                call_id: request.call_id,
                name: request.name,
                arguments: request.arguments,
                duration,
                result: result.map_err(|_| output),
            });
        }
        match self.flush_outputs().await {
            Ok(steps) => self.apply(steps).await,
            Err(flow) => flow,
        }
    }

    /// What every finished call does first, in the background or not: its time stops being
    /// counted, its span learns how it ended, and the trace and the app learn how its wait for
    /// approval ended.
    pub(super) fn call_settled(&mut self, outcome: &CallOutcome) {
        let request = &outcome.request;
        self.accounting.call_finished(
            &request.call_id,
            ToolOutcome::of(&outcome.result, outcome.not_run),
            outcome.duration,
        );
        if let Some(verdict) = &outcome.approval {
            self.approval_decided(&request.call_id, &request.name, verdict);
        }
    }

    /// Sends the outputs of every finished response whose calls have all finished, in call
    /// order, and tells the sequencer; returns the sequencer's next steps.
    pub(super) async fn flush_outputs(&mut self) -> Result<Vec<Step<Input>>, Flow> {
        let ready: Vec<String> = self
            .response_calls
            .iter()
            .filter(|(_, calls)| {
                calls.ready(|c| self.delivered.contains(c) || self.finished.contains_key(c))
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut steps = Vec::new();
        let mut wire = Vec::new();
        let mut delivering = false;
        for response_id in ready {
            let Some(calls) = self.response_calls.remove(&response_id) else {
                continue;
            };
            // The log and the sequencer learn everything first, and only then do the frames go
            // out: if a write fails halfway, the replay on the next connection carries what
            // did not leave, and no call is left waiting for an output that never comes.
            for call_id in &calls.order {
                let Some(call) = calls.items.get(call_id) else {
                    continue;
                };
                self.record(format!("call:{call_id}"), call.clone());
                if self.in_session.insert(call_id) {
                    // A call of a response cut off by a drop: the new session never saw it.
                    wire.push(ClientEvent::conversation_item_create(for_replay(call)));
                }
            }
            for call_id in &calls.order {
                if let Some(item) = self.finished.remove(call_id) {
                    self.record(format!("output:{call_id}"), item.clone());
                    self.delivered.insert(call_id);
                    delivering = true;
                    wire.push(ClientEvent::conversation_item_create(item));
                    self.accounting.output_sent(call_id);
                }
            }
            for call_id in &calls.order {
                steps.extend(self.sequencer.call_finished(&response_id, call_id));
            }
        }
        if delivering {
            self.outputs_durable().await;
        }
        for event in wire {
            self.send(event).await?;
        }
        Ok(steps)
    }

    /// Waits, within [`OUTPUTS_DURABLE_WAIT`], until the store holds what this session is
    /// about to say, when its sink asks for that (see
    /// [`HistorySink::durable_before_outputs`](crate::session::HistorySink::durable_before_outputs)):
    /// only calls the platform holds can be taken over by another node. A store that fails or
    /// is slow costs that guarantee, not the call: the outputs go out anyway, with a warning.
    async fn outputs_durable(&mut self) {
        if !self.config.ownership.is_platform_held() {
            return;
        }
        let Some(barrier) = self
            .config
            .history_sink
            .as_ref()
            .and_then(|sink| sink.durable_before_outputs())
        else {
            return;
        };
        let problem = match tokio::time::timeout(OUTPUTS_DURABLE_WAIT, barrier).await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => format!("the history store failed ({error})"),
            Err(_) => format!("the history store took over {OUTPUTS_DURABLE_WAIT:?}"),
        };
        self.warn(&format!(
            "sent tool outputs before they were stored: {problem}; a node that takes this \
             call over may answer them again"
        ));
    }
}
