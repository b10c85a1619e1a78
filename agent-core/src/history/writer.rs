//! [`HistoryWriter`]: the store on its own thread, so a session never waits for the disk.
//!
//! A session appends on its hot path (every completed item) while an fsync can take
//! milliseconds. The writer owns the [`HistoryStore`] on a dedicated OS thread and takes work
//! over an unbounded channel: queueing never blocks and never needs an async runtime, so it
//! works from a session task, a `Drop` or a plain thread alike. Jobs run one at a time in the
//! order they were queued, which keeps a conversation's items in order and makes
//! [`HistoryWriter::flush`] a barrier for everything queued before it.
//!
//! **Group commit.** Whatever is queued when a batch is due (up to 256 jobs) runs as one
//! batch: one `BEGIN IMMEDIATE`, each write a savepoint of its own (a failed write rolls back
//! alone), one `COMMIT`. A batch is due at once when it holds a job someone awaits (a tool
//! call's start record, a read, a flush); fire-and-forget writes (the session sink's items
//! and call finishes) wait up to [`COMMIT_DELAY`] for company ([`batch_queue`](crate::batch_queue)).
//! So a turn's items cost about one commit, not one per burst, and the thread wakes once or
//! twice a turn. Every reply is sent only after its batch committed, so a resolved [`Pending`]
//! means the write is in the write-ahead log: it survives the process being killed (a call's
//! start record is there before its tool runs).
//!
//! **Group sync.** With [`Durability::PowerLoss`](super::Durability::PowerLoss) the fsync
//! does not follow every commit: the thread syncs the log within [`SYNC_INTERVAL`] (100 ms) of
//! the oldest unsynced commit, and at every [`flush`](HistoryWriter::flush) and when it
//! stops. What a power cut can lose is bounded by that interval; what a crash of the process
//! can lose is the batch being written and the fire-and-forget writes of the last
//! [`COMMIT_DELAY`], whose replies had not been sent.
//!
//! Every call returns a [`Pending`] that can be awaited for the result or dropped. A failed
//! write nobody awaited is logged (`tracing::error!`) and the first such error is returned by
//! the next [`flush`](HistoryWriter::flush), so errors are never lost silently. The thread
//! ends when the last handle is dropped, after finishing the queue; a process that exits
//! right away must await `flush` first or lose what is still queued.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{
    Appended, CallRecord, CallRecordState, ConversationEvent, ConversationId, HistoryError,
    HistoryStore, Lease, StoredEvent, StoredItem,
};
use crate::batch_queue::{JobQueue, Next, StopOnExit, Urgency};
use crate::protocol::Item;

/// The most jobs one group commit takes; more wait for the next batch, so one huge burst
/// cannot hold the write lock (and every reply) for long.
const MAX_BATCH: usize = 256;

/// One queued piece of work: it runs against the store and returns what to do once its batch
/// is committed (send its reply).
type Job = Box<dyn FnOnce(&mut HistoryStore) -> Reply + Send>;

/// Sends a job's result, given how its batch's commit went.
type Reply = Box<dyn FnOnce(&mut WriterState, Option<&CommitFailed>) + Send>;

/// The first error of a write whose [`Pending`] was dropped, kept for the next flush. Shared:
/// the writer thread records a failure whose `Pending` was dropped before the reply was sent,
/// and the `Pending`'s `Drop` records one whose reply arrived but was never read.
type Unobserved = Arc<Mutex<Option<HistoryError>>>;

fn record(unobserved: &Unobserved, error: HistoryError) {
    tracing::error!(%error, "a history write failed");
    unobserved
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert(error);
}

fn take(unobserved: &Unobserved) -> Option<HistoryError> {
    unobserved
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
}

/// How long a committed write may wait for its fsync. Commits reach the write-ahead log at
/// once (they survive the process being killed); the log is synced to disk at most this long
/// after, and at every [`HistoryWriter::flush`]. So a power cut loses at most this much of a
/// conversation, and a busy session pays one fsync per interval instead of one per batch.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// How long a fire-and-forget write may wait for others to share its commit. A session's
/// writes come in bursts a few milliseconds apart (a response's outputs, then its answer);
/// this lets a burst, and the next awaited write, commit together. A process killed meanwhile
/// loses those writes, as it would lose a batch being written; a tool call's start record is
/// awaited and never waits.
pub const COMMIT_DELAY: Duration = Duration::from_millis(25);

/// What the writer thread owns.
struct WriterState {
    store: HistoryStore,
    unobserved: Unobserved,
    /// Set while commits wait for the interval's sync (see [`SYNC_INTERVAL`]): when the
    /// oldest unsynced commit was made.
    unsynced_since: Option<Instant>,
    /// Whether this thread syncs the log ([`HistoryStore::defer_sync`]).
    syncs: bool,
    /// [`COMMIT_DELAY`], longer in tests that must not depend on the scheduler.
    commit_delay: Duration,
    /// How many times the log was synced (what [`serve`](Self::serve) returns, for tests).
    synced: u64,
}

/// A batch whose `COMMIT` failed: nothing in it was stored.
struct CommitFailed(super::db::DbError);

impl CommitFailed {
    /// The failure as each job of the batch reports it.
    fn error(&self, store: &HistoryStore) -> HistoryError {
        HistoryError::from_db(store.path(), self.0.copy())
    }
}

