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
//!   [`from_jsonl`]: the lossless line-per-item format.
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

pub mod chat;
mod error;
mod id;
mod jsonl;
mod path;
mod schema;
mod store;
mod writer;

pub use error::HistoryError;
pub use id::{ConversationId, Timestamp};
pub use jsonl::{JsonlError, from_jsonl, to_jsonl};
pub use path::{HISTORY_DB_ENV, default_path};
pub use store::{Appended, ConversationSummary, Durability, HistoryStore, OpenOptions, StoredItem};
pub use writer::{ConversationWriter, HistoryWriter, Pending};
