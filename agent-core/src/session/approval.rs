//! Human approval of tool calls: which calls wait, and how an answer reaches the waiting call.
//!
//! A call to a tool that needs approval (`#[tool(needs_approval)]`, or the agent file's
//! `[tool_options] needs_approval`) is announced with
//! [`SessionEvent::ApprovalRequested`](super::SessionEvent::ApprovalRequested) and waits, on
//! its own task, for [`SessionHandle::approve`](super::SessionHandle::approve) or
//! [`deny`](super::SessionHandle::deny). The other calls of the same response run meanwhile.
//! A denial, no answer within the policy's timeout, or the response being cancelled all end
//! the wait without running the tool: the model reads why as the call's output, and
//! [`SessionEvent::ApprovalDecided`](super::SessionEvent::ApprovalDecided) says what happened.
//!
//! A hosted MCP server's `mcp_approval_request` waits the same way, always (the server asked),
//! under the request's item id and with the policy's timeout; its decision goes back to the
//! server as an `mcp_approval_response`.
//!
//! The waiting slot is opened by the session before the event goes out, so an answer can never
//! arrive before there is someone to take it.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Which tools wait for approval, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// The tools whose every call waits.
    pub tools: HashSet<String>,
    /// How long a call waits for an answer; no answer counts as a denial.
    pub timeout: Duration,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            tools: HashSet::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A call waiting for approval, as an [`Approver`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRequest {
    /// The id to answer (a function call's `call_id`, an MCP request's item id).
    pub id: String,
    /// Whose tool it is.
    pub kind: super::ApprovalKind,
    /// The tool's name.
    pub name: String,
    /// The arguments, as the model wrote them (JSON text).
    pub arguments: String,
    /// How long it waits.
    pub timeout: Duration,
}

/// Answers approval requests from outside the app's event loop: a server's operator API,
/// say. Set on [`SessionConfig::approver`](super::SessionConfig::approver); the session calls
/// it beside [`SessionEvent::ApprovalRequested`](super::SessionEvent::ApprovalRequested) and
/// [`ApprovalDecided`](super::SessionEvent::ApprovalDecided). Called on the session's task:
/// keep both quick (store the answerer, answer later).
pub trait Approver: Send + Sync {
    /// A call waits; `answerer` answers it, from anywhere, once.
    fn requested(&self, request: &ApprovalRequest, answerer: Answerer);

    /// The wait for `id` ended (answered, timed out, cancelled): forget it.
    fn decided(&self, id: &str, verdict: &Verdict) {
        let _ = (id, verdict);
    }
}

/// Answers one approval request; cheap to clone, and only the first answer counts.
#[derive(Debug, Clone)]
pub struct Answerer {
    approvals: Approvals,
    id: String,
}

impl Answerer {
    /// Runs the call; `false` when it no longer waits.
    pub fn approve(&self) -> bool {
        self.approvals.decide(&self.id, Decision::Approve)
    }

    /// Refuses the call, with `reason` for the model; `false` when it no longer waits.
    pub fn deny(&self, reason: Option<String>) -> bool {
        self.approvals.decide(&self.id, Decision::Deny { reason })
    }
}

/// How long a call waits for approval unless the agent file says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

impl ApprovalPolicy {
    /// Whether calls to `tool` wait for approval.
    pub fn applies_to(&self, tool: &str) -> bool {
        self.tools.contains(tool)
    }
}

/// A person's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the call.
    Approve,
    /// Do not run it; the reason, if given, reaches the model.
    Deny {
        /// Why, in the person's words.
        reason: Option<String>,
    },
}

/// How a wait for approval ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Approved: the call runs.
    Approved,
    /// Denied by the person, with their reason if they gave one.
    Denied(Option<String>),
    /// No answer within the timeout: counted as a denial.
    TimedOut(Duration),
    /// The response was cancelled (the user interrupted) or the session ended first.
    Cancelled,
}

impl Verdict {
    /// Whether the call runs.
    pub fn approved(&self) -> bool {
        matches!(self, Verdict::Approved)
    }

    /// What happened, in words for the model, the console and the trace.
    pub fn describe(&self) -> String {
        match self {
            Verdict::Approved => "approved".to_owned(),
            Verdict::Denied(None) => "denied".to_owned(),
            Verdict::Denied(Some(reason)) => format!("denied: {reason}"),
            Verdict::TimedOut(after) => format!("no answer within {} s", after.as_secs_f64()),
            Verdict::Cancelled => "cancelled before an answer".to_owned(),
        }
    }
}

