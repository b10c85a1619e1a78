//! Starting the server: agents loaded and checked, secrets read, the socket bound; then the
//! accept loop and the drain.
//!
//! The accept loop is hyper-util's HTTP/1 connection with a header-read timeout, so a client
//! that opens a connection and sends nothing (or a byte a minute) holds only its own socket
//! until the deadline, never a worker.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use agent_core::{
    agent::{Agent, AgentFile, AgentKind, ConnectOverrides, DEFAULT_API_KEY_ENV},
    session::{Secret, WireObserver, transport::is_loopback_url},
    tool::ToolRegistry,
};
use axum::{body::Body, http::Request};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Mutex};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt as _;

use crate::{
    browser::BrowserState,
    call_history::{CallHistory, RETENTION_SWEEP},
    capacity::Capacity,
    config::ServeConfig,
    error::ServeError,
    metrics::Metrics,
    platform::Platform,
    rate_limit::{ClientAddr, RateLimiter},
    sip::{SipState, seen::SeenIds, signature::WebhookSecret},
    spend::SpendLedger,
    state::AppState,
    twilio::{rest::TwilioRest, tokens::StreamTokens},
};

/// What the command line adds to `serve.toml`.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--url`: the Realtime WebSocket every call connects to.
    pub realtime_url: Option<String>,
    /// `--api-base`: OpenAI's REST base.
    pub api_base: Option<String>,
    /// How long running calls may go on after a shutdown was asked for.
    pub drain_timeout: Option<Duration>,
}

/// The secrets the server holds, read by the embedding program: [`Secrets::from_env`] reads
/// them from the variables `serve.toml`'s `[secrets]` names.
#[derive(Debug, Default)]
pub struct Secrets {
    /// Twilio's auth token, needed when a route answers Twilio calls.
    pub twilio_auth_token: Option<Secret>,
    /// The platform's webhook secret (`whsec_...`), needed when a route answers SIP users.
    pub openai_webhook_secret: Option<Secret>,
    /// The API key for the platform's call-control REST API (SIP calls); a REST base on this
    /// machine (a test platform) needs none.
    pub openai_api_key: Option<Secret>,
    /// The operator's token for the browser endpoints, when `[browser] operator_token_env`
    /// names one.
    pub operator_token: Option<Secret>,
}

impl Secrets {
    /// Reads each secret the configuration needs from its environment variable.
    pub fn from_env(config: &ServeConfig) -> Result<Secrets, ServeError> {
        let read = |variable: &str| {
            std::env::var(variable)
                .ok()
                .filter(|value| !value.trim().is_empty())
                .map(Secret::new)
        };
        let mut secrets = Secrets::default();
        if answers_twilio(config) {
            secrets.twilio_auth_token = read(&config.secrets.twilio_auth_token_env);
            if secrets.twilio_auth_token.is_none() {
                return Err(missing_twilio_token(config));
            }
        }
        if answers_sip(config) {
            secrets.openai_webhook_secret = read(&config.secrets.openai_webhook_secret_env);
            if secrets.openai_webhook_secret.is_none() {
                return Err(missing_webhook_secret(config));
            }
            secrets.openai_api_key = read(&config.secrets.openai_api_key_env);
        }
        if config.browser.any() {
            secrets.openai_api_key = read(&config.secrets.openai_api_key_env);
        }
        // The operator's token guards the browser endpoints and the approvals API.
        if let Some(variable) = &config.browser.operator_token_env {
            secrets.operator_token = read(variable);
            if secrets.operator_token.is_none() {
                return Err(ServeError::MissingSecret {
                    variable: variable.clone(),
                    key: "browser.operator_token_env",
                    why: "the browser endpoints and the approvals API require this token from every client; export it, or remove the key",
                });
            }
        }
        Ok(secrets)
    }
}

fn answers_sip(config: &ServeConfig) -> bool {
    config.routes.iter().any(|r| !r.sip_users.is_empty())
}

fn missing_webhook_secret(config: &ServeConfig) -> ServeError {
    ServeError::MissingSecret {
        variable: config.secrets.openai_webhook_secret_env.clone(),
        key: "openai_webhook_secret_env",
        why: "the server checks every OpenAI webhook's signature with it; export the project's webhook signing secret (whsec_...)",
    }
}

/// The OpenAI REST base when neither serve.toml nor `--api-base` sets one.
pub const DEFAULT_API_BASE: &str = "https://api.openai.com";

