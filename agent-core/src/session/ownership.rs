//! Who holds a session's conversation and audio, which decides what the session loop does on a
//! dropped connection, at the session's time limit and on a barge-in.
//!
//! - **Client-held** (the terminal, Twilio): we hold the WebSocket and the audio. A dropped
//!   connection is replaced by a new session into which the conversation is replayed, the
//!   session rolls over before the server's time limit, and a barge-in truncates the answer at
//!   what was played.
//! - **Platform-held** (SIP and WebRTC calls, attached by the sideband `?call_id=`): the platform
//!   holds the conversation and the audio. A dropped sideband re-attaches to the same call and
//!   replays nothing (the platform still has every item; a replay would duplicate them). It does
//!   not send `session.update` again either: the call's session was configured by the accept
//!   and the first attach, and the loop never changes it afterwards. There is no rollover,
//!   since a new session would be a new call: the call ends at the limit, after a warning.
//!   Playback is the platform's, so the loop never truncates; where it must cut an answer it
//!   sends `response.cancel` and `output_audio_buffer.clear`.

use std::time::Duration;

/// Who holds the conversation and the audio; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ownership {
    /// We hold the WebSocket and the audio: replay on reconnect, rollover, truncate on
    /// barge-in.
    #[default]
    ClientHeld,
    /// The platform holds the call; we are attached to it by the sideband.
    PlatformHeld(PlatformHeld),
}

/// How a platform-held session ends at its time limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformHeld {
    /// How long before `max_session_age` the app is told
    /// ([`SessionEvent::SessionLimitNear`](super::SessionEvent::SessionLimitNear)), so it can
    /// warn the caller and transfer or say goodbye before the call ends.
    pub warn_before: Duration,
}

impl Default for PlatformHeld {
    fn default() -> Self {
        PlatformHeld {
            warn_before: Duration::from_secs(60),
        }
    }
}

impl Ownership {
    /// A platform-held session with the default warning time.
    pub fn platform_held() -> Self {
        Ownership::PlatformHeld(PlatformHeld::default())
    }

    /// Whether the platform holds the conversation and the audio.
    pub fn is_platform_held(&self) -> bool {
        matches!(self, Ownership::PlatformHeld(_))
    }

    /// Whether a new connection gets the conversation replayed (only when we hold it).
    pub fn replays(&self) -> bool {
        !self.is_platform_held()
    }

    /// When the app is warned before the time limit `max_age`: `None` for client-held
    /// sessions, which roll over instead.
    pub fn warn_at(&self, max_age: Duration) -> Option<Duration> {
        match self {
            Ownership::ClientHeld => None,
            Ownership::PlatformHeld(p) => Some(max_age.saturating_sub(p.warn_before)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_client_held_sessions_replay_and_roll_over() {
        assert!(Ownership::default().replays());
        assert_eq!(Ownership::default().warn_at(Duration::from_secs(600)), None);
        let platform = Ownership::platform_held();
        assert!(!platform.replays());
        assert_eq!(
            platform.warn_at(Duration::from_secs(600)),
            Some(Duration::from_secs(540))
        );
        assert_eq!(
            platform.warn_at(Duration::from_secs(10)),
            Some(Duration::ZERO),
            "a limit shorter than the warning warns at once"
        );
    }
}
