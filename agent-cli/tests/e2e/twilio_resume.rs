//! Twilio calls that survive the loss of their node: two `agent serve` processes share one
//! PostgreSQL history (a schema of this test's own on `AGENT_POSTGRES_URL`) and set
//! `[twilio] resume_base_url` (here simply node B's address, standing for the load balancer).
//! The fake Twilio calls node A, whose TwiML names the resume URL as the `<Connect action>`;
//! node A is killed with SIGKILL after the caller's order, so the media stream drops; the fake
//! Twilio requests the action from node B, waits through its `<Pause>`/`<Redirect>` while A's
//! lease runs out, and opens the new stream B answers with. The caller's next turn is answered
//! on B, with no second greeting, the tool run once, and the stored conversation whole. A
//! second test covers the route's answers and refusals on one node.
//!
//! Without `AGENT_POSTGRES_URL` the tests print one line and pass; `.ci/run` sets it (and
//! `AGENT_POSTGRES_REQUIRED=1`).

use std::{
    net::{SocketAddr, TcpListener},
    path::Path,
    time::Duration,
};

use agent_core::history::{HistoryStore, PhoneCallRecord};
use agent_core::protocol::{Item, Role};
use agent_testkit::{
    postgres::TestSchema,
    server::{ScriptedServer, ServerConfig, ServerHandle},
    twilio::{ActionAnswer, CallSpec, CallerStep, FakeTwilio, Resume, Signing, http},
};

use crate::nodes::{
    self, GOODBYE, GREETING, LEASE_SECS, Node, ORDERED, Orders, said, stored_calls,
};

const AUTH_TOKEN: &str = "twilio-resume-test-auth-token";
const CALLER: &str = "+15550111";
const NUMBER: &str = "+15550100";
/// How long any one wait of the test may take.
const WAIT: Duration = Duration::from_secs(40);

/// A free port on loopback: the node's public URL must name its port before it starts.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `agent serve` named `node` on `addr`, with the shared database, resuming Twilio calls
/// through `resume_base`; `extra` is more sections (`[limits]`, `[admin]`).
fn start_node(
    dir: &Path,
    node: &str,
    addr: SocketAddr,
    resume_base: &str,
    db: &str,
    realtime: &str,
    extra: &str,
) -> Node {
    let config = format!(
        "listen = \"{addr}\"\nnode = \"{node}\"\npublic_base_url = \"http://{addr}\"\n\
         max_calls = 10\n\n[twilio]\nresume_base_url = \"{resume_base}\"\n\n\
         [history]\nlease_secs = {LEASE_SECS}\n\n{extra}\n\
         [[route]]\nagent = \"shop.toml\"\nnumbers = [\"{NUMBER}\"]\n"
    );
    let started = Node::start(
        dir,
        node,
        &config,
        &["--url", realtime],
        db,
        &[
            ("OPENAI_API_KEY", "sk-twilio-resume-test"),
            ("TWILIO_AUTH_TOKEN", AUTH_TOKEN),
        ],
        WAIT,
    );
    assert_eq!(started.addr, addr);
    started
}

fn wait_until(what: &str, dir: &Path, done: impl FnMut() -> bool) {
    nodes::wait_until(what, WAIT, done, || nodes::print_logs(dir));
}

struct Setup {
    schema: TestSchema,
    runtime: tokio::runtime::Runtime,
    scripted: ServerHandle,
    orders: Orders,
    dir: tempfile::TempDir,
}

