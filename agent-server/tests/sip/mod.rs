//! The harness of the SIP and browser tests: `agent serve` on loopback with a route for the
//! SIP user `support` (and, when the options say so, for browsers), and the fake OpenAI
//! platform (webhooks, call-control REST, WebRTC calls, sidebands) as the other side.

#![allow(dead_code)] // each test binary uses a different subset

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use agent_core::{session::Secret, tool::ToolRegistry};
use agent_server::{AppState, Secrets, ServeConfig, ServeOptions, Server};
use agent_testkit::{
    Scenario,
    platform::{CallRequest, FakePlatform, IncomingCall, SidebandDrop, WebhookSigning},
    server::{ServerConfig, ServerHandle},
    twilio::http::HttpAnswer,
};
use serde_json::Value;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// The project's webhook secret in the tests.
pub const WEBHOOK_SECRET: &str = "whsec_c2lwLXRlc3Qtd2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc4OQ==";
/// The API key the platform's REST side requires.
pub const API_KEY: &str = "sk-sip-test-key-0123456789abcdef";
/// The SIP user the agent answers.
pub const USER: &str = "support";
/// The caller.
pub const CALLER: &str = "+15550111";
/// Where the platform sends webhooks.
pub const WEBHOOK_PATH: &str = "/openai/webhook";

