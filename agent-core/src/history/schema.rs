//! The database schema and its migrations: SQLite's versioned with its `user_version`,
//! PostgreSQL's with a one-row `agent_schema` table.
//!
//! Migration `n` (counting from 1) takes a database from version `n - 1` to `n`; the two
//! backends have the same migrations, in each one's types, so a version number means the same
//! tables on both. All pending migrations run in one transaction, and the version is read
//! again inside it under a lock (SQLite's `BEGIN IMMEDIATE`, a PostgreSQL advisory lock), so
//! two processes — or two nodes — opening a fresh database at once cannot both create the
//! tables. A migration is never edited once released: changes are new entries at the end.

use rusqlite::{Connection, TransactionBehavior};

use super::db::{Db, DbError, params};

/// The migrations, oldest first. The schema version of a database is how many have run.
const MIGRATIONS: &[&str] = &[
    // 1: conversations and their items.
    r#"
    CREATE TABLE conversations (
        id          TEXT PRIMARY KEY,
        agent       TEXT NOT NULL,
        model       TEXT NOT NULL,
        created_at  INTEGER NOT NULL,   -- ms since the Unix epoch
        updated_at  INTEGER NOT NULL,
        title       TEXT                -- first user text, shortened; NULL until there is one
    ) STRICT;

    CREATE INDEX conversations_by_update ON conversations (updated_at DESC, id DESC);

    CREATE TABLE items (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq             INTEGER NOT NULL,   -- 1, 2, 3... within the conversation
        item_key        TEXT NOT NULL,      -- the caller's stable key: appends are idempotent on it
        item_type       TEXT NOT NULL,      -- the item's `type`, for queries without parsing JSON
        call_id         TEXT,               -- set for function_call and function_call_output
        server_item_id  TEXT,               -- the item's `id`, when it has one
        item            TEXT NOT NULL,      -- the item as GA JSON
        created_at      INTEGER NOT NULL,
        PRIMARY KEY (conversation_id, seq),
        UNIQUE (conversation_id, item_key)
    ) STRICT;

    -- A call and its output are stored once each, whatever key they arrive under.
    CREATE UNIQUE INDEX items_by_call ON items (conversation_id, item_type, call_id)
        WHERE call_id IS NOT NULL;
    "#,
    // 2: leases (one run writes a conversation at a time) and tool-call records (a call runs
    // once, even across a crash and a resume).
    r#"
    CREATE TABLE leases (
        conversation_id TEXT NOT NULL PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
        holder          TEXT NOT NULL,      -- the last run to take it, e.g. `pid 1234 on host x`
        expires_at      INTEGER NOT NULL    -- ms since the Unix epoch; released = in the past
    ) STRICT;

    CREATE TABLE calls (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        call_id         TEXT NOT NULL,
        name            TEXT NOT NULL,      -- '' when only the finish was recorded
        arguments       TEXT NOT NULL,
        started_at      INTEGER NOT NULL,
        finished_at     INTEGER,            -- NULL while the call runs (or if it was cut off)
        output          TEXT,               -- set together with finished_at
        PRIMARY KEY (conversation_id, call_id)
    ) STRICT;
    "#,
    // 3: phone calls (`agent serve`): which call a conversation was, with caller and callee.
    super::phone_calls::MIGRATION,
    // 4: webhook ids already processed, shared by the nodes of one store.
    super::webhooks::MIGRATION,
    // 5: rate-limit buckets shared by the nodes of one store.
    super::rate_limits::MIGRATION,
    // 6: conversation events (handoffs, guardrail trips), shown with the transcript.
    super::events::MIGRATION,
    // 7: phone calls found by the platform's call id (a Twilio call resumed on another node).
    super::phone_calls::BY_CALL_ID,
];

/// The same migrations for PostgreSQL: `BIGINT` for SQLite's 64-bit `INTEGER`, and an
/// identity column where SQLite orders call records by `rowid`.
const POSTGRES_MIGRATIONS: &[&str] = &[
    // 1: conversations and their items.
    r#"
    CREATE TABLE conversations (
        id          TEXT PRIMARY KEY,
        agent       TEXT NOT NULL,
        model       TEXT NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        title       TEXT
    );

    CREATE INDEX conversations_by_update ON conversations (updated_at DESC, id DESC);

    CREATE TABLE items (
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq             BIGINT NOT NULL,
        item_key        TEXT NOT NULL,
        item_type       TEXT NOT NULL,
        call_id         TEXT,
        server_item_id  TEXT,
        item            TEXT NOT NULL,
        created_at      BIGINT NOT NULL,
        PRIMARY KEY (conversation_id, seq),
        UNIQUE (conversation_id, item_key)
    );

    CREATE UNIQUE INDEX items_by_call ON items (conversation_id, item_type, call_id)
        WHERE call_id IS NOT NULL;
    "#,
    // 2: leases and tool-call records.
    r#"
    CREATE TABLE leases (
        conversation_id TEXT NOT NULL PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
        holder          TEXT NOT NULL,
        expires_at      BIGINT NOT NULL
    );

    CREATE TABLE calls (
        position        BIGINT GENERATED ALWAYS AS IDENTITY,
        conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        call_id         TEXT NOT NULL,
        name            TEXT NOT NULL,
        arguments       TEXT NOT NULL,
        started_at      BIGINT NOT NULL,
        finished_at     BIGINT,
        output          TEXT,
        PRIMARY KEY (conversation_id, call_id)
    );
    "#,
    // 3: phone calls.
    super::phone_calls::POSTGRES_MIGRATION,
    // 4: webhook ids.
    super::webhooks::POSTGRES_MIGRATION,
    // 5: rate-limit buckets.
    super::rate_limits::POSTGRES_MIGRATION,
    // 6: conversation events.
    super::events::POSTGRES_MIGRATION,
    // 7: phone calls by call id.
    super::phone_calls::BY_CALL_ID,
];

