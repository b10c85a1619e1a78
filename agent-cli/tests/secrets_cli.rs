//! The standing secret-leak test: a hostile server echoes the API key and every configured
//! secret back — in an error, in the model's text, in a tool's arguments — and the run's
//! stdout, stderr and every file it wrote (trace, history database and its WAL, tickets, the
//! history export) must contain none of them. Extend `SECRETS` with each new kind of secret.
//!
//! Also: `ws://` to another machine is refused unless the agent file allows it, a loopback test
//! server gets no key unless asked, and Azure-style `api-key` header auth works without a
//! bearer key.

mod common;

use std::{
    io::Write,
    path::Path,
    process::{Output, Stdio},
};

use agent_testkit::{
    mcp::{McpHttpServer, McpServer},
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ConnectionFaults, ErrorSpec, Faults, ScriptedServer, ServerConfig, ServerHandle},
};
use common::text;
use serde_json::json;

/// The secrets of the run, by the environment variable that holds each.
const SECRETS: [(&str, &str); 7] = [
    ("OPENAI_API_KEY", "sk-leaktest-AAAA1111BBBB2222CCCC"),
    ("LEAK_CONNECTION_HEADER", "hdr-secret-DDDD3333EEEE"),
    ("LEAK_HTTP_TOOL_TOKEN", "tool-token-FFFF4444GGGG"),
    ("LEAK_MCP_TOKEN", "mcp-oauth-HHHH5555IIII"),
    ("LEAK_MCP_CLIENT_HEADER", "mcp-client-hdr-JJJJ6666KKKK"),
    ("LEAK_MCP_CLIENT_TOKEN", "mcp-client-bearer-LLLL7777"),
    ("LEAK_MCP_STDIO_ENV", "mcp-stdio-env-MMMM8888NNNN"),
];

/// `agent serve`'s secret, beside the others (`agent run` never reads it, so it is not in
/// [`SECRETS`], whose values a run is asked to recognise).
const TWILIO_AUTH_TOKEN: (&str, &str) = ("TWILIO_AUTH_TOKEN", "twilio-leaktest-PPPP9999QQQQ");

fn start(runtime: &tokio::runtime::Runtime, config: ServerConfig) -> ServerHandle {
    runtime
        .block_on(async { ScriptedServer::start(config) })
        .unwrap()
}

