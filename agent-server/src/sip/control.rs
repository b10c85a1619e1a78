//! [`CallControl`] for a SIP call: `end_call` and `transfer_call` (and the policy's own
//! hang-ups) through the platform's REST API, `POST /v1/realtime/calls/{call_id}/hangup` and
//! `/refer`. The policy decides when; this only does it, within [`Platform`]'s deadline and
//! retry budget.

use agent_core::agent::TransferDestination;
use async_trait::async_trait;

use crate::{
    phone::{CallControl, CallControlError},
    platform::{Platform, PlatformError},
};

const WHAT: &str = "the OpenAI platform";

/// Hangs up or transfers one SIP call.
#[derive(Debug, Clone)]
pub struct SipControl {
    platform: Platform,
    call_id: String,
}

impl SipControl {
    /// Control of call `call_id` through `platform`.
    pub fn new(platform: Platform, call_id: &str) -> Self {
        SipControl {
            platform,
            call_id: call_id.to_owned(),
        }
    }
}

/// The `target_uri` a REFER sends the call to: numbers as `tel:` URIs, SIP URIs as they are.
pub fn refer_uri(destination: &TransferDestination) -> String {
    match destination {
        TransferDestination::Number(number) => format!("tel:{number}"),
        TransferDestination::Sip(uri) => uri.clone(),
    }
}

#[async_trait]
impl CallControl for SipControl {
    async fn hang_up(&self) -> Result<(), CallControlError> {
        match self.platform.hangup(&self.call_id).await {
            // The call had already ended on the platform's side: what was asked is done.
            Err(err) if err.status() == Some(404) => Ok(()),
            done => done.map_err(control_error),
        }
    }

    async fn transfer(&self, destination: &TransferDestination) -> Result<(), CallControlError> {
        self.platform
            .refer(&self.call_id, &refer_uri(destination))
            .await
            .map_err(control_error)
    }
}

fn control_error(err: PlatformError) -> CallControlError {
    match err {
        PlatformError::Unreachable { reason, .. } => {
            CallControlError::Unreachable { what: WHAT, reason }
        }
        PlatformError::Refused {
            status, message, ..
        } => CallControlError::Refused {
            what: WHAT,
            status,
            message,
        },
        err @ PlatformError::BadCallId(_) => CallControlError::Unavailable(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_referred_as_tel_uris_and_sip_uris_as_they_are() {
        assert_eq!(
            refer_uri(&TransferDestination::Number("+15550123".into())),
            "tel:+15550123"
        );
        assert_eq!(
            refer_uri(&TransferDestination::Sip("sip:billing@example.com".into())),
            "sip:billing@example.com"
        );
    }
}
