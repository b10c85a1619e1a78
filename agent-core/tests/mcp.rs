//! `[[mcp_clients]]` end to end: an agent file declares the MCP test server of agent-testkit
//! (streamable HTTP on loopback here; stdio in agent-cli's tests), the scripted Realtime model
//! calls its tools, and the function outputs carry the server's results. Then the hostile
//! cases, each with a short deadline: a server that hangs on `initialize`, never answers a
//! call, dies mid-call, answers with bytes that are not JSON or with too much, or lists tools
//! no client can offer; and processes that exit, hang or write junk on stdout.

#![cfg(feature = "mcp")]

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use agent_core::{
    agent::{Agent, AgentFile, ConnectConfigError, ConnectOverrides},
    mcp::McpClients,
    session::Session,
    tool::{Tool, ToolContext, ToolError, ToolOutput, ToolRegistry},
};
use agent_testkit::{
    mcp::{McpFaults, McpHttpServer, McpServer},
    scenario::{ModelStep, Scenario, ScriptedCall, Turn},
    server::{ScriptedServer, ServerConfig},
};
use async_trait::async_trait;
use common::harness::{assert_no_violations, outputs, received, until_idle};
use serde_json::{Value, json};

/// An agent file with `mcp` as its `[[mcp_clients]]` body (its `name` on line 9), `head` (one
/// line) above it and `options` (one line) in `[tool_options]`.
fn agent_file(head: &str, options: &str, mcp: &str) -> AgentFile {
    let text = format!(
        "name = \"mcp-test\"\ninstructions = \"test\"\n{head}\n[tool_options]\ntimeout_secs = 5\n{options}\n\n[[mcp_clients]]\n{mcp}\n"
    );
    AgentFile::parse("agents/mcp-test.toml", text).unwrap()
}

async fn connect(options: &str, mcp: &str) -> Result<(Agent, McpClients), String> {
    let mut agent = agent_file("", options, mcp)
        .resolve(&ToolRegistry::new())
        .map_err(|err| err.to_string())?;
    let clients = agent.connect_mcp().await.map_err(|err| err.to_string())?;
    Ok((agent, clients))
}

fn http_server(faults: McpFaults) -> McpHttpServer {
    McpHttpServer::start(McpServer::new(faults), 0).unwrap()
}

async fn invoke(agent: &Agent, name: &str, args: Value) -> Result<ToolOutput, ToolError> {
    agent
        .tools
        .invoke(name, &args.to_string(), ToolContext::standalone())
        .await
}

