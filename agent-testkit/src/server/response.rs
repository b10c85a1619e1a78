//! One response: its planned output items, the full event sequence, and cancellation.
//!
//! Events are planned up front and each carries an [`Effect`] that the connection applies when
//! the event is actually sent, so the conversation and the "audio sent so far" bound always match
//! what the client could have received, even when the response is cancelled or the socket drops.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::Dialect;
use super::audio::{AudioFormat, ToneChunk};
use super::faults::CloseSpec;
use super::usage::{self, InputTokens};
use super::wire::{self, Names};

/// What sending an event changes on the server side.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Effect {
    None,
    /// `response.output_item.added` for output `n` was sent.
    Announced(usize),
    /// The item of output `n` enters the conversation; fills `previous_item_id`.
    AddToConversation(usize),
    /// Cumulative characters (text, transcript or arguments) and audio bytes sent for output `n`.
    Streamed {
        output: usize,
        chars: usize,
        audio_bytes: usize,
    },
    /// `response.output_item.done` for output `n`: the event's `item` is the final copy.
    Finished(usize),
    /// A `conversation.item.done` for output `n`: fills `previous_item_id`.
    FillPrevious(usize),
    /// The response ended (completed, or cancelled when `cancelled` is set).
    ResponseDone {
        cancelled: bool,
    },
    /// Not an event: the scripted user starts speaking now.
    BargeIn,
    /// Not an event: end the TCP connection here, without a close frame (a fault).
    DropConnection,
    /// Not an event: send this close frame here and end the connection (a fault).
    Close(CloseSpec),
    /// Not an event: a WebRTC call's peer drops the audio it has not played yet.
    StopPlayout,
}

/// An event waiting to be sent.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) value: Value,
    pub(crate) effect: Effect,
    /// Extra pause before this event (response latency).
    pub(crate) delay: Duration,
}

impl Outgoing {
    pub(crate) fn new(value: Value) -> Self {
        Outgoing {
            value,
            effect: Effect::None,
            delay: Duration::ZERO,
        }
    }

    /// A step that sends no frame but does something when its turn comes (see [`Effect`]).
    pub(crate) fn action(effect: Effect) -> Self {
        Self::with(Value::Null, effect)
    }

    fn with(value: Value, effect: Effect) -> Self {
        Outgoing {
            value,
            effect,
            delay: Duration::ZERO,
        }
    }
}

/// What one output item will hold.
#[derive(Debug, Clone)]
pub(crate) enum PlannedKind {
    Message {
        text: String,
        audio_ms: Option<u32>,
    },
    Call {
        name: String,
        call_id: String,
        arguments: String,
    },
    /// A hosted MCP server asks the client to approve a call: nothing streams, the item is
    /// whole from `response.output_item.added` on.
    McpApprovalRequest {
        server_label: String,
        name: String,
        arguments: String,
    },
}

/// One output item of a response.
#[derive(Debug, Clone)]
pub(crate) struct PlannedItem {
    pub(crate) id: String,
    pub(crate) kind: PlannedKind,
}

/// How far an item got on the wire.
#[derive(Debug, Clone, Default)]
pub(crate) struct ItemProgress {
    pub(crate) announced: bool,
    pub(crate) in_conversation: bool,
    pub(crate) finished: bool,
    pub(crate) chars: usize,
    pub(crate) audio_bytes: usize,
}

/// The response being streamed.
#[derive(Debug)]
pub(crate) struct ActiveResponse {
    pub(crate) id: String,
    pub(crate) items: Vec<PlannedItem>,
    pub(crate) progress: Vec<ItemProgress>,
    /// `(turn, step)` of the scripted step, `None` for the fallback reply.
    pub(crate) script: Option<(usize, usize)>,
    /// `response.conversation = "none"`: items stay out of the conversation.
    pub(crate) out_of_band: bool,
    pub(crate) modalities: Vec<String>,
    pub(crate) format: AudioFormat,
    pub(crate) input: InputTokens,
    pub(crate) cached: u64,
    pub(crate) usage_override: Option<Value>,
    pub(crate) metadata: Value,
    /// Scripted barge-in position in milliseconds of sent audio.
    pub(crate) barge_in_after_ms: Option<u32>,
}

