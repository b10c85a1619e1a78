//! Phone calls in the history: which call a conversation was (platform, call id, caller,
//! callee), when it ended and how, and the deletions that personal data needs.
//!
//! `agent serve` stores every call as a conversation plus one `phone_calls` row
//! ([`HistoryStore::record_phone_call`]); `agent history list` shows the row beside the
//! conversation. A caller's number is personal data, so a conversation can be deleted
//! ([`HistoryStore::delete_conversation`]) and calls older than a retention time are
//! removed ([`HistoryStore::delete_phone_calls_before`]); their items, tool-call records and
//! leases go with them.

use std::collections::HashMap;

use serde::Serialize;

use super::db::{DbError, Row, params};
use super::{ConversationId, HistoryError, HistoryStore, Lease, Timestamp};

/// Migration 3: the `phone_calls` table (see [`super::schema`]).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE phone_calls (
        conversation_id TEXT NOT NULL PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
        transport       TEXT NOT NULL,      -- `twilio` or `sip`
        call_id         TEXT NOT NULL,      -- Twilio's CallSid, OpenAI's call_id
        caller          TEXT NOT NULL,      -- personal data: see `delete_phone_calls_before`
        callee          TEXT NOT NULL,
        started_at      INTEGER NOT NULL,   -- ms since the Unix epoch
        ended_at        INTEGER,
        outcome         TEXT                -- e.g. `caller_hung_up`; NULL while the call runs
    ) STRICT;

    CREATE INDEX phone_calls_by_start ON phone_calls (started_at);
"#;

/// Migration 3 for PostgreSQL.
pub(super) const POSTGRES_MIGRATION: &str = r#"
    CREATE TABLE phone_calls (
        conversation_id TEXT NOT NULL PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
        transport       TEXT NOT NULL,
        call_id         TEXT NOT NULL,
        caller          TEXT NOT NULL,
        callee          TEXT NOT NULL,
        started_at      BIGINT NOT NULL,
        ended_at        BIGINT,
        outcome         TEXT
    );

    CREATE INDEX phone_calls_by_start ON phone_calls (started_at);
"#;

/// Migration 7, the same on both backends: a call found by its platform's id
/// ([`HistoryStore::find_phone_call`]) without reading the whole table, which a Twilio resume
/// request does while the caller waits.
pub(super) const BY_CALL_ID: &str =
    "CREATE INDEX phone_calls_by_call_id ON phone_calls (transport, call_id);";

/// The columns [`record`] reads, in its order.
const COLUMNS: &str = "transport, call_id, caller, callee, started_at, ended_at, outcome";

/// [`COLUMNS`] of the table named `alias` in a join (`p.transport, p.call_id, …`).
fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A phone call from [`COLUMNS`], starting at column `at`.
fn record(row: &Row, at: usize) -> Result<PhoneCallRecord, DbError> {
    Ok(PhoneCallRecord {
        transport: row.text(at)?,
        call_id: row.text(at + 1)?,
        caller: row.text(at + 2)?,
        callee: row.text(at + 3)?,
        started_at: Timestamp::from_millis(row.int(at + 4)?),
        ended_at: row.opt_int(at + 5)?.map(Timestamp::from_millis),
        outcome: row.opt_text(at + 6)?,
    })
}

/// One phone call, as stored beside its conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneCallRecord {
    /// `twilio` or `sip`.
    pub transport: String,
    /// The platform's id of the call.
    pub call_id: String,
    /// Who called (a number or SIP URI).
    pub caller: String,
    /// Who was called.
    pub callee: String,
    /// When the call connected.
    pub started_at: Timestamp,
    /// When it ended; `None` while it runs (or if the server died during it).
    pub ended_at: Option<Timestamp>,
    /// How it ended, e.g. `caller_hung_up`, `agent_hung_up`, `transferred`.
    pub outcome: Option<String>,
}

/// A running call whose node let its lease run out: see
/// [`HistoryStore::orphaned_phone_calls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanedCall {
    /// The call's conversation.
    pub conversation: ConversationId,
    /// The agent that answered it.
    pub agent: String,
    /// The node (run) whose lease ran out.
    pub last_holder: String,
    /// When its lease ran out: a Twilio call may be resumed by Twilio itself for a while
    /// after that, so the watcher gives it a grace period from here.
    pub lease_expired_at: Timestamp,
    /// The call.
    pub call: PhoneCallRecord,
}

