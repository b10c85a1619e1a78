//! Fault knobs of the scripted server: drops, resets, close codes, injected errors, noise,
//! malformed frames, authentication failures, and a script that survives a reconnect.

mod common;

use agent_testkit::{
    AuthCheck, ConnectionFaults, ErrorSpec, Faults, Scenario, ScriptedServer, ServerConfig,
};
use common::{Client, Read, two_call_scenario, types};
use serde_json::{Value, json};

fn start(scenario: Scenario, faults: Faults) -> agent_testkit::ServerHandle {
    ScriptedServer::start(ServerConfig::new(scenario).faults(faults)).unwrap()
}

#[tokio::test]
async fn drop_after_n_closes_without_a_close_frame() {
    let server = start(
        two_call_scenario(),
        Faults::none().on_connection(0, ConnectionFaults::new().drop_after(4)),
    );
    let mut c = Client::connect(&server.url()).await;
    c.text_session().await; // frames 1 and 2
    c.user_says("Where are my orders A1001 and A1002?").await; // frames 3 and 4
    match c.read().await {
        Read::Error(e) => assert!(
            e.to_lowercase().contains("without closing handshake"),
            "{e}"
        ),
        other => panic!("expected an abrupt end, got {other:?}"),
    }
    assert_eq!(server.sent_counts().await, vec![4]);

    // The fault was only for connection 0.
    let mut c = Client::connect(&server.url()).await;
    c.text_session().await;
    c.user_says("Where are my orders A1001 and A1002?").await;
    c.send(json!({"type": "response.create"})).await;
    c.until("response.done").await;
    assert_eq!(server.connections(), 2);
}

#[tokio::test]
async fn drop_at_zero_is_before_session_created() {
    let server = start(
        Scenario::default(),
        Faults::none().on_every_connection(ConnectionFaults::new().drop_after(0)),
    );
    let mut c = Client::connect(&server.url()).await;
    assert!(matches!(
        c.read().await,
        Read::Error(_) | Read::Closed(None)
    ));
}

#[tokio::test]
async fn reset_after_n_ends_the_connection() {
    let server = start(
        Scenario::default(),
        Faults::none().on_connection(0, ConnectionFaults::new().reset_after(1)),
    );
    let mut c = Client::connect(&server.url()).await;
    // The one frame may or may not survive the reset; either way the connection ends abruptly.
    loop {
        match c.read().await {
            Read::Text(t) => assert!(t.contains("session.created")),
            Read::Error(_) | Read::Closed(None) => break,
            Read::Closed(Some(frame)) => panic!("a reset sends no close frame: {frame:?}"),
        }
    }
}

#[tokio::test]
async fn close_with_a_policy_code() {
    let server = start(
        Scenario::default(),
        Faults::none().on_connection(
            0,
            ConnectionFaults::new().close_after(1, 1008, "policy violation"),
        ),
    );
    let mut c = Client::connect(&server.url()).await;
    assert_eq!(c.next_event().await["type"], "session.created");
    match c.read().await {
        Read::Closed(Some((code, reason))) => {
            assert_eq!(code, 1008);
            assert_eq!(reason, "policy violation");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn injected_errors_and_session_expiry() {
    let server = start(
        Scenario::default(),
        Faults::none().on_connection(
            0,
            ConnectionFaults::new()
                .error_after(1, ErrorSpec::server_error())
                .session_expired_after(3),
        ),
    );
    let mut c = Client::connect(&server.url()).await;
    assert_eq!(c.next_event().await["type"], "session.created");
    let err = c.next_event().await;
    assert_eq!(err["error"]["type"], "server_error");
    assert!(err["error"]["code"].is_null());
    c.send(json!({"type": "session.update", "session": {"type": "realtime"}}))
        .await;
    assert_eq!(c.next_event().await["type"], "session.updated");
    let expired = c.next_event().await;
    assert_eq!(expired["error"]["code"], "session_expired");
    match c.read().await {
        Read::Closed(Some((code, _))) => assert_eq!(code, 1000),
        other => panic!("expected a close after session_expired, got {other:?}"),
    }
}

#[tokio::test]
async fn noise_adds_unknown_fields_nulls_and_unknown_events() {
    let server = start(
        two_call_scenario(),
        Faults::none().on_every_connection(ConnectionFaults::new().noise(true)),
    );
    let mut c = Client::connect(&server.url()).await;
    let mut seen: Vec<Value> = Vec::new();
    seen.push(c.next_event().await);
    seen.push(c.next_event().await);
    c.send(json!({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Where are my orders A1001 and A1002?"}]
    }}))
    .await;
    c.send(json!({"type": "response.create"})).await;
    seen.extend(c.until("response.done").await);
    let known: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] != "testkit.unknown_event")
        .collect();
    let unknown = seen.len() - known.len();
    assert!(
        unknown * 2 >= seen.len() - 1,
        "an unknown event follows every event"
    );
    for e in &known {
        assert!(e["x_testkit_unknown"].is_object(), "{e}");
        assert!(e.get("x_testkit_null").is_some_and(Value::is_null), "{e}");
    }
    let item = known
        .iter()
        .find(|e| e["type"] == "response.output_item.done")
        .unwrap();
    assert!(item["item"].get("x_testkit_unknown").is_some());
    // Still a valid conversation underneath.
    assert!(types(&seen).contains(&"response.function_call_arguments.done".to_string()));
}

