//! `agent mock FILE`: serve an agent's scenarios on loopback, for any Realtime client.
//!
//! The same scripted server that backs `--offline`, left running so another program (or
//! `agent run FILE --url ...`) can connect to it. It listens on 127.0.0.1 only.
//!
//! Every scenario is served, one per connection in file order (the first connection plays the
//! first scenario, the second the second, starting over after the last), or only the one
//! `--scenario NAME` picks. The fault flags break the server on purpose, to see how a client
//! copes; they apply to every connection, or only to the connections `--fault-connection`
//! names (counted from 0 for each scenario).
//!
//! `--twilio` or `--platform` with `--serve-url` serve the fake phone network too, for an
//! `agent serve` started separately (see [`super::mock_phone`]); the phone network plays one
//! scenario (`--scenario`, or the first), made a phone call (the agent greets first).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use agent_testkit::{
    scenario::Scenario,
    server::{ConnectionFaults, DialectMode, Faults, PlaylistServer, ScriptScope, ServerConfig},
};
use anyhow::Context;

/// Arguments of `agent mock`.
#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// The agent file whose scenarios (NAME.scenarios.toml beside it) are served.
    pub file: PathBuf,
    /// Serve only this scenario, on every connection (default: all, one per connection).
    #[arg(long)]
    pub scenario: Option<String>,
    /// Port on 127.0.0.1 (default: a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Speak the beta dialect to every client (by default only to clients that ask for it).
    #[arg(long)]
    pub beta: bool,
    /// Serve a fake Twilio too (signed voice webhooks, media streams, the REST API) for the
    /// `agent serve` at --serve-url; shares $TWILIO_AUTH_TOKEN with it.
    #[arg(long, requires = "serve_url", conflicts_with = "platform")]
    pub twilio: bool,
    /// Serve a fake OpenAI platform too (signed SIP webhooks, call control, the sideband) for
    /// the `agent serve` at --serve-url; shares $OPENAI_WEBHOOK_SECRET with it. Its REST base
    /// also mints client secrets (POST /v1/realtime/client_secrets) and answers WebRTC offers
    /// (POST /v1/realtime/calls), for a browser page or a server that relays one.
    #[arg(long, requires = "serve_url")]
    pub platform: bool,
    /// With --twilio or --platform: the `public_base_url` of the `agent serve` to call, on
    /// this machine (e.g. http://127.0.0.1:8080).
    #[arg(long, value_name = "URL")]
    pub serve_url: Option<String>,
    /// With --twilio: the number incoming calls are to (one of serve.toml's `numbers`).
    #[arg(long, value_name = "+NUMBER", default_value = super::mock_phone::DEFAULT_NUMBER, requires = "twilio")]
    pub number: String,
    /// With --platform: the SIP user incoming calls are to (one of serve.toml's `sip_users`).
    #[arg(
        long,
        value_name = "USER",
        default_value = "support",
        requires = "platform"
    )]
    pub sip_user: String,
    /// What the server gets wrong on purpose.
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// The scripted server's fault knobs (`agent_testkit::server::ConnectionFaults`). Frame counts
/// include every frame the server sent on the connection: 1 is right after `session.created`.
#[derive(Debug, Default, clap::Args)]
#[command(next_help_heading = "Faults")]
pub struct FaultArgs {
    /// End the TCP connection without a close frame after N frames.
    #[arg(long, value_name = "N")]
    pub drop_after: Option<usize>,
    /// Reset the TCP connection (RST) after N frames.
    #[arg(long, value_name = "N")]
    pub reset_after: Option<usize>,
    /// Send a close frame after N frames, with `--close-code` (default 1011).
    #[arg(long, value_name = "N")]
    pub close_after: Option<usize>,
    /// The close code for `--close-after` (1008 or 3000 end a session for good).
    #[arg(
        long,
        value_name = "CODE",
        default_value_t = 1011,
        requires = "close_after"
    )]
    pub close_code: u16,
    /// Send nothing more after N frames (pings are still answered).
    #[arg(long, value_name = "N")]
    pub stall_after: Option<usize>,
    /// After N frames, hold back the events of the active (or next) response forever, while
    /// still answering other requests.
    #[arg(long, value_name = "N")]
    pub stall_stream_after: Option<usize>,
    /// Drop the connection whenever a `response.create` arrives.
    #[arg(long)]
    pub drop_on_response_create: bool,
    /// Answer every client event but `session.update` with `session_expired`, and close.
    #[arg(long)]
    pub session_expired_on_request: bool,
    /// Send a frame that is not JSON after N frames (repeatable).
    #[arg(long, value_name = "N")]
    pub malformed_after: Vec<usize>,
    /// Add unknown fields to every event and unknown events between them.
    #[arg(long)]
    pub noise: bool,
    /// Answer every response with a call of this tool, forever (a model stuck in a loop).
    #[arg(long, value_name = "TOOL")]
    pub tool_loop: Option<String>,
    /// Pause this long before every frame.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub delay_ms: u64,
    /// Apply the faults only to these connections of each scenario, counted from 0
    /// (repeatable; default: every connection).
    #[arg(long, value_name = "INDEX")]
    pub fault_connection: Vec<usize>,
}

