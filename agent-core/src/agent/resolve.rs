//! From a checked agent file to what a session needs: its tools, its `session.update`, and how
//! to connect.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use super::{
    diagnostic::{AgentError, Diagnostic},
    handoffs::HandoffTarget,
    load::AgentFile,
    spec::{
        AgentKind, AgentSpec, AudioFormatName, AuthScheme, DEFAULT_URL, DialectName, Eagerness,
        MaxTokens, Modality, NoiseReduction, TurnDetectionSpec,
    },
};
use crate::{
    cost::{CostSettings, PriceError, PriceTable},
    protocol::{self, AudioFormat, Dialect, Session, ToolChoice, ToolDefinition, TurnDetection},
    session::{
        ConnectOptions, ReconnectPolicy, Secret, SessionConfig, WireObserver,
        handoff::{Team, TeamAgent, transfer_definition},
        transport,
    },
    tool::{EnvTemplate, HttpTool, McpToolSpec, ToolConfig, ToolRegistry},
};

/// An agent whose tools all resolved: ready to run.
#[derive(Clone)]
pub struct Agent {
    /// The checked file.
    pub file: AgentFile,
    /// Exactly the tools this agent may call (with its MCP servers' tools once
    /// [`Agent::connect_mcp`] ran).
    pub tools: Arc<ToolRegistry>,
    /// Whether [`Agent::connect_mcp`] added the `[[mcp_clients]]` tools.
    pub(crate) mcp_attached: bool,
    /// The agents this one may hand the conversation to (`handoffs`), in file order.
    pub handoffs: Vec<HandoffTarget>,
    /// Every other agent reachable by handoffs, by name, each with its own `handoffs` (and
    /// no members of its own): what a session needs to switch to any of them.
    pub members: Arc<BTreeMap<String, Agent>>,
    /// Its guardrails, compiled once when the file loaded; `None` without any.
    pub(crate) guardrails: Option<Arc<crate::guardrail::Guardrails>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("name", &self.file.spec.name)
            .field("path", &self.file.path)
            .field("tools", &self.tools.names())
            .field("handoffs", &self.handoffs)
            .finish()
    }
}

/// How to reach the server, beyond what the agent file says.
#[derive(Debug, Clone, Default)]
pub struct ConnectOverrides {
    /// Use this URL instead of the file's (`--url`, or the offline server's).
    pub url: Option<String>,
    /// Connect without an API key when none is set (loopback servers, `--offline`).
    pub key_optional: bool,
    /// Send the key (and `[connection.headers]`) to an override URL on this machine too
    /// (`--send-key`). Without it a test server on loopback never receives them: they belong
    /// to the endpoint the agent file names.
    pub send_key: bool,
}

/// Why an agent cannot connect as configured.
#[derive(Debug, thiserror::Error)]
pub enum ConnectConfigError {
    /// The price table named by `price_table` (or `--prices`) cannot be used.
    #[error(transparent)]
    Prices(#[from] PriceError),
    /// The API key's variable is not set.
    #[error(
        "the environment variable `{variable}` with the API key is not set; export it, or run with --offline to use the built-in scripted server"
    )]
    MissingApiKey {
        /// The variable's name.
        variable: String,
    },
    /// An MCP server's declaration cannot be sent (e.g. a `${VAR}` in its headers is not set).
    #[error("{0}")]
    Mcp(String),
    /// The agent declares `[[mcp_clients]]` whose tools were never connected.
    #[error(
        "the agent declares MCP servers ({servers}) that are not connected: call Agent::connect_mcp before starting a session, and keep what it returns while the session runs"
    )]
    McpNotConnected {
        /// The servers' names.
        servers: String,
    },
    /// `ws://` to another machine without `allow_insecure`.
    #[error(
        "{url} is ws:// to another machine: the API key and the conversation would travel unencrypted; use wss://, or set allow_insecure = true under [connection] if the network is trusted"
    )]
    Insecure {
        /// The URL, credentials removed.
        url: String,
    },
    /// A `${VAR}` in a connection header is malformed or not set.
    #[error("connection header `{header}`: {problem}")]
    HeaderTemplate {
        /// The header's name.
        header: String,
        /// What is wrong (names the variable, never a value).
        problem: String,
    },
}

