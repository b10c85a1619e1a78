//! A transfer call: the model hands the conversation to another agent of its team.
//!
//! The runner answers the call itself (no tool runs): the session switches to the target's
//! instructions and tools at once, with a `session.update` sent before the call's output, so
//! the follow-up response — requested as for any call, once the response is done — is the
//! target's. See [`crate::session::handoff`] for what changes and what stays.

use super::Runner;
use crate::{
    protocol::{ClientEvent, FunctionCallItem, Item},
    session::{events::SessionEvent, handoff::transfer_output, spans::ToolOutcome},
};

impl Runner {
    /// Handles `call` when it is one of the current agent's transfer tools; returns whether
    /// it was. The call counts as finished at once: it is recorded like any call, so it is
    /// never answered twice.
    pub(super) async fn maybe_hand_off(
        &mut self,
        response_id: &str,
        call: &FunctionCallItem,
    ) -> bool {
        let Some(team) = self.config.team.clone() else {
            return false;
        };
        let Some(target) = team.target(&self.config.agent, &call.name) else {
            return false;
        };
        let to = target.name.clone();
        let Some(handoff) = team.apply(&mut self.config, &to) else {
            return false;
        };
        self.dispatcher.switch_agent(
            self.config.tools.clone(),
            self.config.tool_config.clone(),
            self.config.tool_timeout,
            self.config.agent.clone(),
        );
        let output = transfer_output(&handoff.to);
        if let Some(sink) = &self.config.history_sink {
            sink.call_finished(&call.call_id, &output);
            sink.handed_off(&call.call_id, &handoff.from, &handoff.to);
        }
        self.finished.insert(
            call.call_id.clone(),
            Item::function_call_output(call.call_id.clone(), output),
        );
        self.note(
            "handoff",
            &serde_json::json!({"call_id": call.call_id, "from": handoff.from, "to": handoff.to}),
        );
        tracing::info!(from = %handoff.from, to = %handoff.to, "handoff");
        let spans = &mut self.accounting.spans;
        spans.tool_answered(response_id, &call.call_id, &call.name, ToolOutcome::HANDOFF);
        spans.handoff(&handoff.from, &handoff.to);
        self.emit(SessionEvent::Handoff {
            call_id: call.call_id.clone(),
            from: handoff.from,
            to: handoff.to,
        });
        // A failed write means the connection is gone: the read side notices, and the
        // replacement is configured from `self.config`, which already is the target's.
        let _ = self.send(ClientEvent::session_update(handoff.update)).await;
        true
    }
}
