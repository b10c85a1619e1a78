//! OpenTelemetry: `agent` exports the session spans (call → turn → response → tool call) over
//! OTLP/HTTP to an in-test collector on 127.0.0.1, which decodes them. The attributes are
//! checked against what the scripted server said on the wire (the `--trace` file): the session
//! id of `session.created`, each `response.done`'s usage and the cost the project computed
//! from it. Every run has a deadline, and an unreachable collector must not delay the exit.

mod common;
mod otlp;

use std::{
    collections::HashMap,
    fs::File,
    path::Path,
    process::{Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use common::command;
use otlp::{Collector, SpanRecord};
use serde_json::Value;

/// How long one run may take: a scenario in real time, with room for a slow CI.
const LIMIT: Duration = Duration::from_secs(90);
/// How long the spans may take to arrive once the run ended (they are sent before it exits).
const ARRIVAL: Duration = Duration::from_secs(5);
/// A header value the collector must receive and no log line may show.
const COLLECTOR_KEY: &str = "otel-test-collector-key-5f1e8a";

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// `agent ARGS` with `env`, its output in files (a verbose log can outgrow a pipe), within
/// [`LIMIT`].
fn run(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Run {
    run_within(LIMIT, args, env, dir)
}

/// [`run`], within `limit`.
fn run_within(limit: Duration, args: &[&str], env: &[(&str, &str)], dir: &Path) -> Run {
    let mut cmd: Command = command(args, dir);
    for (name, value) in env {
        cmd.env(name, value);
    }
    let out = dir.join("stdout.txt");
    let err = dir.join("stderr.txt");
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out).expect("stdout file"))
        .stderr(File::create(&err).expect("stderr file"))
        .env_remove("TWILIO_ACCOUNT_SID")
        .env_remove("TWILIO_AUTH_TOKEN");
    let began = Instant::now();
    let mut child = cmd.spawn().expect("the agent binary runs");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            panic!("`agent {}` did not end within {limit:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        status,
        stdout: std::fs::read_to_string(out).unwrap_or_default(),
        stderr: std::fs::read_to_string(err).unwrap_or_default(),
    }
}

fn assert_success(run: &Run) {
    assert!(
        run.status.success(),
        "exit {:?}\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
}

/// The collector's environment for a run.
fn otel_env(collector: &Collector) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.clone()),
        ("OTEL_SERVICE_NAME", "agent-otel-test".to_owned()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("x-collector-key={COLLECTOR_KEY}"),
        ),
    ]
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The spans of one name.
fn named<'a>(spans: &'a [SpanRecord], name: &str) -> Vec<&'a SpanRecord> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn by_id(spans: &[SpanRecord]) -> HashMap<&str, &SpanRecord> {
    spans.iter().map(|s| (s.span_id.as_str(), s)).collect()
}

/// The parent of `span`, which must have been received.
fn parent<'a>(ids: &HashMap<&str, &'a SpanRecord>, span: &SpanRecord) -> &'a SpanRecord {
    ids.get(span.parent_id.as_str())
        .copied()
        .unwrap_or_else(|| panic!("the parent of {} was not received: {span:#?}", span.name))
}

/// The events of the wire trace at `path` (frames, then notes).
fn trace_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("the trace file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// What the scripted server said and what the project computed from it, read back from the
/// trace: the session id, and each response's usage and cost.
struct Wire {
    session_id: String,
    usage: HashMap<String, Value>,
    cost: HashMap<String, f64>,
    call_ids: HashMap<String, String>,
}

fn wire(path: &Path) -> Wire {
    let lines = trace_lines(path);
    let received = |kind: &'static str| {
        lines
            .iter()
            .filter(move |l| l["dir"] == "received" && l["event"]["type"] == kind)
            .map(|l| &l["event"])
    };
    let session_id = received("session.created")
        .next()
        .and_then(|e| e["session"]["id"].as_str())
        .expect("session.created with an id")
        .to_owned();
    let mut usage = HashMap::new();
    let mut call_ids = HashMap::new();
    for done in received("response.done") {
        let id = done["response"]["id"].as_str().expect("a response id");
        usage.insert(id.to_owned(), done["response"]["usage"].clone());
        for item in done["response"]["output"].as_array().into_iter().flatten() {
            if item["type"] == "function_call" {
                call_ids.insert(
                    item["call_id"].as_str().unwrap_or_default().to_owned(),
                    item["name"].as_str().unwrap_or_default().to_owned(),
                );
            }
        }
    }
    let cost = lines
        .iter()
        .filter(|l| l["kind"] == "usage")
        .filter_map(|l| {
            let data = &l["data"];
            let id = data["source"]["response_id"]
                .as_str()
                .or_else(|| data["source"]["response"]["response_id"].as_str())?;
            Some((id.to_owned(), data["cost_usd"].as_f64()?))
        })
        .collect();
    Wire {
        session_id,
        usage,
        cost,
        call_ids,
    }
}

