//! Dispatch of client events, error answers, and `session.update`.

use super::*;

impl Conn {
    pub(super) fn reply(&mut self, value: Value) {
        self.replies.push_back(Outgoing::new(value));
    }

    pub(super) fn error(
        &mut self,
        spec: ErrorSpec,
        client_event_id: Option<&str>,
        violation: bool,
    ) {
        if violation {
            let code = spec.code.as_deref().unwrap_or("error");
            self.violation(format!("{code}: {}", spec.message));
        }
        let ev = wire::error_event(&spec, client_event_id);
        self.reply(ev);
    }

    pub(super) fn on_client_event(&mut self, raw: &str) {
        let parsed = serde_json::from_str::<Value>(raw);
        if let Some(kind) = parsed
            .as_ref()
            .ok()
            .and_then(|e| e.get("type"))
            .and_then(Value::as_str)
        {
            self.shared.note_received(kind);
        }
        if self.stalled {
            return; // recorded and counted, never answered
        }
        let event = match parsed {
            Ok(v) => v,
            Err(e) => {
                self.error(
                    invalid_request(
                        "invalid_json",
                        format!("We could not parse the JSON body of your request ({e}). Send each client event as one JSON object."),
                        None,
                    ),
                    None,
                    true,
                );
                return;
            }
        };
        let event_id = event
            .get("event_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let eid = event_id.as_deref();
        let Some(kind) = event.get("type").and_then(Value::as_str) else {
            self.error(
                invalid_request(
                    "missing_required_parameter",
                    "Missing required parameter: 'type'.",
                    Some("type"),
                ),
                eid,
                true,
            );
            return;
        };
        let setup = matches!(kind, "session.update" | "transcription_session.update");
        if self.faults.session_expired_on_request && !setup {
            self.reply(wire::error_event(&ErrorSpec::session_expired(), None));
            self.replies.push_back(Outgoing::action(
                Effect::Close(CloseSpec::session_expired()),
            ));
            return;
        }
        let creates = kind == "response.create";
        if !creates {
            self.release_unanswered_transcripts();
        }
        self.dispatch(kind, &event, eid);
        if creates {
            self.release_unanswered_transcripts();
        }
    }

    /// Answers one well-formed client event.
    fn dispatch(&mut self, kind: &str, event: &Value, eid: Option<&str>) {
        match kind {
            "session.update" => self.on_session_update(event, eid),
            "transcription_session.update" if self.dialect == Dialect::Beta => {
                if let Some(update) = event.get("session") {
                    session::merge(&mut self.session, update);
                }
                let s = self.session.clone();
                self.reply(json!({"type": "transcription_session.updated", "session": s}));
            }
            "input_audio_buffer.append" => self.on_append(event, eid),
            "input_audio_buffer.commit" => self.on_commit(eid),
            "input_audio_buffer.clear" => {
                self.input_bytes = 0;
                self.vad.reset_utterance();
                self.vad_item = None;
                self.reply(json!({"type": "input_audio_buffer.cleared"}));
            }
            "conversation.item.create" => self.on_item_create(event, eid),
            "conversation.item.retrieve" => self.on_item_retrieve(event, eid),
            "conversation.item.delete" => self.on_item_delete(event, eid),
            "conversation.item.truncate" => self.on_truncate(event, eid),
            "response.create" => self.on_response_create(event, eid),
            "response.cancel" => self.on_response_cancel(event, eid),
            "output_audio_buffer.clear" => {
                // Nothing plays any more: no `stopped` follows.
                let rid = self
                    .playing
                    .take()
                    .or_else(|| self.active.as_ref().map(|a| a.id.clone()));
                if self.media.is_some() {
                    self.replies
                        .push_back(Outgoing::action(Effect::StopPlayout));
                }
                self.reply(json!({"type": "output_audio_buffer.cleared", "response_id": rid}));
            }
            other => {
                let supported = wire::client_event_types(self.dialect)
                    .iter()
                    .map(|t| format!("'{t}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                self.error(
                    invalid_request(
                        "invalid_value",
                        format!("Invalid value: '{other}'. Supported values are: {supported}."),
                        Some("type"),
                    ),
                    eid,
                    true,
                );
            }
        }
    }

    pub(super) fn on_session_update(&mut self, event: &Value, eid: Option<&str>) {
        let update = event.get("session");
        if let Err(spec) = session::validate_update(self.dialect, update) {
            self.error(spec, eid, true);
            return;
        }
        let Some(update) = update else { return };
        let becomes_transcription = update.get("type").and_then(Value::as_str)
            == Some("transcription")
            && !self.view().is_transcription();
        if becomes_transcription {
            let id = self.session.get("id").cloned().unwrap_or(Value::Null);
            let expires = self
                .session
                .get("expires_at")
                .cloned()
                .unwrap_or(Value::Null);
            let input = self
                .session
                .pointer("/audio/input")
                .cloned()
                .unwrap_or(Value::Null);
            self.session = json!({
                "type": "transcription",
                "object": "realtime.transcription_session",
                "id": id,
                "expires_at": expires,
                "audio": {"input": input},
                "include": null,
            });
        }
        session::merge(&mut self.session, update);
        let s = self.session.clone();
        self.reply(json!({"type": "session.updated", "session": s}));
    }
}
