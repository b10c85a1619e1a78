//! Barge-in: the user speaks over the assistant.
//!
//! When server VAD reports `input_audio_buffer.speech_started` while assistant audio is still
//! playing, three things must happen, in this order:
//!
//! 1. playback stops at once ([`Reaction::Interrupted`], which the app turns into "flush the
//!    speaker");
//! 2. `response.cancel`, when a response is still active and the server will not cancel it
//!    itself (turn detection with `interrupt_response = false`);
//! 3. `conversation.item.truncate` of every audio item whose playback had not finished, at
//!    `audio_end_ms = min(played, received)`, so the model's memory of what it said matches what
//!    the user heard. Never past the received audio (the API rejects that and the agent goes
//!    silent), and no truncate when playback had already finished.
//!
//! Audio deltas that arrive after the interruption for the interrupted items, or for the
//! response that is being cancelled, are dropped rather than played.
//!
//! "Played" comes from the [`PlaybackClock`] in the session config (a device's reports, a
//! real-time virtual speaker, or "as received"). This module does no I/O: the runner feeds it
//! audio deltas and response ends and sends what it returns, so every rule is tested here.

use std::{collections::VecDeque, time::Instant};

use crate::{
    audio::{PlaybackClock, PlaybackTracker},
    protocol::{ClientEvent, Modality, Session, SessionKind, TurnDetection},
};

/// How many cancelled responses are remembered, to drop their late deltas.
const SILENCED_KEPT: usize = 16;

/// What the runner does about a barge-in, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Reaction {
    /// Tell the app to stop playing this item now; it was heard up to `audio_end_ms`.
    Interrupted {
        /// The assistant item.
        item_id: String,
        /// Where playback stopped, in ms of the item's audio.
        audio_end_ms: u64,
    },
    /// Put this event on the wire (`response.cancel` or `conversation.item.truncate`).
    Send(Box<ClientEvent>),
}

/// Whether the server's turn detection starts a response by itself when the user stops
/// speaking (`create_response`, on by default; never in a transcription session).
pub fn server_creates_responses(session: &Session) -> bool {
    if session.kind == SessionKind::Transcription {
        return false;
    }
    match session.turn_detection() {
        Some(TurnDetection::ServerVad(vad)) => vad.create_response.unwrap_or(true),
        Some(TurnDetection::SemanticVad(vad)) => vad.create_response.unwrap_or(true),
        Some(TurnDetection::Disabled) => false,
        None => true,
    }
}

/// The barge-in state of one session: a playback tracker plus what the session's turn
/// detection does by itself.
#[derive(Debug, Clone)]
pub struct BargeIn {
    tracker: PlaybackTracker,
    /// The server cancels the active response when speech starts (`interrupt_response`).
    server_interrupts: bool,
    /// The session produces audio at all.
    speaks: bool,
    /// Responses being cancelled because of a barge-in: their audio is no longer played.
    silenced: VecDeque<String>,
    /// The platform plays the audio (a platform-held session): it stops its own playback, so
    /// nothing is truncated, and a cancel of ours comes with `output_audio_buffer.clear`.
    platform_plays: bool,
}

impl BargeIn {
    /// Barge-in handling for `session` (formats, modalities, turn detection as configured),
    /// with played time from `clock`.
    pub fn new(session: &Session, clock: PlaybackClock) -> Self {
        let output_format = session.output_format().unwrap_or_default();
        let server_interrupts = match session.turn_detection() {
            Some(TurnDetection::ServerVad(vad)) => vad.interrupt_response.unwrap_or(true),
            Some(TurnDetection::SemanticVad(vad)) => vad.interrupt_response.unwrap_or(true),
            // No VAD: no speech_started either. Unset: the server default (server VAD) applies.
            Some(TurnDetection::Disabled) | None => true,
        };
        // GA sessions speak unless told otherwise.
        let speaks = session.kind == SessionKind::Realtime
            && session
                .output_modalities
                .as_ref()
                .is_none_or(|m| m.contains(&Modality::Audio));
        BargeIn {
            tracker: PlaybackTracker::new(output_format, clock),
            server_interrupts,
            speaks,
            silenced: VecDeque::new(),
            platform_plays: false,
        }
    }

    /// The same handling for a session whose audio the platform holds, or not (see
    /// [`Ownership`](crate::session::Ownership)).
    pub fn with_ownership(mut self, ownership: crate::session::Ownership) -> Self {
        self.platform_plays = ownership.is_platform_held();
        self
    }

    /// The playback tracker, e.g. to show received versus played.
    pub fn tracker(&mut self) -> &mut PlaybackTracker {
        &mut self.tracker
    }

