//! `agent call`: the one-command phone demo (`--offline`, over Twilio and over SIP) and
//! outbound calls (`--to`) through the fake Twilio's REST API into a real `agent serve`, run
//! as a user would run them. Everything stays on 127.0.0.1.

mod common;

use std::{process::Output, sync::Arc, time::Duration};

use agent_core::session::Secret;
use agent_server::{AppState, Secrets, ServeConfig, ServeOptions, Server};
use agent_testkit::{
    ModelStep, Scenario, Turn,
    server::{ScriptedServer, ServerConfig, ServerHandle},
    twilio::{ACCOUNT_SID, FakeTwilio, TwilioRest},
};
use common::{command, output_with_input, text};
use tokio::{net::TcpListener, sync::oneshot};

/// How long any one `agent call` may take: a scenario in real time, with room for a slow CI.
const LIMIT: Duration = Duration::from_secs(90);
/// The Twilio number serve.toml routes to the agent, and the number called.
const FROM: &str = "+15550100";
const TO: &str = "+15550123";
const AUTH_TOKEN: &str = "call-cli-test-token-4d2c9e";

/// `agent ARGS` with no Twilio credentials from the environment but `env`.
fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = command(args, dir.path());
    cmd.env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN");
    for (name, value) in env {
        cmd.env(name, value);
    }
    output_with_input(cmd, "", LIMIT)
}

fn assert_success(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    stdout
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "missing {needle:?} in:\n{haystack}"
        );
    }
}

#[test]
fn an_offline_twilio_call_prints_the_greeting_turns_tool_and_outcome() {
    let out = agent(&["call", "agents/support.toml", "--offline"], &[]);
    let stdout = assert_success(&out);
    assert_contains(
        &stdout,
        &[
            "over Twilio Media Streams, offline: scenario `order status`",
            // The [phone] greeting of agents/support.toml, said first.
            "agent:  Thanks for calling Acme support. How can I help you today?",
            "caller: Hi! Where is my order A1001?",
            "tool:   lookup_order({\"order_id\":\"A1001\"}) → ",
            "\"status\":\"shipped\"",
            "agent:  Your order A1001, the mechanical keyboard, has shipped",
            "call over: caller hung up",
            "1 tool call(s) · cost $",
        ],
    );
    let greeting = stdout.find("Thanks for calling").unwrap();
    let question = stdout.find("caller: Hi!").unwrap();
    let tool = stdout.find("tool:").unwrap();
    assert!(greeting < question && question < tool, "{stdout}");
}

#[test]
fn an_offline_sip_call_runs_both_tools_of_the_scenario() {
    let out = agent(
        &[
            "call",
            "agents/support.toml",
            "--offline",
            "--transport",
            "sip",
            "--scenario",
            "order and return policy",
        ],
        &[],
    );
    let stdout = assert_success(&out);
    assert_contains(
        &stdout,
        &[
            "over OpenAI SIP, offline: scenario `order and return policy`",
            "agent:  Thanks for calling Acme support.",
            "caller: Has order A1002 shipped yet? And what is your return policy?",
            "tool:   lookup_order({\"order_id\":\"A1002\"})",
            "tool:   search_help_center({\"query\":\"return policy\"})",
            "call over: caller hung up",
            "2 tool call(s)",
        ],
    );
}

