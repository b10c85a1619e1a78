//! `agent`: run, test, check and inspect Realtime voice agents defined in TOML files.
//!
//! Only this crate knows about the terminal. Everything it does is a thin layer over
//! `agent-core` (wire, tools, runtime), `agent-tools` (built-in tools), `agent-server` (`agent
//! serve`, `agent call`) and `agent-testkit` (the scripted server behind `--offline` and `agent test`).
//!
//! It is a library with one public function, [`main`], so that a program of yours can be the
//! `agent` command with your own tools in it. Tools register through `inventory` when they are
//! linked, so a binary that links your tool crates and calls [`main`] lists them in `agent
//! tools` and runs them in `agent run`, `agent test` and `agent mock`, beside the built-ins:
//!
//! ```ignore
//! // src/main.rs of your binary crate; `my_tools` is your crate of `#[tool]` functions.
//! use my_tools as _; // links the crate even though nothing in it is called by name
//!
//! fn main() {
//!     agent_cli::main()
//! }
//! ```
//!
//! The `use my_tools as _;` matters: a dependency that the code never names is not linked, and
//! its tools would silently be missing. `agent new tool NAME` writes such a binary for you.

#[macro_use]
mod output;
#[cfg(feature = "audio-device")]
mod audio_device;
mod audio_io;
mod cmd;
mod console;
mod conversation;
mod persist;
mod summary;
mod telemetry;
mod terminal;
mod transcript;
mod voice;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Declarative function-calling voice agents on the OpenAI Realtime API.
#[derive(Debug, Parser)]
#[command(
    name = "agent",
    version,
    about,
    long_about = None,
    after_help = "Environment: RUST_LOG (the log's level), and for traces (README, Observability): \
OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT exports the session spans \
(call, turn, response, tool call) over OTLP/HTTP; OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS, \
OTEL_EXPORTER_OTLP_TIMEOUT and OTEL_RESOURCE_ATTRIBUTES apply, OTEL_SDK_DISABLED=true turns it off."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More output: warnings and per-response cost (-v), and the library's log at info (-v)
    /// or debug (-vv) level. RUST_LOG overrides the log level.
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// How the library's log lines look on stderr: `text` for people, `json` (one object a
    /// line, with a timestamp) for log collectors, e.g. under `agent serve`.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

/// See [`Cli::log_format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an agent: live against the Realtime API, or `--offline` against the scripted server.
    Run(cmd::run::RunArgs),
    /// Run every scenario of an agent against the scripted server and check its expectations.
    Test(cmd::test::TestArgs),
    /// Validate an agent file and print the `session.update` it would send.
    Check(cmd::check::CheckArgs),
    /// Print the JSON Schema of agent files, for editor completion.
    Schema,
    /// Answer phone calls (Twilio Media Streams, OpenAI SIP) with the agents serve.toml
    /// routes to.
    Serve(cmd::serve::ServeArgs),
    /// Call an agent: `--offline` simulates the whole phone path through `agent serve` and
    /// prints the transcript; `--to +1...` places a real call through Twilio.
    Call(cmd::call::CallArgs),
    /// The web console for one agent on this machine: talk to it from a browser, see its
    /// transcript, tool calls, cost and events; `--offline` needs no account.
    Console(cmd::web_console::ConsoleArgs),
    /// Serve an agent's scenarios on 127.0.0.1 for any Realtime client (`agent run --url`);
    /// with --twilio or --platform, the fake phone network for `agent serve` too.
    Mock(cmd::mock::MockArgs),
    /// Serve a small MCP server (stdio, or HTTP on 127.0.0.1) to try `[[mcp_clients]]` with.
    #[command(name = "mock-mcp")]
    MockMcp(cmd::mock_mcp::MockMcpArgs),
    /// List every registered tool (or an agent's, MCP servers' included) with its description
    /// and exact JSON schema.
    Tools(cmd::tools::ToolsArgs),
    /// Stored conversations: `agent history list`, `show ID`, `export ID`, `import FILE`.
    History(cmd::history::HistoryArgs),
    /// Read trace files: `agent trace summarize FILE.jsonl`, `agent trace to-scenario FILE.jsonl`.
    Trace(cmd::trace::TraceArgs),
    /// Print a shell completion script: `agent completions bash|zsh|fish`.
    Completions(cmd::completions::CompletionsArgs),
    /// Start something new: `agent new tool NAME` (a tool crate and a binary with it in),
    /// `agent new agent NAME` (an agent file and its scenarios).
    New(cmd::new::NewArgs),
}

