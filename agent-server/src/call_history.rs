//! Every call in the history store: one conversation per call, with its platform, call id,
//! caller, callee and agent, written by the session like `agent run`'s conversations (so
//! `agent history list|show|export|delete` work on calls too), and the retention sweep that
//! deletes calls older than `[history] retention_days`.
//!
//! The store runs on its own writer thread; a call only queues writes. A store that fails
//! while the server runs is logged and the call goes on without history: a full disk must
//! not hang up on callers.

use std::time::{Duration, SystemTime};

use agent_core::history::{
    ConversationId, ConversationWriter, HistoryError, HistoryStore, HistoryWriter, PhoneCallRecord,
    Timestamp, default_path,
};

use agent_core::{agent::Agent, session::SessionConfig};

use crate::config::HistoryConfig;

/// How often the retention sweep runs.
pub const RETENTION_SWEEP: Duration = Duration::from_secs(3600);
/// How long the server waits for the history to reach the disk when it stops.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// The server's call history.
#[derive(Debug, Clone)]
pub struct CallHistory {
    writer: HistoryWriter,
    retention: Option<Duration>,
}

/// One call's conversation in the history.
#[derive(Debug, Clone)]
pub struct StoredCall {
    /// The conversation's id.
    pub id: ConversationId,
    /// What the session writes to.
    pub sink: ConversationWriter,
}

impl CallHistory {
    /// Opens the store `config` names, or `None` when calls are not stored.
    pub fn open(config: &HistoryConfig) -> Result<Option<CallHistory>, HistoryError> {
        if !config.store {
            return Ok(None);
        }
        let path = match &config.path {
            Some(path) => path.clone(),
            None => default_path()?,
        };
        let writer = HistoryWriter::spawn(HistoryStore::open(&path)?)?;
        Ok(Some(CallHistory {
            writer,
            retention: config.retention,
        }))
    }

    /// Whether the webhook `id` is seen for the first time by any node sharing the store;
    /// `None` when the store is a local file (each node then remembers ids itself) or the
    /// shared store could not answer (the caller falls back to its own memory).
    pub async fn claim_webhook(&self, id: &str, remember: std::time::Duration) -> Option<bool> {
        if !self.writer.is_shared() {
            return None;
        }
        match self.writer.claim_webhook(id, remember).await {
            Ok(first) => Some(first),
            Err(error) => {
                tracing::error!(%error, "could not check the webhook id in the shared store; deduplicating on this node only");
                None
            }
        }
    }

    /// Starts the conversation of a call answered by `agent` (its model `model`).
    pub async fn start_call(
        &self,
        agent: &str,
        model: &str,
        call: PhoneCallRecord,
    ) -> Result<StoredCall, HistoryError> {
        let id = self.writer.create_conversation(agent, model).await?;
        let recorded = id.clone();
        self.writer
            .run(move |store| store.record_phone_call(&recorded, &call))
            .await?;
        let sink = self.writer.conversation(id.clone());
        Ok(StoredCall { id, sink })
    }

    /// Starts the conversation of a call in the history of the server (if it keeps one) and
    /// points `config`'s history sink at it. A store that fails is logged and the call goes
    /// on without history: a full disk must not keep anyone from being answered.
    pub async fn store_call(
        history: Option<&CallHistory>,
        agent: &Agent,
        call: PhoneCallRecord,
        config: &mut SessionConfig,
    ) -> Option<StoredCall> {
        let history = history?;
        let call_id = call.call_id.clone();
        match history
            .start_call(agent.name(), &agent.spec().model, call)
            .await
        {
            Ok(stored) => {
                config.history_sink = Some(std::sync::Arc::new(stored.sink.clone()));
                Some(stored)
            }
            Err(err) => {
                tracing::error!(call_id, "the call is not stored in the history: {err}");
                None
            }
        }
    }

    /// Records how the call ended.
    pub async fn finish_call(&self, id: &ConversationId, outcome: &'static str) {
        let id = id.clone();
        let finished = self
            .writer
            .run(move |store| store.finish_phone_call(&id, outcome))
            .await;
        if let Err(err) = finished {
            tracing::error!("could not record the end of a call in the history: {err}");
        }
    }

    /// Deletes the calls past the retention time, if one is set; returns how many.
    pub async fn apply_retention(&self) -> usize {
        let Some(retention) = self.retention else {
            return 0;
        };
        let Some(cutoff) = SystemTime::now().checked_sub(retention) else {
            return 0;
        };
        let millis = cutoff
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        match self
            .writer
            .run(move |store| store.delete_phone_calls_before(Timestamp::from_millis(millis)))
            .await
        {
            Ok(deleted) => {
                if deleted > 0 {
                    tracing::info!("history retention: deleted {deleted} call(s)");
                }
                deleted
            }
            Err(err) => {
                tracing::error!("history retention failed: {err}");
                0
            }
        }
    }

    /// Waits (at most [`FLUSH_DEADLINE`]) until everything queued is on disk.
    pub async fn flush(&self) {
        match tokio::time::timeout(FLUSH_DEADLINE, self.writer.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::error!("the call history could not be flushed: {err}"),
            Err(_) => tracing::error!("the call history did not flush within {FLUSH_DEADLINE:?}"),
        }
    }
}
