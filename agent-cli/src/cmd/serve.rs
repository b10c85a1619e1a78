//! `agent serve`: answer phone calls with the agents `serve.toml` routes to (agent-server).

use std::{path::PathBuf, process::ExitCode, time::Duration};

use agent_server::{Secrets, ServeConfig, ServeOptions, Server};
use anyhow::{Context, bail};

/// Arguments of `agent serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The server's configuration: listen address, public URL, routes, limits, secrets.
    #[arg(long, default_value = "serve.toml", value_name = "FILE")]
    pub config: PathBuf,
    /// Connect every call's session to this Realtime-compatible WebSocket instead of the
    /// agent files' (e.g. `agent mock`'s); a URL on this machine gets no API key.
    #[arg(long)]
    pub url: Option<String>,
    /// OpenAI's REST base (default https://api.openai.com), for SIP call control: accept,
    /// reject, refer and hang-up (e.g. a fake platform on this machine).
    #[arg(long, value_name = "URL")]
    pub api_base: Option<String>,
    /// Twilio's REST base (default: serve.toml's `[twilio] api_base`, else
    /// https://api.twilio.com), for hang-ups and transfers (e.g. `agent mock --twilio`'s).
    #[arg(long, value_name = "URL")]
    pub twilio_api_base: Option<String>,
    /// Seconds running calls get to finish after Ctrl-C or SIGTERM before they are hung up.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub drain_secs: f64,
}

/// Serves until Ctrl-C or SIGTERM, then drains. The log (and the trace export) starts once
/// serve.toml is read, with its node's name.
pub fn run(args: ServeArgs, logging: crate::Logging) -> anyhow::Result<ExitCode> {
    if !(args.drain_secs.is_finite() && args.drain_secs >= 0.0) {
        bail!("--drain-secs must be a number of seconds, 0 or more");
    }
    let mut config = ServeConfig::load(&args.config)?;
    let _logging = logging.init(Some(&config.node));
    if let Some(base) = args.twilio_api_base {
        let base = base.trim_end_matches('/');
        let parsed = url::Url::parse(base).ok();
        if !parsed.is_some_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some()) {
            bail!("--twilio-api-base {base} is not an http:// or https:// URL");
        }
        if !base.starts_with("https://") && !agent_core::session::transport::is_loopback_url(base) {
            bail!(
                "--twilio-api-base {base}: the auth token is only sent over https:// (or to a server on this machine)"
            );
        }
        config.twilio_api_base = base.to_owned();
    }
    let secrets = Secrets::from_env(&config)?;
    let registry = agent_tools::registry()?;
    let options = ServeOptions {
        realtime_url: args.url,
        api_base: args.api_base,
        drain_timeout: Some(Duration::from_secs_f64(args.drain_secs)),
    };
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let server = Server::bind(config, &registry, secrets, options).await?;
        let addr = server
            .local_addr()
            .context("cannot read the listening address")?;
        crate::output::outln!("agent serve: listening on http://{addr}");
        server.run(shutdown_signal()).await;
        crate::output::status("agent serve: stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or SIGTERM where there is one (how process managers stop a server).
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
