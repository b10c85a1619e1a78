//! Spend caps: what each route's agent spent today (UTC), from its calls' cost reports.
//!
//! Calls report cost as they go; once an agent reaches its `max_cost_usd_per_day`, its new
//! calls are refused as busy until the next UTC day. Calls already running finish (each one
//! is bounded by the agent file's own `max_cost_usd`).

use std::{
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

/// Today's spend per route.
#[derive(Debug)]
pub struct SpendLedger {
    /// Per route: (UTC day number, US dollars spent that day).
    spent: Vec<Mutex<(u64, f64)>>,
}

/// The UTC day number of `at` (days since 1970-01-01).
pub fn utc_day(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

impl SpendLedger {
    /// A ledger for `routes` routes, nothing spent.
    pub fn new(routes: usize) -> Self {
        SpendLedger {
            spent: (0..routes).map(|_| Mutex::new((0, 0.0))).collect(),
        }
    }

    /// Adds `usd` to `route`'s spend on `day`.
    pub fn add(&self, route: usize, usd: f64, day: u64) {
        if !usd.is_finite() || usd <= 0.0 {
            return;
        }
        if let Some(cell) = self.spent.get(route) {
            let mut cell = cell.lock().unwrap_or_else(|e| e.into_inner());
            if cell.0 != day {
                *cell = (day, 0.0);
            }
            cell.1 += usd;
        }
    }

    /// What `route` spent on `day`.
    pub fn spent(&self, route: usize, day: u64) -> f64 {
        self.spent.get(route).map_or(0.0, |cell| {
            let cell = cell.lock().unwrap_or_else(|e| e.into_inner());
            if cell.0 == day { cell.1 } else { 0.0 }
        })
    }

    /// Whether `route` reached `cap` on `day`.
    pub fn over(&self, route: usize, cap: Option<f64>, day: u64) -> bool {
        cap.is_some_and(|cap| self.spent(route, day) >= cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_adds_up_per_route_and_starts_over_each_day() {
        let ledger = SpendLedger::new(2);
        ledger.add(0, 0.75, 100);
        ledger.add(0, 0.25, 100);
        ledger.add(1, 5.0, 100);
        ledger.add(0, f64::NAN, 100);
        ledger.add(7, 1.0, 100);
        assert_eq!(ledger.spent(0, 100), 1.0);
        assert!(ledger.over(0, Some(1.0), 100));
        assert!(!ledger.over(0, None, 100));
        assert!(!ledger.over(0, Some(1.0), 101), "a new day");
        ledger.add(0, 0.5, 101);
        assert_eq!(ledger.spent(0, 101), 0.5);
        assert_eq!(ledger.spent(0, 100), 0.0, "the old day is gone");
    }

    #[test]
    fn days_are_utc_days() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(86_400 * 3 + 5);
        assert_eq!(utc_day(t), 3);
    }
}
