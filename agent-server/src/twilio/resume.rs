//! `POST /twilio/resume`: Twilio's request when a call's `<Connect>` ended, which brings a
//! call whose node died back to a live node.
//!
//! The media stream of a Twilio call is a WebSocket to one node, so it dies with that node.
//! When `[twilio] resume_base_url` is set and the history store is shared, calls are answered
//! with `<Connect action="{resume_base_url}/twilio/resume?attempt=1">`: when the stream ends,
//! Twilio posts the call's parameters (signed like the voice webhook) to that URL through the
//! load balancer, and runs the TwiML it gets back. What this route answers depends on the call
//! in the store:
//!
//! - unknown, or already ended (its node ended it on purpose: a hang-up also ends the stream)
//!   → `<Hangup/>`;
//! - running, with a lease another node still holds (it died less than a lease ago, or it is
//!   winding down) → `<Pause>` and `<Redirect>` here again with the next attempt, until the
//!   lease runs out or [`attempt_budget`] attempts have passed (then the call is recorded
//!   `node_lost` and hung up);
//! - running, with a lease that ran out → this node takes the lease, the stored conversation
//!   and its tool-call records, and connects a new stream to itself, with a stream token that
//!   carries them ([`ResumedCall`]); the call goes on from where it was, without a second
//!   greeting.

use std::{sync::Arc, time::Duration};

use agent_core::history::{FoundCall, HistoryError, Timestamp};
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
};

use super::{
    tokens::{PendingCall, ResumedCall, TOKEN_PARAMETER},
    twiml,
    voice::{plain, twiml, verified_call},
};
use crate::{call_history::CallHistory, state::AppState};

/// The route's path.
pub const PATH: &str = "/twilio/resume";
/// How long the caller waits between two attempts (`<Pause length>`).
pub const PAUSE_SECS: u32 = 2;
/// How long one question to the store may take before the caller is asked to wait.
const STORE_DEADLINE: Duration = Duration::from_secs(5);
/// The least time the takeover watcher leaves Twilio to bring a call back before it records
/// the call lost.
const MIN_GRACE: Duration = Duration::from_secs(30);

/// The `<Connect action>` URL for `attempt`, when calls can be resumed: the setting is there
/// and the store is shared (a store of its own, no other node could read the call).
pub(crate) fn action_url(state: &AppState, attempt: u32) -> Option<String> {
    state.history.as_ref().filter(|h| h.is_shared())?;
    state.config.twilio_resume_url(attempt)
}

/// How many attempts a call gets: enough pauses to cover two leases (the dead node's lease
/// runs out within one; a second covers a slow store), plus the first.
pub fn attempt_budget(lease: Duration) -> u32 {
    let pause_ms = u128::from(PAUSE_SECS) * 1000;
    let pauses = (2 * lease.as_millis()).div_ceil(pause_ms);
    u32::try_from(pauses).unwrap_or(u32::MAX).clamp(1, 1000) + 1
}

/// How long after a Twilio call's lease ran out the takeover watcher leaves it to Twilio's
/// resume request, before recording it `node_lost`: the whole attempt budget, and at least
/// [`MIN_GRACE`].
pub fn grace(lease: Duration) -> Duration {
    let waits = Duration::from_secs(u64::from(PAUSE_SECS) * u64::from(attempt_budget(lease)));
    (waits + Duration::from_secs(10)).max(MIN_GRACE)
}

/// The attempt a request is (`?attempt=N`, 1 when absent or not a number).
fn attempt_of(uri: &Uri) -> u32 {
    uri.query()
        .into_iter()
        .flat_map(|q| url::form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == "attempt")
        .and_then(|(_, v)| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1)
}

/// `POST /twilio/resume`.
pub async fn resume(
    State(state): State<Arc<AppState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(base) = state.config.twilio_resume_base_url.clone() else {
        return plain(
            StatusCode::NOT_FOUND,
            "this server does not resume Twilio calls ([twilio] resume_base_url is not set)\n",
        );
    };
    let params = match verified_call(&state, &base, &uri, &headers, &body) {
        Ok(params) => params,
        Err(refused) => return refused.response(),
    };
    let call_sid = params.call_sid();
    let account_sid = params.get("AccountSid").unwrap_or_default();
    let attempt = attempt_of(&uri);
    let Some(history) = state.history.clone().filter(CallHistory::is_shared) else {
        tracing::info!(
            call_sid,
            "a resume request, but the store is not shared: hanging up"
        );
        return twiml(twiml::hang_up());
    };
    let resume = Resume {
        state: &state,
        history: &history,
        call_sid,
        attempt,
    };
    let found = match tokio::time::timeout(STORE_DEADLINE, history.find_twilio_call(call_sid)).await
    {
        Ok(Ok(found)) => found,
        Ok(Err(error)) => {
            tracing::warn!(call_sid, %error, "could not look the call up to resume it");
            return resume.wait_or_give_up(None).await;
        }
        Err(_) => {
            tracing::warn!(call_sid, "looking the call up took over {STORE_DEADLINE:?}");
            return resume.wait_or_give_up(None).await;
        }
    };
    let Some(found) = found else {
        tracing::info!(
            call_sid,
            "a resume request for a call the store does not know: hanging up"
        );
        return twiml(twiml::hang_up());
    };
    if found.call.ended_at.is_some() {
        // Its node ended the call on purpose (the stream closing at a hang-up brings Twilio
        // here too): nothing to resume.
        return twiml(twiml::hang_up());
    }
    resume.take_over(found, account_sid).await
}