/// The schema version this build writes.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

const _: () = assert!(MIGRATIONS.len() == POSTGRES_MIGRATIONS.len());

/// The outcome of [`migrate`] when the file is newer than this build.
pub(crate) enum Migration {
    /// The schema is at [`LATEST`].
    Current,
    /// The file has a version this build does not know; nothing was changed.
    Newer(i64),
}

/// Brings the schema up to [`LATEST`].
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<Migration> {
    // The common case, an up-to-date file, takes no write lock (a reader may open a file it
    // cannot write, and never waits for a busy writer).
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version == LATEST {
        return Ok(Migration::Current);
    }
    if version > LATEST {
        return Ok(Migration::Newer(version));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > LATEST {
        return Ok(Migration::Newer(version));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    tx.commit()?;
    Ok(Migration::Current)
}

/// Brings a PostgreSQL schema up to [`LATEST`]: in the connection's current schema (its
/// search path), so one database can hold several deployments' or tests' histories.
pub(crate) fn migrate_postgres(db: &Db) -> Result<Migration, DbError> {
    db.begin()?;
    let migrated = migrate_postgres_locked(db);
    match migrated {
        Ok(Migration::Current) => {
            db.commit()?;
            Ok(Migration::Current)
        }
        other => {
            db.rollback();
            other
        }
    }
}

fn migrate_postgres_locked(db: &Db) -> Result<Migration, DbError> {
    // Held until the transaction ends; per schema, so separate schemas migrate independently.
    db.query(
        "SELECT pg_advisory_xact_lock(hashtext(current_schema()))",
        params![],
    )?;
    db.batch("CREATE TABLE IF NOT EXISTS agent_schema (version BIGINT NOT NULL)")?;
    let version = match db.query_opt("SELECT version FROM agent_schema", params![])? {
        Some(row) => row.int(0)?,
        None => {
            db.execute("INSERT INTO agent_schema (version) VALUES (0)", params![])?;
            0
        }
    };
    if version > LATEST {
        return Ok(Migration::Newer(version));
    }
    for (index, sql) in POSTGRES_MIGRATIONS
        .iter()
        .enumerate()
        .skip(version.max(0) as usize)
    {
        db.batch(sql)?;
        db.execute(
            "UPDATE agent_schema SET version = ?1",
            params![index as i64 + 1],
        )?;
    }
    Ok(Migration::Current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{CallRecordState, ConversationId, HistoryStore};
    use crate::protocol::Item;

    /// A file written by the first release: only migration 1 ran.
    fn version_1_file(path: &std::path::Path) {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            r#"
            INSERT INTO conversations (id, agent, model, created_at, updated_at, title)
                VALUES ('conv_old', 'support', 'gpt-realtime', 1000, 2000, 'hi');
            INSERT INTO items (conversation_id, seq, item_key, item_type, call_id,
                               server_item_id, item, created_at)
                VALUES ('conv_old', 1, 'local_000001', 'message', NULL, NULL,
                        '{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}',
                        1000);
            "#,
        )
        .unwrap();
    }

    #[test]
    fn a_version_1_file_upgrades_and_keeps_its_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        version_1_file(&path);

        let mut store = HistoryStore::open(&path).unwrap();
        let id = ConversationId::new("conv_old");
        let items = store.items(&id).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].item, Item::user_text("hi"));
        assert_eq!(
            store.conversation(&id).unwrap().title.as_deref(),
            Some("hi")
        );
        // The new tables work on the old conversation.
        assert_eq!(
            store.call_started(&id, "c1", "f", "{}").unwrap(),
            CallRecordState::New
        );
        store
            .acquire_lease(&id, "run", std::time::Duration::from_secs(15))
            .unwrap();
        store
            .append_leased(
                &id,
                Some("run"),
                "call:c1",
                &Item::function_call("c1", "f", "{}"),
            )
            .unwrap();
        drop(store);

        let conn = Connection::open(&path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, LATEST);
        assert_eq!(LATEST, 7);
    }
}
