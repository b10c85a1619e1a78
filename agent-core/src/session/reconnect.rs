//! When and how often to reconnect: exponential backoff with jitter, bounded attempts, and the
//! close codes that mean "do not retry".

use std::time::Duration;

/// How a session recovers from a dropped connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Attempts after a drop before giving up (0 disables reconnecting).
    pub max_attempts: u32,
    /// The first delay; each further attempt doubles it.
    pub base_delay: Duration,
    /// The longest delay between attempts.
    pub max_delay: Duration,
    /// How many times a response cut off by a drop is requested again.
    pub rerequest_cut_responses: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            rerequest_cut_responses: 1,
        }
    }
}

impl ReconnectPolicy {
    /// The delay before attempt `attempt` (1-based): `base * 2^(attempt-1)`, capped, with ±25%
    /// jitter so that many sessions dropped together do not reconnect in lockstep.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        let factor = 0.75 + 0.5 * jitter.clamp(0.0, 1.0);
        capped.mul_f64(factor)
    }
}

/// WebSocket close codes after which reconnecting cannot help: policy violations, OpenAI's
/// authentication close (3000, after `invalid_api_key`), forbidden, and app-defined auth codes.
pub fn is_final_close(code: u16) -> bool {
    matches!(code, 1008 | 3000 | 3003 | 4001 | 4003 | 4401 | 4403)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = ReconnectPolicy::default();
        assert_eq!(p.delay(1, 0.5), Duration::from_millis(250));
        assert_eq!(p.delay(2, 0.5), Duration::from_millis(500));
        assert_eq!(p.delay(10, 0.5), Duration::from_secs(8));
        assert_eq!(p.delay(40, 0.5), Duration::from_secs(8));
        assert!(p.delay(1, 0.0) < p.delay(1, 1.0));
        assert_eq!(p.delay(1, 0.0), Duration::from_micros(187_500));
    }

    #[test]
    fn auth_and_policy_closes_are_final() {
        assert!(is_final_close(1008));
        assert!(is_final_close(3000));
        assert!(!is_final_close(1000));
        assert!(!is_final_close(1006));
        assert!(!is_final_close(1011));
    }
}
