//! stdio servers: a child process that speaks newline-delimited JSON-RPC on its standard input
//! and output, as an rmcp [`Transport`].
//!
//! rmcp runs the protocol (handshake, request ids, cancellation); this module starts the
//! process and frames its messages, because that is where a misbehaving server shows:
//!
//! - the process starts in its own process group (on Unix) and the whole group is killed when
//!   the transport is closed or dropped, so a session that ends leaves nothing running (an
//!   `npx` wrapper's node process included);
//! - it sees only the environment it is given (see [`super::spec::INHERITED_ENV`]);
//! - its stderr is read all along (a full pipe would block it) and the last lines are kept for
//!   messages;
//! - a line that is not a JSON-RPC message, or is longer than the limit, is skipped with a
//!   warning and remembered; when stdout closes, why the process ended (its exit status) is
//!   recorded, so a call that was waiting fails at once with that reason.

use std::{
    io,
    path::{Path, PathBuf},
    process::Stdio,
    sync::Arc,
    time::Duration,
};

use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop};
use rmcp::{
    RoleClient,
    service::{RxJsonRpcMessage, TxJsonRpcMessage},
    transport::Transport,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    process::{ChildStderr, ChildStdin, ChildStdout},
    sync::{Mutex, oneshot},
};

use super::{
    McpError,
    spec::{INHERITED_ENV, McpClientSpec},
    state::ServerState,
};
use crate::tool::EnvTemplate;

/// How long a closing server may take to exit by itself once its input is closed, before its
/// process group is killed.
const EXIT_GRACE: Duration = Duration::from_millis(300);

/// A running stdio server, as an rmcp transport.
pub(crate) struct StdioTransport {
    stdout: BufReader<ChildStdout>,
    line: Vec<u8>,
    /// Inside a line that went over the limit: skip to its end.
    discarding: bool,
    max_line: usize,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    /// Sending (or dropping) it makes the supervisor kill the process group.
    kill: Option<oneshot::Sender<()>>,
    state: Arc<ServerState>,
}

/// Kills the child's process group when dropped, whatever happened before (also when the
/// runtime that ran its supervisor is gone).
struct ChildGuard(Option<Box<dyn ChildWrapper>>);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // Synchronous (a signal), so it works without a runtime, during a panic too.
            let _ = child.start_kill();
        }
    }
}

/// Starts the server `spec` declares. `base` is the agent file's folder: a relative `cwd` or
/// command path is taken from there.
pub(crate) fn spawn(
    spec: &McpClientSpec,
    base: &Path,
    state: Arc<ServerState>,
    max_line: usize,
) -> Result<StdioTransport, McpError> {
    let server = spec.name().to_owned();
    let program = spec.command.clone().unwrap_or_default();
    let fail = |reason: String| McpError::Spawn {
        server: server.clone(),
        command: program.clone(),
        reason,
    };
    let cwd = base.join(spec.cwd.as_deref().unwrap_or("."));
    let mut command = tokio::process::Command::new(program_path(&program, &cwd));
    command
        .args(&spec.args)
        .current_dir(&cwd)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for variable in INHERITED_ENV
        .iter()
        .copied()
        .chain(spec.inherit_env.iter().map(String::as_str))
    {
        if let Some(value) = std::env::var_os(variable) {
            command.env(variable, value);
        }
    }
    for (variable, template) in &spec.env {
        let value = EnvTemplate::parse(template)
            .map_err(|err| fail(format!("`env.{variable}`: {err}")))?
            .expand()
            .map_err(|err| fail(format!("`env.{variable}`: {err}")))?;
        command.env(variable, value);
    }
    let mut wrap = CommandWrap::from(command);
    wrap.wrap(KillOnDrop);
    #[cfg(unix)]
    wrap.wrap(process_wrap::tokio::ProcessGroup::leader());
    let mut child = wrap.spawn().map_err(|err| {
        let hint = match err.kind() {
            io::ErrorKind::NotFound if !cwd.is_dir() => {
                format!(" (the working directory {} does not exist)", cwd.display())
            }
            io::ErrorKind::NotFound => " (is it installed and on PATH?)".to_owned(),
            _ => String::new(),
        };
        fail(format!("{err}{hint}"))
    })?;
    let stdin = child.stdin().take();
    let stdout = child.stdout().take();
    let stderr = child.stderr().take();
    let guard = ChildGuard(Some(child));
    let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
        return Err(fail(
            "its standard input or output could not be opened".into(),
        ));
    };
    if let Some(stderr) = stderr {
        state.stderr_opened();
        tokio::spawn(collect_stderr(stderr, state.clone()));
    }
    let (kill, killed) = oneshot::channel();
    tokio::spawn(supervise(guard, killed, state.clone()));
    Ok(StdioTransport {
        stdout: BufReader::new(stdout),
        line: Vec::new(),
        discarding: false,
        max_line,
        stdin: Arc::new(Mutex::new(Some(stdin))),
        kill: Some(kill),
        state,
    })
}

