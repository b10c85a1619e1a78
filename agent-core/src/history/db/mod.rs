//! The small SQL layer under [`HistoryStore`](super::HistoryStore): one connection, SQLite or
//! PostgreSQL, behind the few operations the store needs.
//!
//! The store's logic (idempotent appends, leases checked in the write's own transaction, call
//! records, group commits) is written once, against [`Db`]. Its SQL is the subset both
//! databases read the same way: `?1`-style placeholders (rewritten to `$1` for PostgreSQL),
//! `ON CONFLICT`, `RETURNING`, savepoints, `CASE` instead of the two-argument `max`/`min` that
//! only SQLite has. Where the two differ — how a write takes its lock, how the schema is
//! versioned, what orders call records — the store asks [`Db::dialect`].
//!
//! Values cross the layer as [`Param`]s (integers, text, NULL: all the store stores) and come
//! back as [`Row`]s of owned cells, so neither driver's types leak into the store, and both
//! backends report failures through one [`DbError`], sorted by [`DbError::kind`] into the same
//! [`HistoryError`](super::HistoryError) variants.

pub(crate) mod postgres;
mod sqlite;

use std::time::Duration;

pub(crate) use postgres::PgConn;

/// Which database a [`Db`] talks to, where their SQL differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// One connection to the history database.
#[derive(Debug)]
pub(crate) enum Db {
    /// An SQLite file (or memory), through rusqlite.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL database, through tokio-postgres (boxed: its runtime and statement cache
    /// would make every SQLite store carry their size).
    Postgres(Box<PgConn>),
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

impl From<i64> for Param<'_> {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(value: &'a str) -> Self {
        Param::Text(value)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(value: &'a String) -> Self {
        Param::Text(value)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Param::Null, Into::into)
    }
}

/// `params![a, b, c]`: the placeholders' values, in order.
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::history::db::Param::from($value)),*][..]
    };
}
pub(crate) use params;

/// One value read back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    /// PostgreSQL's booleans (SQLite answers a comparison with an integer).
    Bool(bool),
    /// A type the store never stores (a float, a blob): reading it is a [`DbError::Decode`].
    Other(&'static str),
}

/// One row read back: owned cells, read by position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub(crate) Vec<Cell>);

impl Row {
    fn cell(&self, index: usize) -> Result<&Cell, DbError> {
        self.0.get(index).ok_or(DbError::Decode {
            column: index,
            expected: "a column",
            found: "no such column",
        })
    }

    fn mismatch(&self, index: usize, expected: &'static str) -> DbError {
        let found = match self.0.get(index) {
            Some(Cell::Null) => "NULL",
            Some(Cell::Int(_)) => "an integer",
            Some(Cell::Text(_)) => "text",
            Some(Cell::Bool(_)) => "a boolean",
            Some(Cell::Other(name)) => name,
            None => "no such column",
        };
        DbError::Decode {
            column: index,
            expected,
            found,
        }
    }

    /// An integer, or `None` for NULL.
    pub(crate) fn opt_int(&self, index: usize) -> Result<Option<i64>, DbError> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Int(value) => Ok(Some(*value)),
            _ => Err(self.mismatch(index, "an integer")),
        }
    }

    /// An integer that must be there.
    pub(crate) fn int(&self, index: usize) -> Result<i64, DbError> {
        self.opt_int(index)?
            .ok_or_else(|| self.mismatch(index, "an integer"))
    }

    /// Text, or `None` for NULL.
    pub(crate) fn opt_text(&self, index: usize) -> Result<Option<String>, DbError> {
        match self.cell(index)? {
            Cell::Null => Ok(None),
            Cell::Text(value) => Ok(Some(value.clone())),
            _ => Err(self.mismatch(index, "text")),
        }
    }

    /// Text that must be there.
    pub(crate) fn text(&self, index: usize) -> Result<String, DbError> {
        self.opt_text(index)?
            .ok_or_else(|| self.mismatch(index, "text"))
    }

    /// A truth value: PostgreSQL's boolean, or SQLite's 0/1.
    pub(crate) fn flag(&self, index: usize) -> Result<bool, DbError> {
        match self.cell(index)? {
            Cell::Bool(value) => Ok(*value),
            Cell::Int(value) => Ok(*value != 0),
            _ => Err(self.mismatch(index, "a boolean")),
        }
    }
}

/// A failure of either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite's report.
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL's (or the connection's) report. Shown with the server's message and code
    /// (tokio-postgres's own text is only "db error"), and not chained as a source, so the
    /// message is not printed twice.
    #[error("{}", postgres::describe(.0))]
    Postgres(tokio_postgres::Error),
    /// The PostgreSQL server did not answer within the store's deadline.
    #[error("the database did not answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    /// A column held something the store never writes there (a hand-edited database).
    #[error("column {column} holds {found}, where {expected} was expected")]
    Decode {
        /// The column's position in the row.
        column: usize,
        /// What the store reads there.
        expected: &'static str,
        /// What it found.
        found: &'static str,
    },
    /// A failure carried over from an earlier one (a group commit's, given to each of its
    /// writes), as its kind and message.
    #[error("{message}")]
    Copied {
        /// How the original is sorted.
        kind: DbErrorKind,
        /// The original's message.
        message: String,
    },
}

/// What a [`DbError`] means for the person running `agent`: the same on both backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    /// Not a database, or damaged pages.
    Corrupt,
    /// Another connection holds the lock (SQLite's busy timeout, PostgreSQL's lock timeout,
    /// deadlock or serialization failure).
    Locked,
    /// The file or folder cannot be written, or the disk is full.
    Unwritable,
    /// The server cannot be reached or the connection broke.
    Unreachable,
    /// Anything else.
    Other,
}

