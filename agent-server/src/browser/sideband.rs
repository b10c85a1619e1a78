//! The sideband of a browser's call: the agent's session loop (tools, history, cost, limits)
//! attached to the call by `?call_id=`, in platform-held mode, until the call ends.
//!
//! A browser's call has no phone policy (no greeting, no silence prompts, no transfer): the
//! page decides when to hang up. The session ends when the call does (the sideband closes and
//! a re-attach finds no call), at the session's time limit, or when the server drains, which
//! hangs the call up through REST so the page is not left talking to nobody.

use std::sync::Arc;

use agent_core::{
    history::{OrphanedCall, PhoneCallRecord},
    session::{Ownership, PlatformHeld, PlatformIds, SessionConfig, SessionEvent},
};
use serde_json::Value;

use super::feed::Feed;
use crate::{
    call_history::{AdoptedCall, CallHistory, StoredCall},
    capacity::CallSlot,
    metrics::Outcome,
    phone::wind_down::{charge, wind_down},
    sip::call::{accept_body, sideband_url, start_session},
    state::AppState,
};

/// The agent's session config for a browser's call (its tools, history and cost, attached
/// by the sideband once the call id is known) and the session as the platform takes it.
pub(super) fn prepare(state: &AppState, route: usize) -> Result<(SessionConfig, Value), String> {
    let agent = &state.agents[route];
    let mut config = agent
        .session_config(&state.overrides, state.session_observer.get())
        .map_err(|err| err.to_string())?;
    config.ownership = Ownership::PlatformHeld(PlatformHeld::default());
    let session = accept_body(&config)?;
    Ok((config, session))
}

/// [`prepare`], or the 500 to answer when the agent's session cannot be set up (the reason
/// goes to the log, not to the page).
pub(super) fn prepare_or_refuse(
    state: &AppState,
    route: usize,
    name: &str,
) -> Result<(SessionConfig, Value), super::guard::Refused> {
    prepare(state, route).map_err(|why| {
        tracing::error!(agent = name, "a browser call cannot be set up: {why}");
        Box::new(super::guard::refuse(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the agent's session cannot be set up; the server's log says why",
        ))
    })
}

/// Attaches to `call_id` and runs the agent's session until the call ends.
pub(super) async fn run(
    state: Arc<AppState>,
    call_id: String,
    route: usize,
    mut config: SessionConfig,
    slot: CallSlot,
    feed: Option<Arc<Feed>>,
) {
    let outcome = attach_and_run(&state, &call_id, route, &mut config, feed.as_deref()).await;
    if let Some(browser) = &state.browser {
        browser.feeds.close(&call_id);
        browser.detach(&call_id);
    }
    tracing::info!(call_id, outcome = outcome.as_str(), "browser call over");
    drop(slot);
}

async fn attach_and_run(
    state: &Arc<AppState>,
    call_id: &str,
    route: usize,
    config: &mut SessionConfig,
    feed: Option<&Feed>,
) -> Outcome {
    match sideband_url(&config.connect.url, call_id) {
        Ok(url) => config.connect.url = url,
        Err(why) => {
            tracing::error!(call_id, "the sideband cannot attach: {why}");
            state.metrics.count_outcome(Outcome::Failed);
            return Outcome::Failed;
        }
    }
    let agent = &state.agents[route];
    config.approver = state.approver_for("webrtc", call_id, agent.name());
    config.platform_ids = PlatformIds::openai("webrtc", call_id);
    let record = PhoneCallRecord::starting("webrtc", call_id, "browser", agent.name());
    let stored = CallHistory::store_call(state.history.as_ref(), agent, record, config).await;
    let session = match start_session(state, config.clone()).await {
        Ok(session) => session,
        Err(why) => {
            tracing::error!(call_id, "the sideband's session did not start: {why}");
            state.metrics.count_outcome(Outcome::Failed);
            if let (Some(history), Some(stored)) = (&state.history, &stored) {
                history.finish_call(stored, Outcome::Failed.as_str()).await;
            }
            return Outcome::Failed;
        }
    };
    converse(state, call_id, route, session, stored.as_ref(), feed).await
}

