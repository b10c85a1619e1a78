//! Calls that survive the loss of a node: two `agent serve` processes share one PostgreSQL
//! history (a schema of this test's own on `AGENT_POSTGRES_URL`) and answer SIP calls from the
//! fake OpenAI platform. Node A answers four calls and is killed with SIGKILL in the middle of
//! them — one call with its tool's request still in flight. Node B takes every call over by
//! attaching to the same `call_id`, and all of them complete, with every tool call run exactly
//! once (counted by the tool's own HTTP endpoint, by idempotency key) and no gap in any
//! conversation. Both platform behaviours are covered: the call survives its sideband (and is
//! taken over), or ends with it (and is recorded as failed, never left running).
//!
//! Without `AGENT_POSTGRES_URL` the test prints one line and passes; `.ci/run` sets it (and
//! `AGENT_POSTGRES_REQUIRED=1`).
//!
//! This binary also holds the Twilio resume tests (e2e/twilio_resume.rs); what both use (the
//! shop, its tool's endpoint, the nodes, the stored calls) is in common/nodes.rs.

mod common;
#[path = "common/nodes.rs"]
mod nodes;
// Twilio's resume, in this binary too: one link instead of two.
#[path = "e2e/twilio_resume.rs"]
mod twilio_resume;

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, atomic::Ordering},
    time::{Duration, Instant},
};

use agent_core::protocol::{Item, Role};
use agent_testkit::{
    platform::{CallControl, CallState, FakePlatform, IncomingCall, SidebandDrop, WebhookSigning},
    postgres::TestSchema,
    server::{ScriptScope, ServerConfig},
};
use nodes::{GOODBYE, GREETING, LEASE_SECS, Node, ORDERED, Orders, said, stored_calls};

const WEBHOOK_SECRET: &str = "whsec_dGFrZW92ZXItdGVzdC13ZWJob29rLXNlY3JldC0wMQ==";
/// How long any one wait of the test may take.
const WAIT: Duration = Duration::from_secs(30);

