//! [`Db::Postgres`](super::Db::Postgres): a tokio-postgres connection behind the same
//! synchronous calls as SQLite's.
//!
//! The store is synchronous: it runs on the [`HistoryWriter`](crate::history::HistoryWriter)'s
//! thread, in `agent history`, and in tests that read what a session wrote, some of them inside
//! a tokio runtime. So the connection gets a runtime of its own (one worker thread, which also
//! drives the socket), and every call blocks on the client's future with futures-executor,
//! which — unlike a runtime's `block_on` — may run anywhere, even on another runtime's thread.
//!
//! Every call has a deadline ([`PgConn::deadline`]): a server that stops answering fails the
//! call with [`DbError::Timeout`] instead of hanging a session. The server's own
//! `statement_timeout` and `lock_timeout` are set too, so a statement waiting for a lock ends
//! on the server rather than only in the client.

use std::cell::{Cell as StdCell, RefCell};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::time::Duration;

use bytes::BytesMut;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Config, NoTls, Statement};

use super::{Cell, DbError, DbErrorKind, Param, Row};

/// URL schemes that select PostgreSQL.
const SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// Whether `location` names a PostgreSQL database rather than an SQLite file.
pub(crate) fn is_url(location: &str) -> bool {
    SCHEMES.iter().any(|scheme| {
        location.len() >= scheme.len() && location[..scheme.len()].eq_ignore_ascii_case(scheme)
    })
}

