//! Handoffs, end to end against the scripted server: the model calls `transfer_to_back`, the
//! session switches to the target's instructions and tools in a `session.update` that leaves
//! the voice and formats alone, the next calls run as the target, and a resumed conversation
//! starts with the agent its last handoff chose. `agent check`'s handoff problems are covered
//! at the bottom.

mod common;

use std::{path::Path, sync::Arc};

use agent_core::{
    agent::{Agent, AgentFile, ConnectOverrides},
    protocol::{Dialect, Item},
    session::{HistorySink, Session, SessionEvent},
    tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ScriptedServer, ServerConfig, ServerHandle},
};
use async_trait::async_trait;
use common::harness::{CapturedHistory, received, until_idle, validate_all};
use serde_json::{Value, json};

/// Answers with the name of the agent that ran it (`ToolContext::agent`).
struct WhoAmI(&'static str, Value);

#[async_trait]
impl Tool for WhoAmI {
    fn name(&self) -> &str {
        self.0
    }
    fn description(&self) -> &str {
        "says which agent ran it"
    }
    fn parameters(&self, _strict: bool) -> &Value {
        &self.1
    }
    async fn call(&self, _args: Value, ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        let setting: Option<Value> = ctx.setting("whoami")?;
        let who = setting.and_then(|s| s["who"].as_str().map(str::to_owned));
        Ok(ToolOutput::text(format!(
            "{} {}",
            ctx.agent(),
            who.unwrap_or_default()
        )))
    }
}

fn registry() -> ToolRegistry {
    let schema = json!({"type": "object", "properties": {}, "required": [],
        "additionalProperties": false});
    let mut registry = ToolRegistry::new();
    for name in ["whoami", "only_back"] {
        registry
            .register(Arc::new(WhoAmI(name, schema.clone())), "tests/handoff.rs")
            .unwrap();
    }
    registry
}

const FRONT: &str = r#"
name = "front"
instructions = "You are the front desk."
voice = "marin"
output_modalities = ["audio"]
tools = ["whoami"]
handoffs = ["back"]
[audio]
input_format = "g711_ulaw"
output_format = "g711_ulaw"
[tool_config.whoami]
x = 1
"#;

const BACK: &str = r#"
name = "back"
handoff_description = "anything about money"
instructions = "You are the back office."
tools = ["whoami", "only_back"]
handoffs = ["front"]
max_output_tokens = 200
[tool_config.whoami]
who = "from back"
"#;

fn team(dir: &Path, front: &str, back: &str) -> Result<Agent, String> {
    std::fs::write(dir.join("front.toml"), front).unwrap();
    std::fs::write(dir.join("back.toml"), back).unwrap();
    AgentFile::check_all(dir.join("front.toml"), &registry()).map_err(|e| e.to_string())
}

async fn start(
    agent: &Agent,
    scenario: Scenario,
    history: Vec<(String, Item)>,
) -> (ServerHandle, Session) {
    start_with(agent, scenario, history, None).await
}

async fn start_with(
    agent: &Agent,
    scenario: Scenario,
    history: Vec<(String, Item)>,
    sink: Option<Arc<CapturedHistory>>,
) -> (ServerHandle, Session) {
    let server = ScriptedServer::start(ServerConfig::new(scenario)).unwrap();
    let overrides = ConnectOverrides {
        url: Some(server.url()),
        key_optional: true,
        ..Default::default()
    };
    let mut config = agent.session_config(&overrides, None).unwrap();
    config.history = history;
    config.history_sink = sink.map(|sink| sink as Arc<dyn HistorySink>);
    let session = Session::start(config).await.unwrap();
    (server, session)
}

fn call(name: &str) -> ModelStep {
    ModelStep::calls([ScriptedCall::new(name, json!({}))])
}

fn updates(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["type"] == "session.update")
        .map(|e| &e["session"])
        .collect()
}

