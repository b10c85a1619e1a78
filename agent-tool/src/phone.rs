//! The phone call a tool is serving, when its session answers one (`agent serve`).

use std::collections::BTreeMap;

/// Who called whom, over which transport, with the parameters the call was set up with.
///
/// `agent serve` attaches one to every call's tools (see [`crate::ToolContext::phone_call`]);
/// terminal sessions have none. The caller's number is personal data: log it only where the
/// operator chose to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhoneCall {
    /// `twilio` (Media Streams) or `sip` (OpenAI SIP).
    pub transport: String,
    /// The platform's id of the call (Twilio's `CallSid`, OpenAI's `call_id`).
    pub call_id: String,
    /// The caller's number or SIP URI.
    pub from: String,
    /// The called number or SIP URI.
    pub to: String,
    /// The call's custom parameters (Twilio's `<Parameter>`s), the server's own removed.
    pub parameters: BTreeMap<String, String>,
}

impl PhoneCall {
    /// A call over `transport` with id `call_id`, from `from` to `to`, without parameters.
    pub fn new(
        transport: impl Into<String>,
        call_id: impl Into<String>,
        from: impl Into<String>,
        to: impl Into<String>,
    ) -> Self {
        PhoneCall {
            transport: transport.into(),
            call_id: call_id.into(),
            from: from.into(),
            to: to.into(),
            parameters: BTreeMap::new(),
        }
    }

    /// The same call with these custom parameters.
    #[must_use]
    pub fn with_parameters(mut self, parameters: BTreeMap<String, String>) -> Self {
        self.parameters = parameters;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{ToolConfig, ToolContext};

    #[test]
    fn a_tool_sees_the_call_its_session_answers() {
        assert_eq!(ToolContext::standalone().phone_call(), None);
        let call = PhoneCall::new("twilio", "CA1", "+15550111", "+15550100")
            .with_parameters(BTreeMap::from([("campaign".into(), "spring".into())]));
        let mut config = ToolConfig::new();
        config.insert_extension(call.clone());
        let ctx = ToolContext::standalone().with_config(Arc::new(config));
        assert_eq!(ctx.phone_call(), Some(&call));
        assert_eq!(ctx.phone_call().unwrap().parameters["campaign"], "spring");
    }
}
