//! A test harness for the session runtime: tools with scripted behaviour that log when they
//! start and end, an agent that uses them, and helpers to drive a session against the
//! scripted server.

#![allow(dead_code)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use agent_core::{
    agent::{Agent, AgentFile, ConnectOverrides},
    protocol::Dialect,
    session::{Session, SessionConfig, SessionEvent},
    tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry},
};
use agent_testkit::{
    scenario::{ModelStep, ScriptedCall},
    server::{ScriptedServer, ServerConfig, ServerHandle},
};
use async_trait::async_trait;
use serde_json::{Value, json};

/// A test tool whose behaviour is a closure over its arguments, recording start and end.
pub struct TestTool {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    /// Each call's idempotency key, in start order.
    keys: Arc<Mutex<Vec<String>>>,
    behaviour: Behaviour,
    schema: Value,
}

#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Sleeps this long, then echoes its arguments.
    Sleep(Duration),
    /// Panics.
    Panic,
    /// Sums the integer argument `n` (schema: `n` integer).
    Count,
    /// Sleeps for 30 s holding a guard whose `Drop` panics: the tool's timeout drops it, and
    /// the panic escapes the tool's own `catch_unwind`.
    PanicOnDrop,
}

/// Panics when dropped, like a buggy resource guard.
struct DropBomb;

impl Drop for DropBomb {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("boom in a Drop");
        }
    }
}

#[async_trait]
impl Tool for TestTool {
    fn name(&self) -> &str {
        self.name
    }
    fn description(&self) -> &str {
        "a test tool"
    }
    fn parameters(&self, _strict: bool) -> &Value {
        &self.schema
    }
    async fn call(&self, args: Value, ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("start {} {}", self.name, ctx.call_id()));
        self.keys.lock().unwrap().push(ctx.idempotency_key());
        let result = match self.behaviour {
            Behaviour::Sleep(d) => {
                tokio::time::sleep(d).await;
                Ok(ToolOutput::text(format!("{} done", self.name)))
            }
            Behaviour::Panic => panic!("boom in {}", self.name),
            Behaviour::PanicOnDrop => {
                let _bomb = DropBomb;
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(ToolOutput::text("never"))
            }
            Behaviour::Count => match args.get("n").and_then(Value::as_i64) {
                Some(n) => Ok(ToolOutput::text(format!("count={n}"))),
                None => Err(ToolError::invalid_arguments(
                    self.name,
                    "`n` is missing or not an integer",
                    "an object like {\"n\": 3}",
                )),
            },
        };
        self.log
            .lock()
            .unwrap()
            .push(format!("end {} {}", self.name, ctx.call_id()));
        result
    }
}

pub struct Harness {
    pub agent: Agent,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Each call's idempotency key, in start order.
    pub keys: Arc<Mutex<Vec<String>>>,
}

pub fn harness(extra_toml: &str) -> Harness {
    let log = Arc::new(Mutex::new(Vec::new()));
    let keys = Arc::new(Mutex::new(Vec::new()));
    let mut registry = ToolRegistry::new();
    let schema = json!({"type": "object", "properties": {}, "additionalProperties": false});
    let count_schema = json!({"type": "object", "properties": {"n": {"type": "integer"}},
        "required": ["n"], "additionalProperties": false});
    let tools: Vec<(&'static str, Behaviour, Value)> = vec![
        (
            "slow_a",
            Behaviour::Sleep(Duration::from_millis(300)),
            schema.clone(),
        ),
        (
            "slow_b",
            Behaviour::Sleep(Duration::from_millis(300)),
            schema.clone(),
        ),
        (
            "slow_c",
            Behaviour::Sleep(Duration::from_millis(300)),
            schema.clone(),
        ),
        ("quick", Behaviour::Sleep(Duration::ZERO), schema.clone()),
        (
            "sleepy",
            Behaviour::Sleep(Duration::from_secs(30)),
            schema.clone(),
        ),
        ("panicky", Behaviour::Panic, schema.clone()),
        ("drop_bomb", Behaviour::PanicOnDrop, schema),
        ("count", Behaviour::Count, count_schema),
    ];
    for (name, behaviour, schema) in tools {
        let tool = TestTool {
            name,
            log: log.clone(),
            keys: keys.clone(),
            behaviour,
            schema,
        };
        registry
            .register(Arc::new(tool), "tests/runtime.rs")
            .unwrap();
    }
    let text = format!(
        "name = \"test\"\ninstructions = \"test agent\"\n\
         tools = [\"slow_a\", \"slow_b\", \"slow_c\", \"quick\", \"sleepy\", \"panicky\", \"drop_bomb\", \"count\"]\n\
         {extra_toml}\n[tool_options]\ntimeout_secs = 0.5\n"
    );
    let agent = AgentFile::parse("test.toml", text)
        .unwrap()
        .resolve(&registry)
        .unwrap();
    Harness { agent, log, keys }
}

