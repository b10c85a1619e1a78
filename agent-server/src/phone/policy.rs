//! What every phone call does besides moving audio: the greeting, prompting a silent caller,
//! the call-length limit, keypad digits, and ending or transferring the call only once what the
//! agent said has been played. Sans-IO, like the playback tracker: the bridge feeds it session
//! events, playback and requests with the time, sends the [`Action`]s it returns, and sleeps
//! until [`CallPolicy::deadline`]. So every transport (Twilio and SIP) gets the same
//! behaviour, and every rule is unit-tested here without a socket or a sleep.
//!
//! "Played" is the transport's word: for Twilio, no mark in flight (the last mark came back);
//! for SIP, `output_audio_buffer.stopped`.

use std::time::{Duration, Instant};

use agent_core::{
    agent::{PhoneSpec, TransferDestination},
    session::SessionEvent,
};

use super::{dtmf::Dtmf, tools::CallRequest};

/// The longest wait for the goodbye (or the transfer notice) to be played before the call is
/// ended or transferred anyway: a model that keeps talking cannot hold the line.
pub const END_GRACE: Duration = Duration::from_secs(20);

/// Why the agent's side ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The model called `end_call`.
    Agent,
    /// The caller stayed silent through every prompt.
    Silence,
    /// The call reached `max_call_secs`.
    MaxLength,
}

/// What the bridge must do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Tell the model this (a system message) and ask it to answer.
    Prompt(String),
    /// Send this user message (keypad digits).
    UserText(String),
    /// Hang up now: what the agent said has been played.
    HangUp(EndReason),
    /// Transfer now.
    Transfer {
        /// The target's name.
        name: String,
        /// Where to.
        destination: TransferDestination,
    },
}

#[derive(Debug)]
struct Ending {
    /// The action once the line is quiet.
    then: Action,
    /// The session reported `Idle` since the request (the answer in progress is complete).
    idle_seen: bool,
    deadline: Instant,
}

/// One call's policy.
#[derive(Debug)]
pub struct CallPolicy {
    greeting: Option<String>,
    idle_timeout: Option<Duration>,
    idle_prompts: u32,
    idle_prompt: String,
    goodbye: String,
    warning: String,
    /// Where the call goes at its end time, instead of a goodbye (`max_call_transfer`).
    limit_transfer: Option<(String, TransferDestination)>,
    warn_at: Option<Instant>,
    end_at: Option<Instant>,
    session_idle: bool,
    playing: bool,
    quiet_since: Option<Instant>,
    prompts: u32,
    ending: Option<Ending>,
    done: bool,
    dtmf: Dtmf,
}