impl AgentFile {
    /// Resolves every tool name against `registry` and builds the agent's own tool set. Unknown
    /// names come with the closest registered names.
    pub fn resolve(self, registry: &ToolRegistry) -> Result<Agent, AgentError> {
        let (agent, problems) = self.resolve_collecting(registry);
        if problems.is_empty() {
            Ok(agent)
        } else {
            Err(AgentError::Invalid(problems))
        }
    }

    /// Resolves as far as possible: the agent with the tools that resolved, its handoff
    /// targets, and every problem.
    pub(super) fn resolve_collecting(self, registry: &ToolRegistry) -> (Agent, Vec<Diagnostic>) {
        let (agent, mut problems) = self.resolve_own(registry);
        let (agent, team) = super::handoffs::attach_team(agent, registry);
        problems.extend(team);
        (agent, problems)
    }

    /// Resolves this file's own tools and settings, not its handoff targets.
    pub(super) fn resolve_own(self, registry: &ToolRegistry) -> (Agent, Vec<Diagnostic>) {
        let mut problems: Vec<Diagnostic> = Vec::new();
        let mut tools = ToolRegistry::new();
        for name in &self.spec.tools {
            let tool_name = name.get_ref();
            match registry.get(tool_name) {
                Some(tool) => {
                    if let Err(err) = tools.register(tool, "the agent file's `tools`") {
                        problems.push(self.diagnostic(name.span(), err.to_string(), None));
                    }
                }
                None => {
                    let near = registry.suggest(tool_name);
                    let hint = if near.is_empty() {
                        format!(
                            "registered tools: {}; `agent tools` lists them with their schemas",
                            registry.names().join(", ")
                        )
                    } else {
                        format!(
                            "did you mean {}? `agent tools` lists every registered tool",
                            near.iter()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        )
                    };
                    problems.push(self.diagnostic(
                        name.span(),
                        format!("unknown tool `{tool_name}`"),
                        Some(hint),
                    ));
                }
            }
        }
        for http in &self.spec.http_tools {
            register_header_secrets(http.headers.values());
            let result = HttpTool::new(http.clone())
                .map_err(|err| err.to_string())
                .and_then(|tool| {
                    tools
                        .register(Arc::new(tool), "the agent file's `http_tools`")
                        .map_err(|err| err.to_string())
                });
            if let Err(message) = result {
                problems.push(self.diagnostic_at_key(
                    "http_tools",
                    format!("HTTP tool `{}`: {message}", http.name),
                    Some("fix the tool's declaration".to_owned()),
                ));
            }
        }
        for mcp in &self.spec.mcp_servers {
            register_header_secrets(mcp.headers.values());
            // A token is a secret even when written into the file as is.
            if let Some(token) = &mcp.authorization
                && let Ok(template) = EnvTemplate::parse(token)
                && let Ok(expanded) = template.expand()
            {
                crate::redact::register_secret(&expanded);
            }
            if let Err(message) = mcp.validate().and_then(|()| match mcp.missing_env_vars() {
                missing if missing.is_empty() => Ok(()),
                missing => Err(format!(
                    "MCP server `{}` needs environment variable(s) {} that are not set",
                    mcp.server_label,
                    missing.join(", ")
                )),
            }) {
                problems.push(self.diagnostic_at_key(
                    "mcp_servers",
                    message,
                    Some("fix the MCP server's declaration".to_owned()),
                ));
            }
        }
        problems.extend(crate::mcp::check_declarations(&self));
        self.check_choice(&tools, &mut problems);
        self.check_needs_approval(&tools, &mut problems);
        let guardrails = self.check_guardrails(&mut problems);
        problems.extend(self.check_tool_config(&tools, registry));
        let agent = Agent {
            file: self,
            tools: Arc::new(tools),
            mcp_attached: false,
            handoffs: Vec::new(),
            members: Arc::default(),
            guardrails,
        };
        (agent, problems)
    }

