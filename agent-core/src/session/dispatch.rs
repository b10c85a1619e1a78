//! Running one tool call: its own task, its own timeout, and no way to take the session down.
//!
//! A panic, a timeout, invalid arguments or an unknown tool all become an error output that
//! the model reads, so the conversation goes on. Nothing here knows the wire.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span};

use super::approval::{Gate, Verdict};
use crate::tool::{ToolConfig, ToolContext, ToolError, ToolRegistry};

/// A function call the model made, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    /// The response that produced the call.
    pub response_id: String,
    /// The model's id for the call; its output must carry the same id.
    pub call_id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, as the JSON text the model wrote.
    pub arguments: String,
}

/// A finished call.
#[derive(Debug)]
pub struct CallOutcome {
    /// What was asked.
    pub request: CallRequest,
    /// How long it ran.
    pub duration: Duration,
    /// The output the model will read, or why there is none.
    pub result: Result<String, ToolError>,
    /// Set when the tool did not run: the store already knew the call (`result` then holds
    /// the earlier run's output, or the "interrupted" error), or it was not approved.
    pub not_run: Option<super::NotRun>,
    /// How the wait for approval ended, for a call that needed one.
    pub approval: Option<super::Verdict>,
}

impl CallOutcome {
    /// A call the store already knew: its earlier output, or "interrupted" when it started
    /// and never finished. The tool does not run.
    fn known(request: CallRequest, known: super::CallStart) -> CallOutcome {
        let (why, result) = match known {
            super::CallStart::Finished { output } => (super::NotRun::AlreadyRan, Ok(output)),
            super::CallStart::Started | super::CallStart::New | super::CallStart::TakenOver => (
                super::NotRun::Interrupted,
                Err(ToolError::Interrupted {
                    tool: request.name.clone(),
                }),
            ),
        };
        CallOutcome {
            request,
            duration: Duration::ZERO,
            result,
            not_run: Some(why),
            approval: None,
        }
    }

    /// The text sent back as the `function_call_output`: the output, or a readable error.
    pub fn output_text(&self) -> String {
        match &self.result {
            Ok(output) => output.clone(),
            Err(err) => err.to_model_output(),
        }
    }
}

/// What every call of a session shares.
#[derive(Clone)]
pub struct Dispatcher {
    tools: Arc<ToolRegistry>,
    config: Arc<ToolConfig>,
    timeout: Duration,
    agent: Arc<str>,
    session: Arc<str>,
    /// The stored conversation's id for idempotency keys; without one, the tool context's
    /// own default (the session's id) stands.
    conversation: Option<Arc<str>>,
}

impl Dispatcher {
    /// A dispatcher over the agent's tools.
    pub fn new(
        tools: Arc<ToolRegistry>,
        config: Arc<ToolConfig>,
        timeout: Duration,
        agent: impl Into<Arc<str>>,
        session: impl Into<Arc<str>>,
    ) -> Self {
        Dispatcher {
            tools,
            config,
            timeout,
            agent: agent.into(),
            session: session.into(),
            conversation: None,
        }
    }

    /// The conversation the calls belong to (the history store's id), for the tools'
    /// idempotency keys; the session's id stands in until this is set.
    #[must_use]
    pub fn with_conversation(mut self, conversation: impl Into<Arc<str>>) -> Self {
        self.conversation = Some(conversation.into());
        self
    }

