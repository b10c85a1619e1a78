//! One-time stream tokens: `/twilio/voice` hands one out in the TwiML's `<Parameter>`, bound to
//! the call's `CallSid`, and the media stream must present it in `start.customParameters`.
//!
//! Twilio allows no query string in `<Stream url>`, so the token travels as a parameter. A
//! token is removed the first time it is presented, right or wrong, so it cannot be replayed;
//! it expires after a short while, and while it waits it holds the call's capacity slot, which
//! goes back when the token expires.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::capacity::CallSlot;

/// The `<Parameter>` name that carries the token.
pub const TOKEN_PARAMETER: &str = "token";

/// A call that `/twilio/voice` accepted and whose stream has not connected yet.
#[derive(Debug)]
pub struct PendingCall {
    /// Twilio's id of the call.
    pub call_sid: String,
    /// The route (index into the config's routes) that answers it.
    pub route: usize,
    /// The caller's number.
    pub from: String,
    /// The called number.
    pub to: String,
    /// The Twilio account the call belongs to (for the REST API: hang-up, transfer).
    pub account_sid: String,
    /// Its capacity slot, held until the call ends.
    pub slot: CallSlot,
    /// Set when the call is one a dead node left and Twilio brought back
    /// (`/twilio/resume`): the stream goes on with its stored conversation.
    pub resumed: Option<ResumedCall>,
}

/// A call this node took over through `/twilio/resume`, waiting for its new stream. Dropped
/// unused (the token expired), its lease is no longer renewed and runs out, so the call can be
/// resumed again or recorded as lost.
#[derive(Debug)]
pub struct ResumedCall {
    /// The stored conversation and call records, leased by this node.
    pub adopted: crate::call_history::AdoptedCall,
    /// When the call was first answered: its length limit counts from there.
    pub answered_at: agent_core::history::Timestamp,
    /// The node that held the call before.
    pub last_holder: String,
}

/// Why a media stream's token was refused. The token itself is never in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    /// `start.customParameters` had no token.
    #[error("the stream's start message carries no token parameter")]
    Missing,
    /// The token was never issued, or was already used.
    #[error("the stream's token is unknown or was already used")]
    Unknown,
    /// The token was issued but its time ran out.
    #[error("the stream's token expired before the stream started")]
    Expired,
    /// The token belongs to another call.
    #[error("the stream's token was issued for another call")]
    WrongCall,
}

/// Tokens handed out and not used yet.
#[derive(Debug)]
pub struct StreamTokens {
    ttl: Duration,
    pending: Mutex<HashMap<String, (Instant, PendingCall)>>,
}

pub use crate::random::NoRandomness;

impl StreamTokens {
    /// Tokens valid for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        StreamTokens {
            ttl,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// A fresh token (256 random bits) for `call`.
    pub fn issue(&self, call: PendingCall, now: Instant) -> Result<String, NoRandomness> {
        let token = crate::random::token()?;
        let mut pending = self.lock();
        prune(&mut pending, now);
        pending.insert(token.clone(), (now + self.ttl, call));
        Ok(token)
    }

    /// Takes the token presented by the stream of `call_sid`: the pending call, or why not.
    /// Any token presented is used up, whatever the outcome.
    pub fn take(
        &self,
        token: Option<&str>,
        call_sid: &str,
        now: Instant,
    ) -> Result<PendingCall, TokenRefusal> {
        let token = token.ok_or(TokenRefusal::Missing)?;
        let mut pending = self.lock();
        let (expires, call) = pending.remove(token).ok_or(TokenRefusal::Unknown)?;
        prune(&mut pending, now);
        if now >= expires {
            return Err(TokenRefusal::Expired);
        }
        if call.call_sid != call_sid {
            return Err(TokenRefusal::WrongCall);
        }
        Ok(call)
    }

    /// Drops expired tokens, freeing their slots.
    pub fn prune(&self, now: Instant) {
        prune(&mut self.lock(), now);
    }

    /// Tokens waiting for their stream.
    pub fn waiting(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, PendingCall)>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn prune(pending: &mut HashMap<String, (Instant, PendingCall)>, now: Instant) {
    pending.retain(|_, (expires, _)| now < *expires);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capacity::Capacity;

    fn call(capacity: &Capacity, sid: &str) -> PendingCall {
        PendingCall {
            call_sid: sid.into(),
            route: 0,
            from: "+15550111".into(),
            to: "+15550100".into(),
            account_sid: "AC1".into(),
            slot: capacity.try_take().unwrap(),
            resumed: None,
        }
    }

    #[test]
    fn a_token_works_once_for_its_own_call_before_it_expires() {
        let capacity = Capacity::new(10);
        let tokens = StreamTokens::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let token = tokens.issue(call(&capacity, "CA1"), t0).unwrap();
        assert!(token.len() >= 43, "256 bits");
        let taken = tokens.take(Some(&token), "CA1", t0).unwrap();
        assert_eq!(taken.call_sid, "CA1");
        assert_eq!(
            tokens.take(Some(&token), "CA1", t0).unwrap_err(),
            TokenRefusal::Unknown,
            "replayed"
        );
        assert_eq!(
            tokens.take(None, "CA1", t0).unwrap_err(),
            TokenRefusal::Missing
        );
        assert_eq!(
            tokens.take(Some("guess"), "CA1", t0).unwrap_err(),
            TokenRefusal::Unknown
        );
    }

    #[test]
    fn stolen_and_expired_tokens_are_refused_and_free_their_slot() {
        let capacity = Capacity::new(10);
        let tokens = StreamTokens::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let stolen = tokens.issue(call(&capacity, "CA1"), t0).unwrap();
        assert_eq!(
            tokens.take(Some(&stolen), "CA2", t0).unwrap_err(),
            TokenRefusal::WrongCall
        );
        assert_eq!(
            tokens.take(Some(&stolen), "CA1", t0).unwrap_err(),
            TokenRefusal::Unknown,
            "a token presented once is used up"
        );
        let late = tokens.issue(call(&capacity, "CA3"), t0).unwrap();
        let later = t0 + Duration::from_secs(31);
        assert_eq!(
            tokens.take(Some(&late), "CA3", later).unwrap_err(),
            TokenRefusal::Expired
        );
        let _unused = tokens.issue(call(&capacity, "CA4"), t0).unwrap();
        tokens.prune(later);
        assert_eq!(tokens.waiting(), 0);
        assert_eq!(capacity.in_use(), 0, "every slot came back");
    }
}
