//! `input_audio_buffer.*`, server VAD, transcription, and scripted barge-in.

use super::*;

impl Conn {
    pub(super) fn on_append(&mut self, event: &Value, eid: Option<&str>) {
        let Some(audio) = event.get("audio").and_then(Value::as_str) else {
            let spec = invalid_request(
                "missing_required_parameter",
                "Missing required parameter: 'audio'.",
                Some("audio"),
            );
            self.error(spec, eid, true);
            return;
        };
        let Some(bytes) = decode_base64(audio) else {
            let spec = invalid_request(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded audio bytes.",
                Some("audio"),
            );
            self.error(spec, eid, true);
            return;
        };
        self.input_bytes += bytes.len();
        self.shared.note_received_audio(bytes.len());
        if let Some(probe) = &self.shared.config.audio_probe {
            probe.appended(self.index, &bytes);
        }
        let format = self.view().input_format();
        self.input_ms_total = self.vad_position(format, bytes.len());
        let Some(params) = self.view().vad() else {
            return;
        };
        for ev in self.vad.feed(&bytes, format, &params) {
            match ev {
                VadEvent::Started { audio_start_ms } => {
                    self.speech_started(audio_start_ms, &params)
                }
                VadEvent::Stopped { audio_end_ms } => self.speech_stopped(audio_end_ms, &params),
            }
        }
    }

    /// Server VAD heard the user start: `speech_started`, and the answer being given is cut
    /// off when the session says so.
    pub(super) fn speech_started(&mut self, audio_start_ms: u64, params: &VadParams) {
        let next_turn = self.turn.map_or(0, |t| t + 1);
        let id = self
            .conversation
            .unique_id(&format!("item_t{next_turn}_user"));
        self.vad_item = Some(id.clone());
        self.reply(json!({
            "type": "input_audio_buffer.speech_started",
            "audio_start_ms": audio_start_ms,
            "item_id": id,
        }));
        if params.interrupt_response {
            if self.active.is_some() {
                self.cancel_active("turn_detected");
            }
            self.interrupt_playout();
        }
    }

    /// Server VAD heard the user stop: `speech_stopped`, the buffer is committed as the user's
    /// turn and answered when the session's turn detection creates responses.
    pub(super) fn speech_stopped(&mut self, audio_end_ms: u64, params: &VadParams) {
        let id = self.vad_item.clone();
        self.reply(json!({
            "type": "input_audio_buffer.speech_stopped",
            "audio_end_ms": audio_end_ms,
            "item_id": id,
        }));
        self.commit_buffer();
        if params.create_response && !self.view().is_transcription() {
            if self.active.is_some() {
                self.pending_auto_response = true;
            } else {
                self.start_response(&Value::Null);
            }
        }
    }

