//! The store tests' databases: each test that does not depend on SQLite's files runs once on
//! SQLite and once on PostgreSQL ([`on_both_backends!`]), so the two backends pass one suite.

use std::path::PathBuf;

use agent_testkit::postgres::TestSchema;

use super::{Durability, HistoryStore, OpenOptions};

/// A fresh, empty database for one test.
pub(crate) enum TestDb {
    /// A file in a temporary folder.
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    /// A schema of its own on the server `AGENT_POSTGRES_URL` names.
    Postgres(TestSchema),
}

impl TestDb {
    pub(crate) fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.sqlite3");
        TestDb::Sqlite { _dir: dir, path }
    }

    /// `None` (after one skip line) without a configured server.
    pub(crate) fn postgres(test: &str) -> Option<TestDb> {
        TestSchema::create(test).map(TestDb::Postgres)
    }

    /// What [`HistoryStore::open`] takes: the file, or the schema's URL.
    pub(crate) fn location(&self) -> PathBuf {
        match self {
            TestDb::Sqlite { path, .. } => path.clone(),
            TestDb::Postgres(schema) => PathBuf::from(schema.url()),
        }
    }

    /// Options for tests: no fsync per commit on SQLite, short deadlines on PostgreSQL.
    pub(crate) fn options() -> OpenOptions {
        OpenOptions::new()
            .durability(Durability::ProcessCrash)
            .timeout(std::time::Duration::from_secs(20))
    }

    /// A new connection to the database: two of them are two processes (or two nodes).
    pub(crate) fn open(&self) -> HistoryStore {
        Self::options().open(self.location()).unwrap()
    }

    /// Runs SQL on the database directly (to damage a row on purpose, say).
    pub(crate) fn execute(&self, sql: &str) {
        self.open().db.batch(sql).unwrap();
    }
}

/// Runs each named test function (`fn name(db: &TestDb)`) on a fresh SQLite file and on a
/// fresh PostgreSQL schema: `sqlite::name` and `postgres::name`. `async` ones are
/// `async fn name(db: &TestDb)`, run on a tokio runtime.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::history::testdb::TestDb::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    if let Some(db) = $crate::history::testdb::TestDb::postgres(stringify!($name)) {
                        super::$name(&db);
                    }
                }
            )*
        }
    };
    (async $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&$crate::history::testdb::TestDb::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = $crate::history::testdb::TestDb::postgres(stringify!($name)) {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