impl WriterState {
    /// Serves the queue until every handle is dropped, one due batch at a time, syncing the
    /// log within [`SYNC_INTERVAL`] of each commit; returns how many syncs that took.
    fn serve(mut self, queue: &JobQueue<Job>) -> u64 {
        loop {
            let idle_until = self.unsynced_since.map(|since| since + SYNC_INTERVAL);
            match queue.next_batch(self.commit_delay, idle_until) {
                Next::Batch(batch) => {
                    self.run_batch(batch);
                    if self.syncs {
                        self.unsynced_since.get_or_insert_with(Instant::now);
                    }
                }
                // Nothing committed since: the sync leaves nothing pending, and the thread
                // sleeps until the next job (an idle session costs no wake-ups).
                Next::Idle => self.sync(),
                Next::Closed => break,
            }
            if self
                .unsynced_since
                .is_some_and(|since| since.elapsed() >= SYNC_INTERVAL)
            {
                self.sync();
            }
        }
        self.sync();
        if let Some(error) = take(&self.unobserved) {
            tracing::error!(%error, "history writer stopped with an unreported error");
        }
        self.synced
    }

    /// Syncs what was committed since the last sync; a failure is reported like a failed
    /// write nobody awaited (logged, and returned by the next flush).
    fn sync(&mut self) {
        if self.unsynced_since.take().is_none() {
            return;
        }
        self.synced += 1;
        if let Err(error) = self.store.sync_log() {
            record(&self.unobserved, error);
        }
    }

    /// Runs `batch` in one group commit (or alone, when it is one job or the group cannot be
    /// opened), then sends every reply.
    fn run_batch(&mut self, batch: Vec<Job>) {
        let grouped = batch.len() > 1
            && match self.store.begin_group() {
                Ok(()) => true,
                Err(error) => {
                    // Each write then tries on its own and reports its own error.
                    tracing::debug!(%error, "history group commit not opened");
                    false
                }
            };
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&mut self.store)).collect();
        let failed = if grouped {
            self.store.end_group().err().map(CommitFailed)
        } else {
            None
        };
        for reply in replies {
            reply(self, failed.as_ref());
        }
    }
}

/// A handle to a [`HistoryStore`] running on its own thread. Cheap to clone; all clones feed
/// the same thread.
#[derive(Clone)]
pub struct HistoryWriter {
    jobs: Arc<Jobs>,
    path: Arc<Path>,
    unobserved: Unobserved,
    shared: bool,
}

impl std::fmt::Debug for HistoryWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The pushing side of the thread's queue, shared by every clone of a [`HistoryWriter`]: when
/// the last one is dropped the queue closes, and the thread finishes it and stops.
struct Jobs(Arc<JobQueue<Job>>);

impl Drop for Jobs {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl HistoryWriter {
    /// Moves `store` to a new thread named `agent-history` and returns a handle to it.
    pub fn spawn(store: HistoryStore) -> Result<Self, HistoryError> {
        Self::spawn_with_delay(store, COMMIT_DELAY)
    }

