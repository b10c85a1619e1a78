//! Everything the CLI prints goes through here, scrubbed of known secret values.
//!
//! A server can echo the API key back in an error, and a model can repeat a token in its
//! reply or a tool's arguments; the library registers every secret it reads
//! (`agent_core::redact`), and these macros replace them before anything reaches the terminal.
//! Streamed replies use a `StreamScrubber` instead (see `console`), since a secret can be split
//! across deltas.

/// `println!`, scrubbed.
macro_rules! outln {
    () => { println!() };
    ($($arg:tt)*) => { println!("{}", agent_core::redact::scrub(&format!($($arg)*))) };
}

/// `print!`, scrubbed.
macro_rules! out {
    ($($arg:tt)*) => { print!("{}", agent_core::redact::scrub(&format!($($arg)*))) };
}

/// `eprintln!`, scrubbed.
macro_rules! errln {
    () => { eprintln!() };
    ($($arg:tt)*) => { eprintln!("{}", agent_core::redact::scrub(&format!($($arg)*))) };
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