/// Owns the process: records its exit status as soon as it exits (whoever notices the end
/// first, reading or writing, can then say why), and kills its process group when asked, when
/// the transport is dropped, or once the leader exited (anything it left behind).
async fn supervise(
    mut guard: ChildGuard,
    mut killed: oneshot::Receiver<()>,
    state: Arc<ServerState>,
) {
    let Some(child) = guard.0.as_mut() else {
        return;
    };
    let exited = tokio::select! {
        biased;
        status = child.wait() => Some(status),
        _ = &mut killed => None,
    };
    let status = match exited {
        Some(status) => status,
        None => {
            let _ = child.start_kill();
            tokio::time::timeout(EXIT_GRACE, child.wait())
                .await
                .unwrap_or_else(|_| Err(io::Error::other("it did not die")))
        }
    };
    let _ = child.start_kill();
    state.set_exit(match status {
        Ok(status) => status.to_string(),
        Err(err) => format!("its status is unknown: {err}"),
    });
}

/// A command with a path separator is taken relative to the server's working directory, on
/// every platform; a bare name is looked up on `PATH`.
fn program_path(program: &str, cwd: &Path) -> PathBuf {
    let path = Path::new(program);
    if path.is_relative() && path.components().count() > 1 {
        cwd.join(path)
    } else {
        path.to_path_buf()
    }
}

/// Reads stderr to its end, keeping the last lines (each cut to a readable length).
async fn collect_stderr(mut stderr: ChildStderr, state: Arc<ServerState>) {
    const LINE_MAX: usize = 4096;
    let mut buffer = vec![0u8; 8192];
    let mut line = Vec::new();
    while let Ok(read) = stderr.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        for &byte in &buffer[..read] {
            if byte == b'\n' {
                state.stderr_line(&line);
                line.clear();
            } else if line.len() < LINE_MAX {
                line.push(byte);
            }
        }
    }
    state.stderr_line(&line);
    state.stderr_closed();
}

/// What reading one line gave.
enum LineRead {
    /// `self.line` holds a complete line (without its newline).
    Line,
    /// A line went over the limit; it is being skipped.
    Oversized,
    /// stdout closed.
    Closed(Option<io::Error>),
}

