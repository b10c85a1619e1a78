//! Calls that survive the loss of a node: two `agent serve` processes share one PostgreSQL
//! history (a schema of this test's own on `AGENT_POSTGRES_URL`) and answer SIP calls from the
//! fake OpenAI platform. Node A answers four calls and is killed with SIGKILL in the middle of
//! them — one call with its tool's request still in flight. Node B takes every call over by
//! attaching to the same `call_id`, and all of them complete, with every tool call run exactly
//! once (counted by the tool's own HTTP endpoint, by idempotency key) and no gap in any
//! conversation. Both platform behaviours are covered: the call survives its sideband (and is
//! taken over), or ends with it (and is recorded as failed, never left running).
//!
//! Without `AGENT_POSTGRES_URL` the test prints one line and passes; `.ci/run` sets it (and
//! `AGENT_POSTGRES_REQUIRED=1`).

mod common;

use std::{
    collections::HashMap,
    io::{BufRead as _, Read as _, Write as _},
    net::{SocketAddr, TcpListener},
    process::{Child, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use agent_core::history::{HistoryStore, PhoneCallRecord};
use agent_core::protocol::Item;
use agent_testkit::{
    platform::{CallControl, CallState, FakePlatform, IncomingCall, SidebandDrop, WebhookSigning},
    postgres::TestSchema,
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ScriptScope, ServerConfig},
};
use serde_json::json;

const WEBHOOK_SECRET: &str = "whsec_dGFrZW92ZXItdGVzdC13ZWJob29rLXNlY3JldC0wMQ==";
/// The lease of the test's nodes: short, so a takeover comes quickly.
const LEASE_SECS: f64 = 1.5;
/// How long any one wait of the test may take.
const WAIT: Duration = Duration::from_secs(30);

const GREETING: &str = "Hello, shop here.";
const ORDERED: &str = "Your lamp is ordered.";
const GOODBYE: &str = "Goodbye.";

fn scenario() -> Scenario {
    Scenario::new("shop")
        .turn(Turn::model_first().model(ModelStep::say(GREETING)))
        .turn(
            Turn::user("I want to order a lamp.")
                .model(ModelStep::calls([ScriptedCall::new(
                    "record_order",
                    json!({"item": "lamp"}),
                )]))
                .model(ModelStep::say(ORDERED)),
        )
        .turn(Turn::user("Thanks, bye.").model(ModelStep::say(GOODBYE)))
}

/// The tool's endpoint: counts each request by its `Idempotency-Key`, and holds requests
/// (unanswered) while `hold` is set, so a node can die with one in flight.
struct Orders {
    addr: SocketAddr,
    keys: Arc<Mutex<Vec<String>>>,
    hold: Arc<AtomicBool>,
}

impl Orders {
    fn start() -> Orders {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let keys = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(AtomicBool::new(false));
        let (k, h) = (keys.clone(), hold.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (k, h) = (k.clone(), h.clone());
                std::thread::spawn(move || serve_order(stream, &k, &h));
            }
        });
        Orders { addr, keys, hold }
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

fn serve_order(mut stream: std::net::TcpStream, keys: &Mutex<Vec<String>>, hold: &AtomicBool) {
    let _ = stream.set_read_timeout(Some(WAIT));
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    let mut key = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "idempotency-key" => key = Some(value.trim().to_owned()),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    keys.lock()
        .unwrap()
        .push(key.unwrap_or_else(|| "(no key)".into()));
    let held = Instant::now();
    while hold.load(Ordering::SeqCst) && held.elapsed() < WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = r#"{"recorded":true}"#;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// One `agent serve` process.
struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    /// `agent serve` with `serve.toml` named `node`, the shared database and the platform.
    fn start(dir: &std::path::Path, node: &str, db: &str, platform: &FakePlatform) -> Node {
        let config = dir.join(format!("serve-{node}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\nnode = \"{node}\"\npublic_base_url = \"https://voice.example.invalid\"\n\
                 max_calls = 10\n\n[history]\nlease_secs = {LEASE_SECS}\n\n\
                 [[route]]\nagent = \"shop.toml\"\nsip_users = [\"shop\"]\n"
            ),
        )
        .unwrap();
        let (url, api_base) = (platform.realtime_url(), platform.api_base());
        let args = [
            "-v",
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--url",
            &url,
            "--api-base",
            &api_base,
            "--drain-secs",
            "1",
        ];
        let mut child = common::command(&args, dir)
            .env("AGENT_HISTORY_DB", db)
            .env("OPENAI_API_KEY", "sk-takeover-test")
            .env("OPENAI_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join(format!("{node}.log"))).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines_tx.send(line);
            }
        });
        let first = lines.recv_timeout(WAIT).expect("agent serve started");
        let addr = first
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Node { child, addr }
    }

    /// SIGKILL: no drain, no clean-up, its sidebands' connections reset.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the shared history holds about one call.
