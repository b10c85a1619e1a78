//! `conversation.item.*`: create, retrieve, delete, truncate, and turn tracking.

use super::*;

/// How a background call's result begins (see agent-core's `session::slow`).
const BACKGROUND_RESULT: &str = "[result of background call ";

impl Conn {
    pub(super) fn added_events(&mut self, item: &Value, prev: Option<String>) {
        match self.dialect {
            Dialect::Ga => {
                self.reply(json!({"type": "conversation.item.added", "previous_item_id": prev, "item": item}));
                self.reply(json!({"type": "conversation.item.done", "previous_item_id": prev, "item": item}));
            }
            Dialect::Beta => {
                self.reply(json!({"type": "conversation.item.created", "previous_item_id": prev, "item": item}));
            }
        }
    }

    pub(super) fn on_item_create(&mut self, event: &Value, eid: Option<&str>) {
        let Some(item) = event.get("item").and_then(Value::as_object) else {
            self.error(
                invalid_request(
                    "missing_required_parameter",
                    "Missing required parameter: 'item'.",
                    Some("item"),
                ),
                eid,
                true,
            );
            return;
        };
        let mut item = item.clone();
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let previous = event.get("previous_item_id").and_then(Value::as_str);
        if let Some(prev) = previous
            && prev != "root"
            && !self.conversation.contains(prev)
        {
            self.error(
                invalid_request(
                    "invalid_value",
                    format!("Previous item with id '{prev}' not found in the conversation."),
                    Some("previous_item_id"),
                ),
                eid,
                true,
            );
            return;
        }
        let mut input_audio_ms = 0;
        let mut user_text: Option<String> = None;
        let is_user_message;
        match kind.as_str() {
            "message" => {
                let role = item
                    .get("role")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let role = role.as_str();
                let allowed: &[&str] = match (self.dialect, role) {
                    (Dialect::Ga, "user") => &["input_text", "input_audio", "input_image"],
                    (Dialect::Ga, "assistant") => &["output_text", "output_audio"],
                    (Dialect::Beta, "user") => &["input_text", "input_audio", "item_reference"],
                    (Dialect::Beta, "assistant") => &["text", "audio"],
                    (_, "system") => &["input_text"],
                    _ => {
                        self.error(
                            invalid_request(
                                "invalid_value",
                                format!("Invalid value: '{role}'. Supported values are: 'user', 'assistant' and 'system'."),
                                Some("item.role"),
                            ),
                            eid,
                            true,
                        );
                        return;
                    }
                };
                let Some(content) = item.get_mut("content").and_then(Value::as_array_mut) else {
                    self.error(
                        invalid_request(
                            "missing_required_parameter",
                            "Missing required parameter: 'item.content'.",
                            Some("item.content"),
                        ),
                        eid,
                        true,
                    );
                    return;
                };
                let mut texts = Vec::new();
                for (i, part) in content.iter_mut().enumerate() {
                    let t = part.get("type").and_then(Value::as_str).unwrap_or("");
                    if !allowed.contains(&t) {
                        let list = allowed
                            .iter()
                            .map(|a| format!("'{a}'"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        let spec = invalid_request(
                            "invalid_value",
                            format!(
                                "Invalid value: '{t}'. Supported values for {role} messages are: {list}."
                            ),
                            Some(&format!("item.content[{i}].type")),
                        );
                        self.error(spec, eid, true);
                        return;
                    }
                    if t == "input_audio" {
                        let bytes = part
                            .get("audio")
                            .and_then(Value::as_str)
                            .and_then(decode_base64)
                            .map_or(0, |b| b.len());
                        input_audio_ms += self.view().input_format().ms(bytes);
                        if let Some(obj) = part.as_object_mut() {
                            obj.remove("audio");
                            obj.entry("transcript").or_insert(Value::Null);
                        }
                    }
                    if let Some(text) = part.get("text").and_then(Value::as_str) {
                        texts.push(text.to_string());
                    }
                }
                is_user_message = role == "user";
                if role == "system"
                    && let Some((t, s)) = self.cancelled_step.take()
                {
                    lock(&self.progress).mark(t, s);
                }
                if is_user_message && !texts.is_empty() {
                    user_text = Some(texts.join(" "));
                }
            }
            "function_call" => {
                for field in ["call_id", "name"] {
                    if item.get(field).and_then(Value::as_str).is_none() {
                        let spec = invalid_request(
                            "missing_required_parameter",
                            format!("Missing required parameter: 'item.{field}'."),
                            Some(&format!("item.{field}")),
                        );
                        self.error(spec, eid, true);
                        return;
                    }
                }
                item.entry("arguments").or_insert(json!(""));
                is_user_message = false;
            }
            "function_call_output" => {
                let Some(call_id) = item.get("call_id").and_then(Value::as_str) else {
                    self.error(
                        invalid_request(
                            "missing_required_parameter",
                            "Missing required parameter: 'item.call_id'.",
                            Some("item.call_id"),
                        ),
                        eid,
                        true,
                    );
                    return;
                };
                if !self.conversation.has_call(call_id) {
                    let spec = invalid_request(
                        "invalid_tool_call_id",
                        format!("Tool call ID '{call_id}' not found in conversation."),
                        Some("item.call_id"),
                    );
                    self.error(spec, eid, true);
                    return;
                }
                if self.conversation.has_output(call_id) {
                    self.violation(format!(
                        "a second function_call_output for {call_id}: each call must be answered once"
                    ));
                }
                if item.get("output").and_then(Value::as_str).is_none() {
                    self.error(
                        invalid_request(
                            "missing_required_parameter",
                            "Missing required parameter: 'item.output'.",
                            Some("item.output"),
                        ),
                        eid,
                        true,
                    );
                    return;
                }
                is_user_message = false;
            }
            "mcp_approval_request" | "mcp_approval_response" if self.dialect == Dialect::Ga => {
                if !self.accept_mcp_item(&kind, &item, eid) {
                    return;
                }
                is_user_message = false;
            }
            other => {
                let supported = match self.dialect {
                    Dialect::Ga => {
                        "'message', 'function_call', 'function_call_output', 'mcp_approval_request' and 'mcp_approval_response'"
                    }
                    Dialect::Beta => "'message', 'function_call' and 'function_call_output'",
                };
                let spec = invalid_request(
                    "invalid_value",
                    format!("Invalid value: '{other}'. Supported values are: {supported}."),
                    Some("item.type"),
                );
                self.error(spec, eid, true);
                return;
            }
        }
        if is_user_message {
            self.user_message(user_text.as_deref());
        }
        let id = match item.get("id").and_then(Value::as_str) {
            Some(id) if self.conversation.contains(id) => {
                let spec = invalid_request(
                    "invalid_value",
                    format!("Item with id '{id}' already exists in the conversation."),
                    Some("item.id"),
                );
                self.error(spec, eid, true);
                return;
            }
            Some(id) => id.to_string(),
            None => self.new_client_item_id(&item, is_user_message),
        };
        self.shared.note_received_item(&kind);
        item.insert("id".into(), json!(id));
        // MCP items have no status in the GA schema.
        if !kind.starts_with("mcp_") {
            item.entry("status").or_insert(json!("completed"));
        }
        let item = wire::finish_item(self.dialect, Value::Object(item));
        let prev = self.conversation.insert(
            Entry {
                id,
                item: item.clone(),
                audio_ms_sent: None,
                input_audio_ms,
            },
            previous,
        );
        self.added_events(&item, prev);
    }

    /// Checks a client's MCP item as the API does: the fields the GA schema requires, and for a
    /// decision, a request in the conversation to answer. A second decision on one request is
    /// a violation (the API would take the first). Returns whether the item may go in.
    fn accept_mcp_item(
        &mut self,
        kind: &str,
        item: &serde_json::Map<String, Value>,
        eid: Option<&str>,
    ) -> bool {
        let (strings, flags): (&[&str], &[&str]) = if kind == "mcp_approval_request" {
            (&["id", "server_label", "name", "arguments"], &[])
        } else {
            (&["id", "approval_request_id"], &["approve"])
        };
        let missing = strings
            .iter()
            .find(|f| item.get(**f).and_then(Value::as_str).is_none())
            .or_else(|| {
                flags
                    .iter()
                    .find(|f| item.get(**f).and_then(Value::as_bool).is_none())
            });
        if let Some(field) = missing {
            let spec = invalid_request(
                "missing_required_parameter",
                format!("Missing required parameter: 'item.{field}'."),
                Some(&format!("item.{field}")),
            );
            self.error(spec, eid, true);
            return false;
        }
        if kind == "mcp_approval_request" {
            return true;
        }
        let request = item
            .get("approval_request_id")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !self.conversation.has_approval_request(request) {
            let spec = invalid_request(
                "invalid_value",
                format!("Approval request with id '{request}' not found in conversation."),
                Some("item.approval_request_id"),
            );
            self.error(spec, eid, true);
            return false;
        }
        if self.conversation.has_approval_answer(request) {
            self.violation(format!(
                "a second mcp_approval_response for {request}: each approval request must be answered once"
            ));
        }
        true
    }

    pub(super) fn new_client_item_id(
        &mut self,
        item: &serde_json::Map<String, Value>,
        user: bool,
    ) -> String {
        let turn = self.turn.unwrap_or(0);
        let base =
            if user {
                format!("item_t{turn}_user")
            } else if let Some(call_id) = item.get("call_id").and_then(Value::as_str).filter(|_| {
                item.get("type").and_then(Value::as_str) == Some("function_call_output")
            }) {
                format!("item_{call_id}_output")
            } else {
                self.client_items += 1;
                format!("item_t{turn}_c{}", self.client_items)
            };
        self.conversation.unique_id(&base)
    }

    /// A user message started a turn: the next one, or the turn whose `user` text it repeats.
    /// A background call's result (`[result of background call ...`) that no turn repeats
    /// belongs to the current turn: its answer is that turn's next model step.
    pub(super) fn user_message(&mut self, text: Option<&str>) {
        let turns = &self.shared.config.scenario.turns;
        let first_user_turn = usize::from(turns.first().is_some_and(|t| t.user.is_none()));
        let expected = self.turn.map_or(first_user_turn, |t| t + 1);
        let text = text.map(str::trim);
        let same = |i: usize| turns.get(i).and_then(|t| t.user.as_deref()).map(str::trim) == text;
        if self.turn.is_some()
            && text.is_some_and(|t| t.starts_with(BACKGROUND_RESULT))
            && !(0..turns.len()).any(same)
        {
            return;
        }
        let next = if text.is_none() || same(expected) {
            expected
        } else {
            (0..turns.len()).find(|&i| same(i)).unwrap_or(expected)
        };
        self.turn = Some(next);
    }

    pub(super) fn on_item_retrieve(&mut self, event: &Value, eid: Option<&str>) {
        let id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
        match self.conversation.get(id) {
            Some(entry) => {
                let item = entry.item.clone();
                self.reply(json!({"type": "conversation.item.retrieved", "item": item}));
            }
            None => self.item_not_found(id, eid),
        }
    }

    pub(super) fn on_item_delete(&mut self, event: &Value, eid: Option<&str>) {
        let id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
        if self.conversation.remove(id) {
            self.reply(json!({"type": "conversation.item.deleted", "item_id": id}));
        } else {
            self.item_not_found(id, eid);
        }
    }

    pub(super) fn item_not_found(&mut self, id: &str, eid: Option<&str>) {
        let spec = invalid_request(
            "invalid_value",
            format!("Item with item_id '{id}' not found in the conversation."),
            Some("item_id"),
        );
        self.error(spec, eid, true);
    }

    pub(super) fn on_truncate(&mut self, event: &Value, eid: Option<&str>) {
        let id = event.get("item_id").and_then(Value::as_str).unwrap_or("");
        let content_index = event
            .get("content_index")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let Some(end) = event.get("audio_end_ms").and_then(Value::as_u64) else {
            let spec = invalid_request(
                "missing_required_parameter",
                "Missing required parameter: 'audio_end_ms'.",
                Some("audio_end_ms"),
            );
            self.error(spec, eid, true);
            return;
        };
        let Some(entry) = self.conversation.get(id) else {
            self.item_not_found(id, eid);
            return;
        };
        let is_assistant = entry.item.get("role").and_then(Value::as_str) == Some("assistant");
        let Some(sent_ms) = entry
            .audio_ms_sent
            .filter(|_| is_assistant && content_index == 0)
        else {
            let spec = invalid_request(
                "invalid_value",
                format!(
                    "Item '{id}' has no assistant audio at content_index {content_index}; only assistant audio can be truncated."
                ),
                Some("content_index"),
            );
            self.error(spec, eid, true);
            return;
        };
        if end > sent_ms {
            let spec = invalid_request(
                "invalid_value",
                format!("Audio content of {sent_ms}ms is already shorter than {end}ms"),
                Some("audio_end_ms"),
            );
            self.error(spec, eid, true);
            return;
        }
        if let Some(entry) = self.conversation.get_mut(id) {
            entry.audio_ms_sent = Some(end);
            if let Some(parts) = entry.item.get_mut("content").and_then(Value::as_array_mut) {
                for part in parts {
                    if let Some(obj) = part.as_object_mut()
                        && obj.contains_key("transcript")
                    {
                        obj.insert("transcript".into(), json!(""));
                    }
                }
            }
        }
        self.reply(json!({
            "type": "conversation.item.truncated",
            "item_id": id,
            "content_index": content_index,
            "audio_end_ms": end,
        }));
    }
}
