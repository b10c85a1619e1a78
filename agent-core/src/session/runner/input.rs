//! The app's commands, and putting the sequencer's steps on the wire.

use std::time::Instant;

use super::{Flow, Input, Runner};
use crate::{
    latency::TurnStart,
    protocol::{ClientEvent, Item, SessionKind},
    session::{Command, accounting::Sent, events::CloseReason, sequencer::Step},
};

impl Runner {
    pub(super) async fn on_command(&mut self, command: Option<Command>) -> Flow {
        let Some(command) = command else {
            // Every handle is gone: nobody can talk to this session any more.
            return Flow::Close(CloseReason::Requested);
        };
        match command {
            Command::Text(text) => self.guard_typed(text).await,
            // A transcription session never answers: the commit alone ends the user's turn.
            Command::Commit if self.config.session.kind == SessionKind::Transcription => {
                match self.send(ClientEvent::input_audio_buffer_commit()).await {
                    Ok(()) => Flow::Continue,
                    Err(flow) => flow,
                }
            }
            Command::Commit => {
                if let Some(flow) = self.guard_commit().await {
                    return flow;
                }
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
                let target = self.sequencer.active_response().map(str::to_owned);
                if target.is_some() || self.sequencer.create_pending() {
                    if let Some(id) = &target {
                        self.cancelled_by_us.insert(id.clone());
                    }
                    let event = match target {
                        Some(id) => ClientEvent::response_cancel_id(id),
                        None => ClientEvent::response_cancel(),
                    };
                    if let Err(flow) = self.send(event).await {
                        return flow;
                    }
                    // The platform plays the audio: what it queued of the answer goes too.
                    if self.config.ownership.is_platform_held()
                        && let Err(flow) = self.send(ClientEvent::output_audio_buffer_clear()).await
                    {
                        return flow;
                    }
                }
                Flow::Continue
            }
            Command::Close => Flow::Close(CloseReason::Requested),
        }
    }

    pub(super) async fn apply(&mut self, steps: Vec<Step<Input>>) -> Flow {
        for step in steps {
            let sent = match &step {
                Step::SendInput(Input::Text(_)) => Sent::Input(TurnStart::Text),
                Step::SendInput(Input::CommitAudio) => Sent::Input(TurnStart::Speech),
                Step::SendInput(Input::Respond) => Sent::Input(TurnStart::Request),
                Step::SendInput(input @ (Input::Note { .. } | Input::BackgroundResult { .. })) => {
                    Sent::Input(if input.is_users_turn() {
                        TurnStart::Text
                    } else {
                        TurnStart::Request
                    })
                }
                Step::CreateResponse => Sent::Create,
            };
            if let Some(reason) = self.accounting.refuse(sent) {
                return Flow::Close(reason);
            }
            if matches!(step, Step::SendInput(_)) {
                // A new user turn: its tool rounds start from zero.
                self.tool_rounds = 0;
            }
            if matches!(&step, Step::SendInput(input) if input.is_users_turn()) {
                // A note answers a guardrail within the turn: its retries go on counting. Nor
                // is a background result the user's new turn.
                self.guard_new_turn();
            }
            let event = match step {
                Step::SendInput(Input::Text(text)) => self.record_local(Item::user_text(text)),
                Step::SendInput(Input::CommitAudio) => ClientEvent::input_audio_buffer_commit(),
                Step::SendInput(Input::Note { withheld, note }) => {
                    if let Some(placeholder) = withheld {
                        let event = self.record_local(Item::user_text(placeholder));
                        if let Err(flow) = self.send(event).await {
                            return flow;
                        }
                    }
                    self.record_local(Item::system_text(note))
                }
                Step::SendInput(Input::BackgroundResult { call_id, text }) => {
                    // A user message, never a system one: a tool's output is data, not orders.
                    // Logged under its call id before it leaves, so a replay carries it once.
                    let item = Item::user_text(text);
                    self.record(format!("background:{call_id}"), item.clone());
                    ClientEvent::conversation_item_create(item)
                }
                Step::SendInput(Input::Respond) => {
                    let accounted = self.accounting.sent(sent);
                    self.emit_all(accounted);
                    continue;
                }
                Step::CreateResponse => {
                    self.guard_own_create();
                    // An id the server echoes in an `error` that answers this very request.
                    self.creates_sent += 1;
                    let event_id = format!("create_{:06}", self.creates_sent);
                    self.pending_create = Some(event_id.clone());
                    self.watchdog.progress(Instant::now());
                    ClientEvent::response_create().with_event_id(event_id)
                }
            };
            if let Err(flow) = self.send(event).await {
                return flow;
            }
            let accounted = self.accounting.sent(sent);
            self.emit_all(accounted);
        }
        Flow::Continue
    }
}

impl Runner {
    /// Logs an item this client created (under a local key) and returns its
    /// `conversation.item.create`.
    pub(super) fn record_local(&mut self, item: Item) -> ClientEvent {
        let key = self.log.local_key();
        self.record(key, item.clone());
        ClientEvent::conversation_item_create(item)
    }
}

impl Input {
    /// Whether sending this starts a turn of the user's: everything but a runtime's note
    /// within a turn (a guardrail's, without withheld input) and a background result.
    fn is_users_turn(&self) -> bool {
        !matches!(
            self,
            Input::Note { withheld: None, .. } | Input::BackgroundResult { .. }
        )
    }
}
