//! What is known about one server's health, for error messages: where its start-up got to, its
//! last lines on stderr, output that was not JSON-RPC, and why it stopped.
//!
//! Everything stored here is scrubbed of known secrets first: these texts end up in errors the
//! model reads, not only in the terminal.

use std::{
    collections::VecDeque,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
};

/// Lines of stderr kept for messages.
const STDERR_LINES: usize = 5;
/// The longest stderr line or junk excerpt kept, in characters.
const EXCERPT_CHARS: usize = 200;
/// Lines that are not JSON-RPC are logged as warnings this many times per server; the rest
/// are only counted.
const JUNK_WARNINGS: usize = 3;

/// The health record of one server, shared by its transport and its tools.
#[derive(Debug)]
pub(crate) struct ServerState {
    name: String,
    stage: Mutex<&'static str>,
    stderr: Mutex<VecDeque<String>>,
    ended: Mutex<Option<String>>,
    junk: AtomicUsize,
    first_junk: Mutex<Option<String>>,
    /// Whether a process's stderr is still being read (false for HTTP servers).
    stderr_open: tokio::sync::watch::Sender<bool>,
    /// A process's exit status, once it exited.
    exit: tokio::sync::watch::Sender<Option<String>>,
}

impl ServerState {
    pub(crate) fn new(name: &str) -> Self {
        ServerState {
            name: name.to_owned(),
            stage: Mutex::new("starting"),
            stderr: Mutex::new(VecDeque::new()),
            ended: Mutex::new(None),
            junk: AtomicUsize::new(0),
            first_junk: Mutex::new(None),
            stderr_open: tokio::sync::watch::Sender::new(false),
            exit: tokio::sync::watch::Sender::new(None),
        }
    }

    /// The process exited with this status (`exit status: 3`).
    pub(crate) fn set_exit(&self, status: String) {
        self.exit.send_replace(Some(status));
    }

    /// The process's exit status, waiting at most `within` for it.
    pub(crate) async fn exit_within(&self, within: std::time::Duration) -> Option<String> {
        let mut exit = self.exit.subscribe();
        let _ = tokio::time::timeout(within, exit.wait_for(Option::is_some)).await;
        self.exit.borrow().clone()
    }

    /// A process's stderr is being read from now on.
    pub(crate) fn stderr_opened(&self) {
        self.stderr_open.send_replace(true);
    }

    /// The process's stderr reached its end: every line it wrote is in.
    pub(crate) fn stderr_closed(&self) {
        self.stderr_open.send_replace(false);
    }

    /// Waits (at most `within`) until everything a process that is ending wrote to stderr was
    /// read, so a message about its end can quote it.
    pub(crate) async fn stderr_read(&self, within: std::time::Duration) {
        let mut open = self.stderr_open.subscribe();
        let _ = tokio::time::timeout(within, open.wait_for(|open| !*open)).await;
    }

    /// What start-up is doing now, for a timeout's message ("waiting for the answer to
    /// `initialize`").
    pub(crate) fn set_stage(&self, stage: &'static str) {
        *lock(&self.stage) = stage;
    }

    pub(crate) fn stage(&self) -> &'static str {
        *lock(&self.stage)
    }

    /// One line the server wrote to stderr (logged at debug level, the last few kept).
    pub(crate) fn stderr_line(&self, bytes: &[u8]) {
        let line = excerpt(&String::from_utf8_lossy(bytes));
        if line.is_empty() {
            return;
        }
        tracing::debug!("MCP server `{}` stderr: {line}", self.name);
        let mut lines = lock(&self.stderr);
        if lines.len() == STDERR_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Output that is not a JSON-RPC message (or is over the size limit) was skipped.
    pub(crate) fn junk(&self, what: &str, sample: &[u8]) {
        let count = self.junk.fetch_add(1, Ordering::Relaxed) + 1;
        let sample = excerpt(&String::from_utf8_lossy(sample));
        let note = format!("{what}: `{sample}`");
        if count <= JUNK_WARNINGS {
            tracing::warn!("MCP server `{}` sent {note}; skipped", self.name);
            if count == JUNK_WARNINGS {
                tracing::warn!(
                    "MCP server `{}`: further output like this is skipped without a warning",
                    self.name
                );
            }
        }
        lock(&self.first_junk).get_or_insert(note);
    }

    /// The server is gone, and why ("it exited (exit status: 3)").
    pub(crate) fn set_ended(&self, why: String) {
        lock(&self.ended).get_or_insert(why);
    }

    /// Why calls cannot reach the server any more, with what it said last; `None` while it
    /// has not been seen to end.
    pub(crate) fn ended(&self) -> Option<String> {
        lock(&self.ended).clone()
    }

    /// The stderr tail and skipped output, as one clause to append to a message (empty when
    /// there is nothing to tell).
    pub(crate) fn details(&self) -> String {
        let mut details = String::new();
        let lines = lock(&self.stderr);
        if !lines.is_empty() {
            let tail: Vec<&str> = lines.iter().map(String::as_str).collect();
            details.push_str(&format!(
                "; its last words on stderr: `{}`",
                tail.join(" | ")
            ));
        }
        let junk = self.junk.load(Ordering::Relaxed);
        if junk > 0
            && let Some(first) = lock(&self.first_junk).as_deref()
        {
            details.push_str(&format!(
                "; it sent {junk} message(s) that were skipped, the first {first}"
            ));
        }
        details
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `text` trimmed, cut to a readable length and scrubbed of known secrets.
fn excerpt(text: &str) -> String {
    let text = text.trim();
    let mut cut: String = text.chars().take(EXCERPT_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    crate::redact::scrub(&cut).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_keep_the_last_stderr_lines_and_the_first_junk() {
        let state = ServerState::new("s");
        assert_eq!(state.details(), "");
        for i in 0..7 {
            state.stderr_line(format!("line {i}\n").as_bytes());
        }
        state.stderr_line(b"   ");
        state.junk("a line that is not JSON-RPC", b"hello world");
        state.junk("a line that is not JSON-RPC", b"again");
        let details = state.details();
        assert!(
            details.contains("`line 2 | line 3 | line 4 | line 5 | line 6`"),
            "{details}"
        );
        assert!(details.contains("2 message(s)") && details.contains("`hello world`"));
        state.set_ended("it exited".into());
        state.set_ended("later reason".into());
        assert_eq!(state.ended().as_deref(), Some("it exited"));
    }

    #[test]
    fn excerpts_are_short_and_scrubbed() {
        crate::redact::register_secret("state-test-secret-value");
        assert_eq!(
            excerpt("token state-test-secret-value rejected"),
            "token [redacted] rejected"
        );
        let long = "é".repeat(300);
        assert_eq!(excerpt(&long).chars().count(), EXCERPT_CHARS + 1);
    }
}
