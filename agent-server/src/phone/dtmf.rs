//! Keypad digits → what the model reads, per the agent file's `[phone.dtmf]` (sans-IO: the
//! bridge passes digits and the time in, and sends the messages that come out).
//!
//! `each` makes every digit a user message at once. `batch` gathers digits until the
//! terminator key, `max_digits`, or `pause_ms` without a digit, so "my account is 4 4 1 7 #"
//! reaches the model as one message rather than five turns.

use std::time::{Duration, Instant};

use agent_core::agent::{DtmfMode, DtmfSpec};

/// Gathers keypad digits for one call.
#[derive(Debug)]
pub struct Dtmf {
    mode: DtmfMode,
    terminator: Option<char>,
    pause: Duration,
    max_digits: usize,
    digits: String,
    last: Option<Instant>,
}

impl Dtmf {
    /// Digits handled as `spec` says.
    pub fn new(spec: &DtmfSpec) -> Self {
        Dtmf {
            mode: spec.mode,
            terminator: spec.terminator.chars().next(),
            pause: Duration::from_millis(u64::from(spec.pause_ms)),
            max_digits: spec.max_digits.max(1) as usize,
            digits: String::new(),
            last: None,
        }
    }

    /// A key press at `now`: the message for the model, when one is due. Anything but `0-9`,
    /// `*`, `#` and `A-D` is not a key and is dropped (the caller of this logs it).
    pub fn on_digit(&mut self, digit: &str, now: Instant) -> Option<String> {
        let key = single_key(digit)?;
        match self.mode {
            DtmfMode::Off => None,
            DtmfMode::Each => Some(format!("The caller pressed {key} on the keypad.")),
            DtmfMode::Batch => {
                if Some(key) == self.terminator {
                    return self.flush();
                }
                self.digits.push(key);
                self.last = Some(now);
                if self.digits.len() >= self.max_digits {
                    return self.flush();
                }
                None
            }
        }
    }

    /// When a pending batch is due by the pause.
    pub fn deadline(&self) -> Option<Instant> {
        self.last.map(|at| at + self.pause)
    }

    /// The batch, if its pause is over at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<String> {
        if self.deadline().is_some_and(|due| now >= due) {
            return self.flush();
        }
        None
    }

    fn flush(&mut self) -> Option<String> {
        self.last = None;
        if self.digits.is_empty() {
            return None;
        }
        let digits = std::mem::take(&mut self.digits);
        Some(format!("The caller entered {digits} on the keypad."))
    }
}

/// The key, when `digit` is exactly one of `0-9`, `*`, `#`, or `A-D`.
///
/// `A-D` are the fourth keypad column (RFC 4733 events 12-15). Phones rarely have it, but PBXs
/// and IVR testers send it over SIP, so a letter is a key too; it is read in upper case.
pub fn single_key(digit: &str) -> Option<char> {
    let mut chars = digit.chars();
    let key = chars.next()?.to_ascii_uppercase();
    let is_key = key.is_ascii_digit() || matches!(key, '*' | '#' | 'A'..='D');
    (chars.next().is_none() && is_key).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: DtmfMode) -> DtmfSpec {
        DtmfSpec {
            mode,
            max_digits: 4,
            ..DtmfSpec::default()
        }
    }

    #[test]
    fn each_digit_is_a_message_and_junk_is_dropped() {
        let mut d = Dtmf::new(&spec(DtmfMode::Each));
        let now = Instant::now();
        assert_eq!(
            d.on_digit("5", now).as_deref(),
            Some("The caller pressed 5 on the keypad.")
        );
        assert_eq!(d.on_digit("55", now), None);
        assert_eq!(d.on_digit("x", now), None);
        assert_eq!(d.on_digit("E", now), None);
        assert_eq!(
            d.on_digit("b", now).as_deref(),
            Some("The caller pressed B on the keypad."),
            "the fourth column (A-D) is a key, read in upper case"
        );
        assert_eq!(d.on_digit("", now), None);
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn batches_end_at_the_terminator_the_pause_or_the_limit() {
        let mut d = Dtmf::new(&spec(DtmfMode::Batch));
        let t0 = Instant::now();
        assert_eq!(d.on_digit("1", t0), None);
        assert_eq!(d.on_digit("2", t0), None);
        assert_eq!(
            d.on_digit("#", t0).as_deref(),
            Some("The caller entered 12 on the keypad.")
        );
        assert_eq!(d.on_digit("#", t0), None, "an empty batch says nothing");
        d.on_digit("7", t0);
        assert_eq!(d.poll(t0 + Duration::from_millis(100)), None);
        assert_eq!(
            d.poll(t0 + Duration::from_secs(3)).as_deref(),
            Some("The caller entered 7 on the keypad.")
        );
        for key in ["1", "2", "3"] {
            assert_eq!(d.on_digit(key, t0), None);
        }
        assert_eq!(
            d.on_digit("4", t0).as_deref(),
            Some("The caller entered 1234 on the keypad.")
        );
    }

    #[test]
    fn off_ignores_digits() {
        let mut d = Dtmf::new(&spec(DtmfMode::Off));
        assert_eq!(d.on_digit("1", Instant::now()), None);
    }
}
