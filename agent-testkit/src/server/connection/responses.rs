//! `response.create` / `response.cancel`: picking the scripted step and playing it.

use super::*;
use crate::server::FILLER_LINE;

impl Conn {
    pub(super) fn on_response_create(&mut self, event: &Value, eid: Option<&str>) {
        if let Some((spec, times)) = &self.faults.fail_response_create
            && self.failed_creates < *times
        {
            let spec = spec.clone();
            self.failed_creates += 1;
            self.error(spec, eid, false);
            return;
        }
        if self.faults.drop_on_response_create {
            self.replies
                .push_back(Outgoing::action(Effect::DropConnection));
            return;
        }
        if self.view().is_transcription() {
            let spec = invalid_request(
                "invalid_value",
                "response.create is not supported in a transcription session.",
                Some("type"),
            );
            self.error(spec, eid, true);
            return;
        }
        if let Some(active) = &self.active {
            let spec = invalid_request(
                "conversation_already_has_active_response",
                format!(
                    "Conversation already has an active response in progress: {}. Wait until the response is finished before creating a new one.",
                    active.id
                ),
                None,
            );
            self.error(spec, eid, true);
            return;
        }
        let params = event.get("response").cloned().unwrap_or(Value::Null);
        let out_of_band = params.get("conversation").and_then(Value::as_str) == Some("none");
        if !out_of_band {
            let missing = self.conversation.calls_without_output();
            if !missing.is_empty() {
                self.violation(format!(
                    "response.create while function call(s) {} have no function_call_output yet; send every output of a response before asking for the next one",
                    missing.join(", ")
                ));
            }
        }
        self.start_response(&params);
    }

    pub(super) fn ctx(&mut self) -> Ctx {
        let format = self.view().output_format();
        let tone = self.shared.tone(format);
        let view = self.view();
        Ctx {
            dialect: self.dialect,
            conversation_id: self.conversation_id.clone(),
            voice: view.voice(),
            ga_output_format: view.output_format_value(),
            beta_output_format: view.beta_output_format(),
            tone,
            ms_per_char: self.shared.config.audio.ms_per_char,
            latency: self.shared.config.response_latency,
        }
    }

    /// Plays the next scripted step of the current turn (or the fallback reply).
    pub(super) fn start_response(&mut self, params: &Value) {
        let out_of_band = params.get("conversation").and_then(Value::as_str) == Some("none");
        let modalities_key = match self.dialect {
            Dialect::Ga => "output_modalities",
            Dialect::Beta => "modalities",
        };
        let mut modalities = session::modalities(params.get(modalities_key));
        if modalities.is_empty() {
            modalities = self.view().output_modalities();
        }
        if modalities.is_empty() {
            modalities = vec!["audio".into()];
        }
        let filler = out_of_band
            && params.pointer("/metadata/purpose").and_then(Value::as_str) == Some("filler");
        let (script, items, usage_override) = match self.faults.tool_loop.clone() {
            // A filler is the client's aside, not the scenario's next answer.
            _ if filler => (None, vec![self.filler_line()], None),
            Some(tool) => (None, vec![self.loop_call(tool)], None),
            None => self.pick_step(),
        };
        let barge_in_after_ms = script.and_then(|(t, s)| {
            self.shared
                .config
                .scenario
                .turns
                .get(t)
                .and_then(|tt| tt.model.get(s))
                .and_then(|step| step.barge_in_after_ms)
        });
        let input = usage::input_tokens(&self.conversation, &self.view());
        let progress = vec![Default::default(); items.len()];
        let active = ActiveResponse {
            id: self.shared.next_response_id(),
            items,
            progress,
            script,
            out_of_band,
            modalities,
            format: self.view().output_format(),
            input,
            cached: usage::cached_prefix(self.last_input_tokens),
            usage_override,
            metadata: params.get("metadata").cloned().unwrap_or(Value::Null),
            barge_in_after_ms,
        };
        let ctx = self.ctx();
        self.stream.extend(ctx.plan(&active));
        self.bind_held_transcripts(&active.id);
        self.hold_if_stall_waits(&active.id);
        self.active = Some(active);
        self.cancelling = false;
    }

    /// The one output of a filler response (out of band, `metadata.purpose = "filler"`): a
    /// short line that leaves the scenario's position where it is.
    fn filler_line(&mut self) -> PlannedItem {
        PlannedItem {
            // Out of band: the item never enters the conversation, so the id may repeat.
            id: self
                .conversation
                .unique_id(&format!("item_c{}_filler", self.index)),
            kind: PlannedKind::Message {
                text: FILLER_LINE.into(),
                audio_ms: None,
            },
        }
    }

    /// The one output of a `tool_loop` response: a call of `tool` with `{}` and a call id that
    /// the server never hands out twice.
    fn loop_call(&mut self, tool: String) -> PlannedItem {
        let call_id = self.shared.next_loop_call_id();
        PlannedItem {
            id: self.conversation.unique_id(&format!("item_{call_id}")),
            kind: PlannedKind::Call {
                name: tool,
                call_id,
                arguments: "{}".into(),
            },
        }
    }

