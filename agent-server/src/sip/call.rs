//! One SIP call: accepted through REST with its agent's session, then run over the sideband
//! by the same session loop as every other call (tools, history, cost, limits), in
//! platform-held mode: the platform holds the conversation and the audio, so a lost sideband
//! re-attaches with no replay, and the call ends before the session's time limit (after a
//! warning) instead of rolling over.
//!
//! What every phone agent gets (greeting, silence, call length, keypad digits, `end_call`,
//! `transfer_call`) is the same [`CallPolicy`](crate::phone::CallPolicy) as on Twilio; the
//! conversation ([`super::conversation`]) feeds it and carries out its actions through the
//! platform's REST API ([`super::control`]). Every wait has a deadline: the accept and the
//! other REST calls ([`crate::platform`]), the session's start ([`SESSION_START`]) and its
//! wind-down ([`SESSION_CLOSE`]).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use agent_core::{
    agent::PhoneSpec,
    audio::PlaybackClock,
    history::{OrphanedCall, PhoneCallRecord},
    protocol::{ClientEvent, Dialect},
    session::{Ownership, PlatformHeld, PlatformIds, Session, SessionConfig},
    tool::PhoneCall,
};
use serde_json::Value;

use super::{
    control::SipControl,
    conversation::{SipCall, Started},
    incoming::{Decision, IncomingCall, UNAVAILABLE},
    playback::PlaybackWatch,
};
use crate::{
    call_history::{AdoptedCall, CallHistory, StoredCall},
    capacity::CallSlot,
    metrics::Outcome,
    phone::{CallRequests, END_GRACE, add_call_tools},
    state::AppState,
};

/// How long the sideband's session may take to attach and confirm its configuration.
pub const SESSION_START: Duration = Duration::from_secs(15);

/// Carries out the webhook's decision: a reject through REST, or the whole call.
pub(crate) async fn answer(state: Arc<AppState>, call: IncomingCall, decision: Decision) {
    match decision {
        Decision::Reject { status, why } => {
            tracing::info!(call_id = %call.call_id, status, "rejecting a SIP call: {why}");
            reject(&state, &call.call_id, status).await;
        }
        Decision::Accept { route, slot } => run(state, call, route, slot).await,
    }
}

async fn reject(state: &AppState, call_id: &str, status: u16) {
    let Some(sip) = &state.sip else { return };
    if let Err(err) = sip.platform.reject(call_id, status).await {
        tracing::warn!(call_id, "the reject did not go through: {err}");
    }
}

/// A call's session config with what the conversation needs beside it.
struct Prepared {
    config: SessionConfig,
    accept: Value,
    phone: PhoneSpec,
    requests: CallRequests,
    playback: PlaybackWatch,
}

/// Accepts the call, attaches the sideband and runs the conversation to its end.
async fn run(state: Arc<AppState>, call: IncomingCall, route: usize, slot: CallSlot) {
    let Some(sip) = &state.sip else { return };
    let call_id = call.call_id.clone();
    let prepared = match prepare(&state, &call, route) {
        Ok(prepared) => prepared,
        Err(why) => {
            // The caller is still ringing: say no rather than leave them waiting.
            tracing::error!(call_id, "the SIP call cannot be answered: {why}");
            reject(&state, &call_id, UNAVAILABLE).await;
            state.metrics.count_outcome(Outcome::Failed);
            return;
        }
    };
    if let Err(err) = sip.platform.accept(&call_id, &prepared.accept).await {
        tracing::error!(call_id, "the SIP call was not accepted: {err}");
        state.metrics.count_outcome(Outcome::Failed);
        return;
    }
    let Prepared {
        mut config,
        phone,
        requests,
        playback,
        ..
    } = prepared;
    let agent = &state.agents[route];
    let record = PhoneCallRecord::starting("sip", &call_id, &call.from, &call.to);
    let stored = CallHistory::store_call(state.history.as_ref(), agent, record, &mut config).await;
    // The session's clock starts here, so the policy's limit never comes after the session's.
    let connected = Instant::now();
    let session = match start_session(&state, config).await {
        Ok(session) => session,
        Err(why) => {
            tracing::error!(call_id, "the sideband's session did not start: {why}");
            let control = SipControl::new(sip.platform.clone(), &call_id);
            if let Err(err) = crate::phone::CallControl::hang_up(&control).await {
                tracing::warn!(call_id, "the hang-up did not go through: {err}");
            }
            state.metrics.count_outcome(Outcome::Failed);
            if let (Some(history), Some(stored)) = (&state.history, &stored) {
                history.finish_call(stored, Outcome::Failed.as_str()).await;
            }
            return;
        }
    };
    tracing::info!(call_id, route, "SIP call connected");
    let control = Arc::new(SipControl::new(sip.platform.clone(), &call_id));
    let started = Started {
        session,
        requests,
        playback,
        stored,
        control,
        phone,
        connected,
        resumed: false,
    };
    SipCall::new(state, call_id, route, started).run().await;
    drop(slot);
}