#[test]
fn an_offline_run_exports_the_call_turn_response_and_tool_spans_with_their_usage() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("trace.jsonl");
    let env = otel_env(&collector);
    let out = run(
        &[
            "run",
            "agents/support.toml",
            "--offline",
            "--scenario",
            "order status",
            "--trace",
            trace.to_str().expect("a UTF-8 path"),
            "-vv",
        ],
        &env_refs(&env),
        dir.path(),
    );
    assert_success(&out);
    // The header reached the collector, and no log line showed its value.
    assert!(
        !out.stderr.contains(COLLECTOR_KEY) && !out.stdout.contains(COLLECTOR_KEY),
        "{}",
        out.stderr
    );
    // The last spans left before the process ended: nothing more to wait for.
    let spans = collector.spans();
    let requests = collector.requests();
    assert!(!requests.is_empty(), "nothing reached the collector");
    for request in &requests {
        assert_eq!(request.path, "/v1/traces");
        assert_eq!(request.content_type, "application/x-protobuf");
        assert_eq!(
            request.headers.get("x-collector-key").map(String::as_str),
            Some(COLLECTOR_KEY)
        );
    }
    let wire = wire(&trace);
    let ids = by_id(&spans);

    let calls = named(&spans, "call");
    assert_eq!(calls.len(), 1, "one session, one call span: {spans:#?}");
    let call = calls[0];
    assert!(call.parent_id.is_empty(), "the call is a root span");
    assert_eq!(call.text("agent.name"), Some("support"));
    assert_eq!(
        call.text("openai.session_id"),
        Some(wire.session_id.as_str())
    );
    assert_eq!(call.text("gen_ai.request.model"), Some("gpt-realtime"));
    assert_eq!(call.text("call.close_reason"), Some("requested"));
    assert_eq!(
        call.resource.get("service.name").and_then(Value::as_str),
        Some("agent-otel-test")
    );
    assert!(
        spans.iter().all(|s| s.trace_id == call.trace_id),
        "one trace"
    );

    let turns = named(&spans, "turn");
    assert_eq!(turns.len(), 1, "one user turn: {turns:#?}");
    let turn = turns[0];
    assert_eq!(parent(&ids, turn).span_id, call.span_id);
    assert_eq!(turn.text("turn.start"), Some("text"));
    assert_eq!(turn.int("turn.responses"), Some(2), "{spans:#?}");
    assert_eq!(turn.int("turn.tool_calls"), Some(1));
    assert!(
        turn.number("latency.first_delta_ms")
            .is_some_and(|ms| ms >= 0.0)
    );

    let responses = named(&spans, "response");
    assert_eq!(responses.len(), 2, "the call's response and the answer");
    let (mut input, mut output, mut cost) = (0, 0, 0.0);
    for response in &responses {
        assert_eq!(parent(&ids, response).span_id, turn.span_id);
        assert_eq!(response.text("agent.name"), Some("support"));
        assert_eq!(response.text("gen_ai.response.status"), Some("completed"));
        assert_eq!(
            response.text("openai.session_id"),
            Some(wire.session_id.as_str())
        );
        let id = response.text("gen_ai.response.id").expect("a response id");
        let usage = &wire.usage[id];
        assert_eq!(
            response.int("gen_ai.usage.input_tokens"),
            usage["input_tokens"].as_i64()
        );
        assert_eq!(
            response.int("gen_ai.usage.output_tokens"),
            usage["output_tokens"].as_i64()
        );
        let details = &usage["input_token_details"];
        assert_eq!(
            response.int("gen_ai.usage.input_cached_tokens"),
            Some(details["cached_tokens"].as_i64().unwrap_or(0))
        );
        let spent = response.number("cost.usd").expect("a cost");
        assert!(spent > 0.0, "{response:#?}");
        assert!(
            (spent - wire.cost[id]).abs() < 1e-12,
            "{spent} vs {}",
            wire.cost[id]
        );
        assert!(response.number("latency.duration_ms").is_some());
        input += response.int("gen_ai.usage.input_tokens").unwrap_or(0);
        output += response.int("gen_ai.usage.output_tokens").unwrap_or(0);
        cost += spent;
    }
    assert_eq!(call.int("gen_ai.usage.input_tokens"), Some(input));
    assert_eq!(call.int("gen_ai.usage.output_tokens"), Some(output));
    assert!((call.number("cost.usd").expect("the call's cost") - cost).abs() < 1e-9);

    let tools = named(&spans, "tool_call");
    assert_eq!(tools.len(), 1);
    let tool = tools[0];
    let asked = parent(&ids, tool);
    assert_eq!(asked.name, "response");
    assert_eq!(
        asked.text("gen_ai.response.id"),
        tool.text("gen_ai.response.id")
    );
    assert_eq!(tool.text("tool.name"), Some("lookup_order"));
    assert_eq!(tool.text("tool.outcome"), Some("ok"));
    assert_eq!(tool.text("agent.name"), Some("support"));
    let call_id = tool.text("tool.call_id").expect("a call id");
    assert_eq!(
        wire.call_ids.get(call_id).map(String::as_str),
        Some("lookup_order")
    );
    assert!(tool.number("tool.duration_ms").is_some_and(|ms| ms >= 0.0));
    // Each span ends after it starts, and children start within their parents.
    for span in &spans {
        assert!(span.end_ns >= span.start_ns, "{span:#?}");
        if !span.parent_id.is_empty() {
            assert!(parent(&ids, span).start_ns <= span.start_ns, "{span:#?}");
        }
    }
}

