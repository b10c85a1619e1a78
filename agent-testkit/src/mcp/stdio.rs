//! The MCP test server on standard input and output: one JSON-RPC message a line.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    sync::Mutex,
};

use super::{Action, McpServer};

/// Serves `server` on this process's stdin and stdout until stdin closes; returns the exit
/// status the process should end with. `crash` and `exit_at_start` end the process
/// themselves, as a crashing server would.
pub async fn serve_stdio(server: McpServer) -> std::io::Result<i32> {
    if let Some(status) = server.faults.exit_at_start {
        eprintln!("agent-testkit MCP server: exiting at start with status {status}, as asked");
        std::process::exit(status);
    }
    serve(server, tokio::io::stdin(), tokio::io::stdout()).await?;
    Ok(0)
}

/// Serves `server` on any reader and writer (the process's stdio in [`serve_stdio`]).
async fn serve<R, W>(server: McpServer, input: R, output: W) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let output = Arc::new(Mutex::new(output));
    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let message: Value = match serde_json::from_str(&line) {
            Ok(message) => message,
            Err(err) => {
                let reply = json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("parse error: {err}")}});
                write_line(&output, &reply.to_string()).await?;
                continue;
            }
        };
        match server.handle(&message, environment) {
            Action::Reply(reply) => write_line(&output, &reply.to_string()).await?,
            Action::ReplyAfter(delay, reply) => {
                let output = Arc::clone(&output);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = write_line(&output, &reply.to_string()).await;
                });
            }
            Action::Raw(text) => write_line(&output, &text).await?,
            Action::Crash => {
                eprintln!("agent-testkit MCP server: crashing mid-call, as asked");
                std::process::exit(3);
            }
            Action::Hang | Action::Nothing => {}
        }
    }
    Ok(())
}

async fn write_line<W: AsyncWrite + Unpin>(output: &Mutex<W>, line: &str) -> std::io::Result<()> {
    let mut output = output.lock().await;
    output.write_all(line.as_bytes()).await?;
    output.write_all(b"\n").await?;
    output.flush().await
}

/// What `whoami` answers over stdio: the environment the server was started with.
fn environment() -> String {
    let mut variables: Vec<String> = std::env::vars()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    variables.sort();
    variables.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_lines_and_answers_bad_json_with_a_parse_error() {
        let (client, server_side) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server_side);
        let task = tokio::spawn(serve(McpServer::default(), server_read, server_write));
        let (client_read, mut client_write) = tokio::io::split(client);
        let mut replies = BufReader::new(client_read).lines();
        client_write
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\nnot json\n\n")
            .await
            .unwrap();
        let ping: Value =
            serde_json::from_str(&replies.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(ping, json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
        let parse: Value =
            serde_json::from_str(&replies.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(parse["error"]["code"], -32700);
        client_write
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":\"garbage\"}}\n")
            .await
            .unwrap();
        assert_eq!(
            replies.next_line().await.unwrap().unwrap(),
            "this is not json {"
        );
        // Both halves share the stream: the server sees the end of input once both are gone.
        drop(client_write);
        drop(replies);
        task.await.unwrap().unwrap();
    }
}
