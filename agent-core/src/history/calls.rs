//! Tool-call records: each call of a conversation runs once, even across a crash and a resume.
//!
//! A call is recorded as started before its tool runs and as finished together with its
//! output. A resumed run asks [`HistoryStore::call_started`] before running a call: a
//! finished call's output is reused, and a call that started but never finished (the run
//! died while the tool ran, and the tool may have had its effect) is reported to the model as
//! interrupted instead of run again.

use serde::Serialize;

use super::db::{Dialect, params};
use super::store::{begin_item_write, conversation_exists};
use super::{ConversationId, HistoryError, HistoryStore, Timestamp};

/// What [`HistoryStore::call_started`] found recorded for the call before this start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallRecordState {
    /// Nothing: this is the call's first start, now recorded. Run the tool.
    New,
    /// Started before and never finished: an earlier run died (or is still running it).
    /// Report the call to the model as interrupted; do not run it again.
    Started,
    /// Finished before: reuse this output; do not run the tool again.
    Finished {
        /// The output recorded with the finish.
        output: String,
    },
}

/// One recorded tool call, as listed by [`HistoryStore::calls`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The model's id for the call.
    pub call_id: String,
    /// The tool's name (empty when only the finish was recorded).
    pub name: String,
    /// The arguments, as the model sent them (empty when only the finish was recorded).
    pub arguments: String,
    /// When the start was recorded.
    pub started_at: Timestamp,
    /// When the finish was recorded; `None` while the call runs, or if it was cut off.
    pub finished_at: Option<Timestamp>,
    /// The tool's output, recorded with the finish.
    pub output: Option<String>,
}