/// Goes on with a browser's call another node attached to and then died with: a new sideband
/// on the same `call_id`, the stored conversation and tool-call records (see
/// [`crate::sip::call::resume`], which does the same for SIP calls). The page's event feed was
/// the dead node's and is not restored.
pub(crate) async fn resume(
    state: Arc<AppState>,
    orphan: OrphanedCall,
    adopted: AdoptedCall,
    slot: CallSlot,
) {
    let call_id = orphan.call.call_id.clone();
    let route = state
        .config
        .routes
        .iter()
        .enumerate()
        .position(|(n, route)| route.browser && state.agents[n].name() == orphan.agent);
    let prepared = route
        .ok_or_else(|| {
            format!(
                "no browser route of this node serves the agent `{}`",
                orphan.agent
            )
        })
        .and_then(|route| {
            let (mut config, _) = prepare(&state, route)?;
            config.connect.url = sideband_url(&config.connect.url, &call_id)?;
            Ok((route, config))
        });
    let (route, mut config) = match prepared {
        Ok(prepared) => prepared,
        Err(why) => {
            tracing::error!(
                call_id,
                "a browser call taken over from a dead node cannot go on: {why}"
            );
            if let Some(history) = &state.history {
                history
                    .finish_call(&adopted.stored, Outcome::Failed.as_str())
                    .await;
            }
            return;
        }
    };
    config.approver = state.approver_for("webrtc", &call_id, &orphan.agent);
    config.platform_ids = PlatformIds::openai("webrtc", &call_id);
    let stored = adopted.apply(&mut config);
    let session = match start_session(&state, config).await {
        Ok(session) => session,
        Err(why) => {
            tracing::warn!(
                call_id,
                "could not attach to a browser call taken over from a dead node (it may have ended): {why}"
            );
            if let Some(history) = &state.history {
                history.finish_call(&stored, Outcome::Failed.as_str()).await;
            }
            return;
        }
    };
    tracing::info!(call_id, route, from = %orphan.last_holder, "took over a browser call from a node that died");
    state.metrics.count_takeover();
    let outcome = converse(&state, &call_id, route, session, Some(&stored), None).await;
    tracing::info!(call_id, outcome = outcome.as_str(), "browser call over");
    drop(slot);
}

/// Runs an attached session until the call ends (or the server drains), then winds it down.
async fn converse(
    state: &Arc<AppState>,
    call_id: &str,
    route: usize,
    mut session: agent_core::session::Session,
    stored: Option<&StoredCall>,
    feed: Option<&Feed>,
) -> Outcome {
    state.metrics.call_started();
    let taken_over = async {
        match stored {
            Some(stored) => stored.taken_over().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(taken_over);
    let outcome = loop {
        tokio::select! {
            () = &mut taken_over => break Outcome::TakenOver,
            event = session.events.recv() => {
                let Some(event) = event else { break Outcome::Failed };
                state.metrics.observe(&event);
                if let Some(feed) = feed {
                    feed.publish(&event);
                }
                match event {
                    SessionEvent::Cost(report) => charge(state, route, report.cost_usd),
                    SessionEvent::Closed { reason } => break Outcome::of_sideband_close(&reason),
                    _ => {}
                }
            }
            () = state.hang_up.cancelled() => {
                if let Some(browser) = &state.browser
                    && let Err(err) = browser.platform.hangup(call_id).await
                {
                    tracing::warn!(call_id, "the hang-up did not go through: {err}");
                }
                break Outcome::Drained;
            }
        }
    };
    // A call another node took over is that node's to record.
    let stored = stored.filter(|_| outcome != Outcome::TakenOver);
    wind_down(state, route, &mut session, stored, outcome, call_id).await;
    outcome
}