/// The SIP path's state, when a route answers SIP users: the webhook secret checked, the
/// platform's client built (with the key, which only a REST base on this machine may lack).
fn sip_state(config: &ServeConfig, secrets: &Secrets) -> Result<Option<SipState>, ServeError> {
    if !answers_sip(config) {
        return Ok(None);
    }
    let variable = &config.secrets.openai_webhook_secret_env;
    let text = secrets
        .openai_webhook_secret
        .as_ref()
        .ok_or_else(|| missing_webhook_secret(config))?;
    // Its key part alone is as secret as the whole `whsec_` string: scrubbed from output too.
    agent_core::redact::register_secret(text.expose().trim().trim_start_matches("whsec_"));
    let secret =
        WebhookSecret::parse(text.expose()).map_err(|source| ServeError::BadWebhookSecret {
            variable: variable.clone(),
            source,
        })?;
    let api_base = config.api_base.as_deref().unwrap_or(DEFAULT_API_BASE);
    if secrets.openai_api_key.is_none() && !is_loopback_url(api_base) {
        return Err(ServeError::MissingSecret {
            variable: config.secrets.openai_api_key_env.clone(),
            key: "openai_api_key_env",
            why: "SIP calls are accepted, transferred and hung up through the OpenAI API with it",
        });
    }
    let platform = Platform::new(api_base, secrets.openai_api_key.clone())
        .map_err(|err| ServeError::HttpClient(err.to_string()))?;
    Ok(Some(SipState {
        secret,
        seen: SeenIds::default(),
        platform,
    }))
}

/// The browser endpoints' state, when `[browser]` turns one on: the platform's client with
/// the server's key (which only a REST base on this machine may lack).
fn browser_state(
    config: &ServeConfig,
    secrets: &Secrets,
) -> Result<Option<BrowserState>, ServeError> {
    if !config.browser.any() {
        return Ok(None);
    }
    let api_base = config.api_base.as_deref().unwrap_or(DEFAULT_API_BASE);
    if secrets.openai_api_key.is_none() && !is_loopback_url(api_base) {
        return Err(ServeError::MissingSecret {
            variable: config.secrets.openai_api_key_env.clone(),
            key: "openai_api_key_env",
            why: "browser calls are created and client secrets minted through the OpenAI API with it",
        });
    }
    let platform = Platform::new(api_base, secrets.openai_api_key.clone())
        .map_err(|err| ServeError::HttpClient(err.to_string()))?;
    // The console this server serves is a page of `public_base_url`: its own origin is
    // allowed, as if listed in `[browser] allowed_origins`.
    let mut browser = config.browser.clone();
    if let Some(own) = crate::config::origin_of(&config.public_base_url)
        && !browser.allowed_origins.contains(&own)
    {
        browser.allowed_origins.push(own);
    }
    Ok(Some(BrowserState::new(browser, platform)))
}

fn answers_twilio(config: &ServeConfig) -> bool {
    config
        .routes
        .iter()
        .any(|r| !r.numbers.is_empty() || r.path.is_some())
}

fn missing_twilio_token(config: &ServeConfig) -> ServeError {
    ServeError::MissingSecret {
        variable: config.secrets.twilio_auth_token_env.clone(),
        key: "twilio_auth_token_env",
        why: "the server checks every Twilio request's signature with it; export it (Twilio console → Account → Auth Token)",
    }
}

/// How often expired stream tokens are dropped.
const TOKEN_SWEEP: Duration = Duration::from_millis(250);

/// The default time calls get to finish when the server shuts down.
pub const DEFAULT_DRAIN: Duration = Duration::from_secs(30);

/// A bound server, ready to run.
pub struct Server {
    state: Arc<AppState>,
    listener: TcpListener,
    admin: Option<TcpListener>,
    drain: Duration,
}