/// The calls waiting for an answer, shared by the session and its handles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Approvals {
    waiting: Arc<Mutex<HashMap<String, oneshot::Sender<Decision>>>>,
}

impl Approvals {
    /// Opens the wait for `id` (a call id, or an MCP approval request's id) and returns what
    /// [`wait`] takes.
    pub(crate) fn open(&self, id: &str, timeout: Duration) -> Gate {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.to_owned(), tx);
        Gate {
            answer: rx,
            timeout,
            id: id.to_owned(),
            approvals: self.clone(),
        }
    }

    /// An answerer for the wait under `id`.
    pub(crate) fn answerer(&self, id: &str) -> Answerer {
        Answerer {
            approvals: self.clone(),
            id: id.to_owned(),
        }
    }

    /// Answers the wait for `id`; `false` when nothing waits under that id (never asked,
    /// already answered, timed out).
    pub(crate) fn decide(&self, id: &str, decision: Decision) -> bool {
        let Some(tx) = self.lock().remove(id) else {
            return false;
        };
        tx.send(decision).is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Decision>>> {
        // A poisoned lock only means a thread panicked while holding it; the map is intact.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One open wait for approval: the answer to come, and how long to wait for it. The session
/// opens it before it announces the request.
#[derive(Debug)]
pub struct Gate {
    answer: oneshot::Receiver<Decision>,
    timeout: Duration,
    id: String,
    approvals: Approvals,
}

impl Gate {
    /// Waits for the answer, at most the gate's timeout, or until `cancel` fires. The slot is
    /// closed however it ends, so a late answer finds nothing and says so.
    pub(crate) async fn wait(self, cancel: &CancellationToken) -> Verdict {
        let Gate {
            answer,
            timeout,
            id,
            approvals,
        } = self;
        let verdict = tokio::select! {
            answer = tokio::time::timeout(timeout, answer) => match answer {
                Ok(Ok(Decision::Approve)) => Verdict::Approved,
                Ok(Ok(Decision::Deny { reason })) => Verdict::Denied(reason),
                // The sender went away without answering: the session is ending.
                Ok(Err(_)) => Verdict::Cancelled,
                Err(_) => Verdict::TimedOut(timeout),
            },
            () = cancel.cancelled() => Verdict::Cancelled,
        };
        approvals.lock().remove(&id);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_reaches_the_waiting_call_once() {
        let approvals = Approvals::default();
        let gate = approvals.open("call_1", Duration::from_secs(5));
        assert!(approvals.decide("call_1", Decision::Approve));
        assert!(
            !approvals.decide("call_1", Decision::Approve),
            "answered once"
        );
        assert!(
            !approvals.decide("call_2", Decision::Approve),
            "never asked"
        );
        assert_eq!(
            gate.wait(&CancellationToken::new()).await,
            Verdict::Approved
        );
    }

    #[tokio::test]
    async fn a_denial_keeps_its_reason() {
        let approvals = Approvals::default();
        let gate = approvals.open("call_1", Duration::from_secs(5));
        approvals.decide(
            "call_1",
            Decision::Deny {
                reason: Some("not today".into()),
            },
        );
        let verdict = gate.wait(&CancellationToken::new()).await;
        assert_eq!(verdict.describe(), "denied: not today");
        assert!(!verdict.approved());
    }

    #[tokio::test(start_paused = true)]
    async fn no_answer_in_time_is_a_denial_and_closes_the_slot() {
        let approvals = Approvals::default();
        let gate = approvals.open("call_1", Duration::from_secs(30));
        let verdict = gate.wait(&CancellationToken::new()).await;
        assert_eq!(verdict, Verdict::TimedOut(Duration::from_secs(30)));
        assert_eq!(verdict.describe(), "no answer within 30 s");
        assert!(
            !approvals.decide("call_1", Decision::Approve),
            "a late answer finds nothing"
        );
    }

    #[tokio::test]
    async fn a_cancelled_response_stops_the_wait() {
        let approvals = Approvals::default();
        let gate = approvals.open("call_1", Duration::from_secs(30));
        let cancel = CancellationToken::new();
        cancel.cancel();
        assert_eq!(gate.wait(&cancel).await, Verdict::Cancelled);
        assert!(!approvals.decide("call_1", Decision::Approve));
    }
}