/// Everything the secrets could hide in, as text.
fn leaks(haystack: &str) -> Vec<&'static str> {
    SECRETS
        .iter()
        .map(|(_, value)| *value)
        .filter(|value| haystack.contains(value))
        .collect()
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn run(dir: &Path, args: &[&str], input: &str) -> Output {
    let mut command = common::command(args, dir);
    for (name, value) in SECRETS {
        command.env(name, value);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn secrets_echoed_by_the_server_reach_no_output_and_no_file() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<&str> = SECRETS.iter().map(|(_, v)| *v).collect();
    let echo = all.join(" and ");
    let scenario = Scenario::new("echo").turn(
        Turn::user("hi")
            .model(
                ModelStep::say(format!("Your secrets are {echo}."))
                    .call(ScriptedCall::new(
                        "create_ticket",
                        json!({"subject": "Leak", "description": format!("The customer said {echo}"), "priority": "normal"}),
                    ))
                    // MCP servers the framework calls echo what they were given: the HTTP
                    // one its headers and token, the stdio one its environment.
                    .call(ScriptedCall::new("remote_whoami", json!({})))
                    .call(ScriptedCall::new("local_whoami", json!({}))),
            )
            .model(ModelStep::say(format!("Ticket filed with {echo}."))),
    );
    // The server also puts every secret in an error message, right after the setup.
    let error = ErrorSpec::new(
        "invalid_request_error",
        "echo",
        &format!("Bad request: {echo}"),
    );
    let server = start(
        &runtime,
        ServerConfig::new(scenario).faults(
            Faults::none().on_every_connection(ConnectionFaults::new().error_after(2, error)),
        ),
    );
    let mcp = runtime
        .block_on(async { McpHttpServer::start(McpServer::default(), 0) })
        .unwrap();
    let agent = dir.path().join("leaky.toml");
    std::fs::write(
        &agent,
        format!(
            r#"name = "leaky"
instructions = "test"
tools = ["create_ticket"]

[connection]
url = "{url}"
headers = {{ X-Extra = "${{LEAK_CONNECTION_HEADER}}" }}

[[http_tools]]
name = "crm"
description = "Looks a customer up."
url = "https://crm.example.invalid/customers"
headers = {{ X-Api-Key = "${{LEAK_HTTP_TOOL_TOKEN}}" }}

[[mcp_servers]]
server_label = "docs"
server_url = "https://mcp.example.invalid/sse"
authorization = "${{LEAK_MCP_TOKEN}}"

[[mcp_clients]]
name = "remote"
url = "{mcp_url}"
prefix = "remote_"
tools = ["whoami"]
headers = {{ X-Api-Key = "${{LEAK_MCP_CLIENT_HEADER}}" }}
bearer_token = "${{LEAK_MCP_CLIENT_TOKEN}}"

[[mcp_clients]]
name = "local"
command = {agent_bin}
args = ["mock-mcp"]
prefix = "local_"
tools = ["whoami"]
env = {{ SECRET_FOR_SERVER = "${{LEAK_MCP_STDIO_ENV}}" }}
"#,
            url = server.url(),
            mcp_url = mcp.url(),
            agent_bin = serde_json::to_string(env!("CARGO_BIN_EXE_agent")).unwrap(),
        ),
    )
    .unwrap();
    let trace = dir.path().join("trace.jsonl");
    let out = run(
        dir.path(),
        &[
            "run",
            agent.to_str().unwrap(),
            "--trace",
            trace.to_str().unwrap(),
            "--trace-audio",
            "-vv",
        ],
        "hi\n",
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    // The run really saw the echoes: the reply and the error are shown, redacted.
    assert!(
        stdout.contains("Your secrets are [redacted]"),
        "{stdout}\n{stderr}"
    );
    assert!(stderr.contains("Bad request: [redacted]"), "{stderr}");
    // The key went where it belongs: the agent file's URL.
    let requests = runtime.block_on(server.requests());
    assert!(requests[0].has_authorization, "{requests:?}");
    // The MCP server got its header and token, and the calls' echoes were recorded.
    let mcp_requests = mcp.requests();
    assert!(
        mcp_requests
            .iter()
            .any(|r| r.header("x-api-key") == Some(SECRETS[4].1)
                && r.header("authorization") == Some(&format!("Bearer {}", SECRETS[5].1))),
        "{mcp_requests:?}"
    );
    let trace_text = std::fs::read_to_string(&trace).unwrap();
    assert!(
        trace_text.contains("x-api-key: [redacted]")
            && trace_text.contains("SECRET_FOR_SERVER=[redacted]"),
        "the MCP echoes are in the trace, redacted"
    );

    let export = run(dir.path(), &["history", "export", "latest"], "");
    let show = run(dir.path(), &["history", "show", "latest", "--full"], "");
    let mut found = Vec::new();
    for (what, haystack) in [
        ("stdout", stdout.clone()),
        ("stderr", stderr.clone()),
        ("history export", text(&export.stdout)),
        ("history show", text(&show.stdout)),
    ] {
        for leak in leaks(&haystack) {
            found.push(format!("{what}: {leak}"));
        }
    }
    let files = files_under(dir.path());
    assert!(
        files.iter().any(|f| f.ends_with("tickets.jsonl")),
        "a ticket was written: {files:?}"
    );
    assert!(
        files.iter().any(|f| f.ends_with("history.sqlite3")),
        "{files:?}"
    );
    for file in &files {
        if file == &agent {
            continue; // the agent file names the variables, never their values
        }
        let bytes = std::fs::read(file).unwrap();
        for leak in leaks(&String::from_utf8_lossy(&bytes)) {
            found.push(format!("{}: {leak}", file.display()));
        }
    }
    assert!(found.is_empty(), "secrets leaked: {found:#?}");
    // Every file that holds the conversation is its owner's only.
    #[cfg(unix)]
    for file in files.iter().filter(|f| *f != &agent) {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} is {mode:o}", file.display());
    }
    runtime.block_on(server.shutdown());
    runtime.block_on(mcp.shutdown());
}

#[test]
fn ws_to_another_machine_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let agent = dir.path().join("remote.toml");
    std::fs::write(
        &agent,
        "name = \"remote\"\ninstructions = \"x\"\n[connection]\nurl = \"ws://192.0.2.10/v1/realtime\"\n",
    )
    .unwrap();
    let check = run(dir.path(), &["check", agent.to_str().unwrap()], "");
    let stderr = text(&check.stderr);
    assert!(!check.status.success());
    assert!(
        stderr.contains("`url` is ws:// to another machine: the API key and the conversation would travel unencrypted"),
        "{stderr}"
    );
    let run_out = run(dir.path(), &["run", agent.to_str().unwrap()], "hi\n");
    assert!(!run_out.status.success());
    assert!(
        text(&run_out.stderr).contains("ws:// to another machine"),
        "{}",
        text(&run_out.stderr)
    );
    // --url too, even when the file is fine.
    let fine = dir.path().join("fine.toml");
    std::fs::write(&fine, "name = \"fine\"\ninstructions = \"x\"\n").unwrap();
    let out = run(
        dir.path(),
        &[
            "run",
            fine.to_str().unwrap(),
            "--url",
            "ws://192.0.2.10/v1/realtime",
        ],
        "hi\n",
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr)
            .contains("ws://192.0.2.10/v1/realtime?model=gpt-realtime is ws:// to another machine")
            || text(&out.stderr)
                .contains("ws://192.0.2.10/v1/realtime is ws:// to another machine"),
        "{}",
        text(&out.stderr)
    );
    // Opting in passes the check.
    std::fs::write(
        &agent,
        "name = \"remote\"\ninstructions = \"x\"\n[connection]\nurl = \"ws://192.0.2.10/v1/realtime\"\nallow_insecure = true\n",
    )
    .unwrap();
    let check = run(dir.path(), &["check", agent.to_str().unwrap()], "");
    assert!(check.status.success(), "{}", text(&check.stderr));
}