impl FaultArgs {
    /// The knobs as the testkit takes them.
    pub fn faults(&self) -> Faults {
        let mut one = ConnectionFaults::new().delay(Duration::from_millis(self.delay_ms));
        one.drop_after = self.drop_after;
        one.reset_after = self.reset_after;
        if let Some(n) = self.close_after {
            one = one.close_after(n, self.close_code, "agent mock --close-after");
        }
        one.stall_after = self.stall_after;
        one.stall_stream_after = self.stall_stream_after;
        one.drop_on_response_create = self.drop_on_response_create;
        one.session_expired_on_request = self.session_expired_on_request;
        one.malformed_after.clone_from(&self.malformed_after);
        one.noise = self.noise;
        one.tool_loop.clone_from(&self.tool_loop);
        if self.fault_connection.is_empty() {
            return Faults::none().on_every_connection(one);
        }
        self.fault_connection
            .iter()
            .fold(Faults::none(), |faults, &index| {
                faults.on_connection(index, one.clone())
            })
    }
}

/// Serves until Ctrl-C.
pub fn run(args: MockArgs) -> anyhow::Result<ExitCode> {
    if args.twilio || args.platform {
        return phone(args);
    }
    let scenarios = super::run::load_scenarios(&args.file, args.scenario.as_deref())?;
    let faults = args.faults.faults();
    let dialect = if args.beta {
        DialectMode::Beta
    } else {
        DialectMode::Auto
    };
    let configs: Vec<ServerConfig> = scenarios
        .iter()
        .map(|scenario| {
            ServerConfig::new(scenario.clone())
                .port(args.port)
                // Each client gets its conversation from the start.
                .script_scope(ScriptScope::PerConnection)
                .dialect(dialect)
                .faults(faults.clone())
        })
        .collect();
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let server = PlaylistServer::start(configs, args.port)
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
        crate::output::outln!("{}", server.url());
        crate::output::errln!(
            "{}\nconnect with: agent run {} --url {}\nCtrl-C to stop.",
            describe(&scenarios),
            args.file.display(),
            server.url()
        );
        tokio::signal::ctrl_c().await?;
        for violation in server.violations() {
            crate::output::errln!("client mistake: {violation}");
        }
        server.shutdown().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `--twilio` / `--platform`: the scripted model plays one scenario made a phone call, and
/// the fake phone network calls the server at `--serve-url`.
fn phone(args: MockArgs) -> anyhow::Result<ExitCode> {
    let agent = super::load_agent(&args.file)?;
    let scenarios = super::run::load_scenarios(&args.file, args.scenario.as_deref())?;
    let phone = agent.spec().phone.clone().unwrap_or_default();
    let scenario = super::call::script::phone_scenario(&scenarios[0], &phone, agent.name());
    let server = ServerConfig::new(scenario.clone())
        .script_scope(ScriptScope::PerConnection)
        .dialect(if args.beta {
            DialectMode::Beta
        } else {
            DialectMode::Auto
        })
        .faults(args.faults.faults());
    let network = if args.twilio {
        super::mock_phone::Network::Twilio {
            number: &args.number,
        }
    } else {
        super::mock_phone::Network::Platform {
            sip_user: &args.sip_user,
        }
    };
    let serve_url = args.serve_url.as_deref().unwrap_or_default();
    let file = args.file.display().to_string();
    let runtime = super::runtime()?;
    runtime.block_on(super::mock_phone::run(
        network, serve_url, server, &scenario, &file, args.port,
    ))?;
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(ExitCode::SUCCESS)
}

/// What is served, in order.
fn describe(scenarios: &[Scenario]) -> String {
    if let [only] = scenarios {
        return format!(
            "serving scenario `{}` ({} turn(s)) on every connection",
            only.name,
            only.turns.len()
        );
    }
    let mut text = format!(
        "serving {} scenarios, one per connection, in this order (then again from the first):",
        scenarios.len()
    );
    for (i, scenario) in scenarios.iter().enumerate() {
        text.push_str(&format!(
            "\n  {}. `{}` ({} turn(s))",
            i + 1,
            scenario.name,
            scenario.turns.len()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        faults: FaultArgs,
    }

    fn faults(args: &[&str]) -> Faults {
        let mut full = vec!["mock"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full)
            .expect("valid flags")
            .faults
            .faults()
    }

    #[test]
    fn no_flags_means_no_faults() {
        assert_eq!(faults(&[]).for_connection(0), &ConnectionFaults::new());
    }

    #[test]
    fn flags_set_the_knobs_of_every_connection() {
        let all = faults(&[
            "--stall-after",
            "3",
            "--drop-on-response-create",
            "--malformed-after",
            "2",
            "--malformed-after",
            "5",
            "--close-after",
            "4",
            "--close-code",
            "1008",
        ]);
        let one = all.for_connection(7);
        assert_eq!(one.stall_after, Some(3));
        assert!(one.drop_on_response_create);
        assert_eq!(one.malformed_after, [2, 5]);
        assert_eq!(
            one.close_after.as_ref().map(|(n, c)| (*n, c.code)),
            Some((4, 1008))
        );
    }

    #[test]
    fn fault_connection_limits_the_faults_to_those_connections() {
        let some = faults(&["--session-expired-on-request", "--fault-connection", "0"]);
        assert!(some.for_connection(0).session_expired_on_request);
        assert!(!some.for_connection(1).session_expired_on_request);
    }

    #[test]
    fn a_close_code_needs_a_close_position() {
        assert!(Cli::try_parse_from(["mock", "--close-code", "1008"]).is_err());
    }
}
