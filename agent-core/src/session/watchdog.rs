//! Deadlines on the response in flight, so a silent server can never hang a turn.
//!
//! A server can accept `response.create` and never answer it, or stop in the middle of a
//! response while still answering pings, so the connection looks healthy. The watchdog knows
//! when the in-flight response last made progress and says what is overdue:
//!
//! - a `response.create` that got no `response.created` within `response_idle`;
//! - an active response that got no event for `response_idle`: the runner cancels it and waits
//!   up to `cancel_wait` for its `response.done`, then asks once more;
//! - a `response.cancel` whose `response.done` did not come within `cancel_wait`: the server is
//!   not listening, and the connection is replaced;
//! - the response the server's own turn detection was expected to start, which did not come
//!   within `cancel_wait` (the server starts it at once when it starts it at all);
//! - a user who started speaking, by the server's VAD, and never stopped within
//!   `response_idle`: nothing is held back for them any longer.
//!
//! It does no I/O and reads no clock: the runner passes `now`, so every rule is tested here.

use std::time::{Duration, Instant};

/// The deadlines, from the agent file's `[timeouts]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseDeadlines {
    /// How long a response (or a `response.create`) may go without any event.
    pub response_idle: Duration,
    /// How long to wait for `response.done` after cancelling a stalled response, and for the
    /// response the server's turn detection starts by itself.
    pub cancel_wait: Duration,
}

impl Default for ResponseDeadlines {
    fn default() -> Self {
        ResponseDeadlines {
            response_idle: Duration::from_secs(30),
            cancel_wait: Duration::from_secs(5),
        }
    }
}

/// What the response slot holds, as the sequencer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InFlight<'a> {
    /// Nothing is in flight.
    Nothing,
    /// Our `response.create` awaits `response.created`.
    Requested,
    /// The server's turn detection should start a response.
    Expected,
    /// This response is streaming.
    Active(&'a str),
}

/// What is overdue now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Overdue {
    /// Our `response.create` was never answered.
    CreateUnanswered,
    /// This response sent nothing for too long: cancel it.
    Stalled(String),
    /// This stalled response was cancelled, and the server did not confirm.
    CancelUnanswered(String),
    /// The server's own response did not come.
    ExpectationLapsed,
    /// The server said the user started speaking and never said they stopped.
    SpeechLapsed,
}

/// The deadlines of one session's response slot.
#[derive(Debug, Clone)]
pub(crate) struct Watchdog {
    limits: ResponseDeadlines,
    /// When the in-flight response (or request) last made progress.
    progress_at: Instant,
    /// A stalled response we cancelled, and when its `response.done` is due.
    cancelling: Option<(String, Instant)>,
    /// When the user started speaking, until they stop.
    speech_since: Option<Instant>,
}

impl Watchdog {
    pub(crate) fn new(limits: ResponseDeadlines, now: Instant) -> Self {
        Watchdog {
            limits,
            progress_at: now,
            cancelling: None,
            speech_since: None,
        }
    }

    /// The user started speaking (or still is) at `now`.
    pub(crate) fn speech(&mut self, now: Instant) {
        self.speech_since = Some(now);
    }

    /// The user's speech is over (stopped, committed, cleared, or given up on).
    pub(crate) fn speech_over(&mut self) {
        self.speech_since = None;
    }

    /// Something happened for the response in flight (or a request went out).
    pub(crate) fn progress(&mut self, now: Instant) {
        self.progress_at = now;
    }

    /// We cancelled stalled `response_id` at `now`.
    pub(crate) fn cancelled(&mut self, response_id: &str, now: Instant) {
        self.cancelling = Some((response_id.to_owned(), now + self.limits.cancel_wait));
    }

    /// `response_id` is done; returns whether it was the stalled response we cancelled.
    pub(crate) fn done(&mut self, response_id: &str) -> bool {
        match &self.cancelling {
            Some((id, _)) if id == response_id => {
                self.cancelling = None;
                true
            }
            _ => false,
        }
    }

    /// The connection was replaced: nothing of the old one is awaited any more.
    pub(crate) fn reset(&mut self, now: Instant) {
        self.cancelling = None;
        self.speech_since = None;
        self.progress_at = now;
    }

    /// The idle deadline, for messages.
    pub(crate) fn response_idle(&self) -> Duration {
        self.limits.response_idle
    }

