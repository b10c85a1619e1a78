//! Leases: one run writes a conversation at a time.
//!
//! A lease is a row naming the run that last took the conversation (`holder`) and when its
//! claim runs out (`expires_at`). The holding run renews it on a heartbeat (the runtime: a
//! 15 s lease renewed every 5 s), so a run that crashes or is killed blocks its conversation
//! for one lease at most, with no clean-up needed. Released leases keep their row, expired:
//! the row always names the last run that took the conversation, which is what lets a run
//! that was taken over notice it (see [`check_holder`]).

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::db::{Db, DbError, params};
use super::store::begin_write;
use super::{ConversationId, HistoryError, HistoryStore, Timestamp};

/// A run's claim on a conversation: until `expires_at`, no other run may take it, and writes
/// made under it are refused once another run has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The conversation.
    pub conversation: ConversationId,
    /// Who holds it, as the run described itself (e.g. `pid 1234 on host x`).
    pub holder: String,
    /// When it runs out unless renewed.
    pub expires_at: Timestamp,
}

impl Lease {
    /// How long after `now` the lease runs out; zero once it has.
    pub fn expires_in(&self, now: Timestamp) -> Duration {
        until(self.expires_at.as_millis(), now)
    }
}

/// The lease row of a conversation.
struct Row {
    holder: String,
    expires_at: i64,
}

