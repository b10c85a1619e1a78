//! Conversation events: what happened in a conversation besides its items — a handoff from
//! one agent to another, a guardrail that tripped. Items are what a resumed session replays
//! to the model; events are for people reading the history (`agent history show`), so they
//! are kept apart and never replayed.
//!
//! Each event is numbered within its conversation and records how many items the
//! conversation held when it was written, so a transcript can show it where it happened.
//! Events go with their conversation when it is deleted.

use serde_json::{Value, json};

use super::db::{DbError, Row, params};
use super::store::{begin_item_write, conversation_exists};
use super::{ConversationId, HistoryError, HistoryStore, Timestamp};

/// Migration 6: conversation events.
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE conversation_events (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq             INTEGER NOT NULL,   -- 1, 2, 3... within the conversation
        after_item      INTEGER NOT NULL,   -- the conversation's last item seq when it happened
        kind            TEXT NOT NULL,      -- `handoff`, `guardrail_tripped`, ...
        data            TEXT NOT NULL,      -- the event's fields as a JSON object
        created_at      INTEGER NOT NULL,   -- ms since the Unix epoch
        PRIMARY KEY (conversation_id, seq)
    ) STRICT;
"#;

/// Migration 6 for PostgreSQL.
pub(super) const POSTGRES_MIGRATION: &str = r#"
    CREATE TABLE conversation_events (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq             BIGINT NOT NULL,
        after_item      BIGINT NOT NULL,
        kind            TEXT NOT NULL,
        data            TEXT NOT NULL,
        created_at      BIGINT NOT NULL,
        PRIMARY KEY (conversation_id, seq)
    );
"#;

/// Something that happened in a conversation that is not an item.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConversationEvent {
    /// The conversation passed from one agent to another (a transfer call).
    Handoff {
        /// The transfer call's id.
        call_id: String,
        /// The agent that handed it off.
        from: String,
        /// The agent that has it now.
        to: String,
    },
    /// A guardrail stopped the user's input or the assistant's answer. The text it stopped is
    /// not kept: it may be the very content the guardrail exists to keep out.
    GuardrailTripped {
        /// The guardrail's name.
        guardrail: String,
        /// `input` or `output`.
        stage: String,
        /// Why it tripped, as the guardrail says.
        reason: String,
    },
    /// A kind this build does not know (written by a newer one), kept as it was stored so a
    /// listing never fails on it.
    Other {
        /// The stored kind.
        kind: String,
        /// The stored fields (a string when they were not valid JSON).
        data: Value,
    },
}

impl ConversationEvent {
    /// The `kind` column.
    fn kind(&self) -> &str {
        match self {
            ConversationEvent::Handoff { .. } => "handoff",
            ConversationEvent::GuardrailTripped { .. } => "guardrail_tripped",
            ConversationEvent::Other { kind, .. } => kind,
        }
    }

    /// The `data` column: the fields as a JSON object.
    fn data(&self) -> Value {
        match self {
            ConversationEvent::Handoff { call_id, from, to } => {
                json!({"call_id": call_id, "from": from, "to": to})
            }
            ConversationEvent::GuardrailTripped {
                guardrail,
                stage,
                reason,
            } => json!({"guardrail": guardrail, "stage": stage, "reason": reason}),
            ConversationEvent::Other { data, .. } => data.clone(),
        }
    }

    /// Reads a stored event back; an unknown kind or damaged fields become
    /// [`ConversationEvent::Other`] rather than an error.
    fn from_stored(kind: String, data: &str) -> Self {
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return ConversationEvent::Other {
                kind,
                data: Value::String(data.to_owned()),
            };
        };
        let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        let known = match kind.as_str() {
            "handoff" => (|| {
                Some(ConversationEvent::Handoff {
                    call_id: field("call_id")?,
                    from: field("from")?,
                    to: field("to")?,
                })
            })(),
            "guardrail_tripped" => (|| {
                Some(ConversationEvent::GuardrailTripped {
                    guardrail: field("guardrail")?,
                    stage: field("stage")?,
                    reason: field("reason")?,
                })
            })(),
            _ => None,
        };
        known.unwrap_or(ConversationEvent::Other { kind, data: value })
    }
}