impl HistoryStore {
    /// Records that `call_id` is about to run, unless it is already recorded, and returns what
    /// was recorded before: [`CallRecordState::New`] means run the tool; anything else means
    /// the call is a duplicate and must not run again.
    ///
    /// On the hot path of every tool call, so it is one small transaction committed with
    /// `synchronous = NORMAL` whatever the store's [`Durability`](super::Durability): no
    /// fsync, but in WAL mode the commit has written the log to the OS before it returns, so
    /// the record survives the process being killed. The next fully synced commit (e.g. the
    /// call's [`call_finished`](Self::call_finished)) syncs the whole log and makes it
    /// survive power loss too.
    pub fn call_started(
        &mut self,
        conversation: &ConversationId,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> Result<CallRecordState, HistoryError> {
        self.call_started_leased(conversation, None, call_id, name, arguments)
    }

    /// [`call_started`](Self::call_started) under a lease, checked as in
    /// [`append_leased`](Self::append_leased).
    pub fn call_started_leased(
        &mut self,
        conversation: &ConversationId,
        holder: Option<&str>,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> Result<CallRecordState, HistoryError> {
        if call_id.is_empty() {
            return Err(HistoryError::EmptyCallId {
                conversation: conversation.clone(),
            });
        }
        self.relaxed(|store| {
            let path = store.path.clone();
            let fail = |e| HistoryError::from_db(&path, e);
            let tx = begin_item_write(
                &store.db,
                &mut store.batch,
                store.grouped,
                &path,
                conversation,
                holder,
            )?;
            let recorded = tx
                .query_opt(
                    "SELECT finished_at IS NOT NULL, output FROM calls
                         WHERE conversation_id = ?1 AND call_id = ?2",
                    params![conversation.as_str(), call_id],
                )
                .and_then(|row| {
                    row.map(|row| Ok((row.flag(0)?, row.opt_text(1)?)))
                        .transpose()
                })
                .map_err(fail)?;
            let state = match recorded {
                Some((true, output)) => CallRecordState::Finished {
                    output: output.unwrap_or_default(),
                },
                Some((false, _)) => CallRecordState::Started,
                None => {
                    tx.execute(
                        "INSERT INTO calls (conversation_id, call_id, name, arguments, started_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![
                            conversation.as_str(),
                            call_id,
                            name,
                            crate::redact::scrub(arguments).as_ref(),
                            Timestamp::now().as_millis()
                        ],
                    )
                    .map_err(fail)?;
                    CallRecordState::New
                }
            };
            tx.commit().map_err(fail)?;
            Ok(state)
        })
    }

    /// Records that `call_id` finished with `output`, with the store's full durability.
    ///
    /// A call whose start was never recorded gets a record now (with an empty name and
    /// arguments). A call already finished keeps its first output: that is the one a resumed
    /// run has reused.
    pub fn call_finished(
        &mut self,
        conversation: &ConversationId,
        call_id: &str,
        output: &str,
    ) -> Result<(), HistoryError> {
        self.call_finished_leased(conversation, None, call_id, output)
    }

    /// [`call_finished`](Self::call_finished) under a lease, checked as in
    /// [`append_leased`](Self::append_leased).
    pub fn call_finished_leased(
        &mut self,
        conversation: &ConversationId,
        holder: Option<&str>,
        call_id: &str,
        output: &str,
    ) -> Result<(), HistoryError> {
        if call_id.is_empty() {
            return Err(HistoryError::EmptyCallId {
                conversation: conversation.clone(),
            });
        }
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = begin_item_write(
            &self.db,
            &mut self.batch,
            self.grouped,
            &path,
            conversation,
            holder,
        )?;
        // `calls.finished_at`: PostgreSQL finds a bare column name ambiguous here (the row, or
        // `excluded`'s).
        tx.execute(
            "INSERT INTO calls
                 (conversation_id, call_id, name, arguments, started_at, finished_at, output)
             VALUES (?1, ?2, '', '', ?3, ?3, ?4)
             ON CONFLICT (conversation_id, call_id) DO UPDATE
                 SET finished_at = excluded.finished_at, output = excluded.output
                 WHERE calls.finished_at IS NULL",
            params![
                conversation.as_str(),
                call_id,
                Timestamp::now().as_millis(),
                crate::redact::scrub(output).as_ref()
            ],
        )
        .map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(())
    }

    /// The conversation's recorded tool calls, in the order their starts were recorded.
    pub fn calls(&self, conversation: &ConversationId) -> Result<Vec<CallRecord>, HistoryError> {
        if !conversation_exists(&self.db, conversation).map_err(|e| self.fail(e))? {
            return Err(self.unknown(conversation.as_str()));
        }
        // Insertion order even when the clock jumps: SQLite's row ids only grow while a row
        // with a larger one exists; PostgreSQL's identity column only grows.
        let sql = match self.db.dialect() {
            Dialect::Sqlite => {
                "SELECT call_id, name, arguments, started_at, finished_at, output FROM calls
                 WHERE conversation_id = ?1 ORDER BY rowid"
            }
            Dialect::Postgres => {
                "SELECT call_id, name, arguments, started_at, finished_at, output FROM calls
                 WHERE conversation_id = ?1 ORDER BY position"
            }
        };
        self.db
            .query(sql, params![conversation.as_str()])
            .and_then(|rows| {
                rows.iter()
                    .map(|row| {
                        Ok(CallRecord {
                            call_id: row.text(0)?,
                            name: row.text(1)?,
                            arguments: row.text(2)?,
                            started_at: Timestamp::from_millis(row.int(3)?),
                            finished_at: row.opt_int(4)?.map(Timestamp::from_millis),
                            output: row.opt_text(5)?,
                        })
                    })
                    .collect()
            })
            .map_err(|e| self.fail(e))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::history::db::Db;
    use crate::history::testdb::{TestDb, on_both_backends};
    use crate::history::{Durability, OpenOptions};

    on_both_backends!(
        a_call_is_new_then_started_then_finished,
        calls_list_in_start_order_and_a_finish_alone_is_recorded,
        bad_calls_are_clear_errors_and_durability_is_restored,
        leased_call_records_are_refused_after_a_takeover,
        a_started_record_survives_an_unclosed_connection,
        calls_go_with_their_conversation,
    );

    /// `PRAGMA synchronous` reads 0 for OFF, 1 for NORMAL, 2 for FULL.
    const NORMAL: i64 = 1;
    const FULL: i64 = 2;

    /// SQLite's `synchronous` setting; `None` on PostgreSQL, which has no such client setting.
    fn synchronous(store: &HistoryStore) -> Option<i64> {
        match &store.db {
            Db::Sqlite(conn) => Some(
                conn.pragma_query_value(None, "synchronous", |row| row.get(0))
                    .unwrap(),
            ),
            Db::Postgres(_) => None,
        }
    }

    /// A store with full durability (the default), where SQLite's fsync setting can be seen.
    fn durable(db: &TestDb) -> HistoryStore {
        OpenOptions::new().open(db.location()).unwrap()
    }

    fn a_call_is_new_then_started_then_finished(db: &TestDb) {
        let mut store = durable(db);
        let id = store.create_conversation("a", "m").unwrap();
        let args = r#"{"order_id":"A1001"}"#;
        assert_eq!(
            store.call_started(&id, "c1", "lookup_order", args).unwrap(),
            CallRecordState::New
        );
        // The store's durability is back to FULL.
        assert_ne!(synchronous(&store), Some(NORMAL));
        assert_eq!(
            store.call_started(&id, "c1", "lookup_order", args).unwrap(),
            CallRecordState::Started
        );
        store.call_finished(&id, "c1", "shipped").unwrap();
        // The first output stays.
        store.call_finished(&id, "c1", "something else").unwrap();
        assert_eq!(
            store.call_started(&id, "c1", "lookup_order", args).unwrap(),
            CallRecordState::Finished {
                output: "shipped".to_owned()
            }
        );
        // Call ids are per conversation.
        let other = store.create_conversation("a", "m").unwrap();
        assert_eq!(
            store.call_started(&other, "c1", "f", "{}").unwrap(),
            CallRecordState::New
        );
        drop(store);

        let store = db.open();
        let calls = store.calls(&id).unwrap();
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(
            (
                call.call_id.as_str(),
                call.name.as_str(),
                call.arguments.as_str()
            ),
            ("c1", "lookup_order", args)
        );
        assert_eq!(call.output.as_deref(), Some("shipped"));
        assert!(call.finished_at.is_some_and(|at| at >= call.started_at));
    }

    #[test]
    fn starts_commit_without_an_fsync_and_leave_the_durability_as_it_was() {
        let mut store = HistoryStore::open_in_memory().unwrap();
        assert_eq!(synchronous(&store), Some(FULL));
        let inside = store.relaxed(|store| Ok(synchronous(store))).unwrap();
        assert_eq!(inside, Some(NORMAL));
        assert_eq!(synchronous(&store), Some(FULL));
        let failed: Result<(), _> = store.relaxed(|_| Err(HistoryError::WriterGone));
        assert!(failed.is_err());
        assert_eq!(synchronous(&store), Some(FULL));
        // A store opened for process crashes only stays as it is.
        let mut fast = OpenOptions::new()
            .durability(Durability::ProcessCrash)
            .open_in_memory()
            .unwrap();
        assert_eq!(
            fast.relaxed(|store| Ok(synchronous(store))).unwrap(),
            Some(NORMAL)
        );
        assert_eq!(synchronous(&fast), Some(NORMAL));
    }

    fn calls_list_in_start_order_and_a_finish_alone_is_recorded(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        for call_id in ["c3", "c1", "c2"] {
            store.call_started(&id, call_id, "f", "{}").unwrap();
        }
        store.call_finished(&id, "c1", "one").unwrap();
        store.call_finished(&id, "c9", "orphan").unwrap();
        let calls = store.calls(&id).unwrap();
        let ids: Vec<&str> = calls.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(ids, ["c3", "c1", "c2", "c9"]);
        assert_eq!(calls[0].finished_at, None);
        assert_eq!(calls[0].output, None);
        assert_eq!(calls[3].name, "");
        assert_eq!(calls[3].output.as_deref(), Some("orphan"));
        assert_eq!(
            store.call_started(&id, "c9", "f", "{}").unwrap(),
            CallRecordState::Finished {
                output: "orphan".to_owned()
            }
        );
    }

    fn bad_calls_are_clear_errors_and_durability_is_restored(db: &TestDb) {
        let mut store = durable(db);
        let id = store.create_conversation("a", "m").unwrap();
        let error = store.call_started(&id, "", "f", "{}").unwrap_err();
        assert!(matches!(error, HistoryError::EmptyCallId { .. }), "{error}");
        assert!(error.to_string().contains("call_id"), "{error}");
        assert!(store.call_finished(&id, "", "x").is_err());
        let missing = ConversationId::new("conv_missing");
        for error in [
            store.call_started(&missing, "c1", "f", "{}").unwrap_err(),
            store.call_finished(&missing, "c1", "x").unwrap_err(),
            store.calls(&missing).unwrap_err(),
        ] {
            assert!(
                matches!(error, HistoryError::UnknownConversation { .. }),
                "{error:?}"
            );
        }
        assert_ne!(synchronous(&store), Some(NORMAL));
    }

    fn leased_call_records_are_refused_after_a_takeover(db: &TestDb) {
        let mut store = durable(db);
        let id = store.create_conversation("a", "m").unwrap();
        let ttl = Duration::from_secs(15);
        store.acquire_lease(&id, "run a", ttl).unwrap();
        assert_eq!(
            store
                .call_started_leased(&id, Some("run a"), "c1", "f", "{}")
                .unwrap(),
            CallRecordState::New
        );
        store.release_lease(&id, "run a").unwrap();
        store.acquire_lease(&id, "run b", ttl).unwrap();
        for error in [
            store
                .call_started_leased(&id, Some("run a"), "c2", "f", "{}")
                .unwrap_err(),
            store
                .call_finished_leased(&id, Some("run a"), "c1", "x")
                .unwrap_err(),
        ] {
            assert!(matches!(error, HistoryError::LeaseLost { .. }), "{error:?}");
        }
        assert_ne!(synchronous(&store), Some(NORMAL));
        let calls = store.calls(&id).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].finished_at, None);
    }

    /// What a crash right after `call_started` leaves behind: on SQLite a NORMAL commit in the
    /// write-ahead log and a connection that was never closed. The record must be there.
    fn a_started_record_survives_an_unclosed_connection(db: &TestDb) {
        let mut store = durable(db);
        let id = store.create_conversation("a", "m").unwrap();
        store.call_started(&id, "c1", "charge_card", "{}").unwrap();
        std::mem::forget(store);

        let mut reopened = db.open();
        let calls = reopened.calls(&id).unwrap();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].name, "charge_card");
        assert_eq!(calls[0].finished_at, None);
        assert_eq!(
            reopened
                .call_started(&id, "c1", "charge_card", "{}")
                .unwrap(),
            CallRecordState::Started
        );
    }

    fn calls_go_with_their_conversation(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        store.call_started(&id, "c1", "f", "{}").unwrap();
        store.call_finished(&id, "c1", "ok").unwrap();
        store.delete_conversation(&id).unwrap();
        let count = store
            .db
            .query_one("SELECT COUNT(*) FROM calls", params![])
            .unwrap()
            .int(0)
            .unwrap();
        assert_eq!(count, 0);
    }
}
