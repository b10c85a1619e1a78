//! Guardrails at run time: the user's input is checked before the model acts on it, the
//! assistant's answer while it streams.
//!
//! - **Output.** Each answer's text (or audio transcript) is checked as it grows, at most
//!   every `output_debounce_ms` and once more when it is complete. When a guardrail trips, the
//!   rest of the answer is not passed on, the response is cancelled, playback stops as the
//!   transport requires (the app's `Interrupted` and a truncate at what was heard where the
//!   app plays the audio; `output_audio_buffer.clear` where the platform does), and the model
//!   is told why in a system message and answers again, at most `max_retries` times a turn.
//! - **Input.** Typed text is checked before it is sent; a message that trips is never sent.
//!   A spoken turn is checked when its transcript arrives: in blocking mode the server does not
//!   answer by itself and the response is asked for only once the transcript passed; in
//!   parallel mode the answer already under way is cut off. Either way the user's item leaves
//!   the server's conversation (`conversation.item.delete`) and the history keeps only a
//!   placeholder, and the model is told to decline.
//!
//! Every trip is a [`SessionEvent::GuardrailTripped`], a `guardrail_tripped` trace note and a
//! record in the history ([`HistorySink::guardrail_tripped`](crate::session::HistorySink::guardrail_tripped)).
//! An answer an output guardrail stopped is stored as a placeholder that names the guardrail,
//! never with its text: a text-only answer is not truncated by the server, and the history is
//! replayed into the next connection.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use super::{Flow, Input, Runner};
use crate::{
    guardrail::{GuardrailStage, Trip},
    protocol::{ClientEvent, ContentPart, Item},
    session::events::SessionEvent,
};

/// The most bytes of an answer that may stream between two checks, whatever the debounce.
const UNCHECKED_MAX: usize = 48;

/// What output guardrails have seen.
#[derive(Debug, Default)]
pub(super) struct GuardState {
    /// Each streaming answer's text so far, how much of it was checked, and when.
    answers: HashMap<String, (String, (usize, Option<Instant>))>,
    /// Responses a guardrail stopped: the rest of their text is dropped.
    stopped: HashSet<String>,
    /// Answers an output guardrail stopped, by item id: their response's id and the
    /// guardrail's name. Until their response is done, they are logged as a placeholder.
    withheld: HashMap<String, (String, String)>,
    /// Answers asked for again after an output trip in this user turn.
    retries: u32,
    /// Input tripped while the server's turn detection was about to answer it: the response
    /// it starts is cut off as soon as it is created (until we ask for one ourselves).
    cut_next: bool,
}

impl Runner {
    /// A piece of an answer's text: checked (debounced) before it is passed on. Returns
    /// whether to pass it on.
    pub(super) async fn guard_delta(
        &mut self,
        response_id: &str,
        item_id: &str,
        delta: &str,
    ) -> Result<bool, Flow> {
        let Some(guardrails) = self.config.guardrails.clone() else {
            return Ok(true);
        };
        if self.guard.stopped.contains(response_id) {
            return Ok(false);
        }
        if !guardrails.checks_output() {
            return Ok(true);
        }
        let now = Instant::now();
        let (text, last) = self
            .guard
            .answers
            .entry(item_id.to_owned())
            .or_insert_with(|| (String::new(), (0, None)));
        text.push_str(delta);
        // Debounced, yet never more than UNCHECKED_MAX characters unchecked: a fast stream
        // is checked as it goes, not only at its end.
        let (checked_len, last) = last;
        let recent = last.is_some_and(|at| now.duration_since(at) < guardrails.output_debounce);
        if recent && text.len() - *checked_len < UNCHECKED_MAX {
            return Ok(true);
        }
        *last = Some(now);
        *checked_len = text.len();
        match guardrails.check(GuardrailStage::Output, text) {
            None => Ok(true),
            Some(trip) => {
                self.output_tripped(response_id, item_id, trip).await?;
                Ok(false)
            }
        }
    }

    /// An answer's text is complete: checked once more, whatever the debounce skipped.
    pub(super) async fn guard_done(
        &mut self,
        response_id: &str,
        item_id: &str,
        text: &str,
    ) -> Flow {
        let Some(guardrails) = self.config.guardrails.clone() else {
            return Flow::Continue;
        };
        self.guard.answers.remove(item_id);
        if !guardrails.checks_output() || self.guard.stopped.contains(response_id) {
            return Flow::Continue;
        }
        match guardrails.check(GuardrailStage::Output, text) {
            None => Flow::Continue,
            Some(trip) => match self.output_tripped(response_id, item_id, trip).await {
                Ok(()) => Flow::Continue,
                Err(flow) => flow,
            },
        }
    }