struct StoredCall {
    record: PhoneCallRecord,
    items: Vec<Item>,
}

fn stored_calls(db: &str) -> HashMap<String, StoredCall> {
    let store = HistoryStore::open(db).unwrap();
    store
        .phone_calls()
        .unwrap()
        .into_iter()
        .map(|(id, record)| {
            let items = store
                .items(&id)
                .unwrap()
                .into_iter()
                .map(|s| s.item)
                .collect();
            (record.call_id.clone(), StoredCall { record, items })
        })
        .collect()
}

/// The assistant's texts of a stored conversation, in order.
fn said(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(Item::as_message)
        .filter(|m| m.role == agent_core::protocol::Role::Assistant)
        .map(|m| {
            m.content
                .iter()
                .filter_map(|part| part.text())
                .collect::<String>()
        })
        .collect()
}

/// What a timed-out wait shows: the database and the folder of the nodes' logs.
static DIAGNOSE: Mutex<Option<(String, std::path::PathBuf)>> = Mutex::new(None);

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > WAIT {
            if let Some((db, dir)) = DIAGNOSE.lock().unwrap().clone() {
                for (id, call) in stored_calls(&db) {
                    eprintln!("{id} ({:?}): {:?}", call.record.outcome, call.items);
                }
                for node in ["a", "b"] {
                    let log = std::fs::read_to_string(dir.join(format!("{node}.log")));
                    eprintln!("--- node {node}:\n{}", log.unwrap_or_default());
                }
            }
            panic!("timed out waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn setup(
    label: &str,
    on_drop: SidebandDrop,
) -> Option<(
    TestSchema,
    tokio::runtime::Runtime,
    FakePlatform,
    Orders,
    tempfile::TempDir,
)> {
    let schema = TestSchema::create(label)?;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let platform = runtime
        .block_on(async {
            FakePlatform::start(
                // Each call plays the scenario on its own; a re-attached sideband goes on
                // where the call was.
                ServerConfig::new(scenario()).script_scope(ScriptScope::PerConnection),
                on_drop,
                WEBHOOK_SECRET,
                None,
            )
        })
        .unwrap();
    let orders = Orders::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.toml"),
        format!(
            r#"name = "shop"
instructions = "Take orders."

[[http_tools]]
name = "record_order"
description = "Records an order."
method = "POST"
url = "http://{}/orders"
timeout_secs = 20
parameters = {{ type = "object", properties = {{ item = {{ type = "string" }} }}, required = ["item"] }}
idempotency_header = "Idempotency-Key"
"#,
            orders.addr
        ),
    )
    .unwrap();
    Some((schema, runtime, platform, orders, dir))
}