#[tokio::test]
async fn a_scripted_model_calls_http_mcp_tools_and_reads_their_results() {
    let mcp = http_server(McpFaults::default());
    let (agent, clients) = connect(
        "",
        &format!(
            "name = \"kit\"\nurl = \"{}\"\nprefix = \"kit_\"\ntools = [\"echo\", \"add\", \"text.upper\", \"fail\"]",
            mcp.url()
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        agent.tools.names(),
        ["kit_add", "kit_echo", "kit_fail", "kit_text_upper"]
    );
    assert_eq!(
        agent.tools.source("kit_echo").unwrap(),
        "MCP server `kit` (agents/mcp-test.toml:9), its tool `echo`"
    );

    let scenario = Scenario::new("mcp").turn(
        Turn::user("use the MCP tools")
            .model(ModelStep::calls([
                ScriptedCall::new("kit_echo", json!({"text": "hi"})),
                ScriptedCall::new("kit_add", json!({"a": 2, "b": 3})),
                ScriptedCall::new("kit_text_upper", json!({"text": "loud"})),
                ScriptedCall::new("kit_fail", json!({"reason": "no such city"})),
            ]))
            .model(ModelStep::say("done")),
    );
    let server = ScriptedServer::start(ServerConfig::new(scenario)).unwrap();
    let overrides = ConnectOverrides {
        url: Some(server.url()),
        key_optional: true,
        ..Default::default()
    };
    let mut session = Session::start(agent.session_config(&overrides, None).unwrap())
        .await
        .unwrap();
    session.handle.send_text("use the MCP tools").await.unwrap();
    until_idle(&mut session).await;

    let sent = received(&server).await;
    // The session offered the MCP tools with their own descriptions and schemas.
    let update = sent.iter().find(|e| e["type"] == "session.update").unwrap();
    let echo = update["session"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "kit_echo")
        .unwrap();
    assert_eq!(echo["description"], "Echoes the text back.");
    assert_eq!(echo["parameters"]["properties"]["text"]["type"], "string");
    let upper = update["session"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "kit_text_upper")
        .unwrap();
    assert_eq!(upper["description"], "Upper case", "the title stands in");

    let outs: Vec<String> = outputs(&sent).into_iter().map(|(_, out)| out).collect();
    assert_eq!(outs.len(), 4, "{outs:?}");
    assert_eq!(outs[0], "echo: hi");
    assert_eq!(outs[1], "5");
    assert_eq!(outs[2], "LOUD");
    let failed: Value = serde_json::from_str(&outs[3]).unwrap();
    assert_eq!(failed["kind"], "failed");
    assert_eq!(failed["error"], "no such city");
    assert_no_violations(&server).await;
    let _ = session.handle.close().await;
    server.shutdown().await;

    clients.shutdown().await;
    let methods = mcp.methods();
    assert_eq!(
        methods[..3],
        ["initialize", "notifications/initialized", "tools/list"],
        "{methods:?}"
    );
    assert_eq!(methods.iter().filter(|m| *m == "tools/call").count(), 4);
    // Real names went back to the server.
    let called: Vec<String> = mcp
        .requests()
        .iter()
        .filter_map(|r| r.body.as_ref())
        .filter(|b| b["method"] == "tools/call")
        .map(|b| b["params"]["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(called.contains(&"text.upper".to_owned()), "{called:?}");
    mcp.shutdown().await;
}

#[tokio::test]
async fn calls_are_validated_bounded_and_mapped_when_the_server_misbehaves() {
    let mcp = http_server(McpFaults::default());
    let (agent, clients) = connect(
        "",
        &format!(
            "name = \"kit\"\nurl = \"{}\"\ncall_timeout_secs = 0.3\nmax_output_bytes = 1000",
            mcp.url()
        ),
    )
    .await
    .unwrap();

    // Arguments that break the server's schema are refused before anything is sent.
    let err = invoke(&agent, "echo", json!({"text": 5}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "invalid_arguments", "{err}");
    let err = invoke(&agent, "sleep", json!({"ms": 70000}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("maximum of 60000"), "{err}");
    assert!(!mcp.methods().contains(&"tools/call".to_owned()));
    // The schema allows it, the server refuses it (-32602): the model can correct itself.
    let err = invoke(&agent, "text_upper", json!({})).await.unwrap_err();
    assert!(
        matches!(&err, ToolError::InvalidArguments { message, .. }
            if message.contains("the MCP server refused them: `text` is required")),
        "{err:?}"
    );
    assert_eq!(
        invoke(&agent, "sleep", json!({"ms": 0}))
            .await
            .unwrap()
            .as_str(),
        "slept 0 ms"
    );

    // Never answers: the call's deadline, and the server is told to stop.
    let started = Instant::now();
    let err = invoke(&agent, "hang", json!({})).await.unwrap_err();
    assert_eq!(
        err,
        ToolError::Timeout {
            after: Duration::from_millis(300)
        }
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    wait_for(|| {
        mcp.methods()
            .contains(&"notifications/cancelled".to_owned())
    })
    .await;

    // Not JSON: an error at once, not a timeout.
    let started = Instant::now();
    let err = invoke(&agent, "garbage", json!({})).await.unwrap_err();
    assert_eq!(err.kind(), "failed", "{err}");
    assert!(started.elapsed() < Duration::from_millis(300), "{err}");

    // Too much output for the model.
    let err = invoke(&agent, "huge", json!({"bytes": 5000}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("5000 bytes") && err.to_string().contains("limit of 1000"),
        "{err}"
    );
    assert_eq!(
        invoke(&agent, "huge", json!({"bytes": 10}))
            .await
            .unwrap()
            .as_str(),
        "xxxxxxxxxx"
    );

    // Dies mid-call: an error naming the server, and the next call fails fast too.
    let err = invoke(&agent, "crash", json!({})).await.unwrap_err();
    assert!(err.to_string().contains("MCP server `kit`"), "{err}");
    let started = Instant::now();
    let err = invoke(&agent, "echo", json!({"text": "still there?"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("MCP server `kit`"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3), "{err}");
    clients.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_call_tells_the_server() {
    let mcp = http_server(McpFaults::default());
    let (agent, clients) = connect("", &format!("name = \"kit\"\nurl = \"{}\"", mcp.url()))
        .await
        .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let ctx = ToolContext::new("call_1", "mcp-test", "s", token.clone());
    let call = agent.tools.invoke("sleep", r#"{"ms": 30000}"#, ctx);
    let cancel = async {
        wait_for(|| mcp.methods().contains(&"tools/call".to_owned())).await;
        token.cancel();
    };
    let (result, ()) = tokio::join!(call, cancel);
    assert_eq!(result, Err(ToolError::Cancelled));
    wait_for(|| {
        mcp.methods()
            .contains(&"notifications/cancelled".to_owned())
    })
    .await;
    clients.shutdown().await;
}

#[tokio::test]
async fn a_server_that_hangs_on_initialize_fails_the_start_within_its_deadline() {
    let mcp = http_server(McpFaults {
        hang_initialize: true,
        ..McpFaults::default()
    });
    let started = Instant::now();
    let err = connect(
        "",
        &format!(
            "name = \"slow\"\nurl = \"{}\"\nstartup_timeout_secs = 0.3",
            mcp.url()
        ),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        err.contains("agents/mcp-test.toml:9:")
            && err.contains("MCP server `slow` did not finish starting within 0.3 s")
            && err.contains("`initialize`"),
        "{err}"
    );
}

#[tokio::test]
async fn bogus_tools_are_reported_and_an_allow_list_leaves_them_out() {
    let mcp = http_server(McpFaults {
        bogus_tools: true,
        ..McpFaults::default()
    });
    let err = connect("", &format!("name = \"kit\"\nurl = \"{}\"", mcp.url()))
        .await
        .unwrap_err();
    assert!(
        err.contains("70 characters long") && err.contains("the Realtime API allows at most 64"),
        "{err}"
    );
    assert!(
        err.contains("tool `stringly` has an input schema of type \"string\""),
        "{err}"
    );
    assert!(err.contains("tools = [...]"), "the hint says how: {err}");

    let (agent, clients) = connect(
        "",
        &format!(
            "name = \"kit\"\nurl = \"{}\"\ntools = [\"echo\"]",
            mcp.url()
        ),
    )
    .await
    .unwrap();
    assert_eq!(agent.tools.names(), ["echo"]);
    clients.shutdown().await;

    let err = connect(
        "",
        &format!(
            "name = \"kit\"\nurl = \"{}\"\ntools = [\"ecko\"]",
            mcp.url()
        ),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("has no tool `ecko`") && err.contains("echo, add"),
        "{err}"
    );
}

/// A built-in stand-in named like one of the server's tools.
struct Echo;

#[async_trait]
impl Tool for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn description(&self) -> &str {
        "Echoes."
    }
    fn parameters(&self, _strict: bool) -> &Value {
        static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(
            || json!({"type": "object", "properties": {}, "additionalProperties": false}),
        )
    }
    async fn call(&self, _args: Value, _ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        Ok(ToolOutput::text("built-in"))
    }
}

#[tokio::test]
async fn a_name_clash_with_another_tool_names_both() {
    let mcp = http_server(McpFaults::default());
    let mut registry = ToolRegistry::new();
    registry
        .register(Arc::new(Echo), "agent_tools::echo (tools/src/echo.rs:1)")
        .unwrap();
    let mut agent = agent_file(
        "tools = [\"echo\"]",
        "",
        &format!("name = \"kit\"\nurl = \"{}\"", mcp.url()),
    )
    .resolve(&registry)
    .unwrap();
    let err = agent.connect_mcp().await.unwrap_err().to_string();
    assert!(
        err.contains("two tools are named `echo`: one from the agent file's `tools`, one from MCP server `kit` (agents/mcp-test.toml:9), its tool `echo`"),
        "{err}"
    );
    assert!(err.contains("`prefix`"), "{err}");
    // With a prefix both live side by side.
    let mut agent = agent_file(
        "tools = [\"echo\"]",
        "",
        &format!("name = \"kit\"\nurl = \"{}\"\nprefix = \"kit_\"", mcp.url()),
    )
    .resolve(&registry)
    .unwrap();
    let clients = agent.connect_mcp().await.unwrap();
    assert!(agent.tools.contains("echo") && agent.tools.contains("kit_echo"));
    clients.shutdown().await;
}

#[tokio::test]
async fn a_session_needs_its_mcp_servers_connected_first() {
    let agent = agent_file("", "", "name = \"kit\"\nurl = \"http://127.0.0.1:9/mcp\"")
        .resolve(&ToolRegistry::new())
        .unwrap();
    let err = agent
        .session_config(&ConnectOverrides::default(), None)
        .unwrap_err();
    assert!(
        matches!(&err, ConnectConfigError::McpNotConnected { servers } if servers == "`kit`"),
        "{err}"
    );
}

#[tokio::test]
async fn tool_choice_may_name_an_mcp_tool() {
    let mcp = http_server(McpFaults::default());
    let (agent, clients) = connect(
        "choice = \"kit_echo\"",
        &format!("name = \"kit\"\nurl = \"{}\"\nprefix = \"kit_\"", mcp.url()),
    )
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(agent.spec().tool_options.choice.get_ref(), "kit_echo");
    clients.shutdown().await;
    let err = connect(
        "choice = \"kit_ecko\"",
        &format!("name = \"kit\"\nurl = \"{}\"\nprefix = \"kit_\"", mcp.url()),
    )
    .await
    .unwrap_err();
    assert!(err.contains("tool choice `kit_ecko`"), "{err}");
}

/// stdio servers that are not MCP servers at all: the start fails within its deadline with
/// what they said, and nothing they started survives.
#[cfg(unix)]
mod stdio {
    use super::*;

    #[tokio::test]
    async fn a_server_that_exits_at_once_is_reported_with_its_status_and_stderr() {
        let err = connect(
            "",
            "name = \"dead\"\ncwd = \"/\"\ncommand = \"sh\"\nargs = [\"-c\", \"echo failing on purpose >&2; exit 3\"]",
        )
        .await
        .unwrap_err();
        assert!(
            err.contains("MCP server `dead` failed to start")
                && err.contains("exit status: 3")
                && err.contains("failing on purpose"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_missing_command_says_so() {
        let err = connect(
            "",
            "name = \"nope\"\ncwd = \"/\"\ncommand = \"agent-test-no-such-program\"",
        )
        .await
        .unwrap_err();
        assert!(
            err.contains("cannot start `agent-test-no-such-program`")
                && err.contains("is it installed and on PATH?"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_is_killed_with_everything_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The server starts a grandchild and waits: both must be gone after the timeout.
        let script = format!(
            "echo 'not json, a log line on stdout'; sleep 30 & echo $! > {}; wait",
            pid_file.display()
        );
        let started = Instant::now();
        let err = connect(
            "",
            &format!(
                "name = \"mute\"\ncwd = \"/\"\ncommand = \"sh\"\nargs = [\"-c\", {}]\nstartup_timeout_secs = 0.5",
                serde_json::to_string(&script).unwrap()
            ),
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            err.contains("did not finish starting within 0.5 s")
                && err.contains("a line that is not a JSON-RPC message")
                && err.contains("not json, a log line on stdout"),
            "{err}"
        );
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        wait_for(|| {
            std::fs::read_to_string(&stat)
                .map(|s| s.split_whitespace().nth(2) == Some("Z"))
                .unwrap_or(true)
        })
        .await;
    }
}

/// Waits (at most 5 s) until `done` holds.
async fn wait_for(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
