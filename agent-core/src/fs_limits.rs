//! How much of each kind of user-named file is read, and the one way they are read.
//!
//! Every file whose path a user gives goes through [`read_text`] (or [`open_regular`] for
//! streamed files): only regular files are opened, so a device, FIFO or directory is refused
//! instead of hanging the process or filling its memory, and reading stops one byte past the
//! kind's limit below whatever the file's metadata claims. The limits are far above any real
//! file of each kind; they exist so that a wrong path fails with a message.
//!
//! The implementation lives in the small `agent-fs-limits` crate, which `agent-testkit` (which
//! must not depend on this crate) uses for scenario files too.

pub use agent_fs_limits::{ReadError, Size, check_regular, open_regular, read_bytes, read_text};

/// An agent file (`agents/NAME.toml`). Real ones are a few KiB.
pub const MAX_AGENT_FILE_BYTES: u64 = 1 << 20;

/// An `instructions_file`: the model's instructions are sent in every `session.update`, and a
/// prompt of a mebibyte is already far past what a model reads usefully.
pub const MAX_INSTRUCTIONS_BYTES: u64 = 1 << 20;

/// A price table (`--prices`, `price_table`): a few lines per model.
pub const MAX_PRICE_TABLE_BYTES: u64 = 1 << 20;

/// A conversation for `agent history import`: room for very long transcripts, which are held
/// in memory whole while they are checked and stored.
pub const MAX_HISTORY_IMPORT_BYTES: u64 = 64 << 20;

/// One line of a trace (`agent trace summarize`). Traces are streamed, so the file's length is
/// not limited, but each line is held whole; a WebSocket frame is at most 16 MiB, and a trace
/// line is one frame plus a few fields.
pub const MAX_TRACE_LINE_BYTES: u64 = 20 << 20;

/// The longest WAV input (`--input-audio`), in seconds: an hour of audio.
pub const MAX_WAV_SECONDS: u64 = 3600;

/// The most samples a WAV input may decode to, whatever its rate and channel count: an hour of
/// 48 kHz stereo (about 660 MiB as 16-bit samples). Checked against the header before decoding.
pub const MAX_WAV_SAMPLES: u64 = MAX_WAV_SECONDS * 48_000 * 2;
