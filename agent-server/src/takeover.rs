//! Taking over the calls of a node that died, when several nodes share one PostgreSQL store.
//!
//! Every call a node answers is leased in the store ([`CallHistory::store_call`]) and the
//! lease renewed every third of its length (`[history] lease_secs`, 10 s by default). A node
//! that dies (`kill -9`, a lost machine) stops renewing; every node looks for such calls every
//! tenth of the lease ([`watch`]) and the first to take a lost call's lease goes on with it.
//! A lease runs out between two thirds of a lease and a whole lease after the death, so a
//! call is found at most a tenth of a lease (plus jitter) after that, which keeps takeover
//! within the lease and a second or two. A look is one indexed query per node:
//!
//! - **SIP calls and browser (WebRTC) calls** are held by the platform, which keeps the call and its conversation when
//!   the sideband drops (this is what the code assumes; see the README). The new node attaches
//!   a sideband to the same `call_id` ([`crate::sip::call::resume`],
//!   [`crate::browser::sideband::resume`]): its session starts from the
//!   stored conversation and the stored tool-call records, so no recorded call runs again and
//!   the calls the dead node left without an output are answered (or run, if they never
//!   started). If the platform ended the call instead, the attach is refused and the call is
//!   recorded as failed.
//! - **Twilio calls** die with their node (the media stream was a connection to it), so there
//!   is nothing to attach to. With `[twilio] resume_base_url`, Twilio itself brings the call
//!   back through `<Connect action>` to `/twilio/resume` on a live node
//!   ([`crate::twilio::resume`]), so the watcher leaves such a call alone for a grace period
//!   past its lease ([`crate::twilio::resume::grace`]). A call not resumed by then (or any
//!   Twilio call without the setting) is recorded as ended with outcome `node_lost`, never
//!   left running in the history. So is a call no route of this node can go on with.
//!
//! A node takes over only while it has a free call slot, so a full node leaves the call to
//! another; of two nodes trying at once, the lease decides (one atomic write).

use std::{sync::Arc, time::Duration};

use agent_core::history::HistoryError;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// The most lost calls looked at per round.
const BATCH: usize = 32;

/// How often per lease each node looks for lost calls (agent-bench's §11 text says so too).
const LOOKS_PER_LEASE: u32 = 10;

/// Looks for lost calls every tenth of the lease (and again at once after a round that took
/// a full batch) until `stop`; returns at once when the store is not shared.
pub(crate) async fn watch(state: Arc<AppState>, stop: CancellationToken) {
    let Some(history) = state.history.clone() else {
        return;
    };
    if !history.is_shared() {
        return;
    }
    let every = history.lease() / LOOKS_PER_LEASE;
    let resumable = crate::twilio::resume::action_url(&state, 1).is_some();
    let grace = crate::twilio::resume::grace(history.lease());
    let mut more = false;
    loop {
        // A little jitter, so nodes started together do not all ask at once. A round that
        // found a full batch and took it looks again at once: a dead node leaves all its calls
        // at one time, and a pause per batch would make the last of 500 calls wait 16 rounds.
        let jitter = Duration::from_millis(fastrand::u64(..=every.as_millis() as u64 / 5));
        let pause = if more { Duration::ZERO } else { every + jitter };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(pause) => {}
        }
        more = false;
        if state.capacity.is_draining() {
            continue;
        }
        let orphans = match tokio::time::timeout(every, history.orphaned_calls(BATCH)).await {
            Ok(Ok(orphans)) => orphans,
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not look for calls of nodes that died");
                continue;
            }
            Err(_) => {
                tracing::warn!("looking for calls of nodes that died took longer than {every:?}");
                continue;
            }
        };
        let full = orphans.len() == BATCH;
        let mut took_all = true;
        let history = &history;
        let mut adopting = Vec::new();
        for orphan in orphans {
            let call_id = orphan.call.call_id.clone();
            let attachable = match orphan.call.transport.as_str() {
                "sip" => state.sip.is_some(),
                "webrtc" => state.browser.is_some(),
                _ => false,
            };
            if resumable
                && orphan.call.transport == "twilio"
                && in_grace(orphan.lease_expired_at, grace)
            {
                // Twilio may still bring it back through /twilio/resume.
                took_all = false;
                continue;
            }
            if !attachable {
                match history.close_orphan(&orphan, "node_lost").await {
                    Ok(()) => tracing::info!(
                        call_id,
                        transport = %orphan.call.transport,
                        from = %orphan.last_holder,
                        "a call ended with the node that held it"
                    ),
                    Err(HistoryError::ConversationInUse { .. }) => {}
                    Err(error) => {
                        took_all = false;
                        tracing::warn!(call_id, %error, "could not record a lost call's end")
                    }
                }
                continue;
            }
            let Some(slot) = state.capacity.try_take() else {
                // Full: another node takes it.
                took_all = false;
                break;
            };
            adopting.push(async move {
                let adopted = history.adopt(&orphan).await;
                (adopted, orphan, slot)
            });
        }
        // The batch's leases are taken together: the store's writer commits queued writes as
        // one transaction, so 32 calls cost about one round trip instead of 32.
        for (adopted, orphan, slot) in futures_util::future::join_all(adopting).await {
            let call_id = orphan.call.call_id.clone();
            match adopted {
                Ok(adopted) if orphan.call.transport == "webrtc" => {
                    state.calls.spawn(crate::browser::sideband::resume(
                        state.clone(),
                        orphan,
                        adopted,
                        slot,
                    ));
                }
                Ok(adopted) => {
                    state.calls.spawn(crate::sip::call::resume(
                        state.clone(),
                        orphan,
                        adopted,
                        slot,
                    ));
                }
                // Another node was faster.
                Err(HistoryError::ConversationInUse { .. }) => {}
                Err(error) => {
                    took_all = false;
                    tracing::warn!(call_id, %error, "could not take over a call of a node that died");
                }
            }
        }
        more = full && took_all;
    }
}

/// Whether a lease that ran out at `expired` is still within `grace` of it.
fn in_grace(expired: agent_core::history::Timestamp, grace: Duration) -> bool {
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    agent_core::history::Timestamp::now().as_millis() < expired.as_millis().saturating_add(grace_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent_core::history::Timestamp;

    #[test]
    fn a_lease_is_in_grace_until_the_grace_has_passed() {
        let now = Timestamp::now().as_millis();
        let grace = Duration::from_secs(30);
        assert!(in_grace(Timestamp::from_millis(now - 1_000), grace));
        assert!(!in_grace(Timestamp::from_millis(now - 31_000), grace));
    }
}
