//! The `webhook-id`s already processed, so a retried delivery is answered 200 and processed
//! once. An id is remembered for twice the signature tolerance: after that, a replay fails
//! the timestamp check anyway. The set is bounded; only requests signed with the secret get
//! in, so filling it takes the secret.

use std::{
    collections::{HashSet, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long an id is remembered.
pub const REMEMBERED: Duration = Duration::from_secs(10 * 60);
/// The most ids remembered at once.
const MAX_IDS: usize = 100_000;

/// Recently seen webhook ids.
#[derive(Debug, Default)]
pub struct SeenIds {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    ids: HashSet<String>,
    /// Arrival order, for forgetting.
    order: VecDeque<(Instant, String)>,
}

impl SeenIds {
    /// Records `id`; `true` the first time it is seen (within [`REMEMBERED`]).
    pub fn first_time(&self, id: &str, now: Instant) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((at, _)) = inner.order.front() {
            let expired = now.saturating_duration_since(*at) > REMEMBERED;
            if !expired && inner.order.len() < MAX_IDS {
                break;
            }
            if let Some((_, old)) = inner.order.pop_front() {
                inner.ids.remove(&old);
            }
        }
        if inner.ids.contains(id) {
            return false;
        }
        inner.ids.insert(id.to_owned());
        inner.order.push_back((now, id.to_owned()));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_counts_once_until_it_is_forgotten() {
        let seen = SeenIds::default();
        let t0 = Instant::now();
        assert!(seen.first_time("wh_1", t0));
        assert!(!seen.first_time("wh_1", t0 + Duration::from_secs(60)));
        assert!(seen.first_time("wh_2", t0 + Duration::from_secs(60)));
        let later = t0 + REMEMBERED + Duration::from_secs(1);
        assert!(seen.first_time("wh_1", later), "forgotten after the window");
        assert!(!seen.first_time("wh_2", later), "still remembered");
    }
}
