//! The one owner of `response.create`.
//!
//! The Realtime API allows one active response per conversation. Sending `response.create`
//! while one is active fails with `conversation_already_has_active_response`; sending one per
//! finished tool when a response asked for several tools produces duplicate answers. This state
//! machine decides, from what the server said and what the app asked for, when exactly one
//! `response.create` may go out. It does no I/O, so every rule is unit-tested here.
//!
//! Not every finished tool asks for a follow-up: the calls of a response that was cancelled
//! (the user spoke over it, or the app cancelled it) or failed still deliver their outputs, so
//! the conversation stays consistent, but they never ask the model to go on. Nor does anything
//! go out while the user is speaking; when the server's turn detection will answer the user by
//! itself, the sequencer waits for that response instead of racing it.
//!
//! A filler (a short out-of-band line while tools run, see [`slow`](super::slow)) takes the
//! same slot: it is asked for only while calls run and nothing else is in flight, and the
//! follow-up with the calls' outputs waits for its end. It never asks for anything itself.

use std::collections::{BTreeSet, HashMap, VecDeque};

/// What the sequencer tells the session loop to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<I> {
    /// Send this queued user input (its conversation item) now.
    SendInput(I),
    /// Send `response.create`.
    CreateResponse,
}

/// Where the conversation's single response slot stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    /// No response is active and none was requested.
    Idle,
    /// `response.create` was sent; `response.created` has not arrived yet.
    Requested,
    /// The server's turn detection will start a response by itself (the user just stopped
    /// speaking); nothing may be requested until it does or the expectation lapses.
    Expected,
    /// The server is streaming this response.
    Active(String),
}

/// Tracks the response slot, the tool calls each response is waiting on, and queued input.
///
/// `I` is the app's queued input (a text message, a commit of the audio buffer...).
#[derive(Debug)]
pub struct Sequencer<I> {
    slot: Slot,
    /// Calls started per response id that have not delivered their output yet.
    outstanding: HashMap<String, BTreeSet<String>>,
    /// Responses that are done but whose calls have not all delivered outputs.
    finished_with_calls: BTreeSet<String>,
    /// Tool outputs were delivered for a finished response: the model must be asked to go on.
    follow_up: bool,
    /// User input that arrived while the slot was busy, in arrival order.
    queue: VecDeque<I>,
    /// Responses whose calls must not ask for a follow-up (cancelled, failed, over a limit).
    no_follow_up: BTreeSet<String>,
    /// The user is speaking (server VAD): nothing is requested until they stop.
    speaking: bool,
    /// The slot's request or response is a filler: its end, loss or refusal owes nothing.
    filler: Option<FillerSlot>,
}

/// Where a filler stands in the slot.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FillerSlot {
    /// Its `response.create` was sent.
    Requested,
    /// The server is streaming it.
    Active(String),
}

impl<I> Default for Sequencer<I> {
    fn default() -> Self {
        Sequencer {
            slot: Slot::Idle,
            outstanding: HashMap::new(),
            finished_with_calls: BTreeSet::new(),
            follow_up: false,
            queue: VecDeque::new(),
            no_follow_up: BTreeSet::new(),
            speaking: false,
            filler: None,
        }
    }
}

impl<I> Sequencer<I> {
    /// A sequencer with nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// The app has input that needs an answer. It is queued and released when the
    /// conversation is quiet, so it is never lost and never collides with a response.
    pub fn submit(&mut self, input: I) -> Vec<Step<I>> {
        self.queue.push_back(input);
        self.next_steps()
    }

    /// The server started a response, requested by us or by its own turn detection.
    pub fn response_created(&mut self, response_id: &str) {
        self.slot = Slot::Active(response_id.to_owned());
    }

    /// Takes the free slot for a filler, when calls are running and nothing else waits: no
    /// response in flight or owed, the user silent. Returns whether the filler may go out.
    pub fn request_filler(&mut self) -> bool {
        if self.slot != Slot::Idle || self.speaking || self.follow_up || !self.calls_pending() {
            return false;
        }
        self.slot = Slot::Requested;
        self.filler = Some(FillerSlot::Requested);
        true
    }

