//! What each server event changes: the sequencer's slot, the log's order, the app's events,
//! and the deadlines.

use std::time::Instant;

use super::{Flow, Runner};
use crate::{
    protocol::{
        ClientEvent, ContentPart, ErrorEvent, Item, Response, Role, ServerEvent, error_codes,
    },
    session::{
        events::{CloseReason, SessionEvent, TurnFailure, human},
        log::truncated,
    },
};

impl Runner {
    pub(super) async fn on_event(&mut self, event: ServerEvent) -> Flow {
        if event.event_type().starts_with("response.") {
            self.watchdog.progress(Instant::now());
        }
        match event {
            ServerEvent::ResponseCreated(e) => self.on_response_created(e.response.id),
            ServerEvent::ResponseOutputTextDelta(e) => {
                self.accounting.delta(false);
                self.emit(SessionEvent::TextDelta {
                    response_id: e.response_id,
                    item_id: e.item_id,
                    delta: e.delta,
                });
            }
            ServerEvent::ResponseOutputAudioTranscriptDelta(e) => {
                self.accounting.delta(false);
                self.emit(SessionEvent::TranscriptDelta {
                    response_id: e.response_id,
                    item_id: e.item_id,
                    delta: e.delta,
                });
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
                    Ok(data) => self.emit(SessionEvent::Audio {
                        response_id: e.response_id,
                        item_id: e.item_id,
                        data,
                    }),
                    Err(err) => self.warn(&format!("skipped an audio delta: {err}")),
                }
            }
            ServerEvent::ResponseOutputItemAdded(e) => {
                self.reserve_output(&e.response_id, &e.item);
            }
            ServerEvent::ConversationItemAdded(e) => {
                self.on_item_added(e.item, e.previous_item_id.as_deref());
            }
            ServerEvent::ConversationItemCreated(e) => {
                self.on_item_added(e.item, e.previous_item_id.as_deref());
            }
            ServerEvent::ConversationItemInputAudioTranscriptionCompleted(e) => {
                self.on_user_transcript(&e.item_id, e.content_index, &e.transcript);
                let accounted = self.accounting.transcription(&e.item_id, e.usage.as_ref());
                self.emit(SessionEvent::UserTranscript {
                    item_id: e.item_id,
                    text: e.transcript,
                });
                self.emit_all(accounted);
            }
            ServerEvent::ConversationItemInputAudioTranscriptionDelta(e) => {
                if let Some(delta) = e.delta.filter(|d| !d.is_empty()) {
                    self.emit(SessionEvent::UserTranscriptDelta {
                        item_id: e.item_id,
                        delta,
                    });
                }
            }
            ServerEvent::ConversationItemTruncated(e) => {
                // What the user did not hear leaves the history too (and any replay of it).
                let key = format!("item:{}", e.item_id);
                let received = self.barge_in.tracker().received_ms(&e.item_id);
                if let Some(item) = self.log.get(&key) {
                    let cut = truncated(
                        item,
                        usize::try_from(e.content_index).unwrap_or(usize::MAX),
                        e.audio_end_ms,
                        received,
                    );
                    self.replace_item(&key, cut);
                }
            }
            ServerEvent::InputAudioBufferSpeechStarted(e) => {
                self.sequencer.speech_started();
                self.watchdog.speech(Instant::now());
                self.emit(SessionEvent::SpeechStarted {
                    item_id: e.item_id,
                    audio_start_ms: e.audio_start_ms,
                });
                return self.on_barge_in().await;
            }
            ServerEvent::InputAudioBufferSpeechStopped(e) => {
                let accounted = self.accounting.speech_stopped();
                self.emit_all(accounted);
                self.emit(SessionEvent::SpeechStopped {
                    item_id: e.item_id,
                    audio_end_ms: e.audio_end_ms,
                });
                self.watchdog.progress(Instant::now());
                self.watchdog.speech_over();
                // The user said something: a new turn, whose tool rounds start from zero.
                self.tool_rounds = 0;
                let steps = self.sequencer.speech_stopped(self.server_responds);
                return self.apply(steps).await;
            }
            ServerEvent::InputAudioBufferCommitted(_) | ServerEvent::InputAudioBufferCleared(_)
                if self.sequencer.user_speaking() =>
            {
                self.watchdog.speech_over();
                let steps = self.sequencer.input_ended();
                return self.apply(steps).await;
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
            ServerEvent::ResponseDone(e) => {
                for note in &e.malformed {
                    self.warn(&format!(
                        "a malformed response.done for {} was read in part: {note}",
                        e.response.id
                    ));
                }
                return self.on_response_done(e.response).await;
            }
            ServerEvent::Error(e) => return self.on_error(e).await,
            ServerEvent::Unknown(e) => {
                tracing::debug!(event_type = %e.event_type, "ignored an unknown server event");
            }
            _ => {}
        }
        Flow::Continue
    }

