//! One SIP call: accepted through REST with its agent's session, then run over the sideband
//! by the same session loop as every other call (tools, cost, limits), in platform-held mode:
//! the platform holds the conversation and the audio, so a lost sideband re-attaches with no
//! replay, and the call ends at the session's time limit (after a warning) instead of rolling
//! over.
//!
//! Keypad digits arrive as session events and reach the model as user input. Every wait has
//! a deadline: the accept and the other REST calls ([`crate::platform`]), the session's start
//! ([`SESSION_START`]) and its wind-down ([`SESSION_CLOSE`]).

use std::{
    ops::ControlFlow,
    sync::Arc,
    time::{Duration, SystemTime},
};

use agent_core::{
    audio::PlaybackClock,
    protocol::{ClientEvent, Dialect, Item},
    session::{CloseReason, Ownership, PlatformHeld, Session, SessionConfig, SessionEvent},
    tool::PhoneCall,
};
use serde_json::Value;

use super::incoming::{Decision, IncomingCall, UNAVAILABLE};
use crate::{capacity::CallSlot, spend::utc_day, state::AppState};

/// How long the sideband's session may take to attach and confirm its configuration.
pub const SESSION_START: Duration = Duration::from_secs(15);
/// How long the session may take to close once the call ended.
pub const SESSION_CLOSE: Duration = Duration::from_secs(5);

/// What the model is told when the call nears its time limit.
const LIMIT_WARNING: &str = "The call reaches its time limit in about {secs} seconds and will then end. Tell the caller now, in one short sentence, and say goodbye.";

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

/// Accepts the call, attaches the sideband and runs the conversation to its end.
async fn run(state: Arc<AppState>, call: IncomingCall, route: usize, slot: CallSlot) {
    let Some(sip) = &state.sip else { return };
    let call_id = call.call_id.clone();
    let accepted = match sip_session(&state, &call, route) {
        Ok((config, body)) => sip
            .platform
            .accept(&call_id, &body)
            .await
            .map(|()| config)
            .map_err(|err| err.to_string()),
        Err(why) => {
            // The caller is still ringing: say no rather than leave them waiting.
            reject(&state, &call_id, UNAVAILABLE).await;
            Err(why)
        }
    };
    let config = match accepted {
        Ok(config) => config,
        Err(why) => {
            tracing::error!(call_id, "the SIP call was not accepted: {why}");
            return;
        }
    };
    let session = match start_session(&state, config).await {
        Ok(session) => session,
        Err(why) => {
            tracing::error!(call_id, "the sideband's session did not start: {why}");
            hang_up(&state, &call_id).await;
            return;
        }
    };
    tracing::info!(call_id, route, "SIP call connected");
    let mut sip_call = SipCall {
        state: state.clone(),
        session,
        call_id,
        route,
    };
    if state.config.routes[route].greet {
        let _ = sip_call.session.handle.request_response().await;
    }
    let end = sip_call.converse().await;
    sip_call.finish(end).await;
    drop(slot);
}

