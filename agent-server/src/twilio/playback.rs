//! What the caller has heard, from Twilio's marks: a sans-IO state machine.
//!
//! Each chunk of assistant audio goes to Twilio followed by a mark. When Twilio echoes a mark,
//! everything queued before it has been played, so the item's position at that mark is what
//! the caller heard; it is reported to the session's [`PlaybackClock`] (reported mode), where
//! the session loop's barge-in logic reads it. The loop then truncates at the last mark that
//! came back, never past the audio received; this module never decides that itself.
//!
//! On a barge-in the session emits `Interrupted`: [`Playback::on_interrupted`] answers `clear`
//! when audio is still queued at Twilio, and forgets the marks in flight, because Twilio echoes
//! them at once after a `clear` although their audio was never played.

use std::collections::VecDeque;

use agent_core::audio::PlaybackClock;
use base64::Engine as _;

use super::messages::{MarkBody, Outbound, OutboundMedia};

/// The largest chunk sent between two marks: 100 ms of 8 kHz μ-law. Smaller chunks make the
/// truncate point finer and cost a mark each.
pub const MAX_CHUNK_BYTES: usize = 800;
/// μ-law bytes per millisecond at 8 kHz.
const BYTES_PER_MS: u64 = 8;
/// Items whose sent length is remembered (earlier ones are done playing or cut off).
const ITEMS_KEPT: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingMark {
    name: String,
    item_id: String,
    end_ms: u64,
}

/// Playback tracking of one call.
#[derive(Debug)]
pub struct Playback {
    stream_sid: String,
    clock: PlaybackClock,
    next_mark: u64,
    /// Marks sent and not echoed yet, in order.
    pending: VecDeque<PendingMark>,
    /// Bytes sent per recent item.
    sent: VecDeque<(String, u64)>,
}

impl Playback {
    /// Tracking for the stream `stream_sid`, reporting to `clock`.
    pub fn new(stream_sid: impl Into<String>, clock: PlaybackClock) -> Self {
        Playback {
            stream_sid: stream_sid.into(),
            clock,
            next_mark: 0,
            pending: VecDeque::new(),
            sent: VecDeque::new(),
        }
    }

    /// Assistant audio of `item_id` (μ-law bytes): the frames to send, each chunk followed by
    /// its mark.
    pub fn on_audio(&mut self, item_id: &str, data: &[u8]) -> Vec<Outbound> {
        let mut frames = Vec::with_capacity(2 * data.len().div_ceil(MAX_CHUNK_BYTES));
        for chunk in data.chunks(MAX_CHUNK_BYTES) {
            let end_ms = self.add_sent(item_id, chunk.len() as u64) / BYTES_PER_MS;
            self.next_mark += 1;
            let name = format!("m{}", self.next_mark);
            frames.push(Outbound::Media {
                stream_sid: self.stream_sid.clone(),
                media: OutboundMedia {
                    payload: base64::engine::general_purpose::STANDARD.encode(chunk),
                },
            });
            frames.push(Outbound::Mark {
                stream_sid: self.stream_sid.clone(),
                mark: MarkBody { name: name.clone() },
            });
            self.pending.push_back(PendingMark {
                name,
                item_id: item_id.to_owned(),
                end_ms,
            });
        }
        frames
    }

    /// Twilio echoed the mark `name`: the audio before it (and before every earlier mark) has
    /// been played. Returns the item and position reported, or `None` for a mark that is not
    /// in flight (echoed after a `clear`, or never sent).
    pub fn on_mark(&mut self, name: &str) -> Option<(String, u64)> {
        let index = self.pending.iter().position(|m| m.name == name)?;
        let reached: Vec<PendingMark> = self.pending.drain(..=index).collect();
        // The last mark of each item is where that item's playback got to.
        for (i, mark) in reached.iter().enumerate() {
            if reached
                .get(i + 1)
                .is_none_or(|next| next.item_id != mark.item_id)
            {
                self.clock.report(&mark.item_id, mark.end_ms);
            }
        }
        reached.last().map(|m| (m.item_id.clone(), m.end_ms))
    }

