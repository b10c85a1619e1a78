//! `agent console FILE`: the web console for one agent, on this machine, in one command.
//!
//! It runs `agent serve` from a `serve.toml` made in memory: one route with `browser = true`,
//! both browser endpoints on (relayed calls and client secrets), on 127.0.0.1 only, so the
//! console's own origin is the only one allowed. It prints the page's address and serves until
//! Ctrl-C.
//!
//! - Live (the default): calls go to the Realtime API with `OPENAI_API_KEY`, which stays in
//!   this process; the page never sees it. Conversations are stored like `agent run`'s.
//! - `--offline`: the fake OpenAI platform of agent-testkit takes the calls and its scripted
//!   model plays one of the agent's scenarios (NAME.scenarios.toml beside the file), one
//!   scripted turn each time the microphone hears the user. The tools run for real on the
//!   server. Its WebRTC media peer is built only with `--features webrtc-mock`; without it,
//!   Connect shows the platform's 501, which says how to rebuild.
//!
//! Every secret of an offline run is generated for the run and never printed.

use std::{net::SocketAddr, path::Path, process::ExitCode, time::Duration};

use agent_core::agent::Agent;
use agent_server::{Secrets, ServeConfig, ServeOptions, Server};
use agent_testkit::{
    Scenario,
    platform::{FakePlatform, WEBRTC_MEDIA},
};
use anyhow::{Context, bail};
use tokio::net::TcpListener;

use super::call::offline;

/// Arguments of `agent console`.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// The agent file the console calls.
    pub file: std::path::PathBuf,
    /// No account: a fake OpenAI platform on 127.0.0.1 takes the browser's call and plays the
    /// agent's scenario (NAME.scenarios.toml beside the file); the tools run for real. Needs a
    /// build with `--features webrtc-mock` for the call's audio and events.
    #[arg(long)]
    pub offline: bool,
    /// With --offline: play the scenario with this name (default: the file's first).
    #[arg(long, requires = "offline")]
    pub scenario: Option<String>,
    /// Where to listen: an address on this machine (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Open the page in the desktop's browser (xdg-open, or open on macOS) once it is served.
    #[arg(long)]
    pub open: bool,
}

/// Serves the console until Ctrl-C or SIGTERM.
pub fn run(args: ConsoleArgs) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        bail!(
            "--listen {}: `agent console` serves this machine only (127.0.0.1 or ::1); to serve browsers elsewhere, run `agent serve` with a [browser] section, allowed origins and an operator token",
            args.listen
        );
    }
    let agent = super::load_agent(&args.file)?;
    let scenario = if args.offline {
        Some(super::run::load_scenarios(&args.file, args.scenario.as_deref())?.remove(0))
    } else {
        None
    };
    let runtime = super::runtime()?;
    let result = runtime.block_on(serve(&agent, &args, scenario));
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

async fn serve(
    agent: &Agent,
    args: &ConsoleArgs,
    scenario: Option<Scenario>,
) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let offline = scenario.is_some();
    let config = serve_config(&args.file, addr, offline)?;
    let (secrets, options, platform) = match scenario {
        Some(scenario) => {
            let (platform, secrets) = offline::fake_platform(scenario)?;
            let options = offline::fake_platform_options(&platform);
            (secrets, options, Some(platform))
        }
        None => {
            let secrets = Secrets::from_env(&config)?;
            if secrets.openai_api_key.is_none() {
                bail!(
                    "OPENAI_API_KEY is not set: the console's calls spend it (it stays in this process). Export it, or try `agent console {} --offline`",
                    args.file.display()
                );
            }
            (secrets, ServeOptions::default(), None)
        }
    };
    let registry = agent_tools::registry()?;
    let server = Server::with_listener(config, &registry, secrets, options, listener).await?;
    crate::output::outln!("http://{addr}/agents/{}", agent.name());
    crate::output::errln!("{}", banner(agent, addr, platform.as_ref(), &args.file));
    if args.open {
        open_in_browser(&format!("http://{addr}/agents/{}", agent.name()));
    }
    server.run(super::serve::shutdown_signal()).await;
    if let Some(platform) = platform {
        for violation in platform.sideband().violations().await {
            crate::output::errln!("protocol mistake seen by the scripted model: {violation}");
        }
        platform.shutdown().await;
    }
    crate::output::status("agent console: stopped");
    Ok(ExitCode::SUCCESS)
}

/// A `serve.toml` for the console, made in memory: `agent_file` reachable by browsers only,
/// on `addr`, whose origin (as `127.0.0.1` and as `localhost`) is the only one allowed.
fn serve_config(agent_file: &Path, addr: SocketAddr, offline: bool) -> anyhow::Result<ServeConfig> {
    let agent_file = std::path::absolute(agent_file)
        .with_context(|| format!("cannot resolve {}", agent_file.display()))?;
    let agent = toml::Value::String(agent_file.display().to_string());
    let port = addr.port();
    // An offline conversation is a demo: it is not stored in the user's history.
    let history = if offline {
        "[history]\nstore = false\n"
    } else {
        ""
    };
    let text = format!(
        "listen = \"{addr}\"\npublic_base_url = \"http://{addr}\"\n\n[browser]\ncalls = true\nclient_secrets = true\nallowed_origins = [\"http://localhost:{port}\"]\n\n{history}\n[[route]]\nagent = {agent}\nbrowser = true\n"
    );
    let path = agent_file.with_file_name("agent-console.serve.toml");
    Ok(ServeConfig::parse(path, &text)?)
}

/// Hands `url` to the desktop's opener; a machine without one (a server, CI) says so and the
/// console runs on.
fn open_in_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        // Reaped on its own thread: openers return at once, and the console must not wait.
        Ok(mut child) => {
            std::thread::spawn(move || {
                let _ = child.wait();
            });
        }
        Err(err) => {
            crate::output::errln!(
                "agent console: cannot run {opener} ({err}); open {url} yourself"
            );
        }
    }
}

/// What the user reads on stderr once the console is up.
fn banner(agent: &Agent, addr: SocketAddr, platform: Option<&FakePlatform>, file: &Path) -> String {
    let page = format!("http://{addr}/agents/{}", agent.name());
    let Some(platform) = platform else {
        return format!(
            "agent console: open {page} (the agents: http://{addr}/), Connect, and allow the microphone.\n\
             Calls go to the Realtime API with your key; tools run here. Ctrl-C to stop."
        );
    };
    let mut text = format!(
        "agent console, offline: open {page}, Connect, and allow the microphone.\n\
         A fake OpenAI platform ({}) plays the scenario; each time you speak (any sound), the scripted model takes its next turn. The tools run here, for real. Ctrl-C to stop.",
        platform.api_base()
    );
    if !WEBRTC_MEDIA {
        text.push_str(&format!(
            "\nThis build has no WebRTC media peer, so Connect will show the platform's 501. Rebuild with it:\n\
             \x20 cargo run --release --features webrtc-mock -- console {} --offline",
            file.display()
        ));
    }
    text
}
