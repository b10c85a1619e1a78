//! Every flag an error message or hint names is a flag the program takes. A hint that names a
//! flag the command rejects (`--db` to `agent run`) sends a new user in circles.

mod common;

use std::{collections::BTreeSet, path::Path};

use common::{agent, text, workspace};

/// Every `--flag` written in the Rust sources under `dir` (hints, error messages, docs).
fn flags_in(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            flags_in(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let source = std::fs::read_to_string(&path).expect("read source");
            found.extend(flags_of(&source));
        }
    }
}

/// The `--flag` words of `text`.
fn flags_of(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start + 2;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'-') {
            end += 1;
        }
        let word = &text[start..end];
        let standalone = before.is_none_or(|b| !b.is_ascii_alphanumeric() && b != b'-');
        if standalone && word.len() > 3 && !word.ends_with('-') {
            found.insert(word.to_owned());
        }
        i = end.max(start + 2);
    }
    found
}

/// The help text of `agent ARGS --help`.
fn help(args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut full = args.to_vec();
    full.push("--help");
    let output = agent(&full, dir.path());
    assert!(
        output.status.success(),
        "agent {full:?}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[test]
fn history_hints_name_a_flag_of_both_commands_that_show_them() {
    // The store's errors reach the user through `agent run` as well as `agent history`.
    let errors = std::fs::read_to_string(workspace().join("agent-core/src/history/error.rs"))
        .expect("read the history errors");
    let flags = flags_of(&errors);
    assert!(flags.contains("--history-db"), "{flags:?}");
    let run = help(&["run"]);
    let history = help(&["history", "list"]);
    // Every flag they name is `agent run`'s (some, like --resume, only make sense there) ...
    for flag in &flags {
        assert!(run.contains(flag.as_str()), "`agent run` has no {flag}");
    }
    // ... and the one that picks the database is the same flag for both commands.
    assert!(history.contains("--history-db"), "{history}");
}

#[test]
fn every_flag_the_sources_mention_exists() {
    let mut flags = BTreeSet::new();
    for dir in [
        "agent-core/src",
        "agent-cli/src",
        "tools/src",
        "agent-testkit/src",
        "agent-server/src",
    ] {
        flags_in(&workspace().join(dir), &mut flags);
    }
    let mut helps = String::new();
    for args in [
        &["run"][..],
        &["test"],
        &["check"],
        &["schema"],
        &["mock"],
        &["mock-mcp"],
        &["serve"],
        &["call"],
        &["console"],
        &["tools"],
        &["history", "list"],
        &["history", "show"],
        &["history", "export"],
        &["history", "import"],
        &["trace", "summarize"],
        &["trace", "to-scenario"],
        &["completions"],
        &["new", "tool"],
        &["new", "agent"],
    ] {
        helps.push_str(&help(args));
    }
    // Flags of other programs that the sources quote (cargo's, the test harness's).
    let elsewhere = [
        "--release",
        "--features",
        "--example",
        "--nocapture",
        "--workspace",
    ];
    let unknown: Vec<&String> = flags
        .iter()
        .filter(|flag| !elsewhere.contains(&flag.as_str()) && !helps.contains(flag.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "flags named in the sources that no command takes: {unknown:?}"
    );
}

#[test]
fn the_flag_scanner_finds_flags_and_nothing_else() {
    let found = flags_of("pass --history-db PATH; `--url`; a -- b; x--y; --; ---");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["--history-db", "--url"]
    );
}
