//! What a tool knows about the call it is serving, and the agent's settings for it.

use std::{
    any::{Any, TypeId},
    collections::{BTreeMap, HashMap},
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::ToolError;

/// The per-call context a tool receives: who is calling, the agent's tool settings, and a
/// cancellation signal.
///
/// A `#[tool]` function gets it by declaring a parameter of type `ToolContext` (it is not part
/// of the schema). The signal fires when the response that asked for the call is cancelled (the
/// user interrupted) or the session ends; long-running tools should `select!` on
/// [`ToolContext::cancelled`] and avoid side effects after it fired.
#[derive(Clone)]
pub struct ToolContext {
    call_id: String,
    agent: String,
    session: String,
    /// The conversation the call belongs to; the session's id until the runtime says.
    conversation: Option<Arc<str>>,
    token: CancellationToken,
    config: Arc<ToolConfig>,
}

impl ToolContext {
    /// A context for one call; the runtime builds it from the `function_call` item.
    pub fn new(
        call_id: impl Into<String>,
        agent: impl Into<String>,
        session: impl Into<String>,
        token: CancellationToken,
    ) -> Self {
        ToolContext {
            call_id: call_id.into(),
            agent: agent.into(),
            session: session.into(),
            conversation: None,
            token,
            config: Arc::default(),
        }
    }

    /// Says which conversation the call belongs to (the history store's id, which survives
    /// reconnects and restarts); the runtime sets it. Without it, the session's id stands in.
    #[must_use]
    pub fn with_conversation(mut self, conversation: Arc<str>) -> Self {
        self.conversation = Some(conversation);
        self
    }

    /// A context outside any session, for tests, examples and `agent tools`: call id `local`,
    /// empty agent and session names, a token nobody cancels, and no settings.
    pub fn standalone() -> Self {
        ToolContext::new("local", "", "", CancellationToken::new())
    }

    /// Attaches the agent's tool settings (shared by every call of the agent's sessions).
    #[must_use]
    pub fn with_config(mut self, config: Arc<ToolConfig>) -> Self {
        self.config = config;
        self
    }

    /// The `call_id` of the `function_call` item; its output goes back with the same id.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// The name of the agent (from its file) whose model called the tool.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// The session's id, for logs and per-session state.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The conversation's id: the history store's when the conversation is stored (the same
    /// after a reconnect, a rollover or a restart that resumes it), else the session's.
    pub fn conversation(&self) -> &str {
        self.conversation.as_deref().unwrap_or(&self.session)
    }

    /// A key that names this call's side effect: `{conversation}:{call_id}`. It is the same
    /// every time this call is asked for (a reconnect, a restart that resumes the
    /// conversation), and differs between calls. Pass it to an external API's
    /// `Idempotency-Key` header, or keep it beside what the tool creates, so that a retried
    /// call returns what the first one made instead of making it twice.
    ///
    /// It is stable across restarts only when the conversation is stored (history on); a
    /// conversation without history has the session's id, which a restart does not keep.
    pub fn idempotency_key(&self) -> String {
        format!("{}:{}", self.conversation(), self.call_id)
    }

    /// Completes when the call should stop: its response was cancelled or the session ended.
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// Whether the call should stop; check it before irreversible side effects.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }

    /// The token itself, to hand to child tasks.
    pub fn token(&self) -> &CancellationToken {
        &self.token
    }

    /// The agent's tool settings.
    pub fn config(&self) -> &ToolConfig {
        &self.config
    }

    /// The agent's settings table for `key` (by convention the tool's name: the agent file's
    /// `[tool_config.http_get]` is `setting::<T>("http_get")`), deserialized as `T`.
    ///
    /// `Ok(None)` when the agent has no such table; an error naming the table when it does not
    /// fit `T`.
    pub fn setting<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ToolError> {
        self.config.setting(key)
    }

    /// A typed value the embedding program attached with [`ToolConfig::insert_extension`].
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.config.extension::<T>()
    }

    /// The agent's data directory, where tools that keep state write (tickets, caches).
    pub fn data_dir(&self) -> Option<&Path> {
        self.config.data_dir()
    }

    /// The phone call this session answers (caller, callee, the call's parameters), when it
    /// runs under `agent serve`; `None` in a terminal session.
    pub fn phone_call(&self) -> Option<&crate::PhoneCall> {
        self.config.extension::<crate::PhoneCall>()
    }
}

