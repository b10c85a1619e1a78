//! Transcripts held back by [`ServerConfig::late_transcription()`](crate::ServerConfig::late_transcription()), so they
//! reach the client after the answer to the turn, as they often do live.
//!
//! A batch (the `.delta` and `.completed` events of one committed user audio item) is bound to
//! the first response that starts after the commit and goes out right after that response's
//! `response.done`, whatever its status. A batch no response picks up goes out when the next
//! client event arrives (unless an automatic response is still due); a `response.create` that
//! starts nothing (an error) counts as such an event. So none is lost while the connection
//! lives and the client keeps talking.

use super::*;

/// The transcription events of one committed user audio item.
#[derive(Debug)]
pub(super) struct HeldTranscript {
    events: Vec<Value>,
    /// The response that answers the turn, once it started.
    answer: Option<String>,
}

impl Conn {
    /// Sends the transcription events of a commit now, or holds them when late transcription
    /// is on (never in a transcription session, where no response will follow).
    pub(super) fn send_or_hold_transcript(&mut self, events: Vec<Value>) {
        if self.shared.config.late_transcription && !self.view().is_transcription() {
            self.held_transcripts.push(HeldTranscript {
                events,
                answer: None,
            });
        } else {
            for ev in events {
                self.reply(ev);
            }
        }
    }

    /// A response started: it answers every held batch that has no answer yet.
    pub(super) fn bind_held_transcripts(&mut self, response_id: &str) {
        for held in &mut self.held_transcripts {
            if held.answer.is_none() {
                held.answer = Some(response_id.to_string());
            }
        }
    }

    /// `response.done` of `response_id` is being sent: its batches follow it.
    pub(super) fn release_answered_transcripts(&mut self, response_id: &str) {
        self.release_held(|held| held.answer.as_deref() == Some(response_id));
    }

    /// A client event arrived and no response picked these batches up: send them now, unless
    /// server VAD still owes an automatic response (which will pick them up).
    pub(super) fn release_unanswered_transcripts(&mut self) {
        if !self.pending_auto_response {
            self.release_held(|held| held.answer.is_none());
        }
    }

    fn release_held(&mut self, due: impl Fn(&HeldTranscript) -> bool) {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held_transcripts)
            .into_iter()
            .partition(|held| due(held));
        self.held_transcripts = later;
        for ev in now.into_iter().flat_map(|held| held.events) {
            self.reply(ev);
        }
    }
}
