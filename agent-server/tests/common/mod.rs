//! The harness of the end-to-end tests: `agent serve` on loopback, the scripted Realtime
//! server as the model, the fake Twilio as the phone network, and a tool that reports the
//! call it serves.

#![allow(dead_code)] // each test binary uses a different subset

#[path = "../../../agent-core/tests/common/spec.rs"]
pub mod spec;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use agent_core::{session::Secret, tool::ToolRegistry};
use agent_server::{AppState, Secrets, ServeConfig, ServeOptions, Server};
pub use agent_testkit::Dialect;
use agent_testkit::{
    Direction, Scenario,
    server::{ScriptScope, ScriptedServer, ServerConfig, ServerHandle},
    twilio::{FakeTwilio, TwilioRest},
};
use agent_tool::{ToolContext, tool};
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// Twilio's auth token in the tests.
pub const AUTH_TOKEN: &str = "twilio-test-token-7f3a9c";
/// The number the agent answers.
pub const NUMBER: &str = "+15550100";
/// The caller.
pub const CALLER: &str = "+15550111";

/// Looks up an order for the caller on the line: its output names the caller's number and the
/// call's parameters, so a test sees what reached the tool through `ToolContext`.
#[tool]
async fn caller_lookup(
    /// The order id.
    order_id: String,
    ctx: ToolContext,
) -> String {
    match ctx.phone_call() {
        Some(call) => format!(
            "order {order_id} shipped; caller {} called {} over {} (call {}), parameters: {:?}",
            call.from, call.to, call.transport, call.call_id, call.parameters
        ),
        None => format!("order {order_id} shipped; no phone call in the context"),
    }
}

/// How long [`slow_lookup`] takes: well past the `filler_after_ms` the filler tests set.
pub const SLOW_TOOL_MS: u64 = 800;

/// Looks up an order, slowly: a call still running after `filler_after_ms` gets a filler line.
#[tool]
async fn slow_lookup(
    /// The order id.
    order_id: String,
) -> String {
    tokio::time::sleep(Duration::from_millis(SLOW_TOOL_MS)).await;
    format!("order {order_id} shipped yesterday")
}

/// The test agent; [`Options::phone`] adds a `[phone]` table to it.
pub const AGENT: &str = r#"
name = "phone"
instructions = "You answer the phone for a shop. Greet the caller first."
output_modalities = ["audio"]
tools = ["caller_lookup"]

[turn_detection]
type = "server_vad"
silence_duration_ms = 200
"#;

/// How the server under test is set up.
pub struct Options {
    /// `max_calls`.
    pub max_calls: usize,
    /// Extra lines under `[limits]`.
    pub limits: &'static str,
    /// One scripted conversation per connection (several calls) or one shared.
    pub scope: ScriptScope,
    /// The agent file's `[phone]` table and its subtables, as TOML.
    pub phone: &'static str,
    /// Extra top-level lines of serve.toml (before the tables).
    pub serve: &'static str,
    /// Serve `/metrics` on an admin listener.
    pub admin: bool,
    /// The route's agent file instead of [`AGENT`] (`phone` is added to it all the same).
    pub agent: Option<String>,
    /// More files beside the agent's (e.g. a handoff target's agent file): name, text.
    pub files: Vec<(&'static str, String)>,
    /// The scripted server's pause before each event: an answer then streams over a while,
    /// as a live one does, instead of at once.
    pub event_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_calls: 4,
            limits: "",
            scope: ScriptScope::PerConnection,
            phone: "",
            serve: "",
            admin: false,
            agent: None,
            files: Vec::new(),
            event_delay: Duration::ZERO,
        }
    }
}