/// A phone call found by its platform's id: see [`HistoryStore::find_phone_call`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundCall {
    /// The call's conversation.
    pub conversation: ConversationId,
    /// The agent that answered it.
    pub agent: String,
    /// The call, with its outcome once it ended.
    pub call: PhoneCallRecord,
    /// The last lease taken on it (possibly expired); `None` when it was never leased.
    pub lease: Option<Lease>,
}

impl PhoneCallRecord {
    /// A call that starts now.
    pub fn starting(transport: &str, call_id: &str, caller: &str, callee: &str) -> Self {
        PhoneCallRecord {
            transport: transport.to_owned(),
            call_id: call_id.to_owned(),
            caller: caller.to_owned(),
            callee: callee.to_owned(),
            started_at: Timestamp::now(),
            ended_at: None,
            outcome: None,
        }
    }
}

impl HistoryStore {
    /// Records that `conversation` is the phone call `call`.
    pub fn record_phone_call(
        &mut self,
        conversation: &ConversationId,
        call: &PhoneCallRecord,
    ) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        tx.execute(
            "INSERT INTO phone_calls (conversation_id, transport, call_id, caller, callee,
                                      started_at, ended_at, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                conversation.as_str(),
                &call.transport,
                &call.call_id,
                &call.caller,
                &call.callee,
                call.started_at.as_millis(),
                call.ended_at.map(Timestamp::as_millis),
                call.outcome.as_ref(),
            ],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    /// Records how and when the call of `conversation` ended.
    pub fn finish_phone_call(
        &mut self,
        conversation: &ConversationId,
        outcome: &str,
    ) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        tx.execute(
            "UPDATE phone_calls SET ended_at = ?2, outcome = ?3 WHERE conversation_id = ?1",
            params![conversation.as_str(), Timestamp::now().as_millis(), outcome],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)
    }

    /// Every stored phone call, by conversation.
    pub fn phone_calls(&self) -> Result<HashMap<ConversationId, PhoneCallRecord>, HistoryError> {
        self.db
            .query(
                &format!("SELECT conversation_id, {COLUMNS} FROM phone_calls"),
                params![],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|row| Ok((ConversationId::new(row.text(0)?), record(row, 1)?)))
                    .collect()
            })
            .map_err(|e| self.fail(e))
    }

    /// The phone call `conversation` was, if it was one.
    pub fn phone_call(
        &self,
        conversation: &ConversationId,
    ) -> Result<Option<PhoneCallRecord>, HistoryError> {
        self.db
            .query_opt(
                &format!("SELECT {COLUMNS} FROM phone_calls WHERE conversation_id = ?1"),
                params![conversation.as_str()],
            )
            .and_then(|row| row.map(|row| record(&row, 0)).transpose())
            .map_err(|e| self.fail(e))
    }

    /// The phone calls still running (`ended_at` unset) whose lease ran out before `now`: the
    /// node that answered them died or stalled, so another may take them over. Oldest first,
    /// at most `limit`. Calls never leased are not listed (nothing says their node is gone).
    pub fn orphaned_phone_calls(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<OrphanedCall>, HistoryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .query(
                &format!(
                    "SELECT p.conversation_id, c.agent, l.holder, l.expires_at, {}
                     FROM phone_calls p
                     JOIN conversations c ON c.id = p.conversation_id
                     JOIN leases l ON l.conversation_id = p.conversation_id
                     WHERE p.ended_at IS NULL AND l.expires_at < ?1
                     ORDER BY p.started_at LIMIT ?2",
                    columns_of("p")
                ),
                params![now.as_millis(), limit],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|row| {
                        Ok(OrphanedCall {
                            conversation: ConversationId::new(row.text(0)?),
                            agent: row.text(1)?,
                            last_holder: row.text(2)?,
                            lease_expired_at: Timestamp::from_millis(row.int(3)?),
                            call: record(row, 4)?,
                        })
                    })
                    .collect()
            })
            .map_err(|e| self.fail(e))
    }

    /// The latest call of `transport` with the platform's id `call_id`, with its lease: how
    /// a request that names only the platform's id (Twilio's `<Connect action>` names the
    /// `CallSid`) finds the conversation to go on with, and whether a node still holds it.
    pub fn find_phone_call(
        &self,
        transport: &str,
        call_id: &str,
    ) -> Result<Option<FoundCall>, HistoryError> {
        self.db
            .query_opt(
                &format!(
                    "SELECT p.conversation_id, c.agent, l.holder, l.expires_at, {}
                     FROM phone_calls p
                     JOIN conversations c ON c.id = p.conversation_id
                     LEFT JOIN leases l ON l.conversation_id = p.conversation_id
                     WHERE p.transport = ?1 AND p.call_id = ?2
                     ORDER BY p.started_at DESC LIMIT 1",
                    columns_of("p")
                ),
                params![transport, call_id],
            )
            .and_then(|row| {
                row.map(|row| {
                    let conversation = ConversationId::new(row.text(0)?);
                    let lease = match (row.opt_text(2)?, row.opt_int(3)?) {
                        (Some(holder), Some(expires_at)) => Some(Lease {
                            conversation: conversation.clone(),
                            holder,
                            expires_at: Timestamp::from_millis(expires_at),
                        }),
                        _ => None,
                    };
                    Ok(FoundCall {
                        conversation,
                        agent: row.text(1)?,
                        call: record(&row, 4)?,
                        lease,
                    })
                })
                .transpose()
            })
            .map_err(|e| self.fail(e))
    }

    /// Deletes a conversation with everything stored about it (items, tool-call records,
    /// lease, phone call). An unknown id is an error, so a typo never reads as done.
    pub fn delete_conversation(
        &mut self,
        conversation: &ConversationId,
    ) -> Result<(), HistoryError> {
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        let deleted = tx
            .execute(
                "DELETE FROM conversations WHERE id = ?1",
                params![conversation.as_str()],
            )
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        if deleted == 0 {
            return Err(self.unknown(conversation.as_str()));
        }
        Ok(())
    }

    /// Deletes every phone call (its whole conversation) that started before `cutoff`, and
    /// returns how many. Conversations that were not phone calls are never touched.
    pub fn delete_phone_calls_before(&mut self, cutoff: Timestamp) -> Result<usize, HistoryError> {
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        let deleted = tx
            .execute(
                "DELETE FROM conversations WHERE id IN
                    (SELECT conversation_id FROM phone_calls WHERE started_at < ?1)",
                params![cutoff.as_millis()],
            )
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testdb::{TestDb, on_both_backends};
    use crate::protocol::Item;

    on_both_backends!(
        a_call_is_stored_finished_and_listed,
        deleting_removes_the_call_and_its_items_and_nothing_else,
        calls_whose_lease_ran_out_are_orphaned_until_taken_or_ended,
        a_call_is_found_by_its_platform_id_with_its_lease,
    );

    fn a_call_is_found_by_its_platform_id_with_its_lease(db: &TestDb) {
        let ttl = std::time::Duration::from_secs(10);
        let mut store = db.open();
        assert_eq!(store.find_phone_call("twilio", "CA9").unwrap(), None);
        let id = store.create_conversation("support", "m").unwrap();
        let call = PhoneCallRecord::starting("twilio", "CA9", "+1", "+2");
        store.record_phone_call(&id, &call).unwrap();
        let found = store.find_phone_call("twilio", "CA9").unwrap().unwrap();
        assert_eq!(found.conversation, id);
        assert_eq!(found.agent, "support");
        assert_eq!(found.call.call_id, "CA9");
        assert_eq!(found.lease, None, "never leased");
        assert_eq!(
            store.find_phone_call("sip", "CA9").unwrap(),
            None,
            "another transport's id space"
        );
        store.acquire_lease(&id, "node a", ttl).unwrap();
        let found = store.find_phone_call("twilio", "CA9").unwrap().unwrap();
        let lease = found.lease.unwrap();
        assert_eq!(lease.holder, "node a");
        assert!(lease.expires_in(Timestamp::now()) > std::time::Duration::from_secs(5));
        assert_eq!(found.call.outcome, None);
        store.finish_phone_call(&id, "caller_hung_up").unwrap();
        let found = store.find_phone_call("twilio", "CA9").unwrap().unwrap();
        assert_eq!(found.call.outcome.as_deref(), Some("caller_hung_up"));
    }

    fn calls_whose_lease_ran_out_are_orphaned_until_taken_or_ended(db: &TestDb) {
        let ttl = std::time::Duration::from_secs(10);
        let mut store = db.open();
        let later = Timestamp::from_millis(Timestamp::now().as_millis() + 11_000);
        let mut ids = Vec::new();
        for n in 0..3 {
            let id = store.create_conversation("support", "m").unwrap();
            let call = PhoneCallRecord::starting("sip", &format!("rtc_{n}"), "+1", "+2");
            store.record_phone_call(&id, &call).unwrap();
            ids.push(id);
        }
        // Two calls leased by node a; the third never leased.
        store.acquire_lease(&ids[0], "node a", ttl).unwrap();
        store.acquire_lease(&ids[1], "node a", ttl).unwrap();
        assert!(
            store
                .orphaned_phone_calls(Timestamp::now(), 10)
                .unwrap()
                .is_empty()
        );
        let orphaned = store.orphaned_phone_calls(later, 10).unwrap();
        assert_eq!(orphaned.len(), 2, "{orphaned:?}");
        assert_eq!(orphaned[0].conversation, ids[0]);
        assert_eq!(
            (orphaned[0].agent.as_str(), orphaned[0].last_holder.as_str()),
            ("support", "node a")
        );
        assert_eq!(orphaned[0].call.call_id, "rtc_0");
        assert_eq!(store.orphaned_phone_calls(later, 1).unwrap().len(), 1);
        // Node b takes the first over (its lease is fresh); the second ended.
        store
            .acquire_lease_at(&ids[0], "node b", ttl, later)
            .unwrap();
        store.finish_phone_call(&ids[1], "caller_hung_up").unwrap();
        assert!(store.orphaned_phone_calls(later, 10).unwrap().is_empty());
    }

    fn a_call_is_stored_finished_and_listed(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("phone", "gpt-realtime").unwrap();
        let terminal = store
            .create_conversation("support", "gpt-realtime")
            .unwrap();
        let call = PhoneCallRecord::starting("twilio", "CA1", "+15550111", "+15550100");
        store.record_phone_call(&id, &call).unwrap();
        store.finish_phone_call(&id, "caller_hung_up").unwrap();
        let stored = store.phone_call(&id).unwrap().unwrap();
        assert_eq!(
            (stored.caller.as_str(), stored.call_id.as_str()),
            ("+15550111", "CA1")
        );
        assert_eq!(stored.outcome.as_deref(), Some("caller_hung_up"));
        assert!(stored.ended_at.is_some());
        assert_eq!(store.phone_call(&terminal).unwrap(), None);
        assert_eq!(store.phone_calls().unwrap().len(), 1);
    }

    fn deleting_removes_the_call_and_its_items_and_nothing_else(db: &TestDb) {
        let mut store = db.open();
        let old = store.create_conversation("phone", "m").unwrap();
        let mut call = PhoneCallRecord::starting("twilio", "CA1", "+15550111", "+15550100");
        call.started_at = Timestamp::from_millis(1_000);
        store.record_phone_call(&old, &call).unwrap();
        store
            .append(&old, "local_000001", &Item::user_text("my number is 555"))
            .unwrap();
        let recent = store.create_conversation("phone", "m").unwrap();
        store
            .record_phone_call(
                &recent,
                &PhoneCallRecord::starting("twilio", "CA2", "+1", "+2"),
            )
            .unwrap();
        let terminal = store.create_conversation("support", "m").unwrap();
        assert_eq!(
            store
                .delete_phone_calls_before(Timestamp::from_millis(2_000))
                .unwrap(),
            1
        );
        assert!(store.conversation(&old).is_err());
        assert!(store.items(&old).is_err(), "its items went with it");
        assert!(store.conversation(&recent).is_ok());
        assert!(
            store.conversation(&terminal).is_ok(),
            "not a phone call: kept"
        );
        store.delete_conversation(&recent).unwrap();
        assert_eq!(store.phone_calls().unwrap().len(), 0);
        let again = store.delete_conversation(&recent).unwrap_err();
        assert!(
            matches!(again, HistoryError::UnknownConversation { .. }),
            "{again}"
        );
    }
}