/// Goes on with a call another node answered and then died with: attaches a new sideband to
/// the same call (the platform still holds it and its conversation), with the conversation
/// and tool-call records from the shared store, so no recorded call runs again and the calls
/// the dead node left unanswered are answered now. No greeting; the call's length counts
/// from when it was first answered.
pub(crate) async fn resume(
    state: Arc<AppState>,
    orphan: OrphanedCall,
    adopted: AdoptedCall,
    slot: CallSlot,
) {
    let Some(sip) = &state.sip else { return };
    let call_id = orphan.call.call_id.clone();
    let control = Arc::new(SipControl::new(sip.platform.clone(), &call_id));
    let Some(route) = state
        .agents
        .iter()
        .position(|agent| agent.name() == orphan.agent)
    else {
        tracing::error!(call_id, agent = %orphan.agent, "a call taken over from a dead node has an agent no route of this node serves; hanging up");
        give_up(&state, &control, &adopted.stored, &call_id).await;
        return;
    };
    let call = IncomingCall {
        call_id: call_id.clone(),
        from: orphan.call.caller.clone(),
        to: orphan.call.callee.clone(),
    };
    let Prepared {
        mut config,
        phone,
        requests,
        playback,
        ..
    } = match prepare(&state, &call, route) {
        Ok(prepared) => prepared,
        Err(why) => {
            tracing::error!(
                call_id,
                "a call taken over from a dead node cannot go on: {why}"
            );
            give_up(&state, &control, &adopted.stored, &call_id).await;
            return;
        }
    };
    let stored = adopted.apply(&mut config);
    let connected = crate::call_history::answered_instant(orphan.call.started_at);
    let session = match start_session(&state, config).await {
        Ok(session) => session,
        Err(why) => {
            tracing::warn!(
                call_id,
                "could not attach to a call taken over from a dead node (it may have ended): {why}"
            );
            give_up(&state, &control, &stored, &call_id).await;
            return;
        }
    };
    tracing::info!(call_id, route, from = %orphan.last_holder, "took over a SIP call from a node that died");
    state.metrics.count_takeover();
    let started = Started {
        session,
        requests,
        playback,
        stored: Some(stored),
        control,
        phone,
        connected,
        resumed: true,
    };
    SipCall::new(state, call_id, route, started).run().await;
    drop(slot);
}

/// A taken-over call that cannot go on here: hung up (a call the platform already ended
/// answers 404, which is fine) and recorded as failed.
async fn give_up(state: &AppState, control: &SipControl, stored: &StoredCall, call_id: &str) {
    if let Err(err) = crate::phone::CallControl::hang_up(control).await {
        tracing::warn!(call_id, "the hang-up did not go through: {err}");
    }
    if let Some(history) = &state.history {
        history.finish_call(stored, Outcome::Failed.as_str()).await;
    }
}

/// The call's session config (platform-held, attached to the call by the sideband, with the
/// call-control tools), the accept's body (the same session, in the GA shape), and the
/// `[phone]` settings the policy follows.
fn prepare(state: &AppState, call: &IncomingCall, route: usize) -> Result<Prepared, String> {
    let phone_call = PhoneCall::new("sip", &call.call_id, &call.from, &call.to);
    let agent = &state.agents[route];
    // Playback is the platform's: nothing is truncated, so the clock is never asked.
    let mut config = crate::phone_session::session_config(
        agent,
        &state.overrides,
        phone_call,
        PlaybackClock::immediate(),
        state.session_observer.get(),
    )
    .map_err(|err| err.to_string())?;
    config.approver = state.approver_for("sip", &call.call_id, agent.name());
    config.platform_ids = PlatformIds::openai("sip", &call.call_id);
    config.connect.url = sideband_url(&config.connect.url, &call.call_id)?;
    let (phone, held) = limited_by_session(
        &agent.spec().phone.clone().unwrap_or_default(),
        config.max_session_age,
    );
    config.ownership = Ownership::PlatformHeld(held);
    let requests = add_call_tools(&mut config, &phone).map_err(|err| err.to_string())?;
    let (playback, observer) = PlaybackWatch::new(config.observer.take());
    config.observer = Some(observer);
    let accept = accept_body(&config)?;
    Ok(Prepared {
        config,
        accept,
        phone,
        requests,
        playback,
    })
}

