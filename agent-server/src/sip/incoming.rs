//! A `realtime.call.incoming` event: who calls whom, and whether this server takes the call.
//!
//! The decision is made while the webhook is being answered (it only looks at memory), and
//! carried out afterwards through REST: an accepted call holds its capacity slot from here
//! on; a refused one is rejected with a SIP status, never with the webhook's HTTP status.

use serde::Deserialize;

use crate::{
    capacity::CallSlot,
    platform::valid_call_id,
    state::{AppState, NoSlot},
};

/// SIP 404: the called user is not served here.
pub const NOT_FOUND: u16 = 404;
/// SIP 486: every call slot is in use, or the agent's daily spend cap is reached.
pub const BUSY_HERE: u16 = 486;
/// SIP 503: the server is draining.
pub const UNAVAILABLE: u16 = 503;

/// The event's envelope: only `type` and `data` matter.
#[derive(Debug, Deserialize)]
pub struct Event {
    /// `realtime.call.incoming`, or another event type (acknowledged, not processed).
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's payload.
    #[serde(default)]
    pub data: serde_json::Value,
}

#[derive(Debug, Deserialize)]
struct IncomingData {
    call_id: String,
    #[serde(default)]
    sip_headers: Vec<SipHeader>,
}

#[derive(Debug, Deserialize)]
struct SipHeader {
    name: String,
    value: String,
}

/// An incoming SIP call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingCall {
    /// The platform's call id (`rtc_...`).
    pub call_id: String,
    /// The caller: the user part of `From` (a number, usually).
    pub from: String,
    /// The called user: the user part of `To`, which picks the agent.
    pub to: String,
}

impl IncomingCall {
    /// The call an incoming event announces, or why the event cannot be used.
    pub fn from_event(event: &Event) -> Result<IncomingCall, String> {
        let data: IncomingData = serde_json::from_value(event.data.clone())
            .map_err(|err| format!("its data is not a call: {err}"))?;
        if !valid_call_id(&data.call_id) {
            return Err("its call_id is not a platform call id".into());
        }
        let header = |names: &[&str]| {
            data.sip_headers
                .iter()
                .find(|h| names.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
                .map(|h| sip_user(&h.value))
                .unwrap_or_default()
        };
        Ok(IncomingCall {
            from: header(&["From", "f"]),
            to: header(&["To", "t"]),
            call_id: data.call_id,
        })
    }
}

/// The user part of a SIP name-addr: `"Shop" <sip:support@host>;tag=1` → `support`.
pub fn sip_user(value: &str) -> String {
    let uri = match (value.find('<'), value.find('>')) {
        (Some(start), Some(end)) if start < end => &value[start + 1..end],
        _ => value.split(';').next().unwrap_or(value),
    };
    let uri = uri.trim();
    let rest = ["sips:", "sip:", "tel:"]
        .iter()
        .find_map(|scheme| uri.strip_prefix(scheme))
        .unwrap_or(uri);
    let user = rest.split(['@', ';', '?']).next().unwrap_or("");
    user.chars().take(128).collect()
}

/// What the server does with a call.
#[derive(Debug)]
pub enum Decision {
    /// Accept it with this route's agent; the slot is held for the call's length.
    Accept {
        /// The route.
        route: usize,
        /// The call's capacity slot.
        slot: CallSlot,
    },
    /// Reject it with this SIP status.
    Reject {
        /// 404, 486 or 503.
        status: u16,
        /// Why, for the log.
        why: &'static str,
    },
}

/// Picks the agent by the called user and checks drain, spend cap and capacity.
pub fn decide(state: &AppState, call: &IncomingCall) -> Decision {
    if state.capacity.is_draining() {
        return reject(UNAVAILABLE, "the server is draining");
    }
    let Some(route) = state
        .config
        .routes
        .iter()
        .position(|r| r.sip_users.contains(&call.to))
    else {
        return reject(NOT_FOUND, "no route answers this SIP user");
    };
    match state.admit_call(route) {
        Ok(slot) => Decision::Accept { route, slot },
        Err(NoSlot::Draining) => reject(UNAVAILABLE, "the server is draining"),
        Err(NoSlot::SpendCap) => reject(BUSY_HERE, "the route's daily spend cap is reached"),
        Err(NoSlot::Full) => reject(BUSY_HERE, "every call slot is in use"),
    }
}

fn reject(status: u16, why: &'static str) -> Decision {
    Decision::Reject { status, why }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_part_of_sip_headers() {
        assert_eq!(sip_user("<sip:support@sip.api.openai.com>"), "support");
        assert_eq!(
            sip_user("\"Shop\" <sips:+15550100@x.example;transport=tls>;tag=9"),
            "+15550100"
        );
        assert_eq!(sip_user("sip:sales@x;tag=1"), "sales");
        assert_eq!(sip_user("<tel:+15550111>"), "+15550111");
        assert_eq!(sip_user("garbage"), "garbage");
        assert_eq!(sip_user(""), "");
    }

    #[test]
    fn an_incoming_event_names_the_call_and_both_users() {
        let event: Event = serde_json::from_value(serde_json::json!({
            "type": "realtime.call.incoming",
            "data": {"call_id": "rtc_1", "sip_headers": [
                {"name": "from", "value": "<sip:+15550111@carrier>;tag=1"},
                {"name": "To", "value": "<sip:support@sip.api.openai.com>"},
            ]},
        }))
        .unwrap();
        let call = IncomingCall::from_event(&event).unwrap();
        assert_eq!(
            call,
            IncomingCall {
                call_id: "rtc_1".into(),
                from: "+15550111".into(),
                to: "support".into(),
            }
        );
        let bad: Event = serde_json::from_value(serde_json::json!({
            "type": "realtime.call.incoming",
            "data": {"call_id": "../x", "sip_headers": []},
        }))
        .unwrap();
        assert!(IncomingCall::from_event(&bad).is_err());
    }
}
