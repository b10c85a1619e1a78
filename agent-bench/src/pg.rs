//! A plain PostgreSQL connection for what the benchmark reads about the server itself
//! (`pg_stat_activity`, settings), with a runtime of its own so it works from any thread.

use anyhow::Context;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// One connection.
pub struct Pg {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl Pg {
    /// Connects to `url`.
    pub fn connect(url: &str) -> anyhow::Result<Pg> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let client = runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(url, NoTls)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
            tokio::spawn(connection);
            anyhow::Ok(client)
        })?;
        Ok(Pg { runtime, client })
    }

    /// The rows `sql` returns, every value as text (NULL as an empty string).
    pub fn rows(&self, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let messages = self.runtime.block_on(self.client.simple_query(sql))?;
        Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or_default().to_owned())
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    /// The first value of the first row of `sql`.
    pub fn value(&self, sql: &str) -> anyhow::Result<String> {
        self.rows(sql)?
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .with_context(|| format!("no value from {sql}"))
    }
}