    /// When the next deadline falls, if anything is in flight.
    pub(crate) fn next_deadline(&self, in_flight: InFlight<'_>) -> Option<Instant> {
        let speech = self.speech_since.map(|at| at + self.limits.response_idle);
        let response = match (&self.cancelling, in_flight) {
            (Some((_, due)), _) => Some(*due),
            (None, InFlight::Nothing) => None,
            (None, InFlight::Expected) => Some(self.progress_at + self.limits.cancel_wait),
            (None, InFlight::Requested | InFlight::Active(_)) => {
                Some(self.progress_at + self.limits.response_idle)
            }
        };
        match (speech, response) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// What is overdue at `now`, if anything.
    pub(crate) fn overdue(&self, in_flight: InFlight<'_>, now: Instant) -> Option<Overdue> {
        if let Some((id, due)) = &self.cancelling {
            if now >= *due {
                return Some(Overdue::CancelUnanswered(id.clone()));
            }
        } else if in_flight != InFlight::Nothing {
            let due = match in_flight {
                InFlight::Expected => self.progress_at + self.limits.cancel_wait,
                _ => self.progress_at + self.limits.response_idle,
            };
            if now >= due {
                return Some(match in_flight {
                    InFlight::Requested => Overdue::CreateUnanswered,
                    InFlight::Expected => Overdue::ExpectationLapsed,
                    InFlight::Active(id) => Overdue::Stalled(id.to_owned()),
                    InFlight::Nothing => return None,
                });
            }
        }
        self.speech_since
            .filter(|at| now >= *at + self.limits.response_idle)
            .map(|_| Overdue::SpeechLapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dog(t: Instant) -> Watchdog {
        Watchdog::new(
            ResponseDeadlines {
                response_idle: Duration::from_secs(30),
                cancel_wait: Duration::from_secs(5),
            },
            t,
        )
    }

    #[test]
    fn nothing_in_flight_has_no_deadline() {
        let t = Instant::now();
        let d = dog(t);
        assert_eq!(d.next_deadline(InFlight::Nothing), None);
        assert_eq!(
            d.overdue(InFlight::Nothing, t + Duration::from_secs(99)),
            None
        );
    }

    #[test]
    fn progress_pushes_the_deadline_back() {
        let t = Instant::now();
        let mut d = dog(t);
        let active = InFlight::Active("r1");
        assert_eq!(d.overdue(active, t + Duration::from_secs(29)), None);
        d.progress(t + Duration::from_secs(20));
        assert_eq!(d.overdue(active, t + Duration::from_secs(31)), None);
        assert_eq!(
            d.overdue(active, t + Duration::from_secs(50)),
            Some(Overdue::Stalled("r1".into()))
        );
        assert_eq!(
            d.overdue(InFlight::Requested, t + Duration::from_secs(50)),
            Some(Overdue::CreateUnanswered)
        );
        assert_eq!(
            d.overdue(InFlight::Expected, t + Duration::from_secs(24)),
            None
        );
        assert_eq!(
            d.overdue(InFlight::Expected, t + Duration::from_secs(26)),
            Some(Overdue::ExpectationLapsed)
        );
    }

    #[test]
    fn speech_that_never_stops_lapses() {
        let t = Instant::now();
        let mut d = dog(t);
        d.speech(t);
        assert_eq!(
            d.next_deadline(InFlight::Nothing),
            Some(t + Duration::from_secs(30))
        );
        assert_eq!(
            d.overdue(InFlight::Nothing, t + Duration::from_secs(29)),
            None
        );
        assert_eq!(
            d.overdue(InFlight::Nothing, t + Duration::from_secs(30)),
            Some(Overdue::SpeechLapsed)
        );
        d.speech_over();
        assert_eq!(d.next_deadline(InFlight::Nothing), None);
    }

    #[test]
    fn a_cancelled_stall_waits_for_its_done_then_gives_up() {
        let t = Instant::now();
        let mut d = dog(t);
        d.cancelled("r1", t + Duration::from_secs(30));
        let active = InFlight::Active("r1");
        assert_eq!(d.next_deadline(active), Some(t + Duration::from_secs(35)));
        assert_eq!(d.overdue(active, t + Duration::from_secs(34)), None);
        assert_eq!(
            d.overdue(active, t + Duration::from_secs(35)),
            Some(Overdue::CancelUnanswered("r1".into()))
        );
        assert!(!d.done("r2"));
        assert!(d.done("r1"));
        assert!(!d.done("r1"));
    }
}