    /// The step to play, its output items and its usage override.
    pub(super) fn pick_step(
        &mut self,
    ) -> (Option<(usize, usize)>, Vec<PlannedItem>, Option<Value>) {
        let shared = Arc::clone(&self.shared);
        let turns = &shared.config.scenario.turns;
        let turn = match self.turn {
            Some(t) => Some(t),
            None if turns.first().is_some_and(|t| t.user.is_none()) => Some(0),
            None => None,
        };
        let problem = match turn {
            None => Some(
                "response.create before any user message, but the scenario's first turn starts with the user speaking".to_string(),
            ),
            Some(t) => match turns.get(t) {
                None => Some(format!(
                    "response.create in turn {} but the scenario has only {} turn(s)",
                    t + 1,
                    turns.len()
                )),
                Some(tt) => {
                    let done = lock(&self.progress).done(t);
                    if done >= tt.model.len() {
                        Some(format!(
                            "response.create in turn {} ({:?}) after all {} scripted model step(s) were played; the client asked for one response too many",
                            t + 1,
                            tt.user.as_deref().unwrap_or("model speaks first"),
                            tt.model.len()
                        ))
                    } else {
                        None
                    }
                }
            },
        };
        if let Some(problem) = problem {
            self.violation(problem);
            self.fallbacks += 1;
            let id = self
                .conversation
                .unique_id(&format!("item_c{}_x{}", self.index, self.fallbacks));
            return (
                None,
                vec![PlannedItem {
                    id,
                    kind: PlannedKind::Message {
                        text: "(no scripted reply)".into(),
                        audio_ms: None,
                    },
                }],
                None,
            );
        }
        let t = turn.unwrap_or(0);
        let s = lock(&self.progress).done(t);
        let Some(step) = turns.get(t).and_then(|tt| tt.model.get(s)) else {
            return (None, Vec::new(), None);
        };
        let mut message = Vec::new();
        let mut calls = Vec::new();
        let mut o = 0;
        let mut next_id = |conversation: &mut super::Conversation| {
            let id = conversation.unique_id(&format!("item_t{t}s{s}o{o}"));
            o += 1;
            id
        };
        // Output indexes follow the order the items are streamed in.
        let say_first = !step.calls_first;
        if say_first && let Some(text) = &step.say {
            message.push(PlannedItem {
                id: next_id(&mut self.conversation),
                kind: PlannedKind::Message {
                    text: text.clone(),
                    audio_ms: step.audio_ms,
                },
            });
        }
        for (j, call) in step.calls.iter().enumerate() {
            let call_id = shared
                .call_ids
                .get(t)
                .and_then(|x| x.get(s))
                .and_then(|x| x.get(j))
                .cloned()
                .unwrap_or_else(|| format!("call_t{t}s{s}c{j}"));
            calls.push(PlannedItem {
                id: next_id(&mut self.conversation),
                kind: PlannedKind::Call {
                    name: call.name.clone(),
                    call_id,
                    arguments: call.arguments_string(),
                },
            });
        }
        if let Some(approval) = &step.mcp_approval {
            calls.push(PlannedItem {
                id: next_id(&mut self.conversation),
                kind: PlannedKind::McpApprovalRequest {
                    server_label: approval.server_label.clone(),
                    name: approval.name.clone(),
                    arguments: approval.arguments.clone(),
                },
            });
        }
        if !say_first && let Some(text) = &step.say {
            message.push(PlannedItem {
                id: next_id(&mut self.conversation),
                kind: PlannedKind::Message {
                    text: text.clone(),
                    audio_ms: step.audio_ms,
                },
            });
        }
        let items = if say_first {
            message.into_iter().chain(calls).collect()
        } else {
            calls.into_iter().chain(message).collect()
        };
        (Some((t, s)), items, step.usage.clone())
    }

    pub(super) fn on_response_cancel(&mut self, event: &Value, eid: Option<&str>) {
        let wanted = event.get("response_id").and_then(Value::as_str);
        let matches = self
            .active
            .as_ref()
            .is_some_and(|a| wanted.is_none_or(|w| w == a.id));
        if !matches {
            let spec = invalid_request(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                None,
            );
            self.error(spec, eid, false);
            return;
        }
        self.cancel_active("client_cancelled");
    }

    pub(super) fn cancel_active(&mut self, reason: &str) {
        if self.cancelling {
            return;
        }
        let ctx = self.ctx();
        let Some(active) = &self.active else { return };
        let closing = ctx.cancel(active, reason);
        let created_unsent = self
            .stream
            .front()
            .filter(|o| o.value.get("type").and_then(Value::as_str) == Some("response.created"))
            .cloned();
        self.stream.clear();
        self.stream.extend(created_unsent);
        self.stream.extend(closing);
        self.release_stream_stall();
        self.cancelling = true;
    }
}
