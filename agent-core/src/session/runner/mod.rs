//! The session loop: one task per session that owns the socket, the sequencer and the calls.
//!
//! Everything that touches a session's state happens on this one task, so there are no locks on
//! the hot path: wire frames, app commands, finished tool calls and deadlines arrive through one
//! `select!`. The loop never waits for the app (events go through the [`Outbox`]), so the socket
//! is read, and pings answered, whatever the app does.
//!
//! Each file holds one concern:
//!
//! - [`server_events`]: event routing, which handler each server event goes to;
//! - [`items`]: where each item takes its place in the conversation log;
//! - [`speech`]: the user's spoken turns, and barge-in;
//! - [`responses`]: a response's end, and how it ends the turn;
//! - [`errors`]: `error` events, and refused requests;
//! - [`calls`]: running the model's function calls and sending their outputs;
//! - [`background`]: calls that answer "started" at once and deliver their result later;
//! - [`filler`]: a short out-of-band line while a response's calls run long;
//! - [`handoffs`]: a transfer call, which switches the session to another agent;
//! - [`guardrails`]: checking input and output, and stopping what trips a guardrail;
//! - [`mcp_approvals`]: hosted MCP servers' approval requests, and sending the decisions;
//! - [`input`]: the app's commands and the sequencer's steps;
//! - [`deadlines`]: what happens when a response stalls;
//! - [`wire`]: frames in and out of the current connection;
//! - [`setup`]: connecting, configuring and replaying a connection;
//! - [`connection`]: replacing a connection that was lost or is about to expire;
//! - [`platform`]: what differs when the platform holds the call (re-attach, the time limit).

mod background;
mod calls;
mod connection;
mod deadlines;
mod errors;
mod filler;
mod guardrails;
mod handoffs;
mod input;
mod items;
mod mcp_approvals;
mod platform;
mod responses;
mod server_events;
mod setup;
mod speech;
mod wire;