    /// The server started the filler (after [`response_created`](Self::response_created)).
    pub fn filler_started(&mut self, response_id: &str) {
        if self.filler == Some(FillerSlot::Requested) {
            self.filler = Some(FillerSlot::Active(response_id.to_owned()));
        }
    }

    /// The filler's `response.create` was refused or never answered: nothing is owed for it,
    /// and a response that holds the slot instead is awaited like any other.
    pub fn filler_refused(&mut self) -> Vec<Step<I>> {
        if self.filler.take() == Some(FillerSlot::Requested) && self.slot == Slot::Requested {
            self.slot = Slot::Idle;
        }
        self.next_steps()
    }

    /// Whether the filler's `response.create` awaits its `response.created`.
    pub fn filler_pending(&self) -> bool {
        self.filler == Some(FillerSlot::Requested) && self.slot == Slot::Requested
    }

    /// A tool call of `response_id` started running.
    pub fn call_started(&mut self, response_id: &str, call_id: &str) {
        self.outstanding
            .entry(response_id.to_owned())
            .or_default()
            .insert(call_id.to_owned());
    }

    /// The server finished a response (completed, cancelled, failed or incomplete).
    pub fn response_done(&mut self, response_id: &str) -> Vec<Step<I>> {
        // Only the active response's end frees the slot: a `response.done` for another (a
        // duplicate, one we never saw start) must not let a second `response.create` out while
        // ours is still pending.
        if matches!(&self.slot, Slot::Active(id) if id == response_id) {
            self.slot = Slot::Idle;
        }
        if matches!(&self.filler, Some(FillerSlot::Active(id)) if id == response_id) {
            self.filler = None;
        }
        let suppressed = self.no_follow_up.contains(response_id);
        match self.outstanding.get(response_id) {
            // Its calls are still running: the follow-up waits for the last one.
            Some(calls) if !calls.is_empty() => {
                self.finished_with_calls.insert(response_id.to_owned());
            }
            // All of its calls delivered their outputs while it was still streaming.
            Some(_) => {
                self.outstanding.remove(response_id);
                self.no_follow_up.remove(response_id);
                self.follow_up |= !suppressed;
            }
            None => {
                self.no_follow_up.remove(response_id);
            }
        }
        self.next_steps()
    }

    /// The calls of `response_id` deliver their outputs without asking the model to go on: the
    /// response was cancelled or failed, or it went over a limit. Call before its
    /// [`response_done`](Self::response_done).
    pub fn suppress_follow_up(&mut self, response_id: &str) {
        self.no_follow_up.insert(response_id.to_owned());
    }

    /// The user started speaking: nothing is requested until they stop.
    pub fn speech_started(&mut self) {
        self.speaking = true;
    }

    /// The user stopped speaking. When the server answers by itself (`server_responds`: turn
    /// detection with `create_response`), its response is awaited rather than raced.
    pub fn speech_stopped(&mut self, server_responds: bool) -> Vec<Step<I>> {
        self.speaking = false;
        if server_responds && self.slot == Slot::Idle {
            self.slot = Slot::Expected;
        }
        self.next_steps()
    }

    /// The input audio buffer was committed or cleared: whatever the user said is over, even
    /// if no `speech_stopped` said so.
    pub fn input_ended(&mut self) -> Vec<Step<I>> {
        self.speaking = false;
        self.next_steps()
    }

    /// The response the server was expected to start did not come (an utterance too short to
    /// answer, say): the slot is free again.
    pub fn expectation_lapsed(&mut self) -> Vec<Step<I>> {
        if self.slot == Slot::Expected {
            self.slot = Slot::Idle;
        }
        self.next_steps()
    }

