//! The support demo: orders, help-center articles and tickets for Acme's online shop.
//!
//! The data set lives in `agents/data/support/` and is compiled in with `include_str!`, so the
//! binary works from any directory. Tickets are appended to `tickets.jsonl` in the data
//! directory (see [`tickets::data_dir`]).

pub mod help_center;
pub mod orders;
pub mod tickets;

pub use help_center::search_help_center;
pub use orders::lookup_order;
pub use tickets::{Priority, create_ticket};