/// The URL as it may be shown: without its password (in the user part or a `password=`
/// parameter), so errors and logs can name the database.
pub(crate) fn redacted(location: &str) -> String {
    let Ok(mut url) = url::Url::parse(location) else {
        return "postgres://(unparsable URL)".to_owned();
    };
    if url.password().is_some() {
        let _ = url.set_password(None);
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| !key.eq_ignore_ascii_case("password"))
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// One connection to PostgreSQL, with its runtime and prepared statements.
pub(crate) struct PgConn {
    client: Client,
    /// Always `Some` until dropped (see the `Drop` impl).
    runtime: Option<tokio::runtime::Runtime>,
    /// The runtime's handle, which calls enter for its timer.
    handle: tokio::runtime::Handle,
    /// Statements by the store's SQL text (`?1` placeholders), prepared once per connection.
    statements: RefCell<HashMap<String, Statement>>,
    /// Whether `BEGIN` was sent and neither `COMMIT` nor `ROLLBACK` yet.
    in_transaction: StdCell<bool>,
    /// How long any one call may take.
    deadline: Duration,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl PgConn {
    /// Connects to the database at `url`. `deadline` bounds the connection and every call
    /// after it; `lock_wait` is how long a statement waits for another connection's lock.
    pub(crate) fn connect(
        url: &str,
        deadline: Duration,
        lock_wait: Duration,
    ) -> Result<Self, DbError> {
        let mut config: Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(deadline);
        }
        if config.get_application_name().is_none() {
            config.application_name("agent");
        }
        // A node that dies with a transaction open must not hold its row locks for long.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("agent-history-pg")
            .enable_all()
            .build()
            .map_err(|error| DbError::Copied {
                kind: DbErrorKind::Other,
                message: format!("cannot start the PostgreSQL connection's runtime: {error}"),
            })?;
        let (client, connection) = {
            let _context = runtime.enter();
            block_on(deadline, config.connect(NoTls))?
        };
        runtime.spawn(async move {
            if let Err(error) = connection.await {
                tracing::warn!(error = %describe(&error), "the history database connection ended");
            }
        });
        let conn = PgConn {
            client,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            statements: RefCell::default(),
            in_transaction: StdCell::new(false),
            deadline,
        };
        let millis = |d: Duration| d.as_millis().max(1);
        conn.batch(&format!(
            "SET statement_timeout = {}; SET lock_timeout = {}",
            millis(deadline),
            millis(lock_wait)
        ))?;
        Ok(conn)
    }

    /// Blocks on `future` with this connection's runtime and deadline.
    fn wait<T>(
        &self,
        future: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DbError> {
        let _context = self.handle.enter();
        block_on(self.deadline, future)
    }

    fn statement(&self, sql: &str) -> Result<Statement, DbError> {
        if let Some(statement) = self.statements.borrow().get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.wait(self.client.prepare(&placeholders(sql)))?;
        self.statements
            .borrow_mut()
            .insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }

    pub(super) fn execute(&self, sql: &str, params: &[Param<'_>]) -> Result<u64, DbError> {
        let statement = self.statement(sql)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        self.wait(self.client.execute(&statement, &values))
    }

    pub(super) fn query(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        let statement = self.statement(sql)?;
        let values: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
        let rows = self.wait(self.client.query(&statement, &values))?;
        rows.iter().map(convert).collect()
    }

    pub(super) fn batch(&self, sql: &str) -> Result<(), DbError> {
        self.wait(self.client.batch_execute(sql))
    }

    pub(super) fn in_transaction(&self) -> bool {
        self.in_transaction.get()
    }

    pub(super) fn set_in_transaction(&self, open: bool) {
        self.in_transaction.set(open);
    }
}

impl Drop for PgConn {
    /// A runtime dropped the ordinary way blocks until its tasks end, which tokio refuses
    /// inside another runtime (a store dropped in an async test or task): so it is let go in
    /// the background, and the connection task ends when the client is gone.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Runs `future` to completion on this thread, failing with [`DbError::Timeout`] after
/// `deadline`. Must be called inside the connection runtime's context (for the timer).
fn block_on<T>(
    deadline: Duration,
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, DbError> {
    match futures_executor::block_on(tokio::time::timeout(deadline, future)) {
        Ok(result) => result.map_err(DbError::from),
        Err(_) => Err(DbError::Timeout(deadline)),
    }
}

/// The store writes `?1`, `?2`...; PostgreSQL reads `$1`, `$2`... The store's SQL has no `?`
/// inside string literals, so a plain rewrite is exact.
fn placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn convert(row: &tokio_postgres::Row) -> Result<Row, DbError> {
    let mut cells = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let cell = match *column.type_() {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(index)?
                .map_or(Cell::Null, Cell::Int),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(index)?
                .map_or(Cell::Null, |v| Cell::Int(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(index)?
                .map_or(Cell::Null, |v| Cell::Int(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(index)?
                .map_or(Cell::Null, Cell::Bool),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => row
                .try_get::<_, Option<String>>(index)?
                .map_or(Cell::Null, Cell::Text),
            _ => Cell::Other("a value of an unexpected type"),
        };
        cells.push(cell);
    }
    Ok(Row(cells))
}

impl ToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match *self {
            Param::Null => Ok(IsNull::Yes),
            Param::Int(value) => match *ty {
                Type::INT8 => value.to_sql(ty, out),
                Type::INT4 => i32::try_from(value)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(value)?.to_sql(ty, out),
                Type::BOOL => (value != 0).to_sql(ty, out),
                _ => Err(format!("an integer cannot be bound to a {ty} parameter").into()),
            },
            Param::Text(value) => value.to_sql(ty, out),
        }
    }

    /// Any type: [`to_sql`](Self::to_sql) converts or refuses per value.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A PostgreSQL failure as a person reads it: the server's message and code, or the client's
/// report with its cause (tokio-postgres's own `Display` says only "db error").
pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} ({})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

pub(super) fn kind(error: &tokio_postgres::Error) -> DbErrorKind {
    let Some(code) = error.code() else {
        // No server answer at all: the connection could not be made or broke.
        return DbErrorKind::Unreachable;
    };
    let class = &code.code()[..2];
    if [
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::QUERY_CANCELED,
    ]
    .contains(code)
    {
        DbErrorKind::Locked
    } else if [
        SqlState::DISK_FULL,
        SqlState::INSUFFICIENT_PRIVILEGE,
        SqlState::READ_ONLY_SQL_TRANSACTION,
    ]
    .contains(code)
    {
        DbErrorKind::Unwritable
    } else if [SqlState::DATA_CORRUPTED, SqlState::INDEX_CORRUPTED].contains(code) {
        DbErrorKind::Corrupt
    } else if class == "08"
        || class == "28"
        || class == "57"
        || *code == SqlState::INVALID_CATALOG_NAME
    {
        // Connection exceptions, authentication, the server shutting down, no such database.
        DbErrorKind::Unreachable
    } else {
        DbErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_and_nothing_else() {
        assert_eq!(
            placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?12 OR d = '?'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 OR d = '?'"
        );
    }

    #[test]
    fn urls_are_recognised_and_shown_without_their_password() {
        assert!(is_url("postgres://u@h/db"));
        assert!(is_url("PostgreSQL://u@h/db"));
        assert!(!is_url("/var/lib/agent/history.sqlite3"));
        assert!(!is_url("postgres"));
        let shown = redacted(
            "postgres://root:s3cret@127.0.0.1:5432/test?password=other&options=-csearch_path%3Dx",
        );
        assert!(
            !shown.contains("s3cret") && !shown.contains("other"),
            "{shown}"
        );
        assert!(
            shown.starts_with("postgres://root@127.0.0.1:5432/test?options="),
            "{shown}"
        );
    }
}