impl Server {
    /// Loads every route's agent (tools resolved against `registry`, MCP servers started),
    /// reads the secrets and binds the listen address. Every check that can fail does so here,
    /// before any call is taken.
    pub async fn bind(
        config: ServeConfig,
        registry: &ToolRegistry,
        secrets: Secrets,
        options: ServeOptions,
    ) -> Result<Server, ServeError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Self::with_listener(config, registry, secrets, options, listener).await
    }

    /// Like [`Server::bind`], on a listener the caller bound (e.g. on port 0, to learn the
    /// port before writing `public_base_url`).
    pub async fn with_listener(
        mut config: ServeConfig,
        registry: &ToolRegistry,
        secrets: Secrets,
        options: ServeOptions,
        listener: TcpListener,
    ) -> Result<Server, ServeError> {
        if let Some(url) = &options.realtime_url {
            if !url.starts_with("ws://") && !url.starts_with("wss://") {
                return Err(ServeError::BadRealtimeUrl {
                    url: agent_core::redact::redact_url(url),
                });
            }
            config.realtime_url = Some(url.clone());
        }
        if let Some(base) = &options.api_base {
            config.api_base = Some(base.trim_end_matches('/').to_owned());
        }
        let url = config.realtime_url.clone();
        let overrides = ConnectOverrides {
            key_optional: url.as_deref().is_some_and(is_loopback_url),
            url,
            send_key: false,
        };
        if answers_twilio(&config) && secrets.twilio_auth_token.is_none() {
            return Err(missing_twilio_token(&config));
        }
        let sip = sip_state(&config, &secrets)?;
        let browser = browser_state(&config, &secrets)?;
        let admin = match config.admin_listen {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| ServeError::Bind { addr, source })?,
            ),
            None => None,
        };
        let (agents, mcp) = load_agents(&config, registry, &overrides).await?;
        if secrets.operator_token.is_none() {
            for agent in &agents {
                let policy = agent.approval_policy();
                if !policy.tools.is_empty() {
                    let mut tools: Vec<&String> = policy.tools.iter().collect();
                    tools.sort();
                    tracing::warn!(
                        agent = agent.name(),
                        "calls to {tools:?} wait for a person's approval, but no operator token is set ([browser] operator_token_env), so nobody can answer: each is denied after {} s",
                        policy.timeout.as_secs_f64()
                    );
                }
            }
        }
        let history = CallHistory::open(&config.history, &config.node)?;
        let twilio_rest = match &secrets.twilio_auth_token {
            Some(token) => Some(Arc::new(TwilioRest::new(
                &config.twilio_api_base,
                token.clone(),
            )?)),
            None => None,
        };
        let limits = config.limits;
        let state = AppState {
            capacity: Capacity::new(config.max_calls),
            tokens: StreamTokens::new(config.limits.stream_token_ttl),
            spend: SpendLedger::new(config.routes.len()),
            agents,
            mcp: Mutex::new(mcp),
            overrides,
            twilio_auth_token: secrets.twilio_auth_token,
            calls: TaskTracker::new(),
            hang_up: CancellationToken::new(),
            sip,
            browser,
            metrics: Metrics::for_node(&config.node),
            rate_limiter: RateLimiter::new(
                limits.webhook_requests_per_minute,
                limits.webhook_burst,
            ),
            history,
            twilio_rest,
            session_observer: Default::default(),
            approvals: Default::default(),
            operator_token: secrets.operator_token.clone(),
            config,
        };
        Ok(Server {
            state: Arc::new(state),
            listener,
            admin,
            drain: options.drain_timeout.unwrap_or(DEFAULT_DRAIN),
        })
    }

    /// The address it listens on (with the port the system picked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The admin listener's address (`/metrics`), when `[admin]` sets one.
    pub fn admin_addr(&self) -> Option<std::io::Result<SocketAddr>> {
        self.admin.as_ref().map(TcpListener::local_addr)
    }

    /// Lets `observer` see the wire of every call's session (frames both ways, usage and the
    /// session summary), e.g. to print a call's transcript; `false` when one was set before.
    pub fn observe_sessions(&self, observer: Arc<dyn WireObserver>) -> bool {
        self.state.session_observer.set(observer)
    }

    /// The shared state, to watch calls and capacity.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then drains: no new calls, `/readyz` says so,
    /// running calls get the drain time to finish and are then hung up; the history is
    /// flushed before this returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            state,
            listener,
            admin,
            drain,
        } = self;
        let router = crate::router::router(state.clone());
        let header_timeout = state.config.limits.request_timeout;
        let stop_admin = CancellationToken::new();
        let admin_task = admin.map(|admin| {
            let router = crate::router::admin_router(state.clone());
            let stop = stop_admin.clone();
            tokio::spawn(async move {
                accept_loop(admin, router, header_timeout, stop.cancelled(), || {}).await;
            })
        });
        tokio::pin!(shutdown);
        let sweeper = state.history.clone().map(|history| {
            tokio::spawn(async move {
                let mut sweep = tokio::time::interval(RETENTION_SWEEP);
                loop {
                    sweep.tick().await;
                    history.apply_retention().await;
                    history.prune_shared(crate::sip::seen::REMEMBERED).await;
                }
            })
        });
        // With a shared store, the calls of nodes that died go on here.
        let stop_takeovers = CancellationToken::new();
        let takeovers = tokio::spawn(crate::takeover::watch(
            state.clone(),
            stop_takeovers.clone(),
        ));
        // Expired stream tokens give their call slots back even when no request comes.
        let prune = || state.tokens.prune(std::time::Instant::now());
        // Requests are still answered while draining: `/readyz` says 503 and new calls are
        // refused as busy, rather than meeting a closed port.
        let drained = async {
            (&mut shutdown).await;
            drain_calls(&state, drain).await;
        };
        accept_loop(listener, router, header_timeout, drained, prune).await;
        if let Some(sweeper) = sweeper {
            sweeper.abort();
        }
        stop_takeovers.cancel();
        let _ = takeovers.await;
        stop_admin.cancel();
        if let Some(task) = admin_task {
            let _ = task.await;
        }
    }
}

