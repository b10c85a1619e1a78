//! How much of each assistant audio item the user has actually heard.
//!
//! The server streams audio much faster than it plays, so "received" and "heard" differ by
//! seconds. When the user interrupts, the conversation must be cut at what was heard — never past
//! what was received (the API refuses that). [`PlaybackTracker`] keeps both numbers per audio
//! item; where "heard" comes from is the [`PlaybackClock`] the app chooses:
//!
//! - [`PlaybackClock::reported`]: the app's audio sink reports the position it has played
//!   ([`PlaybackClock::report`]); exact for a real output device. Cheap enough to call from an
//!   audio callback (one short uncontended lock).
//! - [`PlaybackClock::real_time`] (the default): a virtual speaker plays each item at real time
//!   from the moment its first audio arrived, items one after another, stalling when audio runs
//!   short — what a listener of a WAV file written live would have heard.
//! - [`PlaybackClock::immediate`]: audio counts as heard as soon as it arrives (nothing buffers
//!   it, e.g. a file written as fast as possible or a scripted test).
//!
//! The tracker is a plain state machine: time is passed in, so every rule is unit-tested here.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::protocol::AudioFormat;

/// How many items a reporting clock remembers (older reports are dropped).
const REPORTS_KEPT: usize = 32;

/// Where played time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaybackMode {
    /// Everything received counts as played.
    Immediate,
    /// A virtual speaker at real time.
    RealTime,
    /// The app reports its device's position.
    Reported,
}

/// The app's side of playback tracking: which clock to use and, for a device, the positions it
/// reports. Cheap to clone; every clone shares the same reports.
#[derive(Debug, Clone)]
pub struct PlaybackClock {
    mode: PlaybackMode,
    reports: Arc<Mutex<VecDeque<(String, u64)>>>,
}

impl Default for PlaybackClock {
    /// A real-time virtual speaker: the best guess when the app reports nothing.
    fn default() -> Self {
        PlaybackClock::real_time()
    }
}

impl PlaybackClock {
    fn with_mode(mode: PlaybackMode) -> Self {
        PlaybackClock {
            mode,
            reports: Arc::new(Mutex::new(VecDeque::new())),
        }
    }

    /// Audio counts as heard the moment it arrives.
    pub fn immediate() -> Self {
        Self::with_mode(PlaybackMode::Immediate)
    }

    /// A virtual real-time speaker (see the module docs).
    pub fn real_time() -> Self {
        Self::with_mode(PlaybackMode::RealTime)
    }

    /// The app reports what its device played with [`PlaybackClock::report`].
    pub fn reported() -> Self {
        Self::with_mode(PlaybackMode::Reported)
    }

    /// The clock's mode.
    pub fn mode(&self) -> PlaybackMode {
        self.mode
    }

    /// The output device has played `played_ms` of item `item_id`'s audio. Later reports for
    /// the same item replace earlier ones.
    pub fn report(&self, item_id: &str, played_ms: u64) {
        let mut reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = reports.iter_mut().rev().find(|(id, _)| id == item_id) {
            entry.1 = played_ms;
            return;
        }
        if reports.len() == REPORTS_KEPT {
            reports.pop_front();
        }
        reports.push_back((item_id.to_owned(), played_ms));
    }

    /// The last position reported for `item_id`, if any.
    pub fn reported_ms(&self, item_id: &str) -> Option<u64> {
        let reports = self.reports.lock().unwrap_or_else(|e| e.into_inner());
        reports
            .iter()
            .rev()
            .find(|(id, _)| id == item_id)
            .map(|(_, ms)| *ms)
    }
}

/// One assistant audio item as the tracker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPlayback {
    /// The assistant item.
    pub item_id: String,
    /// The response it belongs to.
    pub response_id: String,
    /// The content part holding the audio (0 in practice).
    pub content_index: u32,
    /// Samples received so far.
    pub received_samples: u64,
    /// Samples the virtual speaker has played (real-time mode only).
    virtual_played: u64,
    /// No more audio will come for it (its response ended or a later item started).
    pub complete: bool,
    /// It was interrupted: later deltas are dropped.
    pub interrupted: bool,
}

/// Per assistant audio item: milliseconds received versus milliseconds played.
#[derive(Debug, Clone)]
pub struct PlaybackTracker {
    clock: PlaybackClock,
    rate: u32,
    bytes_per_sample: u64,
    /// Items in playback order; fully played, complete items are dropped.
    items: VecDeque<ItemPlayback>,
    /// When the virtual speaker last advanced.
    last_tick: Option<Instant>,
    /// Items interrupted recently, whose late deltas must be dropped.
    interrupted: VecDeque<String>,
}

impl PlaybackTracker {
    /// A tracker for audio in `format`, with played time from `clock`.
    pub fn new(format: AudioFormat, clock: PlaybackClock) -> Self {
        PlaybackTracker {
            clock,
            rate: format.sample_rate().max(1),
            bytes_per_sample: super::bytes_per_sample(format) as u64,
            items: VecDeque::new(),
            last_tick: None,
            interrupted: VecDeque::new(),
        }
    }