    fn on_response_created(&mut self, id: String) {
        // Ours or one the server's turn detection started: either way the slot is taken.
        self.pending_create = None;
        self.sequencer.response_created(&id);
        self.response_tokens
            .insert(id.clone(), self.shutdown.child_token());
        self.emit(SessionEvent::ResponseStarted { response_id: id });
    }

    /// A response announced an output item: its place in the log is taken now, so the order
    /// is the server's even when it completes after later items.
    fn reserve_output(&mut self, response_id: &str, item: &Item) {
        let key = match item {
            Item::Message(message) if message.role == Role::Assistant => {
                message.id.as_ref().map(|id| format!("item:{id}"))
            }
            Item::FunctionCall(call) if !call.call_id.is_empty() => {
                Some(format!("call:{}", call.call_id))
            }
            _ => None,
        };
        let Some(key) = key else { return };
        if self.log.contains(&key) {
            return;
        }
        self.log.reserve(key.clone(), item.id(), None);
        self.response_slots
            .entry(response_id.to_owned())
            .or_default()
            .push(key);
    }

    /// An item entered the server's conversation. A spoken user turn is logged now, at its
    /// place (`previous_item_id`), and its transcript filled in when it arrives; the server
    /// ids of calls and outputs are noted so later items can be placed after them (a spoken
    /// turn after an item whose id the log does not know goes at the end).
    fn on_item_added(&mut self, item: Item, previous: Option<&str>) {
        let Some(id) = item.id().map(str::to_owned) else {
            return;
        };
        match &item {
            Item::FunctionCall(call) => self
                .log
                .set_server_id(&format!("call:{}", call.call_id), &id),
            Item::FunctionCallOutput(output) => {
                self.log
                    .set_server_id(&format!("output:{}", output.call_id), &id);
            }
            Item::Message(message) if message.role == Role::User && is_spoken(&item) => {
                let key = format!("item:{id}");
                if !self.log.contains(&key) {
                    // A new user turn: the tool rounds start again.
                    self.tool_rounds = 0;
                    self.log.insert_after(key, item.clone(), previous);
                    self.settle();
                }
            }
            _ => {}
        }
    }

    /// The transcript of a spoken user turn arrived: it fills in the logged item, wherever
    /// the turn sits, however late it comes.
    fn on_user_transcript(&mut self, item_id: &str, content_index: u32, transcript: &str) {
        let key = format!("item:{item_id}");
        let index = usize::try_from(content_index).unwrap_or(usize::MAX);
        match self.log.get(&key).cloned() {
            Some(mut item) => {
                if let Item::Message(message) = &mut item {
                    match message.content.get_mut(index) {
                        Some(ContentPart::InputAudio {
                            transcript: slot, ..
                        }) => *slot = Some(transcript.to_owned()),
                        _ => message.content.push(ContentPart::InputAudio {
                            audio: None,
                            transcript: Some(transcript.to_owned()),
                        }),
                    }
                }
                self.replace_item(&key, item);
            }
            // A server that did not announce the item: logged where it is now.
            None => {
                let mut item = Item::message(
                    Role::User,
                    vec![ContentPart::InputAudio {
                        audio: None,
                        transcript: Some(transcript.to_owned()),
                    }],
                );
                if let Item::Message(message) = &mut item {
                    message.id = Some(item_id.to_owned());
                }
                self.record(key, item);
            }
        }
    }