impl StdioTransport {
    /// Reads up to the next newline into `self.line`. Cancel-safe: rmcp polls `receive` inside
    /// a `select!`, so everything read so far stays in `self`, never in a local.
    async fn read_line(&mut self) -> LineRead {
        loop {
            let available = match self.stdout.fill_buf().await {
                Ok(available) => available,
                Err(err) => return LineRead::Closed(Some(err)),
            };
            if available.is_empty() {
                return LineRead::Closed(None);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let chunk = &available[..newline.map_or(available.len(), |at| at + 1)];
            let used = chunk.len();
            let mut oversized = false;
            if !self.discarding {
                if self.line.len() + used > self.max_line {
                    oversized = true;
                    let room = self.max_line.saturating_sub(self.line.len()).min(200);
                    self.line.extend_from_slice(&chunk[..room.min(chunk.len())]);
                } else {
                    self.line.extend_from_slice(chunk);
                }
            }
            self.stdout.consume(used);
            if oversized {
                self.discarding = newline.is_none();
                return LineRead::Oversized;
            }
            if newline.is_some() {
                if self.discarding {
                    self.discarding = false;
                    continue;
                }
                return LineRead::Line;
            }
        }
    }

    /// Why the process ended, once its stdout closed: its exit status, if it comes soon.
    async fn exit_reason(&mut self, error: Option<io::Error>) -> String {
        if self.kill.is_none() {
            return "it was shut down".to_owned();
        }
        let status = self.state.exit_within(EXIT_GRACE).await;
        self.state.stderr_read(EXIT_GRACE).await;
        match (status, error) {
            (Some(status), _) => format!("it exited ({status})"),
            (None, Some(err)) => format!("reading its output failed: {err}"),
            (None, None) => "it closed its standard output".to_owned(),
        }
    }
}

impl Transport<RoleClient> for StdioTransport {
    type Error = io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let stdin = Arc::clone(&self.stdin);
        let bytes = serde_json::to_vec(&item).map(|mut bytes| {
            bytes.push(b'\n');
            bytes
        });
        async move {
            let bytes = bytes.map_err(io::Error::other)?;
            let mut stdin = stdin.lock().await;
            let Some(pipe) = stdin.as_mut() else {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "the server's input is closed",
                ));
            };
            pipe.write_all(&bytes).await?;
            pipe.flush().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            match self.read_line().await {
                LineRead::Line => {}
                LineRead::Oversized => {
                    let limit = self.max_line;
                    self.state.junk(
                        &format!("a message over the {limit}-byte limit"),
                        &self.line,
                    );
                    self.line.clear();
                    continue;
                }
                LineRead::Closed(error) => {
                    let why = self.exit_reason(error).await;
                    self.state.set_ended(why);
                    return None;
                }
            }
            let line = std::mem::take(&mut self.line);
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<RxJsonRpcMessage<RoleClient>>(text) {
                Ok(message) => return Some(message),
                Err(_) => self
                    .state
                    .junk("a line that is not a JSON-RPC message", text),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        // End of input asks the server to exit; a server that does not is killed, with
        // everything it started.
        if let Ok(mut stdin) = tokio::time::timeout(EXIT_GRACE, self.stdin.lock()).await {
            stdin.take();
        }
        // The kill switch is dropped if this is cancelled: the group is killed then too.
        if self.kill.is_some() {
            self.state.set_ended("it was shut down".to_owned());
            self.state.exit_within(EXIT_GRACE).await;
            if let Some(kill) = self.kill.take() {
                let _ = kill.send(());
            }
            self.state.exit_within(EXIT_GRACE).await;
        }
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn shell(script: &str) -> McpClientSpec {
        toml::from_str(&format!(
            "name = \"sh\"\ncommand = \"sh\"\nargs = [\"-c\", {}]",
            serde_json::to_string(script).unwrap()
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn oversized_and_junk_lines_are_skipped_and_remembered() {
        let state = Arc::new(ServerState::new("sh"));
        let script = "head -c 300 /dev/zero | tr '\\0' x; echo; echo 'log line'; \
             echo '{\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}'; \
             echo 'bye' >&2; exit 4";
        let mut transport = spawn(&shell(script), Path::new("/"), state.clone(), 100).unwrap();
        let message = transport
            .receive()
            .await
            .expect("the valid line after the junk");
        let text = serde_json::to_string(&message).unwrap();
        assert!(text.contains("notifications/tools/list_changed"), "{text}");
        assert!(transport.receive().await.is_none(), "then the end");
        assert_eq!(state.ended().as_deref(), Some("it exited (exit status: 4)"));
        let details = state.details();
        assert!(
            details.contains("2 message(s) that were skipped")
                && details.contains("a message over the 100-byte limit: `xxx")
                && details.contains("its last words on stderr: `bye`"),
            "{details}"
        );
    }

    #[tokio::test]
    async fn sends_reach_the_process_and_close_kills_it() {
        let state = Arc::new(ServerState::new("sh"));
        // Echoes its input back: what we send arrives as one line.
        let mut transport =
            spawn(&shell("exec cat"), Path::new("/"), state.clone(), 1 << 20).unwrap();
        let notification: TxJsonRpcMessage<RoleClient> = serde_json::from_value(
            serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        )
        .unwrap();
        transport.send(notification).await.unwrap();
        transport.line.clear();
        assert!(matches!(transport.read_line().await, LineRead::Line));
        assert!(String::from_utf8_lossy(&transport.line).contains("notifications/initialized"));
        transport.close().await.unwrap();
        assert_eq!(state.ended().as_deref(), Some("it was shut down"));
        // `cat` exits by itself once its input closes.
        assert_eq!(
            state.exit_within(Duration::ZERO).await.as_deref(),
            Some("exit status: 0")
        );
    }
}