    pub(super) fn on_commit(&mut self, eid: Option<&str>) {
        let format = self.view().input_format();
        let ms = format.ms(self.input_bytes);
        if ms < 100 {
            let vad_on = self.view().vad().is_some();
            let spec = invalid_request(
                "input_audio_buffer_commit_empty",
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {ms}.00ms of audio."
                ),
                None,
            );
            self.error(spec, eid, !vad_on);
            return;
        }
        self.commit_buffer();
    }

    /// Turns the buffered audio into a user item (a new turn).
    pub(super) fn commit_buffer(&mut self) {
        let format = self.view().input_format();
        let ms = format.ms(self.input_bytes);
        self.input_bytes = 0;
        self.vad.reset_utterance();
        self.commit_audio(ms);
    }

    /// Adds a user audio item of `ms` milliseconds (a new turn) and transcribes it if asked to
    /// (the transcript may be held back, see `late_transcripts`).
    pub(super) fn commit_audio(&mut self, ms: u64) {
        self.user_message(None);
        let turn = self.turn.unwrap_or(0);
        let id = match self.vad_item.take() {
            Some(id) if !self.conversation.contains(&id) => id,
            _ => self.conversation.unique_id(&format!("item_t{turn}_user")),
        };
        let prev = self.conversation.last_id();
        self.reply(json!({"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": id}));
        let item = wire::finish_item(
            self.dialect,
            json!({
                "id": id,
                "type": "message",
                "status": "completed",
                "role": "user",
                "content": [{"type": "input_audio", "transcript": null}],
            }),
        );
        let prev = self.conversation.insert(
            Entry {
                id: id.clone(),
                item: item.clone(),
                audio_ms_sent: None,
                input_audio_ms: ms,
            },
            None,
        );
        self.added_events(&item, prev);
        if let Some(model) = self.view().transcription_model() {
            self.transcribe(&id, turn, ms, &model);
        }
    }

    /// Transcribes a committed user audio item as the scripted turn's `user` text: the item's
    /// transcript is filled in, and the `.delta` / `.completed` events are sent or held back.
    fn transcribe(&mut self, id: &str, turn: usize, ms: u64, model: &str) {
        let transcript = self
            .shared
            .config
            .scenario
            .turns
            .get(turn)
            .and_then(|t| t.user.clone())
            .unwrap_or_default();
        let mut events = Vec::new();
        for delta in wire::word_deltas(&transcript) {
            events.push(json!({
                "type": "conversation.item.input_audio_transcription.delta",
                "item_id": id,
                "content_index": 0,
                "delta": delta,
            }));
        }
        let mut done = json!({
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": id,
            "content_index": 0,
            "transcript": transcript,
        });
        if self.dialect == Dialect::Ga {
            let usage = if model == "whisper-1" {
                json!({"type": "duration", "seconds": ms as f64 / 1000.0})
            } else {
                let input = ms.div_ceil(100);
                let output = usage::text_tokens(transcript.len());
                json!({
                    "type": "tokens",
                    "input_tokens": input,
                    "output_tokens": output,
                    "total_tokens": input + output,
                    "input_token_details": {"text_tokens": 0, "audio_tokens": input},
                })
            };
            if let Some(obj) = done.as_object_mut() {
                obj.insert("usage".into(), usage);
            }
        }
        if let Some(entry) = self.conversation.get_mut(id)
            && let Some(part) = entry.item.pointer_mut("/content/0")
            && let Some(obj) = part.as_object_mut()
        {
            obj.insert("transcript".into(), json!(transcript));
        }
        events.push(done);
        self.send_or_hold_transcript(events);
    }

    pub(super) fn vad_position(
        &self,
        format: crate::server::audio::AudioFormat,
        new_bytes: usize,
    ) -> u64 {
        self.input_ms_total + format.ms(new_bytes)
    }

    /// A scripted barge-in: the user starts saying the next turn while the model speaks.
    pub(super) fn barge_in(&mut self) {
        let Some(params) = self.view().vad() else {
            tracing::debug!(
                connection = self.index,
                "scripted barge-in skipped: the session has no turn detection"
            );
            return;
        };
        let next_turn = self.turn.map_or(0, |t| t + 1);
        let id = self
            .conversation
            .unique_id(&format!("item_t{next_turn}_user"));
        self.vad_item = Some(id.clone());
        self.reply(json!({
            "type": "input_audio_buffer.speech_started",
            "audio_start_ms": self.input_ms_total,
            "item_id": id,
        }));
        if params.interrupt_response {
            if self.active.is_some() {
                self.cancel_active("turn_detected");
            }
            self.interrupt_playout();
        }
        self.pending_barge_in = true;
        if self.active.is_none() {
            self.finish_barge_in();
        }
    }

    /// Ends a scripted barge-in: the user's utterance is committed and answered.
    pub(super) fn finish_barge_in(&mut self) {
        self.pending_barge_in = false;
        let Some(params) = self.view().vad() else {
            return;
        };
        let next_turn = self.turn.map_or(0, |t| t + 1);
        let words = self
            .shared
            .config
            .scenario
            .turns
            .get(next_turn)
            .and_then(|t| t.user.as_deref())
            .map_or(0, |u| u.chars().count());
        let ms = (words as u64 * u64::from(self.shared.config.audio.ms_per_char)).max(300);
        self.input_ms_total += ms;
        let id = self.vad_item.clone();
        self.reply(json!({
            "type": "input_audio_buffer.speech_stopped",
            "audio_end_ms": self.input_ms_total,
            "item_id": id,
        }));
        self.commit_audio(ms);
        if params.create_response && !self.view().is_transcription() {
            self.start_response(&Value::Null);
        }
    }
}