    /// An audio delta of `bytes` bytes arrived. Returns whether to pass it on to the app's
    /// player (`false` after a barge-in cut its item or its response off).
    pub fn on_audio(
        &mut self,
        response_id: &str,
        item_id: &str,
        content_index: u32,
        bytes: usize,
        now: Instant,
    ) -> bool {
        if self.silenced.iter().any(|id| id == response_id) {
            return false;
        }
        self.tracker
            .on_audio(response_id, item_id, content_index, bytes, now)
    }

    /// The connection was replaced: the new server session knows none of the old audio items,
    /// so none of them can be truncated any more.
    pub fn connection_reset(&mut self) {
        self.tracker.forget_all();
        self.silenced.clear();
    }

    /// A response ended; its audio is complete.
    pub fn on_response_done(&mut self, response_id: &str, now: Instant) {
        self.tracker.on_response_done(response_id, now);
    }

    /// A guardrail stopped `response_id`: its later audio is dropped, and, where the app plays
    /// the audio, playback stops and every unfinished item is truncated at what was heard
    /// (the platform stops its own playback when told `output_audio_buffer.clear`, which the
    /// runner sends with its `response.cancel`).
    pub fn cut_off(&mut self, response_id: &str, now: Instant) -> Vec<Reaction> {
        self.silence(response_id);
        let (mut reactions, truncates) = self.stop_playback(now);
        reactions.extend(truncates);
        reactions
    }

    /// Speech started. `active_response` is the response the server is streaming, if any.
    pub fn on_speech_started(
        &mut self,
        active_response: Option<&str>,
        now: Instant,
    ) -> Vec<Reaction> {
        let mut sends = Vec::new();
        if let Some(response_id) = active_response
            && self.speaks
        {
            if !self.server_interrupts {
                sends.push(Reaction::Send(Box::new(ClientEvent::response_cancel())));
                if self.platform_plays {
                    let clear = ClientEvent::output_audio_buffer_clear();
                    sends.push(Reaction::Send(Box::new(clear)));
                }
            }
            self.silence(response_id);
        }
        let (mut reactions, truncates) = self.stop_playback(now);
        reactions.extend(sends);
        reactions.extend(truncates);
        reactions
    }

    /// Drops the later audio of `response_id`.
    fn silence(&mut self, response_id: &str) {
        if self.silenced.len() == SILENCED_KEPT {
            self.silenced.pop_front();
        }
        self.silenced.push_back(response_id.to_owned());
    }

    /// Where the app plays the audio: stop every unfinished item (the app's `Interrupted`s)
    /// and truncate it at `min(played, received)` (the truncates to send). The platform knows
    /// what the caller heard, so a truncate from our position would be wrong there: nothing.
    fn stop_playback(&mut self, now: Instant) -> (Vec<Reaction>, Vec<Reaction>) {
        let mut stops = Vec::new();
        let mut truncates = Vec::new();
        if self.platform_plays {
            return (stops, truncates);
        }
        for (item, played, received) in self.tracker.unfinished(now) {
            if received == 0 {
                continue;
            }
            let audio_end_ms = played.min(received);
            self.tracker.interrupt(&item.item_id);
            stops.push(Reaction::Interrupted {
                item_id: item.item_id.clone(),
                audio_end_ms,
            });
            truncates.push(Reaction::Send(Box::new(
                ClientEvent::conversation_item_truncate(
                    item.item_id,
                    item.content_index,
                    audio_end_ms,
                ),
            )));
        }
        (stops, truncates)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::protocol::{AudioFormat, ServerVad};

    const MS: Duration = Duration::from_millis(1);
    /// 100 ms of PCM16 at 24 kHz.
    const CHUNK: usize = 4_800;

    fn session(interrupt_response: Option<bool>, audio: bool) -> Session {
        let mut s = Session::realtime();
        s.output_modalities = Some(vec![if audio {
            Modality::Audio
        } else {
            Modality::Text
        }]);
        s.audio_input_mut().turn_detection = Some(TurnDetection::ServerVad(ServerVad {
            interrupt_response,
            ..ServerVad::default()
        }));
        s.audio_output_mut().format = Some(AudioFormat::pcm16());
        s
    }

    fn truncate(item: &str, ms: u64) -> Reaction {
        Reaction::Send(Box::new(ClientEvent::conversation_item_truncate(
            item, 0, ms,
        )))
    }

    fn interrupted(item: &str, ms: u64) -> Reaction {
        Reaction::Interrupted {
            item_id: item.into(),
            audio_end_ms: ms,
        }
    }

    fn cancel() -> Reaction {
        Reaction::Send(Box::new(ClientEvent::response_cancel()))
    }

    #[test]
    fn mid_audio_truncates_at_what_was_played() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(&session(None, true), PlaybackClock::real_time());
        b.on_audio("r1", "a", 0, CHUNK * 10, t0);
        let r = b.on_speech_started(Some("r1"), t0 + 250 * MS);
        // The server cancels by itself (interrupt_response defaults to true).
        assert_eq!(r, vec![interrupted("a", 250), truncate("a", 250)]);
        // Late deltas of the cancelled response are not played.
        assert!(!b.on_audio("r1", "a", 0, CHUNK, t0 + 260 * MS));
    }

