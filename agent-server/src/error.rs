//! Why the server could not start. Errors of a running call are logged, never returned: one
//! call's trouble must not stop the others.

use std::{net::SocketAddr, path::PathBuf};

use crate::config::ConfigError;

/// Why `agent serve` could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// `serve.toml` cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A route's agent file cannot be used.
    #[error("route agent {}: {source}", path.display())]
    Agent {
        /// The agent file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: agent_core::agent::AgentError,
    },
    /// A route's agent cannot hold a phone conversation.
    #[error("route agent {}: {why}", path.display())]
    AgentCannotAnswer {
        /// The agent file.
        path: PathBuf,
        /// Why not, and what to do.
        why: String,
    },
    /// A route's agent cannot connect as configured (a missing API key, an insecure URL).
    #[error("route agent {}: {source}", path.display())]
    Connect {
        /// The agent file.
        path: PathBuf,
        /// What is missing.
        #[source]
        source: agent_core::agent::ConnectConfigError,
    },
    /// A secret the configuration needs is not in the environment.
    #[error(
        "the environment variable `{variable}` ({key} in serve.toml's [secrets]) is not set: {why}"
    )]
    MissingSecret {
        /// The variable.
        variable: String,
        /// The serve.toml key that names it.
        key: &'static str,
        /// What needs it.
        why: &'static str,
    },
    /// The webhook secret is not a Standard Webhooks secret.
    #[error("the environment variable `{variable}` does not hold a webhook secret: {source}")]
    BadWebhookSecret {
        /// The variable.
        variable: String,
        /// What is wrong.
        #[source]
        source: crate::sip::signature::BadWebhookSecret,
    },
    /// The HTTP client for the platform's REST API cannot be built.
    #[error("cannot set up the HTTP client for the OpenAI platform: {0}")]
    HttpClient(String),
    /// `--url` is not a WebSocket URL.
    #[error("--url {url} is not a ws:// or wss:// URL")]
    BadRealtimeUrl {
        /// The URL, credentials removed.
        url: String,
    },
    /// The call history cannot be opened.
    #[error(
        "the call history cannot be opened: {0}; fix [history] in serve.toml, or set store = false"
    )]
    History(#[from] agent_core::history::HistoryError),
    /// Twilio's REST client cannot be built.
    #[error("Twilio's REST API cannot be used: {0}")]
    CallControl(#[from] crate::phone::CallControlError),
    /// The listen address cannot be bound.
    #[error("cannot listen on {addr}: {source}; is another server using the port?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
}
