//! Rate limits shared by the nodes of one store: a token bucket per key (a client address),
//! so a client that spreads its requests over every node behind the load balancer still gets
//! one node's rate, not N times it.
//!
//! A bucket is one row. Taking a token is one statement that refills the bucket for the time
//! since it was last used, caps it at the burst, and takes a token only if one is there —
//! atomic on both backends, whichever node asks. Tokens are counted in millionths, so the
//! arithmetic is in integers on both.

use std::time::Duration;

use super::db::params;
use super::{HistoryError, HistoryStore, Timestamp};

/// Millionths of a token in one token.
const MICRO: i64 = 1_000_000;

/// Migration 5: the `rate_buckets` table (see [`super::schema`]).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE rate_buckets (
        key     TEXT NOT NULL PRIMARY KEY,
        tokens  INTEGER NOT NULL,           -- millionths of a token, after the last request
        at_ms   INTEGER NOT NULL            -- when the last token was taken
    ) STRICT;
"#;

/// Migration 5 for PostgreSQL.
pub(super) const POSTGRES_MIGRATION: &str = r#"
    CREATE TABLE rate_buckets (
        key     TEXT NOT NULL PRIMARY KEY,
        tokens  BIGINT NOT NULL,
        at_ms   BIGINT NOT NULL
    );
"#;

/// A token bucket's shape: `per_sec` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_sec: f64,
    /// The most tokens a bucket holds.
    pub burst: f64,
}

impl RateLimit {
    fn micro_per_ms(&self) -> i64 {
        ((self.per_sec * MICRO as f64) / 1000.0).round().max(1.0) as i64
    }

    fn burst_micro(&self) -> i64 {
        (self.burst.max(1.0) * MICRO as f64).round() as i64
    }

    /// How long until a bucket holding `micro` millionths has a whole token.
    fn wait(&self, micro: i64) -> Duration {
        let missing = (MICRO - micro).max(0);
        Duration::from_millis(u64::try_from(missing / self.micro_per_ms() + 1).unwrap_or(u64::MAX))
    }
}

impl HistoryStore {
    /// Takes one token from `key`'s bucket at `now`: `Ok(())`, or `Err(wait)` with how long
    /// until a token is free. A bucket seen for the first time starts full.
    pub fn take_token(
        &mut self,
        key: &str,
        limit: RateLimit,
        now: Timestamp,
    ) -> Result<Result<(), Duration>, HistoryError> {
        let (now, rate, burst) = (now.as_millis(), limit.micro_per_ms(), limit.burst_micro());
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        // The refilled amount, capped at the burst: written once per use below.
        let refilled = "CASE WHEN rate_buckets.tokens + (?3 - rate_buckets.at_ms) * ?4 > ?2 \
                        THEN ?2 ELSE rate_buckets.tokens + (?3 - rate_buckets.at_ms) * ?4 END";
        let taken = tx
            .query_opt(
                &format!(
                    "INSERT INTO rate_buckets (key, tokens, at_ms) VALUES (?1, ?2 - {MICRO}, ?3)
                     ON CONFLICT (key) DO UPDATE
                         SET tokens = {refilled} - {MICRO}, at_ms = ?3
                         WHERE {refilled} >= {MICRO}
                     RETURNING tokens"
                ),
                params![key, burst, now, rate],
            )
            .map_err(fail)?;
        let answer = match taken {
            Some(_) => Ok(()),
            None => {
                let row = tx
                    .query_one(
                        "SELECT tokens, at_ms FROM rate_buckets WHERE key = ?1",
                        params![key],
                    )
                    .map_err(fail)?;
                let (tokens, at) = (row.int(0).map_err(fail)?, row.int(1).map_err(fail)?);
                let now_tokens = tokens.saturating_add((now - at).max(0).saturating_mul(rate));
                Err(limit.wait(now_tokens.min(burst)))
            }
        };
        tx.commit().map_err(fail)?;
        Ok(answer)
    }

    /// Forgets the buckets unused since `before` (full again by then, as good as new);
    /// returns how many.
    pub fn prune_rate_buckets(&mut self, before: Timestamp) -> Result<u64, HistoryError> {
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        let deleted = tx
            .execute(
                "DELETE FROM rate_buckets WHERE at_ms < ?1",
                params![before.as_millis()],
            )
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testdb::{TestDb, on_both_backends};

    on_both_backends!(a_bucket_is_shared_by_every_connection_and_refills);

    fn a_bucket_is_shared_by_every_connection_and_refills(db: &TestDb) {
        let limit = RateLimit {
            per_sec: 1.0,
            burst: 2.0,
        };
        let (mut a, mut b) = (db.open(), db.open());
        let t0 = Timestamp::now();
        let at = |ms: i64| Timestamp::from_millis(t0.as_millis() + ms);
        // Two nodes share one client's burst of two.
        assert_eq!(a.take_token("10.0.0.1", limit, at(0)).unwrap(), Ok(()));
        assert_eq!(b.take_token("10.0.0.1", limit, at(0)).unwrap(), Ok(()));
        let refused = a.take_token("10.0.0.1", limit, at(0)).unwrap().unwrap_err();
        assert!(
            refused > Duration::from_millis(900) && refused <= Duration::from_millis(1001),
            "{refused:?}"
        );
        // A refusal takes nothing: half a second later half a token is there, not less.
        let half = b
            .take_token("10.0.0.1", limit, at(500))
            .unwrap()
            .unwrap_err();
        assert!(half <= Duration::from_millis(501), "{half:?}");
        // Another client has its own bucket.
        assert_eq!(b.take_token("10.0.0.2", limit, at(0)).unwrap(), Ok(()));
        // Refilled at one per second, never past the burst.
        assert_eq!(a.take_token("10.0.0.1", limit, at(1000)).unwrap(), Ok(()));
        assert!(a.take_token("10.0.0.1", limit, at(1000)).unwrap().is_err());
        assert_eq!(a.take_token("10.0.0.1", limit, at(60_000)).unwrap(), Ok(()));
        assert_eq!(a.take_token("10.0.0.1", limit, at(60_000)).unwrap(), Ok(()));
        assert!(
            a.take_token("10.0.0.1", limit, at(60_000))
                .unwrap()
                .is_err()
        );
        // Idle buckets are forgotten.
        assert_eq!(a.prune_rate_buckets(at(30_000)).unwrap(), 1);
    }
}