/// Runs the `agent` command line with the process's arguments, then exits the process with the
/// command's status: 0 when it succeeded, 1 on a failure (the reason is on stderr), 130 after
/// Ctrl-C. Every `#[tool]` linked into the program is available to the commands.
pub fn main() -> ! {
    let code = run();
    std::process::exit(exit_status(code))
}

fn run() -> ExitCode {
    let cli = Cli::parse();
    let logging = Logging {
        verbose: cli.verbose,
        format: cli.log_format,
    };
    // `agent serve` starts its log once serve.toml has named the node (its traces carry it).
    let _logging = (!matches!(cli.command, Command::Serve(_))).then(|| logging.init(None));
    let verbose = cli.verbose > 0;
    let result = match cli.command {
        Command::Run(args) => cmd::run::run(args, verbose),
        Command::Test(args) => cmd::test::run(args, verbose),
        Command::Check(args) => cmd::check::run(args),
        Command::Schema => cmd::schema::run(),
        Command::Serve(args) => cmd::serve::run(args, logging),
        Command::Call(args) => cmd::call::run(args),
        Command::Console(args) => cmd::web_console::run(args),
        Command::Mock(args) => cmd::mock::run(args),
        Command::MockMcp(args) => cmd::mock_mcp::run(args),
        Command::Tools(args) => cmd::tools::run(args),
        Command::History(args) => cmd::history::run(args),
        Command::Trace(args) => cmd::trace::run(args),
        Command::Completions(args) => {
            cmd::completions::run(args, <Cli as clap::CommandFactory>::command())
        }
        Command::New(args) => cmd::new::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            output::failure(&err);
            ExitCode::FAILURE
        }
    }
}

/// The number behind an [`ExitCode`], which std keeps opaque (and `ExitCode::exit_process` is
/// unstable); the commands only use `0..=255`, so one of them matches.
fn exit_status(code: ExitCode) -> i32 {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .map_or(1, i32::from)
}

/// How the library's log is shown, from the global flags (see [`Logging::init`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Logging {
    verbose: u8,
    format: LogFormat,
}

/// Keeps the trace exporter, if there is one, until the command ends; then the last spans
/// leave, within [`telemetry::SHUTDOWN_WAIT`].
pub(crate) struct LoggingGuard(Option<telemetry::Telemetry>);

impl Drop for LoggingGuard {
    fn drop(&mut self) {
        if let Some(telemetry) = self.0.take() {
            telemetry.shutdown();
        }
    }
}

impl Logging {
    /// Sends the library's `tracing` output (retries, history and trace write errors) to
    /// stderr: warnings and errors by default, more with `-v`/`-vv`, or whatever `RUST_LOG`
    /// says. Either format goes through the same scrubbing writer, so no secret reaches a log
    /// collector. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set, the session spans are exported
    /// over OTLP too (see [`telemetry`]); `node` is `agent serve`'s node name.
    pub(crate) fn init(self, node: Option<&str>) -> LoggingGuard {
        use tracing_subscriber::{
            Layer as _, Registry, filter::FilterExt as _, layer::SubscriberExt as _,
            util::SubscriberInitExt as _,
        };
        let default = match self.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        };
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
            // The session spans are for the trace exporter: log lines stay as they were.
            .and(tracing_subscriber::filter::filter_fn(|meta| {
                meta.target() != agent_core::session::spans::TARGET
            }));
        let fmt = tracing_subscriber::fmt::layer().with_writer(output::ScrubbedStderr);
        let fmt = match self.format {
            LogFormat::Text => fmt
                .with_target(false)
                .without_time()
                .with_filter(filter)
                .boxed(),
            // Collectors want the time, the level, the module and the span's fields as keys.
            LogFormat::Json => {
                output::set_json_logs();
                fmt.json()
                    .with_current_span(true)
                    .with_filter(filter)
                    .boxed()
            }
        };
        let (telemetry, otlp, refused) = match telemetry::Telemetry::from_env::<Registry>(node) {
            Ok(Some((telemetry, layer))) => (Some(telemetry), Some(layer.boxed()), None),
            Ok(None) => (None, None, None),
            Err(why) => (None, None, Some(why)),
        };
        let layers: Vec<_> = [Some(fmt), otlp].into_iter().flatten().collect();
        let _ = tracing_subscriber::registry().with(layers).try_init();
        if let Some(why) = refused {
            tracing::warn!("traces are not exported (OTEL_EXPORTER_OTLP_ENDPOINT is set): {why}");
        }
        LoggingGuard(telemetry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_keep_their_number() {
        assert_eq!(exit_status(ExitCode::SUCCESS), 0);
        assert_eq!(exit_status(ExitCode::FAILURE), 1);
        assert_eq!(exit_status(ExitCode::from(terminal::INTERRUPTED)), 130);
    }
}
