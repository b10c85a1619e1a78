//! [`HistoryWriter`]: the store on its own thread, so a session never waits for the disk.
//!
//! A session appends on its hot path (every completed item) while an fsync can take
//! milliseconds. The writer owns the [`HistoryStore`] on a dedicated OS thread and takes work
//! over an unbounded channel: queueing never blocks and never needs an async runtime, so it
//! works from a session task, a `Drop` or a plain thread alike. Jobs run one at a time in the
//! order they were queued, which keeps a conversation's items in order and makes
//! [`HistoryWriter::flush`] a barrier for everything queued before it.
//!
//! Every call returns a [`Pending`] that can be awaited for the result or dropped. A failed
//! write nobody awaited is logged (`tracing::error!`) and the first such error is returned by
//! the next [`flush`](HistoryWriter::flush), so errors are never lost silently. The thread
//! ends when the last handle is dropped, after finishing the queue; a process that exits
//! right away must await `flush` first or lose what is still queued.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::{Appended, ConversationId, HistoryError, HistoryStore, StoredItem};
use crate::protocol::Item;

type Job = Box<dyn FnOnce(&mut WriterState) + Send>;

/// What the writer thread owns.
struct WriterState {
    store: HistoryStore,
    /// The first error of a write whose [`Pending`] was dropped, kept for the next flush.
    unobserved: Option<HistoryError>,
}

/// A handle to a [`HistoryStore`] running on its own thread. Cheap to clone; all clones feed
/// the same thread.
#[derive(Debug, Clone)]
pub struct HistoryWriter {
    jobs: mpsc::Sender<Job>,
    path: Arc<Path>,
}

impl HistoryWriter {
    /// Moves `store` to a new thread named `agent-history` and returns a handle to it.
    pub fn spawn(store: HistoryStore) -> Result<Self, HistoryError> {
        let path: Arc<Path> = store.path().into();
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("agent-history".to_owned())
            .spawn(move || {
                let mut state = WriterState {
                    store,
                    unobserved: None,
                };
                for job in queue {
                    job(&mut state);
                }
                if let Some(error) = state.unobserved {
                    tracing::error!(%error, "history writer stopped with an unreported error");
                }
            })
            .map_err(HistoryError::Thread)?;
        Ok(HistoryWriter { jobs, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` on the writer thread, after everything queued before it.
    pub fn run<T, F>(&self, work: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut HistoryStore) -> Result<T, HistoryError> + Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        let job: Job = Box::new(move |state: &mut WriterState| {
            let result = work(&mut state.store);
            if let Err(Err(error)) = reply.send(result) {
                tracing::error!(%error, "a history write failed");
                state.unobserved.get_or_insert(error);
            }
        });
        // If the thread is gone the job, and with it `reply`, is dropped: the receiver then
        // reports `WriterGone`.
        let _ = self.jobs.send(job);
        Pending { receiver }
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

    /// Resolves once everything queued before it is committed; fails with the first error of
    /// a write whose [`Pending`] was dropped since the last flush.
    pub fn flush(&self) -> Pending<()> {
        let (reply, receiver) = oneshot::channel();
        let job: Job = Box::new(move |state: &mut WriterState| {
            let result = state.unobserved.take().map_or(Ok(()), Err);
            let _ = reply.send(result);
        });
        let _ = self.jobs.send(job);
        Pending { receiver }
    }

    /// A handle that appends to one conversation, for a session to hold.
    pub fn conversation(&self, id: ConversationId) -> ConversationWriter {
        ConversationWriter {
            writer: self.clone(),
            id,
        }
    }
}

/// A [`HistoryWriter`] bound to one conversation: what a session runner holds to append the
/// items of its conversation as they complete.
#[derive(Debug, Clone)]
pub struct ConversationWriter {
    writer: HistoryWriter,
    id: ConversationId,
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

    /// Queues an append (idempotent on `key`, and on `call_id` for calls and outputs); never
    /// blocks. Drop the result to fire and forget: a failure then surfaces in the log and in
    /// the next [`flush`](Self::flush).
    pub fn append(&self, key: &str, item: &Item) -> Pending<Appended> {
        self.writer.append(&self.id, key, item)
    }

    /// Queues a replacement of the item stored under `key`; never blocks.
    pub fn replace(&self, key: &str, item: &Item) -> Pending<u64> {
        self.writer.replace(&self.id, key, item)
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
        drop(ConversationWriter::append(self, key, item));
    }

    fn replace(&self, key: &str, item: &Item) {
        drop(ConversationWriter::replace(self, key, item));
    }
}

/// The result of a queued history operation: await it, or drop it to fire and forget.
#[derive(Debug)]
pub struct Pending<T> {
    receiver: oneshot::Receiver<Result<T, HistoryError>>,
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
    use crate::history::{Durability, OpenOptions};

    fn writer() -> HistoryWriter {
        let store = OpenOptions::new()
            .durability(Durability::ProcessCrash)
            .open_in_memory()
            .unwrap();
        HistoryWriter::spawn(store).unwrap()
    }

    #[tokio::test]
    async fn appends_queue_without_waiting_and_flush_is_a_barrier() {
        let writer = writer();
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

    #[tokio::test]
    async fn sessions_append_through_the_sink() {
        use crate::session::HistorySink;
        let writer = writer();
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

    #[tokio::test]
    async fn unobserved_failures_surface_at_the_next_flush() {
        let writer = writer();
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
}