fn place_call(
    runtime: &tokio::runtime::Runtime,
    platform: &FakePlatform,
    node: &Node,
    call_id: &str,
) {
    let call = IncomingCall::new(call_id, "+15550111", "shop");
    let answer = runtime
        .block_on(platform.incoming_call(
            node.addr,
            "/openai/webhook",
            &call,
            &format!("wh_{call_id}"),
            WebhookSigning::Valid,
        ))
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn calls_of_a_killed_node_are_taken_over_and_no_tool_runs_twice() {
    let Some((schema, runtime, platform, orders, dir)) =
        setup("takeover_survives", SidebandDrop::CallSurvives)
    else {
        return;
    };
    let db = schema.url().to_owned();
    *DIAGNOSE.lock().unwrap() = Some((db.clone(), dir.path().to_owned()));
    let mut a = Node::start(dir.path(), "a", &db, &platform);
    let b = Node::start(dir.path(), "b", &db, &platform);
    let calls: Vec<String> = (0..4).map(|n| format!("rtc_take{n}")).collect();
    for call_id in &calls {
        place_call(&runtime, &platform, &a, call_id);
    }
    // Every call is greeted by node A, and stored.
    wait_until("node A greeted every caller", || {
        let stored = stored_calls(&db);
        calls
            .iter()
            .all(|id| stored.get(id).is_some_and(|c| said(&c.items) == [GREETING]))
    });
    // Calls 0 and 1 order on node A; their tool runs there.
    for call_id in &calls[..2] {
        assert!(platform.control(call_id, CallControl::CallerSpeaks));
    }
    wait_until("calls 0 and 1 ordered on node A", || {
        let stored = stored_calls(&db);
        calls[..2]
            .iter()
            .all(|id| said(&stored[id].items).contains(&ORDERED.to_owned()))
    });
    // Call 2 orders, and node A dies while the tool's request is in flight.
    orders.hold.store(true, Ordering::SeqCst);
    assert!(platform.control(&calls[2], CallControl::CallerSpeaks));
    wait_until("call 2's tool request reached the endpoint", || {
        orders.keys().len() == 3
    });
    a.kill();
    let killed = Instant::now();
    orders.hold.store(false, Ordering::SeqCst);

    // Node B attaches a second sideband to every call.
    let mut takeover = Vec::new();
    for call_id in &calls {
        wait_until("node B re-attached the call", || {
            platform.calls().sidebands(call_id) >= 2 && platform.calls().attached(call_id)
        });
        takeover.push(killed.elapsed());
    }
    eprintln!("takeover after the kill (lease {LEASE_SECS} s): {takeover:?}");

    // Call 2's interrupted call was answered without running again; call 3 orders on B.
    wait_until("call 2 went on after its interrupted order", || {
        said(&stored_calls(&db)[&calls[2]].items).contains(&ORDERED.to_owned())
    });
    assert!(platform.control(&calls[3], CallControl::CallerSpeaks));
    wait_until("call 3 ordered on node B", || {
        said(&stored_calls(&db)[&calls[3]].items).contains(&ORDERED.to_owned())
    });
    // Everyone says goodbye and hangs up.
    for call_id in &calls {
        assert!(platform.control(call_id, CallControl::CallerSpeaks));
    }
    wait_until("every call said goodbye", || {
        let stored = stored_calls(&db);
        calls
            .iter()
            .all(|id| said(&stored[id].items).last().map(String::as_str) == Some(GOODBYE))
    });
    for call_id in &calls {
        assert!(platform.calls().caller_hangs_up(call_id));
    }
    wait_until("node B recorded every call's end", || {
        stored_calls(&db)
            .values()
            .all(|c| c.record.outcome.as_deref() == Some("caller_hung_up"))
    });

    // Every call completed, with no gap: each heard the greeting, its order and goodbye, once.
    let stored = stored_calls(&db);
    assert_eq!(stored.len(), calls.len());
    for call_id in &calls {
        assert_eq!(
            said(&stored[call_id].items),
            [GREETING, ORDERED, GOODBYE],
            "{call_id}"
        );
        let outputs = stored[call_id]
            .items
            .iter()
            .filter(|item| matches!(item, Item::FunctionCallOutput(_)))
            .count();
        assert_eq!(outputs, 1, "{call_id}: one order, one output");
        // The node that took over told the model, once, to make again calls it lost.
        let notes = stored[call_id]
            .items
            .iter()
            .filter_map(Item::as_message)
            .filter(|m| m.role == agent_core::protocol::Role::System)
            .count();
        assert_eq!(notes, 1, "{call_id}: one takeover note");
    }
    // Zero duplicate tool runs: one request per call, each with its own key.
    let keys = orders.keys();
    assert_eq!(keys.len(), calls.len(), "{keys:?}");
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a tool ran twice: {keys:?}");
    for call_id in &calls {
        assert_eq!(platform.calls().state(call_id), Some(CallState::Ended));
    }
    drop(b);
    runtime.block_on(platform.shutdown());
}

#[test]
fn a_call_that_ends_with_its_sideband_is_recorded_as_ended_not_left_running() {
    let Some((schema, runtime, platform, _orders, dir)) =
        setup("takeover_call_ends", SidebandDrop::CallEnds)
    else {
        return;
    };
    let db = schema.url().to_owned();
    let mut a = Node::start(dir.path(), "a", &db, &platform);
    let _b = Node::start(dir.path(), "b", &db, &platform);
    place_call(&runtime, &platform, &a, "rtc_ends");
    wait_until("node A greeted the caller", || {
        stored_calls(&db)
            .get("rtc_ends")
            .is_some_and(|c| said(&c.items) == [GREETING])
    });
    a.kill();
    // The platform ended the call with its sideband: node B's attach is refused, and the call
    // is recorded as ended instead of staying "running" forever.
    wait_until("the lost call was recorded as ended", || {
        stored_calls(&db)["rtc_ends"].record.ended_at.is_some()
    });
    let stored = stored_calls(&db);
    assert_eq!(stored["rtc_ends"].record.outcome.as_deref(), Some("failed"));
    assert_eq!(platform.calls().state("rtc_ends"), Some(CallState::Ended));
    runtime.block_on(platform.shutdown());
}
