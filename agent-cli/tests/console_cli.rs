//! `agent console FILE --offline`: one command serves the web console and a fake platform; a
//! browser's call (the test kit's WebRTC browser, relayed by the server) runs the agent's
//! scenario with its tools on the server, and Ctrl-C stops it cleanly. Also: what the
//! command refuses.

#![cfg(unix)]

mod common;

use std::{net::SocketAddr, time::Duration};

use agent_testkit::{
    twilio::http,
    webrtc::{CallVia, TestBrowser},
};
use common::{Background, agent, text};

/// How long any one step may take.
const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_offline_console_serves_the_page_and_a_browsers_call_runs_the_tools_here() {
    let dir = tempfile::tempdir().unwrap();
    let console = Background::start(
        &[
            "console",
            "agents/support.toml",
            "--offline",
            "--listen",
            "127.0.0.1:0",
        ],
        "http://127.0.0.1:",
        dir.path(),
        LIMIT,
    );
    assert!(console.url.ends_with("/agents/support"), "{}", console.url);
    let base = console.url.trim_end_matches("/agents/support").to_owned();
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let get = |path: &'static str, origin: Option<&'static str>| async move {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        http::request(addr, "GET", path, &headers, b"", LIMIT)
            .await
            .unwrap()
    };

    // The pages: the list of agents (its data from /console/agents), and the agent's own.
    let index = get("/", None).await;
    assert_eq!(index.status, 200);
    let listed = get("/console/agents", None).await;
    assert_eq!(listed.status, 200);
    assert!(listed.body.contains("\"support\""), "{}", listed.body);
    let page = get("/agents/support", None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<html"), "{}", page.body);

    // The console's own origin may mint a client secret; another origin may not.
    let own = base.clone();
    let mint = |origin: String| async move {
        http::request(
            addr,
            "POST",
            "/agents/support/client-secret",
            &[("origin", origin.as_str())],
            b"",
            LIMIT,
        )
        .await
        .unwrap()
    };
    let minted = mint(own.clone()).await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    let secret: serde_json::Value = serde_json::from_str(&minted.body).unwrap();
    assert!(
        secret["value"].as_str().unwrap().starts_with("ek_"),
        "{secret}"
    );
    assert!(secret["expires_at"].as_u64().is_some(), "{secret}");
    let localhost = mint(format!("http://localhost:{}", addr.port())).await;
    assert_eq!(
        localhost.status, 200,
        "the same page as localhost: {}",
        localhost.body
    );
    let foreign = mint("https://evil.example".into()).await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);

    // A browser's call, relayed by the server: the caller speaks, the scripted model calls
    // `lookup_order`, which runs here, and answers with what it found.
    let via = CallVia::Relay {
        path: "/agents/support/calls".into(),
        headers: vec![("origin".into(), own)],
    };
    let mut browser = TestBrowser::connect(&base, via, LIMIT)
        .await
        .expect("the console relays the call");
    browser.speak(400).unwrap();
    browser.silence(600).unwrap();
    let answered = tokio::time::timeout(LIMIT, async {
        loop {
            match browser.next_event(LIMIT).await {
                Some(event) if event.to_string().contains("has shipped") => return true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(
        answered,
        "no answer from the tool's result on the call: {:?}",
        browser.history_types()
    );
    browser.close().await;

    let status = console.interrupt(LIMIT);
    assert!(
        status.success(),
        "Ctrl-C stops the console cleanly: {status:?}"
    );
}

#[test]
fn the_console_refuses_to_listen_beyond_this_machine() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(
        &[
            "console",
            "agents/support.toml",
            "--offline",
            "--listen",
            "0.0.0.0:0",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("serves this machine only"), "{stderr}");
}

#[test]
fn a_live_console_without_a_key_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent(
        &["console", "agents/support.toml", "--listen", "127.0.0.1:0"],
        dir.path(),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("OPENAI_API_KEY is not set") && stderr.contains("--offline"),
        "{stderr}"
    );
}
