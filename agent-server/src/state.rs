//! What every request and call shares: one `Arc` of typed handles.

use agent_core::{
    agent::{Agent, ConnectOverrides},
    mcp::McpClients,
    session::Secret,
};
use tokio::sync::Mutex;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use std::sync::Arc;

use crate::{
    call_history::CallHistory,
    capacity::Capacity,
    config::ServeConfig,
    metrics::Metrics,
    rate_limit::RateLimiter,
    spend::SpendLedger,
    twilio::{rest::TwilioRest, tokens::StreamTokens},
};

/// The server's shared state.
#[derive(Debug)]
pub struct AppState {
    /// The checked `serve.toml`.
    pub config: ServeConfig,
    /// Each route's agent, by route index.
    pub agents: Vec<Agent>,
    /// The agents' MCP servers, kept running while the server runs.
    pub mcp: Mutex<Vec<McpClients>>,
    /// Where the Realtime sessions connect, beyond what the agent files say.
    pub overrides: ConnectOverrides,
    /// Twilio's auth token, when a route answers Twilio calls.
    pub twilio_auth_token: Option<Secret>,
    /// Call slots and the draining flag.
    pub capacity: Capacity,
    /// Stream tokens handed out by `/twilio/voice`.
    pub tokens: StreamTokens,
    /// Today's spend per route.
    pub spend: SpendLedger,
    /// Every running call's task, to wait for them when draining.
    pub calls: TaskTracker,
    /// Fires when the drain time is over: running calls end.
    pub hang_up: CancellationToken,
    /// The SIP path, when a route answers SIP users.
    pub sip: Option<crate::sip::SipState>,
    /// The browser endpoints, when `[browser]` turns one on.
    pub browser: Option<crate::browser::BrowserState>,
    /// What `/metrics` reports.
    pub metrics: Metrics,
    /// Per-client-IP limits on the webhook routes.
    pub rate_limiter: RateLimiter,
    /// Where calls are stored; `None` when `[history] store = false`.
    pub history: Option<CallHistory>,
    /// Twilio's REST API (hang-up, transfer), when a route answers Twilio calls.
    pub twilio_rest: Option<Arc<TwilioRest>>,
    /// What every call's session reports its wire to, when the embedding program set it.
    pub session_observer: crate::phone_session::SessionObserver,
    /// Calls waiting for the operator's approval, across every call.
    pub approvals: Arc<crate::approvals::PendingApprovals>,
    /// The operator's token (`[browser] operator_token_env`), which guards the browser
    /// endpoints and the approvals API.
    pub operator_token: Option<Secret>,
}

impl AppState {
    /// The operator's token, when one is configured.
    pub fn operator_token(&self) -> Option<&Secret> {
        self.operator_token.as_ref()
    }

    /// The approver for a call's session: the operator answers its approvals over HTTP. `None`
    /// without an operator token (nobody could answer: the calls time out, denied).
    pub fn approver_for(
        &self,
        transport: &'static str,
        call_id: &str,
        agent: &str,
    ) -> Option<Arc<dyn agent_core::session::Approver>> {
        self.operator_token.as_ref()?;
        Some(self.approvals.approver(crate::approvals::CallLabel {
            transport,
            call_id: call_id.to_owned(),
            agent: agent.to_owned(),
        }))
    }
}

/// Why a new call was turned away (each transport answers it in its own terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    /// The server is shutting down.
    Draining,
    /// The route's daily spend cap is reached.
    SpendCap,
    /// Every call slot is in use.
    Full,
}

impl NoSlot {
    /// Why, for the log and for answers that carry a message.
    pub fn why(self) -> &'static str {
        match self {
            NoSlot::Draining => "the server is shutting down; try again shortly",
            NoSlot::SpendCap => "this agent's daily spend cap is reached",
            NoSlot::Full => "every call slot is in use; try again shortly",
        }
    }
}

impl AppState {
    /// The checks every new call passes, on every transport: the server is not draining,
    /// the route's daily spend cap is not reached, and a call slot is free (held for the
    /// call's length by the returned slot).
    pub fn admit_call(&self, route: usize) -> Result<crate::capacity::CallSlot, NoSlot> {
        if self.capacity.is_draining() {
            return Err(NoSlot::Draining);
        }
        let cap = self.config.routes[route].max_cost_usd_per_day;
        if self.spend.over(
            route,
            cap,
            crate::spend::utc_day(std::time::SystemTime::now()),
        ) {
            return Err(NoSlot::SpendCap);
        }
        match self.capacity.try_take() {
            Some(slot) => Ok(slot),
            // Draining began between the two checks.
            None if self.capacity.is_draining() => Err(NoSlot::Draining),
            None => Err(NoSlot::Full),
        }
    }
}
