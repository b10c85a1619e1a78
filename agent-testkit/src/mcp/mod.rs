//! A small MCP server, written as raw JSON-RPC, for testing clients of the Model Context
//! Protocol: the framework's `[[mcp_clients]]` and anything else.
//!
//! It serves a fixed catalogue of tools over stdio ([`serve_stdio`], for a child process) or
//! streamable HTTP on 127.0.0.1 ([`McpHttpServer`]), and misbehaves on demand: some tools are
//! faults in themselves (`hang` never answers, `crash` kills the server mid-call, `garbage`
//! answers with a line that is not JSON, `huge` answers with as many bytes as asked), and
//! [`McpFaults`] knobs break start-up (never answering `initialize`, exiting at once, listing
//! tools no client can offer, refusing requests without a header).
//!
//! Messages are `serde_json::Value`s, never the SDK's types, so the server can say whatever a
//! broken or hostile server would. [`McpServer::handle`] is the protocol as a function from a
//! message to an [`Action`]; the transports only move bytes.
//!
//! The catalogue (`tools/list`):
//!
//! | tool | arguments | result |
//! | --- | --- | --- |
//! | `echo` | `text: string` | the text `echo: TEXT` |
//! | `add` | `a, b: number` | the sum as text, and `structuredContent: {"sum": ...}` |
//! | `text.upper` | `text?: string` | the text in capitals (a name with a dot; its schema leaves `text` optional, the server requires it: error -32602 without) |
//! | `fail` | `reason?: string` | `isError: true` with the reason |
//! | `sleep` | `ms: integer` | `slept MS ms` after that long |
//! | `whoami` | none | over HTTP the request's headers, over stdio the environment, one `NAME=value` a line |
//! | `huge` | `bytes: integer` | a text of that many `x` |
//! | `hang` | none | never answers |
//! | `crash` | none | the server dies mid-call (stdio: exits with status 3; HTTP: drops the connection and stops listening) |
//! | `garbage` | none | a reply that is not JSON |

pub(crate) mod http;
mod stdio;

use std::time::Duration;

use serde_json::{Value, json};

pub use http::{McpHttpServer, ReceivedRequest};
pub use stdio::serve_stdio;

/// The protocol versions the server accepts (it answers `initialize` with the client's, if it
/// is one of these, else the first).
pub const PROTOCOL_VERSIONS: &[&str] = &["2025-06-18", "2025-11-25", "2025-03-26", "2024-11-05"];

/// Ways to break start-up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct McpFaults {
    /// Never answer `initialize`.
    pub hang_initialize: bool,
    /// stdio: write a line to stderr and exit with this status before reading anything.
    pub exit_at_start: Option<i32>,
    /// Add tools no Realtime client can offer to `tools/list`: a name of 70 characters and a
    /// tool whose input schema is not an object.
    pub bogus_tools: bool,
    /// HTTP: answer requests without this header (`name`, exact `value`) with 401, echoing the
    /// header that was sent in the body (as careless servers do).
    pub require_header: Option<(String, String)>,
}

/// What the server does with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this message.
    Reply(Value),
    /// Wait, then send this message.
    ReplyAfter(Duration, Value),
    /// Send these bytes as the reply (not JSON).
    Raw(String),
    /// Never answer.
    Hang,
    /// Die now.
    Crash,
    /// A notification or a response: nothing to send.
    Nothing,
}

/// The server's behaviour, independent of the transport.
#[derive(Debug, Clone, Default)]
pub struct McpServer {
    /// The fault knobs.
    pub faults: McpFaults,
}

impl McpServer {
    /// A well-behaved server, or one with these faults.
    pub fn new(faults: McpFaults) -> Self {
        McpServer { faults }
    }