impl CallPolicy {
    /// The policy of a call that connected at `now`, from the agent's `[phone]` table.
    pub fn new(spec: &PhoneSpec, now: Instant) -> Self {
        let max = spec
            .max_call_secs
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64);
        let warning = Duration::from_secs_f64(spec.max_call_warning_secs.clamp(0.0, 86_400.0));
        CallPolicy {
            greeting: spec.greeting.clone(),
            idle_timeout: spec
                .idle_timeout_ms
                .map(|ms| Duration::from_millis(u64::from(ms))),
            idle_prompts: spec.idle_prompts,
            idle_prompt: spec.idle_prompt.clone(),
            goodbye: spec.goodbye.clone(),
            warning: spec.max_call_warning.clone(),
            limit_transfer: spec.max_call_transfer.as_ref().and_then(|name| {
                let value = spec.transfer_targets.get(name)?;
                Some((name.clone(), TransferDestination::parse(value)?))
            }),
            warn_at: max
                .filter(|max| warning > Duration::ZERO && warning < *max)
                .map(|max| now + (max - warning)),
            end_at: max.map(|max| now + max),
            session_idle: false,
            playing: false,
            quiet_since: None,
            prompts: 0,
            ending: None,
            done: false,
            dtmf: Dtmf::new(&spec.dtmf),
        }
    }

    /// The first thing to do once the session is up: the agent speaks first, with the
    /// agent file's greeting when it has one.
    pub fn greeting(&self) -> Action {
        Action::Prompt(match &self.greeting {
            Some(text) => format!(
                "The phone call just connected. Greet the caller by saying exactly: \"{text}\""
            ),
            None => "The phone call just connected. Greet the caller.".to_owned(),
        })
    }

    /// Whether the caller's audio still goes to the model: not once the call is ending, so a
    /// noise cannot start a new answer that the hang-up would cut.
    pub fn takes_caller_audio(&self) -> bool {
        self.ending.is_none()
    }

    /// An event of the session.
    pub fn on_session(&mut self, event: &SessionEvent, now: Instant) {
        match event {
            SessionEvent::ResponseStarted { .. } | SessionEvent::SpeechStarted { .. } => {
                if matches!(event, SessionEvent::SpeechStarted { .. }) {
                    // The caller is there: silence counts from zero again.
                    self.prompts = 0;
                }
                self.session_idle = false;
                if let Some(ending) = &mut self.ending {
                    ending.idle_seen = false;
                }
            }
            SessionEvent::SpeechStopped { .. } | SessionEvent::Idle => {
                self.session_idle = true;
                if let (SessionEvent::Idle, Some(ending)) = (event, &mut self.ending) {
                    ending.idle_seen = true;
                }
            }
            _ => return,
        }
        self.update_quiet(now);
    }

    /// How much of the agent's audio is still queued at the caller's end (Twilio: marks in
    /// flight; 0 means everything sent has been played).
    pub fn on_playback(&mut self, queued: usize, now: Instant) {
        self.playing = queued > 0;
        self.update_quiet(now);
    }

    /// A keypad digit: the message for the model, when one is due now.
    pub fn on_digit(&mut self, digit: &str, now: Instant) -> Option<Action> {
        self.prompts = 0;
        if self.quiet_since.is_some() {
            self.quiet_since = Some(now);
        }
        self.dtmf.on_digit(digit, now).map(Action::UserText)
    }

    /// A call-control tool's request. The first one wins; the call ends only once.
    pub fn on_request(&mut self, request: CallRequest, now: Instant) {
        let then = match request {
            CallRequest::EndCall => Action::HangUp(EndReason::Agent),
            CallRequest::Transfer { name, destination } => Action::Transfer { name, destination },
        };
        self.begin_ending(then, false, now);
    }

    /// A transfer failed: the call goes on, and the model is told so it can say so.
    pub fn transfer_failed(&mut self, now: Instant) -> Action {
        self.done = false;
        self.ending = None;
        self.session_idle = false;
        self.update_quiet(now);
        Action::Prompt(
            "The transfer did not go through. Apologise to the caller and offer to help another way."
                .into(),
        )
    }

    /// What is due at `now`, in order.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.done {
            return actions;
        }
        if let Some(text) = self.dtmf.poll(now) {
            actions.push(Action::UserText(text));
        }
        if let Some(ending) = &self.ending {
            if (ending.idle_seen && !self.playing) || now >= ending.deadline {
                self.done = true;
                actions.extend(self.ending.take().map(|e| e.then));
            }
            return actions;
        }
        if self.end_at.is_some_and(|at| now >= at) {
            actions.push(match self.limit_transfer.take() {
                Some((name, destination)) => self.announce_transfer(name, destination, now),
                None => self.say_goodbye(EndReason::MaxLength, now),
            });
        } else if self.warn_at.is_some_and(|at| now >= at) {
            self.warn_at = None;
            actions.push(self.prompt(self.warning.clone()));
        } else if self.silence_due(now) {
            if self.prompts < self.idle_prompts {
                self.prompts += 1;
                actions.push(self.prompt(self.idle_prompt.clone()));
            } else {
                actions.push(self.say_goodbye(EndReason::Silence, now));
            }
        }
        actions
    }

    /// When [`poll`](Self::poll) has something to do next, if no event comes first.
    pub fn deadline(&self) -> Option<Instant> {
        if self.done {
            return None;
        }
        let silence = self
            .quiet_since
            .zip(self.idle_timeout)
            .map(|(since, idle)| since + idle)
            .filter(|_| self.ending.is_none());
        [
            self.dtmf.deadline(),
            self.ending.as_ref().map(|e| e.deadline),
            self.warn_at.filter(|_| self.ending.is_none()),
            self.end_at.filter(|_| self.ending.is_none()),
            silence,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn silence_due(&self, now: Instant) -> bool {
        self.quiet_since
            .zip(self.idle_timeout)
            .is_some_and(|(since, idle)| now >= since + idle)
    }

    /// A prompt: the model answers, so the line is not quiet until that answer is over.
    fn prompt(&mut self, text: String) -> Action {
        self.session_idle = false;
        self.quiet_since = None;
        Action::Prompt(text)
    }

    fn say_goodbye(&mut self, reason: EndReason, now: Instant) -> Action {
        self.begin_ending(Action::HangUp(reason), false, now);
        self.prompt(self.goodbye.clone())
    }

    /// The call reached its end time and goes to `name`: the model tells the caller, then
    /// the call is transferred once that is played (or after [`END_GRACE`]).
    fn announce_transfer(
        &mut self,
        name: String,
        destination: TransferDestination,
        now: Instant,
    ) -> Action {
        let notice = format!(
            "The call has reached its time limit and is being transferred to {name} now. \
             Tell the caller so in one short sentence, and say nothing else."
        );
        self.begin_ending(Action::Transfer { name, destination }, false, now);
        self.prompt(notice)
    }

    fn begin_ending(&mut self, then: Action, idle_seen: bool, now: Instant) {
        if self.ending.is_some() || self.done {
            return;
        }
        self.ending = Some(Ending {
            then,
            idle_seen,
            deadline: now + END_GRACE,
        });
    }

    fn update_quiet(&mut self, now: Instant) {
        if self.session_idle && !self.playing {
            self.quiet_since.get_or_insert(now);
        } else {
            self.quiet_since = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> PhoneSpec {
        PhoneSpec {
            idle_timeout_ms: Some(1_000),
            idle_prompts: 1,
            max_call_secs: Some(100.0),
            max_call_warning_secs: 10.0,
            ..PhoneSpec::default()
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    /// The greeting was said and played: the line is quiet from `at`.
    fn quiet(p: &mut CallPolicy, at: Instant) {
        p.on_session(&SessionEvent::Idle, at);
        p.on_playback(0, at);
    }

    #[test]
    fn a_silent_caller_is_prompted_then_hung_up_on_after_the_goodbye() {
        let t0 = Instant::now();
        let mut p = CallPolicy::new(&spec(), t0);
        assert!(matches!(p.greeting(), Action::Prompt(text) if text.contains("Greet")));
        p.on_playback(3, t0);
        p.on_session(&SessionEvent::Idle, t0);
        assert_eq!(
            p.deadline(),
            Some(t0 + secs(90)),
            "still playing: no silence yet"
        );
        quiet(&mut p, t0 + secs(1));
        assert_eq!(p.deadline(), Some(t0 + secs(2)));
        assert!(p.poll(t0 + secs(1)).is_empty());
        let prompt = p.poll(t0 + secs(2));
        assert!(matches!(&prompt[..], [Action::Prompt(t)] if t.contains("still there")));
        // The prompt is answered and played; the caller stays silent.
        p.on_session(
            &SessionEvent::ResponseStarted {
                response_id: "r".into(),
            },
            t0 + secs(2),
        );
        quiet(&mut p, t0 + secs(3));
        let goodbye = p.poll(t0 + secs(4));
        assert!(matches!(&goodbye[..], [Action::Prompt(t)] if t.contains("goodbye")));
        assert!(!p.takes_caller_audio());
        // The goodbye's answer runs and is played: only then the hang-up.
        p.on_session(
            &SessionEvent::ResponseStarted {
                response_id: "g".into(),
            },
            t0 + secs(4),
        );
        p.on_playback(2, t0 + secs(4));
        p.on_session(&SessionEvent::Idle, t0 + secs(5));
        assert!(
            p.poll(t0 + secs(5)).is_empty(),
            "the goodbye is still playing"
        );
        p.on_playback(0, t0 + secs(6));
        assert_eq!(
            p.poll(t0 + secs(6)),
            vec![Action::HangUp(EndReason::Silence)]
        );
        assert!(p.poll(t0 + secs(7)).is_empty(), "once");
        assert_eq!(p.deadline(), None);
    }

    #[test]
    fn speech_resets_the_silence_count() {
        let t0 = Instant::now();
        let mut p = CallPolicy::new(&spec(), t0);
        quiet(&mut p, t0);
        assert_eq!(p.poll(t0 + secs(1)).len(), 1);
        p.on_session(
            &SessionEvent::SpeechStarted {
                item_id: "u".into(),
                audio_start_ms: 0,
            },
            t0 + secs(1),
        );
        assert_eq!(p.deadline(), Some(t0 + secs(90)));
        quiet(&mut p, t0 + secs(2));
        let again = p.poll(t0 + secs(3));
        assert!(
            matches!(&again[..], [Action::Prompt(t)] if t.contains("still there")),
            "{again:?}"
        );
    }

    #[test]
    fn the_call_length_warns_then_ends() {
        let t0 = Instant::now();
        let mut p = CallPolicy::new(
            &PhoneSpec {
                idle_timeout_ms: None,
                ..spec()
            },
            t0,
        );
        assert_eq!(p.deadline(), Some(t0 + secs(90)));
        let warn = p.poll(t0 + secs(90));
        assert!(matches!(&warn[..], [Action::Prompt(t)] if t.contains("about a minute")));
        assert_eq!(p.deadline(), Some(t0 + secs(100)));
        let end = p.poll(t0 + secs(100));
        assert!(matches!(&end[..], [Action::Prompt(t)] if t.contains("goodbye")));
        // A model that never finishes cannot hold the line past the grace time.
        assert_eq!(p.deadline(), Some(t0 + secs(100) + END_GRACE));
        assert_eq!(
            p.poll(t0 + secs(100) + END_GRACE),
            vec![Action::HangUp(EndReason::MaxLength)]
        );
    }

    #[test]
    fn end_call_waits_for_the_answer_and_its_playback() {
        let t0 = Instant::now();
        let mut p = CallPolicy::new(&spec(), t0);
        p.on_session(
            &SessionEvent::ResponseStarted {
                response_id: "r".into(),
            },
            t0,
        );
        p.on_playback(4, t0);
        p.on_request(CallRequest::EndCall, t0);
        p.on_request(
            CallRequest::Transfer {
                name: "sales".into(),
                destination: TransferDestination::Number("+15550123".into()),
            },
            t0,
        );
        assert!(p.poll(t0).is_empty());
        p.on_playback(0, t0 + secs(1));
        assert!(
            p.poll(t0 + secs(1)).is_empty(),
            "the follow-up answer is not over"
        );
        p.on_session(&SessionEvent::Idle, t0 + secs(1));
        assert_eq!(
            p.poll(t0 + secs(1)),
            vec![Action::HangUp(EndReason::Agent)],
            "the first request wins"
        );
    }

    #[test]
    fn at_its_end_time_a_call_with_max_call_transfer_is_transferred_not_ended() {
        let t0 = Instant::now();
        let mut spec = spec();
        spec.transfer_targets
            .insert("humans".into(), "sip:desk@example.com".into());
        spec.max_call_transfer = Some("humans".into());
        let mut p = CallPolicy::new(&spec, t0);
        let end = t0 + secs(100);
        let actions = p.poll(end);
        assert!(
            matches!(actions.as_slice(), [Action::Prompt(text)] if text.contains("transferred to humans")),
            "{actions:?}"
        );
        assert!(!p.takes_caller_audio(), "the call is ending");
        quiet(&mut p, end);
        assert_eq!(
            p.poll(end),
            vec![Action::Transfer {
                name: "humans".into(),
                destination: TransferDestination::Sip("sip:desk@example.com".into()),
            }]
        );
        // If that transfer fails the call goes on; the next end is a goodbye, not a loop.
        assert!(matches!(p.transfer_failed(end), Action::Prompt(_)));
    }

    #[test]
    fn a_failed_transfer_lets_the_call_go_on() {
        let t0 = Instant::now();
        let mut p = CallPolicy::new(&spec(), t0);
        let destination = TransferDestination::Number("+15550123".into());
        p.on_request(
            CallRequest::Transfer {
                name: "sales".into(),
                destination: destination.clone(),
            },
            t0,
        );
        quiet(&mut p, t0);
        assert_eq!(
            p.poll(t0),
            vec![Action::Transfer {
                name: "sales".into(),
                destination
            }]
        );
        assert!(matches!(p.transfer_failed(t0), Action::Prompt(_)));
        assert!(p.takes_caller_audio());
        assert!(p.deadline().is_some());
    }

    #[test]
    fn digits_reach_the_model() {
        let t0 = Instant::now();
        let mut p = CallPolicy::new(&spec(), t0);
        assert_eq!(
            p.on_digit("3", t0),
            Some(Action::UserText(
                "The caller pressed 3 on the keypad.".into()
            ))
        );
    }
}