fn question() -> Scenario {
    Scenario::new("q").turn(Turn::user("hi").model(ModelStep::say("hello")))
}

#[test]
fn a_loopback_test_server_gets_no_key_unless_asked() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fine = dir.path().join("fine.toml");
    std::fs::write(&fine, "name = \"fine\"\ninstructions = \"x\"\n").unwrap();
    for send_key in [false, true] {
        let server = start(&runtime, ServerConfig::new(question()));
        let url = server.url();
        let mut args = vec![
            "run",
            fine.to_str().unwrap(),
            "--url",
            url.as_str(),
            "--no-history",
        ];
        if send_key {
            args.push("--send-key");
        }
        let out = run(dir.path(), &args, "hi\n");
        assert!(out.status.success(), "{}", text(&out.stderr));
        let requests = runtime.block_on(server.requests());
        assert_eq!(requests[0].has_authorization, send_key, "{requests:?}");
        runtime.block_on(server.shutdown());
    }
}

#[test]
fn azure_style_header_auth_needs_no_bearer_key() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = start(&runtime, ServerConfig::new(question()));
    let agent = dir.path().join("azure.toml");
    // The key travels in `api-key`, from its own variable; OPENAI_API_KEY plays no part.
    std::fs::write(
        &agent,
        format!(
            "name = \"azure\"\ninstructions = \"x\"\n[connection]\nurl = \"{}\"\nauth = \"header\"\nauth_header = \"api-key\"\napi_key_env = \"LEAK_CONNECTION_HEADER\"\n",
            server.url()
        ),
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["run", agent.to_str().unwrap(), "--no-history"],
        "hi\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let requests = runtime.block_on(server.requests());
    assert_eq!(requests[0].header("api-key"), Some("[redacted]"));
    assert_eq!(requests[0].header("authorization"), None);
    // With no scheme at all, nothing is required or sent.
    let none = dir.path().join("none.toml");
    std::fs::write(
        &none,
        format!(
            "name = \"none\"\ninstructions = \"x\"\n[connection]\nurl = \"{}\"\nauth = \"none\"\napi_key_env = \"SURELY_UNSET_VARIABLE\"\n",
            server.url()
        ),
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["run", none.to_str().unwrap(), "--no-history"],
        "hi\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    runtime.block_on(server.shutdown());
}

/// `agent serve` with the Twilio auth token: callers put the token everywhere they can (as the
/// signature, the CallSid, a stream token, the body of malformed messages), and neither an
/// HTTP answer, a stream frame nor the server's log (at -vv) shows it.
#[test]
fn agent_serve_keeps_the_twilio_token_out_of_answers_and_logs() {
    use agent_testkit::twilio::{CallerStep, FakeTwilio, Signing, StreamStart, Twiml, http};
    use std::time::Duration;

    let (_, token) = TWILIO_AUTH_TOKEN;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::new("greet")
        .turn(Turn::model_first().model(ModelStep::say("Hello.").audio_ms(300)));
    let server = start(&runtime, ServerConfig::new(scenario));
    std::fs::write(
        dir.path().join("phone.toml"),
        "name = \"phone\"\ninstructions = \"Greet.\"\noutput_modalities = [\"audio\"]\n",
    )
    .unwrap();
    let public = "https://voice.example.invalid";
    std::fs::write(
        dir.path().join("serve.toml"),
        format!("listen = \"127.0.0.1:0\"\npublic_base_url = \"{public}\"\n[[route]]\nagent = \"phone.toml\"\nnumbers = [\"+15550100\"]\n"),
    )
    .unwrap();
    let config = dir.path().join("serve.toml");
    let url = server.url();
    let serving = Serving::start(
        &[
            "-vv",
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--url",
            &url,
        ],
        dir.path(),
        TWILIO_AUTH_TOKEN,
    );
    let addr = serving.addr;
    let twilio = FakeTwilio::new(addr, public, token);
    let stream_url = format!("ws://{addr}/twilio/media-stream");
    let mut seen = String::new();
    runtime.block_on(async {
        let params = [("CallSid", token), ("From", token), ("To", "+15550100")];
        for signing in [Signing::WrongToken, Signing::Missing, Signing::Valid] {
            let answer = twilio
                .voice("/twilio/voice", &params, signing)
                .await
                .unwrap();
            seen.push_str(&format!("{answer:?}"));
        }
        let answer = http::request(
            addr,
            "POST",
            "/twilio/voice",
            &[("x-twilio-signature", token)],
            token.as_bytes(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        seen.push_str(&format!("{answer:?}"));
        let forged = StreamStart::new("CA1", [("token".to_owned(), token.to_owned())].into());
        let record = twilio
            .stream(&stream_url, forged, &[], Duration::from_secs(10))
            .await
            .unwrap();
        seen.push_str(&format!("{record:?}"));
        let params = [
            ("CallSid", "CA2"),
            ("From", "+15550111"),
            ("To", "+15550100"),
        ];
        let answer = twilio
            .voice("/twilio/voice", &params, Signing::Valid)
            .await
            .unwrap();
        let Twiml::Connect { parameters, .. } = answer.twiml else {
            panic!("{answer:?}")
        };
        let script = [
            CallerStep::Raw(format!(r#"{{"event":"{token}"}}"#)),
            CallerStep::Raw(token.to_owned()),
            CallerStep::Raw(format!(
                r#"{{"event":"media","media":{{"payload":"{token}"}}}}"#
            )),
            CallerStep::WaitHeard {
                ms: 300,
                within: Duration::from_secs(10),
            },
            CallerStep::HangUp,
        ];
        let record = twilio
            .stream(
                &stream_url,
                StreamStart::new("CA2", parameters),
                &script,
                Duration::from_secs(20),
            )
            .await
            .unwrap();
        assert!(record.heard_ms() >= 300, "{record:?}");
        seen.push_str(&format!("{record:?}"));
    });
    let (logs, _) = serving.stop();
    assert!(
        logs.contains("refused a media stream"),
        "the log is at -vv: {logs}"
    );
    assert!(logs.contains("malformed Twilio message"), "{logs}");
    assert_eq!(leaks(&logs), Vec::<&str>::new(), "{logs}");
    assert_eq!(leaks(&seen), Vec::<&str>::new(), "{seen}");
    assert!(
        !logs.contains(token),
        "the Twilio token is in the log: {logs}"
    );
    assert!(
        !seen.contains(token),
        "the Twilio token is in an answer: {seen}"
    );
    runtime.block_on(server.shutdown());
}

/// `agent serve`'s SIP secret: the platform's webhook signing secret.
const WEBHOOK_SECRET: (&str, &str) = (
    "OPENAI_WEBHOOK_SECRET",
    "whsec_bGVha3Rlc3Qtd2ViaG9vay1SUlJSMTAxMFNTU1M=",
);

/// `agent serve` with the webhook secret: a forger puts it (and its key part) in every header
/// and field of a webhook, a valid call carries it as the caller and as a keypad event, and
/// neither an HTTP answer nor the server's log (at -vv) shows it, nor the API key the server
/// sends the platform.
#[test]
fn agent_serve_keeps_the_webhook_secret_out_of_answers_and_logs() {
    use agent_testkit::platform::{CallControl, IncomingCall, WebhookSigning};
    use agent_testkit::twilio::http;
    use std::time::Duration;

    let (_, secret) = WEBHOOK_SECRET;
    let key_part = secret.trim_start_matches("whsec_");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("phone.toml"),
        "name = \"phone\"\ninstructions = \"Greet.\"\noutput_modalities = [\"audio\"]\n",
    )
    .unwrap();
    // The log in the format collectors read: the secret must stay out of it too.
    let (platform, serving) = serve_against_platform(
        &runtime,
        dir.path(),
        "[[route]]\nagent = \"phone.toml\"\nsip_users = [\"support\"]\n",
        &["--log-format", "json"],
        WEBHOOK_SECRET,
    );
    let addr = serving.addr;
    let mut seen = String::new();
    runtime.block_on(async {
        let forged = IncomingCall::new(secret, secret, secret);
        for signing in [
            WebhookSigning::WrongSecret,
            WebhookSigning::Missing,
            WebhookSigning::Malformed,
        ] {
            let answer = platform
                .incoming_call(addr, "/openai/webhook", &forged, key_part, signing)
                .await
                .unwrap();
            seen.push_str(&format!("{answer:?}"));
        }
        let signature = format!("v1,{key_part} v1,{secret}");
        let answer = http::request(
            addr,
            "POST",
            "/openai/webhook",
            &[
                ("webhook-id", secret),
                ("webhook-timestamp", key_part),
                ("webhook-signature", &signature),
            ],
            secret.as_bytes(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        seen.push_str(&format!("{answer:?}"));
        // Signed for real: an event type and a caller made of the secret.
        let odd =
            json!({"object": "event", "id": key_part, "type": secret, "created_at": 1, "data": {}});
        let answer = platform
            .send_webhook(
                addr,
                "/openai/webhook",
                "wh_odd",
                &odd,
                WebhookSigning::Valid,
            )
            .await
            .unwrap();
        seen.push_str(&format!("{answer:?}"));
        let call = IncomingCall::new(
            "rtc_leak",
            &format!("sip:{key_part}@carrier.example"),
            "sip:support@sip.api.openai.com",
        );
        let answer = platform
            .incoming_call(
                addr,
                "/openai/webhook",
                &call,
                "wh_leak",
                WebhookSigning::Valid,
            )
            .await
            .unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
        seen.push_str(&format!("{answer:?}"));
        assert!(
            platform
                .until(Duration::from_secs(10), |p| p.calls().attached("rtc_leak"))
                .await
        );
        platform.control("rtc_leak", CallControl::Dtmf(secret.to_owned()));
        platform.calls().caller_hangs_up("rtc_leak");
        assert!(
            platform
                .until(Duration::from_secs(10), |p| p.requests().len() >= 2)
                .await,
            "the accept and the hang-up"
        );
        seen.push_str(&format!("{:?}", platform.requests()));
    });
    let (logs, stderr) = serving.stop();
    assert!(
        logs.contains("refused an OpenAI webhook"),
        "the log is at -vv: {logs}"
    );
    assert!(logs.contains("SIP call connected"), "{logs}");
    let log_lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!log_lines.is_empty());
    for line in log_lines {
        let record: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| {
            panic!("--log-format json wrote a line that is not JSON ({e}): {line}")
        });
        for key in ["timestamp", "level", "fields"] {
            assert!(record.get(key).is_some(), "no {key} in {line}");
        }
    }
    for haystack in [&logs, &seen] {
        assert_eq!(leaks(haystack), Vec::<&str>::new(), "{haystack}");
        assert!(
            !haystack.contains(key_part),
            "the webhook secret leaked: {haystack}"
        );
    }
    runtime.block_on(platform.shutdown());
}

/// `agent serve`'s browser secret: the operator's token for the browser endpoints.
const OPERATOR_TOKEN: (&str, &str) = ("AGENT_OPERATOR_TOKEN", "op-leak-token-7777GGGG8888");

/// `agent serve` with the browser endpoints on: requests carry the operator's token in every
/// wrong place (a wrong bearer, the origin, the SDP), one mints a client secret for real, and
/// neither the log (at -vv) nor any answer but the mint's own shows the token or the minted
/// secret.
#[test]
fn agent_serve_keeps_operator_tokens_and_minted_secrets_out_of_answers_and_logs() {
    use agent_testkit::twilio::http;
    use std::time::Duration;

    let (_, token) = OPERATOR_TOKEN;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("web.toml"),
        "name = \"web\"\ninstructions = \"Help.\"\n",
    )
    .unwrap();
    let (platform, serving) = serve_against_platform(
        &runtime,
        dir.path(),
        "[browser]\ncalls = true\nclient_secrets = true\n\
         operator_token_env = \"AGENT_OPERATOR_TOKEN\"\n\
         [[route]]\nagent = \"web.toml\"\nbrowser = true\n",
        &[],
        OPERATOR_TOKEN,
    );
    let addr = serving.addr;
    let mut seen = String::new();
    let minted = runtime.block_on(async {
        let post = |path: &'static str, headers: Vec<(&'static str, String)>, body: String| async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http::request(addr, "POST", path, &headers, body.as_bytes(), Duration::from_secs(10))
                .await
                .unwrap()
        };
        let near = format!("{token}x");
        for headers in [
            vec![("authorization", format!("Bearer {near}"))],
            vec![("authorization", token.to_owned())],
            vec![("origin", format!("https://{token}.example"))],
        ] {
            let answer = post("/agents/web/client-secret", headers, String::new()).await;
            assert!(matches!(answer.status, 401 | 403), "{answer:?}");
            seen.push_str(&format!("{answer:?}"));
        }
        let bearer = format!("Bearer {token}");
        let answer = post(
            "/agents/web/calls",
            vec![
                ("authorization", bearer.clone()),
                ("content-type", "application/sdp".to_owned()),
            ],
            format!("v=0\r\ns={token}\r\n"),
        )
        .await;
        assert_eq!(answer.status, 400, "{answer:?}");
        seen.push_str(&format!("{answer:?}"));
        let answer = post(
            "/agents/web/client-secret",
            vec![("authorization", bearer)],
            String::new(),
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        body["value"].as_str().unwrap().to_owned()
    });
    assert!(minted.starts_with("ek_"), "{minted}");
    let (logs, _) = serving.stop();
    assert!(
        logs.contains("minted a client secret"),
        "the log is at -vv: {logs}"
    );
    for haystack in [&logs, &seen] {
        assert_eq!(leaks(haystack), Vec::<&str>::new(), "{haystack}");
        assert!(
            !haystack.contains(token),
            "the operator token leaked: {haystack}"
        );
        assert!(
            !haystack.contains(&minted),
            "a minted secret leaked: {haystack}"
        );
    }
    runtime.block_on(platform.shutdown());
}

/// The fake OpenAI platform (its sidebands say "Hello.", its REST side checks no key) and
/// `agent serve -vv` against it, with `serve.toml` = a listener on port 0 plus `routes`, the
/// `extra` flags before `serve`, and `secret` in its environment beside [`SECRETS`].
fn serve_against_platform(
    runtime: &tokio::runtime::Runtime,
    dir: &std::path::Path,
    routes: &str,
    extra: &[&str],
    secret: (&str, &str),
) -> (agent_testkit::platform::FakePlatform, Serving) {
    use agent_testkit::platform::{FakePlatform, SidebandDrop};
    let scenario = Scenario::new("greet").turn(Turn::model_first().model(ModelStep::say("Hello.")));
    let platform = runtime
        .block_on(async {
            FakePlatform::start(
                ServerConfig::new(scenario),
                SidebandDrop::CallSurvives,
                WEBHOOK_SECRET.1,
                None,
            )
        })
        .unwrap();
    std::fs::write(
        dir.join("serve.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\npublic_base_url = \"https://voice.example.invalid\"\n{routes}"
        ),
    )
    .unwrap();
    let config = dir.join("serve.toml");
    let (url, api_base) = (platform.realtime_url(), platform.api_base());
    let mut args = vec!["-vv"];
    args.extend(extra);
    args.extend([
        "serve",
        "--config",
        config.to_str().unwrap(),
        "--url",
        &url,
        "--api-base",
        &api_base,
    ]);
    let serving = Serving::start(&args, dir, secret);
    (platform, serving)
}

/// `agent serve` as its own process, started as a process manager would start it: the
/// secrets of [`SECRETS`] and `secret` in its environment, its address read from the line it
/// prints first.
struct Serving {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    first: String,
    addr: std::net::SocketAddr,
}

impl Serving {
    /// `agent ARGS --drain-secs 1` in `dir`; waits (30 s at most) for it to listen.
    fn start(args: &[&str], dir: &std::path::Path, secret: (&str, &str)) -> Serving {
        use std::io::BufRead as _;
        let mut args = args.to_vec();
        args.extend(["--drain-secs", "1"]);
        let mut command = common::command(&args, dir);
        for (name, value) in SECRETS.iter().chain([&secret]) {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = lines_tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("agent serve started");
        let addr = first
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Serving {
            child,
            lines,
            first,
            addr,
        }
    }

    /// SIGTERM, as a process manager stops it; the server drains and exits (killed after
    /// 15 s). Returns everything it printed (stdout, then stderr), and its stderr alone.
    fn stop(mut self) -> (String, String) {
        use std::time::{Duration, Instant};
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let out = self.child.wait_with_output().unwrap();
        let rest: Vec<String> = self.lines.try_iter().collect();
        let stderr = text(&out.stderr);
        let logs = format!("{}\n{}\n{stderr}", self.first, rest.join("\n"));
        (logs, stderr)
    }
}

/// The PostgreSQL history store's password (in the `--history-db` URL or
/// `AGENT_HISTORY_DB`): a run against the server, an unreachable server and a refused login
/// print it nowhere and write it to no file, even with debug logs on.
#[test]
fn the_database_password_reaches_no_output_and_no_file() {
    const PASSWORD: &str = "pg-leaktest-RRRR0000SSSS";
    let Some(schema) = agent_testkit::postgres::TestSchema::create("secrets_cli_database") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The test server trusts loopback, so the password is sent and ignored; what matters is
    // where it ends up.
    let url = with_password(schema.url(), PASSWORD);
    let unreachable = with_password("postgres://root@127.0.0.1:1/test", PASSWORD);
    let wrong_database = with_password(&url.replace("/test?", "/no_such_db?"), PASSWORD);
    let mut outputs = Vec::new();
    for (what, args, env) in [
        (
            "run (flag)",
            vec![
                "-vv",
                "run",
                "agents/support.toml",
                "--offline",
                "--history-db",
                &url,
            ],
            None,
        ),
        (
            "run (variable)",
            vec!["-vv", "run", "agents/support.toml", "--offline"],
            Some(url.as_str()),
        ),
        (
            "history list",
            vec!["history", "list", "--history-db", &url],
            None,
        ),
        (
            "history show",
            vec!["history", "show", "latest", "--full", "--history-db", &url],
            None,
        ),
        (
            "unreachable",
            vec!["-vv", "history", "list", "--history-db", &unreachable],
            None,
        ),
        (
            "no such database",
            vec![
                "-vv",
                "run",
                "agents/support.toml",
                "--offline",
                "--history-db",
                &wrong_database,
            ],
            None,
        ),
    ] {
        let mut command = common::command(&args, dir.path());
        if let Some(location) = env {
            command.env("AGENT_HISTORY_DB", location);
        }
        let output = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        outputs.push((what, output));
    }
    let (_, run) = &outputs[0];
    assert!(run.status.success(), "{}", text(&run.stderr));
    let (_, list) = &outputs[2];
    assert!(
        text(&list.stdout).lines().count() >= 3,
        "both runs were stored on the server: {}",
        text(&list.stdout)
    );
    let (_, unreachable) = &outputs[4];
    assert!(
        text(&unreachable.stderr)
            .contains("cannot reach the history database postgres://root@127.0.0.1:1/test"),
        "the error names the database without its password: {}",
        text(&unreachable.stderr)
    );
    let mut found = Vec::new();
    for (what, output) in &outputs {
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            if String::from_utf8_lossy(bytes).contains(PASSWORD) {
                found.push(format!("{what}: {stream}"));
            }
        }
    }
    for file in files_under(dir.path()) {
        if String::from_utf8_lossy(&std::fs::read(&file).unwrap()).contains(PASSWORD) {
            found.push(file.display().to_string());
        }
    }
    assert!(found.is_empty(), "the database password leaked: {found:#?}");
}

/// `url` with `password` in its user part (`postgres://user:password@host/...`).
fn with_password(url: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or(user);
            format!("{scheme}://{user}:{password}@{host}")
        }
        None => format!("{scheme}://postgres:{password}@{rest}"),
    }
}