fn setup(label: &str) -> Option<Setup> {
    let schema = TestSchema::create(label)?;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let scripted = runtime
        .block_on(async {
            ScriptedServer::start(ServerConfig::new(nodes::scenario(Some([600, 600, 400]))))
        })
        .unwrap();
    let orders = Orders::start(WAIT);
    let dir = tempfile::tempdir().unwrap();
    nodes::write_shop_agent(dir.path(), orders.addr);
    Some(Setup {
        schema,
        runtime,
        scripted,
        orders,
        dir,
    })
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

#[test]
fn a_twilio_call_of_a_killed_node_is_resumed_on_another_through_the_connect_action() {
    let Some(Setup {
        schema,
        runtime,
        scripted,
        orders,
        dir,
    }) = setup("twilio_resume")
    else {
        return;
    };
    let db = schema.url().to_owned();
    let (a_addr, b_addr) = (free_addr(), free_addr());
    let lb = format!("http://{b_addr}");
    let realtime = scripted.url();
    let mut a = start_node(dir.path(), "a", a_addr, &lb, &db, &realtime, "");
    let b_admin = free_addr();
    let b = start_node(
        dir.path(),
        "b",
        b_addr,
        &lb,
        &db,
        &realtime,
        &format!("[admin]\nlisten = \"{b_admin}\"\n"),
    );

    // On node A: the greeting, the order (its tool runs), then the caller listens on.
    let script = vec![
        CallerStep::WaitHeard {
            ms: 600,
            within: WAIT,
        },
        CallerStep::Speak(ms(400)),
        CallerStep::WaitAnswer {
            quiet: ms(600),
            within: WAIT,
        },
        CallerStep::Silence(Duration::from_secs(60)),
    ];
    // On node B: the caller's next turn, answered, then the hang-up.
    let mut resume = Resume::new(vec![
        CallerStep::Silence(ms(300)),
        CallerStep::Speak(ms(400)),
        CallerStep::WaitAnswer {
            quiet: ms(600),
            within: WAIT,
        },
        CallerStep::HangUp,
    ]);
    // Pauses play in real time: the server's attempt budget assumes they do, and A's short
    // lease runs out within the first one.
    resume.max_requests = 10;
    let mut spec = CallSpec::new("CAresume1", CALLER, NUMBER, script);
    spec.deadline = Duration::from_secs(90);
    let twilio = FakeTwilio::new(a.addr, &format!("http://{}", a.addr), AUTH_TOKEN);
    let call = runtime.spawn(async move { twilio.call_resuming(&spec, &resume).await });

    wait_until("node A answered the order", dir.path(), || {
        stored_calls(&db)
            .get("CAresume1")
            .is_some_and(|c| said(&c.items) == [GREETING, ORDERED])
    });
    // Let the answer's last item settle in the store, then kill A mid-call.
    std::thread::sleep(ms(300));
    a.kill();

    let record = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(90), call).await })
        .expect("the call ended in time")
        .unwrap()
        .expect("the fake Twilio followed the call");
    eprintln!(
        "action requests: {:?}",
        record
            .requests
            .iter()
            .map(|r| (r.url.as_str(), r.status))
            .collect::<Vec<_>>()
    );
    assert_eq!(record.streams.len(), 2, "{:?}", record.requests);
    assert!(record.streams[0].ended_by_server, "node A's stream dropped");
    assert!(
        !record.streams[1].ended_by_server,
        "{:?}",
        record.streams[1]
    );
    assert!(!record.hung_up_by_action);
    // The first request may have had to wait for A's lease; the last connected B's stream.
    let last = record.requests.last().unwrap();
    assert!(last.url.starts_with(&lb), "{last:?}");
    assert!(
        matches!(
            agent_testkit::twilio::parse_action_answer(&last.twiml),
            ActionAnswer::Connect {
                action: Some(_),
                ..
            }
        ),
        "{last:?}"
    );
    for request in &record.requests[..record.requests.len() - 1] {
        assert!(
            matches!(
                agent_testkit::twilio::parse_action_answer(&request.twiml),
                ActionAnswer::Redirect { .. }
            ),
            "{request:?}"
        );
    }
    // On B the caller heard the goodbye only: no second greeting.
    assert!(
        record.streams[1].heard_ms() >= 300,
        "{}",
        record.streams[1].heard_ms()
    );
    assert!(
        record.streams[1].heard_ms() < 600 + 400,
        "no second greeting"
    );

    wait_until("node B recorded the call's end", dir.path(), || {
        stored_calls(&db)["CAresume1"].record.outcome.as_deref() == Some("caller_hung_up")
    });
    let stored = stored_calls(&db);
    let call = &stored["CAresume1"];
    assert_eq!(
        said(&call.items),
        [GREETING, ORDERED, GOODBYE],
        "{:?}",
        call.items
    );
    let outputs = call
        .items
        .iter()
        .filter(|item| matches!(item, Item::FunctionCallOutput(_)))
        .count();
    assert_eq!(outputs, 1, "one order, one output");
    let spoke = call
        .items
        .iter()
        .filter_map(Item::as_message)
        .filter(|m| m.role == Role::User)
        .count();
    assert_eq!(
        spoke, 2,
        "each of the caller's turns once: {:?}",
        call.items
    );
    assert_eq!(
        orders.keys().len(),
        1,
        "the tool ran once: {:?}",
        orders.keys()
    );
    drop(b);
    runtime.block_on(scripted.shutdown());
}