/// `agent serve` named `node` with the shared database, answering the platform's SIP calls to
/// `shop`.
fn start_node(dir: &Path, node: &str, db: &str, platform: &FakePlatform) -> Node {
    let config = format!(
        "listen = \"127.0.0.1:0\"\nnode = \"{node}\"\npublic_base_url = \"https://voice.example.invalid\"\n\
         max_calls = 10\n\n[history]\nlease_secs = {LEASE_SECS}\n\n\
         [[route]]\nagent = \"shop.toml\"\nsip_users = [\"shop\"]\n"
    );
    let (url, api_base) = (platform.realtime_url(), platform.api_base());
    Node::start(
        dir,
        node,
        &config,
        &["--url", &url, "--api-base", &api_base],
        db,
        &[
            ("OPENAI_API_KEY", "sk-takeover-test"),
            ("OPENAI_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ],
        WAIT,
    )
}

/// What a timed-out wait shows: the database and the folder of the nodes' logs.
static DIAGNOSE: Mutex<Option<(String, PathBuf)>> = Mutex::new(None);

fn wait_until(what: &str, done: impl FnMut() -> bool) {
    nodes::wait_until(what, WAIT, done, || {
        if let Some((db, dir)) = DIAGNOSE.lock().unwrap().clone() {
            for (id, call) in stored_calls(&db) {
                eprintln!("{id} ({:?}): {:?}", call.record.outcome, call.items);
            }
            nodes::print_logs(&dir);
        }
    });
}

fn setup(
    label: &str,
    on_drop: SidebandDrop,
) -> Option<(
    TestSchema,
    tokio::runtime::Runtime,
    FakePlatform,
    Orders,
    tempfile::TempDir,
)> {
    let schema = TestSchema::create(label)?;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let platform = runtime
        .block_on(async {
            FakePlatform::start(
                // Each call plays the scenario on its own; a re-attached sideband goes on
                // where the call was.
                ServerConfig::new(nodes::scenario(None)).script_scope(ScriptScope::PerConnection),
                on_drop,
                WEBHOOK_SECRET,
                None,
            )
        })
        .unwrap();
    let orders = Orders::start(WAIT);
    let dir = tempfile::tempdir().unwrap();
    nodes::write_shop_agent(dir.path(), orders.addr);
    Some((schema, runtime, platform, orders, dir))
}

fn place_call(
    runtime: &tokio::runtime::Runtime,
    platform: &FakePlatform,
    node: &Node,
    call_id: &str,
) {
    let call = IncomingCall::new(call_id, "+15550111", "shop");
    let answer = runtime
        .block_on(platform.incoming_call(
            node.addr,
            "/openai/webhook",
            &call,
            &format!("wh_{call_id}"),
            WebhookSigning::Valid,
        ))
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn calls_of_a_killed_node_are_taken_over_and_no_tool_runs_twice() {
    let Some((schema, runtime, platform, orders, dir)) =
        setup("takeover_survives", SidebandDrop::CallSurvives)
    else {
        return;
    };
    let db = schema.url().to_owned();
    *DIAGNOSE.lock().unwrap() = Some((db.clone(), dir.path().to_owned()));
    let mut a = start_node(dir.path(), "a", &db, &platform);
    let b = start_node(dir.path(), "b", &db, &platform);
    let calls: Vec<String> = (0..4).map(|n| format!("rtc_take{n}")).collect();
    for call_id in &calls {
        place_call(&runtime, &platform, &a, call_id);
    }
    // Every call is greeted by node A, and stored.
    wait_until("node A greeted every caller", || {
        let stored = stored_calls(&db);
        calls
            .iter()
            .all(|id| stored.get(id).is_some_and(|c| said(&c.items) == [GREETING]))
    });
    // Calls 0 and 1 order on node A; their tool runs there.
    for call_id in &calls[..2] {
        assert!(platform.control(call_id, CallControl::CallerSpeaks));
    }
    wait_until("calls 0 and 1 ordered on node A", || {
        let stored = stored_calls(&db);
        calls[..2]
            .iter()
            .all(|id| said(&stored[id].items).contains(&ORDERED.to_owned()))
    });
    // Call 2 orders, and node A dies while the tool's request is in flight.
    orders.hold.store(true, Ordering::SeqCst);
    assert!(platform.control(&calls[2], CallControl::CallerSpeaks));
    wait_until("call 2's tool request reached the endpoint", || {
        orders.keys().len() == 3
    });
    a.kill();
    let killed = Instant::now();
    orders.hold.store(false, Ordering::SeqCst);

    // Node B attaches a second sideband to every call.
    let mut takeover = Vec::new();
    for call_id in &calls {
        wait_until("node B re-attached the call", || {
            platform.calls().sidebands(call_id) >= 2 && platform.calls().attached(call_id)
        });
        takeover.push(killed.elapsed());
    }
    eprintln!("takeover after the kill (lease {LEASE_SECS} s): {takeover:?}");

    // Call 2's interrupted call was answered without running again; call 3 orders on B.
    wait_until("call 2 went on after its interrupted order", || {
        said(&stored_calls(&db)[&calls[2]].items).contains(&ORDERED.to_owned())
    });
    assert!(platform.control(&calls[3], CallControl::CallerSpeaks));
    wait_until("call 3 ordered on node B", || {
        said(&stored_calls(&db)[&calls[3]].items).contains(&ORDERED.to_owned())
    });
    // Everyone says goodbye and hangs up.
    for call_id in &calls {
        assert!(platform.control(call_id, CallControl::CallerSpeaks));
    }
    wait_until("every call said goodbye", || {
        let stored = stored_calls(&db);
        calls
            .iter()
            .all(|id| said(&stored[id].items).last().map(String::as_str) == Some(GOODBYE))
    });
    for call_id in &calls {
        assert!(platform.calls().caller_hangs_up(call_id));
    }
    wait_until("node B recorded every call's end", || {
        stored_calls(&db)
            .values()
            .all(|c| c.record.outcome.as_deref() == Some("caller_hung_up"))
    });

    // Every call completed, with no gap: each heard the greeting, its order and goodbye, once.
    let stored = stored_calls(&db);
    assert_eq!(stored.len(), calls.len());
    for call_id in &calls {
        assert_eq!(
            said(&stored[call_id].items),
            [GREETING, ORDERED, GOODBYE],
            "{call_id}"
        );
        let outputs = stored[call_id]
            .items
            .iter()
            .filter(|item| matches!(item, Item::FunctionCallOutput(_)))
            .count();
        assert_eq!(outputs, 1, "{call_id}: one order, one output");
        // The node that took over told the model, once, to make again calls it lost.
        let notes = stored[call_id]
            .items
            .iter()
            .filter_map(Item::as_message)
            .filter(|m| m.role == Role::System)
            .count();
        assert_eq!(notes, 1, "{call_id}: one takeover note");
    }
    // Zero duplicate tool runs: one request per call, each with its own key.
    let keys = orders.keys();
    assert_eq!(keys.len(), calls.len(), "{keys:?}");
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "a tool ran twice: {keys:?}");
    for call_id in &calls {
        assert_eq!(platform.calls().state(call_id), Some(CallState::Ended));
    }
    drop(b);
    runtime.block_on(platform.shutdown());
}

#[test]
fn a_call_that_ends_with_its_sideband_is_recorded_as_ended_not_left_running() {
    let Some((schema, runtime, platform, _orders, dir)) =
        setup("takeover_call_ends", SidebandDrop::CallEnds)
    else {
        return;
    };
    let db = schema.url().to_owned();
    let mut a = start_node(dir.path(), "a", &db, &platform);
    let _b = start_node(dir.path(), "b", &db, &platform);
    place_call(&runtime, &platform, &a, "rtc_ends");
    wait_until("node A greeted the caller", || {
        stored_calls(&db)
            .get("rtc_ends")
            .is_some_and(|c| said(&c.items) == [GREETING])
    });
    a.kill();
    // The platform ended the call with its sideband: node B's attach is refused, and the call
    // is recorded as ended instead of staying "running" forever.
    wait_until("the lost call was recorded as ended", || {
        stored_calls(&db)["rtc_ends"].record.ended_at.is_some()
    });
    let stored = stored_calls(&db);
    assert_eq!(stored["rtc_ends"].record.outcome.as_deref(), Some("failed"));
    assert_eq!(platform.calls().state("rtc_ends"), Some(CallState::Ended));
    runtime.block_on(platform.shutdown());
}