/// One resume request, once signed and parsed.
struct Resume<'a> {
    state: &'a Arc<AppState>,
    history: &'a CallHistory,
    call_sid: &'a str,
    attempt: u32,
}

impl Resume<'_> {
    /// Takes a running call over and connects its new stream here, or asks Twilio to wait.
    async fn take_over(&self, found: FoundCall, account_sid: &str) -> Response {
        let (state, call_sid) = (self.state, self.call_sid);
        let now = Timestamp::now().as_millis();
        if let Some(lease) = &found.lease
            && lease.expires_at.as_millis() > now
        {
            tracing::info!(
                call_sid,
                attempt = self.attempt,
                "a resume request for a call whose lease is still held; the caller waits"
            );
            return self.wait_or_give_up(Some(&found)).await;
        }
        let Some(route) = state
            .agents
            .iter()
            .position(|agent| agent.name() == found.agent)
        else {
            tracing::error!(call_sid, agent = %found.agent, "a call to resume has an agent no route of this node serves; hanging up");
            self.record_end(&found, "failed").await;
            return twiml(twiml::hang_up());
        };
        let slot = match state.admit_call(route) {
            Ok(slot) => slot,
            Err(no) => {
                // The next attempt may reach a node with room.
                tracing::warn!(call_sid, "{}: the call to resume waits", no.why());
                return self.wait_or_give_up(Some(&found)).await;
            }
        };
        let adopted = match tokio::time::timeout(
            STORE_DEADLINE,
            self.history.adopt_conversation(found.conversation.clone()),
        )
        .await
        {
            Ok(Ok(adopted)) => adopted,
            Ok(Err(HistoryError::ConversationInUse { .. })) => {
                return self.wait_or_give_up(Some(&found)).await;
            }
            Ok(Err(error)) => {
                tracing::warn!(call_sid, %error, "could not take the call over to resume it");
                return self.wait_or_give_up(Some(&found)).await;
            }
            Err(_) => {
                tracing::warn!(
                    call_sid,
                    "taking the call over took over {STORE_DEADLINE:?}"
                );
                return self.wait_or_give_up(Some(&found)).await;
            }
        };
        let pending = PendingCall {
            call_sid: call_sid.to_owned(),
            route,
            from: found.call.caller.clone(),
            to: found.call.callee.clone(),
            account_sid: account_sid.to_owned(),
            slot,
            resumed: Some(ResumedCall {
                adopted,
                answered_at: found.call.started_at,
                last_holder: found.lease.map(|l| l.holder).unwrap_or_default(),
            }),
        };
        let issued = std::time::Instant::now();
        state.tokens.prune(issued);
        match state.tokens.issue(pending, issued) {
            Ok(token) => {
                tracing::info!(
                    call_sid,
                    route,
                    "resuming a call whose node died; waiting for its new media stream"
                );
                twiml(twiml::connect_stream(
                    &state.config.media_stream_url(),
                    action_url(state, 1).as_deref(),
                    &[(TOKEN_PARAMETER, &token)],
                ))
            }
            Err(err) => {
                tracing::error!("{err}");
                plain(StatusCode::SERVICE_UNAVAILABLE, "try again later\n")
            }
        }
    }

    /// `<Pause>` and `<Redirect>` to the next attempt, or, past the budget, the call recorded
    /// `node_lost` and `<Hangup/>`.
    async fn wait_or_give_up(&self, found: Option<&FoundCall>) -> Response {
        let budget = attempt_budget(self.history.lease());
        let next = action_url(self.state, self.attempt.saturating_add(1));
        match next {
            Some(next) if self.attempt < budget => {
                twiml(twiml::pause_then_redirect(PAUSE_SECS, &next))
            }
            _ => {
                tracing::warn!(
                    call_sid = self.call_sid,
                    attempts = self.attempt,
                    "a call could not be resumed within its attempts; hanging up"
                );
                if let Some(found) = found {
                    self.record_end(found, "node_lost").await;
                }
                twiml(twiml::hang_up())
            }
        }
    }

    async fn record_end(&self, found: &FoundCall, outcome: &'static str) {
        let ended = tokio::time::timeout(
            STORE_DEADLINE,
            self.history
                .end_unreachable_call(&found.conversation, outcome),
        )
        .await;
        if !matches!(ended, Ok(Ok(()))) {
            tracing::warn!(
                call_sid = self.call_sid,
                "could not record the end of a call that was not resumed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_covers_two_leases_and_the_grace_covers_the_budget() {
        assert_eq!(attempt_budget(Duration::from_secs(10)), 11);
        assert_eq!(attempt_budget(Duration::from_millis(1500)), 3);
        assert_eq!(attempt_budget(Duration::from_millis(1)), 2);
        for lease in [1, 10, 60] {
            let lease = Duration::from_secs(lease);
            let waits = Duration::from_secs(u64::from(PAUSE_SECS * attempt_budget(lease)));
            assert!(grace(lease) > waits);
            assert!(grace(lease) >= MIN_GRACE);
        }
    }

    #[test]
    fn the_attempt_comes_from_the_query() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(attempt_of(&uri("/twilio/resume")), 1);
        assert_eq!(attempt_of(&uri("/twilio/resume?attempt=4")), 4);
        assert_eq!(attempt_of(&uri("/twilio/resume?attempt=x")), 1);
        assert_eq!(attempt_of(&uri("/twilio/resume?attempt=0")), 1);
    }
}
