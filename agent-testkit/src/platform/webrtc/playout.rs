//! The fake platform's playout: an answer's audio leaves as one Opus frame every 20 ms.
//!
//! The scripted session makes a response's audio much faster than real time; the browser must
//! get it at the pace a speaker plays it, and the session must learn when it has all played
//! (`output_audio_buffer.stopped`). Sans-IO: the peer passes the time, sends the frames this
//! hands out, and sleeps until [`Playout::deadline`].

use std::{collections::VecDeque, time::Duration};

use tokio::time::Instant;

use crate::webrtc::opus::FRAME;

/// How far playout may fall behind (a busy machine) before it skips ahead instead of bursting.
const MAX_LAG: Duration = Duration::from_millis(100);

/// What is queued, in order.
#[derive(Debug)]
enum Queued {
    /// Frames to send.
    Frames(u64),
    /// The end of a response's audio: report it once the frames before it went out.
    End(String),
}

/// What the peer does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// Send one frame now.
    Frame,
    /// Everything of this response has played.
    Drained(String),
}

/// The queue and its clock.
#[derive(Debug, Default)]
pub(super) struct Playout {
    queue: VecDeque<Queued>,
    /// When the next frame is due, while frames are queued.
    next_at: Option<Instant>,
    /// Milliseconds queued that do not fill a frame yet.
    remainder_ms: u64,
}

impl Playout {
    /// Queues `ms` of audio (rounded to whole frames across calls).
    pub(super) fn play(&mut self, ms: u64, now: Instant) {
        let frame_ms = FRAME.as_millis() as u64;
        let total = self.remainder_ms + ms;
        self.remainder_ms = total % frame_ms;
        let frames = total / frame_ms;
        if frames == 0 {
            return;
        }
        match self.queue.back_mut() {
            Some(Queued::Frames(n)) => *n += frames,
            _ => self.queue.push_back(Queued::Frames(frames)),
        }
        self.next_at.get_or_insert(now);
    }

    /// Marks the end of `response_id`'s audio.
    pub(super) fn end(&mut self, response_id: String, now: Instant) {
        if self.remainder_ms > 0 {
            // The last partial frame still plays.
            self.remainder_ms = FRAME.as_millis() as u64;
            self.play(0, now);
        }
        self.queue.push_back(Queued::End(response_id));
        self.next_at.get_or_insert(now);
    }

    /// Drops everything not played yet (its ends are not reported: the audio was cut off).
    pub(super) fn clear(&mut self) {
        self.queue.clear();
        self.remainder_ms = 0;
        self.next_at = None;
    }

    /// When [`Playout::poll`] has something next.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.next_at
    }

    /// The next step due at `now`, if any; call until `None`.
    pub(super) fn poll(&mut self, now: Instant) -> Option<Step> {
        let due = self.next_at?;
        if let Some(Queued::End(_)) = self.queue.front()
            && let Some(Queued::End(id)) = self.queue.pop_front()
        {
            self.settle(now);
            return Some(Step::Drained(id));
        }
        if now < due {
            return None;
        }
        let Some(Queued::Frames(n)) = self.queue.front_mut() else {
            self.next_at = None;
            return None;
        };
        *n -= 1;
        if *n == 0 {
            self.queue.pop_front();
        }
        // Behind by more than MAX_LAG: the lost time is skipped rather than sent in a burst.
        let next = due + FRAME;
        self.next_at = Some(if now > next + MAX_LAG {
            now + FRAME
        } else {
            next
        });
        if self.queue.is_empty() {
            self.next_at = None;
        }
        Some(Step::Frame)
    }

    /// After an end: the clock stops when nothing else is queued.
    fn settle(&mut self, now: Instant) {
        if self.queue.is_empty() {
            self.next_at = None;
        } else if self.next_at.is_none() {
            self.next_at = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(playout: &mut Playout, now: Instant) -> Vec<Step> {
        std::iter::from_fn(|| playout.poll(now)).collect()
    }

    #[test]
    fn frames_leave_every_20_ms_then_the_end_is_reported() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        p.play(50, t0); // two frames, 10 ms left over
        p.end("resp_1".into(), t0); // the leftover plays as a third frame
        assert_eq!(drain(&mut p, t0), vec![Step::Frame]);
        assert_eq!(p.deadline(), Some(t0 + FRAME));
        assert_eq!(drain(&mut p, t0 + Duration::from_millis(19)), vec![]);
        assert_eq!(drain(&mut p, t0 + FRAME), vec![Step::Frame]);
        assert_eq!(
            drain(&mut p, t0 + FRAME * 2),
            vec![Step::Frame, Step::Drained("resp_1".into())]
        );
        assert_eq!(p.deadline(), None, "idle");
    }

    #[test]
    fn an_end_with_nothing_queued_is_reported_at_once() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        p.end("resp_2".into(), t0);
        assert_eq!(drain(&mut p, t0), vec![Step::Drained("resp_2".into())]);
    }

    #[test]
    fn clear_drops_frames_and_ends() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        p.play(1000, t0);
        p.end("resp_3".into(), t0);
        assert_eq!(drain(&mut p, t0), vec![Step::Frame]);
        p.clear();
        assert_eq!(p.deadline(), None);
        assert_eq!(drain(&mut p, t0 + Duration::from_secs(5)), vec![]);
    }

    #[test]
    fn a_late_peer_skips_ahead_instead_of_bursting() {
        let t0 = Instant::now();
        let mut p = Playout::default();
        p.play(1000, t0);
        assert_eq!(drain(&mut p, t0), vec![Step::Frame]);
        let late = t0 + Duration::from_millis(500);
        assert_eq!(drain(&mut p, late), vec![Step::Frame]);
        assert_eq!(p.deadline(), Some(late + FRAME));
    }
}