    pub(super) async fn on_response_done(&mut self, response: Response) -> Flow {
        let id = response.id.clone();
        // Calls whose `response.output_item.done` we missed still run if their item completed.
        for item in &response.output {
            self.maybe_start_call(&id, item).await;
        }
        let status = response
            .status
            .as_ref()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|| "completed".to_owned());
        // A response we cancelled because it stalled; one that says it completed anyway is
        // taken at its word and not asked for again.
        let stalled = self.watchdog.done(&id) && status != "completed";
        let ours = self.cancelled_by_us.remove(&id);
        if let Some(token) = self.response_tokens.remove(&id)
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
            self.sequencer.suppress_follow_up(&id);
        }
        if let Some(calls) = self.response_calls.get_mut(&id) {
            calls.done = true;
        }
        self.release_slots(&id, &response);
        self.barge_in.on_response_done(&id, Instant::now());
        let mut steps = self.sequencer.response_done(&id);
        let accounted = self.accounting.response_done(&id, response.usage.as_ref());
        self.emit(SessionEvent::ResponseDone {
            response_id: id.clone(),
            status: status.clone(),
            usage: response.usage.clone(),
        });
        self.emit_all(accounted);
        let failure = if stalled {
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
        } else {
            let details = response.status_details.as_ref();
            let reason = details
                .and_then(|d| d.reason.as_ref())
                .map(|r| r.as_str().to_owned());
            match status.as_str() {
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
                // The user speaking over it, or our own cancel, is how conversations go; a
                // cancel nobody here asked for is not.
                "cancelled" if !ours && reason.as_deref() != Some("turn_detected") => {
                    Some(TurnFailure::Cancelled { reason })
                }
                _ => None,
            }
        };
        if self.over_limit.remove(&id) {
            self.emit(SessionEvent::TurnFailed {
                failure: TurnFailure::ToolRounds {
                    limit: self.config.max_tool_rounds,
                },
            });
        }
        if let Some(failure) = failure {
            steps.extend(self.fail_turn(failure));
        }
        self.flush_and_apply(steps).await
    }

    /// The response is done: slots of output it announced but never finished are filled from
    /// its final output, or released. Its calls keep their slots until their outputs go out.
    fn release_slots(&mut self, response_id: &str, response: &Response) {
        let Some(keys) = self.response_slots.remove(response_id) else {
            return;
        };
        let running: Vec<String> = self
            .response_calls
            .get(response_id)
            .map(|calls| calls.order.iter().map(|c| format!("call:{c}")).collect())
            .unwrap_or_default();
        for key in keys {
            if !self.log.is_open(&key) || running.contains(&key) {
                continue;
            }
            let finished = response.output.iter().find(|item| {
                matches!(item, Item::Message(m) if m.role == Role::Assistant
                    && m.id.as_deref().map(|id| format!("item:{id}")).as_deref() == Some(key.as_str()))
            });
            match finished {
                Some(item) => {
                    self.log.push(key, item.clone());
                }
                None => self.log.abandon(&key),
            }
        }
        self.settle();
    }

    pub(super) async fn on_error(&mut self, event: ErrorEvent) -> Flow {
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
        });
        if fatal {
            return Flow::Close(CloseReason::Fatal { code, message });
        }
        // The error answers our pending `response.create` when it names it. A server that does
        // not echo event ids gets the benefit of the doubt only for the one error that can only
        // be about a create; anything else unanswered is left to the watchdog.
        let already_active = code.as_deref() == Some("conversation_already_has_active_response");
        let answers_create = match &event.error.event_id {
            Some(id) => self.pending_create.as_ref() == Some(id),
            None => already_active && self.sequencer.create_pending(),
        };
        if !answers_create {
            return Flow::Continue;
        }
        self.pending_create = None;
        if already_active {
            if self.sequencer.active_response().is_some() {
                // The usual race: the server's turn detection started a response first. Ours
                // goes out again once that one is done.
                let steps = self.sequencer.create_refused();
                return self.apply(steps).await;
            }
            // A response we have not seen is active: wait for it (or a short while), once.
            if self.rerequests < self.budget.policy().rerequest_cut_responses {
                self.rerequests += 1;
                self.watchdog.progress(Instant::now());
                let steps = self.sequencer.create_refused();
                return self.apply(steps).await;
            }
        }
        // The server will not start this response: the request is over, and so is the turn.
        let steps = self.fail_turn(TurnFailure::Refused { code, message });
        self.flush_and_apply(steps).await
    }

    /// The user started speaking: stop playback, cancel and truncate as `barge_in` decides.
    pub(super) async fn on_barge_in(&mut self) -> Flow {
        let active = self.sequencer.active_response().map(str::to_owned);
        let reactions = self
            .barge_in
            .on_speech_started(active.as_deref(), Instant::now());
        for reaction in reactions {
            match reaction {
                crate::session::barge_in::Reaction::Interrupted {
                    item_id,
                    audio_end_ms,
                } => self.emit(SessionEvent::Interrupted {
                    item_id,
                    audio_end_ms,
                }),
                crate::session::barge_in::Reaction::Send(event) => {
                    if let (ClientEvent::ResponseCancel(_), Some(id)) = (event.as_ref(), &active) {
                        self.cancelled_by_us.insert(id.clone());
                    }
                    if let Err(flow) = self.send(*event).await {
                        return flow;
                    }
                }
            }
        }
        Flow::Continue
    }

    /// Cancels a response that sent nothing for too long, and starts waiting for its end.
    pub(super) async fn cancel_stalled(&mut self, response_id: &str) -> Flow {
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

/// Whether a user message holds audio (a spoken turn the server made from the input buffer).
fn is_spoken(item: &Item) -> bool {
    item.as_message().is_some_and(|m| {
        m.content
            .iter()
            .any(|part| matches!(part, ContentPart::InputAudio { .. }))
    })
}
