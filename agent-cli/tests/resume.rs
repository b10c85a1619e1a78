//! Durable conversations across a crash: `agent run` is killed with SIGKILL mid-conversation,
//! the history store keeps everything but the item in flight, and `--resume` continues the
//! conversation in a new session.

mod common;

use common::workspace;

use std::{
    io::{Read, Write},
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use agent_core::history::HistoryStore;
use agent_testkit::{
    scenario::ScenarioFile,
    server::{ScriptedServer, ServerConfig, ServerHandle},
};

fn server(runtime: &tokio::runtime::Runtime, delay: Duration) -> ServerHandle {
    let file = ScenarioFile::load(workspace().join("agents/support.scenarios.toml")).unwrap();
    let scenario = file.get("follow-up and ticket").unwrap().clone();
    runtime
        .block_on(async { ScriptedServer::start(ServerConfig::new(scenario).event_delay(delay)) })
        .unwrap()
}

fn agent(url: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut command = common::command(&["run", "agents/support.toml", "--url", url], dir);
    command
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

#[test]
fn sigkill_loses_at_most_the_item_in_flight_and_resume_continues() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // 1. A slow conversation, killed while the second answer streams in.
    let slow = server(&runtime, Duration::from_millis(15));
    let mut child = agent(&slow.url(), dir.path(), &[]).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            b"What's the status of order A1003?\nIs that the backpack? Could it come sooner?\n",
        )
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !seen.contains("Yes, order") {
        assert!(
            Instant::now() < deadline,
            "the second answer never started:\n{seen}"
        );
        if let Ok(chunk) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no goodbye.
    child.wait().unwrap();
    drop(stdin);
    runtime.block_on(slow.shutdown());

    // 2. What was written survived: the first turn completely, and the second question.
    let store = HistoryStore::open(dir.path().join("history.sqlite3")).unwrap();
    let conversations = store.conversations().unwrap();
    assert_eq!(conversations.len(), 1);
    let id = conversations[0].id.clone();
    let before = store.items(&id).unwrap();
    let keys: Vec<&str> = before.iter().map(|i| i.key.as_str()).collect();
    assert!(keys.iter().any(|k| k.starts_with("call:")), "{keys:?}");
    assert!(keys.iter().any(|k| k.starts_with("output:")), "{keys:?}");
    let users = before
        .iter()
        .filter(|i| {
            i.item
                .as_message()
                .is_some_and(|m| m.role == agent_core::protocol::Role::User)
        })
        .count();
    assert_eq!(users, 2, "both questions are stored: {keys:?}");
    drop(store);

    // 3. --resume replays it into a new session and the conversation goes on.
    let fresh = server(&runtime, Duration::ZERO);
    let mut child = agent(&fresh.url(), dir.path(), &["--resume", "latest"])
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"It's already late and I need it for a trip. Please have someone contact me.\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("resuming {id}")), "{stderr}");
    assert!(stdout.contains("→ create_ticket("), "{stdout}");
    let replayed = runtime
        .block_on(fresh.received())
        .into_iter()
        .filter_map(|e| e.value)
        .filter(|v| v["type"] == "conversation.item.create")
        .count();
    assert!(
        replayed > before.len(),
        "the stored items were replayed before the new message"
    );
    runtime.block_on(fresh.shutdown());

    let store = HistoryStore::open(dir.path().join("history.sqlite3")).unwrap();
    let after = store.items(&id).unwrap();
    assert!(after.len() > before.len());
    assert_eq!(
        store.conversations().unwrap().len(),
        1,
        "resumed, not a new conversation"
    );
}
