//! Driving one session from the terminal: send a line, render the reply, know when it is done.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use agent_core::{
    agent::{Agent, ConnectOverrides},
    session::{CloseReason, Session, SessionConfig, SessionEvent, WireObserver},
};
use agent_testkit::scenario::{ApprovalAnswer, ObservedApproval, ObservedCall, ObservedTurn, Turn};
use anyhow::{Context, bail};

use crate::{console::Console, summary::SessionStats};

/// A running session plus the console it renders to.
pub struct Conversation {
    session: Session,
    /// Where events are rendered; `None` renders nothing (e.g. quiet test runs).
    pub console: Option<Console>,
    closed: Option<CloseReason>,
    /// Usage, cost and latency so far (see `summary`).
    pub stats: SessionStats,
    /// Sees every rendered event too, e.g. the audio output (see `audio_io`).
    pub tap: Option<crate::audio_io::EventTap>,
    /// The scripted user's answers to approval requests in the current turn, by tool.
    approvals: BTreeMap<String, ApprovalAnswer>,
    /// The agent that has the conversation (handoffs move it).
    agent: String,
}

/// How long one turn may take before the run gives up on it.
pub const TURN_TIMEOUT: Duration = Duration::from_secs(120);

/// A turn ended without a complete answer; the session goes on.
#[derive(Debug, thiserror::Error)]
#[error("the turn did not complete: {0}")]
pub struct TurnFailed(pub String);

impl Conversation {
    /// Connects the agent and waits until the server confirmed its configuration.
    pub async fn start(
        agent: &Agent,
        overrides: &ConnectOverrides,
        observer: Option<Arc<dyn WireObserver>>,
        console: Option<Console>,
    ) -> anyhow::Result<Self> {
        let config = agent.session_config(overrides, observer)?;
        Self::start_with(config, console).await
    }

    /// Like [`Conversation::start`], with a session config the caller adjusted (audio runs).
    pub async fn start_with(
        config: SessionConfig,
        console: Option<Console>,
    ) -> anyhow::Result<Self> {
        let url = agent_core::redact::redact_url(&config.connect.url);
        let session = Session::start(config)
            .await
            .with_context(|| format!("could not start a session at {url}"))?;
        let agent = session.agent.clone();
        Ok(Conversation {
            session,
            console,
            closed: None,
            stats: SessionStats::default(),
            tap: None,
            approvals: BTreeMap::new(),
            agent,
        })
    }

    /// Plays one scripted turn: its user text (see [`Conversation::turn`]), answering its
    /// calls that wait for approval as the turn says.
    pub async fn play(&mut self, turn: &Turn) -> anyhow::Result<ObservedTurn> {
        self.approvals = turn.approvals.clone();
        let observed = self.turn(turn.user.as_deref()).await;
        self.approvals.clear();
        observed
    }

    /// Sends `text` as the user (or, with `None`, asks the model to speak first) and renders
    /// everything until the conversation is quiet again. Returns what was observed.
    pub async fn turn(&mut self, text: Option<&str>) -> anyhow::Result<ObservedTurn> {
        if let Some(console) = &mut self.console
            && let Some(text) = text
        {
            console.user(text);
        }
        let sent = match text {
            Some(text) => self.session.handle.send_text(text).await,
            None => self.session.handle.request_response().await,
        };
        if sent.is_err() {
            bail!("the session ended before the message could be sent");
        }
        tokio::time::timeout(TURN_TIMEOUT, self.until_idle())
            .await
            .with_context(|| format!("no complete reply within {TURN_TIMEOUT:?}"))?
    }