#[test]
fn the_resume_route_hangs_up_on_ended_and_unknown_calls_and_refuses_bad_requests() {
    let Some(Setup {
        schema,
        runtime,
        scripted,
        orders: _orders,
        dir,
    }) = setup("twilio_resume_refusals")
    else {
        return;
    };
    let db = schema.url().to_owned();
    let addr = free_addr();
    let base = format!("http://{addr}");
    let _node = start_node(
        dir.path(),
        "a",
        addr,
        &base,
        &db,
        &scripted.url(),
        "[limits]\nmax_body_bytes = 4096\nwebhook_burst = 12\nwebhook_requests_per_minute = 1\n",
    );
    let twilio = FakeTwilio::new(addr, &base, AUTH_TOKEN);
    let action = format!("{base}/twilio/resume?attempt=1");

    // A call that ends normally: the TwiML names the action, which then answers Hangup.
    let spec = CallSpec::new(
        "CAended1",
        CALLER,
        NUMBER,
        vec![
            CallerStep::WaitHeard {
                ms: 600,
                within: WAIT,
            },
            CallerStep::HangUp,
        ],
    );
    let record = runtime
        .block_on(twilio.call_resuming(&spec, &Resume::new(Vec::new())))
        .unwrap();
    assert_eq!(record.streams.len(), 1);
    assert!(record.requests.is_empty(), "the caller hung up: no action");
    wait_until("the call's end was recorded", dir.path(), || {
        stored_calls(&db)
            .get("CAended1")
            .is_some_and(|c| c.record.ended_at.is_some())
    });
    let ended = runtime
        .block_on(twilio.action(&action, &spec, Signing::Valid))
        .unwrap();
    assert_eq!(ended.answer.status, 200, "{ended:?}");
    assert!(ended.answer.body.contains("<Hangup/>"), "{ended:?}");

    // An unknown CallSid: Hangup.
    let unknown = CallSpec::new("CAunknown9", CALLER, NUMBER, Vec::new());
    let answer = runtime
        .block_on(twilio.action(&action, &unknown, Signing::Valid))
        .unwrap();
    assert!(answer.answer.body.contains("<Hangup/>"), "{answer:?}");

    // A wrong or missing signature: 403.
    for signing in [Signing::WrongToken, Signing::Missing] {
        let answer = runtime
            .block_on(twilio.action(&action, &spec, signing))
            .unwrap();
        assert_eq!(answer.answer.status, 403, "{signing:?}: {answer:?}");
        assert!(!answer.answer.body.contains("Hangup"));
    }

    // A body over the limit: 413.
    let body = format!("CallSid=CAended1&Padding={}", "x".repeat(8192));
    let answer = runtime
        .block_on(http::request(
            addr,
            "POST",
            "/twilio/resume?attempt=1",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-twilio-signature", "AAAA"),
            ],
            body.as_bytes(),
            Duration::from_secs(10),
        ))
        .unwrap();
    assert_eq!(answer.status, 413, "{answer:?}");

    // The voice webhook's TwiML names the resume route as its action.
    let params = [
        ("AccountSid", agent_testkit::twilio::ACCOUNT_SID),
        ("CallSid", "CAvoice1"),
        ("From", CALLER),
        ("To", NUMBER),
    ];
    let voice = runtime
        .block_on(twilio.voice("/twilio/voice", &params, Signing::Valid))
        .unwrap();
    assert_eq!(
        agent_testkit::twilio::connect_action(&voice.answer.body).as_deref(),
        Some(action.as_str()),
        "{voice:?}"
    );

    // A running call whose lease another node holds: the caller waits (Pause, Redirect to the
    // next attempt); past the attempt budget (3 with a 1.5 s lease) it is recorded lost.
    {
        let mut store = HistoryStore::open(&db).unwrap();
        let id = store.create_conversation("shop", "m").unwrap();
        let held = PhoneCallRecord::starting("twilio", "CAheld1", CALLER, NUMBER);
        store.record_phone_call(&id, &held).unwrap();
        store
            .acquire_lease(&id, "node elsewhere", Duration::from_secs(120))
            .unwrap();
    }
    let held = CallSpec::new("CAheld1", CALLER, NUMBER, Vec::new());
    let answer = runtime
        .block_on(twilio.action(&action, &held, Signing::Valid))
        .unwrap();
    assert_eq!(
        agent_testkit::twilio::parse_action_answer(&answer.answer.body),
        ActionAnswer::Redirect {
            pause_secs: 2,
            url: format!("{base}/twilio/resume?attempt=2")
        },
        "{answer:?}"
    );
    assert_eq!(stored_calls(&db)["CAheld1"].record.outcome, None);
    let last = format!("{base}/twilio/resume?attempt=3");
    let answer = runtime
        .block_on(twilio.action(&last, &held, Signing::Valid))
        .unwrap();
    assert!(answer.answer.body.contains("<Hangup/>"), "{answer:?}");
    assert_eq!(
        stored_calls(&db)["CAheld1"].record.outcome.as_deref(),
        Some("node_lost")
    );

    // Past the rate limit: 429, before anything is looked up.
    let mut limited = false;
    for _ in 0..20 {
        let answer = runtime
            .block_on(twilio.action(&action, &unknown, Signing::Valid))
            .unwrap();
        if answer.answer.status == 429 {
            limited = true;
            break;
        }
        assert!(answer.answer.body.contains("<Hangup/>"), "{answer:?}");
    }
    assert!(limited, "the resume route is rate limited");
    runtime.block_on(scripted.shutdown());
}
