//! When and how often to reconnect: a budget of attempts in a sliding window, exponential
//! backoff with jitter, and the close codes that mean "do not retry".
//!
//! The budget counts every new connection a session opens after its first one, for a drop
//! (a reconnect) or at the session's time limit (a rollover). A successful handshake does not
//! refill it: a server that accepts connections and then drops them, or expires every session
//! at once, would otherwise be dialled without end. Only a response that completes shows the
//! server is healthy again, and clears it.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

/// How a session recovers from dropped connections and expired sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// New connections allowed within [`window`](Self::window) before giving up (0 disables
    /// reconnecting after a drop; a rollover may still open one).
    pub max_attempts: u32,
    /// The first delay; each further attempt in the window doubles it.
    pub base_delay: Duration,
    /// The longest delay between attempts.
    pub max_delay: Duration,
    /// The sliding window the attempts are counted in.
    pub window: Duration,
    /// How many times a response cut off (by a drop, or by a stall the runtime cancelled) is
    /// requested again before the turn fails.
    pub rerequest_cut_responses: u32,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            window: Duration::from_secs(60),
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

/// The budget ran out: reconnecting again would only hammer a broken server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetExhausted {
    /// Attempts made within the window.
    pub attempts: u32,
    /// The window.
    pub window: Duration,
}

/// The attempts made recently, and what the next one costs. Does no I/O: the session loop asks
/// it before every new connection.
#[derive(Debug, Clone)]
pub struct ReconnectBudget {
    policy: ReconnectPolicy,
    attempts: VecDeque<Instant>,
}

impl ReconnectBudget {
    /// A full budget under `policy`.
    pub fn new(policy: ReconnectPolicy) -> Self {
        ReconnectBudget {
            policy,
            attempts: VecDeque::new(),
        }
    }

    /// The policy it enforces.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Takes one attempt at `now` and returns how long to wait before it, or refuses when the
    /// window already holds the most attempts allowed. The first rollover after a healthy
    /// stretch goes at once (it is planned, not a failure); everything else backs off
    /// exponentially in the number of attempts still in the window.
    pub fn take(
        &mut self,
        now: Instant,
        rollover: bool,
        jitter: f64,
    ) -> Result<Duration, BudgetExhausted> {
        while let Some(&oldest) = self.attempts.front() {
            if now.saturating_duration_since(oldest) >= self.policy.window {
                self.attempts.pop_front();
            } else {
                break;
            }
        }
        let allowed = if rollover {
            self.policy.max_attempts.max(1)
        } else {
            self.policy.max_attempts
        };
        let used = u32::try_from(self.attempts.len()).unwrap_or(u32::MAX);
        if used >= allowed {
            return Err(BudgetExhausted {
                attempts: used,
                window: self.policy.window,
            });
        }
        let delay = if rollover && used == 0 {
            Duration::ZERO
        } else {
            self.policy.delay(used + 1, jitter)
        };
        self.attempts.push_back(now + delay);
        Ok(delay)
    }

    /// The most attempts allowed in the window (for "attempt 2/6" notices).
    pub fn max_attempts(&self, rollover: bool) -> u32 {
        if rollover {
            self.policy.max_attempts.max(1)
        } else {
            self.policy.max_attempts
        }
    }

    /// Attempts counted in the window right now.
    pub fn used(&self) -> u32 {
        u32::try_from(self.attempts.len()).unwrap_or(u32::MAX)
    }

    /// A response completed: the server works, so earlier trouble no longer counts.
    pub fn response_completed(&mut self) {
        self.attempts.clear();
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

    fn policy(max_attempts: u32) -> ReconnectPolicy {
        ReconnectPolicy {
            max_attempts,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            window: Duration::from_secs(60),
            rerequest_cut_responses: 1,
        }
    }

    #[test]
    fn handshakes_do_not_refill_the_budget() {
        let mut budget = ReconnectBudget::new(policy(2));
        let t = Instant::now();
        assert_eq!(budget.take(t, false, 0.5), Ok(Duration::from_millis(100)));
        // The connection came up and dropped again at once: no reset in between.
        assert_eq!(budget.take(t, false, 0.5), Ok(Duration::from_millis(200)));
        assert_eq!(
            budget.take(t, false, 0.5),
            Err(BudgetExhausted {
                attempts: 2,
                window: Duration::from_secs(60)
            })
        );
    }

    #[test]
    fn a_completed_response_refills_it() {
        let mut budget = ReconnectBudget::new(policy(1));
        let t = Instant::now();
        assert!(budget.take(t, false, 0.5).is_ok());
        assert!(budget.take(t, false, 0.5).is_err());
        budget.response_completed();
        assert_eq!(budget.take(t, false, 0.5), Ok(Duration::from_millis(100)));
    }

    #[test]
    fn old_attempts_leave_the_window() {
        let mut budget = ReconnectBudget::new(policy(1));
        let t = Instant::now();
        assert!(budget.take(t, false, 0.5).is_ok());
        assert!(
            budget
                .take(t + Duration::from_secs(30), false, 0.5)
                .is_err()
        );
        assert!(budget.take(t + Duration::from_secs(61), false, 0.5).is_ok());
    }

    #[test]
    fn the_first_rollover_is_immediate_and_later_ones_back_off() {
        let mut budget = ReconnectBudget::new(policy(3));
        let t = Instant::now();
        assert_eq!(budget.take(t, true, 0.5), Ok(Duration::ZERO));
        assert_eq!(budget.take(t, true, 0.5), Ok(Duration::from_millis(200)));
        assert_eq!(budget.take(t, true, 0.5), Ok(Duration::from_millis(400)));
        assert!(budget.take(t, true, 0.5).is_err());
    }

    #[test]
    fn rollovers_work_even_when_reconnecting_is_off() {
        let mut budget = ReconnectBudget::new(policy(0));
        let t = Instant::now();
        assert!(budget.take(t, false, 0.5).is_err());
        assert_eq!(budget.take(t, true, 0.5), Ok(Duration::ZERO));
        assert!(budget.take(t, true, 0.5).is_err());
    }
}
