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
pub const CLOSED_STDOUT_EXIT: i32 = 141;

/// Writes `text` to stdout and flushes it. Text that is already scrubbed (or holds no secret)
/// may come here directly.
///
/// When the reader went away (`agent schema | head`), the program ends at once, quietly, with
/// [`CLOSED_STDOUT_EXIT`]: nothing more it prints can be read. Any other write error (a full
/// disk) ends it with a message and status 1. Never panics, unlike `println!`.
pub fn stdout(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    if let Err(err) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        drop(out);
        stdout_failed(&err);
    }
}

/// Ends the program after a failed write to stdout (see [`stdout`]).
pub fn stdout_failed(err: &std::io::Error) -> ! {
    if err.kind() != std::io::ErrorKind::BrokenPipe {
        stderr(&format!("error: cannot write to standard output: {err}\n"));
        std::process::exit(1);
    }
    std::process::exit(CLOSED_STDOUT_EXIT)
}

/// Writes `text` to stderr; a closed stderr loses it rather than panicking.
pub fn stderr(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

pub(crate) use {errln, out, outln};

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