impl ActiveResponse {
    pub(crate) fn audio(&self) -> bool {
        self.modalities.iter().any(|m| m == "audio")
    }
}

/// Connection facts the event shapes need.
pub(crate) struct Ctx {
    pub(crate) dialect: Dialect,
    pub(crate) conversation_id: String,
    pub(crate) voice: Value,
    pub(crate) ga_output_format: Value,
    pub(crate) beta_output_format: Value,
    pub(crate) tone: Arc<ToneChunk>,
    pub(crate) ms_per_char: u32,
    pub(crate) latency: Duration,
}

impl Ctx {
    fn names(&self) -> Names {
        wire::names(self.dialect)
    }

    fn item(&self, v: Value) -> Value {
        wire::finish_item(self.dialect, v)
    }

    fn conv_added_type(&self) -> &'static str {
        match self.dialect {
            Dialect::Ga => "conversation.item.added",
            Dialect::Beta => "conversation.item.created",
        }
    }

    fn obfuscate(&self, event: &mut Value, seed: usize) {
        if self.dialect == Dialect::Ga
            && let Some(obj) = event.as_object_mut()
        {
            obj.insert("obfuscation".into(), json!(wire::obfuscation(seed)));
        }
    }

    /// The `response` object of `response.created` / `response.done`.
    pub(crate) fn response_object(
        &self,
        r: &ActiveResponse,
        status: &str,
        status_details: Value,
        output: Vec<Value>,
        usage: Value,
    ) -> Value {
        let conversation_id = if r.out_of_band {
            Value::Null
        } else {
            json!(self.conversation_id)
        };
        match self.dialect {
            Dialect::Ga => json!({
                "object": "realtime.response",
                "id": r.id,
                "status": status,
                "status_details": status_details,
                "output": output,
                "conversation_id": conversation_id,
                "output_modalities": r.modalities,
                "max_output_tokens": "inf",
                "audio": {"output": {"format": self.ga_output_format, "voice": self.voice}},
                "usage": usage,
                "metadata": r.metadata,
            }),
            Dialect::Beta => json!({
                "object": "realtime.response",
                "id": r.id,
                "status": status,
                "status_details": status_details,
                "output": output,
                "conversation_id": conversation_id,
                "modalities": r.modalities,
                "voice": self.voice,
                "output_audio_format": self.beta_output_format,
                "temperature": 0.8,
                "max_output_tokens": "inf",
                "usage": usage,
                "metadata": r.metadata,
            }),
        }
    }

    fn message_item(&self, id: &str, status: &str, content: Vec<Value>) -> Value {
        self.item(json!({
            "id": id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }))
    }

    fn message_content(&self, audio: bool, text: &str) -> Value {
        let kind = wire::assistant_content_type(self.dialect, audio);
        if audio {
            json!({"type": kind, "transcript": text})
        } else {
            json!({"type": kind, "text": text})
        }
    }

    /// `response.content_part.*` keeps `text`/`audio` part types in both dialects.
    fn part(audio: bool, text: &str) -> Value {
        if audio {
            json!({"type": "audio", "transcript": text})
        } else {
            json!({"type": "text", "text": text})
        }
    }

    fn call_item(&self, id: &str, status: &str, name: &str, call_id: &str, args: &str) -> Value {
        self.item(json!({
            "id": id,
            "type": "function_call",
            "status": status,
            "name": name,
            "call_id": call_id,
            "arguments": args,
        }))
    }

    fn mcp_approval_item(&self, id: &str, server_label: &str, name: &str, args: &str) -> Value {
        self.item(json!({
            "id": id,
            "type": "mcp_approval_request",
            "server_label": server_label,
            "name": name,
            "arguments": args,
        }))
    }

    /// Audio length of a message, capped at ten minutes so a typo cannot exhaust memory.
    fn audio_ms(&self, text: &str, scripted: Option<u32>) -> u32 {
        const MAX_AUDIO_MS: u32 = 600_000;
        scripted
            .unwrap_or_else(|| {
                let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
                chars.saturating_mul(self.ms_per_char)
            })
            .min(MAX_AUDIO_MS)
    }

    /// The final (completed) copy of an item.
    fn final_item(&self, r: &ActiveResponse, item: &PlannedItem) -> Value {
        match &item.kind {
            PlannedKind::Message { text, .. } => self.message_item(
                &item.id,
                "completed",
                vec![self.message_content(r.audio(), text)],
            ),
            PlannedKind::Call {
                name,
                call_id,
                arguments,
            } => self.call_item(&item.id, "completed", name, call_id, arguments),
            PlannedKind::McpApprovalRequest {
                server_label,
                name,
                arguments,
            } => self.mcp_approval_item(&item.id, server_label, name, arguments),
        }
    }

    /// The copy of an item cut off after `progress`.
    fn partial_item(&self, r: &ActiveResponse, item: &PlannedItem, p: &ItemProgress) -> Value {
        match &item.kind {
            PlannedKind::Message { text, .. } => {
                let partial: String = text.chars().take(p.chars).collect();
                self.message_item(
                    &item.id,
                    "incomplete",
                    vec![self.message_content(r.audio(), &partial)],
                )
            }
            PlannedKind::Call {
                name,
                call_id,
                arguments,
            } => {
                let partial: String = arguments.chars().take(p.chars).collect();
                self.call_item(&item.id, "incomplete", name, call_id, &partial)
            }
            // Whole once announced: a cut leaves it as it was.
            PlannedKind::McpApprovalRequest { .. } => self.final_item(r, item),
        }
    }

    /// Output token counts for what was (or will be) sent.
    fn output_tokens(&self, r: &ActiveResponse, cut: Option<&[ItemProgress]>) -> (u64, u64) {
        let mut text = 0;
        let mut audio = 0;
        for (i, item) in r.items.iter().enumerate() {
            let p = cut.map(|c| c.get(i).cloned().unwrap_or_default());
            match &item.kind {
                PlannedKind::Message {
                    text: t,
                    audio_ms: scripted,
                } => {
                    let chars = p.as_ref().map_or(t.chars().count(), |p| p.chars);
                    text += usage::text_tokens(chars);
                    if r.audio() {
                        let ms = match &p {
                            Some(p) => r.format.ms(p.audio_bytes),
                            None => u64::from(self.audio_ms(t, *scripted)),
                        };
                        audio += ms.div_ceil(50);
                    }
                }
                PlannedKind::Call {
                    name, arguments, ..
                } => {
                    let chars = p.as_ref().map_or(arguments.chars().count(), |p| p.chars);
                    text += usage::text_tokens(chars + name.len());
                }
                PlannedKind::McpApprovalRequest {
                    name, arguments, ..
                } => {
                    let sent = p.as_ref().is_none_or(|p| p.announced);
                    if sent {
                        text += usage::text_tokens(arguments.chars().count() + name.len());
                    }
                }
            }
        }
        (text, audio)
    }

    /// The whole event sequence of a response, from `response.created` to `response.done`.
    pub(crate) fn plan(&self, r: &ActiveResponse) -> Vec<Outgoing> {
        let names = self.names();
        let audio = r.audio();
        let mut out = Vec::new();
        out.push(Outgoing::new(json!({
            "type": "response.created",
            "response": self.response_object(r, "in_progress", Value::Null, Vec::new(), Value::Null),
        })));
        let mut seed = 0usize;
        let mut barged = false;
        for (o, item) in r.items.iter().enumerate() {
            let base = json!({"response_id": r.id, "item_id": item.id, "output_index": o});
            let with = |mut v: Value| {
                if let (Some(obj), Some(b)) = (v.as_object_mut(), base.as_object()) {
                    for (k, val) in b {
                        obj.entry(k.clone()).or_insert_with(|| val.clone());
                    }
                }
                v
            };
            let in_progress = match &item.kind {
                PlannedKind::Message { .. } => {
                    self.message_item(&item.id, "in_progress", Vec::new())
                }
                PlannedKind::Call { name, call_id, .. } => {
                    self.call_item(&item.id, "in_progress", name, call_id, "")
                }
                PlannedKind::McpApprovalRequest { .. } => self.final_item(r, item),
            };
            out.push(Outgoing::with(
                json!({"type": "response.output_item.added", "response_id": r.id, "output_index": o, "item": in_progress}),
                Effect::Announced(o),
            ));
            if !r.out_of_band {
                out.push(Outgoing::with(
                    json!({"type": self.conv_added_type(), "previous_item_id": null, "item": in_progress}),
                    Effect::AddToConversation(o),
                ));
            }
            match &item.kind {
                PlannedKind::Message {
                    text,
                    audio_ms: scripted,
                } => {
                    out.push(Outgoing::new(with(json!({
                        "type": "response.content_part.added",
                        "content_index": 0,
                        "part": Self::part(audio, ""),
                    }))));
                    let words = wire::word_deltas(text);
                    let mut chars = 0usize;
                    let mut audio_bytes = 0usize;
                    let mut next_word = 0usize;
                    let text_delta_type = if audio {
                        names.transcript_delta
                    } else {
                        names.text_delta
                    };
                    let mut push_words =
                        |upto: usize, out: &mut Vec<Outgoing>, audio_bytes: usize| {
                            while next_word < upto.min(words.len()) {
                                let w = words.get(next_word).cloned().unwrap_or_default();
                                next_word += 1;
                                chars += w.chars().count();
                                seed += 1;
                                let mut ev = with(json!({
                                    "type": text_delta_type,
                                    "content_index": 0,
                                    "delta": w,
                                }));
                                self.obfuscate(&mut ev, seed);
                                out.push(Outgoing::with(
                                    ev,
                                    Effect::Streamed {
                                        output: o,
                                        chars,
                                        audio_bytes,
                                    },
                                ));
                            }
                        };
                    if audio {
                        let deltas = self.tone.deltas(self.audio_ms(text, *scripted));
                        let n = deltas.len().max(1);
                        let bytes_per_ms = r.format.bytes_per_ms() as usize;
                        for (k, (b64, bytes)) in deltas.into_iter().enumerate() {
                            if let Some(at) = r.barge_in_after_ms {
                                let at_bytes = at as usize * bytes_per_ms;
                                if !barged && audio_bytes >= at_bytes {
                                    barged = true;
                                    out.push(Outgoing::with(Value::Null, Effect::BargeIn));
                                }
                            }
                            push_words((k + 1) * words.len() / n, &mut out, audio_bytes);
                            audio_bytes += bytes;
                            out.push(Outgoing::with(
                                with(json!({
                                    "type": names.audio_delta,
                                    "content_index": 0,
                                    "delta": b64,
                                })),
                                Effect::Streamed {
                                    output: o,
                                    chars: words
                                        .iter()
                                        .take(next_word_count(k + 1, words.len(), n))
                                        .map(|w| w.chars().count())
                                        .sum(),
                                    audio_bytes,
                                },
                            ));
                        }
                    }
                    push_words(words.len(), &mut out, audio_bytes);
                    if audio {
                        out.push(Outgoing::new(with(json!({
                            "type": names.audio_done,
                            "content_index": 0,
                        }))));
                        out.push(Outgoing::new(with(json!({
                            "type": names.transcript_done,
                            "content_index": 0,
                            "transcript": text,
                        }))));
                    } else {
                        out.push(Outgoing::new(with(json!({
                            "type": names.text_done,
                            "content_index": 0,
                            "text": text,
                        }))));
                    }
                    out.push(Outgoing::new(with(json!({
                        "type": "response.content_part.done",
                        "content_index": 0,
                        "part": Self::part(audio, text),
                    }))));
                }
                PlannedKind::Call {
                    name,
                    call_id,
                    arguments,
                } => {
                    let mut chars = 0;
                    for piece in wire::split_even(arguments, 8) {
                        chars += piece.chars().count();
                        seed += 1;
                        let mut ev = with(json!({
                            "type": "response.function_call_arguments.delta",
                            "call_id": call_id,
                            "delta": piece,
                        }));
                        self.obfuscate(&mut ev, seed);
                        out.push(Outgoing::with(
                            ev,
                            Effect::Streamed {
                                output: o,
                                chars,
                                audio_bytes: 0,
                            },
                        ));
                    }
                    let mut done = with(json!({
                        "type": "response.function_call_arguments.done",
                        "call_id": call_id,
                        "arguments": arguments,
                    }));
                    if self.dialect == Dialect::Ga
                        && let Some(obj) = done.as_object_mut()
                    {
                        obj.insert("name".into(), json!(name));
                    }
                    out.push(Outgoing::new(done));
                }
                PlannedKind::McpApprovalRequest { .. } => {}
            }
            out.push(Outgoing::with(
                json!({
                    "type": "response.output_item.done",
                    "response_id": r.id,
                    "output_index": o,
                    "item": self.final_item(r, item),
                }),
                Effect::Finished(o),
            ));
            if !r.out_of_band && self.dialect == Dialect::Ga {
                out.push(Outgoing::with(
                    json!({"type": "conversation.item.done", "previous_item_id": null, "item": self.final_item(r, item)}),
                    Effect::FillPrevious(o),
                ));
            }
        }
        let (text_tokens, audio_tokens) = self.output_tokens(r, None);
        let usage = usage::usage(
            r.input,
            r.cached,
            text_tokens,
            audio_tokens,
            r.usage_override.as_ref(),
        );
        let output = r.items.iter().map(|i| self.final_item(r, i)).collect();
        out.push(Outgoing::with(
            json!({
                "type": "response.done",
                "response": self.response_object(r, "completed", Value::Null, output, usage),
            }),
            Effect::ResponseDone { cancelled: false },
        ));
        if r.barge_in_after_ms.is_some() && !barged {
            out.push(Outgoing::with(Value::Null, Effect::BargeIn));
        }
        if let Some(second) = out.get_mut(1) {
            second.delay = self.latency;
        }
        out
    }

    /// Events that end a response cut short: open items end `incomplete`, then `response.done`
    /// with status `cancelled` and `reason` (`client_cancelled` or `turn_detected`).
    pub(crate) fn cancel(&self, r: &ActiveResponse, reason: &str) -> Vec<Outgoing> {
        let names = self.names();
        let audio = r.audio();
        let mut out = Vec::new();
        let mut output = Vec::new();
        for (o, item) in r.items.iter().enumerate() {
            let p = r.progress.get(o).cloned().unwrap_or_default();
            if !p.announced {
                continue;
            }
            if p.finished {
                output.push(self.final_item(r, item));
                continue;
            }
            let partial = self.partial_item(r, item, &p);
            if !r.out_of_band && !p.in_conversation {
                out.push(Outgoing::with(
                    json!({"type": self.conv_added_type(), "previous_item_id": null, "item": partial}),
                    Effect::AddToConversation(o),
                ));
            }
            let base = json!({"response_id": r.id, "item_id": item.id, "output_index": o, "content_index": 0});
            let with = |extra: Value| {
                let mut v = base.clone();
                if let (Some(obj), Some(e)) = (v.as_object_mut(), extra.as_object()) {
                    for (k, val) in e {
                        obj.insert(k.clone(), val.clone());
                    }
                }
                v
            };
            if let PlannedKind::Message { text, .. } = &item.kind {
                let partial_text: String = text.chars().take(p.chars).collect();
                if audio {
                    out.push(Outgoing::new(with(json!({"type": names.audio_done}))));
                    out.push(Outgoing::new(with(
                        json!({"type": names.transcript_done, "transcript": partial_text}),
                    )));
                } else {
                    out.push(Outgoing::new(with(
                        json!({"type": names.text_done, "text": partial_text}),
                    )));
                }
                out.push(Outgoing::new(with(json!({
                    "type": "response.content_part.done",
                    "part": Self::part(audio, &partial_text),
                }))));
            }
            out.push(Outgoing::with(
                json!({"type": "response.output_item.done", "response_id": r.id, "output_index": o, "item": partial}),
                Effect::Finished(o),
            ));
            if !r.out_of_band && self.dialect == Dialect::Ga {
                out.push(Outgoing::with(
                    json!({"type": "conversation.item.done", "previous_item_id": null, "item": partial}),
                    Effect::FillPrevious(o),
                ));
            }
            output.push(partial);
        }
        let (text_tokens, audio_tokens) = self.output_tokens(r, Some(&r.progress));
        let usage = usage::usage(r.input, r.cached, text_tokens, audio_tokens, None);
        out.push(Outgoing::with(
            json!({
                "type": "response.done",
                "response": self.response_object(
                    r,
                    "cancelled",
                    json!({"type": "cancelled", "reason": reason}),
                    output,
                    usage,
                ),
            }),
            Effect::ResponseDone { cancelled: true },
        ));
        out
    }
}

/// How many words have been sent once audio chunk `k` (1-based count) is out.
fn next_word_count(k: usize, words: usize, chunks: usize) -> usize {
    (k * words / chunks.max(1)).min(words)
}
