//! [`HistoryStore`]: conversations and their items in one SQLite file.
//!
//! The file is opened in WAL mode: a commit appends to the write-ahead log, readers (an
//! `agent history list` in another terminal) never block the writer, and whatever was
//! committed survives the process being killed. See [`Durability`] for power loss.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::Serialize;

use super::batch_cache::BatchCache;
use super::db::{Db, DbError, Dialect, PgConn, WriteTx, params};
use super::lease;
use super::schema::{self, Migration};
use super::{ConversationId, HistoryError, Timestamp, default_path};
use crate::protocol::{Item, Role};

/// How long a conversation title may be, in characters.
const TITLE_CHARS: usize = 80;

/// The listing order: most recently updated first; ids (creation order) break ties.
const NEWEST_FIRST: &str = "ORDER BY c.updated_at DESC, c.id DESC";

/// How much a commit must survive, i.e. SQLite's `synchronous` setting in WAL mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = NORMAL`: a commit survives the process crashing or being killed
    /// (SIGKILL), because the write-ahead log is in the OS's page cache. A power cut or kernel
    /// crash may lose the last commits, but never corrupts the file. Cheaper: no fsync per
    /// commit. Good for tests and throwaway stores.
    ProcessCrash,
    /// `synchronous = FULL`: every commit is fsynced before `append` returns, so it also
    /// survives power loss. The default: appends happen off the session's hot path (see
    /// [`HistoryWriter`](super::HistoryWriter)), a few per turn, so the fsync costs nothing
    /// anyone waits for, and a conversation is exactly what users expect to find again.
    #[default]
    PowerLoss,
}

/// How to open a [`HistoryStore`]; [`HistoryStore::open`] uses the defaults.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    durability: Durability,
    busy_timeout: Duration,
    timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::default(),
            busy_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
        }
    }
}

impl OpenOptions {
    /// The defaults: [`Durability::PowerLoss`], a five-second busy timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// How much a commit must survive.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// How long a write waits for another process's write lock before failing with
    /// [`HistoryError::Locked`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// PostgreSQL only: how long connecting, and then any one statement, may take before it
    /// fails with [`HistoryError::Unreachable`] (30 s by default), so a server that stops
    /// answering never hangs a session.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Opens the database at `location` and brings its schema up to date: an SQLite file
    /// (created, with its folder, if needed), or a PostgreSQL database when `location` is a
    /// `postgres://` (or `postgresql://`) URL.
    pub fn open(&self, location: impl AsRef<Path>) -> Result<HistoryStore, HistoryError> {
        if let Some(url) = location
            .as_ref()
            .to_str()
            .filter(|l| super::db::postgres::is_url(l))
        {
            return self.open_postgres(url);
        }
        let path = location.as_ref().to_path_buf();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| HistoryError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        if path.exists() {
            // Only a regular file: SQLite would block reading a FIFO, or write to a device.
            crate::fs_limits::check_regular(&path, "history database")
                .map_err(|error| HistoryError::NotAFile { error })?;
        }
        make_private(&path).map_err(|source| HistoryError::Permissions {
            path: path.clone(),
            source,
        })?;
        let conn = Connection::open(&path).map_err(|e| HistoryError::from_db(&path, e))?;
        self.prepare(conn, path)
    }

    /// Connects to PostgreSQL at `url`. Errors name the URL without its password. The
    /// database's search path picks the schema, so several deployments (or tests) can share
    /// one database: `?options=-csearch_path%3Dname`.
    fn open_postgres(&self, url: &str) -> Result<HistoryStore, HistoryError> {
        let path = PathBuf::from(super::db::postgres::redacted(url));
        let conn = PgConn::connect(url, self.timeout, self.busy_timeout)
            .map_err(|e| HistoryError::from_db(&path, e))?;
        let db = Db::Postgres(Box::new(conn));
        let migration =
            schema::migrate_postgres(&db).map_err(|e| HistoryError::from_db(&path, e))?;
        self.store(db, path, migration)
    }

    /// The store on `db`, once its schema is current (`migration` said how it went).
    fn store(
        &self,
        db: Db,
        path: PathBuf,
        migration: Migration,
    ) -> Result<HistoryStore, HistoryError> {
        match migration {
            Migration::Current => Ok(HistoryStore {
                db,
                path,
                durability: self.durability,
                grouped: false,
                sync_deferred: false,
                batch: BatchCache::default(),
            }),
            Migration::Newer(found) => Err(HistoryError::NewerSchema {
                path,
                found,
                supported: schema::LATEST,
            }),
        }
    }

    /// A store that lives in memory and is gone when dropped, for tests and dry runs.
    pub fn open_in_memory(&self) -> Result<HistoryStore, HistoryError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| HistoryError::from_db(&path, e))?;
        self.prepare(conn, path)
    }

    fn prepare(&self, mut conn: Connection, path: PathBuf) -> Result<HistoryStore, HistoryError> {
        let fail = |e| HistoryError::from_db(&path, e);
        conn.busy_timeout(self.busy_timeout).map_err(fail)?;
        // The first statement that reads the file: a corrupt or foreign file fails here.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") && path != Path::new(":memory:") {
            tracing::warn!(
                path = %path.display(),
                mode,
                "the history database is not in WAL mode (the file system may not support it); \
                 writes stay durable but block readers"
            );
        }
        let synchronous = match self.durability {
            Durability::ProcessCrash => "NORMAL",
            Durability::PowerLoss => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(fail)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(fail)?;
        // Every statement the writer runs stays prepared (see `db::sqlite::execute`).
        conn.set_prepared_statement_cache_capacity(64);
        let migration = schema::migrate(&mut conn).map_err(fail)?;
        self.store(Db::Sqlite(conn), path, migration)
    }
}

/// One stored conversation item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredItem {
    /// Position in the conversation: 1, 2, 3... in append order.
    pub seq: u64,
    /// The key it was appended under (see the module docs on item keys).
    pub key: String,
    /// The item, as it was appended.
    pub item: Item,
    /// The item's `id` when it had one (the server's id for server-created items).
    pub server_item_id: Option<String>,
    /// When it was appended.
    pub created_at: Timestamp,
}