    async fn until_idle(&mut self) -> anyhow::Result<ObservedTurn> {
        let mut observed = ObservedTurn::default();
        // Where each answer's text starts in the reply, to withdraw it if a guardrail trips.
        let mut starts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let failures_before = self.stats.turn_failures.len();
        loop {
            let Some(event) = self.session.events.recv().await else {
                bail!("the session ended unexpectedly");
            };
            self.render(&event);
            match event {
                SessionEvent::TextDelta { delta, item_id, .. }
                | SessionEvent::TranscriptDelta { delta, item_id, .. } => {
                    starts.entry(item_id).or_insert(observed.reply.len());
                    observed.reply.push_str(&delta);
                }
                // What a guardrail stopped was withdrawn: the reply is what is left.
                SessionEvent::GuardrailTripped {
                    guardrail, item_id, ..
                } => {
                    if let Some(start) = item_id.and_then(|id| starts.get(&id).copied()) {
                        observed.reply.truncate(start);
                    }
                    observed.guardrails.push(guardrail);
                }
                SessionEvent::ToolCallFinished {
                    name,
                    arguments,
                    result,
                    ..
                } => observed.tool_calls.push(observed_call(
                    name,
                    arguments,
                    result.is_err(),
                    result.unwrap_or_else(|err| err),
                )),
                // A handoff is a call the runner answers itself; the turn sees it as one.
                SessionEvent::Handoff { to, .. } => {
                    observed.tool_calls.push(observed_call(
                        agent_core::session::handoff::transfer_tool_name(&to),
                        "{}".into(),
                        false,
                        agent_core::session::handoff::transfer_output(&to),
                    ));
                    self.agent = to;
                }
                // A tool of the agent's or a hosted MCP server's: both are answered by name.
                SessionEvent::ApprovalRequested { id, name, .. } => {
                    self.answer_approval(&id, &name)
                }
                SessionEvent::ApprovalDecided {
                    name,
                    approved,
                    how,
                    ..
                } => observed.approvals.push(ObservedApproval {
                    name,
                    approved,
                    how,
                }),
                // The model read an output all the same: the turn's expectations see it.
                SessionEvent::ToolCallNotRun {
                    name,
                    arguments,
                    why,
                    output,
                    ..
                } => observed.tool_calls.push(observed_call(
                    name,
                    arguments,
                    why != agent_core::session::NotRun::AlreadyRan,
                    output,
                )),
                SessionEvent::Idle => {
                    if let Some(failure) = self.stats.turn_failures.get(failures_before) {
                        return Err(TurnFailed(failure.clone()).into());
                    }
                    observed.agent = Some(self.agent.clone());
                    return Ok(observed);
                }
                SessionEvent::Closed { reason } => {
                    self.closed = Some(reason.clone());
                    bail!("the session ended: {reason}");
                }
                _ => {}
            }
        }
    }

    /// Answers a call waiting for approval as the scripted turn says; a call it does not
    /// name is denied, with a note saying how to script the answer.
    fn answer_approval(&mut self, id: &str, name: &str) {
        let handle = &self.session.handle;
        match self.approvals.get(name) {
            Some(ApprovalAnswer::Approve) => {
                handle.approve(id);
            }
            Some(ApprovalAnswer::Deny) => {
                handle.deny(id, None);
            }
            Some(ApprovalAnswer::Wait) => {}
            None => {
                handle.deny(id, Some("nobody was asked".into()));
                crate::output::errln!(
                    "  (no scripted answer for approving `{name}`: denied; add approvals = {{ {name} = \"approve\" }} to the turn)"
                );
            }
        }
    }

    /// Renders one event, if there is a console.
    pub fn render(&mut self, event: &SessionEvent) {
        self.stats.observe(event);
        if let SessionEvent::Closed { reason } = event {
            self.closed = Some(reason.clone());
        }
        if let Some(console) = &mut self.console {
            console.show(event);
        }
        if let Some(tap) = &mut self.tap {
            tap(event);
        }
    }

    /// The session's handle, for input from elsewhere (stdin, Ctrl-C).
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// Closes the session, waits (at most `within`) for it to wind down, and returns what it
    /// used.
    pub async fn close(mut self, within: Duration) -> SessionStats {
        if self.closed.is_some() {
            return self.stats;
        }
        let wait = async {
            let _ = self.session.handle.close().await;
            while let Some(event) = self.session.events.recv().await {
                let last = matches!(event, SessionEvent::Closed { .. });
                self.render(&event);
                if last {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(within, wait).await;
        self.stats.unclean_end = self.stats.closed.is_none();
        self.stats
    }
}

/// A call as a turn's expectations see it; arguments that are not JSON stay text.
fn observed_call(name: String, arguments: String, is_error: bool, output: String) -> ObservedCall {
    ObservedCall {
        name,
        arguments: serde_json::from_str(&arguments).unwrap_or(serde_json::Value::String(arguments)),
        is_error,
        output,
    }
}
