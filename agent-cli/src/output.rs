//! Everything the CLI prints goes through here, scrubbed of known secret values.
//!
//! A server can echo the API key back in an error, and a model can repeat a token in its
//! reply or a tool's arguments; the library registers every secret it reads
//! (`agent_core::redact`), and these macros replace them before anything reaches the terminal.
//! Streamed replies use a `StreamScrubber` instead (see `console`), since a secret can be split
//! across deltas.

/// `println!`, scrubbed; a closed stdout ends the program quietly (see [`stdout`]).
macro_rules! outln {
    () => { $crate::output::stdout("\n") };
    ($($arg:tt)*) => {
        $crate::output::stdout(&(agent_core::redact::scrub(&format!($($arg)*)) + "\n"))
    };
}

/// `print!`, scrubbed, and flushed at once (replies stream in pieces).
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::stdout(&agent_core::redact::scrub(&format!($($arg)*))) };
}

/// `eprintln!`, scrubbed; a closed stderr is ignored.
macro_rules! errln {
    () => { $crate::output::stderr("\n") };
    ($($arg:tt)*) => {
        $crate::output::stderr(&(agent_core::redact::scrub(&format!($($arg)*)) + "\n"))
    };
}

/// The exit status when stdout is closed under us: 128 + SIGPIPE, what a shell reports for a
/// program that the closed pipe ended (`agent schema | head`).
pub const CLOSED_STDOUT_EXIT: u8 = 141;

/// Set once stdout is found closed while a run ends gracefully (see [`on_closed_stdout`]).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Set by `--log-format json`: stderr is then for log records only, which a collector parses
/// line by line, so status lines become records too (see [`status`]).
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Notes that stderr carries JSON log records only.
pub fn set_json_logs() {
    JSON_LOGS.store(true, Ordering::Relaxed);
}

/// A status line for whoever watches stderr: as it is for people, or an info record when the
/// log is JSON (a plain line there would break a collector's parsing).
pub fn status(text: &str) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::info!("{text}");
    } else {
        stderr(&(agent_core::redact::scrub(text) + "\n"));
    }
}

/// The error a command ended with: `error: ...` for people, an error record in a JSON log.
pub fn failure(err: &anyhow::Error) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        tracing::error!("{err:#}");
    } else {
        stderr(&(agent_core::redact::scrub(&format!("error: {err:#}")) + "\n"));
    }
}

/// Where a closed stdout is reported instead of ending the process, while a session runs.
static CLOSED_HOOK: Mutex<Option<tokio::sync::mpsc::Sender<()>>> = Mutex::new(None);

/// While a session runs, a closed stdout must not end the process at once: the session closes
/// and queued history is written first, as on Ctrl-C. Registers `hook` to be told instead;
/// output is discarded from then on and [`stdout_closed`] says so.
pub fn on_closed_stdout(hook: tokio::sync::mpsc::Sender<()>) {
    *CLOSED_HOOK.lock().unwrap_or_else(PoisonError::into_inner) = Some(hook);
}

/// Whether stdout was found closed during a run that ends gracefully.
pub fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes `text` to stdout and flushes it. Text that is already scrubbed (or holds no secret)
/// may come here directly.
///
/// When the reader went away (`agent schema | head`), the program ends at once, quietly, with
/// [`CLOSED_STDOUT_EXIT`]: nothing more it prints can be read. (During a session, see
/// [`on_closed_stdout`].) Any other write error (a full disk) ends it with a message and
/// status 1. Never panics, unlike `println!`.
pub fn stdout(text: &str) {
    use std::io::Write as _;
    if stdout_closed() {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        drop(out);
        stdout_failed(&err);
    }
}

/// Ends the program after a failed write to stdout (see [`stdout`]), or, for a closed stdout
/// while a session runs, tells the run to end.
pub fn stdout_failed(err: &std::io::Error) {
    if err.kind() != std::io::ErrorKind::BrokenPipe {
        stderr(&format!("error: cannot write to standard output: {err}\n"));
        std::process::exit(1);
    }
    let hook = CLOSED_HOOK
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match hook {
        Some(hook) => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            let _ = hook.try_send(());
        }
        None => std::process::exit(i32::from(CLOSED_STDOUT_EXIT)),
    }
}

/// Writes `text` to stderr; a closed stderr loses it rather than panicking.
pub fn stderr(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

pub(crate) use {errln, out, outln};

use std::sync::{
    Mutex, PoisonError,
    atomic::{AtomicBool, Ordering},
};

/// A `tracing` writer for stderr that scrubs each formatted record before it is written.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScrubbedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbingWriter;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbingWriter { buffer: Vec::new() }
    }
}

/// Collects one log record and writes it, scrubbed, when dropped.
#[derive(Debug)]
pub struct ScrubbingWriter {
    buffer: Vec<u8>,
}

impl std::io::Write for ScrubbingWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbingWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let _ = std::io::Write::write_all(
            &mut std::io::stderr().lock(),
            agent_core::redact::scrub(&text).as_bytes(),
        );
    }
}