    /// The session cut playback off (barge-in): `clear` if Twilio still has audio queued.
    /// The marks in flight are forgotten, so their echoes move nothing.
    pub fn on_interrupted(&mut self) -> Option<Outbound> {
        if self.pending.is_empty() {
            return None;
        }
        self.pending.clear();
        Some(Outbound::Clear {
            stream_sid: self.stream_sid.clone(),
        })
    }

    /// Marks sent and not yet echoed: audio still queued at Twilio.
    pub fn marks_in_flight(&self) -> usize {
        self.pending.len()
    }

    fn add_sent(&mut self, item_id: &str, bytes: u64) -> u64 {
        if let Some((_, sent)) = self.sent.iter_mut().find(|(id, _)| id == item_id) {
            *sent += bytes;
            return *sent;
        }
        if self.sent.len() == ITEMS_KEPT {
            self.sent.pop_front();
        }
        self.sent.push_back((item_id.to_owned(), bytes));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use agent_core::{audio::PlaybackTracker, protocol::AudioFormat};

    use super::*;

    fn mark_names(frames: &[Outbound]) -> Vec<String> {
        frames
            .iter()
            .filter_map(|f| match f {
                Outbound::Mark { mark, .. } => Some(mark.name.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_chunk_is_followed_by_a_mark() {
        let mut p = Playback::new("MZ1", PlaybackClock::reported());
        let frames = p.on_audio("a", &[0xff; 2_000]);
        assert_eq!(frames.len(), 6, "800 + 800 + 400 bytes, each with a mark");
        assert!(matches!(&frames[0], Outbound::Media { media, .. } if media.payload.len() == 1068));
        assert_eq!(mark_names(&frames), ["m1", "m2", "m3"]);
        assert_eq!(p.marks_in_flight(), 3);
    }

    #[test]
    fn echoed_marks_report_what_was_heard_to_the_session_clock() {
        let clock = PlaybackClock::reported();
        let mut tracker = PlaybackTracker::new(AudioFormat::Pcmu, clock.clone());
        let mut p = Playback::new("MZ1", clock.clone());
        let now = Instant::now();
        tracker.on_audio("r1", "a", 0, 2_400, now);
        p.on_audio("a", &[0xff; 2_400]);
        assert_eq!(tracker.played_ms("a", now), 0, "nothing echoed yet");
        // Twilio echoes in order; a later mark implies the earlier ones.
        assert_eq!(p.on_mark("m2"), Some(("a".into(), 200)));
        assert_eq!(tracker.played_ms("a", now), 200);
        assert_eq!(p.on_mark("m1"), None, "already implied");
        assert_eq!(p.on_mark("bogus"), None);
        assert_eq!(p.marks_in_flight(), 1);
    }

    #[test]
    fn a_mark_past_an_item_boundary_reports_both_items() {
        let clock = PlaybackClock::reported();
        let mut p = Playback::new("MZ1", clock.clone());
        p.on_audio("a", &[0xff; 400]);
        p.on_audio("b", &[0xff; 800]);
        assert_eq!(p.on_mark("m2"), Some(("b".into(), 100)));
        assert_eq!(clock.reported_ms("a"), Some(50));
        assert_eq!(clock.reported_ms("b"), Some(100));
    }

    #[test]
    fn a_barge_in_clears_queued_audio_and_ignores_the_marks_it_flushes() {
        let clock = PlaybackClock::reported();
        let mut p = Playback::new("MZ1", clock.clone());
        p.on_audio("a", &[0xff; 2_400]);
        p.on_mark("m1");
        assert_eq!(
            p.on_interrupted(),
            Some(Outbound::Clear {
                stream_sid: "MZ1".into()
            })
        );
        // Twilio echoes the flushed marks at once: their audio was never played.
        assert_eq!(p.on_mark("m2"), None);
        assert_eq!(p.on_mark("m3"), None);
        assert_eq!(
            clock.reported_ms("a"),
            Some(100),
            "still the last mark played"
        );
        assert_eq!(p.on_interrupted(), None, "nothing queued: no clear");
        // The item's length keeps counting for the next audio of the same item id.
        let frames = p.on_audio("c", &[0xff; 80]);
        assert_eq!(mark_names(&frames), ["m4"]);
        assert_eq!(p.on_mark("m4"), Some(("c".into(), 10)));
    }
}