use std::{
    collections::{HashMap, HashSet, VecDeque},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use tokio::{sync::mpsc, task::JoinSet};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

pub(crate) use setup::establish;

use super::{
    Command, SessionConfig,
    accounting::Accounting,
    dispatch::{CallOutcome, CallRequest, Dispatcher},
    events::{CloseReason, SessionEvent},
    log::ConversationLog,
    outbox::{Outbox, TooSlow},
    recent::RecentIds,
    reconnect::ReconnectBudget,
    sequencer::Sequencer,
    transport::WsStream,
    watchdog::{InFlight, Watchdog},
};
use crate::protocol::Item;

/// Input the app queued until the conversation is quiet.
#[derive(Debug)]
pub(crate) enum Input {
    /// A typed user message.
    Text(String),
    /// Commit the input audio buffer (push-to-talk).
    CommitAudio,
    /// Nothing to add: just ask for a response.
    Respond,
    /// A note from the runtime to the model (a system message), then a response: why a
    /// guardrail stopped something, and what to do instead. `withheld` first puts a
    /// placeholder user message where typed text was withheld, so the turn is the user's.
    Note {
        /// The placeholder for the user's withheld message, if there was one.
        withheld: Option<String>,
        /// What the model is told.
        note: String,
    },
    /// A background call's result (a user message labelled with the call), then a response.
    BackgroundResult {
        /// The call it answers, the key it is stored under.
        call_id: String,
        /// The message's text.
        text: String,
    },
}

/// How many recent call ids the session keeps in memory when a history store answers for
/// older ones.
const CALLS_WINDOW: usize = 256;
/// How long a tool waits for the durable record that it started before it runs anyway.
const RECORD_WAIT: Duration = Duration::from_secs(5);
/// What the model reads after a takeover (see [`SessionConfig::taken_over`]).
const TAKEOVER_NOTE: &str = "The connection between this call and its tools was down for a \
    few seconds. Any tool call you made in that time was not received and has no result: if \
    you still need one, call the tool again. Do not mention this unless the user asks why \
    there was a pause.";
/// How long a call's outputs wait for the store before they go out anyway (see
/// `Runner::outputs_durable`).
const OUTPUTS_DURABLE_WAIT: Duration = Duration::from_secs(5);
/// How long the session's last events may wait for the app once the session ended.
const FINAL_EVENTS_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Runner {
    config: SessionConfig,
    ws: WsStream,
    /// Frames the connection's setup read before the configuration was confirmed, handled
    /// first when the loop starts (see [`setup::Established::early`]).
    early: VecDeque<Utf8Bytes>,
    outbox: Outbox,
    /// Set when the app fell too far behind; the loop ends the session.
    too_slow: Option<TooSlow>,
    commands: mpsc::Receiver<Command>,
    /// Commands that arrived while a connection was being replaced, handled after it.
    deferred: Vec<Command>,
    dispatcher: Dispatcher,
    sequencer: Sequencer<Input>,
    calls: JoinSet<CallOutcome>,
    /// The running call of each task, so a panic that escapes a task still answers its call.
    tasks: HashMap<tokio::task::Id, (CallRequest, Instant)>,
    /// Call ids started (or answered without running), so a call runs at most once: every
    /// one without a history store; with one, the recent ones, the store answering for the
    /// rest (see [`HistorySink::call_started`](crate::session::HistorySink::call_started)).
    executed: RecentIds,
    /// Calls an earlier run recorded: their output when they finished, `None` when not.
    prior: HashMap<String, Option<String>>,
    /// Recent (call id, response id) pairs seen, so one response's duplicate is ignored.
    seen_calls: RecentIds,
    /// The calls of each response, in the order the response listed them, until their
    /// outputs are sent. A response's calls and outputs enter the conversation log together
    /// (calls in their slots, then outputs in order) once it is done and every call finished,
    /// so the conversation — and what is replayed or stored — is the same whichever tool
    /// finishes first or wherever a connection drops.
    response_calls: HashMap<String, ResponseCalls>,
    /// Outputs of finished calls not yet sent.
    finished: HashMap<String, Item>,
    /// Call ids whose output has been sent (bounded like `executed`).
    delivered: RecentIds,
    /// Recent call ids the server of the current connection knows (streamed or replayed).
    in_session: RecentIds,
    /// Responses we asked the server to cancel (barge-in, the app): never asked for again.
    cancelled_by_us: HashSet<String>,
    /// Log slots of each response's output items, released if the server never finishes them.
    response_slots: HashMap<String, Vec<String>>,
    /// The conversation as completed so far, replayed after a reconnect or rollover.
    log: ConversationLog,
    /// When the current connection was configured, for rolling over before the server's limit.
    connected_at: Instant,
    /// Responses requested again after being cut off or stalling, since the last one that
    /// completed.
    rerequests: u32,
    /// New connections allowed (see [`ReconnectBudget`]).
    budget: ReconnectBudget,
    /// Deadlines on the response in flight.
    watchdog: Watchdog,
    /// The `event_id` of our `response.create` awaiting `response.created`, to recognise an
    /// `error` that answers it.
    pending_create: Option<String>,
    creates_sent: u64,
    /// Rounds of tool calls in the current user turn.
    tool_rounds: u32,
    /// Responses over `max_tool_rounds`: their calls were not run, and the turn fails at done.
    over_limit: HashSet<String>,
    /// Per-response cancellation, a child of the session's token.
    response_tokens: HashMap<String, CancellationToken>,
    shutdown: CancellationToken,
    last_frame: Instant,
    was_busy: bool,
    /// Usage, cost, budget and latency (see `accounting`).
    accounting: Accounting,
    /// Playback tracking and barge-in decisions (see `barge_in`).
    barge_in: super::barge_in::BargeIn,
    /// The server's turn detection answers the user by itself (`create_response`).
    server_responds: bool,
    /// A platform-held session told the app its time limit is near (see `platform`).
    limit_warned: bool,
    /// `session.update`s this session sent whose `session.updated` has not come back yet: a
    /// `session.updated` beyond them was asked for by someone else (see `platform`).
    updates_in_flight: u32,
    /// Calls waiting for a person's approval, shared with the session's handles.
    approvals: super::approval::Approvals,
    /// What output guardrails have seen of each streaming answer (see `guardrails`).
    guard: guardrails::GuardState,
    /// Waits for approval of hosted MCP servers' requests; each yields its verdict.
    mcp_waits: JoinSet<mcp_approvals::McpVerdict>,
    /// The MCP approval requests waiting, by request id.
    mcp_pending: HashMap<String, mcp_approvals::McpPending>,
    /// Recent MCP approval request ids seen, so each is answered once.
    mcp_seen: RecentIds,
    /// Calls running in the background (see `background`).
    background: background::Background,
    /// The filler for slow calls (see `filler`).
    filler: filler::FillerState,
}

/// What connects a runner to its app: the events out, the commands in, and the approvals the
/// app's handles answer.
pub(crate) struct AppSide {
    pub outbox: Outbox,
    pub commands: mpsc::Receiver<Command>,
    pub approvals: super::approval::Approvals,
}

impl Runner {
    pub(crate) fn new(
        config: SessionConfig,
        connection: setup::Established,
        session_id: String,
        log: ConversationLog,
        app: AppSide,
        budget: ReconnectBudget,
        spans: super::spans::Spans,
    ) -> Self {
        let AppSide {
            outbox,
            commands,
            approvals,
        } = app;
        let mut dispatcher = Dispatcher::new(
            config.tools.clone(),
            config.tool_config.clone(),
            config.tool_timeout,
            config.agent.clone(),
            session_id,
        );
        if let Some(conversation) = config
            .history_sink
            .as_ref()
            .and_then(|sink| sink.conversation_id())
        {
            dispatcher = dispatcher.with_conversation(conversation);
        }
        let accounting = Accounting::new(&config, spans);
        let barge_in = super::barge_in::BargeIn::new(&config.session, config.playback.clone())
            .with_ownership(config.ownership);
        // A store that reads back answers for every call it recorded (see `spawn_call`), so
        // the prior calls need not stay in memory; nor do the ids of calls long done.
        let store_answers = config
            .history_sink
            .as_ref()
            .is_some_and(|sink| sink.durable_appends().is_some());
        let prior = if store_answers {
            HashMap::new()
        } else {
            config
                .prior_calls
                .iter()
                .map(|call| (call.call_id.clone(), call.output.clone()))
                .collect()
        };
        let calls_window = || {
            if store_answers {
                RecentIds::bounded(CALLS_WINDOW)
            } else {
                RecentIds::unbounded()
            }
        };
        let now = Instant::now();
        let server_responds = super::barge_in::server_creates_responses(&config.session);
        Runner {
            approvals,
            server_responds,
            accounting,
            barge_in,
            budget,
            watchdog: Watchdog::new(config.deadlines, now),
            config,
            ws: connection.ws,
            early: connection.early.into(),
            outbox,
            too_slow: None,
            commands,
            deferred: Vec::new(),
            dispatcher,
            sequencer: Sequencer::new(),
            calls: JoinSet::new(),
            tasks: HashMap::new(),
            executed: calls_window(),
            prior,
            seen_calls: RecentIds::bounded(CALLS_WINDOW),
            response_calls: HashMap::new(),
            finished: HashMap::new(),
            delivered: calls_window(),
            in_session: RecentIds::bounded(CALLS_WINDOW),
            cancelled_by_us: HashSet::new(),
            response_slots: HashMap::new(),
            log,
            connected_at: now,
            rerequests: 0,
            pending_create: None,
            creates_sent: 0,
            tool_rounds: 0,
            over_limit: HashSet::new(),
            response_tokens: HashMap::new(),
            shutdown: CancellationToken::new(),
            last_frame: now,
            was_busy: false,
            limit_warned: false,
            updates_in_flight: 0,
            guard: guardrails::GuardState::default(),
            mcp_waits: JoinSet::new(),
            mcp_pending: HashMap::new(),
            mcp_seen: RecentIds::bounded(CALLS_WINDOW),
            background: background::Background::default(),
            filler: filler::FillerState::default(),
        }
    }

    /// Runs the session to its end. `reconciled` are the outputs a resumed conversation's
    /// hanging calls were given before it was replayed; `adopted` are the hanging calls of a
    /// platform-held conversation taken over from a process that died (see
    /// [`adopt_calls`](Self::adopt_calls)).
    pub(crate) async fn run(mut self, reconciled: Vec<SessionEvent>, adopted: Vec<Item>) {
        // What a resumed conversation gained (outputs of hanging calls) goes to the store.
        self.settle();
        self.emit_all(reconciled);
        let mut first = match self.tell_of_takeover().await {
            Err(flow) => flow,
            Ok(()) if adopted.is_empty() => Flow::Continue,
            Ok(()) => self.adopt_calls(adopted).await,
        };
        let reason = loop {
            let flow = match std::mem::replace(&mut first, Flow::Continue) {
                Flow::Continue => self.run_loop().await,
                adopting => adopting,
            };
            // Replacing a connection (dialling, TLS, the handshake) is a large future; boxed, it
            // takes memory only while it runs, not in every idle session.
            let replaced = match flow {
                Flow::Close(reason) => break reason,
                Flow::Lost(why) => Box::pin(self.replace_connection(why, false)).await,
                Flow::Rollover(why) => Box::pin(self.replace_connection(why, true)).await,
                Flow::Continue => continue,
            };
            if let Err(reason) = replaced {
                break reason;
            }
        };
        self.shutdown.cancel();
        self.calls.abort_all();
        self.cancel_mcp_waits();
        let _ = tokio::time::timeout(connection::CLOSE_WAIT, self.ws.close(None)).await;
        // Output the server never finished no longer holds back what follows it.
        self.log.abandon_open();
        self.settle();
        let closing = self.accounting.closing(&reason);
        self.emit_all(closing);
        self.outbox
            .finish(SessionEvent::Closed { reason }, FINAL_EVENTS_WAIT)
            .await;
    }

    /// A call taken over from a process that died: the model learns that calls it made while
    /// no sideband was attached were lost (see [`SessionConfig::taken_over`]).
    async fn tell_of_takeover(&mut self) -> Result<(), Flow> {
        if !self.config.taken_over || !self.config.ownership.is_platform_held() {
            return Ok(());
        }
        let event = self.record_local(Item::system_text(TAKEOVER_NOTE));
        self.send(event).await
    }

    async fn run_loop(&mut self) -> Flow {
        let every = self
            .config
            .keepalive
            .ping_every
            .max(Duration::from_millis(1));
        let mut keepalive = tokio::time::interval(every);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        keepalive.reset();
        while let Some(text) = self.early.pop_front() {
            let flow = self.on_text(text).await;
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        // Commands that came in while the connection was being replaced, in order; if one
        // fails, the rest wait for the next connection.
        while !self.deferred.is_empty() {
            let command = self.deferred.remove(0);
            let flow = self.on_command(Some(command)).await;
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        loop {
            // Frames queued outside the loop (a reconnect's replay of outputs) leave now.
            if let Err(flow) = self.flush().await {
                return flow;
            }
            let deadline = self.watchdog.next_deadline(self.in_flight());
            let flow = tokio::select! {
                frame = self.ws.next() => self.on_frame(frame).await,
                command = self.commands.recv() => self.on_command(command).await,
                Some(joined) = self.calls.join_next_with_id(), if !self.calls.is_empty() => {
                    self.on_call_joined(joined).await
                }
                Some(joined) = self.mcp_waits.join_next(), if !self.mcp_waits.is_empty() => {
                    self.on_mcp_verdict(joined).await
                }
                () = self.outbox.room(), if self.outbox.has_backlog() => {
                    self.outbox.drain();
                    Flow::Continue
                }
                () = sleep_until(deadline) => self.on_deadline().await,
                () = sleep_until(self.filler.due()) => self.on_filler_due().await,
                _ = keepalive.tick() => self.on_keepalive().await,
            };
            // Everything this step queued (a response's outputs and its `response.create`)
            // leaves in one write.
            if let Err(lost) = self.flush().await
                && matches!(flow, Flow::Continue)
            {
                return lost;
            }
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
            if let Some(slow) = self.too_slow {
                return Flow::Close(slow.into());
            }
            self.report_idle();
            if self.accounting.budget_exhausted() && self.quiet() {
                return Flow::Close(CloseReason::BudgetExhausted);
            }
            if self.config.ownership.is_platform_held() {
                if let Some(flow) = self.platform_time_limit() {
                    return flow;
                }
            } else if self.connected_at.elapsed() >= self.config.max_session_age && self.quiet() {
                return Flow::Rollover("the session is near its time limit".into());
            }
        }
    }

    /// Nothing in flight, queued, running or waiting for approval.
    fn quiet(&self) -> bool {
        self.sequencer.is_quiet() && self.calls.is_empty() && self.mcp_waits.is_empty()
    }

    /// Ends the current turn without a complete answer: the app is told why, and the request
    /// in flight is dropped (calls still running deliver their outputs, without a follow-up).
    fn fail_turn(
        &mut self,
        failure: super::events::TurnFailure,
    ) -> Vec<super::sequencer::Step<Input>> {
        self.accounting.spans.turn_failed(&failure);
        self.emit(SessionEvent::TurnFailed { failure });
        self.sequencer.fail_turn()
    }

    /// Sends the outputs that are ready, then puts `steps` and whatever the sequencer now
    /// allows on the wire.
    async fn flush_and_apply(&mut self, mut steps: Vec<super::sequencer::Step<Input>>) -> Flow {
        match self.flush_outputs().await {
            Ok(more) => {
                steps.extend(more);
                self.apply(steps).await
            }
            Err(flow) => flow,
        }
    }

    /// What the response slot holds, for the watchdog.
    fn in_flight(&self) -> InFlight<'_> {
        if let Some(id) = self.sequencer.active_response() {
            InFlight::Active(id)
        } else if self.sequencer.create_pending() {
            InFlight::Requested
        } else if self.sequencer.response_expected() {
            InFlight::Expected
        } else {
            InFlight::Nothing
        }
    }

    /// Adds a completed item to the conversation log (once per key) and hands what is now
    /// settled to the history sink.
    fn record(&mut self, key: String, item: Item) {
        self.log.push(key, item);
        self.settle();
    }

    /// Hands the items no open slot holds back any more to the history sink, in order, and
    /// lets the items the store holds leave memory (see [`ConversationLog::evict_durable`]).
    fn settle(&mut self) {
        let settled = self.log.take_settled();
        if let Some(sink) = &self.config.history_sink {
            for (key, item) in &settled {
                sink.append(key, item);
            }
            if let Some(durable) = sink.durable_appends() {
                self.log.evict_durable(durable);
            }
        }
    }

    /// Replaces a logged item, in the store too when it was already handed to it.
    fn replace_item(&mut self, key: &str, item: Item) {
        if self.log.replace(key, item.clone()) == Some(true)
            && let Some(sink) = &self.config.history_sink
        {
            sink.replace(key, &item);
        }
    }

    fn report_idle(&mut self) {
        let quiet = self.quiet();
        if quiet && self.was_busy {
            let accounted = self.accounting.idle();
            self.emit_all(accounted);
            self.emit(SessionEvent::Idle);
        }
        self.was_busy = !quiet;
    }

    fn observe(&self, direction: super::Direction, text: &str) {
        if let Some(observer) = &self.config.observer {
            observer.frame(direction, text);
        }
    }

    /// Something odd that does not stop the session: the app shows it (with `-v`), the log
    /// keeps it at debug level.
    fn warn(&mut self, message: &str) {
        tracing::debug!("{message}");
        self.emit(SessionEvent::Warning {
            message: message.to_owned(),
        });
    }

    fn emit_all(&mut self, events: Vec<SessionEvent>) {
        for event in events {
            self.emit(event);
        }
    }

    /// A record for the trace beside the frames (see [`super::WireObserver::note`]).
    fn note(&self, kind: &str, data: &serde_json::Value) {
        if let Some(observer) = &self.config.observer {
            observer.note(kind, data);
        }
    }

    /// Hands an event to the app without waiting (see [`Outbox`]).
    fn emit(&mut self, event: SessionEvent) {
        if let Err(slow) = self.outbox.push(event) {
            self.too_slow.get_or_insert(slow);
        }
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The function calls of one response, until their outputs are sent.
#[derive(Debug, Default)]
struct ResponseCalls {
    /// Call ids in the order the response listed them.
    order: Vec<String>,
    /// The `function_call` items, by call id.
    items: HashMap<String, Item>,
    /// `response.done` arrived (or the response was cut off by a drop).
    done: bool,
}

impl ResponseCalls {
    /// The response is done and every call has an output (`answered` says which do): the
    /// outputs can go out together.
    fn ready(&self, answered: impl Fn(&str) -> bool) -> bool {
        self.done && self.order.iter().all(|call_id| answered(call_id))
    }
}

/// What the loop does after handling one input.
pub(crate) enum Flow {
    /// Carry on.
    Continue,
    /// End the session.
    Close(CloseReason),
    /// The connection is gone: reconnect and replay.
    Lost(String),
    /// Move to a fresh session at this quiet moment (time limit, expiry).
    Rollover(String),
}

#[cfg(test)]
mod tests {
    use super::ResponseCalls;

    #[test]
    fn a_response_s_outputs_wait_for_its_end_and_every_call() {
        let mut calls = ResponseCalls {
            order: vec!["a".into(), "b".into()],
            ..ResponseCalls::default()
        };
        assert!(!calls.ready(|_| true), "not done yet");
        calls.done = true;
        assert!(!calls.ready(|id| id == "a"), "b is still running");
        assert!(calls.ready(|_| true));
        assert!(
            ResponseCalls {
                done: true,
                ..ResponseCalls::default()
            }
            .ready(|_| false)
        );
    }
}
