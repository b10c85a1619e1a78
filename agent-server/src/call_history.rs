//! Every call in the history store: one conversation per call, with its platform, call id,
//! caller, callee and agent, written by the session like `agent run`'s conversations (so
//! `agent history list|show|export|delete` work on calls too), and the retention sweep that
//! deletes calls older than `[history] retention_days`.
//!
//! The store runs on its own writer thread; a call only queues writes. A store that fails
//! while the server runs is logged and the call goes on without history: a full disk must
//! not hang up on callers.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use agent_core::history::{
    ConversationId, ConversationWriter, FoundCall, HistoryError, HistoryStore, HistoryWriter,
    OrphanedCall, PhoneCallRecord, RateLimit, StoredItem, Timestamp, default_path,
};

use agent_core::{
    agent::Agent,
    session::{PriorCall, SessionConfig},
};
use tokio_util::sync::CancellationToken;

use crate::config::HistoryConfig;

/// How often the retention sweep runs.
pub const RETENTION_SWEEP: Duration = Duration::from_secs(3600);
/// How long a webhook waits for the shared store's rate-limit answer before going by this
/// node's own limit.
const SHARED_CHECK_DEADLINE: Duration = Duration::from_secs(2);
/// How long the server waits for the history to reach the disk when it stops.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// The server's call history.
#[derive(Debug, Clone)]
pub struct CallHistory {
    writer: HistoryWriter,
    retention: Option<Duration>,
    /// This node as it names itself in the leases it takes on calls: its node name, process
    /// and a random tag, so a restarted node is a new holder.
    holder: Arc<str>,
    /// How long a lease on a call lasts unless renewed (renewed every third of it).
    lease: Duration,
}

/// One call's conversation in the history.
#[derive(Debug, Clone)]
pub struct StoredCall {
    /// The conversation's id.
    pub id: ConversationId,
    /// What the session writes to (under this node's lease, when the store is shared).
    pub sink: ConversationWriter,
    /// Renews this node's lease on the call while it runs; stops when the last clone of the
    /// call is dropped or the call is finished.
    heartbeat: Option<Arc<Heartbeat>>,
    /// Cancelled when another node has taken the call over (this one stalled past its
    /// lease): this node must let go of the call.
    taken_over: CancellationToken,
}

impl StoredCall {
    /// Resolves when another node has taken the call over; never for a call on a store of
    /// its own.
    pub async fn taken_over(&self) {
        self.taken_over.cancelled().await;
    }
}

/// A call taken over from a node that died: its stored conversation, for the new session.
#[derive(Debug)]
pub struct AdoptedCall {
    /// The call, now leased by this node.
    pub stored: StoredCall,
    /// Its items so far, in order with their keys.
    pub items: Vec<(String, agent_core::protocol::Item)>,
    /// Its tool calls recorded so far: none of them runs again.
    pub prior_calls: Vec<PriorCall>,
}

impl AdoptedCall {
    /// Gives a new session what the dead node left: the stored conversation, the call
    /// records (so no recorded call runs again), the sink its writes go to under this node's
    /// lease, and the word that calls made while no node was attached are to be made again
    /// ([`SessionConfig::taken_over`](agent_core::session::SessionConfig::taken_over)). Returns the stored call, on which the call's end is recorded.
    pub fn apply(self, config: &mut agent_core::session::SessionConfig) -> StoredCall {
        config.history = self.items;
        config.prior_calls = self.prior_calls;
        config.taken_over = true;
        config.history_sink = Some(Arc::new(self.stored.sink.clone()));
        self.stored
    }
}

/// The instant, on this process's monotonic clock, of a call answered at `answered` (wall
/// clock, as stored, possibly by another node): a taken-over call's length limit counts from
/// there. Now, if the stored time is in the future or too far back.
pub fn answered_instant(answered: Timestamp) -> std::time::Instant {
    let elapsed = Timestamp::now()
        .as_millis()
        .saturating_sub(answered.as_millis())
        .max(0);
    std::time::Instant::now()
        .checked_sub(Duration::from_millis(u64::try_from(elapsed).unwrap_or(0)))
        .unwrap_or_else(std::time::Instant::now)
}

/// Stops a call's lease renewals when dropped.
#[derive(Debug)]
struct Heartbeat(CancellationToken);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