impl StoredItem {
    /// The `(key, item)` pair a resumed session starts from (`SessionConfig::history`).
    pub fn into_keyed(self) -> (String, Item) {
        (self.key, self.item)
    }
}

/// A conversation as listed by [`HistoryStore::conversations`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationSummary {
    /// Its id.
    pub id: ConversationId,
    /// The agent's name, as given to [`HistoryStore::create_conversation`].
    pub agent: String,
    /// The model it talked to.
    pub model: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When the last item was appended (the creation time until then).
    pub updated_at: Timestamp,
    /// How many items it holds.
    pub item_count: u64,
    /// The first thing the user said, shortened to 80 characters; `None` until they said
    /// something with text (typed, or spoken and transcribed).
    pub title: Option<String>,
}

/// What [`HistoryStore::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The item's position (the earlier copy's, when it was a duplicate).
    pub seq: u64,
    /// `false` when the key or the call was already stored, so nothing was written.
    pub inserted: bool,
}

/// Conversations and their items in one SQLite file, or in PostgreSQL.
///
/// Calls block on disk I/O (an append with [`Durability::PowerLoss`] waits for an fsync). From
/// async code, use a [`HistoryWriter`](super::HistoryWriter), which owns the store on its own
/// thread, or wrap calls in `tokio::task::spawn_blocking`.
#[derive(Debug)]
pub struct HistoryStore {
    pub(super) db: Db,
    /// The file, or the PostgreSQL URL without its password: what errors name.
    pub(super) path: PathBuf,
    /// What every commit is synced for; call starts and lease writes relax it for their one
    /// transaction (see [`HistoryStore::relaxed`]).
    pub(super) durability: Durability,
    /// Whether the writer thread has opened a group commit (see [`HistoryStore::begin_group`]):
    /// each write is then a savepoint inside it instead of its own transaction.
    pub(super) grouped: bool,
    /// Whether commits skip the fsync because the [`HistoryWriter`](super::HistoryWriter)
    /// syncs the log itself on an interval (see [`HistoryStore::defer_sync`]).
    pub(super) sync_deferred: bool,
    /// What the open group commit already checked ([`BatchCache`]); empty outside one.
    pub(super) batch: BatchCache,
}