/// Accepts connections until `stop` completes, serving each on its own task with `router`;
/// `tick` runs every [`TOKEN_SWEEP`].
async fn accept_loop(
    listener: TcpListener,
    router: axum::Router,
    header_timeout: Duration,
    stop: impl Future<Output = ()>,
    tick: impl Fn(),
) {
    tokio::pin!(stop);
    let mut sweep = tokio::time::interval(TOKEN_SWEEP);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = sweep.tick() => {
                tick();
                continue;
            }
            () = &mut stop => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!("accepting a connection failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Media streams write small frames that are late if they wait: with Nagle on, the
        // agent's audio and marks waited for the caller's next frame to ACK the previous write
        // (agent-bench §9 measured 18.7 ms at p50 from audio delta in to Twilio frame out).
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone().map_request(
            move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ClientAddr(peer));
                request
            },
        ));
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(err) = connection.await {
                tracing::debug!("connection ended: {err}");
            }
        });
    }
}

/// Refuses new calls, waits up to `drain` for running ones, then hangs up the rest.
async fn drain_calls(state: &AppState, drain: Duration) {
    state.capacity.start_draining();
    state.calls.close();
    let running = state.calls.len();
    if running > 0 {
        tracing::info!("draining: waiting up to {drain:?} for {running} call(s)");
    }
    if tokio::time::timeout(drain, state.calls.wait())
        .await
        .is_err()
    {
        tracing::warn!("drain time over: hanging up {} call(s)", state.calls.len());
        state.hang_up.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), state.calls.wait()).await;
    }
    for clients in state.mcp.lock().await.drain(..) {
        clients.shutdown().await;
    }
    if let Some(history) = &state.history {
        history.flush().await;
    }
}

/// Checks what `agent serve` would check of `config` before listening, without listening or
/// reading secrets: every route's agent file loads and resolves (its MCP servers are started
/// to learn their tools, then stopped), can answer a call, and fits the `[browser]` switches.
/// Returns the agents, in route order.
pub async fn check_routes(
    config: &ServeConfig,
    registry: &ToolRegistry,
) -> Result<Vec<Agent>, ServeError> {
    // No key is read here: `agent serve` reports a missing one when it starts.
    let overrides = ConnectOverrides {
        key_optional: true,
        url: config.realtime_url.clone(),
        send_key: false,
    };
    let (agents, mcp) = load_agents(config, registry, &overrides).await?;
    for clients in mcp {
        clients.shutdown().await;
    }
    Ok(agents)
}

/// Each route's agent, resolved and checked to be able to start a phone session.
async fn load_agents(
    config: &ServeConfig,
    registry: &ToolRegistry,
    overrides: &ConnectOverrides,
) -> Result<(Vec<Agent>, Vec<agent_core::mcp::McpClients>), ServeError> {
    let mut agents = Vec::with_capacity(config.routes.len());
    let mut mcp = Vec::new();
    for route in &config.routes {
        let path = route.agent_path.clone();
        let agent_error = |source| ServeError::Agent {
            path: path.clone(),
            source,
        };
        let mut agent = AgentFile::load(&path)
            .and_then(|file| file.resolve(registry))
            .map_err(agent_error)?;
        if agent.spec().kind == AgentKind::Transcription {
            return Err(ServeError::AgentCannotAnswer {
                path,
                why: "a transcription agent never answers, so it cannot take calls; route a realtime agent".into(),
            });
        }
        // The server's [secrets] decide where the key comes from, unless the agent file
        // names a variable of its own.
        if agent.file.spec.connection.api_key_env == DEFAULT_API_KEY_ENV {
            agent.file.spec.connection.api_key_env = config.secrets.openai_api_key_env.clone();
        }
        mcp.push(agent.connect_mcp().await.map_err(agent_error)?);
        if route.browser && config.browser.client_secrets && !config.browser.attach {
            let tools = agent.tools.names();
            if !tools.is_empty() {
                return Err(ServeError::AgentCannotAnswer {
                    path,
                    why: format!(
                        "its server-side tools ({}) would never run on a call a page makes with a client secret, because [browser] attach = false; set attach = true (the page posts its call id to /agents/{{name}}/calls/{{call_id}}/attach), or route an agent without tools",
                        tools.join(", ")
                    ),
                });
            }
        }
        // A missing key or an insecure URL fails now, not on the first call.
        agent
            .session_config(overrides, None)
            .map_err(|source| ServeError::Connect {
                path: path.clone(),
                source,
            })?;
        agents.push(agent);
    }
    Ok((agents, mcp))
}
