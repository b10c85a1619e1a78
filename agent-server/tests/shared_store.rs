//! Two `agent serve` nodes sharing one PostgreSQL store (a schema of this test's own on
//! `AGENT_POSTGRES_URL`): a webhook the platform delivers again, to the other node, accepts
//! the call once; and a client that spreads its requests over both nodes gets one rate limit,
//! not two. Without `AGENT_POSTGRES_URL` the tests print one line and pass.

mod common;
mod sip;

use agent_testkit::{
    ModelStep, Scenario, Turn,
    platform::{IncomingCall, WebhookSigning},
    postgres::TestSchema,
};
use sip::{CALLER, SipHarness, SipOptions, USER, WEBHOOK_PATH, eventually};

fn scenario() -> Scenario {
    Scenario::new("shared")
        .turn(Turn::model_first().model(ModelStep::say("Hello.")))
        .turn(Turn::user("Still there?").model(ModelStep::say("Yes.")))
}

/// A SIP call from the test's caller to its agent.
fn sip_call(call_id: &str) -> IncomingCall {
    IncomingCall::new(
        call_id,
        &format!("sip:{CALLER}@carrier.example"),
        &format!("sip:{USER}@sip.api.openai.com"),
    )
}

fn shared(schema: &TestSchema, limits: &'static str) -> SipOptions {
    SipOptions {
        history: Some(schema.url().to_owned()),
        limits,
        ..SipOptions::default()
    }
}

#[tokio::test]
async fn a_webhook_delivered_again_to_another_node_accepts_the_call_once() {
    let Some(schema) = TestSchema::create("shared_store_webhook") else {
        return;
    };
    let options = shared(&schema, "");
    let a = SipHarness::start(scenario(), options).await;
    let b = a.second_node(&shared(&schema, "")).await;
    let call = sip_call("rtc_shared1");
    let first = a
        .platform
        .incoming_call(
            a.addr,
            WEBHOOK_PATH,
            &call,
            "wh_shared",
            WebhookSigning::Valid,
        )
        .await
        .unwrap();
    assert_eq!((first.status, first.body.as_str()), (200, "ok\n"));
    // The platform retries (it saw a timeout, say), and the load balancer picks node B.
    let again = a
        .platform
        .incoming_call(
            b.addr,
            WEBHOOK_PATH,
            &call,
            "wh_shared",
            WebhookSigning::Valid,
        )
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.body.as_str()),
        (200, "already processed\n")
    );
    eventually("the call was accepted", || async {
        a.actions("rtc_shared1")
            .iter()
            .any(|(action, _)| action == "accept")
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let accepts = a
        .actions("rtc_shared1")
        .into_iter()
        .filter(|(action, _)| action == "accept")
        .count();
    assert_eq!(accepts, 1, "{:?}", a.actions("rtc_shared1"));
    assert_eq!(b.state.capacity.in_use(), 0, "node B took no call");
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_client_spreading_requests_over_the_nodes_gets_one_rate_limit() {
    let Some(schema) = TestSchema::create("shared_store_rate") else {
        return;
    };
    // Three at once per client, then one every ten seconds: on each node, and shared.
    let limits = "webhook_requests_per_minute = 6\nwebhook_burst = 3";
    let a = SipHarness::start(scenario(), shared(&schema, limits)).await;
    let b = a.second_node(&shared(&schema, limits)).await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let node = if n % 2 == 0 { a.addr } else { b.addr };
        // Unsigned: the limit is checked before the signature, so these cost nothing else.
        let answer = agent_testkit::twilio::http::request(
            node,
            "POST",
            WEBHOOK_PATH,
            &[("content-type", "application/json")],
            b"{}",
            std::time::Duration::from_secs(5),
        )
        .await
        .unwrap();
        statuses.push(answer.status);
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    // Each node alone would let three through (six in all); together they let three.
    assert_eq!(limited, 3, "{statuses:?}");
    assert!(
        statuses[..3].iter().all(|s| *s != 429),
        "the burst goes through: {statuses:?}"
    );
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_node_whose_call_was_taken_over_lets_go_of_it_without_hanging_up() {
    let Some(schema) = TestSchema::create("shared_store_taken") else {
        return;
    };
    let options = SipOptions {
        history_extra: "lease_secs = 1",
        ..shared(&schema, "")
    };
    let a = SipHarness::start(scenario(), options).await;
    let call = sip_call("rtc_taken");
    let answer = a
        .platform
        .incoming_call(
            a.addr,
            WEBHOOK_PATH,
            &call,
            "wh_taken",
            WebhookSigning::Valid,
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    eventually("the call is up on node A", || async {
        a.state.capacity.in_use() == 1 && a.platform.calls().attached("rtc_taken")
    })
    .await;
    // Node A stalled (as far as the store can tell: its lease ran out) and another node took
    // the call over.
    schema.execute("UPDATE leases SET expires_at = 0").unwrap();
    let url = schema.url().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut store = agent_core::history::HistoryStore::open(&url).unwrap();
        let (id, _) = store
            .phone_calls()
            .unwrap()
            .into_iter()
            .find(|(_, call)| call.call_id == "rtc_taken")
            .unwrap();
        store
            .acquire_lease(&id, "node thief", std::time::Duration::from_secs(60))
            .unwrap();
    })
    .await
    .unwrap();
    // Node A notices at its next renewal and lets go: no hang-up, no outcome of its own.
    eventually("node A let go of the call", || async {
        a.state.capacity.in_use() == 0
    })
    .await;
    assert!(
        !a.actions("rtc_taken")
            .iter()
            .any(|(action, _)| action == "hangup"),
        "the call is the other node's now: {:?}",
        a.actions("rtc_taken")
    );
    assert_eq!(
        a.platform.calls().state("rtc_taken"),
        Some(agent_testkit::platform::CallState::Accepted)
    );
    assert!(a.metrics().await.contains("outcome=\"taken_over\"} 1"));
    let record = tokio::task::spawn_blocking({
        let url = schema.url().to_owned();
        move || {
            agent_core::history::HistoryStore::open(&url)
                .unwrap()
                .phone_calls()
                .unwrap()
                .into_values()
                .find(|call| call.call_id == "rtc_taken")
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        record.ended_at, None,
        "the thief records the end, not node A"
    );
    a.stop().await;
}
