//! What the fake platform refuses on its WebRTC endpoints, and how a call that never connects
//! ends: each refusal is an OpenAI-style JSON error with the live status, recorded, and opens
//! no call.

use std::time::{Duration, Instant};

use agent_testkit::{
    ModelStep, Scenario, ServerConfig, Turn,
    platform::{CallState, FakePlatform, OfferForm, SidebandDrop},
    webrtc::{BrowserError, CallVia, HttpAnswer, TestBrowser, post_client_secret, post_offer},
};
use serde_json::{Value, json};
use str0m::{
    Candidate, Rtc,
    media::{Direction, MediaKind},
};

const KEY: &str = "sk-test-platform";
const WAIT: Duration = Duration::from_secs(5);

fn platform() -> FakePlatform {
    let scenario =
        Scenario::new("refusals").turn(Turn::user("Hi.").model(ModelStep::say("Hello.")));
    FakePlatform::start(
        ServerConfig::new(scenario),
        SidebandDrop::CallSurvives,
        "whsec_dGVzdC1zZWNyZXQ=",
        Some(KEY),
    )
    .unwrap()
}

/// A real offer (audio and `oai-events`) from a peer that will never answer ICE checks.
fn silent_offer() -> String {
    let mut rtc = Rtc::new(std::time::Instant::now());
    let candidate = Candidate::host("127.0.0.1:9".parse().unwrap(), "udp").unwrap();
    rtc.add_local_candidate(candidate);
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    api.add_channel("oai-events".into());
    let (offer, _pending) = api.apply().unwrap();
    offer.to_sdp_string()
}

/// The error object of a refusal, after checking the status.
fn error_of(answer: &HttpAnswer, status: u16) -> Value {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&answer.body).expect("a JSON error body");
    assert!(body["error"]["message"].is_string(), "{body}");
    body["error"].clone()
}

fn multipart(api_key: Option<&str>) -> CallVia {
    CallVia::Multipart {
        api_key: api_key.map(str::to_owned),
        session: json!({"type": "realtime"}),
    }
}

