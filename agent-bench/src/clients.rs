//! The clients of the comparison (§5) and how each is started for a run of N turns.
//!
//! - `agent run` as a user runs it: the shipped (`dist`) binary, the turns agent file, `--url` at the
//!   scripted server, typed input from a pipe; with its defaults (history on, in a fresh data
//!   folder per run), with `--no-history`, and with `--trace` (a trace file per run);
//! - the library: this bench's own child process, a `Session` of the same agent file and the
//!   same built-in tools, no console and no history;
//! - openai-agents-python and openai-agents-js, through their committed client scripts.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{child::Paced, peer_install, turns::Turns};

/// One client configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `agent run` with its defaults (history on).
    CliDefaults,
    /// `agent run --no-history`.
    CliNoHistory,
    /// `agent run --trace FILE` (history on, as by default).
    CliTrace,
    /// A `Session` in a process of its own (no console, no history).
    Library,
    /// openai-agents-python's `RealtimeRunner`.
    Python,
    /// openai-agents-js' `RealtimeSession` on the WebSocket transport.
    Js,
}

impl Client {
    /// Every client, in report order.
    pub const ALL: [Client; 6] = [
        Client::CliDefaults,
        Client::CliNoHistory,
        Client::CliTrace,
        Client::Library,
        Client::Python,
        Client::Js,
    ];

    /// The name in the report.
    pub fn label(self) -> String {
        match self {
            Client::CliDefaults => "`agent run` (defaults: history on)".to_owned(),
            Client::CliNoHistory => "`agent run --no-history`".to_owned(),
            Client::CliTrace => "`agent run --trace FILE`".to_owned(),
            Client::Library => "library (`Session`, no history)".to_owned(),
            Client::Python => format!("openai-agents-python {}", peer_install::PYTHON_SDK),
            Client::Js => format!("openai-agents-js {} (node)", peer_install::JS_SDK),
        }
    }

    /// Whether this is one of the SDKs we compare against (they run fewer turns).
    pub fn is_peer(self) -> bool {
        matches!(self, Client::Python | Client::Js)
    }
}

/// Where the clients' programs are.
#[derive(Debug, Clone)]
pub struct Programs {
    /// The shipped (`dist`) `agent` binary.
    pub agent: PathBuf,
    /// This bench's own executable (the library client is one of its modes).
    pub bench: PathBuf,
    /// The venv's python, or why there is none.
    pub python: Result<PathBuf, String>,
    /// node and the folder with the package and the client script, or why there is none.
    pub js: Result<(PathBuf, PathBuf), String>,
    /// The workspace (for the scripts).
    pub workspace: PathBuf,
}

/// The command for one run of `turns` turns against `url`; `scratch` is a fresh folder the run
/// may write to (history, trace). `None`: the client is not available (the reason is in
/// [`Programs`]).
pub fn command(
    client: Client,
    programs: &Programs,
    scenario: &Turns,
    url: &str,
    turns: usize,
    scratch: &Path,
) -> Option<(Command, Option<Paced>)> {
    let paced = Paced {
        line: scenario.user_text.clone(),
        turns,
        reply_marker: "assistant › ".to_owned(),
    };
    let cli = |extra: &[&str]| {
        let mut cmd = Command::new(&programs.agent);
        cmd.arg("run")
            .arg(&scenario.agent_file)
            .args(["--url", url])
            .args(extra)
            // The default history database lives in the user's data folder: a fresh one per
            // run keeps runs independent and the user's own history untouched.
            .env("XDG_DATA_HOME", scratch)
            .env_remove("AGENT_HISTORY_DB")
            .env_remove("RUST_LOG");
        (cmd, Some(paced.clone()))
    };
    match client {
        Client::CliDefaults => Some(cli(&[])),
        Client::CliNoHistory => Some(cli(&["--no-history"])),
        Client::CliTrace => {
            let trace = scratch.join("trace.jsonl");
            Some(cli(&["--trace", &trace.display().to_string()]))
        }
        Client::Library => {
            let mut cmd = Command::new(&programs.bench);
            cmd.arg("--library-client").arg(url).arg(turns.to_string());
            Some((cmd, None))
        }
        Client::Python => {
            let python = programs.python.as_ref().ok()?;
            let mut cmd = Command::new(python);
            cmd.arg(programs.workspace.join("agent-bench/python/sdk_client.py"))
                .arg(url)
                .arg(turns.to_string())
                .arg(&scenario.user_text);
            Some((cmd, None))
        }
        Client::Js => {
            let (node, folder) = programs.js.as_ref().ok()?;
            let mut cmd = Command::new(node);
            cmd.current_dir(folder)
                .arg(folder.join(peer_install::JS_SCRIPT))
                .arg(url)
                .arg(turns.to_string())
                .arg(&scenario.user_text);
            Some((cmd, None))
        }
    }
}