    /// The turn failed (a stalled or refused response): the pending request is dropped, and
    /// calls still running deliver their outputs without a follow-up. Queued input goes on.
    pub fn fail_turn(&mut self) -> Vec<Step<I>> {
        if matches!(self.slot, Slot::Requested | Slot::Expected) {
            self.slot = Slot::Idle;
            if self.filler == Some(FillerSlot::Requested) {
                self.filler = None;
            }
        }
        self.follow_up = false;
        let pending: Vec<String> = self.outstanding.keys().cloned().collect();
        self.no_follow_up.extend(pending);
        self.next_steps()
    }

    /// Asks for the response again (after a stalled one was cancelled), once the slot is free.
    pub fn request_again(&mut self) -> Vec<Step<I>> {
        self.follow_up = true;
        self.next_steps()
    }

    /// An answer the model waits for reached the conversation outside any tool call (the
    /// decision on a hosted MCP server's approval request): the model is asked to go on once
    /// the slot is free, as after tool outputs, and never while a response is active.
    pub fn answer_delivered(&mut self) -> Vec<Step<I>> {
        self.follow_up = true;
        self.next_steps()
    }

    /// A tool call delivered its output (already sent as a `function_call_output` item).
    pub fn call_finished(&mut self, response_id: &str, call_id: &str) -> Vec<Step<I>> {
        let Some(calls) = self.outstanding.get_mut(response_id) else {
            return Vec::new();
        };
        calls.remove(call_id);
        if calls.is_empty() && self.finished_with_calls.remove(response_id) {
            self.outstanding.remove(response_id);
            if !self.no_follow_up.remove(response_id) {
                self.follow_up = true;
            }
        }
        self.next_steps()
    }

    /// Our `response.create` was refused because a response is already active (for example one
    /// the server's VAD started). The request stays pending until that response is done.
    pub fn create_refused(&mut self) -> Vec<Step<I>> {
        // No `response.created` was seen: the active response is one we do not know; it is
        // awaited like one the server's turn detection starts, for a bounded while.
        if self.slot == Slot::Requested {
            self.slot = Slot::Expected;
        }
        // A refused filler is over (see `filler_refused`); anything else is asked for again.
        if self.filler.take() != Some(FillerSlot::Requested) {
            self.follow_up = true;
        }
        self.next_steps()
    }

    /// The connection was replaced (reconnect or rollover): the response in flight is gone.
    ///
    /// A response that had started tool calls is treated as done, so its follow-up goes out
    /// once the calls deliver. One that was cut off mid-stream, or a `response.create` that was
    /// sent but not answered, is requested again if `rerequest` allows.
    pub fn connection_reset(&mut self, rerequest: bool) -> Vec<Step<I>> {
        // The new connection's VAD has heard nothing yet.
        self.speaking = false;
        // A filler cut off or never answered is not asked for again: the moment has passed.
        let filler = self.filler.take();
        match std::mem::replace(&mut self.slot, Slot::Idle) {
            Slot::Idle | Slot::Expected => {}
            Slot::Requested if filler == Some(FillerSlot::Requested) => {}
            Slot::Requested => self.follow_up |= rerequest,
            Slot::Active(id) if filler == Some(FillerSlot::Active(id.clone())) => {}
            Slot::Active(id) => {
                if self.outstanding.get(&id).is_some_and(|c| !c.is_empty()) {
                    self.finished_with_calls.insert(id);
                } else if self.outstanding.remove(&id).is_some() || rerequest {
                    self.follow_up = true;
                }
            }
        }
        self.next_steps()
    }

    /// Forgets a response that was cut off and whose calls move to the response that replaces
    /// it (see the runner's carry-over); nothing waits on it any more.
    pub fn abandon(&mut self, response_id: &str) {
        self.outstanding.remove(response_id);
        self.finished_with_calls.remove(response_id);
        self.no_follow_up.remove(response_id);
    }

    /// Whether nothing is in flight, queued or owed: a good moment to exit or roll over.
    pub fn is_quiet(&self) -> bool {
        self.slot == Slot::Idle
            && self.outstanding.values().all(BTreeSet::is_empty)
            && !self.follow_up
            && self.queue.is_empty()
    }

    /// Whether a response is active or requested (by us, or expected from the server).
    pub fn response_in_flight(&self) -> bool {
        self.slot != Slot::Idle
    }