    /// Every tool `[tool_options] needs_approval` and `background` name is one of the
    /// agent's (an MCP server's tool is checked once the servers are connected).
    fn check_needs_approval(&self, tools: &ToolRegistry, problems: &mut Vec<Diagnostic>) {
        if !self.spec.mcp_clients.is_empty() {
            return;
        }
        let options = &self.spec.tool_options;
        let named = [
            ("needs_approval", &options.needs_approval),
            ("background", &options.background),
        ];
        for (key, names) in named {
            for name in names {
                if tools.get(name.get_ref()).is_some() {
                    continue;
                }
                let suggestions = tools.suggest(name.get_ref());
                let hint = match suggestions.first() {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("this agent's tools are: {}", tools.names().join(", ")),
                };
                problems.push(self.diagnostic(
                    name.span(),
                    format!(
                        "`{key}` names `{}`, which is not one of this agent's tools",
                        name.get_ref()
                    ),
                    Some(hint),
                ));
            }
        }
    }

    /// Compiles the guardrails, once: every declaration compiles (patterns, registered Rust
    /// names), and spoken input can be checked: input guardrails need transcripts, and
    /// blocking mode needs turn detection that does not answer by itself.
    fn check_guardrails(
        &self,
        problems: &mut Vec<Diagnostic>,
    ) -> Option<Arc<crate::guardrail::Guardrails>> {
        let spec = &self.spec.guardrails;
        let compiled = crate::guardrail::Guardrails::compile_reporting(spec, |err| {
            problems.push(self.diagnostic_at_key(
                "guardrails",
                err.to_string(),
                Some("fix the guardrail's declaration under [guardrails]".to_owned()),
            ));
        })
        .map(Arc::new);
        if spec.input.is_empty() || self.spec.kind != AgentKind::Realtime {
            return compiled;
        }
        if self.spec.transcription.is_none() {
            problems.push(self.diagnostic_at_key(
                "guardrails",
                "input guardrails check transcripts of what the user says, but this agent has no [transcription]",
                Some("add [transcription] with a model, e.g. model = \"gpt-4o-mini-transcribe\"".into()),
            ));
        }
        let answers_itself = match &self.spec.turn_detection {
            TurnDetectionSpec::ServerVad {
                create_response, ..
            }
            | TurnDetectionSpec::SemanticVad {
                create_response, ..
            } => *create_response == Some(true),
            TurnDetectionSpec::None => false,
        };
        if spec.input_mode == super::spec::InputGuardMode::Blocking && answers_itself {
            problems.push(self.diagnostic_at_key(
                "create_response",
                "create_response = true lets the server answer before the input guardrails ran (input_mode = \"blocking\")",
                Some("remove create_response, or set input_mode = \"parallel\" under [guardrails]".into()),
            ));
        }
        compiled
    }

    fn check_choice(&self, tools: &ToolRegistry, problems: &mut Vec<Diagnostic>) {
        let choice = &self.spec.tool_options.choice;
        let name = choice.get_ref().as_str();
        if matches!(name, "auto" | "none" | "required") || tools.get(name).is_some() {
            return;
        }
        if !self.spec.mcp_clients.is_empty() {
            // It may name an MCP tool: checked when the servers are connected.
            return;
        }
        problems.push(self.diagnostic(
            choice.span(),
            format!("tool choice `{name}` is neither a mode nor one of this agent's tools"),
            Some(format!(
                "use auto, none, required, or one of: {}",
                tools.names().join(", ")
            )),
        ));
    }
}

impl Agent {
    /// The agent file's contents.
    pub fn spec(&self) -> &AgentSpec {
        &self.file.spec
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.file.spec.name
    }

    /// The dialect this agent speaks.
    pub fn dialect(&self) -> Dialect {
        match self.file.spec.connection.dialect {
            DialectName::Ga => Dialect::Ga,
            DialectName::Beta => Dialect::Beta,
        }
    }

    /// The session object `session.update` carries for this agent, for display: secrets in
    /// MCP server headers stay as their `${VAR}` templates.
    pub fn session(&self) -> Session {
        self.build_session(false)
            .unwrap_or_else(|_| Session::realtime())
    }

    /// The session object as sent, with `${VAR}`s in MCP headers expanded. The result holds
    /// secrets: send it, never log it.
    pub fn wire_session(&self) -> Result<Session, ConnectConfigError> {
        self.build_session(true)
    }

