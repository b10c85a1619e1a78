//! Approvals over HTTP: the calls of every running call that wait for a person's approval, and
//! the operator's answers.
//!
//! - `GET /approvals` lists what waits: the id to answer, the call (transport and id), the
//!   agent, the tool, its arguments, and how many seconds are left.
//! - `POST /approvals/{id}` with `{"approve": true}`, or `{"approve": false, "reason": "..."}`,
//!   answers one. 404 when nothing waits under that id (never asked, answered, timed out).
//!
//! Both need the operator's token (`[browser] operator_token_env`) as `Authorization: Bearer`:
//! an approval lets a call spend money or change things. Without a token configured the
//! endpoints answer 404, and the calls that wait are denied when their time runs out; `agent
//! serve` says so at start when a routed agent needs approval. Each call's session reports its
//! requests here through [`CallApprover`] (an [`Approver`]); an entry leaves when its wait
//! ends, and entries past their deadline are dropped when the list is read, so the table
//! cannot grow without bound.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use agent_core::session::{Answerer, ApprovalKind, ApprovalRequest, Approver, Verdict};
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    browser::guard::{json as json_answer, refuse},
    state::AppState,
};

/// At most this many waits are listed at once; beyond it a request is left to time out.
const MAX_PENDING: usize = 1_000;
/// The longest answer body taken (the answer is a flag and a short reason).
pub const MAX_ANSWER_BYTES: usize = 4 * 1024;
/// The longest reason passed on to the model.
const MAX_REASON_CHARS: usize = 500;

/// What waits, across every call of the server.
#[derive(Debug, Default)]
pub struct PendingApprovals {
    waiting: Mutex<BTreeMap<String, Pending>>,
}

#[derive(Debug)]
struct Pending {
    call: CallLabel,
    request: ApprovalRequest,
    since: Instant,
    answerer: Answerer,
}

/// Which call a session serves, for the list.
#[derive(Debug, Clone)]
pub struct CallLabel {
    /// `twilio`, `sip` or `webrtc`.
    pub transport: &'static str,
    /// The platform's id of the call.
    pub call_id: String,
    /// The agent's name.
    pub agent: String,
}

impl PendingApprovals {
    /// The approver for one call's session.
    pub fn approver(self: &Arc<Self>, call: CallLabel) -> Arc<dyn Approver> {
        Arc::new(CallApprover {
            pending: Arc::clone(self),
            call,
        })
    }

    /// What waits now, oldest first (and the expired dropped).
    pub fn list(&self) -> Vec<Value> {
        let now = Instant::now();
        let mut waiting = self.lock();
        waiting.retain(|_, p| now < p.since + p.request.timeout);
        let mut rows: Vec<&Pending> = waiting.values().collect();
        rows.sort_by_key(|p| p.since);
        rows.into_iter()
            .map(|p| {
                let left = (p.since + p.request.timeout).saturating_duration_since(now);
                json!({
                    "id": p.request.id,
                    "transport": p.call.transport,
                    "call_id": p.call.call_id,
                    "agent": p.call.agent,
                    "tool": p.request.name,
                    "mcp_server": match &p.request.kind {
                        ApprovalKind::Mcp { server_label } => Some(server_label.clone()),
                        _ => None,
                    },
                    "arguments": p.request.arguments,
                    "seconds_left": left.as_secs_f64(),
                })
            })
            .collect()
    }

    /// Answers the wait under `id`; `false` when nothing waits under it.
    pub fn answer(&self, id: &str, approve: bool, reason: Option<String>) -> bool {
        let Some(pending) = self.lock().remove(id) else {
            return false;
        };
        tracing::info!(
            id,
            call_id = %pending.call.call_id,
            tool = %pending.request.name,
            approve,
            "the operator answered an approval"
        );
        if approve {
            pending.answerer.approve()
        } else {
            pending.answerer.deny(reason)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Pending>> {
        // A poisoned lock only means a thread panicked holding it; the table is intact.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One call's session reporting its approval requests to the server's table.
struct CallApprover {
    pending: Arc<PendingApprovals>,
    call: CallLabel,
}

impl Approver for CallApprover {
    fn requested(&self, request: &ApprovalRequest, answerer: Answerer) {
        let mut waiting = self.pending.lock();
        if waiting.len() >= MAX_PENDING {
            tracing::warn!(
                id = %request.id,
                "{MAX_PENDING} approvals already wait; this one is not listed and will time out"
            );
            return;
        }
        waiting.insert(
            request.id.clone(),
            Pending {
                call: self.call.clone(),
                request: request.clone(),
                since: Instant::now(),
                answerer,
            },
        );
    }

    fn decided(&self, id: &str, _verdict: &Verdict) {
        self.pending.lock().remove(id);
    }
}

/// `GET /approvals`.
pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return *refused;
    }
    json_answer(
        StatusCode::OK,
        &json!({ "approvals": state.approvals.list() }),
    )
}

/// The body of `POST /approvals/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    approve: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /approvals/{id}`.
pub async fn answer(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = admit(&state, &headers) {
        return *refused;
    }
    if body.len() > MAX_ANSWER_BYTES {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("an answer is at most {MAX_ANSWER_BYTES} bytes"),
        );
    }
    let body: AnswerBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(err) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "bad_answer",
                &format!(
                    "the body must be {{\"approve\": true}} or {{\"approve\": false, \"reason\": \"...\"}}: {err}"
                ),
            );
        }
    };
    let reason = body
        .reason
        .map(|r| r.chars().take(MAX_REASON_CHARS).collect::<String>())
        .filter(|r| !r.trim().is_empty());
    if state.approvals.answer(&id, body.approve, reason) {
        json_answer(
            StatusCode::OK,
            &json!({ "id": id, "approved": body.approve }),
        )
    } else {
        let shown: String = id.chars().take(64).collect();
        refuse(
            StatusCode::NOT_FOUND,
            "not_waiting",
            &format!(
                "nothing waits for approval under `{shown}` (never asked, already answered, or timed out)"
            ),
        )
    }
}

/// The operator's token, compared in constant time; 404 when none is configured (the
/// endpoints are off), 401 when it is missing or wrong.
fn admit(state: &AppState, headers: &HeaderMap) -> Result<(), crate::browser::guard::Refused> {
    let Some(expected) = state.operator_token() else {
        return Err(Box::new(refuse(
            StatusCode::NOT_FOUND,
            "not_enabled",
            "approvals over HTTP need the operator's token: set [browser] operator_token_env in serve.toml",
        )));
    };
    if crate::browser::guard::bearer_matches(headers, expected.expose()) {
        Ok(())
    } else {
        Err(Box::new(refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs the operator's token: Authorization: Bearer <token>",
        )))
    }
}