    /// What to do with `message`. `whoami` is what the `whoami` tool answers (headers or
    /// environment, depending on the transport).
    pub fn handle(&self, message: &Value, whoami: impl FnOnce() -> String) -> Action {
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            return Action::Nothing;
        };
        let Some(id) = message.get("id").cloned() else {
            return Action::Nothing;
        };
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        match method {
            "initialize" if self.faults.hang_initialize => Action::Hang,
            "initialize" => {
                let asked = params.get("protocolVersion").and_then(Value::as_str);
                let version = asked
                    .filter(|v| PROTOCOL_VERSIONS.contains(v))
                    .unwrap_or(PROTOCOL_VERSIONS[0]);
                Action::Reply(result(
                    id,
                    json!({
                        "protocolVersion": version,
                        "capabilities": {"tools": {"listChanged": false}},
                        "serverInfo": {"name": "agent-testkit-mcp", "version": env!("CARGO_PKG_VERSION")},
                    }),
                ))
            }
            "ping" => Action::Reply(result(id, json!({}))),
            "tools/list" => Action::Reply(result(id, json!({"tools": self.tools()}))),
            "tools/call" => call(id, &params, whoami),
            other => Action::Reply(error(id, -32601, &format!("unknown method `{other}`"))),
        }
    }

    /// The `tools` of `tools/list`.
    pub fn tools(&self) -> Vec<Value> {
        let text = |description: &str| json!({"type": "object", "properties": {"text": {"type": "string", "description": description}}, "required": ["text"]});
        let none = json!({"type": "object", "properties": {}});
        let mut tools = vec![
            json!({"name": "echo", "description": "Echoes the text back.", "inputSchema": text("What to echo.")}),
            json!({"name": "add", "description": "Adds two numbers.", "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}, "outputSchema": {"type": "object", "properties": {"sum": {"type": "number"}}}}),
            json!({"name": "text.upper", "title": "Upper case", "inputSchema": {"type": "object", "properties": {"text": {"type": "string", "description": "The text."}}}}),
            json!({"name": "fail", "description": "Always fails.", "inputSchema": {"type": "object", "properties": {"reason": {"type": "string"}}}}),
            json!({"name": "sleep", "description": "Waits, then answers.", "inputSchema": {"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": 60000}}, "required": ["ms"]}}),
            json!({"name": "whoami", "description": "What the server sees of its caller.", "inputSchema": none}),
            json!({"name": "huge", "description": "A long text.", "inputSchema": {"type": "object", "properties": {"bytes": {"type": "integer", "minimum": 0}}, "required": ["bytes"]}}),
            json!({"name": "hang", "description": "Never answers.", "inputSchema": none}),
            json!({"name": "crash", "description": "The server dies.", "inputSchema": none}),
            json!({"name": "garbage", "description": "Answers with bytes that are not JSON.", "inputSchema": none}),
        ];
        if self.faults.bogus_tools {
            tools.push(json!({"name": "x".repeat(70), "description": "A name too long.", "inputSchema": none}));
            tools.push(json!({"name": "stringly", "description": "Not an object.", "inputSchema": {"type": "string"}}));
        }
        tools
    }
}

fn call(id: Value, params: &Value, whoami: impl FnOnce() -> String) -> Action {
    let args = params.get("arguments").cloned().unwrap_or(json!({}));
    let text_arg = |name: &str| args.get(name).and_then(Value::as_str).map(str::to_owned);
    let tool = params.get("name").and_then(Value::as_str).unwrap_or("");
    let text = |text: String| {
        result(
            id.clone(),
            json!({"content": [{"type": "text", "text": text}]}),
        )
    };
    match tool {
        "echo" | "text.upper" => match text_arg("text") {
            Some(value) if tool == "echo" => Action::Reply(text(format!("echo: {value}"))),
            Some(value) => Action::Reply(text(value.to_uppercase())),
            None => Action::Reply(error(id, -32602, "`text` is required and must be a string")),
        },
        "add" => match (
            args.get("a").and_then(Value::as_f64),
            args.get("b").and_then(Value::as_f64),
        ) {
            (Some(a), Some(b)) => {
                let sum = a + b;
                Action::Reply(result(
                    id,
                    json!({"content": [{"type": "text", "text": format!("{sum}")}], "structuredContent": {"sum": sum}}),
                ))
            }
            _ => Action::Reply(error(id, -32602, "`a` and `b` must be numbers")),
        },
        "fail" => Action::Reply(result(
            id,
            json!({"content": [{"type": "text", "text": text_arg("reason").unwrap_or_else(|| "it failed, as asked".into())}], "isError": true}),
        )),
        "sleep" => {
            let ms = args
                .get("ms")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(60_000);
            Action::ReplyAfter(Duration::from_millis(ms), text(format!("slept {ms} ms")))
        }
        "whoami" => Action::Reply(text(whoami())),
        "huge" => {
            let bytes = args
                .get("bytes")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(64 << 20);
            Action::Reply(text("x".repeat(bytes as usize)))
        }
        "hang" => Action::Hang,
        "crash" => Action::Crash,
        "garbage" => Action::Raw("this is not json {".to_owned()),
        other => Action::Reply(error(id, -32602, &format!("unknown tool `{other}`"))),
    }
}

fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

fn error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, params: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    }

    #[test]
    fn answers_the_handshake_and_lists_tools() {
        let server = McpServer::default();
        let Action::Reply(reply) = server.handle(
            &request("initialize", json!({"protocolVersion": "2025-11-25"})),
            String::new,
        ) else {
            panic!()
        };
        assert_eq!(reply["id"], 7);
        assert_eq!(reply["result"]["protocolVersion"], "2025-11-25");
        let Action::Reply(old) = server.handle(
            &request("initialize", json!({"protocolVersion": "1999-01-01"})),
            String::new,
        ) else {
            panic!()
        };
        assert_eq!(old["result"]["protocolVersion"], PROTOCOL_VERSIONS[0]);
        assert_eq!(
            server.handle(
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                String::new
            ),
            Action::Nothing
        );
        let Action::Reply(list) = server.handle(&request("tools/list", json!({})), String::new)
        else {
            panic!()
        };
        assert_eq!(list["result"]["tools"].as_array().unwrap().len(), 10);
        let bogus = McpServer::new(McpFaults {
            bogus_tools: true,
            ..McpFaults::default()
        });
        assert_eq!(bogus.tools().len(), 12);
    }

    #[test]
    fn tools_answer_and_misbehave_as_documented() {
        let server = McpServer::default();
        let call = |name: &str, args: Value| {
            server.handle(
                &request("tools/call", json!({"name": name, "arguments": args})),
                || "HOME=/x".to_owned(),
            )
        };
        let Action::Reply(echo) = call("echo", json!({"text": "hi"})) else {
            panic!()
        };
        assert_eq!(echo["result"]["content"][0]["text"], "echo: hi");
        let Action::Reply(sum) = call("add", json!({"a": 2, "b": 3.5})) else {
            panic!()
        };
        assert_eq!(sum["result"]["structuredContent"]["sum"], 5.5);
        let Action::Reply(fail) = call("fail", json!({})) else {
            panic!()
        };
        assert_eq!(fail["result"]["isError"], true);
        let Action::Reply(who) = call("whoami", json!({})) else {
            panic!()
        };
        assert_eq!(who["result"]["content"][0]["text"], "HOME=/x");
        let Action::Reply(bad) = call("echo", json!({})) else {
            panic!()
        };
        assert_eq!(bad["error"]["code"], -32602);
        assert!(
            matches!(call("sleep", json!({"ms": 5})), Action::ReplyAfter(d, _) if d == Duration::from_millis(5))
        );
        assert_eq!(call("hang", json!({})), Action::Hang);
        assert_eq!(call("crash", json!({})), Action::Crash);
        assert!(matches!(call("garbage", json!({})), Action::Raw(_)));
        let Action::Reply(huge) = call("huge", json!({"bytes": 10})) else {
            panic!()
        };
        assert_eq!(huge["result"]["content"][0]["text"], "xxxxxxxxxx");
        let hanging = McpServer::new(McpFaults {
            hang_initialize: true,
            ..McpFaults::default()
        });
        assert_eq!(
            hanging.handle(&request("initialize", json!({})), String::new),
            Action::Hang
        );
    }
}
