//! Connecting, configuring and replaying, and replacing a connection that was lost or is about
//! to expire. Every wait here has a deadline and every new connection comes out of the
//! session's [`ReconnectBudget`](crate::session::ReconnectBudget).

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, Message};

use super::{Flow, Runner};
use crate::{
    protocol::{ClientEvent, ServerEvent, SessionKind},
    session::{
        Command, Direction, SessionConfig, SessionError,
        events::{CloseReason, SessionEvent, TurnFailure, human},
        log::{ConversationLog, for_replay},
        reconnect::is_final_close,
        sequencer::Step,
        transport::{self, WsStream},
    },
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
            self.emit(if rollover {
                SessionEvent::RollingOver {
                    reason: reason.clone(),
                }
            } else {
                SessionEvent::Reconnecting {
                    attempt,
                    max_attempts,
                    delay,
                    reason: reason.clone(),
                }
            });
            self.outbox.drain();
            if self.closed_while(tokio::time::sleep(delay)).await.is_none() {
                return Err(CloseReason::Requested);
            }
            let established = {
                let (config, log) = (&self.config, &self.log);
                let attempt = establish(config, log);
                match close_requested(&mut self.commands, &mut self.deferred, attempt).await {
                    Some(result) => result,
                    None => return Err(CloseReason::Requested),
                }
            };
            match established {
                Ok((ws, _ids)) => {
                    self.ws = ws;
                    match self.reconnected(rollover, &reason).await {
                        Flow::Continue => return Ok(()),
                        Flow::Close(reason) => return Err(reason),
                        // The new connection failed at once: try again, out of the same budget.
                        Flow::Lost(why) | Flow::Rollover(why) => reason = why,
                    }
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

    /// Runs `wait` unless the app closes the session first (`None`); other commands that
    /// arrive meanwhile are kept for later.
    async fn closed_while<T>(&mut self, wait: impl Future<Output = T>) -> Option<T> {
        close_requested(&mut self.commands, &mut self.deferred, wait).await
    }

    /// The bookkeeping after a new connection is configured and replayed into.
    async fn reconnected(&mut self, rollover: bool, why: &str) -> Flow {
        let now = Instant::now();
        self.connected_at = now;
        self.last_frame = now;
        self.watchdog.reset(now);
        self.pending_create = None;
        self.response_tokens.clear();
        // Audio items of the old connection cannot be truncated on the new one.
        self.barge_in.connection_reset();
        let policy = self.budget.policy().clone();
        let active = self.sequencer.active_response().map(str::to_owned);
        // A response we cancelled ourselves (the user spoke over it, the app asked) is not
        // asked for again just because the connection dropped before its end.
        let ours = active
            .as_ref()
            .is_some_and(|id| self.cancelled_by_us.contains(id));
        let rerequest = self.rerequests < policy.rerequest_cut_responses && !ours;
        let cut = self.sequencer.response_in_flight() && !self.sequencer.response_expected();
        let cut_had_calls = active
            .as_ref()
            .is_some_and(|id| self.response_calls.contains_key(id));
        self.in_session = self
            .log
            .items()
            .filter_map(|item| item.as_function_call().map(|c| c.call_id.clone()))
            .collect();
        // Responses cut off by the drop will not send `response.done`. Their calls that
        // completed finish on their own: their items and outputs go out on the new connection
        // and then the model is asked to go on, so it sees what already ran instead of being
        // asked the same question again (which could run a side effect twice under a new
        // call id). Only a cut response without calls is asked for again.
        for calls in self.response_calls.values_mut() {
            calls.done = true;
        }
        // Output the old connection never finished leaves the log; calls that are running or
        // finished keep their slots.
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
        if let Some(id) = active.as_ref().filter(|_| ours) {
            self.sequencer.suppress_follow_up(id);
        }
        let mut steps = self.sequencer.connection_reset(rerequest);
        if cut && !cut_had_calls && steps.iter().any(|s| matches!(s, Step::CreateResponse)) {
            self.rerequests += 1;
        }
        if cut && !rerequest && !cut_had_calls && !ours {
            steps.extend(self.fail_turn(TurnFailure::ConnectionLost {
                reason: why.to_owned(),
            }));
        }
        self.emit(SessionEvent::Reconnected {
            replayed_items: self.log.len(),
            rollover,
        });
        self.flush_and_apply(steps).await
    }

    pub(super) async fn on_keepalive(&mut self) -> Flow {
        let dead_after = self.config.keepalive.dead_after;
        if self.last_frame.elapsed() > dead_after {
            return Flow::Lost(format!(
                "no data from the server for {}, not even an answer to a ping",
                human(dead_after)
            ));
        }
        match self.write(Message::Ping(Vec::new().into())).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    pub(super) async fn on_frame(
        &mut self,
        frame: Option<Result<Message, tungstenite::Error>>,
    ) -> Flow {
        self.last_frame = Instant::now();
        let text = match frame {
            None => return Flow::Lost("the connection dropped".into()),
            Some(Err(err)) => return Flow::Lost(describe(&err)),
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
                self.warn("ignored a binary frame; the Realtime protocol is JSON text");
                return Flow::Continue;
            }
            Some(Ok(_)) => return Flow::Continue,
        };
        self.observe(Direction::Received, text.as_str());
        match ServerEvent::decode(text.as_str()) {
            Ok(event) => self.on_event(event).await,
            Err(err) => {
                self.warn(&format!("skipped a server frame: {err}"));
                Flow::Continue
            }
        }
    }

    /// Queues one event for the socket; the loop flushes once per step, so the frames of one
    /// step share a write. A failure means the connection is gone (`Flow::Lost`).
    pub(super) async fn send(&mut self, event: ClientEvent) -> Result<(), Flow> {
        let text = match event.encode(self.config.connect.dialect) {
            Ok(text) => text,
            Err(err) => {
                self.warn(&format!("did not send an event: {err}"));
                return Ok(());
            }
        };
        self.observe(Direction::Sent, &text);
        let dead_after = self.config.keepalive.dead_after;
        match tokio::time::timeout(dead_after, self.ws.feed(Message::Text(text.into()))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Flow::Lost(describe(&err))),
            Err(_) => Err(Flow::Lost(stopped_reading(dead_after))),
        }
    }

    /// Sends one frame now (a ping), with the same deadline as every write.
    async fn write(&mut self, message: Message) -> Result<(), Flow> {
        let dead_after = self.config.keepalive.dead_after;
        match tokio::time::timeout(dead_after, self.ws.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Flow::Lost(describe(&err))),
            Err(_) => Err(Flow::Lost(stopped_reading(dead_after))),
        }
    }

    /// Writes out what the step queued, with the same deadline as every write.
    pub(super) async fn flush(&mut self) -> Result<(), Flow> {
        let dead_after = self.config.keepalive.dead_after;
        match tokio::time::timeout(dead_after, self.ws.flush()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Flow::Lost(describe(&err))),
            Err(_) => Err(Flow::Lost(stopped_reading(dead_after))),
        }
    }
}

