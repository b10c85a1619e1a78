//! What differs when the platform holds the call (a SIP or WebRTC call attached by the
//! sideband; see [`Ownership`](crate::session::Ownership)): a lost sideband re-attaches to the
//! same call without `session.update` or replay, and the call ends at its time limit instead
//! of rolling over.

use super::{
    Flow, Runner,
    setup::{Established, establish},
};
use crate::{
    protocol::{ClientEvent, Item},
    session::{
        SessionConfig, SessionError,
        events::{CloseReason, SessionEvent},
        transport::{self, TransportError},
    },
};

/// Whether a failed re-attach means the call is over: the platform answers a sideband for a
/// call it no longer has with 404. (Only for platform-held sessions: for ours, a 404 is a
/// wrong URL.)
pub(super) fn call_gone(config: &SessionConfig, err: &SessionError) -> bool {
    !config.ownership.replays()
        && matches!(
            err,
            SessionError::Transport(TransportError::Rejected { status: 404, .. })
        )
}

/// A connection to replace a lost one: configured and replayed into when we hold the
/// conversation, re-attached as it is when the platform holds it.
pub(super) async fn establish_again(
    config: &SessionConfig,
    conversation: &[(String, Item)],
) -> Result<Established, SessionError> {
    if config.ownership.replays() {
        return establish(config, conversation).await;
    }
    // The call's session is still configured (the loop never changes it after the first
    // attach), so the sideband is ready as soon as it is open.
    let ws = transport::connect(&config.connect).await?;
    Ok(Established::bare(ws))
}

impl Runner {
    /// A platform-held call near its time limit warns the app once; at the limit it ends.
    /// The age counts from the first attach: re-attaching does not restart the call's clock.
    pub(super) fn platform_time_limit(&mut self) -> Option<Flow> {
        let age = self.connected_at.elapsed();
        let limit = self.config.max_session_age;
        if age >= limit {
            return Some(Flow::Close(CloseReason::SessionLimit));
        }
        let warn_at = self.config.ownership.warn_at(limit)?;
        if age >= warn_at && !self.limit_warned {
            self.limit_warned = true;
            tracing::info!("the call nears its time limit");
            self.emit(SessionEvent::SessionLimitNear {
                remaining: limit.saturating_sub(age),
            });
        }
        None
    }

    /// A `session.updated`: the answer to one of this session's `session.update`s, or, on a
    /// call the platform holds, the sign that another client changed the session. A browser
    /// holds the call's `oai-events` channel and can send its own `session.update` (other
    /// instructions, other tools, a cheaper or dearer model). The agent file is the authority:
    /// its configuration is sent again, and the change is logged and reported to the app.
    pub(super) async fn on_session_updated(&mut self) -> Flow {
        if self.updates_in_flight > 0 {
            self.updates_in_flight -= 1;
            return Flow::Continue;
        }
        if self.config.ownership.replays() {
            // We hold the only connection: nobody else can have asked.
            return Flow::Continue;
        }
        tracing::warn!(
            "another client changed the call's session (a session.update this server did not \
             send); re-applying the agent's configuration"
        );
        self.warn(
            "another client changed the session; the agent's configuration was applied again",
        );
        let update = ClientEvent::session_update(self.config.session.clone());
        match self.send(update).await {
            Ok(()) => Flow::Continue,
            Err(flow) => flow,
        }
    }
}
