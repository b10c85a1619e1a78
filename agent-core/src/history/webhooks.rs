//! Webhook ids already processed, in the shared store: when several `agent serve` nodes share
//! one PostgreSQL, a delivery the platform retries may land on another node than the first
//! one, and must still be processed once (a call accepted twice is two sessions on one call).
//!
//! An id is claimed with one upsert that changes nothing when the id was seen within the
//! caller's window: of two nodes claiming at once, exactly one wins, on either backend. An id
//! older than the window can be claimed again (a replay that old fails the signature's
//! timestamp check anyway). Old ids are deleted by the server's hourly sweep
//! ([`HistoryStore::prune_webhook_ids`]), not by each claim, so a webhook costs one statement.

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
        let inserted = tx
            .execute(
                "INSERT INTO webhook_ids (id, seen_at) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at \
                 WHERE webhook_ids.seen_at < ?3",
                params![id, now, cutoff],
            )
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(inserted == 1)
    }

    /// Forgets the webhook ids seen before `before`; returns how many.
    pub fn prune_webhook_ids(&mut self, before: Timestamp) -> Result<u64, HistoryError> {
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        let deleted = tx
            .execute(
                "DELETE FROM webhook_ids WHERE seen_at < ?1",
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

    on_both_backends!(an_id_is_claimed_once_across_connections_until_forgotten);

    fn an_id_is_claimed_once_across_connections_until_forgotten(db: &TestDb) {
        let window = Duration::from_secs(600);
        let (mut first, mut second) = (db.open(), db.open());
        assert!(first.claim_webhook("wh_1", window).unwrap());
        // The retry lands on another node.
        assert!(!second.claim_webhook("wh_1", window).unwrap());
        assert!(!first.claim_webhook("wh_1", window).unwrap());
        assert!(second.claim_webhook("wh_2", window).unwrap());
        // Past the window the id can be claimed again (a zero window forgets everything
        // older than now), once.
        std::thread::sleep(Duration::from_millis(5));
        assert!(first.claim_webhook("wh_1", Duration::ZERO).unwrap());
        assert!(!second.claim_webhook("wh_1", window).unwrap());
        // The sweep deletes what is older than its cutoff, and nothing newer.
        std::thread::sleep(Duration::from_millis(5));
        let cutoff = Timestamp::now();
        assert!(first.claim_webhook("wh_3", window).unwrap());
        assert_eq!(first.prune_webhook_ids(cutoff).unwrap(), 2);
        assert!(!second.claim_webhook("wh_3", window).unwrap());
        assert!(second.claim_webhook("wh_1", window).unwrap());
    }
}
