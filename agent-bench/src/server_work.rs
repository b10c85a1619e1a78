//! Equal work, checked from the server's side: what agent-testkit sent and received while one
//! client ran. Runs are one after the other, so the difference of two snapshots of the
//! server's counters is that client's share.

use agent_testkit::server::ServerHandle;

/// The server's counters at one moment (or their difference over one run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerWork {
    /// `response.done` events sent: responses played to the end.
    pub responses: usize,
    /// `response.output_audio.delta` events sent: audio chunks delivered.
    pub audio_deltas: usize,
    /// `function_call_output` items accepted: tool calls answered.
    pub outputs: usize,
    /// `response.create` events received.
    pub creates: usize,
    /// Protocol violations the server recorded (see [`ServerHandle::violations`]).
    pub violations: usize,
}

impl ServerWork {
    /// Reads the counters now.
    pub async fn snapshot(server: &ServerHandle) -> ServerWork {
        ServerWork {
            responses: server.count_sent("response.done"),
            audio_deltas: server.count_sent("response.output_audio.delta"),
            outputs: server.count_received_items("function_call_output"),
            creates: server.count_received("response.create"),
            violations: server.violations().await.len(),
        }
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &ServerWork) -> ServerWork {
        ServerWork {
            responses: self.responses.saturating_sub(before.responses),
            audio_deltas: self.audio_deltas.saturating_sub(before.audio_deltas),
            outputs: self.outputs.saturating_sub(before.outputs),
            creates: self.creates.saturating_sub(before.creates),
            violations: self.violations.saturating_sub(before.violations),
        }
    }
}