pub async fn start(harness: &Harness, config: ServerConfig) -> (ServerHandle, Session) {
    start_with(harness, config, |_| {}).await
}

/// Like [`start`], with a chance to adjust the session's config first.
pub async fn start_with(
    harness: &Harness,
    config: ServerConfig,
    adjust: impl FnOnce(&mut SessionConfig),
) -> (ServerHandle, Session) {
    let server = ScriptedServer::start(config).unwrap();
    let overrides = ConnectOverrides {
        url: Some(server.url()),
        key_optional: true,
        ..Default::default()
    };
    let mut session_config = harness.agent.session_config(&overrides, None).unwrap();
    adjust(&mut session_config);
    let session = Session::start(session_config).await.unwrap();
    (server, session)
}

/// Collects events until the session is idle; fails the test after a generous deadline.
pub async fn until_idle(session: &mut Session) -> Vec<SessionEvent> {
    let mut events = Vec::new();
    let deadline = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            event = session.events.recv() => {
                let event = event.expect("session ended early");
                let idle = event == SessionEvent::Idle;
                assert!(!matches!(event, SessionEvent::Closed { .. }), "closed: {event:?}");
                events.push(event);
                if idle {
                    return events;
                }
            }
            () = &mut deadline => panic!("no idle within 20 s; events so far: {events:#?}"),
        }
    }
}

pub fn calls(names: &[&str]) -> ModelStep {
    ModelStep::calls(names.iter().map(|n| ScriptedCall::new(*n, json!({}))))
}

/// Client events the server received, as JSON, in order.
pub async fn received(server: &ServerHandle) -> Vec<Value> {
    server
        .received()
        .await
        .into_iter()
        .filter_map(|e| e.value)
        .collect()
}

pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let t = e["type"].as_str().unwrap_or_default().to_owned();
            match e["item"]["type"].as_str() {
                Some(item) => format!("{t}:{item}"),
                None => t,
            }
        })
        .collect()
}

pub fn outputs(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .map(|e| {
            (
                e["item"]["call_id"].as_str().unwrap().to_owned(),
                e["item"]["output"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

pub async fn validate_all(server: &ServerHandle, dialect: Dialect) -> usize {
    let Some(spec) = super::spec::spec() else {
        return 0;
    };
    let frames = server.received().await;
    for frame in &frames {
        spec.validate_client_text(dialect, &frame.raw)
            .unwrap_or_else(|err| {
                panic!("{dialect:?} event does not validate: {err}\n{}", frame.raw)
            });
    }
    frames.len()
}

/// The assistant's text deltas in `events`, concatenated.
pub fn reply_text(events: &[SessionEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::TextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

/// Fails the test with the server's list when the client broke a protocol rule.
pub async fn assert_no_violations(server: &ServerHandle) {
    let violations = server.violations().await;
    assert!(violations.is_empty(), "{violations:?}");
}

/// A history sink that keeps what the runtime hands to durable storage: the items (with
/// replacements applied), the handoffs and the guardrail trips.
#[derive(Default)]
pub struct CapturedHistory {
    pub items: Mutex<Vec<(String, agent_core::protocol::Item)>>,
    /// `(call_id, from, to)` of each handoff.
    pub handoffs: Mutex<Vec<(String, String, String)>>,
    /// `(guardrail, stage, reason)` of each trip.
    pub trips: Mutex<Vec<(String, agent_core::guardrail::GuardrailStage, String)>>,
}

impl CapturedHistory {
    /// Every item's JSON, for checking what was (not) stored.
    pub fn items_json(&self) -> Vec<String> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .map(|(_, item)| serde_json::to_string(item).unwrap())
            .collect()
    }
}

impl agent_core::session::HistorySink for CapturedHistory {
    fn append(&self, key: &str, item: &agent_core::protocol::Item) {
        self.items
            .lock()
            .unwrap()
            .push((key.to_owned(), item.clone()));
    }

    fn replace(&self, key: &str, item: &agent_core::protocol::Item) {
        let mut items = self.items.lock().unwrap();
        if let Some(entry) = items.iter_mut().find(|(k, _)| k == key) {
            entry.1 = item.clone();
        }
    }

    fn handed_off(&self, call_id: &str, from: &str, to: &str) {
        self.handoffs
            .lock()
            .unwrap()
            .push((call_id.to_owned(), from.to_owned(), to.to_owned()));
    }

    fn guardrail_tripped(
        &self,
        guardrail: &str,
        stage: agent_core::guardrail::GuardrailStage,
        reason: &str,
    ) {
        self.trips
            .lock()
            .unwrap()
            .push((guardrail.to_owned(), stage, reason.to_owned()));
    }
}
