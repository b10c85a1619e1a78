//! Helpers shared by the CLI's integration tests: run the built `agent` binary as a user would,
//! but isolated from the user's own data — tools' files and the history database live in the
//! test's temporary folder, and no API key or price override leaks in from the environment.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// The workspace root, where `agents/` lives.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `agent ARGS` run from the workspace root, with its data in `dir`; stdin, stdout and stderr
/// are left to the caller.
pub fn command(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent"));
    command
        .args(args)
        .current_dir(workspace())
        .env("AGENT_DATA_DIR", dir)
        .env("AGENT_HISTORY_DB", dir.join("history.sqlite3"))
        .env_remove("OPENAI_API_KEY")
        .env_remove("AGENT_PRICES");
    command
}

/// `agent ARGS` with no input, its output collected.
pub fn agent(args: &[&str], dir: &Path) -> Output {
    command(args, dir)
        .stdin(Stdio::null())
        .output()
        .expect("the agent binary runs")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