impl From<tokio_postgres::Error> for DbError {
    fn from(error: tokio_postgres::Error) -> Self {
        DbError::Postgres(error)
    }
}

impl DbError {
    /// Sorts the failure, so the store reports the same variant whichever backend it runs on.
    pub fn kind(&self) -> DbErrorKind {
        match self {
            DbError::Sqlite(error) => sqlite::kind(error),
            DbError::Postgres(error) => postgres::kind(error),
            DbError::Timeout(_) => DbErrorKind::Unreachable,
            DbError::Decode { .. } => DbErrorKind::Corrupt,
            DbError::Copied { kind, .. } => *kind,
        }
    }

    /// A copy to hand to several callers (every write of a failed group commit).
    pub(crate) fn copy(&self) -> DbError {
        DbError::Copied {
            kind: self.kind(),
            message: self.to_string(),
        }
    }

    /// A violated invariant the store detected itself.
    pub(crate) fn invariant(message: String) -> DbError {
        DbError::Copied {
            kind: DbErrorKind::Other,
            message,
        }
    }
}

impl Db {
    /// Which SQL dialect this connection speaks.
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs one statement from the connection's statement cache; returns how many rows it
    /// changed.
    pub(crate) fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(conn) => sqlite::execute(conn, sql, params),
            Db::Postgres(conn) => conn.execute(sql, params),
        }
    }

    /// Runs one query from the statement cache and returns every row.
    pub(crate) fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        match self {
            Db::Sqlite(conn) => sqlite::query(conn, sql, params),
            Db::Postgres(conn) => conn.query(sql, params),
        }
    }

    /// The first row of a query, if there is one.
    pub(crate) fn query_opt(
        &self,
        sql: &str,
        params: &[Param<'_>],
    ) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row of a query that always returns one (an aggregate, `EXISTS`).
    pub(crate) fn query_one(&self, sql: &str, params: &[Param<'_>]) -> Result<Row, DbError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| DbError::invariant(format!("no row from: {sql}")))
    }

    /// Runs statements without parameters or results (transaction control, migrations).
    pub(crate) fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(conn) => conn.execute_batch(sql).map_err(DbError::from),
            Db::Postgres(conn) => conn.batch(sql),
        }
    }

    /// Whether a transaction is open on the connection.
    pub(crate) fn in_transaction(&self) -> bool {
        match self {
            Db::Sqlite(conn) => !conn.is_autocommit(),
            Db::Postgres(conn) => conn.in_transaction(),
        }
    }

    /// Opens a transaction for a write. SQLite's `BEGIN IMMEDIATE` takes the database's write
    /// lock at once (so the reads that follow cannot go stale); PostgreSQL's locks are per
    /// row, taken by the write itself (see [`WriteTx`] and the store's conversation lock).
    pub(crate) fn begin(&self) -> Result<(), DbError> {
        let sql = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.batch(sql)?;
        if let Db::Postgres(conn) = self {
            conn.set_in_transaction(true);
        }
        Ok(())
    }

    /// Commits the open transaction. On failure nothing of it is kept and no transaction is
    /// left open.
    pub(crate) fn commit(&self) -> Result<(), DbError> {
        let committed = self.batch("COMMIT");
        if let Db::Postgres(conn) = self {
            // PostgreSQL ends the transaction either way (a failed COMMIT rolls back).
            conn.set_in_transaction(false);
        }
        if committed.is_err() && self.in_transaction() {
            let _ = self.batch("ROLLBACK");
        }
        committed
    }

    /// Rolls the open transaction back, if one is open.
    pub(crate) fn rollback(&self) {
        if self.in_transaction() {
            let _ = self.batch("ROLLBACK");
        }
        if let Db::Postgres(conn) = self {
            conn.set_in_transaction(false);
        }
    }
}

/// One write: its own transaction, or a savepoint inside the writer thread's group commit.
/// Either way a failed write rolls back alone (dropping it uncommitted rolls back) and the rest
/// of a batch is unaffected.
pub(crate) struct WriteTx<'c> {
    db: &'c Db,
    nested: bool,
    done: std::cell::Cell<bool>,
}

impl<'c> WriteTx<'c> {
    /// Starts a write: a savepoint when a group commit is open (`grouped`), else a
    /// transaction of its own.
    pub(crate) fn begin(db: &'c Db, grouped: bool) -> Result<Self, DbError> {
        if grouped {
            db.batch("SAVEPOINT write")?;
        } else {
            db.begin()?;
        }
        Ok(WriteTx {
            db,
            nested: grouped,
            done: std::cell::Cell::new(false),
        })
    }

    /// Commits the transaction, or releases the savepoint into the open batch (whose `COMMIT`
    /// makes it durable).
    pub(crate) fn commit(self) -> Result<(), DbError> {
        self.done.set(true);
        if self.nested {
            self.db.batch("RELEASE SAVEPOINT write")
        } else {
            self.db.commit()
        }
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if self.done.get() {
            return;
        }
        if self.nested {
            // Undo this write only; the batch goes on. A failure here leaves the batch's own
            // transaction to fail at its COMMIT, which every write of it then reports.
            let _ = self
                .db
                .batch("ROLLBACK TO SAVEPOINT write; RELEASE SAVEPOINT write");
        } else {
            self.db.rollback();
        }
    }
}
