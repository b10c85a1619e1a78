//! The per-user data directory follows one rule for the history database and for tickets:
//! `$XDG_DATA_HOME/agent` when that is an absolute path, else `~/.local/share/agent`.

mod common;

use std::process::Stdio;

use common::{command, text};

/// `agent ARGS` with no project overrides: only `HOME` and `XDG_DATA_HOME` (when given) say
/// where data goes.
fn agent_with_home(args: &[&str], home: &std::path::Path, xdg: Option<&str>) -> String {
    let mut cmd = command(args, home);
    cmd.env_remove("AGENT_DATA_DIR")
        .env_remove("AGENT_HISTORY_DB")
        .env("HOME", home)
        .stdin(Stdio::null());
    match xdg {
        Some(value) => cmd.env("XDG_DATA_HOME", value),
        None => cmd.env_remove("XDG_DATA_HOME"),
    };
    let output = cmd.output().expect("the agent binary runs");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
}

#[test]
fn history_and_tickets_share_the_xdg_data_directory() {
    let home = tempfile::tempdir().expect("temp dir");
    let xdg = home.path().join("xdg");
    let xdg = xdg.to_str().expect("UTF-8 path");
    agent_with_home(
        &["run", "agents/support.toml", "--offline"],
        home.path(),
        Some(xdg),
    );
    let data = home.path().join("xdg").join("agent");
    assert!(
        data.join("history.sqlite3").is_file(),
        "history is in {xdg}/agent"
    );
    assert!(
        data.join("tickets.jsonl").is_file(),
        "tickets are in {xdg}/agent"
    );
    assert!(
        !home.path().join(".local").exists(),
        "nothing went to ~/.local"
    );
}

#[test]
fn a_relative_or_missing_xdg_data_home_falls_back_to_the_home_directory() {
    let home = tempfile::tempdir().expect("temp dir");
    let expected = home.path().join(".local/share/agent/history.sqlite3");
    for xdg in [Some("relative/dir"), Some(""), None] {
        let listing = agent_with_home(&["history", "list"], home.path(), xdg);
        assert!(
            listing.contains(&expected.display().to_string()),
            "XDG_DATA_HOME={xdg:?}: {listing}"
        );
    }
}
