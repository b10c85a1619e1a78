//! Webhook ids already processed, in the shared store: when several `agent serve` nodes share
//! one PostgreSQL, a delivery the platform retries may land on another node than the first
//! one, and must still be processed once (a call accepted twice is two sessions on one call).
//!
//! An id is claimed with one insert that does nothing when the id is there: of two nodes
//! claiming at once, exactly one wins, on either backend. Ids are forgotten after the
//! caller's window (a replay older than that fails the signature's timestamp check anyway),
//! by the claims themselves, so the table stays small without a clean-up job.

use std::time::Duration;

use super::db::params;
use super::{HistoryError, HistoryStore, Timestamp};

/// Migration 4: the `webhook_ids` table (see [`super::schema`]).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE webhook_ids (
        id      TEXT NOT NULL PRIMARY KEY,
        seen_at INTEGER NOT NULL            -- ms since the Unix epoch
    ) STRICT;

    CREATE INDEX webhook_ids_by_time ON webhook_ids (seen_at);
"#;

/// Migration 4 for PostgreSQL.
pub(super) const POSTGRES_MIGRATION: &str = r#"
    CREATE TABLE webhook_ids (
        id      TEXT NOT NULL PRIMARY KEY,
        seen_at BIGINT NOT NULL
    );

    CREATE INDEX webhook_ids_by_time ON webhook_ids (seen_at);
"#;

impl HistoryStore {
    /// Records that the webhook `id` is being processed; `true` the first time it is seen
    /// within `remember`, `false` when some process (this node or another sharing the store)
    /// already claimed it.
    pub fn claim_webhook(&mut self, id: &str, remember: Duration) -> Result<bool, HistoryError> {
        let now = Timestamp::now().as_millis();
        let cutoff = now.saturating_sub(i64::try_from(remember.as_millis()).unwrap_or(i64::MAX));
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        tx.execute(
            "DELETE FROM webhook_ids WHERE seen_at < ?1",
            params![cutoff],
        )
        .map_err(fail)?;
        let inserted = tx
            .execute(
                "INSERT INTO webhook_ids (id, seen_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                params![id, now],
            )
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(inserted == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testdb::{TestDb, on_both_backends};

    on_both_backends!(an_id_is_claimed_once_across_connections_until_forgotten);

    fn an_id_is_claimed_once_across_connections_until_forgotten(db: &TestDb) {
        let window = Duration::from_secs(600);
        let (mut first, mut second) = (db.open(), db.open());
        assert!(first.claim_webhook("wh_1", window).unwrap());
        // The retry lands on another node.
        assert!(!second.claim_webhook("wh_1", window).unwrap());
        assert!(!first.claim_webhook("wh_1", window).unwrap());
        assert!(second.claim_webhook("wh_2", window).unwrap());
        // Past the window the id is forgotten (a zero window forgets everything older than now).
        std::thread::sleep(Duration::from_millis(5));
        assert!(first.claim_webhook("wh_1", Duration::ZERO).unwrap());
    }
}
