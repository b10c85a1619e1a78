//! The web console over HTTP (its behaviour in a browser is `browser_console.rs`): which pages
//! and assets are served with which types, the agents' list behind the operator's token, and
//! nothing at all without `[browser]`.

#![allow(dead_code)] // the shared SIP harness has more than these tests use

mod common;
mod sip;

use std::time::Duration;

use agent_testkit::{
    Scenario,
    twilio::http::{self, HttpAnswer},
};
use serde_json::Value;
use sip::{API_KEY, SipHarness, SipOptions};

const OPERATOR_TOKEN: &str = "op-console-test-token-0123456789";

async fn get(h: &SipHarness, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    http::request(h.addr, "GET", path, headers, b"", Duration::from_secs(10))
        .await
        .unwrap()
}

fn options(section: &str, token: Option<&'static str>) -> SipOptions {
    SipOptions {
        route_extra: "browser = true",
        serve_extra: section.to_owned(),
        operator_token: token,
        ..SipOptions::default()
    }
}

#[tokio::test]
async fn the_pages_and_assets_are_served_with_their_types() {
    let h = SipHarness::start(
        Scenario::new("idle"),
        options("[browser]\ncalls = true\n", None),
    )
    .await;
    for (path, content_type, marker) in [
        ("/", "text/html; charset=utf-8", "/console/index.js"),
        (
            "/agents/phone",
            "text/html; charset=utf-8",
            "/console/app.js",
        ),
        ("/console/app.js", "text/javascript", "oai-events"),
        ("/console/index.js", "text/javascript", "/console/agents"),
        ("/console/common.js", "text/javascript", "sessionStorage"),
        ("/console/style.css", "text/css", ".transcript"),
    ] {
        let answer = get(&h, path, &[]).await;
        assert_eq!(answer.status, 200, "{path}: {answer:?}");
        assert_eq!(answer.header("content-type"), Some(content_type), "{path}");
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        assert!(answer.body.contains(marker), "{path}");
        assert!(!answer.body.contains(API_KEY), "{path}");
    }
    let page = get(&h, "/agents/phone", &[]).await;
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("default-src 'self'")),
        "{page:?}"
    );
    // An agent no route opens to browsers has no page.
    let unknown = get(&h, "/agents/nobody", &[]).await;
    assert_eq!(unknown.status, 404, "{unknown:?}");

    let list = get(&h, "/console/agents", &[]).await;
    assert_eq!(list.status, 200, "{list:?}");
    let list: Value = serde_json::from_str(&list.body).unwrap();
    assert_eq!(list["agents"][0]["name"], "phone", "{list}");
    assert_eq!(list["agents"][0]["calls"], true, "{list}");
    assert_eq!(list["agents"][0]["client_secrets"], false, "{list}");
    // Without client secrets the page never talks to the platform itself.
    assert!(list["agents"][0]["platform_calls_url"].is_null(), "{list}");
    assert!(
        page.header("content-security-policy")
            .is_some_and(|csp| csp.contains("connect-src 'self';")),
        "{page:?}"
    );

    // The console's own origin (public_base_url, http://localhost:PORT) is allowed without
    // being listed; another site's is not.
    let own = format!("http://localhost:{}", h.addr.port());
    let answer = get(&h, "/console/agents", &[("origin", &own)]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let evil = get(&h, "/console/agents", &[("origin", "https://evil.example")]).await;
    assert_eq!(evil.status, 403, "{evil:?}");
    h.stop().await;
}

#[tokio::test]
async fn the_agents_list_needs_the_operators_token_when_one_is_set() {
    let section = "[browser]\ncalls = true\noperator_token_env = \"AGENT_TEST_OPERATOR_TOKEN\"\n";
    let h = SipHarness::start(
        Scenario::new("idle"),
        options(section, Some(OPERATOR_TOKEN)),
    )
    .await;
    for auth in [None, Some("Bearer op-wrong")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let answer = get(&h, "/console/agents", &headers).await;
        assert_eq!(answer.status, 401, "{auth:?}: {answer:?}");
        assert!(!answer.body.contains("phone"), "{answer:?}");
    }
    let bearer = format!("Bearer {OPERATOR_TOKEN}");
    let answer = get(&h, "/console/agents", &[("authorization", &bearer)]).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("\"phone\""), "{answer:?}");
    // The page itself holds nothing, so it is served to anyone, and never with the token.
    let index = get(&h, "/", &[]).await;
    assert_eq!(index.status, 200);
    assert!(!index.body.contains(OPERATOR_TOKEN));
    h.stop().await;
}

#[tokio::test]
async fn without_browser_endpoints_there_is_no_console() {
    let h = SipHarness::start(Scenario::new("idle"), SipOptions::default()).await;
    for path in ["/", "/agents/phone", "/console/app.js", "/console/agents"] {
        let answer = get(&h, path, &[]).await;
        assert_eq!(answer.status, 404, "{path}: {answer:?}");
    }
    h.stop().await;
}