impl fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolContext")
            .field("call_id", &self.call_id)
            .field("agent", &self.agent)
            .field("session", &self.session)
            .field("conversation", &self.conversation())
            .field("cancelled", &self.token.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// One agent's settings for its tools, shared by all its calls.
///
/// Built once per agent by the runtime, from the agent file:
/// - `tool_config.<key>` tables become [`settings`](Self::setting) (JSON values keyed by tool
///   name), which any tool — built-in, plugin or user-defined — reads with
///   [`ToolContext::setting`];
/// - the agent's data directory becomes [`data_dir`](Self::data_dir);
/// - a program that embeds the runtime can attach typed values of its own with
///   [`insert_extension`](Self::insert_extension) (a database pool, say).
#[derive(Clone, Default)]
pub struct ToolConfig {
    settings: BTreeMap<String, Value>,
    data_dir: Option<PathBuf>,
    extensions: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl ToolConfig {
    /// No settings, no data directory, no extensions.
    pub fn new() -> Self {
        ToolConfig::default()
    }

    /// Sets the settings table for `key` (usually a tool name).
    #[must_use]
    pub fn with_setting(mut self, key: impl Into<String>, value: Value) -> Self {
        self.settings.insert(key.into(), value);
        self
    }

    /// Sets the data directory tools write to.
    #[must_use]
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Sets the settings table for `key` in place.
    pub fn set(&mut self, key: impl Into<String>, value: Value) {
        self.settings.insert(key.into(), value);
    }

    /// Attaches a typed value; a later value of the same type replaces it.
    pub fn insert_extension<T: Any + Send + Sync>(&mut self, value: T) {
        self.extensions.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// These settings and data directory with `other`'s extensions: how a handoff gives the
    /// next agent's tools their own settings while keeping what the host attached (the phone
    /// call, a database pool).
    #[must_use]
    pub fn with_extensions_of(&self, other: &ToolConfig) -> ToolConfig {
        let mut config = self.clone();
        for (id, value) in &other.extensions {
            config
                .extensions
                .entry(*id)
                .or_insert_with(|| value.clone());
        }
        config
    }

    /// The raw settings table for `key`.
    pub fn setting_value(&self, key: &str) -> Option<&Value> {
        self.settings.get(key)
    }

    /// The settings table for `key`, deserialized (see [`ToolContext::setting`]).
    pub fn setting<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ToolError> {
        let Some(value) = self.settings.get(key) else {
            return Ok(None);
        };
        T::deserialize(value).map(Some).map_err(|err| {
            ToolError::failed(format!(
                "the agent's settings for `{key}` (`[tool_config.{key}]`) are invalid: {err}"
            ))
        })
    }

    /// The data directory, if the agent has one.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// The typed value of type `T`, if one was attached.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.extensions
            .get(&TypeId::of::<T>())
            .and_then(|value| value.downcast_ref::<T>())
    }
}

impl fmt::Debug for ToolConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolConfig")
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .field("data_dir", &self.data_dir)
            .field("extensions", &self.extensions.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    struct HttpSettings {
        allow_hosts: Vec<String>,
    }

    #[test]
    fn settings_extensions_and_cancellation() {
        let mut config = ToolConfig::new()
            .with_setting("http_get", json!({"allow_hosts": ["example.com"]}))
            .with_setting("broken", json!({"allow_hosts": 3}))
            .with_data_dir("/tmp/agent");
        config.insert_extension(7u32);
        let token = CancellationToken::new();
        let ctx = ToolContext::new("call_1", "support", "sess_1", token.clone())
            .with_config(Arc::new(config));

        assert_eq!(ctx.call_id(), "call_1");
        assert_eq!(ctx.agent(), "support");
        assert_eq!(ctx.session(), "sess_1");
        assert_eq!(
            ctx.conversation(),
            "sess_1",
            "the session's id until the runtime says"
        );
        assert_eq!(ctx.idempotency_key(), "sess_1:call_1");
        let stored = ctx.clone().with_conversation("conv_7".into());
        assert_eq!(stored.conversation(), "conv_7");
        assert_eq!(stored.idempotency_key(), "conv_7:call_1");
        assert_eq!(
            ctx.setting::<HttpSettings>("http_get").unwrap(),
            Some(HttpSettings {
                allow_hosts: vec!["example.com".into()]
            })
        );
        assert_eq!(ctx.setting::<HttpSettings>("absent").unwrap(), None);
        let err = ctx.setting::<HttpSettings>("broken").unwrap_err();
        assert!(err.to_string().contains("[tool_config.broken]"), "{err}");
        assert_eq!(ctx.extension::<u32>(), Some(&7));
        assert_eq!(ctx.extension::<u64>(), None);
        assert_eq!(ctx.data_dir(), Some(Path::new("/tmp/agent")));

        assert!(!ctx.is_cancelled());
        token.cancel();
        assert!(ctx.clone().is_cancelled());
    }
}
