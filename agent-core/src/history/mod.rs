//! Durable conversation history: every item of every conversation, in one SQLite file.
//!
//! The session runtime appends each item as it completes; `agent history` lists, shows and
//! exports what was stored, and `agent run --resume ID` replays it into a new session. The
//! pieces:
//!
//! - [`HistoryStore`]: the database. SQLite (bundled, so nothing to install) in WAL mode,
//!   one file at [`default_path`] or anywhere else, schema versioned with `user_version`.
//! - [`HistoryWriter`]: the store on its own thread, for async code that must not wait for
//!   the disk; [`ConversationWriter`] is one conversation's handle to it.
//! - [`chat`]: conversion to and from Chat Completions messages; [`to_jsonl`] and
//!   [`from_jsonl`]: the lossless line-per-item format; [`read_import`]: either format back,
//!   refusing anything that is not an export a session can replay.
//!
//! # Item keys: how appends stay idempotent
//!
//! After a reconnect the same item can arrive again (a replayed response, a call seen in both
//! `response.output_item.done` and `response.done`). So every append carries a **key** that
//! stays the same each time the item is seen, and [`HistoryStore::append`] writes nothing
//! when the conversation already holds that key. The runtime's keys:
//!
//! | item | key |
//! | --- | --- |
//! | `function_call` | `call:{call_id}` |
//! | `function_call_output` | `output:{call_id}` |
//! | message with a server-assigned id | `item:{id}` |
//! | client-created input (typed text) | a local key unique in the conversation, e.g. `local_000001` |
//!
//! Calls and outputs are also unique by `call_id` on their own (per item type), whatever key
//! they come with, so a call can never be stored — and so never replayed — twice. The first
//! copy wins. Keys are stored with the items ([`StoredItem::key`]), so a resumed session
//! knows which keys are taken.
//!
//! ```no_run
//! use agent_core::history::HistoryStore;
//! use agent_core::protocol::Item;
//!
//! # fn main() -> Result<(), agent_core::history::HistoryError> {
//! let mut store = HistoryStore::open_default()?;
//! let id = store.create_conversation("support", "gpt-realtime")?;
//! store.append(&id, "local_000001", &Item::user_text("Where is order A1001?"))?;
//! let call = Item::function_call("call_1", "lookup_order", r#"{"order_id":"A1001"}"#);
//! assert!(store.append(&id, "call:call_1", &call)?.inserted);
//! assert!(!store.append(&id, "call:call_1", &call)?.inserted); // seen again: not stored twice
//! # Ok(())
//! # }
//! ```
//!
//! # Leases: one run per conversation
//!
//! Two `agent run --resume ID` processes writing one conversation would interleave their
//! items, and each would believe its own were stored. So a run takes a **lease** on the
//! conversation first ([`HistoryStore::acquire_lease`]); a second run is refused with
//! [`HistoryError::ConversationInUse`], which names the holder and when its lease expires.
//!
//! A lease is an expiry renewed on a heartbeat, not a lock: the runtime takes a 15 s lease
//! and renews it every 5 s ([`HistoryStore::renew_lease`]), so a run that crashes or is
//! killed holds its conversation for 15 s at most and nothing needs cleaning up. A run that
//! stalls past its lease may be taken over; from then on its renewals and every write made
//! under the lease ([`HistoryWriter::leased_conversation`], or the store's `*_leased`
//! methods) fail with [`HistoryError::LeaseLost`], checked in the write's own transaction,
//! so the two runs' items never mix.
//!
//! # Tool-call records: each call runs once
//!
//! A tool may have effects (a refund, an email), so a call must not run twice — not after a
//! reconnect, and not after a crash and `--resume` either. The runtime records a call as
//! started ([`HistoryStore::call_started`]) before the tool runs and as finished with its
//! output ([`HistoryStore::call_finished`]) after. A resumed run asks before running a call:
//!
//! | recorded | [`CallRecordState`] | the runtime |
//! | --- | --- | --- |
//! | nothing | `New` | runs the tool |
//! | started, not finished | `Started` | reports the call to the model as interrupted, does not run it |
//! | finished | `Finished { output }` | reuses the stored output, does not run the tool |
//!
//! The start record is on every call's hot path, so it commits without an fsync: it reaches
//! the write-ahead log, and so the OS, before the tool runs, which is what survives the
//! process being killed. Calls and leases go with their conversation when it is deleted.

mod batch_cache;
mod calls;
pub mod chat;
mod db;
mod error;
mod events;
mod id;
mod import;
mod jsonl;
mod lease;
mod path;
mod phone_calls;
mod rate_limits;
mod schema;
mod store;
#[cfg(test)]
mod testdb;
mod webhooks;
mod writer;

pub use calls::{CallRecord, CallRecordState};
pub use db::{DbError, DbErrorKind};
pub use error::HistoryError;
pub use events::{ConversationEvent, StoredEvent};
pub use id::{ConversationId, Timestamp};
pub use import::{ImportError, parse_import, read_import};
pub use jsonl::{JsonlError, REPLAYABLE_ITEM_TYPES, from_jsonl, to_jsonl};
pub use lease::Lease;
pub use path::{HISTORY_DB_ENV, default_path, is_database_url};
pub use phone_calls::{FoundCall, OrphanedCall, PhoneCallRecord};
pub use rate_limits::RateLimit;
pub use store::{Appended, ConversationSummary, Durability, HistoryStore, OpenOptions, StoredItem};
pub use writer::{COMMIT_DELAY, ConversationWriter, HistoryWriter, Pending};
