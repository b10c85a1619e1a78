//! The session loop: one task per session that owns the socket, the sequencer and the calls.
//!
//! Everything that touches a session's state happens on this one task, so there are no locks on
//! the hot path: wire frames, app commands and finished tool calls arrive through one `select!`.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{
    Command, Direction, SessionConfig, SessionError,
    accounting::{Accounting, Sent},
    dispatch::{CallOutcome, CallRequest, Dispatcher},
    events::{CloseReason, SessionEvent},
    log::{ConversationLog, for_replay},
    reconnect::is_final_close,
    sequencer::{Sequencer, Step},
    transport::{self, WsStream},
};
use crate::{
    latency::TurnStart,
    protocol::{ClientEvent, Item, ItemStatus, Role, ServerEvent, error_codes},
};

/// Input the app queued until the conversation is quiet.
#[derive(Debug)]
pub(crate) enum Input {
    /// A typed user message.
    Text(String),
    /// Commit the input audio buffer (push-to-talk).
    CommitAudio,
    /// Nothing to add: just ask for a response.
    Respond,
}

/// How often a ping goes out when the socket is otherwise quiet.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(20);
/// How long without any frame before the connection is considered dead.
const DEAD_AFTER: Duration = Duration::from_secs(60);

pub(crate) struct Runner {
    config: SessionConfig,
    ws: WsStream,
    events: mpsc::Sender<SessionEvent>,
    commands: mpsc::Receiver<Command>,
    dispatcher: Dispatcher,
    sequencer: Sequencer<Input>,
    calls: JoinSet<CallOutcome>,
    /// Every call id ever started, so a call runs at most once.
    executed: HashSet<String>,
    /// Every (call id, response id) pair seen, so one response's duplicate is ignored.
    seen_calls: HashSet<(String, String)>,
    /// The calls of each response, in the order the response listed them, until their
    /// outputs are sent. A response's calls and outputs enter the conversation log together
    /// (calls in order, then outputs in order) once it is done and every call finished, so
    /// the conversation — and what is replayed or stored — is the same whichever tool finishes
    /// first or wherever a connection drops.
    response_calls: HashMap<String, ResponseCalls>,
    /// Outputs of finished calls not yet sent.
    finished: HashMap<String, Item>,
    /// Call ids whose output has been sent.
    delivered: HashSet<String>,
    /// Call ids the server of the current connection knows (streamed or replayed to it).
    in_session: HashSet<String>,
    /// Calls of responses cut off by a drop, waiting for the response that replaces them.
    carry_over: Vec<(String, Item)>,
    /// The conversation as completed so far, replayed after a reconnect or rollover.
    log: ConversationLog,
    /// When the current connection was configured, for rolling over before the server's limit.
    connected_at: Instant,
    /// Responses requested again after being cut off, since the last one that completed.
    rerequests: u32,
    /// Per-response cancellation, a child of the session's token.
    response_tokens: HashMap<String, CancellationToken>,
    shutdown: CancellationToken,
    last_frame: Instant,
    was_busy: bool,
    /// Usage, cost, budget and latency (see `accounting`).
    accounting: Accounting,
    /// Playback tracking and barge-in decisions (see `barge_in`).
    barge_in: super::barge_in::BargeIn,
}

impl Runner {
    pub(crate) fn new(
        config: SessionConfig,
        ws: WsStream,
        session_id: String,
        log: ConversationLog,
        events: mpsc::Sender<SessionEvent>,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        let dispatcher = Dispatcher::new(
            config.tools.clone(),
            config.tool_config.clone(),
            config.tool_timeout,
            config.agent.clone(),
            session_id,
        );
        let accounting = Accounting::new(&config);
        let barge_in = super::barge_in::BargeIn::new(&config.session, config.playback.clone());
        Runner {
            accounting,
            barge_in,
            config,
            ws,
            events,
            commands,
            dispatcher,
            sequencer: Sequencer::new(),
            calls: JoinSet::new(),
            executed: HashSet::new(),
            seen_calls: HashSet::new(),
            response_calls: HashMap::new(),
            finished: HashMap::new(),
            delivered: HashSet::new(),
            in_session: HashSet::new(),
            carry_over: Vec::new(),
            log,
            connected_at: Instant::now(),
            rerequests: 0,
            response_tokens: HashMap::new(),
            shutdown: CancellationToken::new(),
            last_frame: Instant::now(),
            was_busy: false,
        }
    }