impl CallHistory {
    /// Opens the store `config` names, or `None` when calls are not stored. `node` names this
    /// node in the leases it takes on calls.
    pub fn open(config: &HistoryConfig, node: &str) -> Result<Option<CallHistory>, HistoryError> {
        if !config.store {
            return Ok(None);
        }
        let path = match &config.path {
            Some(path) => path.clone(),
            None => default_path()?,
        };
        let writer = HistoryWriter::spawn(HistoryStore::open(&path)?)?;
        // The tag tells a restarted node (same name, maybe the same pid in a container)
        // from the one that died; a tag of the clock does when no randomness is at hand.
        let tag = crate::random::token().map_or_else(
            |_| format!("{:x}", Timestamp::now().as_millis()),
            |token| token.chars().take(8).collect(),
        );
        let holder = format!("node {node} pid {} {tag}", std::process::id());
        Ok(Some(CallHistory {
            writer,
            retention: config.retention,
            holder: holder.into(),
            lease: config.lease,
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

    /// Takes a token from `client`'s bucket in the shared store: `Some(Ok(()))` or
    /// `Some(Err(wait))`; `None` when the store is a local file (each node limits on its own)
    /// or could not answer (the caller's own limit stands alone then).
    pub async fn take_token(&self, client: &str, limit: RateLimit) -> Option<Result<(), Duration>> {
        if !self.is_shared() {
            return None;
        }
        let client = client.to_owned();
        let taken = self
            .writer
            .run(move |store| store.take_token(&client, limit, Timestamp::now()));
        match tokio::time::timeout(SHARED_CHECK_DEADLINE, taken).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(error)) => {
                tracing::error!(%error, "could not check the shared rate limit; this node's own limit applies");
                None
            }
            Err(_) => {
                tracing::warn!(
                    "the shared rate limit did not answer within {SHARED_CHECK_DEADLINE:?}; this node's own limit applies"
                );
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
        // With a shared store the call is leased from the start, so a node that dies leaves a
        // lease that runs out, and another node can take the call over.
        let lease = self.is_shared().then(|| (self.holder.clone(), self.lease));
        self.writer
            .run(move |store| {
                store.record_phone_call(&recorded, &call)?;
                if let Some((holder, ttl)) = lease {
                    store.acquire_lease(&recorded, &holder, ttl)?;
                }
                Ok(())
            })
            .await?;
        Ok(self.leased(id))
    }

    /// How long this node's lease on a call lasts unless renewed.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Whether several nodes share the store (PostgreSQL), so calls are leased and taken
    /// over.
    pub fn is_shared(&self) -> bool {
        self.writer.is_shared()
    }

    /// The call `id`, written under this node's lease with a heartbeat renewing it when the
    /// store is shared; a plain conversation otherwise.
    fn leased(&self, id: ConversationId) -> StoredCall {
        let taken_over = CancellationToken::new();
        if !self.is_shared() {
            let sink = self.writer.conversation(id.clone());
            return StoredCall {
                id,
                sink,
                heartbeat: None,
                taken_over,
            };
        }
        let stop = CancellationToken::new();
        tokio::spawn(renew(
            self.writer.clone(),
            id.clone(),
            self.holder.clone(),
            self.lease,
            stop.clone(),
            taken_over.clone(),
        ));
        StoredCall {
            sink: self.writer.leased_conversation(id.clone(), &self.holder),
            id,
            heartbeat: Some(Arc::new(Heartbeat(stop))),
            taken_over,
        }
    }

    /// The running calls whose node let its lease run out (it died), oldest first.
    pub async fn orphaned_calls(&self, limit: usize) -> Result<Vec<OrphanedCall>, HistoryError> {
        self.writer
            .run(move |store| store.orphaned_phone_calls(Timestamp::now(), limit))
            .await
    }

    /// Takes the orphaned call over: this node's lease (of two nodes trying at once, one
    /// wins; the other gets [`HistoryError::ConversationInUse`]), with the conversation and
    /// the tool calls recorded so far.
    pub async fn adopt(&self, orphan: &OrphanedCall) -> Result<AdoptedCall, HistoryError> {
        self.adopt_conversation(orphan.conversation.clone()).await
    }

    /// [`adopt`](Self::adopt) for a call found another way than by the watcher: Twilio
    /// bringing back a call through `/twilio/resume`.
    pub async fn adopt_conversation(
        &self,
        id: ConversationId,
    ) -> Result<AdoptedCall, HistoryError> {
        let (leased, holder, ttl) = (id.clone(), self.holder.clone(), self.lease);
        let (items, calls) = self
            .writer
            .run(move |store| {
                store.acquire_lease(&leased, &holder, ttl)?;
                Ok((store.items(&leased)?, store.calls(&leased)?))
            })
            .await?;
        let items = items.into_iter().map(StoredItem::into_keyed).collect();
        let prior_calls = calls.into_iter().map(PriorCall::from).collect();
        Ok(AdoptedCall {
            stored: self.leased(id),
            items,
            prior_calls,
        })
    }

    /// The latest Twilio call with this `CallSid`, with its lease.
    pub async fn find_twilio_call(
        &self,
        call_sid: &str,
    ) -> Result<Option<FoundCall>, HistoryError> {
        let call_sid = call_sid.to_owned();
        self.writer
            .run(move |store| store.find_phone_call("twilio", &call_sid))
            .await
    }

    /// Records the end of a call whose lease another node still holds, when waiting for it
    /// has run past its budget (`/twilio/resume`): without this the caller is gone but the
    /// call would stay running in the history.
    pub async fn end_unreachable_call(
        &self,
        id: &ConversationId,
        outcome: &'static str,
    ) -> Result<(), HistoryError> {
        let id = id.clone();
        self.writer
            .run(move |store| store.finish_phone_call(&id, outcome))
            .await
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

    /// Records how the call ended, and lets go of this node's lease on it.
    pub async fn finish_call(&self, call: &StoredCall, outcome: &'static str) {
        if let Some(heartbeat) = &call.heartbeat {
            heartbeat.0.cancel();
        }
        let id = call.id.clone();
        let holder = call.heartbeat.is_some().then(|| self.holder.clone());
        let finished = self
            .writer
            .run(move |store| {
                store.finish_phone_call(&id, outcome)?;
                if let Some(holder) = holder {
                    store.release_lease(&id, &holder)?;
                }
                Ok(())
            })
            .await;
        if let Err(err) = finished {
            tracing::error!("could not record the end of a call in the history: {err}");
        }
    }

    /// Records the end of a call nobody can take over (its media stream died with its node)
    /// under this node's lease, so it is never left running in the history.
    pub async fn close_orphan(
        &self,
        orphan: &OrphanedCall,
        outcome: &'static str,
    ) -> Result<(), HistoryError> {
        let (id, holder, ttl) = (orphan.conversation.clone(), self.holder.clone(), self.lease);
        self.writer
            .run(move |store| {
                store.acquire_lease(&id, &holder, ttl)?;
                store.finish_phone_call(&id, outcome)?;
                store.release_lease(&id, &holder)
            })
            .await
    }

    /// Forgets what nodes share that has served its time: rate-limit buckets idle for an hour
    /// (full again long before) and webhook ids older than `webhooks_remembered`.
    pub async fn prune_shared(&self, webhooks_remembered: Duration) {
        if !self.is_shared() {
            return;
        }
        let now = Timestamp::now().as_millis();
        let before = |age: Duration| {
            Timestamp::from_millis(
                now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)),
            )
        };
        let (buckets, webhooks) = (
            before(Duration::from_secs(3_600)),
            before(webhooks_remembered),
        );
        let pruned = self
            .writer
            .run(move |store| {
                store.prune_rate_buckets(buckets)?;
                store.prune_webhook_ids(webhooks)
            })
            .await;
        if let Err(error) = pruned {
            tracing::warn!(%error, "could not prune the rate-limit buckets and webhook ids nodes share");
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

/// Renews `holder`'s lease on the call every third of `ttl` until `stop`. A renewal that
/// fails is retried at the next beat (a database blip must not give the call away); a lost
/// lease (another node took the call over after this one stalled) ends the renewals and
/// cancels `taken_over`.
async fn renew(
    writer: HistoryWriter,
    id: ConversationId,
    holder: Arc<str>,
    ttl: Duration,
    stop: CancellationToken,
    taken_over: CancellationToken,
) {
    let beat = ttl / 3;
    let mut renewed_at = std::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(beat) => {}
        }
        // A lease not renewed for its whole length may be another node's by now (this process
        // stalled, or lost the database): go on with the call and both nodes would answer it.
        // So it lets go, as a lease holder must once its lease may have run out.
        if renewed_at.elapsed() >= ttl {
            tracing::error!(conversation = %id, "this node could not renew its lease on the call for {ttl:?}; letting go of it, as another node may have taken it over");
            taken_over.cancel();
            return;
        }
        let renewed = tokio::time::timeout(beat, writer.renew_lease(&id, &holder, ttl)).await;
        match renewed {
            Ok(Ok(_)) => renewed_at = std::time::Instant::now(),
            Ok(Err(HistoryError::LeaseLost { .. })) => {
                tracing::error!(conversation = %id, "another node took this call over (this node stalled past its lease); letting go of it");
                taken_over.cancel();
                return;
            }
            Ok(Err(error)) => {
                tracing::warn!(conversation = %id, %error, "the call's lease was not renewed")
            }
            Err(_) => {
                tracing::warn!(conversation = %id, "the call's lease renewal took longer than {beat:?}")
            }
        }
    }
}
