//! Approval requests of hosted MCP servers (`[[mcp_servers]]` with `require_approval`).
//!
//! The Realtime API calls these tools itself, but first asks with an `mcp_approval_request`
//! output item and waits for an `mcp_approval_response`. The request goes through the same
//! approval mechanism as the agent's own tools ([`SessionEvent::ApprovalRequested`], the
//! [`Approver`](crate::session::Approver), `SessionHandle::approve`/`deny`), always: the server
//! asked, so no local policy can skip it. The wait runs on its own task and its verdict comes
//! back through the loop's `select!`, so the loop never blocks; the decision then enters the
//! conversation log (for replay and the history store), goes to the server, and the model is
//! asked to go on through the sequencer, never while another response is active.

use super::{Flow, Runner};
use crate::{
    protocol::{ClientEvent, Item, McpApprovalRequestItem, McpApprovalResponseItem},
    session::{
        approval::{ApprovalRequest, Verdict},
        events::ApprovalKind,
    },
};

/// An MCP approval request whose verdict has not come back to the loop yet.
#[derive(Debug)]
pub(super) struct McpPending {
    /// The tool's name, as the events name it.
    name: String,
}

/// What a finished wait hands back to the loop: the request's id and the verdict.
pub(super) type McpVerdict = (String, Verdict);

impl Runner {
    /// An output item completed: when it is an MCP approval request not seen before, it is
    /// logged, its wait opened and announced. A request seen again (a duplicate event, the
    /// output of `response.done` after `response.output_item.done`) is answered only once.
    pub(super) fn maybe_ask_mcp_approval(&mut self, response_id: &str, item: &Item) {
        let Item::McpApprovalRequest(request) = item else {
            return;
        };
        if request.id.is_empty() {
            self.warn(&format!(
                "MCP server `{}` asked to approve `{}` without an item id; it cannot be answered",
                request.server_label, request.name
            ));
            return;
        }
        if !self.mcp_seen.insert(&request.id) {
            return;
        }
        self.record(format!("item:{}", request.id), item.clone());
        self.open_mcp_approval(response_id, request);
    }

    fn open_mcp_approval(&mut self, response_id: &str, request: &McpApprovalRequestItem) {
        let timeout = self.config.approval.timeout;
        let gate = self.approvals.open(&request.id, timeout);
        self.approval_requested(ApprovalRequest {
            id: request.id.clone(),
            kind: ApprovalKind::Mcp {
                server_label: request.server_label.clone(),
            },
            name: request.name.clone(),
            arguments: request.arguments.clone(),
            timeout,
        });
        // The user interrupting the response that asked ends the wait, as for a function call.
        let cancel = self
            .response_tokens
            .get(response_id)
            .map(tokio_util::sync::CancellationToken::child_token)
            .unwrap_or_else(|| self.shutdown.child_token());
        let id = request.id.clone();
        self.mcp_pending.insert(
            id.clone(),
            McpPending {
                name: request.name.clone(),
            },
        );
        self.mcp_waits
            .spawn(async move { (id, gate.wait(&cancel).await) });
    }

    /// A wait ended: the decision is announced, logged and sent, and unless the response that
    /// asked was cut off, the model is asked to go on.
    pub(super) async fn on_mcp_verdict(
        &mut self,
        joined: Result<McpVerdict, tokio::task::JoinError>,
    ) -> Flow {
        // A wait cannot panic; only the session's end aborts one, and then nothing is sent.
        let Ok((id, verdict)) = joined else {
            return Flow::Continue;
        };
        let Some(pending) = self.mcp_pending.remove(&id) else {
            return Flow::Continue;
        };
        self.approval_decided(&id, &pending.name, &verdict);
        let item = Item::McpApprovalResponse(response_item(&id, &verdict));
        self.record(format!("approval:{id}"), item.clone());
        // A cancelled response (the user interrupted) is answered, so nothing dangles, but the
        // model is not asked to go on: the user has the floor.
        let steps = if verdict == Verdict::Cancelled {
            Vec::new()
        } else {
            self.sequencer.answer_delivered()
        };
        if let Err(flow) = self.send(ClientEvent::conversation_item_create(item)).await {
            return flow;
        }
        self.flush_and_apply(steps).await
    }

    /// The session ends with requests still waiting: the app and the approver hear that they
    /// were cancelled (the server hears nothing more).
    pub(super) fn cancel_mcp_waits(&mut self) {
        self.mcp_waits.abort_all();
        let pending: Vec<(String, McpPending)> = self.mcp_pending.drain().collect();
        for (id, pending) in pending {
            self.approval_decided(&id, &pending.name, &Verdict::Cancelled);
        }
    }
}

/// The `mcp_approval_response` item that answers request `id`: a fresh client id (the GA
/// schema requires one, and a fixed pattern could clash with a resumed conversation's), the
/// decision, and for a refusal the reason the model reads.
fn response_item(id: &str, verdict: &Verdict) -> McpApprovalResponseItem {
    let approve = verdict.approved();
    McpApprovalResponseItem {
        id: format!("mcpa_{:016x}", fastrand::u64(..)),
        approval_request_id: id.to_owned(),
        approve,
        reason: (!approve).then(|| verdict.describe()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_approval_carries_no_reason_and_a_refusal_says_why() {
        let approved = response_item("mcpr_1", &Verdict::Approved);
        assert!(approved.approve);
        assert_eq!(approved.approval_request_id, "mcpr_1");
        assert_eq!(approved.reason, None);
        assert!(approved.id.starts_with("mcpa_") && approved.id.len() <= 32);

        let denied = response_item("mcpr_1", &Verdict::Denied(Some("not that repo".into())));
        assert!(!denied.approve);
        assert_eq!(denied.reason.as_deref(), Some("denied: not that repo"));
        let late = response_item("mcpr_1", &Verdict::TimedOut(Duration::from_secs(60)));
        assert!(!late.approve);
        assert_eq!(late.reason.as_deref(), Some("no answer within 60 s"));
        assert_ne!(approved.id, denied.id, "each answer has its own item id");
    }
}