/// How the server under test is set up.
pub struct SipOptions {
    /// `max_calls`.
    pub max_calls: usize,
    /// What a dropped sideband does to its call.
    pub on_drop: SidebandDrop,
    /// Extra lines of the agent file (e.g. `[limits]`, `[phone]`).
    pub agent_extra: &'static str,
    /// Extra lines under serve.toml's `[limits]`.
    pub limits: &'static str,
    /// Extra lines of the route (e.g. `browser = true`).
    pub route_extra: &'static str,
    /// Extra sections at the end of serve.toml (e.g. `[browser]`).
    pub serve_extra: String,
    /// The operator's token for the browser endpoints.
    pub operator_token: Option<&'static str>,
    /// More files beside the agent's (e.g. a handoff target's agent file): name, text.
    pub files: Vec<(&'static str, String)>,
    /// The history database: a `postgres://` URL shared with other nodes; `None`, a file of
    /// the test's own.
    pub history: Option<String>,
    /// Extra lines under serve.toml's `[history]` (e.g. `lease_secs`).
    pub history_extra: &'static str,
}

impl Default for SipOptions {
    fn default() -> Self {
        SipOptions {
            max_calls: 4,
            on_drop: SidebandDrop::CallSurvives,
            agent_extra: "",
            limits: "",
            route_extra: "",
            serve_extra: String::new(),
            operator_token: None,
            files: Vec::new(),
            history: None,
            history_extra: "",
        }
    }
}

const AGENT: &str = r#"
name = "phone"
instructions = "You answer the phone for a shop. Greet the caller first."
output_modalities = ["audio"]
tools = ["caller_lookup"]

[turn_detection]
type = "server_vad"
silence_duration_ms = 200
"#;

/// A running `agent serve` with the fake platform.
pub struct SipHarness {
    /// The platform's side.
    pub platform: FakePlatform,
    /// The server's state.
    pub state: Arc<AppState>,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`).
    pub admin: SocketAddr,
    /// The call history database.
    pub history_db: std::path::PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl SipHarness {
    /// Starts everything; sidebands play `scenario`.
    pub async fn start(scenario: Scenario, options: SipOptions) -> SipHarness {
        let platform = FakePlatform::start(
            ServerConfig::new(scenario),
            options.on_drop,
            WEBHOOK_SECRET,
            Some(API_KEY),
        )
        .expect("fake platform");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("phone.toml"),
            format!("{AGENT}\n{}", options.agent_extra),
        )
        .unwrap();
        for (name, text) in &options.files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let node = Node::start("n1", listener, dir.path(), &options, &platform).await;
        let history_db = match &options.history {
            Some(url) => std::path::PathBuf::from(url),
            None => dir.path().join("history.sqlite3"),
        };
        SipHarness {
            platform,
            state: node.state,
            addr: node.addr,
            admin: node.admin,
            history_db,
            stop: Some(node.stop),
            task: Some(node.task),
            _dir: dir,
        }
    }

    /// A second `agent serve` against the same platform, with the same agent file: another
    /// node (sharing the history when `options.history` names a shared database).
    pub async fn second_node(&self, options: &SipOptions) -> Node {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Node::start("n2", listener, self._dir.path(), options, &self.platform).await
    }

    /// The scripted sideband server.
    pub fn sideband(&self) -> &ServerHandle {
        self.platform.sideband()
    }

    /// A call from [`CALLER`] to `user`, announced by a webhook signed as `signing`.
    pub async fn call(
        &self,
        call_id: &str,
        user: &str,
        webhook_id: &str,
        signing: WebhookSigning,
    ) -> HttpAnswer {
        let call = IncomingCall::new(
            call_id,
            &format!("sip:{CALLER}@carrier.example"),
            &format!("sip:{user}@sip.api.openai.com"),
        );
        self.platform
            .incoming_call(self.addr, WEBHOOK_PATH, &call, webhook_id, signing)
            .await
            .unwrap()
    }

    /// The call-control requests for `call_id`, as `(action, status)`.
    pub fn actions(&self, call_id: &str) -> Vec<(String, u16)> {
        self.requests(call_id)
            .into_iter()
            .map(|r| (r.action, r.status))
            .collect()
    }

    /// The call-control requests for `call_id`.
    pub fn requests(&self, call_id: &str) -> Vec<CallRequest> {
        self.platform
            .requests()
            .into_iter()
            .filter(|r| r.call_id == call_id)
            .collect()
    }

    /// The server events of `kind` the sideband server sent.
    pub async fn sent(&self, kind: &str) -> Vec<Value> {
        self.frames(agent_testkit::Direction::FromServer, kind)
            .await
    }

    /// The client events of `kind` the sideband server received.
    pub async fn received(&self, kind: &str) -> Vec<Value> {
        self.frames(agent_testkit::Direction::FromClient, kind)
            .await
    }

    async fn frames(&self, direction: agent_testkit::Direction, kind: &str) -> Vec<Value> {
        self.sideband()
            .log()
            .await
            .into_iter()
            .filter(|f| f.direction == direction)
            .filter_map(|f| f.value)
            .filter(|v| v["type"] == kind)
            .collect()
    }

    /// Every client event the sidebands received (on a WebRTC call, the page's too) validates
    /// against the spec.
    pub async fn assert_client_events_conform(&self) {
        let Some(spec) = crate::common::spec::spec() else {
            return;
        };
        for event in self.sideband().received().await {
            if let Err(err) = spec.validate_client_text(agent_testkit::Dialect::Ga, &event.raw) {
                panic!("a client event does not conform: {err}\n{}", event.raw);
            }
        }
    }

    /// The call's record in the history, once its outcome is written (10 s at most).
    pub async fn stored_call(&self, call_id: &str) -> agent_core::history::PhoneCallRecord {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let store = agent_core::history::HistoryStore::open(&self.history_db).unwrap();
            let found = store
                .phone_calls()
                .unwrap()
                .into_values()
                .find(|c| c.call_id == call_id && c.outcome.is_some());
            if let Some(call) = found {
                return call;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no outcome stored for {call_id}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How the call ended, as the history has it.
    pub async fn stored_outcome(&self, call_id: &str) -> String {
        self.stored_call(call_id).await.outcome.unwrap_or_default()
    }

    /// `GET /metrics` on the admin listener.
    pub async fn metrics(&self) -> String {
        let answer = agent_testkit::twilio::http::request(
            self.admin,
            "GET",
            "/metrics",
            &[],
            b"",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        answer.body
    }

    /// Waits (10 s at most) until no call holds a slot.
    pub async fn until_no_calls(&self) {
        eventually("the calls' slots came back", || async {
            self.state.capacity.in_use() == 0
        })
        .await;
    }

    /// Stops the server (draining) and the platform.
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
        self.platform.shutdown().await;
    }
}

/// One `agent serve` in this process.
pub struct Node {
    /// Its state.
    pub state: Arc<AppState>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its admin listener.
    pub admin: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Node {
    /// Starts a server named `node` on `listener`, its serve.toml in `dir` beside the agent
    /// file, against `platform`.
    async fn start(
        node: &str,
        listener: TcpListener,
        dir: &std::path::Path,
        options: &SipOptions,
        platform: &FakePlatform,
    ) -> Node {
        let addr = listener.local_addr().unwrap();
        // Calls are stored in the test's own history, never the user's.
        let history = options.history.as_deref().unwrap_or("history.sqlite3");
        let serve_toml = format!(
            "listen = \"{addr}\"\nnode = \"{node}\"\npublic_base_url = \"http://localhost:{}\"\nmax_calls = {}\n\n[limits]\n{}\n\n[history]\npath = \"{history}\"\n{}\n\n[admin]\nlisten = \"127.0.0.1:0\"\n\n[[route]]\nagent = \"phone.toml\"\nsip_users = [\"{USER}\"]\n{}\n\n{}\n",
            addr.port(),
            options.max_calls,
            options.limits,
            options.history_extra,
            options.route_extra,
            options.serve_extra,
        );
        let path = dir.join(format!("serve-{node}.toml"));
        std::fs::write(&path, serve_toml).unwrap();
        let config = ServeConfig::load(&path).unwrap();
        let registry = ToolRegistry::from_inventory().unwrap();
        let secrets = Secrets {
            openai_webhook_secret: Some(Secret::new(WEBHOOK_SECRET)),
            openai_api_key: Some(Secret::new(API_KEY)),
            operator_token: options.operator_token.map(Secret::new),
            ..Secrets::default()
        };
        let serve_options = ServeOptions {
            realtime_url: Some(platform.realtime_url()),
            api_base: Some(platform.api_base()),
            drain_timeout: Some(Duration::from_secs(2)),
        };
        let server = Server::with_listener(config, &registry, secrets, serve_options, listener)
            .await
            .unwrap();
        let state = server.state();
        let admin = server.admin_addr().expect("an admin listener").unwrap();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Node {
            state,
            addr,
            admin,
            stop,
            task,
        }
    }

    /// Stops it (draining).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the server stopped")
            .unwrap();
    }
}

/// Waits until `check` holds, checking every 20 ms, 10 s at most; panics naming `what`.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let wait = async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .is_err()
    {
        panic!("timed out waiting for {what}");
    }
}
