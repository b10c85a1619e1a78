//! `agent mock-mcp`: the MCP test server of agent-testkit, for trying `[[mcp_clients]]` without
//! a real server, and for the tests of the stdio transport.
//!
//! By default it speaks MCP on stdin and stdout, as an agent file's `command` would start it;
//! with `--http` it listens on 127.0.0.1 and prints its URL. Its tools and fault knobs are
//! documented in `agent_testkit::mcp`.

use std::process::ExitCode;

use agent_testkit::mcp::{McpFaults, McpHttpServer, McpServer};
use anyhow::{Context, bail};

/// Arguments of `agent mock-mcp`.
#[derive(Debug, clap::Args)]
pub struct MockMcpArgs {
    /// Serve streamable HTTP on 127.0.0.1 (prints the URL) instead of stdin and stdout.
    #[arg(long)]
    pub http: bool,
    /// With --http: the port (default: a free one).
    #[arg(long, default_value_t = 0, requires = "http")]
    pub port: u16,
    /// Fault: never answer `initialize`.
    #[arg(long)]
    pub hang_initialize: bool,
    /// Fault (stdio): exit with this status at once, saying so on stderr.
    #[arg(long, value_name = "STATUS", conflicts_with = "http")]
    pub exit_at_start: Option<i32>,
    /// Fault: also list tools no Realtime client can offer (a 70-character name, a schema
    /// that is not an object).
    #[arg(long)]
    pub bogus_tools: bool,
    /// With --http: refuse requests whose header NAME is not the value of the environment
    /// variable VAR (answering 401 and echoing what was sent, as careless servers do).
    #[arg(long, value_name = "NAME=VAR", requires = "http")]
    pub require_header: Option<String>,
}

/// Serves until stdin closes (stdio), or until Ctrl-C or the `crash` tool (HTTP).
pub fn run(args: MockMcpArgs) -> anyhow::Result<ExitCode> {
    let require_header = match &args.require_header {
        None => None,
        Some(spec) => {
            let Some((name, variable)) = spec.split_once('=') else {
                bail!("--require-header takes NAME=VAR, e.g. Authorization=MCP_TOKEN");
            };
            let value = std::env::var(variable)
                .with_context(|| format!("--require-header: `{variable}` is not set"))?;
            agent_core::redact::register_secret(&value);
            Some((name.to_owned(), value))
        }
    };
    let server = McpServer::new(McpFaults {
        hang_initialize: args.hang_initialize,
        exit_at_start: args.exit_at_start,
        bogus_tools: args.bogus_tools,
        require_header,
    });
    let runtime = super::runtime()?;
    let status = runtime.block_on(async {
        if !args.http {
            return agent_testkit::mcp::serve_stdio(server)
                .await
                .context("serving MCP on stdin and stdout");
        }
        let http = McpHttpServer::start(server, args.port)
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
        crate::output::outln!("{}", http.url());
        crate::output::errln!(
            "serving the MCP test server at {}; Ctrl-C to stop.",
            http.url()
        );
        tokio::select! {
            result = tokio::signal::ctrl_c() => result?,
            () = http.stopped() => crate::output::errln!("the server crashed, as asked"),
        }
        http.shutdown().await;
        anyhow::Ok(0)
    })?;
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(1)))
}
