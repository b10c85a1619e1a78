//! The filler: one short out-of-band line while a response's calls run long.
//!
//! When the calls of a response (a round) are still running `filler_after_ms` after the first
//! one started, one `response.create` with `conversation: "none"` asks the agent to say it is
//! still working. It takes the sequencer's single slot, so it never collides with another
//! response, and the follow-up with the outputs waits for its `response.done`. Its audio and
//! text reach the app like any response's, but its items stay out of the conversation log (the
//! server keeps them out of the conversation too); a barge-in stops it without truncating an
//! item the conversation does not hold; its usage is charged like any response's. It is never
//! asked for again: not after a refusal, a stall or a lost connection, when the moment passed.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use super::{Flow, Runner};
use crate::{
    protocol::{Item, Response, ResponseDone},
    session::{events::SessionEvent, recent::RecentIds, slow},
};

/// How soon a due filler looks again when the slot was busy (the round's own response still
/// streaming, the user speaking).
const RETRY: Duration = Duration::from_millis(100);

/// How many rounds remember that they had their filler.
const ROUNDS_KEPT: usize = 64;

/// Where the filler of the current round stands.
pub(super) struct FillerState {
    /// The round (response id) whose calls are timed, and when its filler is due.
    armed: Option<(String, Instant)>,
    /// Rounds that had their chance at a filler: one each, at most.
    rounds: RecentIds,
    /// The `event_id` of the filler's `response.create` until `response.created`.
    pending: Option<String>,
    /// The filler response being streamed.
    active: Option<String>,
    /// Its output items, which the conversation does not hold.
    items: HashSet<String>,
}

impl Default for FillerState {
    fn default() -> Self {
        FillerState {
            armed: None,
            rounds: RecentIds::bounded(ROUNDS_KEPT),
            pending: None,
            active: None,
            items: HashSet::new(),
        }
    }
}

impl FillerState {
    /// When the armed filler is due, if one is.
    pub(super) fn due(&self) -> Option<Instant> {
        self.armed.as_ref().map(|(_, at)| *at)
    }

    /// Whether `response_id` is the filler.
    pub(super) fn is_active(&self, response_id: &str) -> bool {
        self.active.as_deref() == Some(response_id)
    }

    /// Whether `item_id` is an output item of the filler.
    pub(super) fn is_item(&self, item_id: &str) -> bool {
        self.items.contains(item_id)
    }
}

impl Runner {
    /// A call of `response_id` started running: the filler's clock starts with the round's
    /// first call, when the agent file asks for fillers.
    pub(super) fn arm_filler(&mut self, response_id: &str) {
        let Some(filler) = &self.config.slow_tools.filler else {
            return;
        };
        if self.filler.rounds.insert(response_id) {
            let due = Instant::now() + filler.after;
            self.filler.armed = Some((response_id.to_owned(), due));
        }
    }

    /// The filler is due: asked for when the round's calls still run and the slot is free;
    /// looked at again shortly when the slot is busy; dropped when the calls are done.
    pub(super) async fn on_filler_due(&mut self) -> Flow {
        let Some((round, _)) = self.filler.armed.clone() else {
            return Flow::Continue;
        };
        let running = self.response_calls.get(&round).is_some_and(|calls| {
            calls
                .order
                .iter()
                .any(|c| !self.finished.contains_key(c) && !self.delivered.contains(c))
        });
        let Some(filler) = self.config.slow_tools.filler.clone() else {
            self.filler.armed = None;
            return Flow::Continue;
        };
        if !running || self.accounting.budget_exhausted() {
            self.filler.armed = None;
            return Flow::Continue;
        }
        if !self.sequencer.request_filler() {
            self.filler.armed = Some((round, Instant::now() + RETRY));
            return Flow::Continue;
        }
        self.filler.armed = None;
        self.creates_sent += 1;
        let event_id = format!("filler_{:06}", self.creates_sent);
        self.pending_create = Some(event_id.clone());
        self.filler.pending = Some(event_id.clone());
        self.watchdog.progress(Instant::now());
        self.note("filler", &serde_json::json!({"round": round}));
        let modalities = self.config.session.output_modalities.clone();
        let event = slow::filler_create(&filler, modalities).with_event_id(event_id);
        match self.send(event).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }

    /// `response.created`: the filler we asked for is known by its metadata.
    pub(super) fn filler_created(&mut self, response: &Response) {
        if self.filler.pending.is_some() && slow::is_filler(response) {
            self.filler.pending = None;
            self.filler.active = Some(response.id.clone());
            self.filler.items.clear();
            self.sequencer.filler_started(&response.id);
        }
    }

    /// An output item the filler announced: noted (for barge-in), never given a log slot.
    /// Returns whether `response_id` is the filler.
    pub(super) fn filler_output(&mut self, response_id: &str, item: &Item) -> bool {
        if !self.filler.is_active(response_id) {
            return false;
        }
        if let Some(id) = item.id() {
            self.filler.items.insert(id.to_owned());
        }
        true
    }

    /// An error answered our pending `response.create`: when it was the filler's, it is over
    /// (nothing is asked for again). `None` when the request was not the filler's.
    pub(super) async fn filler_refused(&mut self) -> Option<Flow> {
        if self.filler.pending.is_none() || self.filler.pending != self.pending_create {
            return None;
        }
        self.pending_create = None;
        self.filler.pending = None;
        let steps = self.sequencer.filler_refused();
        Some(self.apply(steps).await)
    }

    /// The filler's `response.create` got no answer in time: dropped, the connection kept
    /// (the follow-up's own request has its own deadline). `None` when none is pending.
    pub(super) async fn filler_lapsed(&mut self) -> Option<Flow> {
        if !self.sequencer.filler_pending() {
            return None;
        }
        self.watchdog.progress(Instant::now());
        self.pending_create = None;
        self.filler.pending = None;
        let steps = self.sequencer.filler_refused();
        Some(self.apply(steps).await)
    }

    /// The filler's `response.done`: the slot is free (the follow-up may go), its usage is
    /// charged, and nothing of it is logged. A filler that stalled or was cut is not retried.
    pub(super) async fn on_filler_done(&mut self, done: ResponseDone) -> Flow {
        let response = done.response;
        let id = response.id.clone();
        self.filler.active = None;
        self.filler.items.clear();
        self.watchdog.done(&id);
        self.cancelled_by_us.remove(&id);
        self.response_tokens.remove(&id);
        self.response_slots.remove(&id);
        self.guard_response_done(&id);
        self.barge_in.on_response_done(&id, Instant::now());
        let steps = self.sequencer.response_done(&id);
        let status = response
            .status
            .as_ref()
            .map_or_else(|| "completed".to_owned(), |s| s.as_str().to_owned());
        let accounted = self
            .accounting
            .response_done(&id, &status, response.usage.as_ref());
        self.emit(SessionEvent::ResponseDone {
            response_id: id,
            status,
            usage: response.usage.clone(),
        });
        self.emit_all(accounted);
        self.flush_and_apply(steps).await
    }
}