    /// The clock in use.
    pub fn clock(&self) -> &PlaybackClock {
        &self.clock
    }

    /// An audio delta of `bytes` bytes arrived for `item_id`. Returns `false` when the item was
    /// interrupted: the delta arrived late and must not be played.
    pub fn on_audio(
        &mut self,
        response_id: &str,
        item_id: &str,
        content_index: u32,
        bytes: usize,
        now: Instant,
    ) -> bool {
        if self.interrupted.iter().any(|id| id == item_id) {
            return false;
        }
        self.advance(now);
        let samples = bytes as u64 / self.bytes_per_sample;
        if let Some(item) = self.items.iter_mut().find(|i| i.item_id == item_id) {
            item.received_samples += samples;
            return true;
        }
        // A new item: every earlier one is complete (the server streams items in order).
        for item in &mut self.items {
            item.complete = true;
        }
        self.items.push_back(ItemPlayback {
            item_id: item_id.to_owned(),
            response_id: response_id.to_owned(),
            content_index,
            received_samples: samples,
            virtual_played: 0,
            complete: false,
            interrupted: false,
        });
        self.prune();
        true
    }

    /// A response ended: its items will get no more audio.
    pub fn on_response_done(&mut self, response_id: &str, now: Instant) {
        self.advance(now);
        for item in &mut self.items {
            if item.response_id == response_id {
                item.complete = true;
            }
        }
        self.prune();
    }

    /// Milliseconds of `item_id` received so far (0 for an unknown item).
    pub fn received_ms(&self, item_id: &str) -> u64 {
        self.items
            .iter()
            .find(|i| i.item_id == item_id)
            .map_or(0, |i| self.ms(i.received_samples))
    }

    /// Milliseconds of `item_id` played by `now`, never more than received.
    pub fn played_ms(&mut self, item_id: &str, now: Instant) -> u64 {
        self.advance(now);
        self.items
            .iter()
            .find(|i| i.item_id == item_id)
            .map_or(0, |i| self.played_of(i))
    }

    /// Items whose playback has not finished at `now`, in playback order, each with
    /// `(played_ms, received_ms)`. An item has finished when no more audio will come for it and
    /// everything received was played.
    pub fn unfinished(&mut self, now: Instant) -> Vec<(ItemPlayback, u64, u64)> {
        self.advance(now);
        self.items
            .iter()
            .filter_map(|item| {
                let received = self.ms(item.received_samples);
                let played = self.played_of(item);
                let finished = item.complete && played >= received;
                (!finished).then(|| (item.clone(), played, received))
            })
            .collect()
    }

    /// Playback of `item_id` stopped at `audio_end_ms`: it is finished, and later deltas for it
    /// are dropped.
    pub fn interrupt(&mut self, item_id: &str) {
        self.items.retain(|i| i.item_id != item_id);
        if self.interrupted.len() == REPORTS_KEPT {
            self.interrupted.pop_front();
        }
        self.interrupted.push_back(item_id.to_owned());
    }

    /// Forgets every item, e.g. when the server session that streamed them is gone.
    pub fn forget_all(&mut self) {
        self.items.clear();
        self.last_tick = None;
    }

    fn played_of(&self, item: &ItemPlayback) -> u64 {
        let received = self.ms(item.received_samples);
        let played = match self.clock.mode {
            PlaybackMode::Immediate => received,
            PlaybackMode::RealTime => self.ms(item.virtual_played),
            PlaybackMode::Reported => self.clock.reported_ms(&item.item_id).unwrap_or(0),
        };
        played.min(received)
    }

    fn ms(&self, samples: u64) -> u64 {
        samples.saturating_mul(1000) / u64::from(self.rate)
    }

    /// Moves the virtual speaker forward to `now`: it plays items in order at real time and
    /// stalls when an item's received audio runs out before the item is complete.
    fn advance(&mut self, now: Instant) {
        let last = self.last_tick.replace(now);
        if self.clock.mode != PlaybackMode::RealTime {
            return;
        }
        let Some(last) = last else { return };
        let elapsed = now.saturating_duration_since(last);
        let mut budget = samples_in(elapsed, self.rate);
        for item in &mut self.items {
            if budget == 0 {
                break;
            }
            let left = item.received_samples - item.virtual_played.min(item.received_samples);
            let take = left.min(budget);
            item.virtual_played += take;
            budget -= take;
            if !item.complete {
                // The speaker waits for more of this item before moving on.
                break;
            }
        }
    }