    /// Whether our `response.create` is waiting for `response.created`.
    pub fn create_pending(&self) -> bool {
        self.slot == Slot::Requested
    }

    /// Whether the server's own response is expected (the user just stopped speaking).
    pub fn response_expected(&self) -> bool {
        self.slot == Slot::Expected
    }

    /// Whether the user is speaking.
    pub fn user_speaking(&self) -> bool {
        self.speaking
    }

    /// The id of the response being streamed, if any.
    pub fn active_response(&self) -> Option<&str> {
        match &self.slot {
            Slot::Active(id) => Some(id),
            _ => None,
        }
    }

    /// Number of inputs waiting for the conversation to be quiet.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn calls_pending(&self) -> bool {
        self.outstanding.values().any(|calls| !calls.is_empty())
    }

    fn next_steps(&mut self) -> Vec<Step<I>> {
        if self.slot != Slot::Idle || self.calls_pending() || self.speaking {
            return Vec::new();
        }
        if self.follow_up {
            self.follow_up = false;
            self.slot = Slot::Requested;
            return vec![Step::CreateResponse];
        }
        match self.queue.pop_front() {
            Some(input) => {
                self.slot = Slot::Requested;
                vec![Step::SendInput(input), Step::CreateResponse]
            }
            None => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type S = Sequencer<&'static str>;

    #[test]
    fn input_when_idle_goes_out_with_one_create() {
        let mut s = S::new();
        assert_eq!(
            s.submit("hi"),
            vec![Step::SendInput("hi"), Step::CreateResponse]
        );
        assert!(s.response_in_flight());
    }

    #[test]
    fn input_during_a_response_is_queued_not_lost() {
        let mut s = S::new();
        s.submit("one");
        s.response_created("r1");
        assert_eq!(s.submit("two"), vec![]);
        assert_eq!(s.queued(), 1);
        assert_eq!(
            s.response_done("r1"),
            vec![Step::SendInput("two"), Step::CreateResponse]
        );
    }

    #[test]
    fn one_create_after_all_calls_and_the_done() {
        let mut s = S::new();
        s.submit("weather in two cities");
        s.response_created("r1");
        s.call_started("r1", "c1");
        s.call_started("r1", "c2");
        // A call finishing before response.done must not trigger a create.
        assert_eq!(s.call_finished("r1", "c1"), vec![]);
        assert_eq!(s.response_done("r1"), vec![]);
        assert_eq!(s.call_finished("r1", "c2"), vec![Step::CreateResponse]);
        assert_eq!(s.call_finished("r1", "c2"), vec![]);
        s.response_created("r2");
        assert_eq!(s.response_done("r2"), vec![]);
        assert!(s.is_quiet());
    }

    #[test]
    fn calls_that_finish_before_done_get_their_create_at_done() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.call_started("r1", "c1");
        assert_eq!(s.call_finished("r1", "c1"), vec![]);
        assert_eq!(s.response_done("r1"), vec![Step::CreateResponse]);
    }

    #[test]
    fn follow_up_waits_for_another_active_response() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.call_started("r1", "c1");
        s.response_done("r1");
        // The server's VAD starts a response while the tool runs.
        s.response_created("r2");
        assert_eq!(s.call_finished("r1", "c1"), vec![]);
        assert_eq!(s.response_done("r2"), vec![Step::CreateResponse]);
    }

    #[test]
    fn queued_input_waits_for_tool_follow_up() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.call_started("r1", "c1");
        s.response_done("r1");
        assert_eq!(s.submit("y"), vec![]);
        assert_eq!(s.call_finished("r1", "c1"), vec![Step::CreateResponse]);
        s.response_created("r2");
        assert_eq!(
            s.response_done("r2"),
            vec![Step::SendInput("y"), Step::CreateResponse]
        );
    }

    #[test]
    fn refused_create_is_retried_after_the_active_response() {
        let mut s = S::new();
        s.submit("x");
        // The server's VAD response was created first; then our create is refused.
        s.response_created("vad");
        assert_eq!(s.create_refused(), vec![]);
        assert!(!s.is_quiet());
        assert_eq!(s.response_done("vad"), vec![Step::CreateResponse]);
    }

    #[test]
    fn a_cut_response_is_requested_again() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        assert_eq!(s.connection_reset(true), vec![Step::CreateResponse]);
        s.response_created("r2");
        assert_eq!(s.connection_reset(false), vec![]);
        assert!(s.is_quiet());
    }

    #[test]
    fn a_cut_response_with_running_calls_follows_up_when_they_finish() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.call_started("r1", "c1");
        assert_eq!(s.connection_reset(true), vec![]);
        assert_eq!(s.call_finished("r1", "c1"), vec![Step::CreateResponse]);
    }

    #[test]
    fn an_unanswered_create_is_sent_again_once() {
        let mut s = S::new();
        assert_eq!(s.submit("x").len(), 2);
        assert_eq!(s.connection_reset(true), vec![Step::CreateResponse]);
        assert_eq!(s.connection_reset(false), vec![]);
        assert!(s.is_quiet());
    }

    #[test]
    fn a_cancelled_responses_calls_never_ask_for_a_follow_up() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.call_started("r1", "c1");
        s.call_started("r1", "c2");
        assert_eq!(s.call_finished("r1", "c1"), vec![]);
        s.suppress_follow_up("r1");
        assert_eq!(s.response_done("r1"), vec![]);
        assert_eq!(s.call_finished("r1", "c2"), vec![]);
        assert!(s.is_quiet());
        // Calls that all finished before the cancelled response was done: no follow-up either.
        s.submit("y");
        s.response_created("r2");
        s.call_started("r2", "c3");
        s.suppress_follow_up("r2");
        assert_eq!(s.call_finished("r2", "c3"), vec![]);
        assert_eq!(s.response_done("r2"), vec![]);
        assert!(s.is_quiet());
    }

    #[test]
    fn nothing_is_requested_while_the_user_speaks_and_the_servers_answer_is_awaited() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.call_started("r1", "c1");
        s.response_done("r1");
        s.speech_started();
        // The tool finishes while the user is still talking: no create.
        assert_eq!(s.call_finished("r1", "c1"), vec![]);
        // The user stops; server VAD will answer, so the follow-up waits for that response.
        assert_eq!(s.speech_stopped(true), vec![]);
        assert!(s.response_expected());
        s.response_created("vad");
        assert_eq!(s.response_done("vad"), vec![Step::CreateResponse]);
    }

    #[test]
    fn speech_that_never_stops_cannot_hold_the_queue_forever() {
        let mut s = S::new();
        s.speech_started();
        assert_eq!(s.submit("typed"), vec![]);
        // The buffer was committed without a speech_stopped (or the connection dropped).
        assert_eq!(
            s.input_ended(),
            vec![Step::SendInput("typed"), Step::CreateResponse]
        );
        s.response_created("r1");
        s.response_done("r1");
        s.speech_started();
        s.submit("again");
        assert_eq!(
            s.connection_reset(true),
            vec![Step::SendInput("again"), Step::CreateResponse]
        );
    }

    #[test]
    fn a_lapsed_expectation_frees_the_slot() {
        let mut s = S::new();
        s.speech_started();
        assert_eq!(s.submit("typed"), vec![]);
        assert_eq!(s.speech_stopped(true), vec![]);
        assert_eq!(
            s.expectation_lapsed(),
            vec![Step::SendInput("typed"), Step::CreateResponse]
        );
    }

    #[test]
    fn a_failed_turn_drops_its_request_but_not_queued_input() {
        let mut s = S::new();
        s.submit("x");
        s.submit("y");
        assert!(s.create_pending());
        assert_eq!(
            s.fail_turn(),
            vec![Step::SendInput("y"), Step::CreateResponse]
        );
        s.response_created("r2");
        s.call_started("r2", "c1");
        s.response_done("r2");
        assert_eq!(s.fail_turn(), vec![]);
        assert_eq!(s.call_finished("r2", "c1"), vec![]);
        assert!(s.is_quiet());
    }

    #[test]
    fn a_stalled_response_is_requested_again() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.suppress_follow_up("r1");
        assert_eq!(s.response_done("r1"), vec![]);
        assert_eq!(s.request_again(), vec![Step::CreateResponse]);
    }

    #[test]
    fn an_answer_delivered_during_a_response_asks_once_after_it() {
        let mut s = S::new();
        s.submit("use the wiki");
        s.response_created("r1");
        assert_eq!(
            s.answer_delivered(),
            vec![],
            "never while a response is active"
        );
        assert_eq!(s.response_done("r1"), vec![Step::CreateResponse]);
        s.response_created("r2");
        assert_eq!(s.response_done("r2"), vec![]);
        assert!(s.is_quiet());
        assert_eq!(s.answer_delivered(), vec![Step::CreateResponse]);
    }

    #[test]
    fn a_filler_takes_the_slot_and_the_follow_up_waits_for_its_end() {
        let mut s = S::new();
        assert!(!s.request_filler(), "no calls are running");
        s.submit("check my order");
        s.response_created("r1");
        s.call_started("r1", "c1");
        assert!(!s.request_filler(), "never during a response");
        assert_eq!(s.response_done("r1"), vec![]);
        assert!(s.request_filler());
        assert!(s.filler_pending());
        assert!(!s.request_filler(), "one at a time");
        s.response_created("filler");
        s.filler_started("filler");
        // The call finishes while the filler plays: its follow-up waits for the filler's end.
        assert_eq!(s.call_finished("r1", "c1"), vec![]);
        assert_eq!(s.response_done("filler"), vec![Step::CreateResponse]);
        s.response_created("r2");
        assert_eq!(s.response_done("r2"), vec![]);
        assert!(s.is_quiet());
    }

    #[test]
    fn a_filler_that_ends_first_leaves_the_follow_up_to_the_calls() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.call_started("r1", "c1");
        s.response_done("r1");
        assert!(s.request_filler());
        s.response_created("filler");
        s.filler_started("filler");
        assert_eq!(s.response_done("filler"), vec![]);
        assert_eq!(s.call_finished("r1", "c1"), vec![Step::CreateResponse]);
    }

    #[test]
    fn a_refused_or_lost_filler_owes_nothing() {
        let mut s = S::new();
        s.submit("x");
        s.response_created("r1");
        s.call_started("r1", "c1");
        s.response_done("r1");
        assert!(s.request_filler());
        assert_eq!(s.filler_refused(), vec![]);
        assert!(!s.response_in_flight());
        // Refused because the server's own response took the slot.
        assert!(s.request_filler());
        s.response_created("vad");
        assert_eq!(s.create_refused(), vec![]);
        assert_eq!(s.response_done("vad"), vec![], "the calls still run");
        // Cut off by a dropped connection, requested or streaming: not asked for again.
        assert!(s.request_filler());
        assert_eq!(s.connection_reset(true), vec![]);
        assert!(s.request_filler());
        s.response_created("filler");
        s.filler_started("filler");
        assert_eq!(s.connection_reset(true), vec![]);
        assert_eq!(s.call_finished("r1", "c1"), vec![Step::CreateResponse]);
    }

    #[test]
    fn a_background_result_waits_for_the_model_to_be_idle() {
        let mut s = S::new();
        s.submit("start the report");
        s.response_created("r1");
        // The result arrives while a response streams: queued, never sent over it.
        assert_eq!(s.submit("result"), vec![]);
        assert_eq!(
            s.response_done("r1"),
            vec![Step::SendInput("result"), Step::CreateResponse]
        );
    }

    #[test]
    fn unsolicited_responses_are_tracked() {
        let mut s = S::new();
        s.response_created("vad1");
        assert_eq!(s.submit("typed"), vec![]);
        assert_eq!(
            s.response_done("vad1"),
            vec![Step::SendInput("typed"), Step::CreateResponse]
        );
    }
}