    fn build_session(&self, expand_secrets: bool) -> Result<Session, ConnectConfigError> {
        let spec = &self.file.spec;
        let mut session = match spec.kind {
            AgentKind::Realtime => Session::realtime(),
            AgentKind::Transcription => Session::transcription(),
        };
        {
            let input = session.audio_input_mut();
            input.format = Some(audio_format(spec.audio.input_format));
            input.noise_reduction = spec
                .audio
                .noise_reduction
                .map(|n| protocol::NoiseReduction::new(noise_reduction(n)));
            input.transcription = spec
                .transcription
                .as_ref()
                .map(|t| protocol::Transcription {
                    model: Some(t.model.clone()),
                    language: t.language.clone(),
                    prompt: t.prompt.clone(),
                    ..protocol::Transcription::default()
                });
            input.turn_detection = Some(turn_detection(&spec.turn_detection));
            // Blocking input guardrails: the answer is asked for once the transcript passed.
            if spec.guardrails.input_mode == super::spec::InputGuardMode::Blocking
                && !spec.guardrails.input.is_empty()
                && spec.kind == AgentKind::Realtime
            {
                match &mut input.turn_detection {
                    Some(TurnDetection::ServerVad(vad)) => vad.create_response = Some(false),
                    Some(TurnDetection::SemanticVad(vad)) => vad.create_response = Some(false),
                    _ => {}
                }
            }
        }
        if spec.kind == AgentKind::Transcription {
            return Ok(session);
        }
        session.model = Some(spec.model.clone());
        session.instructions = self.file.instructions.clone();
        session.output_modalities = Some(
            spec.output_modalities
                .iter()
                .map(|m| match m {
                    Modality::Text => protocol::Modality::Text,
                    Modality::Audio => protocol::Modality::Audio,
                })
                .collect(),
        );
        {
            let output = session.audio_output_mut();
            output.format = Some(audio_format(spec.audio.output_format));
            output.voice = spec.voice.as_ref().map(|v| v.get_ref().as_str().into());
            output.speed = spec.audio.speed;
        }
        let strict = spec.tool_options.strict;
        let mut tools: Vec<ToolDefinition> = self
            .tools
            .iter()
            .map(|tool| {
                ToolDefinition::function(
                    tool.name(),
                    tool.description(),
                    tool.parameters(strict).clone(),
                )
            })
            .collect();
        for mcp in &spec.mcp_servers {
            tools.push(mcp_definition(mcp, expand_secrets)?);
        }
        for target in &self.handoffs {
            tools.push(transfer_definition(
                &target.name,
                target.description.as_deref(),
            ));
        }
        session.tools = Some(tools);
        session.tool_choice = Some(match spec.tool_options.choice.get_ref().as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            name => ToolChoice::Function {
                name: name.to_owned(),
            },
        });
        session.max_output_tokens = spec.max_output_tokens.map(|m| match m {
            MaxTokens::Limit(n) => protocol::MaxTokens::Limited(n),
            MaxTokens::Inf(_) => protocol::MaxTokens::Inf,
        });
        Ok(session)
    }

    /// How to connect: URL, key and headers, with `${VAR}`s expanded. The key is read from the
    /// environment here and kept in a [`Secret`].
    pub fn connect_options(
        &self,
        overrides: &ConnectOverrides,
    ) -> Result<ConnectOptions, ConnectConfigError> {
        let conn = &self.file.spec.connection;
        let url = overrides
            .url
            .clone()
            .or_else(|| conn.url.as_ref().map(|u| u.get_ref().clone()))
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        if transport::is_insecure_remote(&url) && !conn.allow_insecure {
            return Err(ConnectConfigError::Insecure {
                url: crate::redact::redact_url(&url),
            });
        }
        // Credentials go where the agent file points; a loopback URL given instead (a test
        // server) gets them only when asked.
        let test_server =
            overrides.url.is_some() && transport::is_loopback_url(&url) && !overrides.send_key;
        let send_credentials = !test_server;
        let api_key = match conn.auth {
            AuthScheme::None => None,
            AuthScheme::Bearer | AuthScheme::Header if !send_credentials => None,
            AuthScheme::Bearer | AuthScheme::Header => {
                let key = std::env::var(&conn.api_key_env)
                    .ok()
                    .filter(|key| !key.trim().is_empty())
                    .map(Secret::new);
                if key.is_none() && !overrides.key_optional {
                    return Err(ConnectConfigError::MissingApiKey {
                        variable: conn.api_key_env.clone(),
                    });
                }
                key
            }
        };
        let api_key_header = match conn.auth {
            AuthScheme::Header => conn.auth_header.clone(),
            AuthScheme::Bearer | AuthScheme::None => None,
        };
        let mut headers = Vec::with_capacity(conn.headers.len());
        for (name, template) in conn.headers.iter().filter(|_| send_credentials) {
            let header_error = |problem: String| ConnectConfigError::HeaderTemplate {
                header: name.clone(),
                problem,
            };
            let value = EnvTemplate::parse(template)
                .map_err(|err| header_error(err.to_string()))?
                .expand()
                .map_err(|err| header_error(err.to_string()))?;
            headers.push((name.clone(), Secret::new(value)));
        }
        Ok(ConnectOptions {
            url,
            model: self.file.spec.model.clone(),
            dialect: self.dialect(),
            api_key,
            api_key_header,
            headers,
            connect_timeout: secs(self.file.spec.timeouts.connect_secs),
            max_message_bytes: crate::session::transport::DEFAULT_MAX_MESSAGE_BYTES,
        })
    }

    /// What the agent file says to its tools: each `[tool_config.NAME]` table under the key
    /// `NAME` (read with `ToolContext::setting`), and the data directory.
    pub fn tool_config(&self) -> ToolConfig {
        let mut config = ToolConfig::new();
        for (name, table) in &self.file.spec.tool_config {
            match serde_json::to_value(table) {
                Ok(value) => config.set(name.clone(), value),
                Err(err) => tracing::warn!("tool_config.{name} is not representable: {err}"),
            }
        }
        if let Some(dir) = self.data_dir() {
            config = config.with_data_dir(dir);
        }
        config
    }

    /// `data_dir` from the agent file, relative to the file.
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        let dir = self.file.spec.data_dir.as_ref()?;
        let base = self.file.path.parent().unwrap_or(std::path::Path::new("."));
        Some(base.join(dir))
    }

    /// When to roll over to a fresh session: `max_session_minutes`, or 55 minutes, a little
    /// under the server's 60-minute limit.
    pub fn max_session_age(&self) -> Duration {
        let minutes = self.file.spec.limits.max_session_minutes.unwrap_or(55.0);
        Duration::from_secs_f64(minutes * 60.0)
    }

    /// Everything [`crate::session::Session::start`] needs.
    pub fn session_config(
        &self,
        overrides: &ConnectOverrides,
        observer: Option<Arc<dyn WireObserver>>,
    ) -> Result<SessionConfig, ConnectConfigError> {
        let timeouts = &self.file.spec.timeouts;
        let connection = &self.file.spec.connection;
        if !self.mcp_attached && !self.file.spec.mcp_clients.is_empty() {
            return Err(ConnectConfigError::McpNotConnected {
                servers: self
                    .file
                    .spec
                    .mcp_clients
                    .iter()
                    .map(|s| format!("`{}`", s.name()))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(SessionConfig {
            agent: self.name().to_owned(),
            connect: self.connect_options(overrides)?,
            session: self.wire_session()?,
            tools: self.tools.clone(),
            tool_config: Arc::new(self.tool_config()),
            tool_timeout: secs(self.file.spec.tool_options.timeout_secs),
            ready_timeout: secs(timeouts.session_ready_secs),
            reconnect: ReconnectPolicy {
                max_attempts: connection.max_reconnect_attempts,
                base_delay: secs(connection.reconnect_delay_secs),
                max_delay: secs(connection.reconnect_max_delay_secs),
                window: secs(connection.reconnect_window_secs),
                ..ReconnectPolicy::default()
            },
            max_session_age: self.max_session_age(),
            history: Vec::new(),
            history_sink: None,
            compaction: self.file.spec.limits.replay_keep_turns.map(|keep| {
                crate::session::compact::Compaction {
                    keep_turns: keep as usize,
                }
            }),
            observer,
            cost: Some(self.cost_settings()?),
            playback: crate::audio::PlaybackClock::default(),
            deadlines: crate::session::ResponseDeadlines {
                response_idle: secs(timeouts.response_idle_secs),
                cancel_wait: secs(timeouts.cancel_secs),
            },
            keepalive: crate::session::Keepalive {
                ping_every: secs(timeouts.ping_secs),
                dead_after: secs(timeouts.dead_after_secs),
            },
            max_tool_rounds: self
                .file
                .spec
                .limits
                .max_tool_rounds
                .unwrap_or(super::spec::DEFAULT_MAX_TOOL_ROUNDS),
            event_buffer: crate::session::EventBuffer::default(),
            prior_calls: Vec::new(),
            taken_over: false,
            ownership: crate::session::Ownership::default(),
            approval: self.approval_policy(),
            approver: None,
            team: self.team()?,
            guardrails: self.guardrails.clone(),
            slow_tools: self.slow_tools(),
            platform_ids: crate::session::PlatformIds::default(),
        })
    }

    /// The handoff team a session of this agent switches between: this agent and every
    /// member, each as the session takes it; `None` without handoffs.
    pub fn team(&self) -> Result<Option<Arc<Team>>, ConnectConfigError> {
        if self.handoffs.is_empty() {
            return Ok(None);
        }
        let mut agents = vec![self.team_agent()?];
        for member in self.members.values() {
            agents.push(member.team_agent()?);
        }
        Ok(Some(Arc::new(Team::new(agents))))
    }

    fn team_agent(&self) -> Result<TeamAgent, ConnectConfigError> {
        let session = self.wire_session()?;
        Ok(TeamAgent {
            name: self.name().to_owned(),
            instructions: session.instructions,
            tools: self.tools.clone(),
            definitions: session.tools.unwrap_or_default(),
            tool_choice: session.tool_choice,
            max_output_tokens: session.max_output_tokens,
            tool_config: Arc::new(self.tool_config()),
            tool_timeout: secs(self.file.spec.tool_options.timeout_secs),
            approval: self.approval_policy(),
            transfers: self
                .handoffs
                .iter()
                .map(|t| (t.tool.clone(), t.name.clone()))
                .collect(),
            guardrails: self.guardrails.clone(),
            slow_tools: self.slow_tools(),
        })
    }

    /// Which tools wait for a person's approval: those whose code says so
    /// (`#[tool(needs_approval)]`) and those the agent file names (`[tool_options]
    /// needs_approval`), MCP servers' tools included once they are connected.
    pub fn approval_policy(&self) -> crate::session::ApprovalPolicy {
        let options = &self.file.spec.tool_options;
        let mut tools: std::collections::HashSet<String> = self
            .tools
            .iter()
            .filter(|tool| tool.needs_approval())
            .map(|tool| tool.name().to_owned())
            .collect();
        tools.extend(options.needs_approval.iter().map(|n| n.get_ref().clone()));
        crate::session::ApprovalPolicy {
            tools,
            timeout: secs(options.approval_timeout_secs),
        }
    }

    /// Which tools run in the background (marked `#[tool(background)]` or named by `[tool_options]
    /// background`), their deadline, and the filler for slow calls.
    pub fn slow_tools(&self) -> crate::session::SlowTools {
        let options = &self.file.spec.tool_options;
        let mut background: std::collections::HashSet<String> = self
            .tools
            .iter()
            .filter(|tool| tool.background())
            .map(|tool| tool.name().to_owned())
            .collect();
        background.extend(options.background.iter().map(|n| n.get_ref().clone()));
        let filler = options.filler_after_ms.map(|ms| crate::session::Filler {
            after: std::time::Duration::from_millis(ms),
            instructions: options
                .filler_instructions
                .clone()
                .unwrap_or_else(|| crate::session::slow::DEFAULT_FILLER_INSTRUCTIONS.to_owned()),
        });
        crate::session::SlowTools {
            background,
            background_timeout: secs(options.background_timeout_secs),
            filler,
        }
    }

    /// What the session meters: the published prices (merged with `price_table` from
    /// `[limits]`, if set), the transcription model and `max_cost_usd`.
    pub fn cost_settings(&self) -> Result<CostSettings, ConnectConfigError> {
        let limits = &self.file.spec.limits;
        let prices = match &limits.price_table {
            Some(file) => {
                let base = self.file.path.parent().unwrap_or(std::path::Path::new("."));
                Arc::new(PriceTable::builtin_with(base.join(file))?)
            }
            None => PriceTable::shared(),
        };
        Ok(CostSettings {
            prices,
            transcription_model: self
                .file
                .spec
                .transcription
                .as_ref()
                .map(|t| t.model.clone()),
            max_cost_usd: limits.max_cost_usd,
        })
    }
}

/// The `session.tools` entry of an MCP server. Without `expand`, header and authorization
/// values are shown as written (templates such as `${TOKEN}`), never as secrets.
fn mcp_definition(mcp: &McpToolSpec, expand: bool) -> Result<ToolDefinition, ConnectConfigError> {
    let value = if expand {
        mcp.to_session_tool().map_err(ConnectConfigError::Mcp)?
    } else {
        let mut shown = mcp.clone();
        for value in shown.headers.values_mut() {
            *value = displayable(value);
        }
        shown.authorization = shown.authorization.as_deref().map(displayable);
        shown.to_session_tool().map_err(ConnectConfigError::Mcp)?
    };
    Ok(serde_json::from_value(value.clone()).unwrap_or(ToolDefinition::Other(value)))
}

/// A template with every `${VAR}` spelled `$VAR`, so expanding it reveals nothing.
fn displayable(template: &str) -> String {
    template.replace("${", "$").replace('}', "")
}

fn audio_format(name: AudioFormatName) -> AudioFormat {
    match name {
        AudioFormatName::Pcm16 => AudioFormat::pcm16(),
        AudioFormatName::G711Ulaw => AudioFormat::Pcmu,
        AudioFormatName::G711Alaw => AudioFormat::Pcma,
    }
}

fn noise_reduction(n: NoiseReduction) -> protocol::NoiseReductionType {
    match n {
        NoiseReduction::NearField => protocol::NoiseReductionType::NearField,
        NoiseReduction::FarField => protocol::NoiseReductionType::FarField,
    }
}

fn turn_detection(spec: &TurnDetectionSpec) -> TurnDetection {
    match spec {
        TurnDetectionSpec::ServerVad {
            threshold,
            prefix_padding_ms,
            silence_duration_ms,
            create_response,
            interrupt_response,
            idle_timeout_ms,
        } => TurnDetection::ServerVad(protocol::ServerVad {
            threshold: *threshold,
            prefix_padding_ms: *prefix_padding_ms,
            silence_duration_ms: *silence_duration_ms,
            create_response: *create_response,
            interrupt_response: *interrupt_response,
            idle_timeout_ms: *idle_timeout_ms,
        }),
        TurnDetectionSpec::SemanticVad {
            eagerness,
            create_response,
            interrupt_response,
        } => TurnDetection::SemanticVad(protocol::SemanticVad {
            eagerness: eagerness.map(|e| match e {
                Eagerness::Low => protocol::Eagerness::Low,
                Eagerness::Medium => protocol::Eagerness::Medium,
                Eagerness::High => protocol::Eagerness::High,
                Eagerness::Auto => protocol::Eagerness::Auto,
            }),
            create_response: *create_response,
            interrupt_response: *interrupt_response,
        }),
        TurnDetectionSpec::None => TurnDetection::Disabled,
    }
}

/// Seconds from an agent file as a duration. Loading already refused values that are not
/// finite, negative or beyond a day; anything that slips through becomes a second rather than
/// a panic.
fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::from_secs(1))
}

/// Expands `${ENV}` header templates once, now, so their values are known secrets (scrubbed
/// from all output, see [`crate::redact`]) before a server or a model can echo them, not only
/// from the first call that sends them. Errors are reported elsewhere; here they are ignored.
fn register_header_secrets<'a>(templates: impl Iterator<Item = &'a String>) {
    for template in templates {
        if let Ok(parsed) = EnvTemplate::parse(template) {
            let _ = parsed.expand();
        }
    }
}
