//! Scenario files: errors point at file:line:col, and `agents/support.scenarios.toml` parses and
//! plays through the scripted server with a client that answers every call.

mod common;

use std::path::PathBuf;

use agent_testkit::{
    ObservedCall, ObservedTurn, ScenarioError, ScenarioFile, ScriptedServer, ServerConfig,
};
use common::Client;
use serde_json::{Value, json};

fn support_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../agents/support.scenarios.toml")
}

#[test]
fn parse_errors_carry_line_and_column() {
    let text = "[[scenario]]\nname = \"x\"\n\n[[scenario.turn]]\nuser = \"hi\"\n  [[scenario.turn.model]]\n  say = 3\n";
    let err = ScenarioFile::from_str(text, "agents/x.scenarios.toml").unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.line, d.column), (7, 9), "{err}");
    assert!(
        err.to_string().starts_with("agents/x.scenarios.toml:7:9: "),
        "{err}"
    );
    assert!(!d.help.is_empty());

    let text = "[[scenario]]\nname = \"x\"\nturns = []\n";
    let err = ScenarioFile::from_str(text, "y.toml").unwrap_err();
    assert!(
        err.to_string()
            .contains("y.toml:3:1: unknown field `turns`"),
        "{err}"
    );

    let text = "[[scenario]\nname = \"x\"\n";
    let err = ScenarioFile::from_str(text, "z.toml").unwrap_err();
    assert!(err.to_string().starts_with("z.toml:1:"), "{err}");
}

#[test]
fn missing_file_says_what_to_do() {
    let err = ScenarioFile::load("/nonexistent/agent.scenarios.toml").unwrap_err();
    assert!(matches!(err, ScenarioError::Read { .. }));
    assert!(
        err.to_string()
            .contains("/nonexistent/agent.scenarios.toml"),
        "{err}"
    );
}

#[test]
fn support_scenarios_parse() {
    let file = ScenarioFile::load(support_file()).unwrap_or_else(|e| panic!("{e}"));
    assert!(file.scenarios.len() >= 5);
    let names: Vec<&str> = file.scenarios.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"order status"));
    let two = file.get("order and return policy").unwrap();
    assert_eq!(
        two.turns[0].model[0].calls.len(),
        2,
        "two calls in one response"
    );
    let unknown = file.get("unknown order").unwrap();
    assert_eq!(unknown.turns[0].expect[0].output_is_error, Some(true));
    let follow_up = file.get("follow-up and ticket").unwrap();
    assert!(follow_up.turns.len() >= 2);
    let ticket_args = &follow_up.turns[2].model[0].calls[0].arguments;
    assert_eq!(ticket_args["priority"], "high");
    for s in &file.scenarios {
        for call in s.turns.iter().flat_map(|t| &t.model).flat_map(|m| &m.calls) {
            assert!(
                [
                    "lookup_order",
                    "search_help_center",
                    "create_ticket",
                    "current_time",
                    // The handoff to billing.toml and back.
                    "transfer_to_billing",
                    "transfer_to_support",
                ]
                .contains(&call.name.as_str()),
                "{}",
                call.name
            );
        }
    }
}

/// Plays every support scenario like `agent test` would, with canned tool outputs: the script is
/// consistent (no violations, one response per model step) and every expectation that does not
/// depend on real tool output holds.
#[tokio::test]
async fn support_scenarios_play_through() {
    let file = ScenarioFile::load(support_file()).unwrap();
    for scenario in &file.scenarios {
        let server = ScriptedServer::start(ServerConfig::new(scenario.clone())).unwrap();
        let mut c = Client::connect(&server.url()).await;
        c.text_session().await;
        for turn in &scenario.turns {
            let mut observed = ObservedTurn::default();
            c.user_says(turn.user.as_deref().unwrap()).await;
            let mut responses = 0;
            loop {
                c.send(json!({"type": "response.create"})).await;
                let events = c.until("response.done").await;
                responses += 1;
                let output = events.last().unwrap()["response"]["output"].clone();
                let mut calls = Vec::new();
                for item in output.as_array().unwrap() {
                    match item["type"].as_str() {
                        Some("message") => {
                            observed
                                .reply
                                .push_str(item["content"][0]["text"].as_str().unwrap());
                        }
                        Some("function_call") => calls.push(item.clone()),
                        _ => {}
                    }
                }
                // A guardrail stops a scripted answer: the runtime tells the model (a system
                // message) and asks again, which plays the next step.
                let guarded = turn.expect.iter().any(|e| e.guardrail.is_some());
                if calls.is_empty() && guarded && responses < turn.model.len() {
                    c.send(json!({"type": "conversation.item.create", "item": {"type": "message",
                        "role": "system", "content": [{"type": "input_text", "text": "answer again"}]}}))
                        .await;
                    continue;
                }
                if calls.is_empty() {
                    break;
                }
                for call in calls {
                    let call_id = call["call_id"].as_str().unwrap();
                    c.output(call_id, "{}").await;
                    observed.tool_calls.push(ObservedCall {
                        name: call["name"].as_str().unwrap().into(),
                        arguments: serde_json::from_str(call["arguments"].as_str().unwrap())
                            .unwrap_or(Value::Null),
                        output: String::new(),
                        is_error: false,
                    });
                }
            }
            assert_eq!(responses, turn.model.len(), "{}", scenario.name);
            for e in &turn.expect {
                let mut script_only = e.clone();
                script_only.output_contains = None;
                script_only.output_is_error = None;
                // Which agent has the conversation is the runtime's to say.
                script_only.agent = None;
                // So is which guardrail tripped, and what it withdrew from the reply.
                if turn.expect.iter().any(|e| e.guardrail.is_some()) {
                    script_only.guardrail = None;
                    script_only.reply_not_contains = None;
                }
                if let Err(why) = script_only.check(&observed) {
                    panic!("{} / {}: {why}", scenario.name, e.description());
                }
            }
        }
        let v = server.violations().await;
        assert!(v.is_empty(), "{}: {v:?}", scenario.name);
        server.shutdown().await;
    }
}