#[tokio::test]
async fn expired_and_unknown_client_secrets_are_refused_with_401() {
    let platform = platform();
    // Minted over HTTP, then expired by the platform's clock.
    let minted = post_client_secret(
        &platform.api_base(),
        Some(KEY),
        &json!({"expires_after": {"anchor": "created_at", "seconds": 10}}),
    )
    .await
    .unwrap();
    assert_eq!(minted.status, 200, "{}", minted.body);
    let minted: Value = serde_json::from_str(&minted.body).unwrap();
    let value = minted["value"].as_str().unwrap().to_owned();
    platform.advance_clock(11);
    let refused =
        TestBrowser::connect(&platform.api_base(), CallVia::ClientSecret(value), WAIT).await;
    match refused {
        Err(BrowserError::Refused { status, body }) => {
            assert_eq!(status, 401);
            assert!(body.contains("expired"), "{body}");
        }
        other => panic!("an expired secret opened a call: {other:?}"),
    }

    // Minted already expired, without the endpoint's limits.
    let past = platform
        .issue_client_secret(&json!({"type": "realtime"}), 0)
        .unwrap();
    let answer = post_offer(
        &platform.api_base(),
        &CallVia::ClientSecret(past.value),
        &silent_offer(),
    )
    .await
    .unwrap();
    error_of(&answer, 401);

    // Never minted, and the API key where a client secret belongs.
    for bearer in ["ek_never_minted", KEY] {
        let answer = post_offer(
            &platform.api_base(),
            &CallVia::ClientSecret(bearer.into()),
            &silent_offer(),
        )
        .await
        .unwrap();
        assert_eq!(error_of(&answer, 401)["code"], "invalid_api_key");
    }
    let requests = platform.call_create_requests();
    assert_eq!(requests.len(), 4);
    assert!(
        requests
            .iter()
            .all(|r| r.status == 401 && r.call_id.is_none())
    );
    assert!(
        requests
            .iter()
            .all(|r| r.form == Some(OfferForm::ClientSecret))
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn the_multipart_form_needs_the_api_key() {
    let platform = platform();
    for via in [multipart(None), multipart(Some("sk-wrong"))] {
        let answer = post_offer(&platform.api_base(), &via, &silent_offer())
            .await
            .unwrap();
        assert_eq!(error_of(&answer, 401)["code"], "invalid_api_key");
    }
    let requests = platform.call_create_requests();
    assert_eq!(requests.len(), 2);
    assert!(
        requests
            .iter()
            .all(|r| r.status == 401 && r.form == Some(OfferForm::Multipart))
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn client_secrets_need_the_api_key_and_a_valid_body() {
    let platform = platform();
    let base = platform.api_base();
    let body = json!({"session": {"type": "realtime"}});
    for key in [None, Some("sk-wrong")] {
        let answer = post_client_secret(&base, key, &body).await.unwrap();
        assert_eq!(error_of(&answer, 401)["code"], "invalid_api_key");
    }
    let too_long = json!({"expires_after": {"anchor": "created_at", "seconds": 7201}});
    let answer = post_client_secret(&base, Some(KEY), &too_long)
        .await
        .unwrap();
    assert_eq!(error_of(&answer, 400)["code"], "invalid_value");
    assert!(platform.client_secrets().is_empty(), "nothing was minted");
    let statuses: Vec<u16> = platform
        .client_secret_requests()
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [401, 401, 400]);
    platform.shutdown().await;
}

#[tokio::test]
async fn bad_sdp_is_refused_with_400_in_both_forms() {
    let platform = platform();
    let secret = platform
        .issue_client_secret(&json!({"type": "realtime"}), 600)
        .unwrap()
        .value;
    let no_channel = silent_offer()
        .lines()
        .filter(|l| !l.starts_with("m=application"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let no_fingerprint = silent_offer()
        .lines()
        .filter(|l| !l.starts_with("a=fingerprint"))
        .collect::<Vec<_>>()
        .join("\r\n");
    let bad_offers = [
        "this is not SDP".to_owned(),
        no_fingerprint,
        "v=0\r\ns=-\r\nt=0 0\r\n".to_owned(),
        no_channel,
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n\u{0}\u{1}".to_owned(),
    ];
    for offer in &bad_offers {
        for via in [CallVia::ClientSecret(secret.clone()), multipart(Some(KEY))] {
            let answer = post_offer(&platform.api_base(), &via, offer).await.unwrap();
            assert_eq!(error_of(&answer, 400)["code"], "invalid_sdp", "{offer:?}");
        }
    }
    let requests = platform.call_create_requests();
    assert_eq!(requests.len(), bad_offers.len() * 2);
    assert!(
        requests
            .iter()
            .all(|r| r.status == 400 && r.call_id.is_none())
    );
    assert!(requests[0].offer.is_some(), "the offer is recorded");
    platform.shutdown().await;
}

#[tokio::test]
async fn a_browser_that_never_connects_is_given_up_and_its_call_ends() {
    let platform = platform();
    platform.set_webrtc_connect_deadline(Duration::from_millis(300));
    let answer = post_offer(&platform.api_base(), &multipart(Some(KEY)), &silent_offer())
        .await
        .unwrap();
    assert_eq!(answer.status, 201, "{}", answer.body);
    assert!(
        answer.body.contains("a=candidate"),
        "the answer names the platform's port"
    );
    let call_id = answer
        .header("location")
        .and_then(|l| l.strip_prefix("/v1/realtime/calls/"))
        .unwrap()
        .to_owned();
    assert_eq!(platform.calls().state(&call_id), Some(CallState::Accepted));
    let started = Instant::now();
    let ended = platform
        .until(WAIT, |p| {
            p.calls().state(&call_id) == Some(CallState::Ended)
        })
        .await;
    assert!(
        ended,
        "the call still runs: {:?}",
        platform.calls().state(&call_id)
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    platform.shutdown().await;
}