fn stopped_reading(after: Duration) -> String {
    format!(
        "the server stopped reading: a write did not complete within {}",
        human(after)
    )
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

/// A socket error in words: an oversized or undecodable frame says so, rather than passing as
/// a generic drop.
pub(super) fn describe(err: &tungstenite::Error) -> String {
    use tungstenite::error::CapacityError;
    match err {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => format!(
            "the server sent a message of {size} bytes, over the {max_size}-byte limit (max_message_bytes); the connection cannot continue after it"
        ),
        tungstenite::Error::Capacity(other) => {
            format!("the server sent a frame over the size limit ({other})")
        }
        tungstenite::Error::Utf8(_) => {
            "the server sent a text frame that is not valid UTF-8".to_owned()
        }
        tungstenite::Error::Protocol(
            tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        )
        | tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed => "the connection dropped".to_owned(),
        tungstenite::Error::Io(io) => format!("the connection failed ({io})"),
        tungstenite::Error::Protocol(problem) => {
            format!("the server broke the WebSocket protocol ({problem})")
        }
        other => other.to_string(),
    }
}

/// Connects, configures the session and replays `log` into it.
pub(crate) async fn establish(
    config: &SessionConfig,
    log: &ConversationLog,
) -> Result<(WsStream, (Option<String>, Option<String>)), SessionError> {
    let mut ws = transport::connect(&config.connect).await?;
    let ids = configure(&mut ws, config).await?;
    if config.session.kind == SessionKind::Transcription {
        // A transcription session has no conversation to restore: its items are transcripts.
        return Ok((ws, ids));
    }
    let entries = match config.compaction {
        Some(compaction) => compaction.apply(&log.entries()),
        None => log.entries(),
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
    let wait = config.ready_timeout;
    match tokio::time::timeout(wait, ws.send(Message::Text(text.into()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(SessionError::ConnectionLost(describe(&err))),
        Err(_) => Err(SessionError::NotReady { after: wait }),
    }
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
            Some(Err(err)) => return Err(SessionError::ConnectionLost(describe(&err))),
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(frame))) => {
                return match frame {
                    Some(f) if is_final_close(u16::from(f.code)) => {
                        Err(SessionError::Ended(format!(
                            "the server ended the session (close code {}: {}); reconnecting would not help",
                            f.code, f.reason
                        )))
                    }
                    Some(f) => Err(SessionError::ConnectionLost(format!(
                        "closed by the server ({}: {})",
                        f.code, f.reason
                    ))),
                    None => Err(SessionError::ConnectionLost("closed by the server".into())),
                };
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