impl HistoryStore {
    /// Opens the database at `path` with the default [`OpenOptions`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, HistoryError> {
        OpenOptions::default().open(path)
    }

    /// Opens the database at [`default_path`].
    pub fn open_default() -> Result<Self, HistoryError> {
        Self::open(default_path()?)
    }

    /// An in-memory store with the default options, for tests.
    pub fn open_in_memory() -> Result<Self, HistoryError> {
        OpenOptions::default().open_in_memory()
    }

    /// The database file (`:memory:` for an in-memory store), or the PostgreSQL URL without
    /// its password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the store is on PostgreSQL (shared by every node) rather than a local file.
    pub fn is_shared(&self) -> bool {
        self.db.dialect() == Dialect::Postgres
    }

    pub(super) fn fail(&self, error: impl Into<DbError>) -> HistoryError {
        HistoryError::from_db(&self.path, error)
    }

    pub(super) fn unknown(&self, id: &str) -> HistoryError {
        HistoryError::UnknownConversation {
            id: id.to_owned(),
            path: self.path.clone(),
        }
    }

    /// Runs `work` (one small transaction) with `synchronous = NORMAL`, then restores the
    /// store's [`Durability`].
    ///
    /// For writes that must outlive the process but not the machine: in WAL mode a NORMAL
    /// commit has written its frames to the log with `write()` before it returns, so they are
    /// in the OS page cache and survive the process being killed; only the fsync is skipped
    /// (the next FULL commit or checkpoint syncs the whole log, these frames included). SQLite
    /// refuses to change `synchronous` inside a transaction, so it is set around one; it is a
    /// per-connection setting that touches no file, and other connections keep theirs.
    pub(super) fn relaxed<T>(
        &mut self,
        work: impl FnOnce(&mut Self) -> Result<T, HistoryError>,
    ) -> Result<T, HistoryError> {
        // Inside a group commit the batch commits with the store's durability, which is at
        // least as strong; `synchronous` cannot change inside a transaction anyway.
        // PostgreSQL commits are durable on the server whatever the client does.
        let Db::Sqlite(conn) = &self.db else {
            return work(self);
        };
        if self.durability == Durability::ProcessCrash || self.grouped || self.sync_deferred {
            return work(self);
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.fail(e))?;
        let result = work(self);
        // A failed transaction was rolled back when it was dropped, so no transaction is open
        // here and the restore cannot be refused for that reason.
        let Db::Sqlite(conn) = &self.db else {
            return result;
        };
        let restored = conn.pragma_update(None, "synchronous", "FULL");
        match restored {
            Ok(()) => result,
            Err(error) => {
                // Never carry on silently with weaker durability than the store was opened
                // with: the work's own error, or this one, reaches the caller.
                let error = self.fail(error);
                tracing::error!(%error, "could not restore synchronous = FULL on the history database");
                result.and(Err(error))
            }
        }
    }

    /// Commits stop waiting for the disk: they still write the log (so they survive the
    /// process being killed), and the caller syncs it with [`sync_log`](Self::sync_log). Only
    /// for [`Durability::PowerLoss`] stores on a file; returns whether syncing is now the
    /// caller's job. Used by the writer thread, which syncs on an interval and at every
    /// flush, so a busy session pays one fsync per interval instead of one per commit.
    pub(super) fn defer_sync(&mut self) -> Result<bool, HistoryError> {
        let Db::Sqlite(conn) = &self.db else {
            return Ok(false);
        };
        if self.durability != Durability::PowerLoss || self.path == Path::new(":memory:") {
            return Ok(false);
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| self.fail(e))?;
        self.sync_deferred = true;
        Ok(true)
    }

    /// Syncs the write-ahead log to disk: every commit made so far then survives a power cut.
    /// In WAL mode a commit is complete once its frames are in the log, and fsync is per
    /// file, so syncing the log through a handle of our own is what `synchronous = FULL`
    /// would have done at each commit. Without a log file (not in WAL mode), SQLite syncs
    /// at its own checkpoints and there is nothing to do.
    pub(super) fn sync_log(&self) -> Result<(), HistoryError> {
        let mut log = self.path.clone().into_os_string();
        log.push("-wal");
        let log = PathBuf::from(log);
        match std::fs::File::open(&log) {
            Ok(file) => file
                .sync_data()
                .map_err(|source| HistoryError::Sync { path: log, source }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(HistoryError::Sync { path: log, source }),
        }
    }

    /// Starts a conversation and returns its new id.
    pub fn create_conversation(
        &mut self,
        agent: &str,
        model: &str,
    ) -> Result<ConversationId, HistoryError> {
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        let id = insert_conversation(&tx, agent, model).map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(id)
    }

    /// Appends `item` to the end of the conversation, unless it is already stored.
    ///
    /// Idempotent: nothing is written, and the earlier copy's position is returned, when the
    /// conversation already holds an item with the same `key`, or — for a `function_call` or
    /// `function_call_output` — an item of the same type with the same `call_id`, whatever
    /// its key. The first copy wins; later copies are not compared with it.
    pub fn append(
        &mut self,
        conversation: &ConversationId,
        key: &str,
        item: &Item,
    ) -> Result<Appended, HistoryError> {
        self.append_leased(conversation, None, key, item)
    }

    /// [`append`](Self::append) by the run that leased the conversation as `holder`: fails
    /// with [`HistoryError::LeaseLost`], writing nothing, when another run has taken the lease
    /// over (see [`acquire_lease`](Self::acquire_lease)). `None` writes without the check.
    pub fn append_leased(
        &mut self,
        conversation: &ConversationId,
        holder: Option<&str>,
        key: &str,
        item: &Item,
    ) -> Result<Appended, HistoryError> {
        if key.is_empty() {
            return Err(HistoryError::EmptyKey {
                item_type: item.item_type().to_owned(),
            });
        }
        let json = item_json(item);
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let grouped = self.grouped;
        let tx = begin_item_write(
            &self.db,
            &mut self.batch,
            grouped,
            &path,
            conversation,
            holder,
        )?;
        let call_id = call_id(item);
        let seq = match self.batch.next_seq(conversation) {
            Some(seq) => seq,
            None => last_seq(&tx, conversation).map_err(fail)? + 1,
        };
        let now = Timestamp::now().as_millis();
        // The common case (a new item) is one statement; a duplicate key or call makes the
        // insert do nothing, and the earlier copy's position is looked up.
        let inserted = tx
            .execute(
                "INSERT INTO items
                     (conversation_id, seq, item_key, item_type, call_id, server_item_id, item,
                      created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT DO NOTHING",
                params![
                    conversation.as_str(),
                    seq,
                    key,
                    item.item_type(),
                    call_id,
                    item.id(),
                    &json,
                    now
                ],
            )
            .map_err(fail)?;
        if inserted == 0 {
            if let Some(existing) =
                stored_seq(&tx, conversation, key, item, call_id).map_err(fail)?
            {
                return Ok(Appended {
                    seq: seq_from(existing),
                    inserted: false,
                });
            }
            // Neither the key nor the call is stored, so the position was taken: the batch's
            // cache is stale, which no write should make happen. Say so rather than guess.
            self.batch.clear();
            return Err(fail(DbError::invariant(format!(
                "item position {seq} is already taken"
            ))));
        }
        let offers_title = item.as_message().is_some_and(|m| m.role == Role::User);
        let touch_now = !(grouped && self.batch.is_touched(conversation, offers_title));
        let titled = if touch_now {
            touch(&tx, conversation, item, now).map_err(fail)?
        } else {
            false
        };
        tx.commit().map_err(fail)?;
        if grouped {
            self.batch.took_seq(conversation, seq);
            if touch_now {
                self.batch.touched(conversation, titled);
            }
        }
        Ok(Appended {
            seq: seq_from(seq),
            inserted: true,
        })
    }

    /// Replaces the item stored under `key`, keeping its position; for items that change after
    /// they were appended (a transcript that arrives late, an assistant message truncated
    /// where the user interrupted). Returns the item's position.
    pub fn replace(
        &mut self,
        conversation: &ConversationId,
        key: &str,
        item: &Item,
    ) -> Result<u64, HistoryError> {
        self.replace_leased(conversation, None, key, item)
    }

    /// [`replace`](Self::replace) under a lease, checked as in
    /// [`append_leased`](Self::append_leased).
    pub fn replace_leased(
        &mut self,
        conversation: &ConversationId,
        holder: Option<&str>,
        key: &str,
        item: &Item,
    ) -> Result<u64, HistoryError> {
        let json = item_json(item);
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
        let seq = tx
            .query_opt(
                "UPDATE items SET item = ?3, item_type = ?4, call_id = ?5, server_item_id = ?6
                     WHERE conversation_id = ?1 AND item_key = ?2
                     RETURNING seq",
                params![
                    conversation.as_str(),
                    key,
                    &json,
                    item.item_type(),
                    call_id(item),
                    item.id()
                ],
            )
            .and_then(|row| row.map(|row| row.int(0)).transpose())
            .map_err(fail)?;
        let Some(seq) = seq else {
            return Err(HistoryError::UnknownItem {
                conversation: conversation.clone(),
                key: key.to_owned(),
            });
        };
        touch(&tx, conversation, item, Timestamp::now().as_millis()).map_err(fail)?;
        tx.commit().map_err(fail)?;
        Ok(seq_from(seq))
    }

    /// Stores `items` as a new conversation in one transaction (an import, or a conversation
    /// converted from Chat Completions messages) and returns its id.
    ///
    /// Keys follow the runtime's convention: `call:{call_id}` for function calls,
    /// `output:{call_id}` for their outputs, `import_000001`, `import_000002`... for the rest.
    pub fn import(
        &mut self,
        agent: &str,
        model: &str,
        items: &[Item],
    ) -> Result<ConversationId, HistoryError> {
        let path = self.path.clone();
        let fail = |e| HistoryError::from_db(&path, e);
        let tx = self.any_write().map_err(fail)?;
        let id = insert_conversation(&tx, agent, model).map_err(fail)?;
        let now = Timestamp::now().as_millis();
        let mut seq: i64 = 0;
        for (index, item) in items.iter().enumerate() {
            let key = match item {
                Item::FunctionCall(call) if !call.call_id.is_empty() => {
                    format!("call:{}", call.call_id)
                }
                Item::FunctionCallOutput(output) if !output.call_id.is_empty() => {
                    format!("output:{}", output.call_id)
                }
                _ => format!("import_{:06}", index + 1),
            };
            let inserted = tx
                .execute(
                    "INSERT INTO items
                             (conversation_id, seq, item_key, item_type, call_id, server_item_id,
                              item, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                         ON CONFLICT DO NOTHING",
                    params![
                        id.as_str(),
                        seq + 1,
                        &key,
                        item.item_type(),
                        call_id(item),
                        item.id(),
                        &item_json(item),
                        now
                    ],
                )
                .map_err(fail)?;
            if inserted == 1 {
                seq += 1;
                touch(&tx, &id, item, now).map_err(fail)?;
            }
        }
        tx.commit().map_err(fail)?;
        Ok(id)
    }

    /// The conversation's items in order.
    pub fn items(&self, conversation: &ConversationId) -> Result<Vec<StoredItem>, HistoryError> {
        if !conversation_exists(&self.db, conversation).map_err(|e| self.fail(e))? {
            return Err(self.unknown(conversation.as_str()));
        }
        let rows = self
            .db
            .query(
                "SELECT seq, item_key, item, server_item_id, created_at FROM items
                 WHERE conversation_id = ?1 ORDER BY seq",
                params![conversation.as_str()],
            )
            .map_err(|e| self.fail(e))?;
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let read = || -> Result<_, DbError> {
                Ok((
                    row.int(0)?,
                    row.text(1)?,
                    row.text(2)?,
                    row.opt_text(3)?,
                    row.int(4)?,
                ))
            };
            let (seq, key, json, server_item_id, created_at) = read().map_err(|e| self.fail(e))?;
            let seq = seq_from(seq);
            let value =
                serde_json::from_str(&json).map_err(|source| HistoryError::CorruptItem {
                    path: self.path.clone(),
                    conversation: conversation.clone(),
                    seq,
                    source,
                })?;
            items.push(StoredItem {
                seq,
                key,
                item: Item::from_value(value),
                server_item_id,
                created_at: Timestamp::from_millis(created_at),
            });
        }
        Ok(items)
    }

    /// Every conversation, most recently updated first.
    pub fn conversations(&self) -> Result<Vec<ConversationSummary>, HistoryError> {
        self.summaries(NEWEST_FIRST, params![])
    }

    /// One conversation's summary.
    pub fn conversation(&self, id: &ConversationId) -> Result<ConversationSummary, HistoryError> {
        self.summaries("WHERE c.id = ?1", params![id.as_str()])?
            .pop()
            .ok_or_else(|| self.unknown(id.as_str()))
    }

    /// Finds a conversation by its full id, a unique prefix of it, or `latest` (the most
    /// recently updated one), so people need not type whole ids.
    pub fn resolve(&self, query: &str) -> Result<ConversationId, HistoryError> {
        let query = query.trim();
        if query == "latest" {
            return self
                .summaries(&format!("{NEWEST_FIRST} LIMIT 1"), params![])?
                .pop()
                .map(|summary| summary.id)
                .ok_or_else(|| self.unknown(query));
        }
        let ids = self
            .db
            .query(
                "SELECT id FROM conversations
                 WHERE id = ?1 OR (?1 <> '' AND substr(id, 1, length(?1)) = ?1)
                 ORDER BY id = ?1 DESC, id DESC LIMIT 6",
                params![query],
            )
            .and_then(|rows| {
                rows.iter()
                    .map(|row| row.text(0))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| self.fail(e))?;
        match ids.as_slice() {
            [] => Err(self.unknown(query)),
            [only] => Ok(ConversationId::new(only.clone())),
            [first, ..] if first == query => Ok(ConversationId::new(first.clone())),
            _ => Err(HistoryError::Ambiguous {
                query: query.to_owned(),
                candidates: ids.into_iter().map(ConversationId::new).collect(),
            }),
        }
    }

    /// Conversation summaries; `tail` is the SQL after `FROM conversations c`.
    fn summaries(
        &self,
        tail: &str,
        params: &[super::db::Param<'_>],
    ) -> Result<Vec<ConversationSummary>, HistoryError> {
        let sql = format!(
            "SELECT c.id, c.agent, c.model, c.created_at, c.updated_at, c.title,
                    (SELECT COUNT(*) FROM items i WHERE i.conversation_id = c.id)
             FROM conversations c {tail}"
        );
        let rows = self.db.query(&sql, params).map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|row| {
                Ok(ConversationSummary {
                    id: ConversationId::new(row.text(0)?),
                    agent: row.text(1)?,
                    model: row.text(2)?,
                    created_at: Timestamp::from_millis(row.int(3)?),
                    updated_at: Timestamp::from_millis(row.int(4)?),
                    title: row.opt_text(5)?,
                    item_count: seq_from(row.int(6)?),
                })
            })
            .collect::<Result<Vec<_>, DbError>>()
            .map_err(|e| self.fail(e))
    }
}

/// Inserts a conversation row under a fresh id (retrying on the astronomically unlikely
/// collision).
fn insert_conversation(db: &Db, agent: &str, model: &str) -> Result<ConversationId, DbError> {
    let now = Timestamp::now().as_millis();
    loop {
        let id = ConversationId::generate();
        let inserted = db.execute(
            "INSERT INTO conversations (id, agent, model, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)
             ON CONFLICT (id) DO NOTHING",
            params![id.as_str(), agent, model, now],
        )?;
        if inserted == 1 {
            return Ok(id);
        }
    }
}

pub(super) fn conversation_exists(db: &Db, id: &ConversationId) -> Result<bool, DbError> {
    db.query_one(
        "SELECT EXISTS (SELECT 1 FROM conversations WHERE id = ?1)",
        params![id.as_str()],
    )?
    .flag(0)
}

/// Whether the conversation exists, locking it for the rest of the transaction where the
/// database locks rows: on PostgreSQL every write to a conversation (an item, a call record, a
/// lease) first locks its row, so two nodes writing one conversation take turns and the
/// lease check and the write stay one atomic step, as SQLite's `BEGIN IMMEDIATE` makes them.
fn lock_conversation(db: &Db, id: &ConversationId) -> Result<bool, DbError> {
    match db.dialect() {
        Dialect::Sqlite => conversation_exists(db, id),
        Dialect::Postgres => Ok(db
            .query_opt(
                "SELECT id FROM conversations WHERE id = ?1 FOR UPDATE",
                params![id.as_str()],
            )?
            .is_some()),
    }
}

/// Marks the conversation updated and gives it a title if it has none and `item` offers one;
/// returns whether `item` offered one (the conversation has a title now).
fn touch(db: &Db, conversation: &ConversationId, item: &Item, now: i64) -> Result<bool, DbError> {
    let title = title_of(item);
    let titled = title.is_some();
    db.execute(
        "UPDATE conversations
             SET updated_at = CASE WHEN updated_at > ?2 THEN updated_at ELSE ?2 END,
                 title = COALESCE(title, ?3)
         WHERE id = ?1",
        params![conversation.as_str(), now, title.as_ref()],
    )?;
    Ok(titled)
}

/// The conversation's last item position (0 when it has none).
fn last_seq(db: &Db, conversation: &ConversationId) -> Result<i64, DbError> {
    db.query_one(
        "SELECT COALESCE(MAX(seq), 0) FROM items WHERE conversation_id = ?1",
        params![conversation.as_str()],
    )?
    .int(0)
}

/// The position of the item already stored under `key`, or — for a call or its output — of
/// the item of the same type with the same `call_id`.
fn stored_seq(
    db: &Db,
    conversation: &ConversationId,
    key: &str,
    item: &Item,
    call_id: Option<&str>,
) -> Result<Option<i64>, DbError> {
    let by_key = db.query_opt(
        "SELECT seq FROM items WHERE conversation_id = ?1 AND item_key = ?2",
        params![conversation.as_str(), key],
    )?;
    let row = match (by_key, call_id) {
        (Some(row), _) => Some(row),
        (None, Some(call_id)) => db.query_opt(
            "SELECT seq FROM items
                 WHERE conversation_id = ?1 AND item_type = ?2 AND call_id = ?3",
            params![conversation.as_str(), item.item_type(), call_id],
        )?,
        (None, None) => None,
    };
    row.map(|row| row.int(0)).transpose()
}

/// The GA JSON of an item. Serializing an `Item` cannot fail (every field is a string, a
/// number or already a `Value`), so a failure would be a bug; it is stored as `null` rather
/// than losing the row, and reads back as an unknown item.
/// The item as stored: GA JSON, with every known secret value scrubbed (a key the server
/// echoed back, a token the model repeated).
pub(crate) fn item_json(item: &Item) -> String {
    let json = serde_json::to_string(item).unwrap_or_else(|error| {
        tracing::error!(%error, "could not serialize a conversation item; storing null");
        "null".to_owned()
    });
    crate::redact::scrub(&json).into_owned()
}

/// The database holds conversations: owner-only, and so are the `-wal` and `-shm` files
/// SQLite creates beside it (they take the database's permissions). A new database starts as
/// an empty file created with mode 0600; an existing one, and its companions, are tightened.
fn make_private(path: &Path) -> std::io::Result<()> {
    if !path.exists() {
        crate::private_file::create(path)?;
        return Ok(());
    }
    crate::private_file::restrict(path)?;
    for suffix in ["-wal", "-shm"] {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        let companion = Path::new(&companion);
        if companion.exists() {
            crate::private_file::restrict(companion)?;
        }
    }
    Ok(())
}

/// The `call_id` that makes a call or its output unique within a conversation.
fn call_id(item: &Item) -> Option<&str> {
    let id = match item {
        Item::FunctionCall(call) => &call.call_id,
        Item::FunctionCallOutput(output) => &output.call_id,
        _ => return None,
    };
    (!id.is_empty()).then_some(id.as_str())
}

/// A title from a user message: its text with whitespace collapsed, shortened.
fn title_of(item: &Item) -> Option<String> {
    let message = item.as_message().filter(|m| m.role == Role::User)?;
    let words: Vec<&str> = message
        .content
        .iter()
        .filter_map(|part| part.text())
        .flat_map(str::split_whitespace)
        .collect();
    if words.is_empty() {
        return None;
    }
    let text = words.join(" ");
    if text.chars().count() <= TITLE_CHARS {
        return Some(text);
    }
    let mut short: String = text.chars().take(TITLE_CHARS - 1).collect();
    short.push('…');
    Some(short)
}

/// Sequence numbers and counts are never negative; a negative one (a hand-edited file) reads
/// as 0 rather than wrapping.
fn seq_from(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

impl HistoryStore {
    /// Starts a write that may change anything a group commit's [`BatchCache`] holds (a new
    /// or deleted conversation, a lease, an import): the cache is cleared first.
    pub(super) fn any_write(&mut self) -> Result<WriteTx<'_>, DbError> {
        self.batch.clear();
        WriteTx::begin(&self.db, self.grouped)
    }

    /// Opens a group commit: until [`end_group`](Self::end_group), every write is a savepoint
    /// in one transaction (`BEGIN IMMEDIATE` on SQLite), so a batch of writes costs one commit (and one
    /// fsync) instead of one each. Used by the [`HistoryWriter`](super::HistoryWriter)'s
    /// thread for whatever is queued at once.
    pub(super) fn begin_group(&mut self) -> Result<(), HistoryError> {
        debug_assert!(!self.grouped, "group commits do not nest");
        self.db.begin().map_err(|e| self.fail(e))?;
        self.grouped = true;
        self.batch.clear();
        Ok(())
    }

    /// Commits the open group. On failure everything in it is rolled back (no transaction is
    /// left open, so the next write can start its own), and the error is the database's
    /// report, for the writer to give every write of the batch.
    pub(super) fn end_group(&mut self) -> Result<(), DbError> {
        self.grouped = false;
        self.batch.clear();
        self.db.commit()
    }
}

/// An immediate (write-locking) transaction on `conversation`, which must exist, and — when
/// `holder` is given — whose lease no other run has taken: every write to a conversation
/// starts here, so the lease check and the write are one transaction. For writes that may
/// change the lease (or anything else a [`BatchCache`] holds): the cache is cleared.
pub(super) fn begin_write<'c>(
    db: &'c Db,
    batch: &mut BatchCache,
    grouped: bool,
    path: &Path,
    conversation: &ConversationId,
    holder: Option<&str>,
) -> Result<WriteTx<'c>, HistoryError> {
    batch.clear();
    begin_item_write(db, batch, grouped, path, conversation, holder)
}

