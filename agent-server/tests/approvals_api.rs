//! The operator's approvals API on `agent serve`: a SIP call's tool that needs approval waits,
//! `GET /approvals` lists it, `POST /approvals/{id}` answers it, and the call goes on. Each
//! refusal is tested: no token, a wrong one, a bad body, an id nothing waits under, and a
//! server with no operator token at all.

#![allow(dead_code)] // the shared SIP harness has more than this test uses

mod common;
mod sip;

use std::time::Duration;

use agent_testkit::{
    ModelStep, Scenario, ScriptedCall, Turn,
    platform::{CallControl, WebhookSigning},
    twilio::http::{self, HttpAnswer},
};
use serde_json::{Value, json};
use sip::{SipHarness, SipOptions, USER, eventually};

const TOKEN: &str = "operator-token-for-approvals-0123456789";
const NEEDS_APPROVAL: &str =
    "[tool_options]\nneeds_approval = [\"caller_lookup\"]\napproval_timeout_secs = 30\n";

fn scenario() -> Scenario {
    Scenario::new("approval call")
        .turn(Turn::model_first().model(ModelStep::say("Hello, the shop.")))
        .turn(
            Turn::user("Where is my order A1001?")
                .model(ModelStep::calls([ScriptedCall::new(
                    "caller_lookup",
                    json!({"order_id": "A1001"}),
                )]))
                .model(ModelStep::say("Your order shipped.")),
        )
}

fn options(token: Option<&'static str>) -> SipOptions {
    SipOptions {
        agent_extra: NEEDS_APPROVAL,
        serve_extra: "[browser]\noperator_token_env = \"AGENT_TEST_OPERATOR_TOKEN\"\n".into(),
        operator_token: token,
        ..SipOptions::default()
    }
}

async fn request(
    h: &SipHarness,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: &str,
) -> HttpAnswer {
    let bearer = auth.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer.as_str()));
    }
    http::request(
        h.addr,
        method,
        path,
        &headers,
        body.as_bytes(),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

/// `POST /approvals/{id}` with the operator's token and `body`.
async fn answer_approval(h: &SipHarness, id: &str, body: &str) -> HttpAnswer {
    request(h, "POST", &format!("/approvals/{id}"), Some(TOKEN), body).await
}

async fn listed(h: &SipHarness) -> Vec<Value> {
    let answer = request(h, "GET", "/approvals", Some(TOKEN), "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    body["approvals"].as_array().unwrap().clone()
}

fn code(answer: &HttpAnswer) -> String {
    let body: Value = serde_json::from_str(&answer.body).unwrap_or_default();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn outputs(h: &SipHarness) -> Vec<String> {
    h.received("conversation.item.create")
        .await
        .into_iter()
        .filter(|e| e["item"]["type"] == "function_call_output")
        .map(|e| e["item"]["output"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Places a call and has the caller ask, so the tool call waits for approval.
async fn call_waiting_for_approval(h: &SipHarness, call_id: &str) -> Value {
    let answer = h
        .call(
            call_id,
            USER,
            &format!("wh_{call_id}"),
            WebhookSigning::Valid,
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    eventually("the greeting", || async {
        !h.sent("response.done").await.is_empty()
    })
    .await;
    assert!(h.platform.control(call_id, CallControl::CallerSpeaks));
    eventually("the approval is listed", || async {
        !listed(h).await.is_empty()
    })
    .await;
    listed(h).await.remove(0)
}

#[tokio::test]
async fn the_operator_approves_a_waiting_call_over_http() {
    let h = SipHarness::start(scenario(), options(Some(TOKEN))).await;
    let waiting = call_waiting_for_approval(&h, "rtc_ap1").await;
    assert_eq!(waiting["transport"], "sip");
    assert_eq!(waiting["call_id"], "rtc_ap1");
    assert_eq!(waiting["agent"], "phone");
    assert_eq!(waiting["tool"], "caller_lookup");
    assert_eq!(waiting["arguments"], "{\"order_id\":\"A1001\"}");
    assert!(
        waiting["seconds_left"].as_f64().unwrap() > 20.0,
        "{waiting}"
    );
    assert!(
        outputs(&h).await.is_empty(),
        "nothing ran before the answer"
    );

    let id = waiting["id"].as_str().unwrap();
    let answer = answer_approval(&h, id, "{\"approve\": true}").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    eventually("the tool's output", || async {
        !outputs(&h).await.is_empty()
    })
    .await;
    assert!(
        outputs(&h).await[0].contains("A1001"),
        "{:?}",
        outputs(&h).await
    );
    assert!(listed(&h).await.is_empty(), "answered: no longer listed");
    let again = answer_approval(&h, id, "{\"approve\": true}").await;
    assert_eq!(
        (again.status, code(&again)),
        (404, "not_waiting".into()),
        "answered once"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_denial_reaches_the_model_with_the_operators_reason() {
    let h = SipHarness::start(scenario(), options(Some(TOKEN))).await;
    let waiting = call_waiting_for_approval(&h, "rtc_ap2").await;
    let id = waiting["id"].as_str().unwrap();
    let answer = answer_approval(
        &h,
        id,
        "{\"approve\": false, \"reason\": \"ask for the order number again\"}",
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    eventually("the denial's output", || async {
        !outputs(&h).await.is_empty()
    })
    .await;
    let output = &outputs(&h).await[0];
    assert!(
        output.contains("not_approved") && output.contains("ask for the order number again"),
        "{output}"
    );
    h.stop().await;
}

#[tokio::test]
async fn every_refusal_of_the_approvals_api() {
    let h = SipHarness::start(scenario(), options(Some(TOKEN))).await;
    for auth in [None, Some("wrong-token"), Some("")] {
        let answer = request(&h, "GET", "/approvals", auth, "").await;
        assert_eq!(
            (answer.status, code(&answer)),
            (401, "unauthorized".into()),
            "{auth:?}"
        );
        let answer = request(&h, "POST", "/approvals/call_x", auth, "{\"approve\": true}").await;
        assert_eq!(answer.status, 401, "{auth:?}");
        assert!(!answer.body.contains(TOKEN));
    }
    for body in [
        "",
        "{}",
        "{\"approve\": \"yes\"}",
        "{\"approve\": true, \"extra\": 1}",
        "not json",
    ] {
        let answer = request(&h, "POST", "/approvals/call_x", Some(TOKEN), body).await;
        assert_eq!(
            (answer.status, code(&answer)),
            (400, "bad_answer".into()),
            "{body}"
        );
    }
    let oversized = format!(
        "{{\"approve\": false, \"reason\": \"{}\"}}",
        "x".repeat(5000)
    );
    let answer = answer_approval(&h, "call_x", &oversized).await;
    assert_eq!((answer.status, code(&answer)), (413, "too_large".into()));
    let unknown = answer_approval(&h, "call_x", "{\"approve\": true}").await;
    assert_eq!(
        (unknown.status, code(&unknown)),
        (404, "not_waiting".into())
    );
    h.stop().await;

    // Without an operator token the API is off, and a waiting call is denied when its time
    // runs out (not tested here: the library's timeout test covers it).
    let h = SipHarness::start(
        scenario(),
        SipOptions {
            agent_extra: NEEDS_APPROVAL,
            ..SipOptions::default()
        },
    )
    .await;
    let off = request(&h, "GET", "/approvals", Some(TOKEN), "").await;
    assert_eq!((off.status, code(&off)), (404, "not_enabled".into()));
    h.stop().await;
}