#[test]
fn an_agent_that_cannot_answer_calls_fails_at_once_with_a_clear_error() {
    let out = agent(&["call", "agents/transcriber.toml", "--offline"], &[]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_contains(&stderr, &["cannot take calls"]);
    let out = agent(
        &[
            "call",
            "agents/support.toml",
            "--offline",
            "--scenario",
            "nope",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert_contains(&text(&out.stderr), &["no scenario named `nope`"]);
}

/// Environment variables: name and value.
type Env = [(&'static str, &'static str)];

/// `agent call agents/support.toml --to TO --from FROM --serve-url SERVE_URL`, then `extra`.
fn outbound_args(to: &str, serve_url: &str, extra: &[&str]) -> Vec<String> {
    let args = [
        "call",
        "agents/support.toml",
        "--to",
        to,
        "--from",
        FROM,
        "--serve-url",
        serve_url,
    ];
    args.iter().chain(extra).map(|a| a.to_string()).collect()
}

#[test]
fn bad_outbound_arguments_are_refused_before_any_request() {
    let credentials = [
        ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
        ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
    ];
    let cases: [(&str, &[&str], &Env, &str); 3] = [
        ("555-0123", &[], &[], "--to 555-0123 is not an E.164 number"),
        (TO, &[], &[], "TWILIO_ACCOUNT_SID is not set"),
        // The token never goes to a remote server in clear.
        (
            TO,
            &["--twilio-api-base", "http://api.example.com"],
            &credentials,
            "only sent over https://",
        ),
    ];
    for (to, extra, env, expected) in cases {
        let args = outbound_args(to, "http://127.0.0.1:1", extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = agent(&args, env);
        assert!(!out.status.success(), "{args:?}");
        assert_contains(&text(&out.stderr), &[expected]);
    }
}

/// `agent serve` for agents/support.toml on `FROM`, in this process, with the fake Twilio's
/// REST API and the scripted model.
struct Served {
    rest: TwilioRest,
    state: Arc<AppState>,
    url: String,
    scripted: ServerHandle,
    stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn serve() -> Served {
    let scenario = Scenario::new("outbound")
        .turn(Turn::model_first().model(ModelStep::say("Hello, this is Acme support.")));
    let scripted = ScriptedServer::start(ServerConfig::new(scenario)).expect("scripted server");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let twilio = FakeTwilio::new(addr, &url, AUTH_TOKEN);
    let rest = twilio.start_rest().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, stop) = start_server(listener, dir.path(), scripted.url(), rest.api_base()).await;
    Served {
        rest,
        state,
        url,
        scripted,
        stop,
        _dir: dir,
    }
}

/// `agent serve` for agents/support.toml on `FROM`, on `listener`, its sessions connecting to
/// `realtime_url` and its Twilio REST calls going to `twilio_api_base`; its serve.toml in
/// `dir`. Returns its state and what stops it.
async fn start_server(
    listener: TcpListener,
    dir: &std::path::Path,
    realtime_url: String,
    twilio_api_base: String,
) -> (Arc<AppState>, oneshot::Sender<()>) {
    let addr = listener.local_addr().unwrap();
    let agent = common::workspace().join("agents/support.toml");
    let serve_toml = format!(
        "listen = \"{addr}\"\npublic_base_url = \"http://{addr}\"\n[twilio]\napi_base = \"{twilio_api_base}\"\n[history]\nstore = false\n[[route]]\nagent = {}\nnumbers = [\"{FROM}\"]\n",
        toml::Value::String(agent.display().to_string())
    );
    let path = dir.join("serve.toml");
    std::fs::write(&path, serve_toml).unwrap();
    let server = Server::with_listener(
        ServeConfig::load(&path).unwrap(),
        &agent_tools::registry().unwrap(),
        Secrets {
            twilio_auth_token: Some(Secret::new(AUTH_TOKEN)),
            ..Secrets::default()
        },
        ServeOptions {
            realtime_url: Some(realtime_url),
            drain_timeout: Some(Duration::from_secs(2)),
            ..ServeOptions::default()
        },
        listener,
    )
    .await
    .unwrap();
    let state = server.state();
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    (state, stop)
}

/// `agent call --to TO --from FROM --serve-url serve_url` against `rest`, with `token`.
async fn call_out(rest: &TwilioRest, serve_url: &str, token: &str) -> Output {
    let args = outbound_args(
        TO,
        serve_url,
        &["--twilio-api-base", &rest.api_base(), "--max-secs", "60"],
    );
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        agent(
            &args,
            &[
                ("TWILIO_ACCOUNT_SID", ACCOUNT_SID),
                ("TWILIO_AUTH_TOKEN", &token),
            ],
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outbound_call_is_created_through_twilio_rest_and_answered_by_the_server() {
    let served = serve().await;
    let out = call_out(&served.rest, &served.url, AUTH_TOKEN).await;
    let stdout = assert_success(&out);
    assert_contains(
        &stdout,
        &["calling +15550123 from +15550100", "status: completed"],
    );
    for output in [&stdout, &text(&out.stderr)] {
        assert!(!output.contains(AUTH_TOKEN), "the token leaked:\n{output}");
    }

    // The request was authenticated and well formed: the fake refused nothing and placed the
    // call to the server's voice webhook.
    assert_eq!(served.rest.refused(), 0);
    let placed = served.rest.placed();
    assert_eq!(placed.len(), 1, "{placed:?}");
    let call = &placed[0];
    assert_eq!((call.to.as_str(), call.from.as_str()), (TO, FROM));
    assert_eq!(
        call.url.as_deref(),
        Some(format!("{}/twilio/voice", served.url).as_str())
    );
    assert_eq!(call.status, "completed", "{call:?}");

    // The server routed the call it placed by the calling number: the callee heard the
    // agent's greeting, from a session configured for the phone.
    let record = call.record.as_ref().expect("the call's record");
    assert!(record.heard_ms() > 0, "{record:?}");
    let updates = served.scripted.received().await;
    let update = updates
        .iter()
        .filter_map(|e| e.value.as_ref())
        .find(|v| v["type"] == "session.update")
        .expect("a session");
    assert_eq!(
        update["session"]["audio"]["output"]["format"]["type"],
        "audio/pcmu"
    );
    assert_eq!(served.scripted.violations().await, Vec::<String>::new());
    let _ = served.stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_or_an_unreachable_server_fails_the_call_clearly() {
    let served = serve().await;
    let out = call_out(&served.rest, &served.url, "not-the-token-9f8e7d6c").await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_contains(
        &stderr,
        &[
            "creating the call: Twilio's REST API refused the request with HTTP 401: Authenticate",
            "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN",
        ],
    );
    assert!(!stderr.contains("not-the-token-9f8e7d6c"), "{stderr}");
    assert_eq!(served.rest.refused(), 1);
    assert!(served.rest.placed().is_empty());

    // Nothing listens at the serve URL: Twilio cannot fetch the webhook, the call fails, and
    // the command says so instead of waiting.
    let out = call_out(&served.rest, "http://127.0.0.1:1", AUTH_TOKEN).await;
    assert!(!out.status.success());
    assert_contains(&text(&out.stdout), &["status: failed"]);
    assert_contains(&text(&out.stderr), &["ended failed"]);
    assert_eq!(served.rest.placed()[0].status, "failed");
    assert_eq!(served.state.capacity.in_use(), 0);
    let _ = served.stop.send(());
}

#[test]
fn mock_phone_networks_need_the_shared_secret_from_the_environment() {
    let out = agent(
        &[
            "mock",
            "agents/support.toml",
            "--twilio",
            "--serve-url",
            "http://127.0.0.1:8080",
        ],
        &[],
    );
    assert!(!out.status.success());
    assert_contains(&text(&out.stderr), &["TWILIO_AUTH_TOKEN is not set"]);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = command(
        &[
            "mock",
            "agents/support.toml",
            "--platform",
            "--serve-url",
            "http://voice.example.com:8080",
        ],
        dir.path(),
    );
    cmd.env("OPENAI_WEBHOOK_SECRET", "whsec_dGVzdA==");
    let out = output_with_input(cmd, "", LIMIT);
    assert!(!out.status.success());
    assert_contains(&text(&out.stderr), &["an `agent serve` on this machine"]);
}

/// Lines of a child's pipe, read on a thread.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead as _;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line `until` accepts, within [`LIMIT`].
fn wait_line(lines: &std::sync::mpsc::Receiver<String>, until: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if until(&line) => return line,
            Ok(_) => {}
            Err(err) => panic!("no such line: {err}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_mock_twilio_calls_a_separately_started_server() {
    use std::{io::Write as _, process::Stdio};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut mock = command(
        &[
            "mock",
            "agents/support.toml",
            "--twilio",
            "--serve-url",
            &url,
        ],
        dir.path(),
    )
    .env("TWILIO_AUTH_TOKEN", AUTH_TOKEN)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("agent mock runs");
    let stdout = lines_of(mock.stdout.take().unwrap());
    let stderr = lines_of(mock.stderr.take().unwrap());
    let realtime = wait_line(&stdout, |l| l.starts_with("ws://"));
    let start = wait_line(&stderr, |l| l.contains("start the server:"));
    let rest_base = start
        .split_whitespace()
        .skip_while(|w| *w != "--twilio-api-base")
        .nth(1)
        .expect("the REST base")
        .to_owned();

    // The server, started separately, pointed at what the mock printed.
    let (state, stop) = start_server(listener, dir.path(), realtime, rest_base).await;

    // Enter places an incoming call, which plays the scenario through the server.
    mock.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let over = tokio::task::spawn_blocking(move || {
        let heard = wait_line(&stderr, |l| l.contains("heard") || l.contains("failed"));
        (
            heard,
            wait_line(&stderr, |l| l.contains("over") || l.contains("failed")),
        )
    })
    .await
    .unwrap();
    let _ = mock.kill();
    let _ = mock.wait();
    assert!(over.0.starts_with("the caller heard "), "{over:?}");
    assert!(!over.0.starts_with("the caller heard 0.0 s"), "{over:?}");
    assert!(over.1.starts_with("call over"), "{over:?}");
    // The server winds its side of the call down (within 10 s).
    for _ in 0..500 {
        if state.capacity.in_use() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        state
            .metrics
            .outcome_count(agent_server::metrics::Outcome::CallerHungUp),
        1
    );
    let _ = stop.send(());
}

/// agents/support.toml with a transfer target, and a scenario where the caller presses a key,
/// support hands the conversation to billing, and billing transfers the call (call control
/// stays through a handoff), in a folder of its own.
fn transferring_agent() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let agents = common::workspace().join("agents");
    let agent = std::fs::read_to_string(agents.join("support.toml")).unwrap();
    std::fs::write(
        dir.path().join("support.toml"),
        format!("{agent}\n[phone.transfer_targets]\nbilling = \"+15550199\"\n"),
    )
    .unwrap();
    for file in ["support.md", "billing.toml", "billing.md"] {
        std::fs::copy(agents.join(file), dir.path().join(file)).unwrap();
    }
    std::fs::write(
        dir.path().join("support.scenarios.toml"),
        r#"
[[scenario]]
name = "keys and transfer"

[[scenario.turn]]
user = "The caller pressed 2 on the keypad."

  [[scenario.turn.model]]
  calls = [{ name = "transfer_to_billing", arguments = {} }]

  [[scenario.turn.model]]
  say = "You pressed two: billing. Let me transfer you."
  calls = [{ name = "transfer_call", arguments = { target = "billing" } }]

  [[scenario.turn.model]]
  say = "Transferring you now."
"#,
    )
    .unwrap();
    dir
}

#[test]
fn keypad_digits_a_handoff_and_a_transfer_show_in_the_transcript_on_both_transports() {
    let dir = transferring_agent();
    let file = dir.path().join("support.toml").display().to_string();
    for (transport, how) in [
        (
            "twilio",
            "(the agent transferred the call to +15550199: Twilio <Dial>)",
        ),
        (
            "sip",
            "(the agent transferred the call to tel:+15550199: SIP REFER)",
        ),
    ] {
        let out = agent(&["call", &file, "--offline", "--transport", transport], &[]);
        let stdout = assert_success(&out);
        assert_contains(
            &stdout,
            &[
                "keypad: The caller pressed 2 on the keypad.",
                "handoff: support → billing",
                "tool:   transfer_call({\"target\":\"billing\"})",
                how,
                "call over: transferred",
            ],
        );
    }
}