/// The call's session config (platform-held, attached to the call by the sideband) and the
/// accept's body (the same session, in the GA shape).
fn sip_session(
    state: &AppState,
    call: &IncomingCall,
    route: usize,
) -> Result<(SessionConfig, Value), String> {
    let phone = PhoneCall::new("sip", &call.call_id, &call.from, &call.to);
    let agent = &state.agents[route];
    let mut config = crate::phone_session::session_config(
        agent,
        &state.overrides,
        phone,
        PlaybackClock::immediate(),
    )
    .map_err(|err| err.to_string())?;
    config.connect.url = sideband_url(&config.connect.url, &call.call_id)?;
    // A minute's warning before the limit, or a tenth of a short one.
    config.ownership = Ownership::PlatformHeld(PlatformHeld {
        warn_before: (config.max_session_age / 10).min(Duration::from_secs(60)),
    });
    let body = accept_body(&config)?;
    Ok((config, body))
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

async fn start_session(state: &AppState, config: SessionConfig) -> Result<Session, String> {
    tokio::select! {
        started = tokio::time::timeout(SESSION_START, Session::start(config)) => match started {
            Ok(Ok(session)) => Ok(session),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no session within {SESSION_START:?}")),
        },
        () = state.hang_up.cancelled() => Err("the server is shutting down".into()),
    }
}

async fn hang_up(state: &AppState, call_id: &str) {
    let Some(sip) = &state.sip else { return };
    match sip.platform.hangup(call_id).await {
        Ok(()) => tracing::info!(call_id, "hung up"),
        // The call had already ended on the platform's side.
        Err(err) if err.status() == Some(404) => tracing::debug!(call_id, "{err}"),
        Err(err) => tracing::warn!(call_id, "the hang-up did not go through: {err}"),
    }
}

/// Why a SIP call's conversation ended.
#[derive(Debug)]
enum End {
    /// The session closed (the call ended, the sideband could not re-attach, the limit...).
    Closed(CloseReason),
    /// The session's events ended without a reason.
    Vanished,
    /// The server's drain time ran out.
    Drained,
}

struct SipCall {
    state: Arc<AppState>,
    session: Session,
    call_id: String,
    route: usize,
}

impl SipCall {
    /// Handles the session's events until the conversation ends.
    async fn converse(&mut self) -> End {
        let hang_up = self.state.hang_up.clone();
        loop {
            let step = tokio::select! {
                event = self.session.events.recv() => match event {
                    Some(event) => self.on_session(event).await,
                    None => ControlFlow::Break(End::Vanished),
                },
                () = hang_up.cancelled() => ControlFlow::Break(End::Drained),
            };
            if let ControlFlow::Break(end) = step {
                return end;
            }
        }
    }

    async fn on_session(&mut self, event: SessionEvent) -> ControlFlow<End> {
        let call_id = &self.call_id;
        match event {
            SessionEvent::Cost(report) => self.charge(report.cost_usd),
            SessionEvent::Dtmf { digit, .. } => self.keypad(&digit).await,
            SessionEvent::SessionLimitNear { remaining } => self.warn_caller(remaining).await,
            SessionEvent::Reconnecting {
                attempt, reason, ..
            } => {
                tracing::warn!(
                    call_id,
                    attempt,
                    "the sideband dropped ({reason}); re-attaching"
                );
            }
            SessionEvent::Reconnected { replayed_items, .. } => {
                tracing::info!(call_id, replayed_items, "the sideband re-attached");
            }
            SessionEvent::ToolCallFinished { name, duration, .. } => {
                tracing::info!(call_id, tool = %name, ?duration, "tool call finished");
            }
            SessionEvent::TurnFailed { failure } => {
                tracing::warn!(call_id, "a turn failed: {failure}");
            }
            SessionEvent::Closed { reason } => return ControlFlow::Break(End::Closed(reason)),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    /// A keypad press reaches the model as user input (one key at a time; anything that is
    /// no key is logged and dropped).
    async fn keypad(&mut self, digit: &str) {
        let key = digit.trim();
        let is_key = key.len() == 1
            && key
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D'));
        if !is_key {
            tracing::warn!(call_id = %self.call_id, "skipped a keypad event that is no key");
            return;
        }
        tracing::debug!(call_id = %self.call_id, "keypad digit {key}");
        let text = format!("The caller pressed {key} on the keypad.");
        let _ = self.session.handle.send_text(text).await;
    }

    /// The call nears its limit: the model tells the caller before the hang-up.
    async fn warn_caller(&mut self, remaining: Duration) {
        tracing::info!(call_id = %self.call_id, ?remaining, "the call nears its time limit");
        let text = LIMIT_WARNING.replace("{secs}", &remaining.as_secs().max(1).to_string());
        let note = ClientEvent::conversation_item_create(Item::system_text(text));
        if self.session.handle.send_event(note).await.is_ok() {
            let _ = self.session.handle.request_response().await;
        }
    }

    fn charge(&self, usd: Option<f64>) {
        if let Some(usd) = usd {
            self.state
                .spend
                .add(self.route, usd, utc_day(SystemTime::now()));
        }
    }

    /// Hangs up (a call the platform already ended answers 404, which is fine) and closes
    /// the session, charging its last costs.
    async fn finish(mut self, end: End) {
        match &end {
            End::Closed(reason) => {
                tracing::info!(call_id = %self.call_id, "SIP call ended: {reason}")
            }
            End::Vanished => {
                tracing::warn!(call_id = %self.call_id, "SIP call ended: its session stopped without saying why")
            }
            End::Drained => {
                tracing::info!(call_id = %self.call_id, "SIP call ended: the server's drain time ran out")
            }
        }
        hang_up(&self.state, &self.call_id).await;
        let wind_down = async {
            let _ = self.session.handle.close().await;
            while let Some(event) = self.session.events.recv().await {
                match event {
                    SessionEvent::Cost(report) => self.charge(report.cost_usd),
                    SessionEvent::Closed { .. } => break,
                    _ => {}
                }
            }
        };
        if tokio::time::timeout(SESSION_CLOSE, wind_down)
            .await
            .is_err()
        {
            tracing::warn!(call_id = %self.call_id, "the session did not close within {SESSION_CLOSE:?}");
        }
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
}