    #[test]
    fn without_interrupt_response_the_client_cancels_first() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(&session(Some(false), true), PlaybackClock::real_time());
        b.on_audio("r1", "a", 0, CHUNK * 10, t0);
        let r = b.on_speech_started(Some("r1"), t0 + 300 * MS);
        assert_eq!(r, vec![interrupted("a", 300), cancel(), truncate("a", 300)]);
    }

    #[test]
    fn never_truncates_past_the_received_audio() {
        let t0 = Instant::now();
        let clock = PlaybackClock::reported();
        let mut b = BargeIn::new(&session(None, true), clock.clone());
        b.on_audio("r1", "a", 0, CHUNK * 2, t0);
        clock.report("a", 900); // a confused device
        let r = b.on_speech_started(Some("r1"), t0);
        assert_eq!(r, vec![interrupted("a", 200), truncate("a", 200)]);
    }

    #[test]
    fn before_any_audio_there_is_nothing_to_truncate() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(&session(None, true), PlaybackClock::immediate());
        assert_eq!(b.on_speech_started(Some("r1"), t0), vec![]);
        assert!(
            !b.on_audio("r1", "a", 0, CHUNK, t0),
            "the response is cut off"
        );
        let mut b = BargeIn::new(&session(Some(false), true), PlaybackClock::immediate());
        assert_eq!(b.on_speech_started(Some("r1"), t0), vec![cancel()]);
    }

    #[test]
    fn after_playback_finished_nothing_is_sent() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(&session(Some(false), true), PlaybackClock::real_time());
        b.on_audio("r1", "a", 0, CHUNK * 3, t0);
        b.on_response_done("r1", t0 + 5 * MS);
        assert_eq!(b.on_speech_started(None, t0 + 400 * MS), vec![]);
    }

    #[test]
    fn a_finished_response_still_playing_is_truncated_but_not_cancelled() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(&session(Some(false), true), PlaybackClock::real_time());
        b.on_audio("r1", "a", 0, CHUNK * 30, t0);
        b.on_response_done("r1", t0 + 5 * MS);
        let r = b.on_speech_started(None, t0 + 1_200 * MS);
        assert_eq!(r, vec![interrupted("a", 1_200), truncate("a", 1_200)]);
    }

    #[test]
    fn queued_items_that_were_never_heard_are_truncated_at_zero() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(&session(None, true), PlaybackClock::real_time());
        b.on_audio("r1", "a", 0, CHUNK * 5, t0);
        b.on_response_done("r1", t0);
        b.on_audio("r2", "b", 0, CHUNK * 5, t0 + MS);
        let r = b.on_speech_started(Some("r2"), t0 + 100 * MS);
        assert_eq!(
            r,
            vec![
                interrupted("a", 100),
                interrupted("b", 0),
                truncate("a", 100),
                truncate("b", 0)
            ]
        );
    }

    #[test]
    fn platform_held_sessions_never_truncate_and_clear_what_they_cancel() {
        let t0 = Instant::now();
        let platform = crate::session::Ownership::platform_held();
        let mut b = BargeIn::new(&session(Some(false), true), PlaybackClock::real_time())
            .with_ownership(platform);
        b.on_audio("r1", "a", 0, CHUNK * 10, t0);
        let r = b.on_speech_started(Some("r1"), t0 + 300 * MS);
        let clear = Reaction::Send(Box::new(ClientEvent::output_audio_buffer_clear()));
        assert_eq!(r, vec![cancel(), clear]);
        // With interrupt_response on, the platform cuts its own answer: nothing to send.
        let mut b =
            BargeIn::new(&session(None, true), PlaybackClock::real_time()).with_ownership(platform);
        b.on_audio("r1", "a", 0, CHUNK * 10, t0);
        assert_eq!(b.on_speech_started(Some("r1"), t0 + 300 * MS), vec![]);
    }

    #[test]
    fn text_sessions_are_left_alone() {
        let t0 = Instant::now();
        let mut b = BargeIn::new(&session(Some(false), false), PlaybackClock::real_time());
        assert_eq!(b.on_speech_started(Some("r1"), t0), vec![]);
    }
}