/// A running `agent serve` with its peers.
pub struct Harness {
    /// The model's side.
    pub scripted: ServerHandle,
    /// The phone network's side.
    pub twilio: FakeTwilio,
    /// Twilio's REST API (hang-ups and transfers).
    pub rest: TwilioRest,
    /// The server's state, to watch its calls.
    pub state: Arc<AppState>,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The admin listener, when [`Options::admin`].
    pub admin: Option<SocketAddr>,
    /// The call history database.
    pub history_db: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Starts everything; the scripted server plays `scenario`.
    pub async fn start(scenario: Scenario, options: Options) -> Harness {
        let config = ServerConfig::new(scenario)
            .script_scope(options.scope)
            .event_delay(options.event_delay);
        let scripted = ScriptedServer::start(config).expect("scripted server");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Twilio knows the server by a name, not by the address it connects to, so a
        // signature over the Host header's URL does not match.
        let base = format!("http://localhost:{}", addr.port());
        let dir = tempfile::tempdir().unwrap();
        let agent = options.agent.as_deref().unwrap_or(AGENT);
        let agent = match options.phone {
            "" => agent.to_owned(),
            phone => format!("{agent}\n[phone]\n{phone}\n"),
        };
        std::fs::write(dir.path().join("phone.toml"), agent).unwrap();
        for (name, text) in &options.files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let twilio = FakeTwilio::new(addr, &base, AUTH_TOKEN);
        let rest = twilio.start_rest().await.unwrap();
        let admin = if options.admin {
            "[admin]\nlisten = \"127.0.0.1:0\"\n"
        } else {
            ""
        };
        let serve_toml = format!(
            "listen = \"{addr}\"\nnode = \"n1\"\npublic_base_url = \"{base}\"\nmax_calls = {}\n{}\n\n[limits]\n{}\n\n[twilio]\napi_base = \"{}\"\n\n[history]\npath = \"history.sqlite3\"\n\n{admin}\n[[route]]\nagent = \"phone.toml\"\nnumbers = [\"{NUMBER}\"]\npath = \"shop\"\n",
            options.max_calls,
            options.serve,
            options.limits,
            rest.api_base()
        );
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, &serve_toml).unwrap();
        let config = ServeConfig::load(&path).unwrap();
        let registry = ToolRegistry::from_inventory().unwrap();
        let secrets = Secrets {
            twilio_auth_token: Some(Secret::new(AUTH_TOKEN)),
            ..Secrets::default()
        };
        let serve_options = ServeOptions {
            realtime_url: Some(scripted.url()),
            drain_timeout: Some(Duration::from_secs(2)),
            ..ServeOptions::default()
        };
        let server = Server::with_listener(config, &registry, secrets, serve_options, listener)
            .await
            .unwrap();
        let state = server.state();
        let admin = server.admin_addr().map(|addr| addr.unwrap());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Harness {
            history_db: dir.path().join("history.sqlite3"),
            twilio,
            rest,
            scripted,
            state,
            addr,
            admin,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Waits (10 s at most) until no call holds a slot.
    pub async fn until_no_calls(&self) {
        let wait = async {
            while self.state.capacity.in_use() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("the calls' slots came back");
    }

    /// Asks the server to stop (it drains) without waiting for it; see [`Harness::stopped`].
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the server has stopped.
    pub fn is_stopped(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stops the server (draining) and the scripted server.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("the server stopped")
                .unwrap();
        }
        self.scripted.shutdown().await;
    }

    /// Every client event the scripted server received validates against the spec.
    pub async fn assert_client_events_conform(&self) {
        let Some(spec) = spec::spec() else { return };
        let received = self.scripted.received().await;
        assert!(!received.is_empty());
        for event in received {
            if let Err(err) = spec.validate_client_text(Dialect::Ga, &event.raw) {
                panic!("a client event does not conform: {err}\n{}", event.raw);
            }
        }
    }
}

/// Every frame `server` saw or sent that parsed, both ways, in order.
pub async fn frames(server: &ServerHandle) -> Vec<(Direction, Value)> {
    server
        .log()
        .await
        .into_iter()
        .filter_map(|f| f.value.map(|v| (f.direction, v)))
        .collect()
}

/// The names of the tools a `session` (of a `session.update`) declares.
pub fn tool_names(session: &Value) -> Vec<&str> {
    session["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect()
}

/// Where in `log` the frames that `direction` and `matches` pick are.
pub fn positions(
    log: &[(Direction, Value)],
    direction: Direction,
    matches: impl Fn(&Value) -> bool,
) -> Vec<usize> {
    log.iter()
        .enumerate()
        .filter(|(_, (d, v))| *d == direction && matches(v))
        .map(|(i, _)| i)
        .collect()
}

/// The filler of one slow call, checked on a connection's `log`: one out-of-band
/// `response.create` (`conversation: "none"`, purpose `filler`) asked for while the call ran
/// (before its output), and exactly one follow-up, in the conversation, after both the output
/// and the filler's `response.done`. Returns the filler's response id.
pub fn assert_one_filler_then_one_follow_up(log: &[(Direction, Value)]) -> String {
    let creates = positions(log, Direction::FromClient, |v| {
        v["type"] == "response.create"
    });
    let out_of_band = |i: &usize| log[*i].1["response"]["conversation"] == "none";
    let fillers: Vec<usize> = creates.iter().copied().filter(out_of_band).collect();
    assert_eq!(
        fillers.len(),
        1,
        "one out-of-band response.create: {creates:?}"
    );
    let filler = &log[fillers[0]].1["response"];
    assert_eq!(filler["metadata"]["purpose"], "filler", "{filler}");
    assert!(
        filler["instructions"]
            .as_str()
            .is_some_and(|i| !i.is_empty()),
        "{filler}"
    );
    let outputs = positions(log, Direction::FromClient, |v| {
        v["type"] == "conversation.item.create" && v["item"]["type"] == "function_call_output"
    });
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    assert!(
        fillers[0] < outputs[0],
        "the filler was asked for while the call ran"
    );
    let filler_id = log
        .iter()
        .find(|(d, v)| {
            *d == Direction::FromServer
                && v["type"] == "response.created"
                && v["response"]["metadata"]["purpose"] == "filler"
        })
        .and_then(|(_, v)| v["response"]["id"].as_str())
        .expect("the filler's response.created")
        .to_owned();
    let filler_done = positions(log, Direction::FromServer, |v| {
        v["type"] == "response.done" && v["response"]["id"] == filler_id.as_str()
    });
    assert_eq!(filler_done.len(), 1, "the filler ended once");
    let follow_ups: Vec<usize> = creates
        .iter()
        .copied()
        .filter(|&i| i > outputs[0])
        .collect();
    assert_eq!(
        follow_ups.len(),
        1,
        "one follow-up after the output: {creates:?}"
    );
    assert!(
        !out_of_band(&follow_ups[0]),
        "the follow-up is in the conversation"
    );
    assert!(
        filler_done[0] < follow_ups[0],
        "the follow-up waited for the filler's response.done"
    );
    filler_id
}