#[test]
fn after_a_handoff_the_spans_carry_the_agent_that_has_the_conversation() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = otel_env(&collector);
    let out = run(
        &[
            "run",
            "agents/support.toml",
            "--offline",
            "--scenario",
            "double charge goes to billing",
        ],
        &env_refs(&env),
        dir.path(),
    );
    assert_success(&out);
    let spans = collector.wait_for(ARRIVAL, |spans| !named(spans, "call").is_empty());
    let tool = |name: &str| {
        named(&spans, "tool_call")
            .into_iter()
            .find(|s| s.text("tool.name") == Some(name))
            .unwrap_or_else(|| panic!("no span of {name}: {spans:#?}"))
    };
    let transfer = tool("transfer_to_billing");
    assert_eq!(transfer.text("tool.outcome"), Some("handoff"));
    assert_eq!(transfer.text("agent.name"), Some("support"));
    assert_eq!(tool("create_ticket").text("agent.name"), Some("billing"));
    assert_eq!(
        tool("transfer_to_support").text("agent.name"),
        Some("billing")
    );
    assert_eq!(tool("lookup_order").text("agent.name"), Some("support"));
    let call = named(&spans, "call")[0];
    assert_eq!(
        call.text("agent.name"),
        Some("support"),
        "the agent that took the call"
    );
    let handoffs: Vec<_> = call
        .events
        .iter()
        .filter(|(name, _)| name == "handoff")
        .collect();
    assert_eq!(handoffs.len(), 2, "{:#?}", call.events);
    assert_eq!(
        handoffs[0].1.get("agent.to").and_then(Value::as_str),
        Some("billing")
    );
    // The user's two messages, and between them the note that billing's output guardrail
    // sent the model (a turn of its own, as the latency counts it).
    let mut turns = named(&spans, "turn");
    turns.sort_by_key(|t| t.int("turn.number"));
    let starts: Vec<_> = turns.iter().map(|t| t.text("turn.start")).collect();
    assert_eq!(starts, [Some("text"), Some("request"), Some("text")]);
    assert_eq!(turns[0].text("agent.name"), Some("support"));
    assert_eq!(
        turns[2].text("agent.name"),
        Some("billing"),
        "billing had it when the second message came"
    );
    assert_eq!(call.int("call.turns"), Some(3));
}

#[test]
fn an_offline_sip_call_s_span_carries_openai_s_call_id() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = otel_env(&collector);
    let out = run(
        &[
            "call",
            "agents/support.toml",
            "--offline",
            "--transport",
            "sip",
        ],
        &env_refs(&env),
        dir.path(),
    );
    assert_success(&out);
    let spans = collector.wait_for(ARRIVAL, |spans| !named(spans, "call").is_empty());
    let call = named(&spans, "call")[0];
    assert_eq!(call.text("call.transport"), Some("sip"));
    let call_id = call.text("openai.call_id").expect("the SIP call's id");
    assert!(!call_id.is_empty());
    assert!(
        call.text("openai.session_id")
            .is_some_and(|id| !id.is_empty())
    );
    assert!(!named(&spans, "tool_call").is_empty());
}

#[test]
fn an_offline_twilio_call_s_span_carries_the_call_and_stream_sids() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = otel_env(&collector);
    let out = run(
        &["call", "agents/support.toml", "--offline"],
        &env_refs(&env),
        dir.path(),
    );
    assert_success(&out);
    let spans = collector.wait_for(ARRIVAL, |spans| !named(spans, "call").is_empty());
    let call = named(&spans, "call")[0];
    assert_eq!(call.text("call.transport"), Some("twilio"));
    assert!(
        call.text("twilio.call_sid")
            .is_some_and(|sid| sid.starts_with("CA"))
    );
    assert!(
        call.text("twilio.stream_sid")
            .is_some_and(|sid| sid.starts_with("MZ"))
    );
}

