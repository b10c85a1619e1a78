//! Where a session's conversation goes for keeps, and where it comes back from.
//!
//! A [`HistorySink`] receives every completed item and every tool call's start and finish. A
//! sink that can also say which appends are durable and read the conversation back lets the
//! session keep only a recent window in memory: older items are read back from the store when
//! a new connection must replay them, and a call id that left the in-memory window is checked
//! against the store's call records before its tool runs. So a session's memory stays bounded
//! however long it runs, and nothing is forgotten, only moved.

use std::{future::Future, pin::Pin};

use crate::{guardrail::GuardrailStage, protocol::Item};

/// Receives each item as it completes, e.g. to append it to a durable store.
///
/// Called on the session's task: implementations must not block (hand the item to a writer
/// thread or channel).
pub trait HistorySink: Send + Sync {
    /// `key` is stable across reconnects: a call id for function calls and their outputs, the
    /// server's item id for assistant messages and spoken user turns, a local sequence key for
    /// typed user input.
    fn append(&self, key: &str, item: &Item);

    /// Replaces the item stored under `key` (an assistant reply truncated by a barge-in, a
    /// spoken turn whose transcript arrived).
    fn replace(&self, key: &str, item: &Item) {
        let _ = (key, item);
    }

    /// The stored conversation's id, which a resumed conversation keeps: tools see it in
    /// [`ToolContext::conversation`](crate::tool::ToolContext::conversation) and their
    /// idempotency keys. `None` (the default) when the sink has no such id.
    fn conversation_id(&self) -> Option<String> {
        None
    }

    /// A tool call is about to run. The tool starts only once the returned write is durable
    /// (or failed, or took longer than the runtime's deadline), so a process killed while the
    /// tool runs leaves a record that it started: after a restart the call is reported to the
    /// model as interrupted instead of being run a second time.
    ///
    /// The answer says whether the store already knew the call (an earlier run, or a call id
    /// the session no longer holds in memory): then the tool does not run again.
    fn call_started(&self, call_id: &str, name: &str, arguments: &str) -> DurableWrite<CallStart> {
        let _ = (call_id, name, arguments);
        Box::pin(std::future::ready(Ok(CallStart::New)))
    }

    /// A tool call finished with `output` (what the model reads): recorded together, so after
    /// a restart the call never runs again and this output is reused.
    fn call_finished(&self, call_id: &str, output: &str) {
        let _ = (call_id, output);
    }

    /// Resolves once everything handed to the sink so far is durable, for a session that must
    /// not tell the platform what the store does not know yet; `None` (the default) when the
    /// sink sees no need to wait.
    ///
    /// A call the platform holds, leased on a store that other nodes share, waits for it
    /// before its tool calls' outputs go out: a node that takes the call over reads the store
    /// to learn which calls still want an answer, and would answer a second time a call whose
    /// output left before its record. One wait covers all the outputs of a response.
    fn durable_before_outputs(&self) -> Option<DurableWrite> {
        None
    }

    /// How many of the items [`append`](Self::append)ed so far are durable, counted in append
    /// order from the first; a failed append stops the count there. `None` (the default) when
    /// the sink cannot tell or cannot [`load`](Self::load): the session then keeps the whole
    /// conversation in memory.
    fn durable_appends(&self) -> Option<u64> {
        None
    }

    /// The conversation passed from the agent `from` to `to` through the transfer call
    /// `call_id`: a store shows `to` as the conversation's agent from now on (a listing
    /// otherwise names the agent it started with), and may note when it happened.
    fn handed_off(&self, call_id: &str, from: &str, to: &str) {
        let _ = (call_id, from, to);
    }

    /// A guardrail tripped (the session's `GuardrailTripped` event), for a record that
    /// outlives the session. Only the guardrail, the stage and the reason: the text it stopped
    /// is not passed, since it may be the very content the guardrail keeps out.
    fn guardrail_tripped(&self, guardrail: &str, stage: GuardrailStage, reason: &str) {
        let _ = (guardrail, stage, reason);
    }

    /// Reads the stored conversation back, every item in order with its key, for a replay into
    /// a new connection. Only called when [`durable_appends`](Self::durable_appends) answers.
    fn load(&self) -> DurableWrite<Vec<(String, Item)>> {
        Box::pin(std::future::ready(Err(
            "this history sink cannot read the conversation back".to_owned(),
        )))
    }
}

/// What the store knew about a call when its start was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStart {
    /// Never seen: recorded now; the tool runs.
    New,
    /// Started before and never finished (an earlier run died while it ran): reported to the
    /// model as interrupted, not run again.
    Started,
    /// Finished before: this output is reused, the tool does not run again.
    Finished {
        /// The output recorded with the finish.
        output: String,
    },
    /// Another run (a node that took the call over while this one stalled) holds the
    /// conversation now: this run must not run the tool, which that run may run too. Reported
    /// to the model as interrupted.
    TakenOver,
}

/// A store operation that resolves once it is durable (or read), or with why it could not be.
pub type DurableWrite<T = ()> = Pin<Box<dyn Future<Output = Result<T, String>> + Send>>;