    pub(crate) async fn run(mut self) {
        let reason = loop {
            let replaced = match self.run_loop().await {
                Flow::Close(reason) => break reason,
                Flow::Lost(why) => self.replace_connection(why, false).await,
                Flow::Rollover(why) => self.replace_connection(why, true).await,
                Flow::Continue => continue,
            };
            if let Err(reason) = replaced {
                break reason;
            }
        };
        self.shutdown.cancel();
        self.calls.abort_all();
        let _ = self.ws.close(None).await;
        let closing = self.accounting.closing(&reason);
        self.emit_all(closing).await;
        self.emit(SessionEvent::Closed { reason }).await;
    }

    async fn run_loop(&mut self) -> Flow {
        let mut keepalive = tokio::time::interval(KEEPALIVE_EVERY);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Frames queued outside the loop (a reconnect's replay of outputs) leave now.
            if let Err(err) = self.ws.flush().await {
                return Flow::Lost(err.to_string());
            }
            let flow = tokio::select! {
                frame = self.ws.next() => self.on_frame(frame).await,
                command = self.commands.recv() => self.on_command(command).await,
                Some(joined) = self.calls.join_next(), if !self.calls.is_empty() => {
                    match joined {
                        Ok(outcome) => self.on_call_done(outcome).await,
                        // Tasks are only aborted on shutdown; a panic is caught inside the task.
                        Err(_) => Flow::Continue,
                    }
                }
                _ = keepalive.tick() => self.on_keepalive().await,
            };
            // Everything this step queued (a response's outputs and its `response.create`)
            // leaves in one write.
            if let Err(err) = self.ws.flush().await
                && matches!(flow, Flow::Continue)
            {
                return Flow::Lost(err.to_string());
            }
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
            self.report_idle().await;
            if self.accounting.budget_exhausted()
                && self.sequencer.is_quiet()
                && self.calls.is_empty()
            {
                return Flow::Close(CloseReason::BudgetExhausted);
            }
            if self.connected_at.elapsed() >= self.config.max_session_age
                && self.sequencer.is_quiet()
                && self.calls.is_empty()
            {
                return Flow::Rollover("the session is near its time limit".into());
            }
        }
    }