#[test]
fn a_collector_that_never_answers_does_not_hold_the_exit() {
    // Accepts connections and reads nothing: every export waits for its deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("address"));
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept() {
            open.push(stream);
            if open.len() > 16 {
                break;
            }
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    // Each export may wait 5 minutes for its answer; the exit waits for the last one only
    // within its own deadline (3 s), so the run ends well within a minute.
    let out = run_within(
        Duration::from_secs(60),
        &[
            "run",
            "agents/support.toml",
            "--offline",
            "--scenario",
            "order status",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", url.as_str()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300000"),
        ],
        dir.path(),
    );
    assert_success(&out);
    drop(held);
}

#[test]
fn nothing_is_exported_without_an_endpoint_or_when_turned_off() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run(
        &[
            "run",
            "agents/support.toml",
            "--offline",
            "--scenario",
            "order status",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_SDK_DISABLED", "true"),
        ],
        dir.path(),
    );
    assert_success(&out);
    assert!(collector.requests().is_empty());
}

/// `agent serve` exports too: a SIP call through the fake platform, then SIGTERM. The spans
/// the server had not sent yet leave before it exits, under a resource that names the node.
#[test]
fn agent_serve_exports_a_sip_call_under_its_node_and_flushes_on_exit() {
    use agent_testkit::{
        ModelStep, Scenario, Turn,
        platform::{FakePlatform, IncomingCall, SidebandDrop, WebhookSigning},
        server::ServerConfig,
    };
    use std::io::BufRead as _;
    const SECRET: &str = "whsec_b3RlbC10ZXN0LXdlYmhvb2stc2VjcmV0LTQyNDI=";

    let collector = Collector::start();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = Scenario::new("greet").turn(Turn::model_first().model(ModelStep::say("Hello.")));
    let platform = runtime
        .block_on(async {
            FakePlatform::start(
                ServerConfig::new(scenario),
                SidebandDrop::CallSurvives,
                SECRET,
                None,
            )
        })
        .expect("the fake platform");
    std::fs::write(
        dir.path().join("phone.toml"),
        "name = \"phone\"\ninstructions = \"Greet.\"\noutput_modalities = [\"audio\"]\n",
    )
    .expect("agent file");
    std::fs::write(
        dir.path().join("serve.toml"),
        "listen = \"127.0.0.1:0\"\npublic_base_url = \"https://voice.example.invalid\"\n\
         node = \"otel-node-7\"\n[[route]]\nagent = \"phone.toml\"\nsip_users = [\"support\"]\n",
    )
    .expect("serve.toml");
    let config = dir.path().join("serve.toml");
    let (url, api_base) = (platform.realtime_url(), platform.api_base());
    let mut serve = command(
        &[
            "serve",
            "--config",
            config.to_str().expect("a UTF-8 path"),
            "--url",
            &url,
            "--api-base",
            &api_base,
            "--drain-secs",
            "1",
        ],
        dir.path(),
    );
    for (name, value) in otel_env(&collector) {
        serve.env(name, value);
    }
    let mut child = serve
        .env("OPENAI_WEBHOOK_SECRET", SECRET)
        .env("OPENAI_API_KEY", "sk-otel-test-key-0000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent serve runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("agent serve listens");
    let addr: std::net::SocketAddr = first
        .trim()
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    runtime.block_on(async {
        let call = IncomingCall::new(
            "rtc_otel_1",
            "sip:+15550111@carrier.example",
            "sip:support@sip.api.openai.com",
        );
        let answer = platform
            .incoming_call(
                addr,
                "/openai/webhook",
                &call,
                "wh_otel_1",
                WebhookSigning::Valid,
            )
            .await
            .expect("the webhook is answered");
        assert_eq!(answer.status, 200, "{answer:?}");
        assert!(
            platform
                .until(Duration::from_secs(10), |p| p
                    .calls()
                    .attached("rtc_otel_1"))
                .await
        );
        platform.calls().caller_hangs_up("rtc_otel_1");
    });
    // Whether the call is still winding down or over, its spans close before the exit.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let began = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if began.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("agent serve did not stop within 20 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Exported at exit at the latest: nothing is waited for here.
    let spans = collector.spans();
    let call = named(&spans, "call")
        .into_iter()
        .find(|s| s.text("openai.call_id") == Some("rtc_otel_1"))
        .unwrap_or_else(|| panic!("no span of the SIP call: {spans:#?}"));
    assert_eq!(call.text("call.transport"), Some("sip"));
    assert_eq!(call.text("agent.name"), Some("phone"));
    let resource = |key: &str| call.resource.get(key).and_then(Value::as_str);
    assert_eq!(resource("service.instance.id"), Some("otel-node-7"));
    assert_eq!(resource("agent.node"), Some("otel-node-7"));
    assert_eq!(resource("service.name"), Some("agent-otel-test"));
    runtime.block_on(platform.shutdown());
}