/// An event as stored, with where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Position among the conversation's events: 1, 2, 3...
    pub seq: u64,
    /// How many items the conversation held when the event was written (the last item's
    /// `seq`; 0 before the first item): a transcript shows the event after that item.
    pub after_item: u64,
    /// When it was written.
    pub created_at: Timestamp,
    /// What happened.
    pub event: ConversationEvent,
}

impl HistoryStore {
    /// Records `event` in the conversation, after the items stored so far; returns its
    /// position among the conversation's events.
    pub fn record_event(
        &mut self,
        conversation: &ConversationId,
        event: &ConversationEvent,
    ) -> Result<u64, HistoryError> {
        self.record_event_leased(conversation, None, event)
    }

    /// [`record_event`](Self::record_event) under a lease, checked as in
    /// [`append_leased`](Self::append_leased).
    pub fn record_event_leased(
        &mut self,
        conversation: &ConversationId,
        holder: Option<&str>,
        event: &ConversationEvent,
    ) -> Result<u64, HistoryError> {
        self.write_event(conversation, holder, event, None)
    }

    /// Records that the conversation passed from `from` to `to` through the transfer call
    /// `call_id`: the conversation's agent becomes `to` (what `agent history list` shows), and
    /// a [`ConversationEvent::Handoff`] says when, both in one transaction.
    pub fn record_handoff(
        &mut self,
        conversation: &ConversationId,
        call_id: &str,
        from: &str,
        to: &str,
    ) -> Result<(), HistoryError> {
        self.record_handoff_leased(conversation, None, call_id, from, to)
    }

    /// [`record_handoff`](Self::record_handoff) under a lease, checked as in
    /// [`append_leased`](Self::append_leased).
    pub fn record_handoff_leased(
        &mut self,
        conversation: &ConversationId,
        holder: Option<&str>,
        call_id: &str,
        from: &str,
        to: &str,
    ) -> Result<(), HistoryError> {
        let event = ConversationEvent::Handoff {
            call_id: call_id.to_owned(),
            from: from.to_owned(),
            to: to.to_owned(),
        };
        self.write_event(conversation, holder, &event, Some(to))
            .map(|_| ())
    }

    /// Inserts `event` and, with `agent`, makes it the conversation's agent.
    fn write_event(
        &mut self,
        conversation: &ConversationId,
        holder: Option<&str>,
        event: &ConversationEvent,
        agent: Option<&str>,
    ) -> Result<u64, HistoryError> {
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
        let now = Timestamp::now().as_millis();
        // The data may quote what the model or a tool said: scrubbed like the items.
        let data = crate::redact::scrub(&event.data().to_string()).into_owned();
        let seq = tx
            .query_one(
                "INSERT INTO conversation_events
                     (conversation_id, seq, after_item, kind, data, created_at)
                 VALUES (
                     ?1,
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM conversation_events
                          WHERE conversation_id = ?1),
                     (SELECT COALESCE(MAX(seq), 0) FROM items WHERE conversation_id = ?1),
                     ?2, ?3, ?4)
                 RETURNING seq",
                params![conversation.as_str(), event.kind(), &data, now],
            )
            .and_then(|row| row.int(0))
            .map_err(fail)?;
        if let Some(agent) = agent {
            tx.execute(
                "UPDATE conversations
                     SET agent = ?2,
                         updated_at = CASE WHEN updated_at > ?3 THEN updated_at ELSE ?3 END
                 WHERE id = ?1",
                params![conversation.as_str(), agent, now],
            )
            .map_err(fail)?;
        }
        tx.commit().map_err(fail)?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }

    /// The conversation's events in order.
    pub fn events(&self, conversation: &ConversationId) -> Result<Vec<StoredEvent>, HistoryError> {
        if !conversation_exists(&self.db, conversation).map_err(|e| self.fail(e))? {
            return Err(self.unknown(conversation.as_str()));
        }
        self.db
            .query(
                "SELECT seq, after_item, created_at, kind, data FROM conversation_events
                 WHERE conversation_id = ?1 ORDER BY seq",
                params![conversation.as_str()],
            )
            .and_then(|rows| rows.iter().map(stored_event).collect())
            .map_err(|e| self.fail(e))
    }
}