#[tokio::test]
async fn malformed_frames_are_sent_at_the_given_position() {
    let server = start(
        Scenario::default(),
        Faults::none().on_connection(0, ConnectionFaults::new().malformed_after(1)),
    );
    let mut c = Client::connect(&server.url()).await;
    assert_eq!(c.next_event().await["type"], "session.created");
    match c.read().await {
        Read::Text(t) => assert!(serde_json::from_str::<Value>(&t).is_err(), "{t}"),
        other => panic!("expected a malformed text frame, got {other:?}"),
    }
    c.send(json!({"type": "session.update", "session": {"type": "realtime"}}))
        .await;
    assert_eq!(c.next_event().await["type"], "session.updated");
    let log = server.log().await;
    assert!(log[1].value.is_none());
}

#[tokio::test]
async fn missing_or_wrong_key_is_a_fatal_invalid_api_key() {
    let server = ScriptedServer::start(
        ServerConfig::new(Scenario::default()).auth(AuthCheck::Bearer("sk-right".into())),
    )
    .unwrap();
    for headers in [vec![], vec![("authorization", "Bearer sk-wrong")]] {
        let mut c = Client::connect_with(&server.url(), &headers).await;
        let err = c.next_event().await;
        assert_eq!(err["error"]["code"], "invalid_api_key");
        match c.read().await {
            Read::Closed(Some((code, _))) => assert_eq!(code, 3000),
            other => panic!("expected close 3000, got {other:?}"),
        }
    }
    let mut c = Client::connect_with(&server.url(), &[("authorization", "Bearer sk-right")]).await;
    assert_eq!(c.next_event().await["type"], "session.created");
    let requests = server.requests().await;
    assert!(!requests[0].has_authorization);
    assert!(requests[1].has_authorization);
    let all = format!("{requests:?}{:?}", server.log().await);
    assert!(!all.contains("sk-wrong") && !all.contains("sk-right"));
}

/// A drop mid-response; the client reconnects, replays its history and asks again: the step
/// is played again with the same ids, and the conversation completes without violations.
#[tokio::test]
async fn the_script_survives_a_reconnect() {
    let server = start(
        two_call_scenario(),
        Faults::none().on_connection(0, ConnectionFaults::new().drop_after(8)),
    );
    let mut c = Client::connect(&server.url()).await;
    c.text_session().await;
    let user = c.user_says("Where are my orders A1001 and A1002?").await;
    let user_item = user[0]["item"].clone();
    c.send(json!({"type": "response.create"})).await;
    let mut first = Vec::new();
    while let Read::Text(t) = c.read().await {
        first.push(serde_json::from_str::<Value>(&t).unwrap());
    }
    assert_eq!(first.len(), 4, "{first:?}");

    let mut c = Client::connect(&server.url()).await;
    c.text_session().await;
    c.send(json!({"type": "conversation.item.create", "item": user_item}))
        .await;
    c.until("conversation.item.done").await;
    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    let output = &events.last().unwrap()["response"]["output"];
    assert_eq!(output[0]["id"], first[1]["item"]["id"]);
    assert_eq!(output[1]["call_id"], "call_0001");
    c.output("call_0001", "shipped").await;
    c.output("call_0002", "shipped").await;
    c.send(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    assert_eq!(
        events.last().unwrap()["response"]["output"][0]["id"],
        "item_t0s1o0"
    );
    assert!(
        server.violations().await.is_empty(),
        "{:?}",
        server.violations().await
    );
}

#[tokio::test]
async fn dropping_the_handle_stops_the_server() {
    let server = start(Scenario::default(), Faults::none());
    let url = server.url();
    let mut c = Client::connect(&url).await;
    c.next_event().await;
    drop(server);
    assert!(matches!(c.read().await, Read::Error(_) | Read::Closed(_)));
    let again =
        tokio::time::timeout(common::WAIT, tokio_tungstenite::connect_async(url.as_str())).await;
    assert!(
        matches!(again, Ok(Err(_))),
        "the port no longer accepts connections"
    );
}
