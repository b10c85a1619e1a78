//! A PostgreSQL schema of its own for each test, on the server `AGENT_POSTGRES_URL` names.
//!
//! Tests of the PostgreSQL history store (and of several `agent serve` nodes sharing one) need a
//! real server. Each test gets a fresh schema, named after it and made unique, and a URL whose
//! search path points at it (`options=-csearch_path=...`), so tests run in parallel on one
//! database without seeing each other's tables; the schema is dropped when the
//! [`TestSchema`] is.
//!
//! Without `AGENT_POSTGRES_URL` a test skips: [`TestSchema::create`] prints one line saying so
//! and returns `None`. With `AGENT_POSTGRES_REQUIRED=1` (CI) a missing URL or an unreachable
//! server fails the test instead, as `REALTIME_SPEC_REQUIRED` and `AGENT_BROWSER_REQUIRED` do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The server's URL, e.g. `postgres://root@127.0.0.1:5432/test`.
pub const URL_ENV: &str = "AGENT_POSTGRES_URL";
/// `1` makes a missing or unreachable server a failure instead of a skip.
pub const REQUIRED_ENV: &str = "AGENT_POSTGRES_REQUIRED";

/// How long creating or dropping a schema may take.
const DEADLINE: Duration = Duration::from_secs(20);

/// A schema that lives as long as this value.
#[derive(Debug)]
pub struct TestSchema {
    server: String,
    name: String,
    url: String,
}

impl TestSchema {
    /// A fresh schema for the test `label`, or `None` (after one line on stderr) when no
    /// server is configured and none is required.
    pub fn create(label: &str) -> Option<TestSchema> {
        let required = std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1");
        let server = match std::env::var(URL_ENV) {
            Ok(url) if !url.is_empty() => url,
            _ if required => panic!(
                "{REQUIRED_ENV}=1 but {URL_ENV} is not set; point it at a PostgreSQL server, \
                 e.g. postgres://root@127.0.0.1:5432/test"
            ),
            _ => {
                eprintln!("skipped {label}: set {URL_ENV} to run it against PostgreSQL");
                return None;
            }
        };
        match TestSchema::create_on(&server, label) {
            Ok(schema) => Some(schema),
            Err(error) if required => {
                panic!("cannot create a test schema on {URL_ENV}: {error}")
            }
            Err(error) => {
                eprintln!("skipped {label}: PostgreSQL at {URL_ENV} is unusable ({error})");
                None
            }
        }
    }

    /// A fresh schema for `label` on the server at `server` (a benchmark names its server
    /// itself), or why it could not be made.
    pub fn create_on(server: &str, label: &str) -> Result<TestSchema, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let tag: String = label
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(30)
            .collect::<String>()
            .to_ascii_lowercase();
        let name = format!(
            "t_{tag}_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            fastrand::u32(..)
        );
        run(server, &format!("CREATE SCHEMA {name}"))?;
        let url = with_search_path(server, &name);
        Ok(TestSchema {
            server: server.to_owned(),
            name,
            url,
        })
    }

    /// The URL of the schema: the server's, with the search path set to it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The schema's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs SQL in the schema (a test that damages a row on purpose, say).
    pub fn execute(&self, sql: &str) -> Result<(), String> {
        run(&self.url, sql)
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        if let Err(error) = run(
            &self.server,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        ) {
            eprintln!("could not drop test schema {}: {error}", self.name);
        }
    }
}

/// `url` with `options=-csearch_path=<schema>` added to its query.
fn with_search_path(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-csearch_path%3D{schema}")
}

/// Runs `sql` on its own connection, on a thread of its own (so it works inside a tokio test
/// too), within [`DEADLINE`].
fn run(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let outcome = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|runtime| {
                runtime.block_on(async {
                    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                        .await
                        .map_err(|e| describe(&e))?;
                    tokio::spawn(connection);
                    client.batch_execute(&sql).await.map_err(|e| describe(&e))
                })
            });
        let _ = done.send(outcome);
    });
    result
        .recv_timeout(DEADLINE)
        .map_err(|_| format!("no answer within {} s", DEADLINE.as_secs()))?
}

fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}