    fn spawn_with_delay(
        mut store: HistoryStore,
        commit_delay: Duration,
    ) -> Result<Self, HistoryError> {
        let syncs = store.defer_sync()?;
        let path: Arc<Path> = store.path().into();
        let is_shared = store.is_shared();
        let queue = Arc::new(JobQueue::new(MAX_BATCH, usize::MAX));
        let unobserved = Unobserved::default();
        let shared = unobserved.clone();
        let stop = StopOnExit(queue.clone());
        std::thread::Builder::new()
            .name("agent-history".to_owned())
            .spawn(move || {
                WriterState {
                    store,
                    unobserved: shared,
                    unsynced_since: None,
                    syncs,
                    commit_delay,
                    synced: 0,
                }
                .serve(&stop.0);
            })
            .map_err(HistoryError::Thread)?;
        Ok(HistoryWriter {
            jobs: Arc::new(Jobs(queue)),
            path,
            unobserved,
            shared: is_shared,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the writer thread, after everything queued before it, in the next
    /// batch (at once: the result is meant to be awaited).
    pub fn run<T, F>(&self, work: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut HistoryStore) -> Result<T, HistoryError> + Send + 'static,
    {
        self.run_counted(work, Urgency::Awaited, None)
    }

    /// Like [`run`](Self::run), for a write nobody waits for: it may wait up to
    /// [`COMMIT_DELAY`] to share a commit. Once the batch committed, `counted` (if any) learns
    /// whether the write is durable (replies run in queue order, so it counts in order).
    fn run_counted<T, F>(
        &self,
        work: F,
        urgency: Urgency,
        counted: Option<Arc<DurableCount>>,
    ) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut HistoryStore) -> Result<T, HistoryError> + Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        let job: Job = Box::new(move |store: &mut HistoryStore| {
            let result = work(store);
            Box::new(
                move |state: &mut WriterState, failed: Option<&CommitFailed>| {
                    let result = match failed {
                        Some(failed) if result.is_ok() => Err(failed.error(&state.store)),
                        _ => result,
                    };
                    if let Some(counted) = &counted {
                        counted.note(result.is_ok());
                    }
                    if let Err(Err(error)) = reply.send(result) {
                        record(&state.unobserved, error);
                    }
                },
            )
        });
        // If the thread is gone the job, and with it `reply`, is dropped: the receiver then
        // reports `WriterGone`.
        let _ = self.jobs.0.push(job, urgency);
        Pending {
            receiver,
            unobserved: self.unobserved.clone(),
        }
    }

    /// Queues [`HistoryStore::create_conversation`].
    pub fn create_conversation(&self, agent: &str, model: &str) -> Pending<ConversationId> {
        let (agent, model) = (agent.to_owned(), model.to_owned());
        self.run(move |store| store.create_conversation(&agent, &model))
    }

    /// Queues [`HistoryStore::append`]; returns at once.
    pub fn append(
        &self,
        conversation: &ConversationId,
        key: &str,
        item: &Item,
    ) -> Pending<Appended> {
        let (conversation, key, item) = (conversation.clone(), key.to_owned(), item.clone());
        self.run(move |store| store.append(&conversation, &key, &item))
    }

    /// Queues [`HistoryStore::replace`]; returns at once.
    pub fn replace(&self, conversation: &ConversationId, key: &str, item: &Item) -> Pending<u64> {
        let (conversation, key, item) = (conversation.clone(), key.to_owned(), item.clone());
        self.run(move |store| store.replace(&conversation, &key, &item))
    }

    /// The conversation's items, read after every write queued before this call.
    pub fn items(&self, conversation: &ConversationId) -> Pending<Vec<StoredItem>> {
        let conversation = conversation.clone();
        self.run(move |store| store.items(&conversation))
    }

    /// Queues [`HistoryStore::acquire_lease`].
    pub fn acquire_lease(
        &self,
        conversation: &ConversationId,
        holder: &str,
        ttl: Duration,
    ) -> Pending<Lease> {
        let (conversation, holder) = (conversation.clone(), holder.to_owned());
        self.run(move |store| store.acquire_lease(&conversation, &holder, ttl))
    }

    /// Queues [`HistoryStore::renew_lease`]. Await it: a [`HistoryError::LeaseLost`] means
    /// this run must stop writing the conversation.
    pub fn renew_lease(
        &self,
        conversation: &ConversationId,
        holder: &str,
        ttl: Duration,
    ) -> Pending<Lease> {
        let (conversation, holder) = (conversation.clone(), holder.to_owned());
        self.run(move |store| store.renew_lease(&conversation, &holder, ttl))
    }

    /// Queues [`HistoryStore::release_lease`], after every write queued before it.
    pub fn release_lease(&self, conversation: &ConversationId, holder: &str) -> Pending<()> {
        let (conversation, holder) = (conversation.clone(), holder.to_owned());
        self.run(move |store| store.release_lease(&conversation, &holder))
    }

    /// Queues [`HistoryStore::call_started`]. Await it before running the tool: once it
    /// resolves the record survives the process being killed.
    pub fn call_started(
        &self,
        conversation: &ConversationId,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> Pending<CallRecordState> {
        self.call_started_leased(conversation, None, call_id, name, arguments)
    }

    /// Queues [`HistoryStore::call_finished`].
    pub fn call_finished(
        &self,
        conversation: &ConversationId,
        call_id: &str,
        output: &str,
    ) -> Pending<()> {
        self.call_finished_leased(conversation, None, call_id, output)
    }

    /// Queues [`HistoryStore::claim_webhook`]: `true` the first time the webhook `id` is
    /// seen within `remember`, by any process sharing the store.
    pub fn claim_webhook(&self, id: &str, remember: Duration) -> Pending<bool> {
        let id = id.to_owned();
        self.run(move |store| store.claim_webhook(&id, remember))
    }

    /// Whether the store is shared by several processes (PostgreSQL) rather than a local file.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// The conversation's tool-call records, read after every write queued before this call.
    pub fn calls(&self, conversation: &ConversationId) -> Pending<Vec<CallRecord>> {
        let conversation = conversation.clone();
        self.run(move |store| store.calls(&conversation))
    }

    fn call_started_leased(
        &self,
        conversation: &ConversationId,
        holder: Option<&Arc<str>>,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> Pending<CallRecordState> {
        let (conversation, holder) = (conversation.clone(), holder.cloned());
        let (call_id, name, arguments) =
            (call_id.to_owned(), name.to_owned(), arguments.to_owned());
        self.run(move |store| {
            store.call_started_leased(
                &conversation,
                holder.as_deref(),
                &call_id,
                &name,
                &arguments,
            )
        })
    }

    fn call_finished_leased(
        &self,
        conversation: &ConversationId,
        holder: Option<&Arc<str>>,
        call_id: &str,
        output: &str,
    ) -> Pending<()> {
        let (conversation, holder) = (conversation.clone(), holder.cloned());
        let (call_id, output) = (call_id.to_owned(), output.to_owned());
        self.run(move |store| {
            store.call_finished_leased(&conversation, holder.as_deref(), &call_id, &output)
        })
    }

    /// Resolves once everything queued before it is committed; fails with the first error of
    /// a write whose [`Pending`] was dropped since the last flush.
    pub fn flush(&self) -> Pending<()> {
        let (reply, receiver) = oneshot::channel();
        let job: Job = Box::new(move |_: &mut HistoryStore| {
            // Replies run in queue order, so every earlier write's failure is recorded by now.
            Box::new(move |state: &mut WriterState, _: Option<&CommitFailed>| {
                // Whatever was committed is on disk before the barrier answers.
                if state.syncs {
                    state.unsynced_since.get_or_insert_with(Instant::now);
                }
                state.sync();
                let result = take(&state.unobserved).map_or(Ok(()), Err);
                let _ = reply.send(result);
            })
        });
        let _ = self.jobs.0.push(job, Urgency::Awaited);
        Pending {
            receiver,
            unobserved: self.unobserved.clone(),
        }
    }

    /// A handle that appends to one conversation, for a session to hold.
    pub fn conversation(&self, id: ConversationId) -> ConversationWriter {
        ConversationWriter {
            writer: self.clone(),
            id,
            holder: None,
            durable: Arc::default(),
        }
    }

    /// A handle to one conversation whose every write checks, in its own transaction, that
    /// `holder` still holds the lease (taken with [`acquire_lease`](Self::acquire_lease)):
    /// once another run has taken the conversation over, writes fail with
    /// [`HistoryError::LeaseLost`] instead of mixing two runs' items.
    pub fn leased_conversation(&self, id: ConversationId, holder: &str) -> ConversationWriter {
        ConversationWriter {
            writer: self.clone(),
            id,
            holder: Some(holder.into()),
            durable: Arc::default(),
        }
    }
}

/// A [`HistoryWriter`] bound to one conversation: what a session runner holds to append the
/// items of its conversation as they complete.
#[derive(Debug, Clone)]
pub struct ConversationWriter {
    writer: HistoryWriter,
    id: ConversationId,
    /// The lease its writes are made under, if any.
    holder: Option<Arc<str>>,
    /// How many of the appends made through the session sink committed (shared by clones).
    durable: Arc<DurableCount>,
}

/// Appends that committed, counted in queue order; the first failure stops the count, so
/// "the first `n` appends are durable" stays true.
#[derive(Debug, Default)]
struct DurableCount {
    count: AtomicU64,
    stopped: AtomicBool,
}

impl DurableCount {
    fn note(&self, durable: bool) {
        if !durable {
            self.stopped.store(true, Ordering::Release);
        } else if !self.stopped.load(Ordering::Acquire) {
            self.count.fetch_add(1, Ordering::Release);
        }
    }
}

impl ConversationWriter {
    /// The conversation's id.
    pub fn id(&self) -> &ConversationId {
        &self.id
    }

    /// The writer it sends to.
    pub fn writer(&self) -> &HistoryWriter {
        &self.writer
    }

    /// The lease holder its writes are checked against, when it was made by
    /// [`HistoryWriter::leased_conversation`].
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref()
    }

    /// Queues an append (idempotent on `key`, and on `call_id` for calls and outputs); never
    /// blocks. Drop the result to fire and forget: a failure then surfaces in the log and in
    /// the next [`flush`](Self::flush).
    pub fn append(&self, key: &str, item: &Item) -> Pending<Appended> {
        let (id, holder) = (self.id.clone(), self.holder.clone());
        let (key, item) = (key.to_owned(), item.clone());
        self.writer
            .run(move |store| store.append_leased(&id, holder.as_deref(), &key, &item))
    }

    /// Queues a replacement of the item stored under `key`; never blocks.
    pub fn replace(&self, key: &str, item: &Item) -> Pending<u64> {
        let (id, holder) = (self.id.clone(), self.holder.clone());
        let (key, item) = (key.to_owned(), item.clone());
        self.writer
            .run(move |store| store.replace_leased(&id, holder.as_deref(), &key, &item))
    }

    /// Queues [`HistoryStore::call_started`] for this conversation (under its lease, if
    /// any). Await it before running the tool, and run the tool only on
    /// [`CallRecordState::New`].
    pub fn call_started(
        &self,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> Pending<CallRecordState> {
        self.writer
            .call_started_leased(&self.id, self.holder.as_ref(), call_id, name, arguments)
    }

    /// Queues [`HistoryStore::call_finished`] for this conversation (under its lease, if
    /// any).
    pub fn call_finished(&self, call_id: &str, output: &str) -> Pending<()> {
        self.writer
            .call_finished_leased(&self.id, self.holder.as_ref(), call_id, output)
    }

    /// This conversation's events, read after every write queued before this call.
    pub fn events(&self) -> Pending<Vec<StoredEvent>> {
        let id = self.id.clone();
        self.writer.run(move |store| store.events(&id))
    }

    /// This conversation's tool-call records; see [`HistoryWriter::calls`].
    pub fn calls(&self) -> Pending<Vec<CallRecord>> {
        self.writer.calls(&self.id)
    }

    /// See [`HistoryWriter::flush`].
    pub fn flush(&self) -> Pending<()> {
        self.writer.flush()
    }
}

/// The session runtime's hook: every completed item goes to the store without the session
/// waiting. A failed append is logged and returned by the next [`ConversationWriter::flush`].
impl crate::session::HistorySink for ConversationWriter {
    fn append(&self, key: &str, item: &Item) {
        let (id, holder) = (self.id.clone(), self.holder.clone());
        let (key, item) = (key.to_owned(), item.clone());
        drop(self.writer.run_counted(
            move |store| store.append_leased(&id, holder.as_deref(), &key, &item),
            Urgency::Deferred,
            Some(self.durable.clone()),
        ));
    }

    fn durable_appends(&self) -> Option<u64> {
        Some(self.durable.count.load(Ordering::Acquire))
    }

    /// Only a leased conversation on a shared store can be taken over by another process.
    fn durable_before_outputs(&self) -> Option<crate::session::DurableWrite> {
        if self.holder.is_none() || !self.writer.is_shared() {
            return None;
        }
        let barrier = self.writer.flush();
        Some(Box::pin(async move {
            barrier.await.map_err(|error| error.to_string())
        }))
    }

    fn conversation_id(&self) -> Option<String> {
        Some(self.id.to_string())
    }

    /// Reads after every write queued before it, so what was appended is there.
    fn load(&self) -> crate::session::DurableWrite<Vec<(String, Item)>> {
        let pending = self.writer.items(&self.id);
        Box::pin(async move {
            let items = pending.await.map_err(|error| error.to_string())?;
            Ok(items.into_iter().map(StoredItem::into_keyed).collect())
        })
    }

    fn replace(&self, key: &str, item: &Item) {
        let (id, holder) = (self.id.clone(), self.holder.clone());
        let (key, item) = (key.to_owned(), item.clone());
        drop(self.writer.run_counted(
            move |store| store.replace_leased(&id, holder.as_deref(), &key, &item),
            Urgency::Deferred,
            None,
        ));
    }

    /// Resolves once the "started" record is in SQLite's write-ahead log, with what the store
    /// already knew about the call (an earlier run's record: then the tool does not run).
    ///
    /// The record is queued when the returned future is first polled (by the call's task),
    /// not now: a response's calls arrive in consecutive frames that the session handles in
    /// one go, and their tasks then queue their records together, so they share one commit
    /// (and one wake-up of the writer) instead of one each.
    fn call_started(
        &self,
        call_id: &str,
        name: &str,
        arguments: &str,
    ) -> crate::session::DurableWrite<crate::session::CallStart> {
        use crate::session::CallStart;
        let this = self.clone();
        let (call_id, name, arguments) =
            (call_id.to_owned(), name.to_owned(), arguments.to_owned());
        Box::pin(async move {
            let pending = ConversationWriter::call_started(&this, &call_id, &name, &arguments);
            match pending.await {
                Ok(CallRecordState::New) => Ok(CallStart::New),
                Ok(CallRecordState::Started) => Ok(CallStart::Started),
                Ok(CallRecordState::Finished { output }) => Ok(CallStart::Finished { output }),
                // Running it anyway (as for a store that failed) could run it twice: the run
                // that took the conversation over may run it too.
                Err(HistoryError::LeaseLost { .. }) => Ok(CallStart::TakenOver),
                Err(error) => Err(error.to_string()),
            }
        })
    }

    /// Fire and forget, in queue order behind the items before it, like an append.
    fn handed_off(&self, call_id: &str, from: &str, to: &str) {
        let (id, holder) = (self.id.clone(), self.holder.clone());
        let (call_id, from, to) = (call_id.to_owned(), from.to_owned(), to.to_owned());
        drop(self.writer.run_counted(
            move |store| store.record_handoff_leased(&id, holder.as_deref(), &call_id, &from, &to),
            Urgency::Deferred,
            None,
        ));
    }

    /// Fire and forget: a [`ConversationEvent::GuardrailTripped`] after the items so far.
    fn guardrail_tripped(
        &self,
        guardrail: &str,
        stage: crate::guardrail::GuardrailStage,
        reason: &str,
    ) {
        let (id, holder) = (self.id.clone(), self.holder.clone());
        let event = ConversationEvent::GuardrailTripped {
            guardrail: guardrail.to_owned(),
            stage: stage.as_str().to_owned(),
            reason: reason.to_owned(),
        };
        drop(self.writer.run_counted(
            move |store| store.record_event_leased(&id, holder.as_deref(), &event),
            Urgency::Deferred,
            None,
        ));
    }

    fn call_finished(&self, call_id: &str, output: &str) {
        let (id, holder) = (self.id.clone(), self.holder.clone());
        let (call_id, output) = (call_id.to_owned(), output.to_owned());
        drop(self.writer.run_counted(
            move |store| store.call_finished_leased(&id, holder.as_deref(), &call_id, &output),
            Urgency::Deferred,
            None,
        ));
    }
}

/// The result of a queued history operation: await it, or drop it to fire and forget.
#[derive(Debug)]
pub struct Pending<T> {
    receiver: oneshot::Receiver<Result<T, HistoryError>>,
    unobserved: Unobserved,
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        // The reply may have arrived before the caller dropped this without reading it.
        if let Ok(Err(error)) = self.receiver.try_recv() {
            record(&self.unobserved, error);
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T, HistoryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.receiver)
            .poll(cx)
            .map(|received| received.unwrap_or(Err(HistoryError::WriterGone)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::testdb::{TestDb, on_both_backends};
    use crate::history::{Durability, OpenOptions};

    on_both_backends!(
        async appends_queue_without_waiting_and_flush_is_a_barrier,
        sessions_append_through_the_sink,
        handoffs_and_trips_go_through_the_sink_in_order,
        unobserved_failures_surface_at_the_next_flush,
        leases_and_call_records_through_the_writer,
        a_burst_is_one_group_commit_and_a_failed_write_rolls_back_alone,
        call_records_in_a_batch_are_durable_when_their_reply_arrives,
    );

    fn writer() -> HistoryWriter {
        let store = OpenOptions::new()
            .durability(Durability::ProcessCrash)
            .open_in_memory()
            .unwrap();
        HistoryWriter::spawn(store).unwrap()
    }

    fn writer_on(db: &TestDb) -> HistoryWriter {
        HistoryWriter::spawn(db.open()).unwrap()
    }

    async fn appends_queue_without_waiting_and_flush_is_a_barrier(db: &TestDb) {
        let writer = writer_on(db);
        let id = writer.create_conversation("support", "m").await.unwrap();
        let conversation = writer.conversation(id.clone());
        for n in 0..50 {
            // Fire and forget, as a session runner does.
            drop(conversation.append(&format!("local_{n}"), &Item::user_text(n.to_string())));
        }
        let duplicate = conversation.append("local_3", &Item::user_text("3"));
        conversation.flush().await.unwrap();
        assert!(!duplicate.await.unwrap().inserted);
        let items = writer.items(&id).await.unwrap();
        assert_eq!(items.len(), 50);
        assert!(
            items
                .iter()
                .enumerate()
                .all(|(n, s)| s.item == Item::user_text(n.to_string()))
        );
    }

    async fn sessions_append_through_the_sink(db: &TestDb) {
        use crate::session::HistorySink;
        let writer = writer_on(db);
        let id = writer.create_conversation("support", "m").await.unwrap();
        let conversation = writer.conversation(id.clone());
        let sink: std::sync::Arc<dyn HistorySink> = std::sync::Arc::new(conversation.clone());
        sink.append("local_000001", &Item::user_text("hi"));
        sink.append("call:c1", &Item::function_call("c1", "f", "{}"));
        sink.append("call:c1", &Item::function_call("c1", "f", "{}"));
        conversation.flush().await.unwrap();
        let entries: Vec<(String, Item)> = writer
            .items(&id)
            .await
            .unwrap()
            .into_iter()
            .map(StoredItem::into_keyed)
            .collect();
        assert_eq!(
            entries,
            [
                ("local_000001".to_owned(), Item::user_text("hi")),
                ("call:c1".to_owned(), Item::function_call("c1", "f", "{}")),
            ]
        );
    }

    async fn handoffs_and_trips_go_through_the_sink_in_order(db: &TestDb) {
        use crate::guardrail::GuardrailStage;
        use crate::session::HistorySink;
        let writer = writer_on(db);
        let id = writer.create_conversation("support", "m").await.unwrap();
        writer
            .acquire_lease(&id, "run", Duration::from_secs(15))
            .await
            .unwrap();
        let conversation = writer.leased_conversation(id.clone(), "run");
        let sink: Arc<dyn HistorySink> = Arc::new(conversation.clone());
        sink.append("local_000001", &Item::user_text("charged twice"));
        sink.append(
            "call:c1",
            &Item::function_call("c1", "transfer_to_billing", "{}"),
        );
        sink.handed_off("c1", "support", "billing");
        sink.append("output:c1", &Item::function_call_output("c1", "{}"));
        sink.guardrail_tripped("no guarantees", GuardrailStage::Output, "never guarantee");
        conversation.flush().await.unwrap();
        let store = db.open();
        assert_eq!(store.conversation(&id).unwrap().agent, "billing");
        let events = conversation.events().await.unwrap();
        let placed: Vec<(u64, ConversationEvent)> = events
            .into_iter()
            .map(|e| (e.after_item, e.event))
            .collect();
        assert_eq!(
            placed,
            [
                (
                    2,
                    ConversationEvent::Handoff {
                        call_id: "c1".into(),
                        from: "support".into(),
                        to: "billing".into(),
                    }
                ),
                (
                    3,
                    ConversationEvent::GuardrailTripped {
                        guardrail: "no guarantees".into(),
                        stage: "output".into(),
                        reason: "never guarantee".into(),
                    }
                ),
            ]
        );
    }

    async fn unobserved_failures_surface_at_the_next_flush(db: &TestDb) {
        let writer = writer_on(db);
        drop(writer.append(
            &ConversationId::new("conv_gone"),
            "k",
            &Item::user_text("x"),
        ));
        let error = writer.flush().await.unwrap_err();
        assert!(
            matches!(error, HistoryError::UnknownConversation { .. }),
            "{error}"
        );
        // Reported once.
        writer.flush().await.unwrap();
        // An awaited failure is the caller's and is not reported again.
        let awaited = writer.append(
            &ConversationId::new("conv_gone"),
            "k",
            &Item::user_text("x"),
        );
        assert!(awaited.await.is_err());
        writer.flush().await.unwrap();
    }

    async fn leases_and_call_records_through_the_writer(db: &TestDb) {
        let ttl = Duration::from_secs(15);
        let writer = writer_on(db);
        let id = writer.create_conversation("support", "m").await.unwrap();
        let lease = writer.acquire_lease(&id, "run a", ttl).await.unwrap();
        assert_eq!(lease.holder, "run a");
        let error = writer.acquire_lease(&id, "run b", ttl).await.unwrap_err();
        assert!(
            matches!(error, HistoryError::ConversationInUse { .. }),
            "{error}"
        );
        writer.renew_lease(&id, "run a", ttl).await.unwrap();

        let conversation = writer.leased_conversation(id.clone(), "run a");
        assert_eq!(conversation.holder(), Some("run a"));
        {
            // Only a leased conversation on a store other processes share must hold a call's
            // output before it is sent (another node could take the call over).
            use crate::session::HistorySink;
            let barrier = conversation.durable_before_outputs();
            assert_eq!(barrier.is_some(), writer.is_shared());
            if let Some(barrier) = barrier {
                barrier.await.unwrap();
            }
            assert!(
                writer
                    .conversation(id.clone())
                    .durable_before_outputs()
                    .is_none()
            );
        }
        let state = conversation.call_started("c1", "f", "{}").await.unwrap();
        assert_eq!(state, CallRecordState::New);
        conversation.call_finished("c1", "ok").await.unwrap();
        assert_eq!(
            writer.call_started(&id, "c1", "f", "{}").await.unwrap(),
            CallRecordState::Finished {
                output: "ok".to_owned()
            }
        );
        writer.call_finished(&id, "c2", "late").await.unwrap();
        let calls = conversation.calls().await.unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(writer.calls(&id).await.unwrap(), calls);
        conversation
            .append("call:c1", &Item::function_call("c1", "f", "{}"))
            .await
            .unwrap();

        // Another run takes over once this one lets go; this handle's writes are refused.
        writer.release_lease(&id, "run a").await.unwrap();
        writer.acquire_lease(&id, "run b", ttl).await.unwrap();
        for error in [
            conversation
                .append("k", &Item::user_text("x"))
                .await
                .unwrap_err(),
            conversation
                .replace("call:c1", &Item::user_text("x"))
                .await
                .unwrap_err(),
            conversation
                .call_started("c3", "f", "{}")
                .await
                .unwrap_err(),
            conversation.call_finished("c1", "x").await.unwrap_err(),
            writer.renew_lease(&id, "run a", ttl).await.unwrap_err(),
        ] {
            assert!(matches!(error, HistoryError::LeaseLost { .. }), "{error}");
        }
        // A session asking through its sink whether to run a call is told not to: the run
        // that took over may run it.
        use crate::session::HistorySink;
        assert_eq!(
            HistorySink::call_started(&conversation, "c4", "f", "{}").await,
            Ok(crate::session::CallStart::TakenOver)
        );
        // A fire-and-forget write through the session's sink surfaces at the next flush.
        HistorySink::append(&conversation, "k", &Item::user_text("x"));
        let error = conversation.flush().await.unwrap_err();
        assert!(matches!(error, HistoryError::LeaseLost { .. }), "{error}");
        assert_eq!(writer.items(&id).await.unwrap().len(), 1);
    }

    #[test]
    fn works_without_a_runtime() {
        let writer = writer();
        let (done, finished) = std::sync::mpsc::channel();
        drop(writer.run(move |store| {
            let id = store.create_conversation("a", "m")?;
            store.append(&id, "k", &Item::user_text("from a plain thread"))?;
            let _ = done.send(store.items(&id)?.len());
            Ok(())
        }));
        assert_eq!(finished.recv().unwrap(), 1);
    }

    /// Occupies the writer thread until the returned sender is dropped. Returns only once the
    /// thread is inside the job, so whatever the test queues next waits for one later batch
    /// (returning earlier let the thread take part of the test's jobs into the held batch).
    fn hold(writer: &HistoryWriter) -> std::sync::mpsc::Sender<()> {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let (entered, inside) = std::sync::mpsc::channel::<()>();
        drop(writer.run(move |_| {
            let _ = entered.send(());
            let _ = held.recv_timeout(Duration::from_secs(10));
            Ok(())
        }));
        inside
            .recv_timeout(Duration::from_secs(10))
            .expect("the writer thread took the holding job");
        release
    }

    async fn a_burst_is_one_group_commit_and_a_failed_write_rolls_back_alone(db: &TestDb) {
        let writer = writer_on(db);
        let id = writer.create_conversation("support", "m").await.unwrap();
        let conversation = writer.conversation(id.clone());

        let release = hold(&writer);
        let first = conversation.append("a", &Item::user_text("a"));
        let unknown = writer
            .conversation(ConversationId::new("conv_missing"))
            .append("x", &Item::user_text("lost"));
        let empty_key = conversation.append("", &Item::user_text("refused"));
        let last = conversation.append("b", &Item::user_text("b"));
        let grouped = writer.run(|store| Ok(store.grouped));
        drop(release);

        assert!(
            grouped.await.unwrap(),
            "queued writes ran in one group commit"
        );
        assert!(first.await.unwrap().inserted);
        assert!(matches!(
            unknown.await.unwrap_err(),
            HistoryError::UnknownConversation { .. }
        ));
        assert!(matches!(
            empty_key.await.unwrap_err(),
            HistoryError::EmptyKey { .. }
        ));
        assert_eq!(last.await.unwrap().seq, 2);
        // A lone job runs in its own transaction, as before.
        assert!(!writer.run(|store| Ok(store.grouped)).await.unwrap());

        // Once a reply arrived, the batch is committed: another connection sees it.
        let reader = db.open();
        let items = reader.items(&id).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[1].item, Item::user_text("b"));
    }

    #[tokio::test]
    async fn fire_and_forget_writes_share_the_next_awaited_write_s_commit() {
        use crate::session::HistorySink;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        // A delay no scheduler hiccup reaches: the deferred writes wait for the awaited one.
        let store = OpenOptions::new().open(&path).unwrap();
        let writer = HistoryWriter::spawn_with_delay(store, Duration::from_secs(30)).unwrap();
        let id = writer.create_conversation("support", "m").await.unwrap();
        let conversation = writer.conversation(id.clone());
        let sink: &dyn HistorySink = &conversation;
        sink.append("local_1", &Item::user_text("one"));
        sink.append("local_2", &Item::user_text("two"));
        sink.call_finished("c0", "done");
        // The awaited start record is due at once and carries the deferred writes with it:
        // one group commit, durable when its reply arrives.
        let grouped = writer.run(|store| Ok(store.grouped)).await.unwrap();
        assert!(grouped, "the deferred writes waited for the awaited one");
        assert_eq!(sink.durable_appends(), Some(2));
        let reader = HistoryStore::open(&path).unwrap();
        assert_eq!(reader.items(&id).unwrap().len(), 2);
        assert_eq!(reader.calls(&id).unwrap().len(), 1);

        // Alone, a deferred write still commits, after the delay.
        let writer = HistoryWriter::spawn(OpenOptions::new().open(&path).unwrap()).unwrap();
        let sink = writer.conversation(id.clone());
        HistorySink::append(&sink, "local_3", &Item::user_text("three"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while sink.durable_appends() != Some(1) {
            assert!(
                Instant::now() < deadline,
                "a lone deferred write was never committed"
            );
            tokio::time::sleep(COMMIT_DELAY).await;
        }
        assert_eq!(reader.items(&id).unwrap().len(), 3);
    }

    async fn call_records_in_a_batch_are_durable_when_their_reply_arrives(db: &TestDb) {
        let writer = writer_on(db);
        let id = writer.create_conversation("support", "m").await.unwrap();
        let conversation = writer.conversation(id.clone());
        let release = hold(&writer);
        let starts: Vec<_> = (0..3)
            .map(|n| conversation.call_started(&format!("call_{n}"), "lookup", "{}"))
            .collect();
        drop(release);
        for start in starts {
            assert_eq!(start.await.unwrap(), CallRecordState::New);
        }
        // Read by a second connection, as a process resuming after a kill would.
        let reader = db.open();
        assert_eq!(reader.calls(&id).unwrap().len(), 3);
    }

    #[test]
    fn an_idle_writer_syncs_once_after_its_last_commit_then_sleeps() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = OpenOptions::new().open(dir.path().join("h.db")).unwrap();
        let syncs = store.defer_sync().unwrap();
        assert!(syncs);
        let queue = Arc::new(JobQueue::<Job>::new(MAX_BATCH, usize::MAX));
        let thread = {
            let queue = queue.clone();
            std::thread::spawn(move || {
                WriterState {
                    store,
                    unobserved: Unobserved::default(),
                    unsynced_since: None,
                    syncs,
                    commit_delay: COMMIT_DELAY,
                    synced: 0,
                }
                .serve(&queue)
            })
        };
        let job: Job = Box::new(|store: &mut HistoryStore| {
            let _ = store.create_conversation("a", "m");
            Box::new(|_: &mut WriterState, _: Option<&CommitFailed>| {})
        });
        assert!(queue.push(job, Urgency::Awaited).is_ok());
        // Several sync intervals with nothing to do: one sync for the commit, then none.
        std::thread::sleep(SYNC_INTERVAL * 4);
        queue.close();
        assert_eq!(thread.join().unwrap(), 1);
    }

    #[tokio::test]
    async fn a_power_loss_store_syncs_on_the_writer_s_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history.db");
        let writer = HistoryWriter::spawn(OpenOptions::new().open(&path).unwrap()).unwrap();
        let id = writer.create_conversation("support", "m").await.unwrap();
        // Commits no longer fsync one by one: the thread syncs the log itself.
        let (deferred, synchronous) = writer
            .run(|store| {
                let crate::history::db::Db::Sqlite(conn) = &store.db else {
                    unreachable!("a file store");
                };
                let mode: i64 = conn
                    .pragma_query_value(None, "synchronous", |row| row.get(0))
                    .map_err(|e| store.fail(e))?;
                Ok((store.sync_deferred, mode))
            })
            .await
            .unwrap();
        assert!(deferred);
        assert_eq!(synchronous, 1, "NORMAL");
        // A call start is in the log when it resolves, and a flush syncs without error.
        let conversation = writer.conversation(id.clone());
        conversation.call_started("c1", "f", "{}").await.unwrap();
        writer.flush().await.unwrap();
        assert_eq!(
            HistoryStore::open(&path).unwrap().calls(&id).unwrap().len(),
            1
        );
        // Nothing to sync without a log file; a store for tests keeps SQLite's own setting.
        writer.run(|store| store.sync_log()).await.unwrap();
        let fast = HistoryWriter::spawn(
            OpenOptions::new()
                .durability(Durability::ProcessCrash)
                .open(dir.path().join("fast.db"))
                .unwrap(),
        )
        .unwrap();
        assert!(!fast.run(|store| Ok(store.sync_deferred)).await.unwrap());
    }
}
