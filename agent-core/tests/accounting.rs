//! Usage, cost, budget and latency of a running session, against the scripted server (which
//! reports deterministic usage in `response.done`; a step's `usage` table overrides it).

mod common;

use std::time::Duration;

use agent_core::{
    cost::ChargeSource,
    session::{CloseReason, SessionEvent},
};
use agent_testkit::{
    scenario::{ModelStep, Scenario, Turn},
    server::ServerConfig,
};
use common::harness::*;
use serde_json::{Value, json};

/// A step whose response reports `input_tokens` text tokens (gpt-realtime: $4 per 1M).
fn costing(step: ModelStep, input_tokens: u64) -> ModelStep {
    ModelStep {
        usage: Some(json!({ "input_tokens": input_tokens })),
        ..step
    }
}

async fn next_event(session: &mut agent_core::session::Session) -> SessionEvent {
    tokio::time::timeout(Duration::from_secs(20), session.events.recv())
        .await
        .expect("an event within 20 s")
        .expect("the session is still sending events")
}

#[tokio::test]
async fn every_response_reports_its_cost_and_every_turn_its_latency() {
    let h = harness("");
    let scenario = Scenario::new("cost").turn(
        Turn::user("go")
            .model(calls(&["quick"]))
            .model(ModelStep::say("done")),
    );
    let (_server, mut session) = start(&h, ServerConfig::new(scenario)).await;
    session.handle.send_text("go").await.unwrap();
    let events = until_idle(&mut session).await;

    let dones: Vec<usize> = positions(&events, |e| matches!(e, SessionEvent::ResponseDone { .. }));
    let costs: Vec<usize> = positions(&events, |e| matches!(e, SessionEvent::Cost(_)));
    assert_eq!(dones.len(), 2);
    assert_eq!(costs.len(), 2, "one cost report per response");
    assert!(dones[0] < costs[0] && costs[0] < dones[1] && dones[1] < costs[1]);

    let reports: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Cost(report) => Some(report.clone()),
            _ => None,
        })
        .collect();
    let mut previous_total = 0.0;
    for report in &reports {
        let ChargeSource::Response { tokens, .. } = &report.source else {
            panic!("a response charge: {report:?}");
        };
        assert!(tokens.input() > 0 && tokens.output() > 0, "{tokens:?}");
        let cost = report.cost_usd.expect("gpt-realtime has a price");
        assert!(cost > 0.0);
        let total = report.session.known_cost().unwrap();
        assert!(
            (total - previous_total - cost).abs() < 1e-12,
            "running total"
        );
        previous_total = total;
    }
    assert_eq!(reports[1].session.responses, 2);

    // The turn's latency arrives before Idle: one tool, one follow-up create.
    let latency = events
        .iter()
        .find_map(|e| match e {
            SessionEvent::TurnLatency(t) => Some(t.clone()),
            _ => None,
        })
        .expect("a TurnLatency event");
    assert_eq!(latency.tools.len(), 1);
    assert_eq!(latency.tools[0].name, "quick");
    assert_eq!(latency.overhead.len(), 1);
    assert_eq!(latency.responses, 2);
    assert!(latency.first_delta.is_some());
    assert_eq!(events.last(), Some(&SessionEvent::Idle));
}