fn tool_names(session: &Value) -> Vec<&str> {
    session["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["name"].as_str())
        .collect()
}

#[tokio::test]
async fn a_transfer_switches_instructions_and_tools_and_keeps_the_voice() {
    let dir = tempfile::tempdir().unwrap();
    let agent = team(dir.path(), FRONT, BACK).unwrap();
    assert_eq!(agent.handoffs.len(), 1);
    let scenario = Scenario::new("handoff").turn(
        Turn::user("I was charged twice")
            .model(call("transfer_to_back"))
            .model(call("only_back"))
            .model(ModelStep::say("The back office here.")),
    );
    let (server, mut session) = start(&agent, scenario, Vec::new()).await;
    assert_eq!(session.agent, "front");
    session
        .handle
        .send_text("I was charged twice")
        .await
        .unwrap();
    let events = until_idle(&mut session).await;

    let handoff = events.iter().find_map(|e| match e {
        SessionEvent::Handoff { from, to, call_id } => Some((from, to, call_id)),
        _ => None,
    });
    let (from, to, call_id) = handoff.expect("a handoff event");
    assert_eq!((from.as_str(), to.as_str()), ("front", "back"));
    let ran = events.iter().find_map(|e| match e {
        SessionEvent::ToolCallFinished { name, result, .. } if name == "only_back" => {
            Some(result.clone().unwrap())
        }
        _ => None,
    });
    // The back office's tool ran, as the back office, with the back office's settings.
    assert_eq!(ran.as_deref(), Some("back from back"));
    assert!(
        !events.iter().any(|e| matches!(e, SessionEvent::ToolCallStarted { name, .. } if name == "transfer_to_back")),
        "a transfer runs no tool"
    );

    let sent = received(&server).await;
    let updates = updates(&sent);
    assert_eq!(
        updates.len(),
        2,
        "the agent's configuration, then the handoff"
    );
    let (first, handoff) = (updates[0], updates[1]);
    assert_eq!(first["audio"]["output"]["voice"], "marin");
    assert_eq!(tool_names(first), ["whoami", "transfer_to_back"]);
    assert_eq!(handoff["instructions"], "You are the back office.");
    assert_eq!(
        tool_names(handoff),
        ["only_back", "whoami", "transfer_to_front"]
    );
    assert_eq!(handoff["max_output_tokens"], 200);
    for pinned in ["audio", "model", "output_modalities"] {
        assert!(
            handoff.get(pinned).is_none(),
            "{pinned} stays as it was: {handoff}"
        );
    }
    // The transfer's output names the target, and the switch precedes the follow-up.
    let position = |pred: &dyn Fn(&Value) -> bool| sent.iter().position(pred).unwrap();
    let update_at = position(&|e| {
        e["type"] == "session.update" && e["session"]["instructions"] == "You are the back office."
    });
    let output_at = position(&|e| e["item"]["call_id"] == call_id.as_str());
    assert!(
        sent[output_at]["item"]["output"]
            .as_str()
            .unwrap()
            .contains("back")
    );
    let follow_up_at = sent
        .iter()
        .enumerate()
        .skip(output_at)
        .find(|(_, e)| e["type"] == "response.create")
        .map(|(i, _)| i)
        .expect("a follow-up");
    assert!(update_at < output_at && output_at < follow_up_at);
    validate_all(&server, Dialect::Ga).await;
    common::harness::assert_no_violations(&server).await;
}

/// The history learns the current agent (what `agent history list` shows) and the guardrail
/// trips of the agent handed to, which holds its own guardrails.
#[tokio::test]
async fn the_history_follows_the_handoff_and_records_the_targets_trips() {
    let dir = tempfile::tempdir().unwrap();
    let back = format!(
        "{BACK}[guardrails]\noutput_debounce_ms = 0\n[[guardrails.output]]\ntype = \"blocklist\"\n\
         name = \"no guarantees\"\nwords = [\"guarantee\"]\nmessage = \"never guarantee\"\n"
    );
    let front = FRONT.replace("[\"audio\"]", "[\"text\"]");
    let agent = team(dir.path(), &front, &back).unwrap();
    let scenario = Scenario::new("handoff").turn(
        Turn::user("I was charged twice")
            .model(call("transfer_to_back"))
            .model(ModelStep::say("I guarantee a refund tomorrow."))
            .model(ModelStep::say("The back office will check it.")),
    );
    let sink = Arc::new(CapturedHistory::default());
    let (_server, mut session) = start_with(&agent, scenario, Vec::new(), Some(sink.clone())).await;
    session
        .handle
        .send_text("I was charged twice")
        .await
        .unwrap();
    // Idle comes between the stopped answer and the one asked for again.
    let answered = || {
        sink.items_json()
            .iter()
            .any(|item| item.contains("will check it"))
    };
    while !answered() {
        until_idle(&mut session).await;
    }
    let handoffs = sink.handoffs.lock().unwrap().clone();
    assert_eq!(handoffs.len(), 1, "{handoffs:?}");
    assert_eq!(
        (handoffs[0].1.as_str(), handoffs[0].2.as_str()),
        ("front", "back")
    );
    let trips = sink.trips.lock().unwrap().clone();
    assert_eq!(trips.len(), 1, "{trips:?}");
    assert_eq!(trips[0].0, "no guarantees");
    assert!(
        !sink
            .items_json()
            .iter()
            .any(|item| item.contains("tomorrow")),
        "the stopped answer's words are not stored"
    );
}

#[tokio::test]
async fn a_resumed_conversation_continues_with_the_last_handoffs_agent() {
    let dir = tempfile::tempdir().unwrap();
    let agent = team(dir.path(), FRONT, BACK).unwrap();
    let history = vec![
        ("u1".to_owned(), Item::user_text("money, please")),
        (
            "c1".to_owned(),
            Item::function_call("call_t", "transfer_to_back", "{}"),
        ),
        (
            "o1".to_owned(),
            Item::function_call_output("call_t", "{\"transferred_to\":\"back\"}"),
        ),
        // A transfer back that never got its output did not happen.
        (
            "c2".to_owned(),
            Item::function_call("call_u", "transfer_to_front", "{}"),
        ),
    ];
    let scenario = Scenario::new("resume").turn(
        Turn::user("still there?")
            .model(call("whoami"))
            .model(ModelStep::say("Yes.")),
    );
    let (server, mut session) = start(&agent, scenario, history).await;
    assert_eq!(session.agent, "back");
    session.handle.send_text("still there?").await.unwrap();
    let events = until_idle(&mut session).await;
    let ran = events.iter().find_map(|e| match e {
        SessionEvent::ToolCallFinished { name, result, .. } if name == "whoami" => {
            Some(result.clone().unwrap())
        }
        _ => None,
    });
    assert_eq!(ran.as_deref(), Some("back from back"));
    let sent = received(&server).await;
    let first = updates(&sent)[0];
    assert_eq!(first["instructions"], "You are the back office.");
    assert_eq!(
        first["audio"]["output"]["voice"], "marin",
        "the starting agent's voice"
    );
    assert_eq!(first["audio"]["output"]["format"]["type"], "audio/pcmu");
}

#[test]
fn check_reports_what_a_handoff_cannot_change() {
    let dir = tempfile::tempdir().unwrap();
    // Top-level keys first: after a table header they would belong to the table.
    let back = format!(
        "voice = \"cedar\"\nmodel = \"gpt-realtime-mini\"\n{BACK}[audio]\noutput_format = \"pcm16\"\n"
    );
    let err = team(dir.path(), FRONT, &back).unwrap_err();
    assert!(err.contains("back.toml:1:9"), "points at the voice: {err}");
    assert!(err.contains("voice `cedar` differs from `marin`"), "{err}");
    assert!(err.contains("model `gpt-realtime-mini` differs"), "{err}");
    assert!(
        err.contains("output_format `pcm16` differs from `g711_ulaw`"),
        "{err}"
    );
}

#[test]
fn check_reports_missing_and_circular_targets() {
    let dir = tempfile::tempdir().unwrap();
    let front = FRONT.replace("handoffs = [\"back\"]", "handoffs = [\"bak\", \"front\"]");
    let err = team(dir.path(), &front, BACK).unwrap_err();
    assert!(err.contains("handoff target `bak`"), "{err}");
    assert!(
        err.contains("bak.toml"),
        "names the file it looked for: {err}"
    );
    assert!(err.contains("lists itself"), "{err}");
    // A target whose own file is broken is reported in that file.
    let err = team(
        dir.path(),
        FRONT,
        &BACK.replace("[\"whoami\", \"only_back\"]", "[\"whoam\"]"),
    )
    .unwrap_err();
    assert!(err.contains("back.toml"), "{err}");
    assert!(err.contains("unknown tool `whoam`"), "{err}");
}