    /// The same dispatcher with another deadline per call (a background call's, longer).
    #[must_use]
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        let mut this = self.clone();
        this.timeout = timeout;
        this
    }

    /// Whether the current agent's `tool` says its calls run in the background
    /// (`#[tool(background)]`).
    pub fn runs_in_background(&self, tool: &str) -> bool {
        self.tools.get(tool).is_some_and(|t| t.background())
    }

    /// Runs the next calls with another agent's tools, settings, timeout and name (a
    /// handoff); calls already running keep the agent that started them.
    pub fn switch_agent(
        &mut self,
        tools: Arc<ToolRegistry>,
        config: Arc<ToolConfig>,
        timeout: Duration,
        agent: impl Into<Arc<str>>,
    ) {
        self.tools = tools;
        self.config = config;
        self.timeout = timeout;
        self.agent = agent.into();
    }

    /// Starts `request` on its own task in `set`, inside `span` (the call's; `Span::none()`
    /// for none), and returns the task's id (a panic that escapes the task is reported under
    /// it). `cancel` fires when its response is cancelled or the session ends; the tool sees it
    /// through its [`ToolContext`].
    pub fn spawn(
        &self,
        set: &mut JoinSet<CallOutcome>,
        request: CallRequest,
        cancel: CancellationToken,
        gate: Option<Gate>,
        span: Span,
    ) -> tokio::task::Id {
        let this = self.clone();
        set.spawn(async move { this.run_gated(request, cancel, gate).await }.instrument(span))
            .id()
    }

    /// Like [`spawn`](Self::spawn), but the tool starts only once `recorded` (the durable
    /// "started" record of the call) resolved, or after `wait` at most: a call that runs must
    /// have left a trace first, so a crash while it runs cannot make it run twice. A record
    /// that fails or is late is logged and the tool runs anyway: losing the crash guarantee for
    /// one call is better than refusing to answer. A record the store already had (an earlier
    /// run's, or a call id the session no longer holds in memory) answers the call without
    /// running the tool again.
    #[allow(clippy::too_many_arguments)] // spawn's, and the record with its deadline
    pub fn spawn_recorded(
        &self,
        set: &mut JoinSet<CallOutcome>,
        request: CallRequest,
        cancel: CancellationToken,
        recorded: super::DurableWrite<super::CallStart>,
        wait: Duration,
        gate: Option<Gate>,
        span: Span,
    ) -> tokio::task::Id {
        let this = self.clone();
        set.spawn(
            async move {
                match tokio::time::timeout(wait, recorded).await {
                    Ok(Ok(super::CallStart::New)) => {}
                    Ok(Ok(known)) => return CallOutcome::known(request, known),
                    Ok(Err(error)) => tracing::warn!(
                        call_id = %request.call_id,
                        "could not record that the call started ({error}); running it anyway"
                    ),
                    Err(_) => tracing::warn!(
                        call_id = %request.call_id,
                        "recording that the call started took over {wait:?}; running it anyway"
                    ),
                }
                this.run_gated(request, cancel, gate).await
            }
            .instrument(span),
        )
        .id()
    }

    /// Runs `request` once `gate` (if any) says it is approved; otherwise answers it with
    /// why it did not run.
    async fn run_gated(
        &self,
        request: CallRequest,
        cancel: CancellationToken,
        gate: Option<Gate>,
    ) -> CallOutcome {
        let Some(gate) = gate else {
            return self.run(request, cancel).await;
        };
        let started = Instant::now();
        let verdict = gate.wait(&cancel).await;
        if verdict.approved() {
            let mut outcome = self.run(request, cancel).await;
            outcome.approval = Some(verdict);
            return outcome;
        }
        let result = match verdict {
            Verdict::Cancelled => Err(ToolError::Cancelled),
            _ => Err(ToolError::NotApproved {
                tool: request.name.clone(),
                reason: verdict.describe(),
            }),
        };
        CallOutcome {
            request,
            duration: started.elapsed(),
            result,
            not_run: Some(super::NotRun::NotApproved),
            approval: Some(verdict),
        }
    }

    /// Runs `request` to completion; never panics, whatever the tool does.
    pub async fn run(&self, request: CallRequest, cancel: CancellationToken) -> CallOutcome {
        let started = Instant::now();
        let mut ctx = ToolContext::new(
            request.call_id.clone(),
            self.agent.to_string(),
            self.session.to_string(),
            cancel.clone(),
        )
        .with_config(self.config.clone());
        if let Some(conversation) = &self.conversation {
            ctx = ctx.with_conversation(conversation.clone());
        }
        // `invoke` turns the tool's panic into an error itself; a panic that escapes anyway (a
        // `Drop` during the timeout) ends the task and is answered by the runner.
        let call = self.tools.invoke(&request.name, &request.arguments, ctx);
        let result = match tokio::time::timeout(self.timeout, call).await {
            Err(_) => {
                // Tell a cooperative tool to stop; its late result is discarded.
                cancel.cancel();
                Err(ToolError::Timeout {
                    after: self.timeout,
                })
            }
            Ok(Ok(output)) => Ok(output.into_string()),
            Ok(Err(err)) => Err(err),
        };
        CallOutcome {
            request,
            duration: started.elapsed(),
            result,
            not_run: None,
            approval: None,
        }
    }
}
