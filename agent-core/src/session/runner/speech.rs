//! The user's speech: when a spoken turn starts and ends, and barge-in (the user speaks over
//! the assistant). What to cancel and where to truncate is decided by
//! [`BargeIn`](crate::session::barge_in::BargeIn); this puts its decisions on the wire and in
//! the log.

use std::time::Instant;

use super::{Flow, Runner};
use crate::{
    protocol::ClientEvent,
    session::{barge_in::Reaction, events::SessionEvent, log::truncated},
};

impl Runner {
    /// Server VAD heard the user start speaking: nothing is requested meanwhile, and what is
    /// playing is cut (see [`Runner::on_barge_in`]).
    pub(super) async fn on_speech_started(&mut self, item_id: String, audio_start_ms: u64) -> Flow {
        self.sequencer.speech_started();
        self.watchdog.speech(Instant::now());
        self.emit(SessionEvent::SpeechStarted {
            item_id,
            audio_start_ms,
        });
        self.on_barge_in().await
    }

    /// Server VAD heard the user stop: a new turn, answered by the server's turn detection or
    /// by us.
    pub(super) async fn on_speech_stopped(&mut self, item_id: String, audio_end_ms: u64) -> Flow {
        let accounted = self.accounting.speech_stopped();
        self.emit_all(accounted);
        self.emit(SessionEvent::SpeechStopped {
            item_id,
            audio_end_ms,
        });
        self.watchdog.progress(Instant::now());
        self.watchdog.speech_over();
        // The user said something: a new turn, whose tool rounds start from zero.
        self.tool_rounds = 0;
        self.guard_new_turn();
        let steps = self.sequencer.speech_stopped(self.server_responds);
        self.apply(steps).await
    }

    /// The input buffer was committed or cleared while the user was "speaking": the speech is
    /// over, and queued input may go on.
    pub(super) async fn on_input_ended(&mut self) -> Flow {
        self.watchdog.speech_over();
        let steps = self.sequencer.input_ended();
        self.apply(steps).await
    }

    /// The user started speaking: stop playback, cancel and truncate as `barge_in` decides.
    pub(super) async fn on_barge_in(&mut self) -> Flow {
        let active = self.sequencer.active_response().map(str::to_owned);
        let reactions = self
            .barge_in
            .on_speech_started(active.as_deref(), Instant::now());
        if let Some(id) = &active
            && reactions.iter().any(|r| {
                matches!(r, Reaction::Send(event) if matches!(event.as_ref(), ClientEvent::ResponseCancel(_)))
            })
        {
            self.cancelled_by_us.insert(id.clone());
        }
        match self.react(reactions).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    /// Puts `barge_in`'s decisions into effect, in order: the app's `Interrupted`s, and the
    /// events to send.
    pub(super) async fn react(&mut self, reactions: Vec<Reaction>) -> Result<(), Flow> {
        for reaction in reactions {
            match reaction {
                Reaction::Interrupted {
                    item_id,
                    audio_end_ms,
                } => self.emit(SessionEvent::Interrupted {
                    item_id,
                    audio_end_ms,
                }),
                // A filler's item is not in the conversation: there is nothing to truncate.
                Reaction::Send(event)
                    if matches!(event.as_ref(), ClientEvent::ConversationItemTruncate(t)
                        if self.filler.is_item(&t.item_id)) => {}
                Reaction::Send(event) => self.send(*event).await?,
            }
        }
        Ok(())
    }

    /// The server truncated an assistant item: what the user did not hear leaves the history
    /// too (and any replay of it).
    pub(super) fn on_item_truncated(&mut self, item_id: &str, content_index: u32, end_ms: u64) {
        let key = format!("item:{item_id}");
        let received = self.barge_in.tracker().received_ms(item_id);
        if let Some(item) = self.log.get(&key) {
            let index = usize::try_from(content_index).unwrap_or(usize::MAX);
            let cut = truncated(item, index, end_ms, received);
            self.replace_item(&key, cut);
        }
    }
}