fn stored_event(row: &Row) -> Result<StoredEvent, DbError> {
    // Never negative unless hand-edited: read as 0 rather than wrapping.
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    Ok(StoredEvent {
        seq: count(row.int(0)?),
        after_item: count(row.int(1)?),
        created_at: Timestamp::from_millis(row.int(2)?),
        event: ConversationEvent::from_stored(row.text(3)?, &row.text(4)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testdb::{TestDb, on_both_backends};
    use crate::protocol::Item;

    on_both_backends!(
        a_handoff_changes_the_agent_and_is_an_event,
        a_trip_is_an_event_after_the_items_so_far,
        events_go_with_their_conversation,
        unknown_kinds_read_back,
    );

    fn trip(guardrail: &str) -> ConversationEvent {
        ConversationEvent::GuardrailTripped {
            guardrail: guardrail.into(),
            stage: "output".into(),
            reason: "never promise an outcome".into(),
        }
    }

    fn a_handoff_changes_the_agent_and_is_an_event(db: &TestDb) {
        let mut store = db.open();
        let id = store
            .create_conversation("support", "gpt-realtime")
            .unwrap();
        store
            .append(&id, "local_1", &Item::user_text("charged twice"))
            .unwrap();
        store
            .record_handoff(&id, "call_1", "support", "billing")
            .unwrap();
        assert_eq!(store.conversation(&id).unwrap().agent, "billing");
        assert_eq!(store.conversations().unwrap()[0].agent, "billing");
        let events = store.events(&id).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!((events[0].seq, events[0].after_item), (1, 1));
        assert_eq!(
            events[0].event,
            ConversationEvent::Handoff {
                call_id: "call_1".into(),
                from: "support".into(),
                to: "billing".into(),
            }
        );
        // Another connection (another process) sees the same.
        let other = db.open();
        assert_eq!(other.conversation(&id).unwrap().agent, "billing");
        assert_eq!(other.events(&id).unwrap(), events);
    }

    fn a_trip_is_an_event_after_the_items_so_far(db: &TestDb) {
        let mut store = db.open();
        let id = store
            .create_conversation("billing", "gpt-realtime")
            .unwrap();
        assert_eq!(store.record_event(&id, &trip("first")).unwrap(), 1);
        store
            .append(&id, "local_1", &Item::user_text("hi"))
            .unwrap();
        store
            .append(&id, "item:a1", &Item::assistant_text("hello"))
            .unwrap();
        assert_eq!(store.record_event(&id, &trip("no promises")).unwrap(), 2);
        let events = store.events(&id).unwrap();
        let placed: Vec<(u64, u64)> = events.iter().map(|e| (e.seq, e.after_item)).collect();
        assert_eq!(placed, [(1, 0), (2, 2)]);
        assert_eq!(events[1].event, trip("no promises"));
        // The agent stays: only a handoff changes it.
        assert_eq!(store.conversation(&id).unwrap().agent, "billing");
        // An unknown conversation is a clear error, for writes and reads alike.
        let missing = ConversationId::new("conv_missing");
        assert!(matches!(
            store.record_event(&missing, &trip("x")),
            Err(HistoryError::UnknownConversation { .. })
        ));
        assert!(store.events(&missing).is_err());
    }

    fn events_go_with_their_conversation(db: &TestDb) {
        let mut store = db.open();
        let id = store
            .create_conversation("support", "gpt-realtime")
            .unwrap();
        store.record_event(&id, &trip("x")).unwrap();
        store.delete_conversation(&id).unwrap();
        let rows = store
            .db
            .query_one("SELECT COUNT(*) FROM conversation_events", params![])
            .unwrap()
            .int(0)
            .unwrap();
        assert_eq!(rows, 0);
    }

    fn unknown_kinds_read_back(db: &TestDb) {
        let mut store = db.open();
        let id = store
            .create_conversation("support", "gpt-realtime")
            .unwrap();
        let future = ConversationEvent::Other {
            kind: "escalated".into(),
            data: json!({"to": "a human"}),
        };
        store.record_event(&id, &future).unwrap();
        db.execute(&format!(
            "INSERT INTO conversation_events VALUES ('{}', 2, 0, 'handoff', 'not json', 0)",
            id.as_str()
        ));
        let events = store.events(&id).unwrap();
        assert_eq!(events[0].event, future);
        assert_eq!(
            events[1].event,
            ConversationEvent::Other {
                kind: "handoff".into(),
                data: Value::String("not json".into()),
            }
        );
    }
}
