//! End-to-end tests of the session runtime against the scripted Realtime server on loopback:
//! concurrency, sequencing, call-id dedupe, error outputs, queued input, and conformance of
//! every client event the runtime sends.

mod common;

use std::time::Duration;

use agent_core::{protocol::Dialect, session::SessionEvent};
use agent_testkit::{
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{DialectMode, ServerConfig},
};
use common::harness::*;
use serde_json::{Value, json};

#[tokio::test]
async fn calls_of_one_response_run_concurrently_then_one_create() {
    let h = harness("");
    let scenario = Scenario::new("concurrency").turn(
        Turn::user("run three")
            .model(calls(&["slow_a", "slow_b", "slow_c"]))
            .model(ModelStep::say("all three done")),
    );
    let (server, mut session) = start(&h, ServerConfig::new(scenario)).await;
    session.handle.send_text("run three").await.unwrap();
    let events = until_idle(&mut session).await;

    // Every call started before any finished: they overlapped.
    let log = h.log.lock().unwrap().clone();
    assert_eq!(log.len(), 6, "{log:?}");
    let first_end = log.iter().position(|l| l.starts_with("end")).unwrap();
    assert_eq!(first_end, 3, "all starts precede the first end: {log:?}");

    // Exactly one response.create after the three outputs, and only after response.done.
    let sent = received(&server).await;
    let kinds = types(&sent);
    let creates: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| *k == "response.create")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(creates.len(), 2, "{kinds:?}");
    let output_positions: Vec<usize> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| *k == "conversation.item.create:function_call_output")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(output_positions.len(), 3, "{kinds:?}");
    assert!(
        output_positions.iter().all(|p| *p < creates[1]),
        "{kinds:?}"
    );

    let log = server.log().await;
    let done_at = log
        .iter()
        .position(|f| {
            f.value
                .as_ref()
                .is_some_and(|v| v["type"] == "response.done")
        })
        .unwrap();
    let second_create_at = log
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            f.value
                .as_ref()
                .is_some_and(|v| v["type"] == "response.create")
        })
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    assert!(
        done_at < second_create_at,
        "response.create before response.done"
    );
    assert_no_violations(&server).await;

    let reply = reply_text(&events);
    assert_eq!(reply, "all three done");
    let validated = validate_all(&server, Dialect::Ga).await;
    common::spec::report(format!(
        "runtime concurrency: validated {validated} client events (GA)"
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn each_call_id_runs_once() {
    let h = harness("");
    // The call arrives in response.output_item.done and again in response.done's output.
    let scenario = Scenario::new("dedupe").turn(
        Turn::user("once")
            .model(calls(&["quick"]))
            .model(ModelStep::say("ok")),
    );
    let (server, mut session) = start(&h, ServerConfig::new(scenario)).await;
    session.handle.send_text("once").await.unwrap();
    let events = until_idle(&mut session).await;
    let starts = h
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.starts_with("start"))
        .count();
    assert_eq!(starts, 1);
    let started = events
        .iter()
        .filter(|e| matches!(e, SessionEvent::ToolCallStarted { .. }))
        .count();
    assert_eq!(started, 1);
    assert_eq!(outputs(&received(&server).await).len(), 1);
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn failures_become_error_outputs_and_the_session_goes_on() {
    let h = harness("");
    let scenario = Scenario::new("errors")
        .turn(
            Turn::user("break things")
                .model(ModelStep::calls([
                    ScriptedCall::new("panicky", json!({})),
                    ScriptedCall::new("sleepy", json!({})),
                    ScriptedCall::raw("count", "{not json"),
                    ScriptedCall::new("count", json!({"n": "three"})),
                    ScriptedCall::new("no_such_tool", json!({})),
                ]))
                .model(ModelStep::say("sorry, several tools failed")),
        )
        .turn(
            Turn::user("still there?")
                .model(ModelStep::calls([ScriptedCall::new(
                    "count",
                    json!({"n": 3}),
                )]))
                .model(ModelStep::say("yes")),
        );
    let (server, mut session) = start(&h, ServerConfig::new(scenario)).await;
    session.handle.send_text("break things").await.unwrap();
    let events = until_idle(&mut session).await;
    let finished: Vec<(String, Result<String, String>)> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ToolCallFinished { name, result, .. } => {
                Some((name.clone(), result.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(finished.len(), 5, "{finished:?}");
    assert!(finished.iter().all(|(_, r)| r.is_err()), "{finished:?}");

    let outs = outputs(&received(&server).await);
    assert_eq!(outs.len(), 5);
    let kinds: Vec<String> = outs
        .iter()
        .map(|(_, o)| {
            serde_json::from_str::<Value>(o).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for kind in ["panicked", "timeout", "invalid_arguments", "unknown_tool"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "no {kind} output in {kinds:?}"
        );
    }
    assert_eq!(
        kinds.iter().filter(|k| *k == "invalid_arguments").count(),
        2,
        "{outs:?}"
    );
    let unknown = outs
        .iter()
        .find(|(_, o)| o.contains("unknown_tool"))
        .unwrap();
    assert!(
        unknown.1.contains("count"),
        "lists the available tools: {}",
        unknown.1
    );

    // The session survived: the next turn runs a tool and gets its answer.
    session.handle.send_text("still there?").await.unwrap();
    let events = until_idle(&mut session).await;
    assert!(events.iter().any(|e| matches!(e,
        SessionEvent::ToolCallFinished { result: Ok(out), .. } if out == "count=3")));
    assert_no_violations(&server).await;
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn input_during_a_response_is_queued_not_lost() {
    let h = harness("");
    let scenario = Scenario::new("queue")
        .turn(
            Turn::user("first")
                .model(calls(&["slow_a"]))
                .model(ModelStep::say("first answer")),
        )
        .turn(Turn::user("second").model(ModelStep::say("second answer")));
    let (server, mut session) = start(&h, ServerConfig::new(scenario)).await;
    session.handle.send_text("first").await.unwrap();
    // Sent while the first response and its tool are still in flight.
    session.handle.send_text("second").await.unwrap();
    let mut replies = String::new();
    while !replies.contains("second answer") {
        for event in until_idle(&mut session).await {
            if let SessionEvent::TextDelta { delta, .. } = event {
                replies.push_str(&delta);
            }
        }
    }
    assert_eq!(replies, "first answersecond answer");
    let sent = received(&server).await;
    let users: Vec<&str> = sent
        .iter()
        .filter(|e| e["item"]["role"] == "user")
        .map(|e| e["item"]["content"][0]["text"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["first", "second"]);
    assert_no_violations(&server).await;
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}

#[tokio::test]
async fn beta_dialect_round_trip_is_schema_valid() {
    let h = harness("[connection]\ndialect = \"beta\"\n");
    let scenario = Scenario::new("beta").turn(
        Turn::user("hello")
            .model(calls(&["quick"]))
            .model(ModelStep::say("hi from beta")),
    );
    let (server, mut session) =
        start(&h, ServerConfig::new(scenario).dialect(DialectMode::Auto)).await;
    session.handle.send_text("hello").await.unwrap();
    let events = until_idle(&mut session).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, SessionEvent::TextDelta { .. }))
    );
    let requests = server.requests().await;
    assert_eq!(requests[0].header("openai-beta"), Some("realtime=v1"));
    assert_no_violations(&server).await;
    let validated = validate_all(&server, Dialect::Beta).await;
    common::spec::report(format!(
        "runtime beta: validated {validated} client events (beta)"
    ));
    server.shutdown().await;
}

#[tokio::test]
async fn fatal_server_errors_end_the_session_with_the_code() {
    let h = harness("");
    let scenario = Scenario::new("fatal").turn(Turn::user("x").model(ModelStep::say("y")));
    let faults = agent_testkit::server::Faults::none().on_connection(
        0,
        agent_testkit::server::ConnectionFaults::new().error_after(
            2,
            agent_testkit::server::ErrorSpec::new(
                "invalid_request_error",
                "invalid_api_key",
                "Incorrect API key provided.",
            ),
        ),
    );
    let (server, mut session) = start(&h, ServerConfig::new(scenario).faults(faults)).await;
    session.handle.send_text("x").await.unwrap();
    let mut saw_error = false;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), session.events.recv())
            .await
            .expect("no close within 10 s")
        {
            Some(SessionEvent::Error { code, fatal, .. }) => {
                assert_eq!(code.as_deref(), Some("invalid_api_key"));
                assert!(fatal);
                saw_error = true;
            }
            Some(SessionEvent::Closed { reason }) => {
                assert!(matches!(reason,
                    agent_core::session::CloseReason::Fatal { code: Some(ref c), .. } if c == "invalid_api_key"));
                break;
            }
            Some(_) => {}
            None => panic!("events ended without Closed"),
        }
    }
    assert!(saw_error);
    validate_all(&server, Dialect::Ga).await;
    server.shutdown().await;
}
