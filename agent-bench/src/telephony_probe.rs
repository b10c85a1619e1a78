//! Where the telephony benchmark's latencies come from: stamped caller audio, read back at
//! the scripted Realtime server, with one clock for both ends.
//!
//! Every 20 ms frame a simulated caller writes carries a stamp in its first 16 bytes: the
//! call's index and the microsecond (since [`Probe::epoch`]) the generator wrote it. The
//! stamp bytes are μ-law values near zero (`0xF0`–`0xFF`), so they neither trip the server's
//! VAD in silence nor hide speech. The server under test passes μ-law through untouched, so
//! the scripted server reads the stamp in each `input_audio_buffer.append`: frame in → append
//! out is the time between the two.
//!
//! The other way, the scripted server tells the probe when it flushes an audio delta on a
//! connection; the first stamped append of a connection says which call it serves. Each delta
//! (100 ms, one Twilio `media` frame after the server under test) is queued on its call and
//! matched, in order, with the next `media` frame that call's caller reads: audio delta in →
//! Twilio frame out.

use std::{
    collections::VecDeque,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use agent_testkit::AudioProbe;

/// Bytes of a frame that hold the stamp.
pub const STAMP_BYTES: usize = 16;
/// The first two nibbles of every stamp.
const MAGIC: [u8; 2] = [0xA, 0x5];

/// Writes the stamp of `call` at `micros` into the head of `frame`.
pub fn stamp(frame: &mut [u8], call: u16, micros: u64) {
    let mut nibbles = [0u8; STAMP_BYTES];
    nibbles[..2].copy_from_slice(&MAGIC);
    for i in 0..4 {
        nibbles[2 + i] = ((call >> (12 - 4 * i)) & 0xF) as u8;
    }
    for i in 0..10 {
        nibbles[6 + i] = ((micros >> (36 - 4 * i)) & 0xF) as u8;
    }
    for (byte, nibble) in frame.iter_mut().zip(nibbles) {
        *byte = 0xF0 | nibble;
    }
}

/// The call and microsecond stamped in `audio`, if it carries a stamp.
pub fn read_stamp(audio: &[u8]) -> Option<(u16, u64)> {
    let head = audio.get(..STAMP_BYTES)?;
    if head.iter().any(|b| b & 0xF0 != 0xF0) || head[0] & 0xF != MAGIC[0] {
        return None;
    }
    if head[1] & 0xF != MAGIC[1] {
        return None;
    }
    let nibble = |i: usize| u64::from(head[i] & 0xF);
    let call = (2..6).fold(0u64, |acc, i| acc << 4 | nibble(i));
    let micros = (6..16).fold(0u64, |acc, i| acc << 4 | nibble(i));
    Some((call as u16, micros))
}

/// The shared clock, the matching state and the latency samples of one load level.
#[derive(Debug)]
pub struct Probe {
    epoch: Instant,
    measuring: AtomicBool,
    /// The call each scripted connection serves, once known.
    calls_of: Mutex<Vec<Option<u16>>>,
    /// Per call: when each audio delta not yet seen by its caller was flushed.
    deltas: Vec<Mutex<VecDeque<Instant>>>,
    frame_to_append_us: Mutex<Vec<u32>>,
    delta_to_frame_us: Mutex<Vec<u32>>,
    /// Appends whose audio carried no stamp (the server under test changed the audio).
    unstamped: AtomicU64,
    /// Twilio frames with no delta to match (the server under test sent audio of its own).
    unmatched: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Probe {
    /// A probe for `calls` callers, its clock starting now.
    pub fn new(calls: usize) -> Self {
        Probe {
            epoch: Instant::now(),
            measuring: AtomicBool::new(false),
            calls_of: Mutex::new(Vec::new()),
            deltas: (0..calls).map(|_| Mutex::new(VecDeque::new())).collect(),
            frame_to_append_us: Mutex::new(Vec::new()),
            delta_to_frame_us: Mutex::new(Vec::new()),
            unstamped: AtomicU64::new(0),
            unmatched: AtomicU64::new(0),
        }
    }

    /// Microseconds since the probe's clock started: what callers stamp.
    pub fn now_micros(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Keeps latency samples from now on (the steady state), or stops keeping them.
    pub fn measure(&self, on: bool) {
        self.measuring.store(on, Ordering::Release);
    }

    /// Whether samples are being kept.
    pub fn is_measuring(&self) -> bool {
        self.measuring.load(Ordering::Acquire)
    }

    /// Caller `call` read a `media` frame: matched with the oldest delta of its call.
    pub fn twilio_frame_out(&self, call: u16) {
        let Some(queue) = self.deltas.get(usize::from(call)) else {
            return;
        };
        let Some(sent) = lock(queue).pop_front() else {
            self.unmatched.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if self.is_measuring() {
            lock(&self.delta_to_frame_us).push(micros(sent.elapsed()));
        }
    }

    /// The samples kept: (frame in → append out, delta in → frame out), µs.
    pub fn samples(&self) -> (Vec<u32>, Vec<u32>) {
        (
            lock(&self.frame_to_append_us).clone(),
            lock(&self.delta_to_frame_us).clone(),
        )
    }

    /// (appends without a stamp, Twilio frames without a delta).
    pub fn anomalies(&self) -> (u64, u64) {
        (
            self.unstamped.load(Ordering::Relaxed),
            self.unmatched.load(Ordering::Relaxed),
        )
    }
}

impl AudioProbe for Probe {
    fn appended(&self, connection: usize, audio: &[u8]) {
        let now = self.now_micros();
        let Some((call, at)) = read_stamp(audio) else {
            self.unstamped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        {
            let mut calls = lock(&self.calls_of);
            if calls.len() <= connection {
                calls.resize(connection + 1, None);
            }
            calls[connection].get_or_insert(call);
        }
        if self.is_measuring() {
            let us = u32::try_from(now.saturating_sub(at)).unwrap_or(u32::MAX);
            lock(&self.frame_to_append_us).push(us);
        }
    }

    fn delta_sent(&self, connection: usize) {
        let call = lock(&self.calls_of).get(connection).copied().flatten();
        if let Some(queue) = call.and_then(|c| self.deltas.get(usize::from(c))) {
            lock(queue).push_back(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_and_plain_audio_has_none() {
        let mut frame = [0x20u8; 160];
        stamp(&mut frame, 999, 123_456_789_012);
        assert_eq!(read_stamp(&frame), Some((999, 123_456_789_012)));
        assert_eq!(read_stamp(&[0xFF; 160]), None);
        assert_eq!(read_stamp(&[0x20; 160]), None);
    }
}