impl HistoryStore {
    /// Takes the lease on `conversation` for `ttl`, for the run named `holder`.
    ///
    /// Succeeds when no run holds it, when `holder` already does (a re-acquire is a renewal)
    /// or when the previous holder's lease has expired; otherwise fails with
    /// [`HistoryError::ConversationInUse`], naming the holder and when its lease expires. The
    /// check and the claim are one `BEGIN IMMEDIATE` transaction, so of two runs acquiring at
    /// once exactly one wins, in this process or another.
    pub fn acquire_lease(
        &mut self,
        conversation: &ConversationId,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, HistoryError> {
        self.acquire_lease_at(conversation, holder, ttl, Timestamp::now())
    }

    /// Extends `holder`'s lease to `ttl` from now.
    ///
    /// Fails with [`HistoryError::LeaseLost`] when another run has taken the lease since
    /// (after this one expired); a lease that expired but that nobody took is simply taken
    /// again.
    pub fn renew_lease(
        &mut self,
        conversation: &ConversationId,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, HistoryError> {
        self.renew_lease_at(conversation, holder, ttl, Timestamp::now())
    }

    /// Gives the lease up, so another run may take the conversation at once; does nothing
    /// when `holder` does not hold it.
    pub fn release_lease(
        &mut self,
        conversation: &ConversationId,
        holder: &str,
    ) -> Result<(), HistoryError> {
        let now = Timestamp::now().as_millis();
        self.relaxed(|store| {
            store.batch.clear();
            store
                .db
                .execute(
                    "UPDATE leases
                         SET expires_at = CASE WHEN expires_at < ?3 THEN expires_at ELSE ?3 END
                         WHERE conversation_id = ?1 AND holder = ?2",
                    params![conversation.as_str(), holder, now],
                )
                .map_err(|e| store.fail(e))?;
            Ok(())
        })
    }

    /// [`acquire_lease`](Self::acquire_lease) with the clock in the caller's hands.
    ///
    /// Lease writes need not survive power loss (after one, the run that held the lease is
    /// gone too), so they skip the fsync; see [`relaxed`](Self::relaxed).
    pub(super) fn acquire_lease_at(
        &mut self,
        conversation: &ConversationId,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, HistoryError> {
        self.relaxed(|store| {
            let path = store.path.clone();
            let fail = |e| HistoryError::from_db(&path, e);
            let tx = begin_write(
                &store.db,
                &mut store.batch,
                store.grouped,
                &path,
                conversation,
                None,
            )?;
            if let Some(row) = read(&tx, conversation).map_err(fail)?
                && row.holder != holder
                && row.expires_at > now.as_millis()
            {
                return Err(HistoryError::ConversationInUse {
                    id: conversation.clone(),
                    holder: row.holder,
                    expires_in: until(row.expires_at, now),
                    path,
                });
            }
            let lease = write(&tx, conversation, holder, ttl, now).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(lease)
        })
    }

    /// [`renew_lease`](Self::renew_lease) with the clock in the caller's hands.
    fn renew_lease_at(
        &mut self,
        conversation: &ConversationId,
        holder: &str,
        ttl: Duration,
        now: Timestamp,
    ) -> Result<Lease, HistoryError> {
        self.relaxed(|store| {
            let path = store.path.clone();
            let fail = |e| HistoryError::from_db(&path, e);
            let tx = begin_write(
                &store.db,
                &mut store.batch,
                store.grouped,
                &path,
                conversation,
                Some(holder),
            )?;
            let lease = write(&tx, conversation, holder, ttl, now).map_err(fail)?;
            tx.commit().map_err(fail)?;
            Ok(lease)
        })
    }
}

/// Fails with [`HistoryError::LeaseLost`] when the lease row names a run other than `holder`,
/// expired or not: that run took the conversation over and may have written to it, so
/// `holder`'s view of it is stale. Run inside the write's transaction.
///
/// A lease of `holder`'s that expired unnoticed passes (nobody else took it, so nothing was
/// missed), and so does a conversation that was never leased.
pub(super) fn check_holder(
    db: &Db,
    path: &Path,
    conversation: &ConversationId,
    holder: &str,
) -> Result<(), HistoryError> {
    let row = read(db, conversation).map_err(|e| HistoryError::from_db(path, e))?;
    match row {
        Some(row) if row.holder != holder => Err(HistoryError::LeaseLost {
            id: conversation.clone(),
            holder_now: (row.expires_at > Timestamp::now().as_millis()).then_some(row.holder),
            path: path.to_owned(),
        }),
        _ => Ok(()),
    }
}

fn read(db: &Db, conversation: &ConversationId) -> Result<Option<Row>, DbError> {
    db.query_opt(
        "SELECT holder, expires_at FROM leases WHERE conversation_id = ?1",
        params![conversation.as_str()],
    )?
    .map(|row| {
        Ok(Row {
            holder: row.text(0)?,
            expires_at: row.int(1)?,
        })
    })
    .transpose()
}

/// Records `holder` as holding the lease until `ttl` after `now`.
fn write(
    db: &Db,
    conversation: &ConversationId,
    holder: &str,
    ttl: Duration,
    now: Timestamp,
) -> Result<Lease, DbError> {
    let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at = now.as_millis().saturating_add(ttl);
    db.execute(
        "INSERT INTO leases (conversation_id, holder, expires_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (conversation_id) DO UPDATE
             SET holder = excluded.holder, expires_at = excluded.expires_at",
        params![conversation.as_str(), holder, expires_at],
    )?;
    Ok(Lease {
        conversation: conversation.clone(),
        holder: holder.to_owned(),
        expires_at: Timestamp::from_millis(expires_at),
    })
}

/// The time from `now` until `millis`, zero when that is past.
fn until(millis: i64, now: Timestamp) -> Duration {
    let left = millis.saturating_sub(now.as_millis()).max(0);
    Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testdb::{TestDb, on_both_backends};
    use crate::protocol::Item;

    const TTL: Duration = Duration::from_secs(15);
    const A: &str = "pid 100 on host a";
    const B: &str = "pid 200 on host b";

    on_both_backends!(
        a_second_holder_is_refused_and_the_same_holder_is_not,
        an_expired_lease_can_be_taken_over_and_the_old_holder_notices,
        an_expired_lease_nobody_took_still_lets_its_holder_write_and_renew,
        release_lets_another_run_in_and_ignores_other_holders,
        unknown_conversations_cannot_be_leased,
        two_connections_contend_for_one_conversation,
        leases_go_with_their_conversation,
    );

    /// `seconds` after the real clock: lease expiry without sleeping.
    fn later(seconds: i64) -> Timestamp {
        Timestamp::from_millis(Timestamp::now().as_millis() + seconds * 1000)
    }

    fn a_second_holder_is_refused_and_the_same_holder_is_not(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        let lease = store.acquire_lease(&id, A, TTL).unwrap();
        assert_eq!(lease.conversation, id);
        assert_eq!(lease.holder, A);
        let left = lease.expires_in(Timestamp::now());
        assert!(left > Duration::from_secs(14) && left <= TTL, "{left:?}");

        let error = store.acquire_lease(&id, B, TTL).unwrap_err();
        let HistoryError::ConversationInUse {
            holder, expires_in, ..
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(holder, A);
        assert!(*expires_in <= TTL, "{expires_in:?}");
        let message = error.to_string();
        assert!(message.contains("in use by another run"), "{message}");
        assert!(message.contains(A), "{message}");
        assert!(message.contains("expires in 1"), "{message}");
        assert!(message.contains("Wait for that run to end"), "{message}");

        // The same run acquiring again is a renewal.
        let again = store.acquire_lease(&id, A, TTL).unwrap();
        assert!(again.expires_at >= lease.expires_at);
    }

    fn an_expired_lease_can_be_taken_over_and_the_old_holder_notices(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        store.acquire_lease(&id, A, TTL).unwrap();
        // A stalls past its lease; B takes the conversation.
        let taken = store.acquire_lease_at(&id, B, TTL, later(16)).unwrap();
        assert_eq!(taken.holder, B);

        let error = store.renew_lease(&id, A, TTL).unwrap_err();
        let HistoryError::LeaseLost { holder_now, .. } = &error else {
            panic!("{error:?}");
        };
        assert_eq!(holder_now.as_deref(), Some(B));
        assert!(error.to_string().contains(B), "{error}");
        assert!(error.to_string().contains("--resume"), "{error}");

        // A's leased writes are refused and write nothing; unleased ones are not checked.
        let error = store
            .append_leased(&id, Some(A), "k1", &Item::user_text("from A"))
            .unwrap_err();
        assert!(matches!(error, HistoryError::LeaseLost { .. }), "{error:?}");
        assert!(store.items(&id).unwrap().is_empty());
        store
            .append_leased(&id, Some(B), "k1", &Item::user_text("from B"))
            .unwrap();
        let error = store
            .replace_leased(&id, Some(A), "k1", &Item::user_text("from A"))
            .unwrap_err();
        assert!(matches!(error, HistoryError::LeaseLost { .. }), "{error:?}");
        assert_eq!(store.items(&id).unwrap()[0].item, Item::user_text("from B"));
        store.append(&id, "k2", &Item::user_text("x")).unwrap();
    }

    fn an_expired_lease_nobody_took_still_lets_its_holder_write_and_renew(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        // Acquired a minute ago, so long expired.
        store.acquire_lease_at(&id, A, TTL, later(-60)).unwrap();
        assert!(
            store
                .append_leased(&id, Some(A), "k", &Item::user_text("x"))
                .unwrap()
                .inserted
        );
        let renewed = store.renew_lease(&id, A, TTL).unwrap();
        assert!(renewed.expires_in(Timestamp::now()) > Duration::from_secs(14));
        // A conversation never leased: nothing to lose.
        let other = store.create_conversation("a", "m").unwrap();
        store
            .append_leased(&other, Some(A), "k", &Item::user_text("x"))
            .unwrap();
        store.renew_lease(&other, A, TTL).unwrap();
    }

    fn release_lets_another_run_in_and_ignores_other_holders(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        store.acquire_lease(&id, A, TTL).unwrap();
        // B releasing A's lease does nothing.
        store.release_lease(&id, B).unwrap();
        assert!(store.acquire_lease(&id, B, TTL).is_err());
        store.release_lease(&id, A).unwrap();
        store.acquire_lease(&id, B, TTL).unwrap();
        // A came back after B took over: refused, even once B has released.
        store.release_lease(&id, B).unwrap();
        let error = store.renew_lease(&id, A, TTL).unwrap_err();
        assert!(
            matches!(
                error,
                HistoryError::LeaseLost {
                    holder_now: None,
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("has since let it go"), "{error}");
        // But A may acquire it again afresh (a new resume).
        store.acquire_lease(&id, A, TTL).unwrap();
    }

    fn unknown_conversations_cannot_be_leased(db: &TestDb) {
        let mut store = db.open();
        let id = ConversationId::new("conv_missing");
        let error = store.acquire_lease(&id, A, TTL).unwrap_err();
        assert!(
            matches!(error, HistoryError::UnknownConversation { .. }),
            "{error:?}"
        );
        store.release_lease(&id, A).unwrap();
    }

    /// Two processes (or nodes) in reality: two connections, each with its own view.
    fn two_connections_contend_for_one_conversation(db: &TestDb) {
        let mut first = db.open();
        let mut second = db.open();
        let id = first.create_conversation("a", "m").unwrap();

        first.acquire_lease(&id, A, TTL).unwrap();
        let error = second.acquire_lease(&id, B, TTL).unwrap_err();
        assert!(
            matches!(&error, HistoryError::ConversationInUse { holder, .. } if holder == A),
            "{error:?}"
        );
        first
            .append_leased(&id, Some(A), "k1", &Item::user_text("first"))
            .unwrap();

        // The first run stalls past its lease; the second takes over and writes.
        second.acquire_lease_at(&id, B, TTL, later(16)).unwrap();
        second
            .append_leased(&id, Some(B), "k2", &Item::user_text("second"))
            .unwrap();
        let error = first
            .append_leased(&id, Some(A), "k3", &Item::user_text("lost"))
            .unwrap_err();
        assert!(
            matches!(&error, HistoryError::LeaseLost { holder_now: Some(h), .. } if h == B),
            "{error:?}"
        );
        assert!(matches!(
            first.renew_lease(&id, A, TTL),
            Err(HistoryError::LeaseLost { .. })
        ));
        let keys: Vec<String> = first
            .items(&id)
            .unwrap()
            .into_iter()
            .map(|s| s.key)
            .collect();
        assert_eq!(keys, ["k1", "k2"]);
    }

    fn leases_go_with_their_conversation(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        store.acquire_lease(&id, A, TTL).unwrap();
        store.delete_conversation(&id).unwrap();
        let count = store
            .db
            .query_one("SELECT COUNT(*) FROM leases", params![])
            .unwrap()
            .int(0)
            .unwrap();
        assert_eq!(count, 0);
    }
}