#[tokio::test]
async fn budget_warns_at_80_percent_and_ends_the_session_after_the_answer() {
    let h = harness("[limits]\nmax_cost_usd = 1.0\n");
    // $0.80 (warning), then $0.40 more (exhausted) in the answer's final response.
    let scenario = Scenario::new("budget")
        .turn(
            Turn::user("first")
                .model(costing(calls(&["quick"]), 200_000))
                .model(costing(ModelStep::say("answer one"), 100_000)),
        )
        .turn(Turn::user("second").model(ModelStep::say("never played")));
    let (server, mut session) = start(&h, ServerConfig::new(scenario)).await;
    session.handle.send_text("first").await.unwrap();
    let events = until_idle(&mut session).await;
    let warning = positions(&events, |e| matches!(e, SessionEvent::BudgetWarning { .. }));
    let exhausted = positions(&events, |e| {
        matches!(e, SessionEvent::BudgetExhausted { .. })
    });
    assert_eq!((warning.len(), exhausted.len()), (1, 1), "{events:#?}");
    assert!(warning[0] < exhausted[0]);
    // The answer was finished: its text arrived.
    assert!(
        events.iter().any(
            |e| matches!(e, SessionEvent::TextDelta { delta, .. } if delta.contains("answer"))
        )
    );

    // Quiet now: the session closes on its own, and later input is never sent.
    let _ = session.handle.send_text("second").await;
    loop {
        match next_event(&mut session).await {
            SessionEvent::Closed { reason } => {
                assert_eq!(reason, CloseReason::BudgetExhausted);
                break;
            }
            SessionEvent::TurnLatency(_) | SessionEvent::Warning { .. } => {}
            other => panic!("unexpected event after the budget ran out: {other:?}"),
        }
    }
    let texts = user_texts(&received(&server).await);
    assert_eq!(texts, vec!["first".to_owned()]);
}

#[tokio::test]
async fn budget_spent_mid_answer_still_sends_the_tool_outputs_and_one_follow_up() {
    let h = harness("[limits]\nmax_cost_usd = 0.5\n");
    let scenario = Scenario::new("budget mid-answer").turn(
        Turn::user("go")
            .model(costing(calls(&["quick"]), 200_000))
            .model(ModelStep::say("finished anyway")),
    );
    let (server, mut session) = start(&h, ServerConfig::new(scenario)).await;
    session.handle.send_text("go").await.unwrap();
    let events = until_idle(&mut session).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::BudgetExhausted { .. }))
    );
    assert!(
        events.iter().any(
            |e| matches!(e, SessionEvent::TextDelta { delta, .. } if delta.contains("finished"))
        )
    );
    let kinds = types(&received(&server).await);
    let creates = kinds.iter().filter(|k| *k == "response.create").count();
    assert_eq!(
        creates, 2,
        "the input's create and one follow-up: {kinds:?}"
    );
    loop {
        if let SessionEvent::Closed { reason } = next_event(&mut session).await {
            assert_eq!(reason, CloseReason::BudgetExhausted);
            break;
        }
    }
    assert!(server.violations().await.is_empty());
}

#[tokio::test]
async fn an_unknown_model_is_metered_in_tokens_and_its_budget_is_not_enforced() {
    let h = harness("model = \"my-local-model\"\n[limits]\nmax_cost_usd = 0.000001\n");
    let scenario = Scenario::new("unknown").turn(Turn::user("hi").model(ModelStep::say("hello")));
    let (_server, mut session) = start(&h, ServerConfig::new(scenario)).await;
    session.handle.send_text("hi").await.unwrap();
    let events = until_idle(&mut session).await;
    let report = events
        .iter()
        .find_map(|e| match e {
            SessionEvent::Cost(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(report.cost_usd, None);
    assert_eq!(report.model, "my-local-model");
    assert!(report.session.tokens.total() > 0);
    assert!(events.iter().any(|e| matches!(e,
        SessionEvent::Warning { message } if message.contains("cannot be enforced"))));
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SessionEvent::BudgetExhausted { .. }))
    );
}

fn positions(events: &[SessionEvent], pick: impl Fn(&SessionEvent) -> bool) -> Vec<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| pick(e))
        .map(|(i, _)| i)
        .collect()
}

/// The texts of the user messages the client sent.
fn user_texts(sent: &[Value]) -> Vec<String> {
    sent.iter()
        .filter(|e| e["type"] == "conversation.item.create" && e["item"]["role"] == "user")
        .filter_map(|e| e["item"]["content"][0]["text"].as_str().map(str::to_owned))
        .collect()
}
