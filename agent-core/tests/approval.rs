//! Tool approval, end to end against the scripted server: a call to a tool that needs approval
//! waits for the app's answer while the other calls of its response run; approved, it runs;
//! denied or unanswered, it does not, and the model reads why as its output.

mod common;

use std::time::Duration;

use agent_core::{
    protocol::Dialect,
    session::{ApprovalKind, ApprovalPolicy, NotRun, Session, SessionEvent},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, Turn},
    server::{ServerConfig, ServerHandle},
};
use common::harness::*;

/// One response calling `slow_a` (which needs approval) and `quick`, then an answer.
fn scenario() -> Scenario {
    Scenario::new("approval").turn(
        Turn::user("refund me")
            .model(calls(&["slow_a", "quick"]))
            .model(ModelStep::say("Done what I could.")),
    )
}

async fn start_needing_approval(h: &Harness, timeout: Duration) -> (ServerHandle, Session) {
    start_with(h, ServerConfig::new(scenario()), |c| {
        c.approval = ApprovalPolicy {
            tools: ["slow_a".to_owned()].into(),
            timeout,
        };
    })
    .await
}

/// Waits for the approval request, collecting what came before it.
async fn approval_request(session: &mut Session) -> (String, Vec<SessionEvent>) {
    let mut before = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, session.events.recv())
            .await
            .expect("an approval request within 10 s")
            .expect("the session runs");
        if let SessionEvent::ApprovalRequested {
            id,
            kind,
            name,
            arguments,
            timeout,
        } = &event
        {
            assert_eq!(kind, &ApprovalKind::Tool);
            assert_eq!(name, "slow_a");
            assert_eq!(arguments, "{}");
            assert!(*timeout > Duration::ZERO);
            return (id.clone(), before);
        }
        before.push(event);
    }
}

fn decided(events: &[SessionEvent]) -> Vec<(bool, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ApprovalDecided { approved, how, .. } => Some((*approved, how.clone())),
            _ => None,
        })
        .collect()
}

fn ran(h: &Harness, tool: &str) -> bool {
    let prefix = format!("start {tool} ");
    h.log.lock().unwrap().iter().any(|l| l.starts_with(&prefix))
}

async fn output_of(server: &ServerHandle, call_id: &str) -> String {
    outputs(&received(server).await)
        .into_iter()
        .find(|(id, _)| id == call_id)
        .map(|(_, output)| output)
        .unwrap_or_else(|| panic!("no output for {call_id}"))
}

#[tokio::test]
async fn an_approved_call_runs_and_the_other_calls_do_not_wait_for_it() {
    let h = harness("");
    let (server, mut session) = start_needing_approval(&h, Duration::from_secs(30)).await;
    session.handle.send_text("refund me").await.unwrap();
    let (id, _) = approval_request(&mut session).await;
    // The other call of the response runs meanwhile.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !ran(&h, "quick") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "`quick` waited for `slow_a`'s approval"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!ran(&h, "slow_a"), "not before it is approved");

    assert!(session.handle.approve(&id));
    assert!(!session.handle.approve(&id), "an answer is taken once");
    let events = until_idle(&mut session).await;
    assert_eq!(decided(&events), [(true, "approved".to_owned())]);
    assert!(ran(&h, "slow_a"));
    assert_eq!(output_of(&server, &id).await, "slow_a done");
    assert_eq!(reply_text(&events), "Done what I could.");
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_denied_call_does_not_run_and_the_model_reads_why() {
    let h = harness("");
    let (server, mut session) = start_needing_approval(&h, Duration::from_secs(30)).await;
    session.handle.send_text("refund me").await.unwrap();
    let (id, _) = approval_request(&mut session).await;
    assert!(
        session
            .handle
            .deny(&id, Some("the order is not eligible".into()))
    );
    let events = until_idle(&mut session).await;
    assert_eq!(
        decided(&events),
        [(false, "denied: the order is not eligible".to_owned())]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        SessionEvent::ToolCallNotRun {
            why: NotRun::NotApproved,
            ..
        }
    )));
    assert!(!ran(&h, "slow_a"), "a denied call never runs");
    let output: serde_json::Value = serde_json::from_str(&output_of(&server, &id).await).unwrap();
    assert_eq!(output["kind"], "not_approved");
    assert!(
        output["error"]
            .as_str()
            .unwrap()
            .contains("the order is not eligible"),
        "{output}"
    );
    // The answer still comes, once, after both outputs.
    assert_eq!(reply_text(&events), "Done what I could.");
    session.handle.close().await.unwrap();
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn no_answer_in_time_counts_as_a_denial() {
    let h = harness("");
    let (server, mut session) = start_needing_approval(&h, Duration::from_millis(200)).await;
    session.handle.send_text("refund me").await.unwrap();
    let (id, _) = approval_request(&mut session).await;
    let events = until_idle(&mut session).await;
    assert_eq!(
        decided(&events),
        [(false, "no answer within 0.2 s".to_owned())]
    );
    assert!(!ran(&h, "slow_a"));
    assert!(!session.handle.approve(&id), "too late: nothing waits");
    let output = output_of(&server, &id).await;
    assert!(output.contains("not_approved"), "{output}");
    session.handle.close().await.unwrap();
    server.shutdown().await;
}

/// A tool whose code asks for approval (what `#[tool(needs_approval)]` expands to).
struct Refund;

#[async_trait::async_trait]
impl agent_core::tool::Tool for Refund {
    fn name(&self) -> &str {
        "refund"
    }
    fn description(&self) -> &str {
        "refunds an order"
    }
    fn parameters(&self, _strict: bool) -> &serde_json::Value {
        static SCHEMA: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| serde_json::json!({"type": "object", "properties": {}}))
    }
    fn needs_approval(&self) -> bool {
        true
    }
    async fn call(
        &self,
        _: serde_json::Value,
        _: agent_core::tool::ToolContext,
    ) -> Result<agent_core::tool::ToolOutput, agent_core::tool::ToolError> {
        Ok(agent_core::tool::ToolOutput::text("refunded"))
    }
}

#[test]
fn a_tool_marked_in_code_needs_approval_without_the_agent_file_saying_so() {
    let mut registry = agent_core::tool::ToolRegistry::new();
    registry
        .register(std::sync::Arc::new(Refund), "tests/approval.rs")
        .unwrap();
    let agent = agent_core::agent::AgentFile::parse(
        "refunds.toml",
        "name = \"refunds\"\ninstructions = \"x\"\ntools = [\"refund\"]\n".to_owned(),
    )
    .unwrap()
    .resolve(&registry)
    .unwrap();
    let policy = agent.approval_policy();
    assert!(policy.tools.contains("refund"), "{:?}", policy.tools);
    assert_eq!(policy.timeout, Duration::from_secs(60));
    let config = agent
        .session_config(
            &agent_core::agent::ConnectOverrides {
                url: Some("ws://127.0.0.1:9/v1/realtime".into()),
                key_optional: true,
                ..Default::default()
            },
            None,
        )
        .unwrap();
    assert!(config.approval.tools.contains("refund"));
}
