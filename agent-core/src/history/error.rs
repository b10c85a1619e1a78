//! What can go wrong with the history store, each with what to do about it.

use std::path::PathBuf;
use std::time::Duration;

use super::ConversationId;
use super::db::{DbError, DbErrorKind};

/// An error of the history store or its writer thread.
///
/// Every message names the database (its file, or its URL without the password) and says how to get past the problem, because the
/// person reading it is usually at a terminal with `agent history` or `agent run --resume`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// No location for the default database could be derived from the environment.
    #[error(
        "cannot find a place for the history database: AGENT_HISTORY_DB is not set and there is \
         no home directory (HOME) for the user data folder; set AGENT_HISTORY_DB or pass \
         --history-db PATH"
    )]
    NoDataDir,

    /// The folder that should hold the database could not be created.
    #[error(
        "cannot create the folder for the history database {}: {source}; \
         pass --history-db PATH (or set AGENT_HISTORY_DB) to use a writable location",
        path.display()
    )]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// The path exists but is not a regular file (a directory, device or FIFO, which SQLite
    /// could block on or scribble over).
    #[error("{error}; pass --history-db PATH (or set AGENT_HISTORY_DB) to use a database file")]
    NotAFile {
        /// What the path is instead (shown in the message, so not chained).
        error: crate::fs_limits::ReadError,
    },

    /// The database file could not be created owner-only, or tightened to it.
    #[error(
        "cannot make the history database {} readable by its owner only ({source}); check that \
         you own the file and its folder, or pass --history-db PATH to use another file",
        path.display()
    )]
    Permissions {
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },

    /// The file exists but is not a SQLite database, or its pages (or rows) are damaged.
    #[error(
        "the history database {} is corrupt or not a history database ({source}); move it aside \
         (a new one is created in its place) or pass --history-db PATH to use another file",
        path.display()
    )]
    Corrupt {
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
        /// The database's report.
        #[source]
        source: DbError,
    },

    /// Another connection held a lock for longer than the busy timeout.
    #[error(
        "the history database {} is locked by another process ({source}); wait for it to \
         finish, or pass --history-db PATH to use another file",
        path.display()
    )]
    Locked {
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
        /// The database's report.
        #[source]
        source: DbError,
    },

    /// The file or its folder cannot be opened or written.
    #[error(
        "cannot write the history database {} ({source}); check that the file and its \
         folder are writable and the disk is not full, or pass --history-db PATH",
        path.display()
    )]
    Unwritable {
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
        /// The database's report.
        #[source]
        source: DbError,
    },

    /// The database was written by a newer version of this program.
    #[error(
        "the history database {} has schema version {found}, but this build knows versions \
         up to {supported}; upgrade `agent`, or pass --history-db PATH to use another file",
        path.display()
    )]
    NewerSchema {
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
        /// The `user_version` found in the file.
        found: i64,
        /// The newest version this build can read and write.
        supported: i64,
    },

    /// No conversation has this id.
    #[error(
        "no conversation `{id}` in the history database {}; `agent history list` shows the \
         stored ids",
        path.display()
    )]
    UnknownConversation {
        /// The id asked for.
        id: String,
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
    },

    /// A conversation-id prefix matched more than one conversation.
    #[error(
        "`{query}` matches {} conversations ({}); give more of the id",
        candidates.len(),
        candidates.iter().map(ConversationId::as_str).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous {
        /// The prefix asked for.
        query: String,
        /// Some of the ids it matches.
        candidates: Vec<ConversationId>,
    },

    /// An item key was empty; keys are what makes appends idempotent.
    #[error(
        "cannot store a {item_type} item without a key: pass a key that stays the same when \
         the item is seen again (see `agent_core::history` on item keys)"
    )]
    EmptyKey {
        /// The item's `type`.
        item_type: String,
    },

    /// `replace` named an item that is not stored.
    #[error("conversation `{conversation}` has no item with key `{key}`; append it first")]
    UnknownItem {
        /// The conversation.
        conversation: ConversationId,
        /// The key asked for.
        key: String,
    },

    /// Another run holds the lease on the conversation, so this run may not write to it.
    #[error(
        "conversation `{id}` is in use by another run ({holder}) in the history database {}; \
         its lease expires in {}. Wait for that run to end, or — if it crashed — for the lease \
         to expire (a live run keeps renewing it), then resume again; or start a new \
         conversation without --resume",
        path.display(),
        seconds(expires_in)
    )]
    ConversationInUse {
        /// The conversation.
        id: ConversationId,
        /// Who holds the lease, as that run described itself (e.g. `pid 1234 on host x`).
        holder: String,
        /// How long until the lease expires unless its holder renews it.
        expires_in: Duration,
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
    },

    /// This run's lease was taken over by another run, so its write was refused to keep the
    /// two runs' items apart.
    #[error(
        "this run no longer holds the lease on conversation `{id}` in the history database {}: \
         {}, so this write was refused (this run most likely stalled, or could not renew the \
         lease, for longer than the lease lasts). End this run and resume the conversation \
         (`agent run --resume {id}`) once the other run has ended",
        path.display(),
        match holder_now {
            Some(holder) => format!("another run ({holder}) has taken it over"),
            None => "another run took it over and has since let it go".to_owned(),
        }
    )]
    LeaseLost {
        /// The conversation.
        id: ConversationId,
        /// Who holds the lease now; `None` when the run that took it over has released it or
        /// let it expire.
        holder_now: Option<String>,
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
    },

    /// A tool call was recorded without a `call_id`, which is what makes it run only once.
    #[error(
        "cannot record a tool call of conversation `{conversation}` without a call_id: pass \
         the call_id the model gave the call, which stays the same when the call is seen again"
    )]
    EmptyCallId {
        /// The conversation.
        conversation: ConversationId,
    },

    /// A stored item is not valid JSON (the file was edited or damaged).
    #[error(
        "item {seq} of conversation `{conversation}` in {} is not valid JSON ({source}); \
         the file was edited or damaged — export what is readable with \
         `agent history export`, or move the file aside",
        path.display()
    )]
    CorruptItem {
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
        /// The conversation.
        conversation: ConversationId,
        /// The item's position.
        seq: u64,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },

    /// The PostgreSQL server could not be reached, refused the connection, or stopped
    /// answering.
    #[error(
        "cannot reach the history database {} ({source}); check that the server runs and that \
         the URL, user and database are right, or pass --history-db PATH to use an SQLite file",
        path.display()
    )]
    Unreachable {
        /// The database's URL, without its password.
        path: PathBuf,
        /// The connection's report.
        #[source]
        source: DbError,
    },

    /// Any other database failure.
    #[error("history database {}: {source}", path.display())]
    Database {
        /// The database: its file, or its PostgreSQL URL without the password.
        path: PathBuf,
        /// The database's report.
        #[source]
        source: DbError,
    },

    /// The write-ahead log could not be synced to disk: what was committed since the last
    /// sync survives the process, but not a power cut.
    #[error(
        "cannot sync the history database's log {} to disk: {source}; check the disk and its free space",
        path.display()
    )]
    Sync {
        /// The log file.
        path: PathBuf,
        /// The operating system's report.
        #[source]
        source: std::io::Error,
    },

    /// The writer thread could not be started.
    #[error("cannot start the history writer thread: {0}")]
    Thread(#[source] std::io::Error),

    /// The writer thread is gone, so the write was not made.
    #[error(
        "the history writer thread has stopped, so this write was not stored; this is a bug \
         in agent — please report it with the log"
    )]
    WriterGone,
}

/// A duration for a person: `12.3 s`.
fn seconds(duration: &Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

impl HistoryError {
    /// Sorts a database error into the variant that tells the user what to do; both
    /// backends land in the same variants (see [`DbError::kind`]).
    pub(crate) fn from_db(path: &std::path::Path, source: impl Into<DbError>) -> Self {
        let source = source.into();
        let path = path.to_path_buf();
        match source.kind() {
            DbErrorKind::Corrupt => HistoryError::Corrupt { path, source },
            DbErrorKind::Locked => HistoryError::Locked { path, source },
            DbErrorKind::Unwritable => HistoryError::Unwritable { path, source },
            DbErrorKind::Unreachable => HistoryError::Unreachable { path, source },
            DbErrorKind::Other => HistoryError::Database { path, source },
        }
    }
}