    /// Drops items that are complete and fully played (real-time and immediate modes), keeping
    /// the list short.
    fn prune(&mut self) {
        let mode = self.clock.mode;
        self.items.retain(|item| {
            let played = match mode {
                PlaybackMode::Immediate => item.received_samples,
                PlaybackMode::RealTime => item.virtual_played,
                // A device may still report on it; keep a few.
                PlaybackMode::Reported => 0,
            };
            !(item.complete && played >= item.received_samples)
        });
        while self.items.len() > REPORTS_KEPT {
            self.items.pop_front();
        }
    }
}

fn samples_in(elapsed: Duration, rate: u32) -> u64 {
    (elapsed.as_micros() * u128::from(rate) / 1_000_000)
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    /// 100 ms of PCM16 at 24 kHz.
    const CHUNK: usize = 4_800;

    fn tracker(clock: PlaybackClock) -> PlaybackTracker {
        PlaybackTracker::new(AudioFormat::pcm16(), clock)
    }

    #[test]
    fn immediate_counts_everything_received_as_played() {
        let t0 = Instant::now();
        let mut t = tracker(PlaybackClock::immediate());
        t.on_audio("r1", "a", 0, CHUNK, t0);
        t.on_audio("r1", "a", 0, CHUNK * 2, t0);
        assert_eq!(t.received_ms("a"), 300);
        assert_eq!(t.played_ms("a", t0), 300);
        let unfinished = t.unfinished(t0);
        assert_eq!(unfinished.len(), 1, "still streaming");
        assert_eq!((unfinished[0].1, unfinished[0].2), (300, 300));
        t.on_response_done("r1", t0);
        assert!(t.unfinished(t0).is_empty(), "complete and played");
    }

    #[test]
    fn real_time_plays_at_wall_clock_speed_and_stalls_when_starved() {
        let t0 = Instant::now();
        let mut t = tracker(PlaybackClock::real_time());
        t.on_audio("r1", "a", 0, CHUNK * 5, t0); // 500 ms at once
        assert_eq!(t.played_ms("a", t0 + 120 * MS), 120);
        assert_eq!(t.played_ms("a", t0 + 499 * MS), 499);
        // Starved: the speaker cannot play past what arrived.
        assert_eq!(t.played_ms("a", t0 + 800 * MS), 500);
        // More audio: it resumes from where it stalled, not from the wall clock.
        t.on_audio("r1", "a", 0, CHUNK * 5, t0 + 800 * MS);
        assert_eq!(t.played_ms("a", t0 + 900 * MS), 600);
        assert_eq!(t.received_ms("a"), 1000);
    }

    #[test]
    fn real_time_plays_items_one_after_another() {
        let t0 = Instant::now();
        let mut t = tracker(PlaybackClock::real_time());
        t.on_audio("r1", "a", 0, CHUNK * 3, t0);
        t.on_response_done("r1", t0);
        t.on_audio("r2", "b", 0, CHUNK * 3, t0 + 10 * MS);
        assert_eq!(t.played_ms("a", t0 + 200 * MS), 200);
        assert_eq!(t.played_ms("b", t0 + 200 * MS), 0);
        let at = t0 + 450 * MS;
        let unfinished = t.unfinished(at);
        assert_eq!(unfinished.len(), 1, "a is done");
        assert_eq!(unfinished[0].0.item_id, "b");
        assert_eq!(unfinished[0].1, 150);
    }

    #[test]
    fn reported_positions_are_clamped_to_what_was_received() {
        let t0 = Instant::now();
        let clock = PlaybackClock::reported();
        let mut t = tracker(clock.clone());
        t.on_audio("r1", "a", 0, CHUNK * 2, t0);
        assert_eq!(t.played_ms("a", t0), 0, "nothing reported yet");
        clock.report("a", 150);
        assert_eq!(t.played_ms("a", t0), 150);
        clock.report("a", 5_000);
        assert_eq!(t.played_ms("a", t0), 200, "never past received");
    }

    #[test]
    fn interrupted_items_drop_late_deltas() {
        let t0 = Instant::now();
        let mut t = tracker(PlaybackClock::immediate());
        assert!(t.on_audio("r1", "a", 0, CHUNK, t0));
        t.interrupt("a");
        assert!(!t.on_audio("r1", "a", 0, CHUNK, t0));
        assert!(t.unfinished(t0).is_empty());
        assert!(t.on_audio("r2", "b", 0, CHUNK, t0));
    }

    #[test]
    fn g711_counts_one_byte_per_sample() {
        let t0 = Instant::now();
        let mut t = PlaybackTracker::new(AudioFormat::Pcmu, PlaybackClock::immediate());
        t.on_audio("r1", "a", 0, 800, t0);
        assert_eq!(t.received_ms("a"), 100);
    }

    #[test]
    fn the_clock_keeps_a_bounded_number_of_reports() {
        let clock = PlaybackClock::reported();
        for i in 0..100 {
            clock.report(&format!("item{i}"), i);
        }
        assert_eq!(clock.reported_ms("item99"), Some(99));
        assert_eq!(clock.reported_ms("item0"), None);
    }
}