/// [`begin_write`] for an item or call-record write, which changes neither the conversation's
/// existence nor its lease: inside a group commit the checks run once per conversation.
pub(super) fn begin_item_write<'c>(
    db: &'c Db,
    batch: &mut BatchCache,
    grouped: bool,
    path: &Path,
    conversation: &ConversationId,
    holder: Option<&str>,
) -> Result<WriteTx<'c>, HistoryError> {
    let fail = |e| HistoryError::from_db(path, e);
    let tx = WriteTx::begin(db, grouped).map_err(fail)?;
    if grouped && batch.is_checked(conversation, holder) {
        return Ok(tx);
    }
    if !lock_conversation(&tx, conversation).map_err(fail)? {
        return Err(HistoryError::UnknownConversation {
            id: conversation.to_string(),
            path: path.to_owned(),
        });
    }
    if let Some(holder) = holder {
        lease::check_holder(&tx, path, conversation, holder)?;
    }
    if grouped {
        batch.checked(conversation, holder);
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testdb::{TestDb, on_both_backends};
    use crate::protocol::ContentPart;

    on_both_backends!(
        appends_in_order_and_reads_back,
        duplicates_are_stored_once,
        replace_keeps_the_position,
        listing_is_newest_first_and_ids_resolve,
        unknown_conversations_are_clear_errors,
        import_stores_a_whole_conversation,
        a_held_write_lock_times_out_clearly,
        newer_schemas_are_refused_and_reopening_is_a_no_op,
        a_damaged_item_row_is_a_clear_error,
        a_group_commit_checks_once_and_forgets_what_a_lease_write_may_change,
    );

    fn temp_db() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("history.sqlite3");
        (dir, path)
    }

    fn fast() -> OpenOptions {
        OpenOptions::new().durability(Durability::ProcessCrash)
    }

    fn appends_in_order_and_reads_back(db: &TestDb) {
        let mut store = db.open();
        let id = store
            .create_conversation("support", "gpt-realtime")
            .unwrap();
        let items = [
            ("local_000001", Item::user_text("  Where is\norder A1001? ")),
            ("call:c1", Item::function_call("c1", "lookup_order", "{}")),
            ("output:c1", Item::function_call_output("c1", "shipped")),
            (
                "item:msg_1",
                Item::assistant_text("Shipped.").with_id("msg_1"),
            ),
        ];
        for (n, (key, item)) in items.iter().enumerate() {
            let appended = store.append(&id, key, item).unwrap();
            assert_eq!(
                appended,
                Appended {
                    seq: n as u64 + 1,
                    inserted: true
                }
            );
        }
        let stored = store.items(&id).unwrap();
        assert_eq!(stored.len(), 4);
        for (n, (stored, (key, item))) in stored.iter().zip(&items).enumerate() {
            assert_eq!(stored.seq, n as u64 + 1);
            assert_eq!(&stored.key, key);
            assert_eq!(&stored.item, item);
        }
        assert_eq!(stored[3].server_item_id.as_deref(), Some("msg_1"));
        assert_eq!(stored[0].server_item_id, None);

        let summary = store.conversation(&id).unwrap();
        assert_eq!(summary.agent, "support");
        assert_eq!(summary.model, "gpt-realtime");
        assert_eq!(summary.item_count, 4);
        assert_eq!(summary.title.as_deref(), Some("Where is order A1001?"));
        assert!(summary.updated_at >= summary.created_at);
    }

    fn duplicates_are_stored_once(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        let call = Item::function_call("c1", "f", "{}");
        assert!(store.append(&id, "call:c1", &call).unwrap().inserted);
        // Same key again, e.g. from `response.done` after `response.output_item.done`.
        let again = store.append(&id, "call:c1", &call).unwrap();
        assert_eq!(
            again,
            Appended {
                seq: 1,
                inserted: false
            }
        );
        // The same call under another key (a replay that got a fresh key) is still one call.
        let replayed = call.clone().with_id("item_new");
        assert!(
            !store
                .append(&id, "item:item_new", &replayed)
                .unwrap()
                .inserted
        );
        // Its output is a different item type with the same call id: stored.
        let output = Item::function_call_output("c1", "ok");
        assert!(store.append(&id, "output:c1", &output).unwrap().inserted);
        assert!(!store.append(&id, "other", &output).unwrap().inserted);
        // Same key, different item: the first copy wins.
        let first = store.append(&id, "local_1", &Item::user_text("a")).unwrap();
        let second = store.append(&id, "local_1", &Item::user_text("b")).unwrap();
        assert_eq!(first.seq, second.seq);
        assert!(!second.inserted);
        let items = store.items(&id).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[2].item, Item::user_text("a"));
        // Keys are per conversation.
        let other = store.create_conversation("a", "m").unwrap();
        assert!(store.append(&other, "call:c1", &call).unwrap().inserted);
    }

    fn replace_keeps_the_position(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        let audio = |transcript: Option<&str>| {
            Item::message(
                Role::User,
                vec![ContentPart::InputAudio {
                    audio: None,
                    transcript: transcript.map(str::to_owned),
                }],
            )
        };
        store.append(&id, "item:u1", &audio(None)).unwrap();
        store
            .append(&id, "item:a1", &Item::assistant_text("Hi"))
            .unwrap();
        assert_eq!(store.conversation(&id).unwrap().title, None);
        assert_eq!(
            store
                .replace(&id, "item:u1", &audio(Some("hello")))
                .unwrap(),
            1
        );
        let items = store.items(&id).unwrap();
        assert_eq!(items[0].item, audio(Some("hello")));
        assert_eq!(
            store.conversation(&id).unwrap().title.as_deref(),
            Some("hello")
        );
        let error = store.replace(&id, "item:nope", &audio(None)).unwrap_err();
        assert!(matches!(error, HistoryError::UnknownItem { .. }), "{error}");
    }

    fn listing_is_newest_first_and_ids_resolve(db: &TestDb) {
        let mut store = db.open();
        let first = store.create_conversation("a", "m").unwrap();
        let second = store.create_conversation("b", "m").unwrap();
        store.append(&first, "k", &Item::user_text("x")).unwrap();
        let list = store.conversations().unwrap();
        assert_eq!(list.len(), 2);
        // `first` was updated last (or in the same millisecond, when the id breaks the tie).
        let order: Vec<&ConversationId> = list.iter().map(|s| &s.id).collect();
        if list[0].updated_at != list[1].updated_at {
            assert_eq!(order, [&first, &second]);
        }
        assert_eq!(store.resolve(first.as_str()).unwrap(), first);
        assert_eq!(store.resolve("latest").unwrap(), list[0].id);
        let unique_prefix = &second.as_str()[..second.as_str().len() - 1];
        if !first.as_str().starts_with(unique_prefix) {
            assert_eq!(store.resolve(unique_prefix).unwrap(), second);
        }
        let error = store.resolve("conv_").unwrap_err();
        assert!(matches!(error, HistoryError::Ambiguous { .. }), "{error}");
        let error = store.resolve("conv_nope").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("agent history list"), "{message}");
        assert!(store.resolve("").is_err());
    }

    fn unknown_conversations_are_clear_errors(db: &TestDb) {
        let mut store = db.open();
        let id = ConversationId::new("conv_missing");
        for error in [
            store.items(&id).unwrap_err(),
            store.conversation(&id).unwrap_err(),
            store.append(&id, "k", &Item::user_text("x")).unwrap_err(),
        ] {
            assert!(matches!(error, HistoryError::UnknownConversation { .. }));
            assert!(
                error.to_string().contains("`agent history list`"),
                "{error}"
            );
        }
        let id = store.create_conversation("a", "m").unwrap();
        let error = store.append(&id, "", &Item::user_text("x")).unwrap_err();
        assert!(matches!(error, HistoryError::EmptyKey { .. }), "{error}");
    }

    fn import_stores_a_whole_conversation(db: &TestDb) {
        let mut store = db.open();
        let items = vec![
            Item::user_text("hi"),
            Item::function_call("c1", "f", "{}"),
            Item::function_call_output("c1", "ok"),
            Item::function_call("c1", "f", "{}"),
            Item::assistant_text("done"),
        ];
        let id = store.import("support", "gpt-realtime", &items).unwrap();
        let stored = store.items(&id).unwrap();
        let keys: Vec<&str> = stored.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            ["import_000001", "call:c1", "output:c1", "import_000005"]
        );
        assert_eq!(
            stored.iter().map(|s| s.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            store.conversation(&id).unwrap().title.as_deref(),
            Some("hi")
        );
    }

    #[test]
    fn long_titles_are_shortened() {
        let long = "word ".repeat(40);
        let title = title_of(&Item::user_text(long)).unwrap();
        assert_eq!(title.chars().count(), TITLE_CHARS);
        assert!(title.ends_with('…'));
        assert_eq!(title_of(&Item::assistant_text("not the user")), None);
        assert_eq!(title_of(&Item::user_text("   ")), None);
    }

    /// What a crash leaves behind: commits in the write-ahead log, never checkpointed into the
    /// main file, and a connection that was never closed. Everything committed must be there.
    #[cfg(unix)]
    #[test]
    fn the_database_and_its_wal_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let (_dir, path) = temp_db();
        let mut store = fast().open(&path).unwrap();
        let id = store.create_conversation("a", "m").unwrap();
        store.append(&id, "k", &Item::user_text("private")).unwrap();
        assert_eq!(mode(&path), 0o600);
        for suffix in ["-wal", "-shm"] {
            let companion = PathBuf::from(format!("{}{suffix}", path.display()));
            assert_eq!(mode(&companion), 0o600, "{}", companion.display());
        }
        // A database created elsewhere with looser permissions is tightened on open.
        drop(store);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _store = fast().open(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn committed_items_survive_an_unclosed_connection() {
        let (_dir, path) = temp_db();
        let mut writer = HistoryStore::open(&path).unwrap();
        let id = writer
            .create_conversation("support", "gpt-realtime")
            .unwrap();
        for n in 0..20 {
            writer
                .append(
                    &id,
                    &format!("local_{n}"),
                    &Item::user_text(format!("message {n}")),
                )
                .unwrap();
        }
        assert!(
            path.with_extension("sqlite3-wal").exists(),
            "WAL mode is on"
        );

        // A second connection while the first is open (another process's `history show`).
        let reader = HistoryStore::open(&path).unwrap();
        assert_eq!(reader.items(&id).unwrap().len(), 20);
        drop(reader);

        // The writer goes away without closing: no checkpoint, no WAL clean-up.
        std::mem::forget(writer);
        let reopened = HistoryStore::open(&path).unwrap();
        let items = reopened.items(&id).unwrap();
        assert_eq!(items.len(), 20);
        assert_eq!(items[19].item, Item::user_text("message 19"));
        assert_eq!(reopened.conversation(&id).unwrap().item_count, 20);
    }

    #[test]
    fn corrupt_files_are_clear_errors() {
        let (_dir, path) = temp_db();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            b"this is not a database, it is a shopping list\n".repeat(100),
        )
        .unwrap();
        let error = HistoryStore::open(&path).unwrap_err();
        assert!(matches!(error, HistoryError::Corrupt { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("corrupt or not a history database"),
            "{message}"
        );
        assert!(message.contains("--history-db"), "{message}");
    }

    #[test]
    fn unwritable_locations_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        // A folder that cannot exist: its parent is a file.
        let error = HistoryStore::open(file.join("history.sqlite3")).unwrap_err();
        assert!(matches!(error, HistoryError::CreateDir { .. }), "{error:?}");
        assert!(error.to_string().contains("--history-db PATH"), "{error}");
        // A path that is a folder, not a file.
        let error = HistoryStore::open(dir.path()).unwrap_err();
        assert!(matches!(error, HistoryError::NotAFile { .. }), "{error:?}");
        assert!(error.to_string().contains("is a directory"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        match std::process::Command::new("mkfifo").arg(&path).status() {
            Ok(status) if status.success() => {}
            _ => {
                println!("skipped: mkfifo is not available");
                return;
            }
        }
        // SQLite blocks reading a FIFO: a regression fails here instead of hanging.
        let (send, receive) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = send.send(HistoryStore::open(&path).err().map(|e| e.to_string()));
        });
        let error = receive
            .recv_timeout(Duration::from_secs(30))
            .expect("opening a FIFO must not block")
            .expect("a FIFO is refused");
        assert!(error.contains("a FIFO (named pipe)"), "{error}");
    }

    fn a_held_write_lock_times_out_clearly(db: &TestDb) {
        let mut store = TestDb::options()
            .busy_timeout(Duration::from_millis(50))
            .open(db.location())
            .unwrap();
        let id = store.create_conversation("a", "m").unwrap();
        // Another process (or node) in the middle of a write to the conversation.
        let other = db.open();
        other.db.begin().unwrap();
        assert!(lock_conversation(&other.db, &id).unwrap());
        let error = store.append(&id, "k", &Item::user_text("x")).unwrap_err();
        assert!(matches!(error, HistoryError::Locked { .. }), "{error:?}");
        assert!(
            error.to_string().contains("locked by another process"),
            "{error}"
        );
        other.db.rollback();
        assert!(
            store
                .append(&id, "k", &Item::user_text("x"))
                .unwrap()
                .inserted
        );
    }

    fn newer_schemas_are_refused_and_reopening_is_a_no_op(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        drop(store);
        // Reopening runs no migration again and keeps the data.
        let store = db.open();
        assert_eq!(store.conversations().unwrap().len(), 1);
        assert_eq!(store.conversation(&id).unwrap().item_count, 0);
        drop(store);
        match db {
            TestDb::Sqlite { .. } => {
                db.execute(&format!("PRAGMA user_version = {}", schema::LATEST + 1))
            }
            TestDb::Postgres(_) => db.execute(&format!(
                "UPDATE agent_schema SET version = {}",
                schema::LATEST + 1
            )),
        }
        let error = TestDb::options().open(db.location()).unwrap_err();
        assert!(
            matches!(error, HistoryError::NewerSchema { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("upgrade `agent`"), "{error}");
    }

    fn a_damaged_item_row_is_a_clear_error(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("a", "m").unwrap();
        store.append(&id, "k", &Item::user_text("x")).unwrap();
        db.execute("UPDATE items SET item = '{broken'");
        let error = store.items(&id).unwrap_err();
        assert!(
            matches!(error, HistoryError::CorruptItem { seq: 1, .. }),
            "{error:?}"
        );
    }

    fn a_group_commit_checks_once_and_forgets_what_a_lease_write_may_change(db: &TestDb) {
        let mut store = db.open();
        let id = store.create_conversation("support", "m").unwrap();
        let ttl = std::time::Duration::from_secs(60);
        store.acquire_lease(&id, "run a", ttl).unwrap();

        store.begin_group().unwrap();
        let first = store
            .append_leased(&id, Some("run a"), "k1", &Item::user_text("one"))
            .unwrap();
        let again = store
            .append_leased(&id, Some("run a"), "k1", &Item::user_text("one"))
            .unwrap();
        let call = Item::function_call("c1", "f", "{}");
        let second = store
            .append_leased(&id, Some("run a"), "call:c1", &call)
            .unwrap();
        let same_call = store
            .append_leased(&id, Some("run a"), "other", &call)
            .unwrap();
        assert_eq!((first.seq, first.inserted), (1, true));
        assert_eq!((again.seq, again.inserted), (1, false));
        assert_eq!((second.seq, second.inserted), (2, true));
        assert_eq!((same_call.seq, same_call.inserted), (2, false));
        // Another run takes the conversation over inside the same batch: the cached check
        // must not let "run a" write on.
        store.release_lease(&id, "run a").unwrap();
        store.acquire_lease(&id, "run b", ttl).unwrap();
        let refused = store
            .append_leased(&id, Some("run a"), "k2", &Item::user_text("late"))
            .unwrap_err();
        assert!(
            matches!(refused, HistoryError::LeaseLost { .. }),
            "{refused}"
        );
        let third = store
            .append_leased(&id, Some("run b"), "k3", &Item::user_text("three"))
            .unwrap();
        assert_eq!(third.seq, 3);
        store.end_group().unwrap();

        // Outside the group nothing is cached: positions carry on from the store.
        let fourth = store
            .append_leased(&id, Some("run b"), "k4", &Item::user_text("four"))
            .unwrap();
        assert_eq!(fourth.seq, 4);
        let summary = store.conversation(&id).unwrap();
        assert_eq!(summary.item_count, 4);
        assert_eq!(summary.title.as_deref(), Some("one"));
    }
}