    /// Opens a new connection, configures it and replays the conversation, after a drop
    /// (`rollover == false`) or before the session's time limit. Tools keep running meanwhile;
    /// their outputs go out on the new connection.
    async fn replace_connection(&mut self, why: String, rollover: bool) -> Result<(), CloseReason> {
        let policy = self.config.reconnect.clone();
        if !rollover && policy.max_attempts == 0 {
            return Err(CloseReason::ConnectionLost { message: why });
        }
        let _ = self.ws.close(None).await;
        let rerequest = self.rerequests < policy.rerequest_cut_responses;
        let mut reason = why;
        let attempts = policy.max_attempts.max(1);
        for attempt in 1..=attempts {
            let delay = if rollover && attempt == 1 {
                Duration::ZERO
            } else {
                policy.delay(attempt, fastrand::f64())
            };
            self.emit(if rollover {
                SessionEvent::RollingOver {
                    reason: reason.clone(),
                }
            } else {
                SessionEvent::Reconnecting {
                    attempt,
                    max_attempts: attempts,
                    delay,
                    reason: reason.clone(),
                }
            })
            .await;
            tokio::time::sleep(delay).await;
            match establish(&self.config, &self.log).await {
                Ok((ws, _ids)) => {
                    self.ws = ws;
                    self.connected_at = Instant::now();
                    self.last_frame = Instant::now();
                    self.response_tokens.clear();
                    // Audio items of the old connection cannot be truncated on the new one.
                    self.barge_in.connection_reset();
                    let cut = self.sequencer.response_in_flight();
                    self.in_session = self
                        .log
                        .items()
                        .filter_map(|item| item.as_function_call().map(|c| c.call_id.clone()))
                        .collect();
                    // Responses cut off by the drop will not send `response.done`. With a
                    // re-request, their calls move to the response that replaces them (a call
                    // that already ran does not run again); otherwise they finish on their own.
                    let cut_ids: Vec<String> = self
                        .response_calls
                        .iter()
                        .filter(|(_, calls)| !calls.done)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in cut_ids {
                        if rerequest {
                            if let Some(mut calls) = self.response_calls.remove(&id) {
                                for call_id in calls.order {
                                    if let Some(item) = calls.items.remove(&call_id)
                                        && !self.carry_over.iter().any(|(c, _)| *c == call_id)
                                    {
                                        self.carry_over.push((call_id, item));
                                    }
                                }
                            }
                            self.sequencer.abandon(&id);
                        } else if let Some(calls) = self.response_calls.get_mut(&id) {
                            calls.done = true;
                        }
                    }
                    let mut steps = self.sequencer.connection_reset(rerequest);
                    if cut && steps.iter().any(|s| matches!(s, Step::CreateResponse)) {
                        self.rerequests += 1;
                    }
                    self.emit(SessionEvent::Reconnected {
                        replayed_items: self.log.len(),
                        rollover,
                    })
                    .await;
                    let flow = match self.flush_outputs().await {
                        Ok(more) => {
                            steps.extend(more);
                            self.apply(steps).await
                        }
                        Err(flow) => flow,
                    };
                    return match flow {
                        Flow::Continue => Ok(()),
                        Flow::Close(reason) => Err(reason),
                        // The new connection failed at once: the caller's loop tries again.
                        Flow::Lost(_) | Flow::Rollover(_) => {
                            Box::pin(
                                self.replace_connection("the new connection dropped".into(), false),
                            )
                            .await
                        }
                    };
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
        Err(CloseReason::ConnectionLost {
            message: format!("gave up after {attempts} reconnect attempts: {reason}"),
        })
    }

    async fn on_keepalive(&mut self) -> Flow {
        if self.last_frame.elapsed() > DEAD_AFTER {
            return Flow::Lost(format!("no data from the server for {DEAD_AFTER:?}"));
        }
        match self.ws.send(Message::Ping(Vec::new().into())).await {
            Ok(()) => Flow::Continue,
            Err(err) => Flow::Lost(err.to_string()),
        }
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Flow {
        self.last_frame = Instant::now();
        let text = match frame {
            None => return Flow::Lost("the connection closed".into()),
            Some(Err(err)) => return Flow::Lost(err.to_string()),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return match frame {
                    Some(f) if is_final_close(u16::from(f.code)) => {
                        Flow::Close(CloseReason::Fatal {
                            code: None,
                            message: format!(
                                "the server ended the session (close code {}: {}); reconnecting would not help",
                                f.code, f.reason
                            ),
                        })
                    }
                    Some(f) => Flow::Lost(format!(
                        "the server closed the connection ({}: {})",
                        f.code, f.reason
                    )),
                    None => Flow::Lost("the server closed the connection".into()),
                };
            }
            Some(Ok(Message::Binary(_))) => {
                self.warn("ignored a binary frame; the Realtime protocol is JSON text")
                    .await;
                return Flow::Continue;
            }
            Some(Ok(_)) => return Flow::Continue,
        };
        self.observe(Direction::Received, text.as_str());
        match ServerEvent::decode(text.as_str()) {
            Ok(event) => self.on_event(event).await,
            Err(err) => {
                self.warn(&format!("skipped a server frame: {err}")).await;
                Flow::Continue
            }
        }
    }

    async fn on_event(&mut self, event: ServerEvent) -> Flow {
        match event {
            ServerEvent::ResponseCreated(e) => {
                let id = e.response.id.clone();
                self.sequencer.response_created(&id);
                self.response_tokens
                    .insert(id.clone(), self.shutdown.child_token());
                if !self.carry_over.is_empty() {
                    let calls = self.response_calls.entry(id.clone()).or_default();
                    for (call_id, item) in self.carry_over.drain(..) {
                        self.sequencer.call_started(&id, &call_id);
                        calls.order.push(call_id.clone());
                        calls.items.insert(call_id, item);
                    }
                }
                self.emit(SessionEvent::ResponseStarted { response_id: id })
                    .await;
            }
            ServerEvent::ResponseOutputTextDelta(e) => {
                self.accounting.delta(false);
                self.emit(SessionEvent::TextDelta {
                    response_id: e.response_id,
                    item_id: e.item_id,
                    delta: e.delta,
                })
                .await;
            }
            ServerEvent::ResponseOutputAudioTranscriptDelta(e) => {
                self.accounting.delta(false);
                self.emit(SessionEvent::TranscriptDelta {
                    response_id: e.response_id,
                    item_id: e.item_id,
                    delta: e.delta,
                })
                .await;
            }
            ServerEvent::ResponseOutputAudioDelta(e) => {
                self.accounting.delta(true);
                match crate::audio::decode_base64(&e.delta) {
                    // Audio cut off by a barge-in is dropped, not played.
                    Ok(data)
                        if !self.barge_in.on_audio(
                            &e.response_id,
                            &e.item_id,
                            e.content_index,
                            data.len(),
                            Instant::now(),
                        ) => {}
                    Ok(data) => {
                        self.emit(SessionEvent::Audio {
                            response_id: e.response_id,
                            item_id: e.item_id,
                            data,
                        })
                        .await;
                    }
                    Err(err) => self.warn(&format!("skipped an audio delta: {err}")).await,
                }
            }
            ServerEvent::ConversationItemInputAudioTranscriptionCompleted(e) => {
                let item = Item::message(
                    Role::User,
                    vec![crate::protocol::ContentPart::InputAudio {
                        audio: None,
                        transcript: Some(e.transcript.clone()),
                    }],
                );
                self.record(format!("item:{}", e.item_id), item);
                let accounted = self.accounting.transcription(&e.item_id, e.usage.as_ref());
                self.emit(SessionEvent::UserTranscript {
                    item_id: e.item_id,
                    text: e.transcript,
                })
                .await;
                self.emit_all(accounted).await;
            }
            ServerEvent::ConversationItemInputAudioTranscriptionDelta(e) => {
                if let Some(delta) = e.delta.filter(|d| !d.is_empty()) {
                    self.emit(SessionEvent::UserTranscriptDelta {
                        item_id: e.item_id,
                        delta,
                    })
                    .await;
                }
            }
            ServerEvent::ConversationItemTruncated(e) => {
                // What the user did not hear leaves the history too (and any replay of it).
                let key = format!("item:{}", e.item_id);
                let received = self.barge_in.tracker().received_ms(&e.item_id);
                if let Some(item) = self.log.get(&key) {
                    let cut = super::log::truncated(
                        item,
                        usize::try_from(e.content_index).unwrap_or(usize::MAX),
                        e.audio_end_ms,
                        received,
                    );
                    if let Some(sink) = &self.config.history_sink {
                        sink.replace(&key, &cut);
                    }
                    self.log.replace(&key, cut);
                }
            }
            ServerEvent::InputAudioBufferSpeechStarted(e) => {
                self.emit(SessionEvent::SpeechStarted {
                    item_id: e.item_id,
                    audio_start_ms: e.audio_start_ms,
                })
                .await;
                return self.on_barge_in().await;
            }
            ServerEvent::InputAudioBufferSpeechStopped(e) => {
                let accounted = self.accounting.speech_stopped();
                self.emit_all(accounted).await;
                self.emit(SessionEvent::SpeechStopped {
                    item_id: e.item_id,
                    audio_end_ms: e.audio_end_ms,
                })
                .await;
            }
            ServerEvent::ResponseOutputItemDone(e) => {
                if let Item::Message(message) = &e.item
                    && message.role == Role::Assistant
                {
                    let key = match &message.id {
                        Some(id) => format!("item:{id}"),
                        None => self.log.local_key(),
                    };
                    self.record(key, e.item.clone());
                }
                self.maybe_start_call(&e.response_id, &e.item).await;
            }
            ServerEvent::ResponseDone(e) => return self.on_response_done(e.response).await,
            ServerEvent::Error(e) => return self.on_error(e).await,
            ServerEvent::Unknown(e) => {
                tracing::debug!(event_type = %e.event_type, "ignored an unknown server event");
            }
            _ => {}
        }
        Flow::Continue
    }

    async fn on_response_done(&mut self, response: crate::protocol::Response) -> Flow {
        let id = response.id.clone();
        // Calls whose `response.output_item.done` we missed still run if their item completed.
        for item in &response.output {
            self.maybe_start_call(&id, item).await;
        }
        let status = response
            .status
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "completed".to_owned());
        if let Some(token) = self.response_tokens.remove(&id)
            && status == "cancelled"
        {
            token.cancel();
        }
        if status == "completed" {
            self.rerequests = 0;
        }
        if let Some(calls) = self.response_calls.get_mut(&id) {
            calls.done = true;
        }
        self.barge_in.on_response_done(&id, Instant::now());
        let mut steps = self.sequencer.response_done(&id);
        let accounted = self.accounting.response_done(&id, response.usage.as_ref());
        self.emit(SessionEvent::ResponseDone {
            response_id: id,
            status,
            usage: response.usage,
        })
        .await;
        self.emit_all(accounted).await;
        match self.flush_outputs().await {
            Ok(more) => steps.extend(more),
            Err(flow) => return flow,
        }
        self.apply(steps).await
    }

    /// Sends the outputs of every finished response whose calls have all finished, in call
    /// order, and tells the sequencer; returns the sequencer's next steps.
    async fn flush_outputs(&mut self) -> Result<Vec<Step<Input>>, Flow> {
        let ready: Vec<String> = self
            .response_calls
            .iter()
            .filter(|(_, calls)| {
                calls.done
                    && calls
                        .order
                        .iter()
                        .all(|c| self.delivered.contains(c) || self.finished.contains_key(c))
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut steps = Vec::new();
        for response_id in ready {
            let Some(calls) = self.response_calls.remove(&response_id) else {
                continue;
            };
            for call_id in &calls.order {
                let Some(call) = calls.items.get(call_id) else {
                    continue;
                };
                self.record(format!("call:{call_id}"), call.clone());
                if self.in_session.insert(call_id.clone()) {
                    // A call carried over from a cut response: the new session never saw it.
                    self.send(ClientEvent::conversation_item_create(for_replay(call)))
                        .await?;
                }
            }
            for call_id in &calls.order {
                if let Some(item) = self.finished.remove(call_id) {
                    // Logged before it is sent: if the connection drops now, the replay
                    // delivers it.
                    self.record(format!("output:{call_id}"), item.clone());
                    self.delivered.insert(call_id.clone());
                    self.send(ClientEvent::conversation_item_create(item))
                        .await?;
                    self.accounting.output_sent(call_id);
                }
            }
            for call_id in &calls.order {
                steps.extend(self.sequencer.call_finished(&response_id, call_id));
            }
        }
        Ok(steps)
    }

    /// Starts the call in `item` if it is a completed function call not seen before. A call
    /// whose item did not complete (its response was cancelled first) does not run.
    async fn maybe_start_call(&mut self, response_id: &str, item: &Item) {
        let Item::FunctionCall(call) = item else {
            return;
        };
        if call
            .status
            .as_ref()
            .is_some_and(|status| *status != ItemStatus::Completed)
        {
            return;
        }
        let call_id = call.call_id.clone();
        if call_id.is_empty() {
            self.warn(&format!(
                "function call `{}` has no call_id; it cannot be answered",
                call.name
            ))
            .await;
            return;
        }
        if !self
            .seen_calls
            .insert((call_id.clone(), response_id.to_owned()))
        {
            return;
        }
        self.in_session.insert(call_id.clone());
        let calls = self
            .response_calls
            .entry(response_id.to_owned())
            .or_default();
        if !calls.order.contains(&call_id) {
            self.sequencer.call_started(response_id, &call_id);
            calls.order.push(call_id.clone());
            calls.items.insert(call_id.clone(), item.clone());
        }
        if !self.executed.insert(call_id.clone()) {
            // The call already ran (a response replayed after a reconnect asks for it again):
            // it does not run twice. This response waits for its output, or, when that was
            // already delivered, gets its follow-up once it is done.
            return;
        }
        let request = CallRequest {
            response_id: response_id.to_owned(),
            call_id: call_id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        };
        let token = self
            .response_tokens
            .get(response_id)
            .map(CancellationToken::child_token)
            .unwrap_or_else(|| self.shutdown.child_token());
        self.accounting.call_started(&call_id, &request.name);
        self.emit(SessionEvent::ToolCallStarted {
            call_id,
            name: request.name.clone(),
            arguments: request.arguments.clone(),
        })
        .await;
        self.dispatcher.spawn(&mut self.calls, request, token);
    }

    async fn on_call_done(&mut self, outcome: CallOutcome) -> Flow {
        let output = outcome.output_text();
        let CallOutcome {
            request,
            duration,
            result,
        } = outcome;
        self.accounting.call_finished(&request.call_id);
        let item = Item::function_call_output(request.call_id.clone(), output.clone());
        self.finished.insert(request.call_id.clone(), item);
        self.emit(SessionEvent::ToolCallFinished {
            call_id: request.call_id,
            name: request.name,
            arguments: request.arguments,
            duration,
            result: result.map_err(|_| output),
        })
        .await;
        match self.flush_outputs().await {
            Ok(steps) => self.apply(steps).await,
            Err(flow) => flow,
        }
    }

    async fn on_error(&mut self, event: crate::protocol::ErrorEvent) -> Flow {
        let code = event.error.code.clone();
        let message = event.error.message.clone();
        if event.error.has_code(error_codes::SESSION_EXPIRED) {
            return Flow::Rollover(format!("the server expired the session: {message}"));
        }
        let fatal = event.error.is_fatal();
        self.emit(SessionEvent::Error {
            code: code.clone(),
            message: message.clone(),
            fatal,
        })
        .await;
        if fatal {
            return Flow::Close(CloseReason::Fatal { code, message });
        }
        if code.as_deref() == Some("conversation_already_has_active_response") {
            let steps = self.sequencer.create_refused();
            return self.apply(steps).await;
        }
        Flow::Continue
    }

    async fn on_command(&mut self, command: Option<Command>) -> Flow {
        let Some(command) = command else {
            // Every handle is gone: nobody can talk to this session any more.
            return Flow::Close(CloseReason::Requested);
        };
        match command {
            Command::Text(text) => {
                let steps = self.sequencer.submit(Input::Text(text));
                self.apply(steps).await
            }
            // A transcription session never answers: the commit alone ends the user's turn.
            Command::Commit
                if self.config.session.kind == crate::protocol::SessionKind::Transcription =>
            {
                match self.send(ClientEvent::input_audio_buffer_commit()).await {
                    Ok(()) => Flow::Continue,
                    Err(flow) => flow,
                }
            }
            Command::Commit => {
                let steps = self.sequencer.submit(Input::CommitAudio);
                self.apply(steps).await
            }
            Command::Respond => {
                let steps = self.sequencer.submit(Input::Respond);
                self.apply(steps).await
            }
            Command::Send(event) => match self.send(*event).await {
                Ok(()) => Flow::Continue,
                Err(flow) => flow,
            },
            Command::Cancel => {
                if self.sequencer.response_in_flight() {
                    let event = ClientEvent::response_cancel();
                    if let Err(flow) = self.send(event).await {
                        return flow;
                    }
                }
                Flow::Continue
            }
            Command::Close => Flow::Close(CloseReason::Requested),
        }
    }

    async fn apply(&mut self, steps: Vec<Step<Input>>) -> Flow {
        for step in steps {
            let sent = match &step {
                Step::SendInput(Input::Text(_)) => Sent::Input(TurnStart::Text),
                Step::SendInput(Input::CommitAudio) => Sent::Input(TurnStart::Speech),
                Step::SendInput(Input::Respond) => Sent::Input(TurnStart::Request),
                Step::CreateResponse => Sent::Create,
            };
            if let Some(reason) = self.accounting.refuse(sent) {
                return Flow::Close(reason);
            }
            let event = match step {
                Step::SendInput(Input::Text(text)) => {
                    let item = Item::user_text(text);
                    let key = self.log.local_key();
                    self.record(key, item.clone());
                    ClientEvent::conversation_item_create(item)
                }
                Step::SendInput(Input::CommitAudio) => ClientEvent::input_audio_buffer_commit(),
                Step::SendInput(Input::Respond) => {
                    let accounted = self.accounting.sent(sent);
                    self.emit_all(accounted).await;
                    continue;
                }
                Step::CreateResponse => ClientEvent::response_create(),
            };
            if let Err(flow) = self.send(event).await {
                return flow;
            }
            let accounted = self.accounting.sent(sent);
            self.emit_all(accounted).await;
        }
        Flow::Continue
    }

    /// Queues one event for the socket; the loop flushes once per step, so the frames of one
    /// step share a write. A failure means the connection is gone (`Flow::Lost`).
    async fn send(&mut self, event: ClientEvent) -> Result<(), Flow> {
        let text = match event.encode(self.config.connect.dialect) {
            Ok(text) => text,
            Err(err) => {
                self.warn(&format!("did not send an event: {err}")).await;
                return Ok(());
            }
        };
        self.observe(Direction::Sent, &text);
        self.ws
            .feed(Message::Text(text.into()))
            .await
            .map_err(|err| Flow::Lost(err.to_string()))
    }

    /// Adds a completed item to the conversation log and the history sink (once per key).
    fn record(&mut self, key: String, item: Item) {
        if self.log.contains(&key) {
            return;
        }
        if let Some(sink) = &self.config.history_sink {
            sink.append(&key, &item);
        }
        self.log.push(key, item);
    }

    /// The user started speaking: stop playback, cancel and truncate as `barge_in` decides.
    async fn on_barge_in(&mut self) -> Flow {
        let active = self.sequencer.active_response().map(str::to_owned);
        let reactions = self
            .barge_in
            .on_speech_started(active.as_deref(), Instant::now());
        for reaction in reactions {
            match reaction {
                super::barge_in::Reaction::Interrupted {
                    item_id,
                    audio_end_ms,
                } => {
                    self.emit(SessionEvent::Interrupted {
                        item_id,
                        audio_end_ms,
                    })
                    .await
                }
                super::barge_in::Reaction::Send(event) => {
                    if let Err(flow) = self.send(*event).await {
                        return flow;
                    }
                }
            }
        }
        Flow::Continue
    }

    async fn report_idle(&mut self) {
        let quiet = self.sequencer.is_quiet() && self.calls.is_empty();
        if quiet && self.was_busy {
            let accounted = self.accounting.idle();
            self.emit_all(accounted).await;
            self.emit(SessionEvent::Idle).await;
        }
        self.was_busy = !quiet;
    }

    fn observe(&self, direction: Direction, text: &str) {
        if let Some(observer) = &self.config.observer {
            observer.frame(direction, text);
        }
    }

    async fn warn(&self, message: &str) {
        tracing::warn!("{message}");
        self.emit(SessionEvent::Warning {
            message: message.to_owned(),
        })
        .await;
    }

    async fn emit_all(&self, events: Vec<SessionEvent>) {
        for event in events {
            self.emit(event).await;
        }
    }

    async fn emit(&self, event: SessionEvent) {
        // A dropped receiver means the app stopped listening; the session still winds down.
        let _ = self.events.send(event).await;
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

/// What the loop does after handling one input.
enum Flow {
    /// Carry on.
    Continue,
    /// End the session.
    Close(CloseReason),
    /// The connection is gone: reconnect and replay.
    Lost(String),
    /// Move to a fresh session at this quiet moment (time limit, expiry).
    Rollover(String),
}

/// Connects, configures the session and replays `log` into it.
pub(crate) async fn establish(
    config: &SessionConfig,
    log: &ConversationLog,
) -> Result<(WsStream, (Option<String>, Option<String>)), SessionError> {
    let mut ws = transport::connect(&config.connect).await?;
    let ids = configure(&mut ws, config).await?;
    let entries = match config.compaction {
        Some(compaction) => compaction.apply(log.entries()),
        None => log.entries().to_vec(),
    };
    for (_, item) in &entries {
        let event = ClientEvent::conversation_item_create(for_replay(item));
        send_during_setup(&mut ws, config, &event).await?;
    }
    Ok((ws, ids))
}

/// Sends one event before the session loop runs (setup and replay), traced like any other.
async fn send_during_setup(
    ws: &mut WsStream,
    config: &SessionConfig,
    event: &ClientEvent,
) -> Result<(), SessionError> {
    let text = event
        .encode(config.connect.dialect)
        .map_err(SessionError::Encode)?;
    if let Some(observer) = &config.observer {
        observer.frame(Direction::Sent, &text);
    }
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|err| SessionError::ConnectionLost(err.to_string()))
}

/// Sends `session.update` and waits for `session.updated`, reporting a server error verbatim.
pub(crate) async fn configure(
    ws: &mut WsStream,
    config: &SessionConfig,
) -> Result<(Option<String>, Option<String>), SessionError> {
    let update = ClientEvent::session_update(config.session.clone());
    send_during_setup(ws, config, &update).await?;
    let deadline = tokio::time::Instant::now() + config.ready_timeout;
    let mut session_id = None;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| SessionError::NotReady {
                after: config.ready_timeout,
            })?;
        let text = match frame {
            None => {
                return Err(SessionError::ConnectionLost(
                    "the server closed the connection".into(),
                ));
            }
            Some(Err(err)) => return Err(SessionError::ConnectionLost(err.to_string())),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return Err(SessionError::ConnectionLost(match frame {
                    Some(f) => format!("closed by the server ({}: {})", f.code, f.reason),
                    None => "closed by the server".into(),
                }));
            }
            Some(Ok(_)) => continue,
        };
        if let Some(observer) = &config.observer {
            observer.frame(Direction::Received, text.as_str());
        }
        match ServerEvent::decode(text.as_str()) {
            Ok(ServerEvent::SessionCreated(e)) => session_id = e.session.id.clone(),
            Ok(ServerEvent::SessionUpdated(e)) => {
                let model = e.session.model.clone();
                return Ok((e.session.id.clone().or(session_id), model));
            }
            Ok(ServerEvent::Error(e)) => {
                return Err(SessionError::Rejected {
                    code: e.error.code,
                    message: e.error.message,
                });
            }
            Ok(_) => {}
            Err(err) => tracing::warn!("skipped a server frame during setup: {err}"),
        }
    }
}