/// A SIP call's `[phone]` settings, with its length capped by the session's time limit, and
/// the session's warning time. A platform-held session cannot roll over (a new session would
/// be a new call), so the call must end before the session closes: the policy warns the
/// caller and says goodbye as it does at `max_call_secs`, early enough (a tenth of the limit,
/// at most [`END_GRACE`]) for the goodbye to be heard. A warning that does not fit such a
/// short call is a tenth of it. The session's own notice then comes with the policy's
/// warning, which is the one acted on.
pub fn limited_by_session(spec: &PhoneSpec, session_limit: Duration) -> (PhoneSpec, PlatformHeld) {
    let room = (session_limit / 10).min(END_GRACE);
    let cap = session_limit.saturating_sub(room).as_secs_f64().max(1.0);
    let mut phone = spec.clone();
    if phone.max_call_secs.is_none_or(|secs| secs > cap) {
        phone.max_call_secs = Some(cap);
        if phone.max_call_warning_secs >= cap {
            phone.max_call_warning_secs = cap / 10.0;
            // The default text says "about a minute"; a custom one is the agent's to word.
            if phone.max_call_warning == PhoneSpec::default().max_call_warning {
                phone.max_call_warning = format!(
                    "The call will end in about {} seconds. Tell the caller now, in one short sentence.",
                    phone.max_call_warning_secs.ceil()
                );
            }
        }
    }
    let max = phone.max_call_secs.unwrap_or(cap);
    let warn_at = Duration::from_secs_f64((max - phone.max_call_warning_secs).max(0.0));
    let held = PlatformHeld {
        warn_before: session_limit.saturating_sub(warn_at),
    };
    (phone, held)
}

/// The session config as the accept sends it: `session.update`'s `session`, GA-shaped, with
/// the agent's model.
pub fn accept_body(config: &SessionConfig) -> Result<Value, String> {
    let update = ClientEvent::session_update(config.session.clone())
        .to_value(Dialect::Ga)
        .map_err(|err| format!("the agent's session cannot be sent: {err}"))?;
    let mut session = update.get("session").cloned().unwrap_or(Value::Null);
    let Some(object) = session.as_object_mut() else {
        return Err("the agent's session is not an object".into());
    };
    if !object.contains_key("model") && !config.connect.model.is_empty() {
        object.insert("model".into(), Value::from(config.connect.model.clone()));
    }
    Ok(session)
}

/// The sideband URL: the Realtime URL with `call_id=` (and no `model=`: the accept chose it).
pub fn sideband_url(realtime_url: &str, call_id: &str) -> Result<String, String> {
    let mut url = url::Url::parse(realtime_url)
        .map_err(|err| format!("the Realtime URL cannot be used: {err}"))?;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "model" && k != "call_id")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("call_id", call_id);
    Ok(url.into())
}

/// Starts the sideband's session within [`SESSION_START`], unless the server shuts down first.
pub(crate) async fn start_session(
    state: &AppState,
    config: SessionConfig,
) -> Result<Session, String> {
    tokio::select! {
        started = tokio::time::timeout(SESSION_START, Session::start(config)) => match started {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no session within {SESSION_START:?}")),
        },
        () = state.hang_up.cancelled() => Err("the server is shutting down".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sideband_url_names_the_call_and_no_model() {
        assert_eq!(
            sideband_url(
                "wss://api.openai.com/v1/realtime?model=gpt-realtime",
                "rtc_1"
            )
            .unwrap(),
            "wss://api.openai.com/v1/realtime?call_id=rtc_1"
        );
        assert_eq!(
            sideband_url("ws://127.0.0.1:9/v1/realtime", "rtc_2").unwrap(),
            "ws://127.0.0.1:9/v1/realtime?call_id=rtc_2"
        );
        assert!(sideband_url("not a url", "rtc_3").is_err());
    }

    #[test]
    fn the_session_limit_caps_the_call_and_leaves_room_for_the_goodbye() {
        let hour = Duration::from_secs(3600);
        let (phone, held) = limited_by_session(&PhoneSpec::default(), hour);
        assert_eq!(
            phone.max_call_secs,
            Some(3580.0),
            "20 s before the session closes"
        );
        assert_eq!(phone.max_call_warning_secs, 60.0);
        assert_eq!(
            held.warn_before,
            Duration::from_secs(80),
            "with the policy's warning"
        );
        // A shorter call of the agent's own is kept as it is.
        let short = PhoneSpec {
            max_call_secs: Some(600.0),
            ..PhoneSpec::default()
        };
        assert_eq!(limited_by_session(&short, hour).0, short);
        // A very short limit (a test's): a tenth for the goodbye, a warning that fits.
        let (phone, _) = limited_by_session(&PhoneSpec::default(), Duration::from_secs(30));
        assert_eq!(phone.max_call_secs, Some(27.0));
        assert!((phone.max_call_warning_secs - 2.7).abs() < 1e-9);
        assert!(
            phone.max_call_warning.contains("about 3 seconds"),
            "{}",
            phone.max_call_warning
        );
    }
}
