//! `agent history` run as a user would: conversations are written through the library into a
//! database in a temporary folder, then the built binary lists, shows, exports and imports
//! them, found through `--db` or `AGENT_HISTORY_DB`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use agent_core::history::{ConversationId, HistoryStore};
use agent_core::protocol::{ContentPart, Item, Role};
use serde_json::Value;

struct Fixture {
    _dir: tempfile::TempDir,
    db: PathBuf,
    support: ConversationId,
    other: ConversationId,
}

/// Two conversations: a support call with spoken turns, a text answer with a tool call, and a
/// response with two parallel calls; and a short one.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("data").join("history.sqlite3");
    let mut store = HistoryStore::open(&db).expect("open store");
    let support = store
        .create_conversation("support", "gpt-realtime")
        .expect("create");
    let spoken = |role: Role, transcript: &str| {
        let part = match role {
            Role::User => ContentPart::InputAudio {
                audio: None,
                transcript: Some(transcript.into()),
            },
            _ => ContentPart::OutputAudio {
                audio: None,
                transcript: Some(transcript.into()),
            },
        };
        Item::message(role, vec![part])
    };
    let items = [
        ("item:u1", spoken(Role::User, "Where is order A1001?")),
        (
            "item:a1",
            Item::assistant_text("Let me look that up.").with_id("a1"),
        ),
        (
            "call:c1",
            Item::function_call("c1", "lookup_order", r#"{"order_id":"A1001"}"#),
        ),
        (
            "output:c1",
            Item::function_call_output("c1", r#"{"status":"shipped"}"#),
        ),
        ("item:a2", spoken(Role::Assistant, "It shipped yesterday.")),
        ("local_000001", Item::user_text("And B2002 and C3003?")),
        (
            "call:c2",
            Item::function_call("c2", "lookup_order", r#"{"order_id":"B2002"}"#),
        ),
        (
            "call:c3",
            Item::function_call("c3", "lookup_order", r#"{"order_id":"C3003"}"#),
        ),
        (
            "output:c3",
            Item::function_call_output("c3", r#"{"status":"pending"}"#),
        ),
        (
            "output:c2",
            Item::function_call_output("c2", r#"{"status":"delivered"}"#),
        ),
        (
            "item:a3",
            spoken(Role::Assistant, "B2002 was delivered; C3003 is pending."),
        ),
    ];
    for (key, item) in &items {
        store.append(&support, key, item).expect("append");
    }
    // A replayed call after a reconnect is not stored twice.
    let replay = Item::function_call("c1", "lookup_order", r#"{"order_id":"A1001"}"#);
    assert!(
        !store
            .append(&support, "call:c1", &replay)
            .expect("append")
            .inserted
    );

    // Listing order is by update time; make sure the second conversation is newer.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let other = store
        .create_conversation("faq", "gpt-realtime-mini")
        .expect("create");
    store
        .append(&other, "local_000001", &Item::user_text("hello"))
        .expect("append");
    Fixture {
        _dir: dir,
        db,
        support,
        other,
    }
}

fn agent(args: &[&str], env_db: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent"));
    command.args(args).env_remove("AGENT_HISTORY_DB");
    if let Some(db) = env_db {
        command.env("AGENT_HISTORY_DB", db);
    }
    command.output().expect("the agent binary runs")
}

fn ok(args: &[&str], db: &Path) -> String {
    let mut full = vec!["history", "--db", db.to_str().expect("UTF-8 path")];
    full.extend_from_slice(args);
    let output = agent(&full, None);
    assert!(
        output.status.success(),
        "agent {full:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

#[test]
fn list_shows_a_table_newest_first() {
    let f = fixture();
    let text = ok(&["list"], &f.db);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for column in ["ID", "AGENT", "UPDATED", "ITEMS", "TITLE"] {
        assert!(lines[0].contains(column), "header: {}", lines[0]);
    }
    // The short conversation was created (and updated) last.
    assert!(lines[1].starts_with(f.other.as_str()), "{text}");
    assert!(lines[2].starts_with(f.support.as_str()), "{text}");
    let support: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(support[1], "support");
    assert_eq!(
        support[4], "11",
        "eleven items, the replayed call not counted: {text}"
    );
    assert!(lines[2].ends_with("Where is order A1001?"), "{text}");

    let json: Value = serde_json::from_str(&ok(&["list", "--json"], &f.db)).expect("JSON");
    let list = json.as_array().expect("array");
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["id"], f.support.as_str());
    assert_eq!(list[1]["item_count"], 11);
    assert_eq!(list[1]["model"], "gpt-realtime");
}

#[test]
fn the_database_can_come_from_the_environment() {
    let f = fixture();
    let output = agent(&["history", "list"], Some(&f.db));
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains(f.support.as_str()), "{text}");
}

#[test]
fn show_prints_a_transcript() {
    let f = fixture();
    let text = ok(&["show", f.support.as_str()], &f.db);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with(f.support.as_str()), "{text}");
    assert!(lines[0].contains("agent support"), "{text}");
    let body = &lines[2..];
    assert_eq!(body[0], "you (spoken) › Where is order A1001?");
    assert_eq!(body[1], "assistant › Let me look that up.");
    assert_eq!(body[2], r#"  → lookup_order({"order_id":"A1001"})"#);
    assert_eq!(body[3], r#"  ← lookup_order: {"status":"shipped"}"#);
    assert_eq!(body[4], "assistant › It shipped yesterday.");
    assert_eq!(body[5], "you › And B2002 and C3003?");
    assert_eq!(body.len(), 11, "{text}");

    // A unique prefix and `latest` work too.
    let prefix = &f.other.as_str()[..f.other.as_str().len() - 2];
    assert!(ok(&["show", prefix], &f.db).contains("you › hello"));
    assert!(ok(&["show", "latest"], &f.db).contains("you › hello"));
}

#[test]
fn export_chat_completions_is_valid_chat() {
    let f = fixture();
    let text = ok(
        &["export", f.support.as_str(), "--format", "chat-completions"],
        &f.db,
    );
    let messages: Vec<Value> = serde_json::from_str(&text).expect("a JSON array");
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().expect("role"))
        .collect();
    assert_eq!(
        roles,
        [
            "user",
            "assistant",
            "tool",
            "assistant",
            "user",
            "assistant",
            "tool",
            "tool",
            "assistant"
        ]
    );
    // Every message has a valid role and content; every tool message answers a call of the
    // assistant message right before the run of tool messages it is in.
    let mut open: HashSet<String> = HashSet::new();
    for (index, message) in messages.iter().enumerate() {
        let content = &message["content"];
        match message["role"].as_str() {
            Some("tool") => {
                let id = message["tool_call_id"].as_str().expect("tool_call_id");
                assert!(open.remove(id), "message {index} answers unknown call {id}");
                assert!(content.is_string());
            }
            Some("assistant") => {
                assert!(
                    open.is_empty(),
                    "unanswered calls before message {index}: {open:?}"
                );
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    assert_eq!(call["type"], "function");
                    assert!(call["function"]["name"].is_string());
                    let arguments = call["function"]["arguments"].as_str().expect("arguments");
                    serde_json::from_str::<Value>(arguments).expect("arguments are JSON");
                    open.insert(call["id"].as_str().expect("id").to_owned());
                }
                assert!(content.is_string() || message["tool_calls"].is_array());
            }
            Some("user" | "system") => {
                assert!(
                    open.is_empty(),
                    "unanswered calls before message {index}: {open:?}"
                );
                assert!(content.is_string());
            }
            other => panic!("message {index}: role {other:?}"),
        }
    }
    assert!(open.is_empty());
    // The spoken turns are their transcripts; parallel calls share one message.
    assert_eq!(messages[0]["content"], "Where is order A1001?");
    assert_eq!(messages[1]["content"], "Let me look that up.");
    assert_eq!(messages[1]["tool_calls"][0]["id"], "c1");
    assert_eq!(messages[5]["tool_calls"].as_array().map(Vec::len), Some(2));
    assert_eq!(messages[6]["tool_call_id"], "c2");
    assert_eq!(messages[6]["content"], r#"{"status":"delivered"}"#);
}

#[test]
fn export_jsonl_has_one_item_per_line() {
    let f = fixture();
    let text = ok(&["export", f.support.as_str(), "--format", "jsonl"], &f.db);
    let items: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(items.len(), 11);
    assert_eq!(items[0]["type"], "message");
    assert_eq!(items[0]["content"][0]["type"], "input_audio");
    assert_eq!(items[2]["type"], "function_call");
    assert_eq!(items[3]["type"], "function_call_output");
    assert_eq!(items[1]["id"], "a1");
}

#[test]
fn exports_import_back() {
    let f = fixture();
    for format in ["chat-completions", "jsonl"] {
        let exported = ok(&["export", f.support.as_str(), "--format", format], &f.db);
        let file = f.db.with_file_name(format!("export.{format}"));
        std::fs::write(&file, &exported).expect("write export");
        let id = ok(
            &["import", file.to_str().expect("path"), "--agent", "support"],
            &f.db,
        );
        let id = id.trim();
        assert!(id.starts_with("conv_"), "{id}");
        let again = ok(&["export", id, "--format", format], &f.db);
        assert_eq!(again, exported, "{format} survives an import");
    }
    assert_eq!(ok(&["list"], &f.db).lines().count(), 5);
}

#[test]
fn unknown_ids_and_missing_databases_are_clear() {
    let f = fixture();
    let db = f.db.to_str().expect("path");
    let output = agent(&["history", "--db", db, "show", "conv_nope"], None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("agent history list"), "{stderr}");

    let missing = f.db.with_file_name("missing.sqlite3");
    let text = ok(&["list"], &missing);
    assert!(text.contains("no stored conversations"), "{text}");
    assert!(!missing.exists(), "listing does not create the file");
    let output = agent(
        &[
            "history",
            "--db",
            missing.to_str().expect("path"),
            "export",
            "x",
        ],
        None,
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no history database"), "{stderr}");

    let output = agent(
        &["history", "--db", db, "export", "latest", "--format", "xml"],
        None,
    );
    assert!(!output.status.success());
}

#[test]
fn import_refuses_what_is_not_an_export() {
    let f = fixture();
    let db = f.db.to_str().expect("path");
    let before = ok(&["list"], &f.db);
    let cases = [
        ("foo.jsonl", "{\"foo\":1}\n", "line 1: it has no `type`"),
        ("empty.jsonl", "", "the file is empty"),
        (
            "web.jsonl",
            "{\"type\":\"web_search_call\",\"id\":\"ws_1\"}\n",
            "item type `web_search_call` cannot be replayed",
        ),
        (
            "roles.json",
            "[{\"role\": \"wizard\", \"content\": \"hi\"}]",
            "role `wizard`",
        ),
        ("none.json", "[]", "nothing to import"),
    ];
    for (name, content, expected) in cases {
        let file = f.db.with_file_name(name);
        std::fs::write(&file, content).expect("write file");
        let output = agent(
            &[
                "history",
                "--db",
                db,
                "import",
                file.to_str().expect("path"),
            ],
            None,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name} was imported");
        assert!(
            stderr.contains(&format!("cannot import {}", file.display())),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "{name}: {stderr}");
    }
    // A directory is not read at all.
    let output = agent(&["history", "--db", db, "import", "/"], None);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is a directory, not a regular file"),
        "{stderr}"
    );
    assert_eq!(ok(&["list"], &f.db), before, "nothing was stored");
}

/// An offline run of support → billing, stopped while billing has the conversation: the list
/// names billing (the current agent, not the one it started with), and the transcript shows
/// the handoff and billing's guardrail trip, never the words the guardrail stopped.
#[test]
fn a_handoff_and_a_trip_show_in_the_history() {
    let dir = tempfile::tempdir().expect("temp dir");
    let agents = common::workspace().join("agents");
    for file in ["support.toml", "support.md", "billing.toml", "billing.md"] {
        std::fs::copy(agents.join(file), dir.path().join(file)).expect("copy the agents");
    }
    // The first turn of the example's "double charge goes to billing": it ends with billing.
    std::fs::write(
        dir.path().join("support.scenarios.toml"),
        r#"
[[scenario]]
name = "double charge"

[[scenario.turn]]
user = "I was charged twice for order A1004!"

  [[scenario.turn.model]]
  calls = [{ name = "transfer_to_billing", arguments = {} }]

  [[scenario.turn.model]]
  say = "Done, and I guarantee the duplicate charge is back on your card tomorrow."

  [[scenario.turn.model]]
  say = "I'm sorry about that. Our payments team will check the double charge."
"#,
    )
    .expect("write the scenario");
    let agent_file = dir.path().join("support.toml");
    let run = common::agent(
        &["run", agent_file.to_str().expect("UTF-8 path"), "--offline"],
        dir.path(),
    );
    assert!(
        run.status.success(),
        "{}\n{}",
        common::text(&run.stdout),
        common::text(&run.stderr)
    );
    let db = dir.path().join("history.sqlite3");

    let list = ok(&["list"], &db);
    let row = list.lines().nth(1).expect("one conversation");
    assert_eq!(
        row.split_whitespace().nth(1),
        Some("billing"),
        "the current agent: {list}"
    );

    let show = ok(&["show", "latest"], &db);
    for expected in [
        "· agent billing ·",
        "you › I was charged twice for order A1004!",
        "  ⇄ handoff: support → billing",
        "  ⚠ guardrail no guarantees tripped on output: ",
        "assistant › [answer stopped by the guardrail `no guarantees`]",
        "assistant › I'm sorry about that.",
    ] {
        assert!(show.contains(expected), "missing {expected:?} in:\n{show}");
    }
    assert!(!show.contains("transfer_to_billing"), "{show}");
    assert!(!show.contains("tomorrow"), "the stopped words: {show}");
}