    /// A response started: cut off at once if it answers input a guardrail withheld.
    pub(super) async fn guard_response_created(&mut self, response_id: &str) -> Flow {
        if !std::mem::take(&mut self.guard.cut_next) {
            return Flow::Continue;
        }
        self.guard.stopped.insert(response_id.to_owned());
        match self.cut_off(response_id).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    /// We asked for a response ourselves: it answers a note, not withheld input.
    pub(super) fn guard_own_create(&mut self) {
        self.guard.cut_next = false;
    }

    /// Push-to-talk with blocking input guardrails: the buffer is committed now, and the
    /// answer asked for once its transcript passed (see [`Runner::guard_transcript`]).
    /// `None` when the commit takes the usual way (commit, then answer).
    pub(super) async fn guard_commit(&mut self) -> Option<Flow> {
        if !self.blocks_spoken_input() {
            return None;
        }
        Some(
            match self.send(ClientEvent::input_audio_buffer_commit()).await {
                Ok(()) => Flow::Continue,
                Err(flow) => flow,
            },
        )
    }

    /// A response ended: what was kept for its checks goes. Called after its slots in the
    /// log were settled, so its stopped answers were logged as placeholders.
    pub(super) fn guard_response_done(&mut self, response_id: &str) {
        self.guard.stopped.remove(response_id);
        self.guard
            .withheld
            .retain(|_, (response, _)| response != response_id);
    }

    /// `item` as the log keeps it: an answer an output guardrail stopped becomes a
    /// placeholder that names the guardrail. Its words must not be stored, nor replayed into
    /// the next connection: for a text answer the server keeps them (only audio is truncated),
    /// and they are what the guardrail exists to keep out.
    pub(super) fn guard_logged(&self, item: Item) -> Item {
        match item.id().and_then(|id| self.guard.withheld.get(id)) {
            Some((_, guardrail)) => stopped_answer(&item, guardrail),
            None => item,
        }
    }

    /// A new user turn: the model may be asked to answer again afresh.
    pub(super) fn guard_new_turn(&mut self) {
        self.guard.retries = 0;
        self.guard.answers.clear();
    }

    async fn output_tripped(
        &mut self,
        response_id: &str,
        item_id: &str,
        trip: Trip,
    ) -> Result<(), Flow> {
        self.guard.stopped.insert(response_id.to_owned());
        self.guard.answers.remove(item_id);
        self.guard.withheld.insert(
            item_id.to_owned(),
            (response_id.to_owned(), trip.guardrail.clone()),
        );
        // Logged already (a server that completed the item first): replaced now.
        let key = format!("item:{item_id}");
        if let Some(logged) = self.log.get(&key).cloned() {
            let placeholder = self.guard_logged(logged);
            self.replace_item(&key, placeholder);
        }
        self.announce_trip(GuardrailStage::Output, &trip, Some(item_id));
        self.cut_off(response_id).await?;
        let budget = self.config.guardrails.as_ref().map_or(0, |g| g.max_retries);
        if self.guard.retries >= budget {
            self.warn(&format!(
                "the guardrail `{}` stopped {} answers in this turn; not asking again",
                trip.guardrail,
                self.guard.retries + 1
            ));
            return Ok(());
        }
        self.guard.retries += 1;
        let note = format!(
            "Your last answer was stopped before it reached the user: it broke the rule `{}` \
             ({}). The user did not get the rest of it. Answer again within the rules, without \
             repeating what broke them.",
            trip.guardrail, trip.reason
        );
        self.submit(Input::Note {
            withheld: None,
            note,
        })
        .await
    }

    /// Typed text from the app: sent when it passes; otherwise the model is told to decline
    /// instead, and the text never leaves.
    pub(super) async fn guard_typed(&mut self, text: String) -> Flow {
        let trip = self
            .config
            .guardrails
            .as_ref()
            .and_then(|g| g.check(GuardrailStage::Input, &text));
        let input = match trip {
            None => Input::Text(text),
            Some(trip) => {
                self.announce_trip(GuardrailStage::Input, &trip, None);
                Input::Note {
                    withheld: Some(placeholder(&trip)),
                    note: declined(&trip),
                }
            }
        };
        match self.submit(input).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    /// The transcript of a spoken turn arrived: checked. In blocking mode a turn that passes
    /// is answered now; one that trips (in either mode) leaves the conversation, and an
    /// answer under way is cut off.
    pub(super) async fn guard_transcript(&mut self, item_id: &str, transcript: &str) -> Flow {
        let Some(guardrails) = self.config.guardrails.clone() else {
            return Flow::Continue;
        };
        if !guardrails.checks_input() {
            return Flow::Continue;
        }
        let blocking = self.blocks_spoken_input();
        let outcome = match guardrails.check(GuardrailStage::Input, transcript) {
            None if blocking => self.submit(Input::Respond).await,
            None => Ok(()),
            Some(trip) => self.input_tripped(item_id, trip).await,
        };
        match outcome {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    /// A spoken turn could not be transcribed, so it could not be checked: in blocking mode
    /// the model asks the user to say it again rather than answer unchecked input.
    pub(super) async fn guard_untranscribed(&mut self, item_id: &str) -> Flow {
        if !self.blocks_spoken_input() {
            return Flow::Continue;
        }
        let note = "The user's last words could not be transcribed, so they were not passed \
                    on. Ask the user, briefly, to say it again."
            .to_owned();
        let result = async {
            self.send(ClientEvent::conversation_item_delete(item_id))
                .await?;
            self.submit(Input::Note {
                withheld: None,
                note,
            })
            .await
        }
        .await;
        match result {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    async fn input_tripped(&mut self, item_id: &str, trip: Trip) -> Result<(), Flow> {
        self.announce_trip(GuardrailStage::Input, &trip, Some(item_id));
        // The words leave the model's context and the history; a placeholder says why.
        self.replace_item(
            &format!("item:{item_id}"),
            Item::user_text(placeholder(&trip)),
        );
        self.send(ClientEvent::conversation_item_delete(item_id))
            .await?;
        if let Some(active) = self.sequencer.active_response().map(str::to_owned) {
            self.guard.stopped.insert(active.clone());
            self.cut_off(&active).await?;
        } else if self.sequencer.response_expected() {
            // The server's turn detection is about to answer what was withheld.
            self.guard.cut_next = true;
        }
        self.submit(Input::Note {
            withheld: None,
            note: declined(&trip),
        })
        .await
    }

    /// Whether spoken turns wait for the input guardrails: input guardrails in blocking mode,
    /// and turn detection that leaves the answer to the runtime. After a handoff to an agent
    /// with blocking input guardrails from one without, the server still answers by itself
    /// (turn detection is the starting agent's), so the check runs in parallel instead of
    /// asking twice.
    fn blocks_spoken_input(&self) -> bool {
        !self.server_responds
            && self.config.guardrails.as_ref().is_some_and(|g| {
                g.checks_input() && g.input_mode == crate::agent::InputGuardMode::Blocking
            })
    }

    /// Cancels `response_id` if it is still streaming, and stops its playback.
    async fn cut_off(&mut self, response_id: &str) -> Result<(), Flow> {
        if self.sequencer.active_response() == Some(response_id) {
            self.cancelled_by_us.insert(response_id.to_owned());
            self.send(ClientEvent::response_cancel_id(response_id))
                .await?;
            if self.config.ownership.is_platform_held() {
                self.send(ClientEvent::output_audio_buffer_clear()).await?;
            }
        }
        let reactions = self.barge_in.cut_off(response_id, Instant::now());
        self.react(reactions).await
    }

    fn announce_trip(&mut self, stage: GuardrailStage, trip: &Trip, item_id: Option<&str>) {
        tracing::info!(guardrail = %trip.guardrail, stage = stage.as_str(), "a guardrail tripped");
        self.note(
            "guardrail_tripped",
            &serde_json::json!({"guardrail": trip.guardrail, "stage": stage.as_str(), "reason": trip.reason, "item_id": item_id}),
        );
        if let Some(sink) = &self.config.history_sink {
            sink.guardrail_tripped(&trip.guardrail, stage, &trip.reason);
        }
        self.emit(SessionEvent::GuardrailTripped {
            guardrail: trip.guardrail.clone(),
            stage,
            reason: trip.reason.clone(),
            item_id: item_id.map(str::to_owned),
        });
    }

    /// Queues `input` with the sequencer and puts what may go now on the wire.
    async fn submit(&mut self, input: Input) -> Result<(), Flow> {
        let steps = self.sequencer.submit(input);
        match self.apply(steps).await {
            Flow::Continue => Ok(()),
            flow => Err(flow),
        }
    }
}

/// What stands in the conversation for the user's words that tripped `trip`.
fn placeholder(trip: &Trip) -> String {
    format!("[withheld by the guardrail `{}`]", trip.guardrail)
}

/// What the log keeps of an assistant answer the guardrail `guardrail` stopped: the message,
/// its words replaced by a note that says so, as the model was told.
fn stopped_answer(item: &Item, guardrail: &str) -> Item {
    let mut item = item.clone();
    if let Item::Message(message) = &mut item {
        message.content = vec![ContentPart::output_text(format!(
            "[answer stopped by the guardrail `{guardrail}`]"
        ))];
    }
    item
}

/// What the model is told when the user's input tripped `trip`.
fn declined(trip: &Trip) -> String {
    format!(
        "The user's last message was withheld: it broke the rule `{}` ({}). Tell the user, \
         briefly and politely, that you cannot help with that, without guessing what it said.",
        trip.guardrail, trip.reason
    )
}
