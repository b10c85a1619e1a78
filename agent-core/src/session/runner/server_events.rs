//! Event routing: which handler each server event goes to. The handlers live with their
//! concern: [`items`](super::items) for the conversation's order, [`speech`](super::speech)
//! for the user's turns and barge-in, [`responses`](super::responses) for a response's end,
//! [`errors`](super::errors) for `error` events, [`calls`](super::calls) for function calls.

use std::time::Instant;

use super::{Flow, Runner};
use crate::{protocol::ServerEvent, session::events::SessionEvent};

impl Runner {
    pub(super) async fn on_event(&mut self, event: ServerEvent) -> Flow {
        if event.event_type().starts_with("response.") {
            self.watchdog.progress(Instant::now());
        }
        match event {
            ServerEvent::ResponseCreated(e) => {
                self.on_response_created(e.response.id.clone());
                self.filler_created(&e.response);
                return self.guard_response_created(&e.response.id).await;
            }
            ServerEvent::ResponseOutputTextDelta(e) => {
                self.accounting.delta(&e.response_id, false);
                match self.guard_delta(&e.response_id, &e.item_id, &e.delta).await {
                    Ok(true) => self.emit(SessionEvent::TextDelta {
                        response_id: e.response_id,
                        item_id: e.item_id,
                        delta: e.delta,
                    }),
                    Ok(false) => {}
                    Err(flow) => return flow,
                }
            }
            ServerEvent::ResponseOutputAudioTranscriptDelta(e) => {
                self.accounting.delta(&e.response_id, false);
                match self.guard_delta(&e.response_id, &e.item_id, &e.delta).await {
                    Ok(true) => self.emit(SessionEvent::TranscriptDelta {
                        response_id: e.response_id,
                        item_id: e.item_id,
                        delta: e.delta,
                    }),
                    Ok(false) => {}
                    Err(flow) => return flow,
                }
            }
            ServerEvent::ResponseOutputTextDone(e) => {
                return self.guard_done(&e.response_id, &e.item_id, &e.text).await;
            }
            ServerEvent::ResponseOutputAudioTranscriptDone(e) => {
                return self
                    .guard_done(&e.response_id, &e.item_id, &e.transcript)
                    .await;
            }
            ServerEvent::ResponseOutputAudioDelta(e) => {
                self.on_audio_delta(e.response_id, e.item_id, e.content_index, &e.delta);
            }
            ServerEvent::ResponseOutputItemAdded(e) => self.reserve_output(&e.response_id, &e.item),
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
                    item_id: e.item_id.clone(),
                    text: e.transcript.clone(),
                });
                self.emit_all(accounted);
                return self.guard_transcript(&e.item_id, &e.transcript).await;
            }
            ServerEvent::ConversationItemInputAudioTranscriptionFailed(e) => {
                return self.guard_untranscribed(&e.item_id).await;
            }
            ServerEvent::ConversationItemInputAudioTranscriptionDelta(e) => {
                if let Some(delta) = e.delta.filter(|d| !d.is_empty()) {
                    let item_id = e.item_id;
                    self.emit(SessionEvent::UserTranscriptDelta { item_id, delta });
                }
            }
            ServerEvent::ConversationItemTruncated(e) => {
                self.on_item_truncated(&e.item_id, e.content_index, e.audio_end_ms);
            }
            ServerEvent::InputAudioBufferSpeechStarted(e) => {
                return self.on_speech_started(e.item_id, e.audio_start_ms).await;
            }
            ServerEvent::InputAudioBufferSpeechStopped(e) => {
                return self.on_speech_stopped(e.item_id, e.audio_end_ms).await;
            }
            ServerEvent::InputAudioBufferCommitted(_) | ServerEvent::InputAudioBufferCleared(_)
                if self.sequencer.user_speaking() =>
            {
                return self.on_input_ended().await;
            }
            ServerEvent::ResponseOutputItemDone(e) => {
                self.on_output_item_done(&e.response_id, &e.item).await;
            }
            ServerEvent::InputAudioBufferDtmfEventReceived(e) => self.emit(SessionEvent::Dtmf {
                digit: e.event,
                received_at: e.received_at,
            }),
            ServerEvent::ResponseDone(e) => return self.on_response_done(e).await,
            ServerEvent::SessionUpdated(_) => return self.on_session_updated().await,
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
        self.accounting.response_created(&id);
        self.response_tokens
            .insert(id.clone(), self.shutdown.child_token());
        self.emit(SessionEvent::ResponseStarted { response_id: id });
    }

    /// A chunk of the assistant's audio: played, unless a barge-in cut its item off.
    fn on_audio_delta(
        &mut self,
        response_id: String,
        item_id: String,
        content_index: u32,
        delta: &str,
    ) {
        self.accounting.delta(&response_id, true);
        match crate::audio::decode_base64(delta) {
            // Audio cut off by a barge-in is dropped, not played.
            Ok(data)
                if !self.barge_in.on_audio(
                    &response_id,
                    &item_id,
                    content_index,
                    data.len(),
                    Instant::now(),
                ) => {}
            Ok(data) => self.emit(SessionEvent::Audio {
                response_id,
                item_id,
                data,
            }),
            Err(err) => self.warn(&format!("skipped an audio delta: {err}")),
        }
    }
}
