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
    dispatch::{CallOutcome, CallRequest, Dispatcher},
    events::{CloseReason, SessionEvent},
    sequencer::{Sequencer, Step},
    transport::WsStream,
};
use crate::protocol::{ClientEvent, Item, ItemStatus, ServerEvent};

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
    /// Per-response cancellation, a child of the session's token.
    response_tokens: HashMap<String, CancellationToken>,
    shutdown: CancellationToken,
    last_frame: Instant,
    was_busy: bool,
}

impl Runner {
    pub(crate) fn new(
        config: SessionConfig,
        ws: WsStream,
        session_id: String,
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
        Runner {
            config,
            ws,
            events,
            commands,
            dispatcher,
            sequencer: Sequencer::new(),
            calls: JoinSet::new(),
            executed: HashSet::new(),
            response_tokens: HashMap::new(),
            shutdown: CancellationToken::new(),
            last_frame: Instant::now(),
            was_busy: false,
        }
    }

    pub(crate) async fn run(mut self) {
        let reason = self.run_loop().await;
        self.shutdown.cancel();
        self.calls.abort_all();
        let _ = self.ws.close(None).await;
        self.emit(SessionEvent::Closed { reason }).await;
    }

    async fn run_loop(&mut self) -> CloseReason {
        let mut keepalive = tokio::time::interval(KEEPALIVE_EVERY);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
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
            if let Flow::Stop(reason) = flow {
                return reason;
            }
            self.report_idle().await;
        }
    }

    async fn on_keepalive(&mut self) -> Flow {
        if self.last_frame.elapsed() > DEAD_AFTER {
            return Flow::Stop(CloseReason::ConnectionLost {
                message: format!("no data from the server for {DEAD_AFTER:?}"),
            });
        }
        match self.ws.send(Message::Ping(Vec::new().into())).await {
            Ok(()) => Flow::Continue,
            Err(err) => Flow::Stop(CloseReason::ConnectionLost {
                message: err.to_string(),
            }),
        }
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    ) -> Flow {
        self.last_frame = Instant::now();
        let text = match frame {
            None => {
                return Flow::Stop(CloseReason::ConnectionLost {
                    message: "the server closed the connection".into(),
                });
            }
            Some(Err(err)) => {
                return Flow::Stop(CloseReason::ConnectionLost {
                    message: err.to_string(),
                });
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                let message = match frame {
                    Some(f) => format!(
                        "the server closed the connection ({}: {})",
                        f.code, f.reason
                    ),
                    None => "the server closed the connection".into(),
                };
                return Flow::Stop(CloseReason::ConnectionLost { message });
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
                self.emit(SessionEvent::ResponseStarted { response_id: id })
                    .await;
            }
            ServerEvent::ResponseOutputTextDelta(e) => {
                self.emit(SessionEvent::TextDelta {
                    response_id: e.response_id,
                    item_id: e.item_id,
                    delta: e.delta,
                })
                .await;
            }
            ServerEvent::ResponseOutputAudioTranscriptDelta(e) => {
                self.emit(SessionEvent::TranscriptDelta {
                    response_id: e.response_id,
                    item_id: e.item_id,
                    delta: e.delta,
                })
                .await;
            }
            ServerEvent::ResponseOutputAudioDelta(e) => {
                match crate::audio::decode_base64(&e.delta) {
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
                self.emit(SessionEvent::UserTranscript {
                    item_id: e.item_id,
                    text: e.transcript,
                })
                .await;
            }
            ServerEvent::InputAudioBufferSpeechStarted(e) => {
                self.emit(SessionEvent::SpeechStarted {
                    item_id: e.item_id,
                    audio_start_ms: e.audio_start_ms,
                })
                .await;
            }
            ServerEvent::InputAudioBufferSpeechStopped(e) => {
                self.emit(SessionEvent::SpeechStopped {
                    item_id: e.item_id,
                    audio_end_ms: e.audio_end_ms,
                })
                .await;
            }
            ServerEvent::ResponseOutputItemDone(e) => {
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
        let steps = self.sequencer.response_done(&id);
        self.emit(SessionEvent::ResponseDone {
            response_id: id,
            status,
            usage: response.usage,
        })
        .await;
        self.apply(steps).await
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
        if !self.executed.insert(call_id.clone()) {
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
        self.sequencer.call_started(response_id, &call_id);
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
        let item = Item::function_call_output(outcome.request.call_id.clone(), output.clone());
        if let Err(reason) = self.send(ClientEvent::conversation_item_create(item)).await {
            return Flow::Stop(reason);
        }
        let CallOutcome {
            request,
            duration,
            result,
        } = outcome;
        let steps = self
            .sequencer
            .call_finished(&request.response_id, &request.call_id);
        self.emit(SessionEvent::ToolCallFinished {
            call_id: request.call_id,
            name: request.name,
            arguments: request.arguments,
            duration,
            result: result.map_err(|_| output),
        })
        .await;
        self.apply(steps).await
    }

    async fn on_error(&mut self, event: crate::protocol::ErrorEvent) -> Flow {
        let code = event.error.code.clone();
        let message = event.error.message.clone();
        let fatal = event.error.is_fatal();
        self.emit(SessionEvent::Error {
            code: code.clone(),
            message: message.clone(),
            fatal,
        })
        .await;
        if fatal {
            return Flow::Stop(CloseReason::Fatal { code, message });
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
            return Flow::Stop(CloseReason::Requested);
        };
        match command {
            Command::Text(text) => {
                let steps = self.sequencer.submit(Input::Text(text));
                self.apply(steps).await
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
                Err(reason) => Flow::Stop(reason),
            },
            Command::Cancel => {
                if self.sequencer.response_in_flight() {
                    let event = ClientEvent::response_cancel();
                    if let Err(reason) = self.send(event).await {
                        return Flow::Stop(reason);
                    }
                }
                Flow::Continue
            }
            Command::Close => Flow::Stop(CloseReason::Requested),
        }
    }

    async fn apply(&mut self, steps: Vec<Step<Input>>) -> Flow {
        for step in steps {
            let event = match step {
                Step::SendInput(Input::Text(text)) => {
                    ClientEvent::conversation_item_create(Item::user_text(text))
                }
                Step::SendInput(Input::CommitAudio) => ClientEvent::input_audio_buffer_commit(),
                Step::SendInput(Input::Respond) => continue,
                Step::CreateResponse => ClientEvent::response_create(),
            };
            if let Err(reason) = self.send(event).await {
                return Flow::Stop(reason);
            }
        }
        Flow::Continue
    }

    async fn send(&mut self, event: ClientEvent) -> Result<(), CloseReason> {
        let text = match event.encode(self.config.connect.dialect) {
            Ok(text) => text,
            Err(err) => {
                self.warn(&format!("did not send an event: {err}")).await;
                return Ok(());
            }
        };
        self.observe(Direction::Sent, &text);
        self.ws
            .send(Message::Text(text.into()))
            .await
            .map_err(|err| CloseReason::ConnectionLost {
                message: err.to_string(),
            })
    }

    async fn report_idle(&mut self) {
        let quiet = self.sequencer.is_quiet() && self.calls.is_empty();
        if quiet && self.was_busy {
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

    async fn emit(&self, event: SessionEvent) {
        // A dropped receiver means the app stopped listening; the session still winds down.
        let _ = self.events.send(event).await;
    }
}

enum Flow {
    Continue,
    Stop(CloseReason),
}

/// Sends `session.update` and waits for `session.updated`, reporting a server error verbatim.
pub(crate) async fn configure(
    ws: &mut WsStream,
    config: &SessionConfig,
) -> Result<(Option<String>, Option<String>), SessionError> {
    let update = ClientEvent::session_update(config.session.clone());
    let text = update
        .encode(config.connect.dialect)
        .map_err(SessionError::Encode)?;
    if let Some(observer) = &config.observer {
        observer.frame(Direction::Sent, &text);
    }
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|err| SessionError::ConnectionLost(err.to_string()))?;
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
