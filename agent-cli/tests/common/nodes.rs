//! What the tests of calls that survive the loss of their node share (tests/takeover_cli.rs and
//! tests/e2e/twilio_resume.rs, one test binary): the shop's scenario and its order tool's HTTP
//! endpoint, `agent serve` processes on one shared history, and what that history holds.
//!
//! Declared only by that binary (`#[path = "common/nodes.rs"] mod nodes;`), not by
//! `common/mod.rs`, so the other test binaries do not build it.

use std::{
    collections::HashMap,
    io::{BufRead as _, Read as _, Write as _},
    net::{SocketAddr, TcpListener},
    path::Path,
    process::{Child, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use agent_core::history::{HistoryStore, PhoneCallRecord};
use agent_core::protocol::{Item, Role};
use agent_testkit::scenario::{ModelStep, Scenario, ScriptedCall, Turn};
use serde_json::json;

use crate::common;

/// The lease of the tests' nodes: short, so a takeover comes quickly.
pub const LEASE_SECS: f64 = 1.5;

pub const GREETING: &str = "Hello, shop here.";
pub const ORDERED: &str = "Your lamp is ordered.";
pub const GOODBYE: &str = "Goodbye.";

/// The shop: the model greets, the caller orders a lamp (the `record_order` tool runs, then
/// [`ORDERED`]), the caller says bye ([`GOODBYE`]). With `audio_ms`, the three answers have that
/// much audio each (greeting, order, goodbye).
pub fn scenario(audio_ms: Option<[u32; 3]>) -> Scenario {
    let say = |text: &str, answer: usize| {
        let step = ModelStep::say(text);
        match audio_ms {
            Some(ms) => step.audio_ms(ms[answer]),
            None => step,
        }
    };
    Scenario::new("shop")
        .turn(Turn::model_first().model(say(GREETING, 0)))
        .turn(
            Turn::user("I want to order a lamp.")
                .model(ModelStep::calls([ScriptedCall::new(
                    "record_order",
                    json!({"item": "lamp"}),
                )]))
                .model(say(ORDERED, 1)),
        )
        .turn(Turn::user("Thanks, bye.").model(say(GOODBYE, 2)))
}

/// Writes `shop.toml` into `dir`: the shop agent, whose `record_order` tool posts to `orders`
/// with an idempotency key.
pub fn write_shop_agent(dir: &Path, orders: SocketAddr) {
    std::fs::write(
        dir.join("shop.toml"),
        format!(
            r#"name = "shop"
instructions = "Take orders."

[[http_tools]]
name = "record_order"
description = "Records an order."
method = "POST"
url = "http://{orders}/orders"
timeout_secs = 20
parameters = {{ type = "object", properties = {{ item = {{ type = "string" }} }}, required = ["item"] }}
idempotency_header = "Idempotency-Key"
"#
        ),
    )
    .unwrap();
}

/// The tool's endpoint: counts each request by its `Idempotency-Key`, and holds requests
/// (unanswered) while `hold` is set, so a node can die with one in flight.
pub struct Orders {
    pub addr: SocketAddr,
    keys: Arc<Mutex<Vec<String>>>,
    pub hold: Arc<AtomicBool>,
}

impl Orders {
    /// Starts the endpoint; `wait` bounds its reads and how long it holds a request.
    pub fn start(wait: Duration) -> Orders {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let keys = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(AtomicBool::new(false));
        let (k, h) = (keys.clone(), hold.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (k, h) = (k.clone(), h.clone());
                std::thread::spawn(move || serve_order(stream, &k, &h, wait));
            }
        });
        Orders { addr, keys, hold }
    }

    /// The keys of the requests so far, in order.
    pub fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }
}

fn serve_order(
    mut stream: std::net::TcpStream,
    keys: &Mutex<Vec<String>>,
    hold: &AtomicBool,
    wait: Duration,
) {
    let _ = stream.set_read_timeout(Some(wait));
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let (mut length, mut key) = (0usize, None);
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
    while hold.load(Ordering::SeqCst) && held.elapsed() < wait {
        std::thread::sleep(Duration::from_millis(20));
    }
    let answer = r#"{"recorded":true}"#;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
}

/// One `agent serve` process, killed when dropped.
pub struct Node {
    child: Child,
    /// The address it listens on.
    pub addr: SocketAddr,
}

impl Node {
    /// `agent -v serve --config serve-NODE.toml ARGS --drain-secs 1` run in `dir`, `config` being
    /// that file's text, with the history in `db` and the variables `env` set; its log goes to
    /// `NODE.log` in `dir`. Waits (within `wait`) for the line naming the address it listens on.
    pub fn start(
        dir: &Path,
        node: &str,
        config: &str,
        args: &[&str],
        db: &str,
        env: &[(&str, &str)],
        wait: Duration,
    ) -> Node {
        let file = dir.join(format!("serve-{node}.toml"));
        std::fs::write(&file, config).unwrap();
        let mut all = vec!["-v", "serve", "--config", file.to_str().unwrap()];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--drain-secs", "1"]);
        let mut command = common::command(&all, dir);
        command
            .env("AGENT_HISTORY_DB", db)
            .envs(env.iter().copied());
        let mut child = command
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
        let first = lines.recv_timeout(wait).unwrap_or_else(|_| {
            let log = std::fs::read_to_string(dir.join(format!("{node}.log")));
            panic!(
                "agent serve {node} did not start:\n{}",
                log.unwrap_or_default()
            )
        });
        let addr = first
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Node { child, addr }
    }

    /// SIGKILL: no drain, no clean-up; its connections (sidebands, media streams) drop.
    pub fn kill(&mut self) {
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
pub struct StoredCall {
    pub record: PhoneCallRecord,
    pub items: Vec<Item>,
}

/// The calls the history in `db` holds, by call id.
pub fn stored_calls(db: &str) -> HashMap<String, StoredCall> {
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
pub fn said(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .filter_map(Item::as_message)
        .filter(|m| m.role == Role::Assistant)
        .map(|m| {
            m.content
                .iter()
                .filter_map(|part| part.text())
                .collect::<String>()
        })
        .collect()
}

/// Waits until `done`; past `within`, calls `diagnose` (to print what the failure needs) and
/// fails the test.
pub fn wait_until(
    what: &str,
    within: Duration,
    mut done: impl FnMut() -> bool,
    diagnose: impl FnOnce(),
) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > within {
            diagnose();
            panic!("timed out waiting until {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Prints the logs of nodes `a` and `b` in `dir`.
pub fn print_logs(dir: &Path) {
    for node in ["a", "b"] {
        if let Ok(log) = std::fs::read_to_string(dir.join(format!("{node}.log"))) {
            eprintln!("--- node {node}:\n{log}");
        }
    }
}
