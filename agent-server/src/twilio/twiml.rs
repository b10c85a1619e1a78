//! The TwiML answers to `/twilio/voice` and `/twilio/resume`: connect a bidirectional media
//! stream, reject, hang up, or hold the caller and ask again.

use std::fmt::Write as _;

/// The content type of TwiML answers.
pub const CONTENT_TYPE: &str = "text/xml; charset=utf-8";

/// `<Connect><Stream url=...>` with one `<Parameter>` per pair, so Twilio opens the media
/// stream and hands the parameters back in `start.customParameters`. With `action`, Twilio
/// requests that URL when the stream ends, so a call whose node died can be resumed
/// elsewhere; without it, the call ends with the stream.
pub fn connect_stream(url: &str, action: Option<&str>, parameters: &[(&str, &str)]) -> String {
    let mut xml = String::with_capacity(256);
    xml.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect"#);
    if let Some(action) = action {
        let _ = write!(xml, r#" action="{}" method="POST""#, escape(action));
    }
    xml.push_str(r#"><Stream url=""#);
    xml.push_str(&escape(url));
    xml.push_str(r#"">"#);
    for (name, value) in parameters {
        let _ = write!(
            xml,
            r#"<Parameter name="{}" value="{}"/>"#,
            escape(name),
            escape(value)
        );
    }
    xml.push_str("</Stream></Connect></Response>");
    xml
}

/// Why a call is refused: `busy` (at capacity, draining, over budget) or `rejected` (no agent
/// answers this number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// The caller hears a busy signal.
    Busy,
    /// The call is refused outright.
    Rejected,
}

/// `<Reject reason="..."/>`: the call is refused without being answered (and not billed).
pub fn reject(reason: RejectReason) -> String {
    let reason = match reason {
        RejectReason::Busy => "busy",
        RejectReason::Rejected => "rejected",
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Reject reason="{reason}"/></Response>"#
    )
}

/// `<Hangup/>`: the call ends (a resume request for a call that is over, or unknown).
pub fn hang_up() -> String {
    r#"<?xml version="1.0" encoding="UTF-8"?><Response><Hangup/></Response>"#.to_owned()
}

/// `<Pause>` then `<Redirect>` to `url`: the caller hears silence while another node's lease
/// on the call runs out, then Twilio asks again.
pub fn pause_then_redirect(seconds: u32, url: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Pause length="{seconds}"/><Redirect method="POST">{}</Redirect></Response>"#,
        escape(url)
    )
}

/// `<Dial>` to a number, or `<Dial><Sip>` to a SIP URI: a transfer. The destination was
/// checked when the agent file was read, and is escaped here all the same.
pub fn dial(destination: &agent_core::agent::TransferDestination) -> String {
    use agent_core::agent::TransferDestination;
    let inner = match destination {
        TransferDestination::Number(number) => escape(number),
        TransferDestination::Sip(uri) => format!("<Sip>{}</Sip>", escape(uri)),
    };
    format!(r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{inner}</Dial></Response>"#)
}

/// Escapes text for an XML attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_escapes_what_it_quotes() {
        let xml = connect_stream(
            "wss://voice.example.com/twilio/media-stream",
            None,
            &[("token", "a\"b<c&")],
        );
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Connect><Stream url=\"wss://voice.example.com/twilio/media-stream\"><Parameter name=\"token\" value=\"a&quot;b&lt;c&amp;\"/></Stream></Connect></Response>"
        );
    }

    #[test]
    fn resume_answers_name_their_urls() {
        let xml = connect_stream(
            "wss://b.example.com/twilio/media-stream",
            Some("https://lb.example.com/twilio/resume?attempt=1&x"),
            &[],
        );
        assert!(
            xml.contains(r#"<Connect action="https://lb.example.com/twilio/resume?attempt=1&amp;x" method="POST"><Stream url="wss://b.example.com/twilio/media-stream">"#),
            "{xml}"
        );
        assert!(hang_up().ends_with("<Response><Hangup/></Response>"));
        let wait = pause_then_redirect(2, "https://lb.example.com/twilio/resume?attempt=2");
        assert!(
            wait.ends_with(r#"<Response><Pause length="2"/><Redirect method="POST">https://lb.example.com/twilio/resume?attempt=2</Redirect></Response>"#),
            "{wait}"
        );
    }

    #[test]
    fn dial_sends_numbers_and_sip_uris() {
        use agent_core::agent::TransferDestination;
        let number = dial(&TransferDestination::Number("+15550123".into()));
        assert!(
            number.ends_with("<Response><Dial>+15550123</Dial></Response>"),
            "{number}"
        );
        let sip = dial(&TransferDestination::Sip("sip:a@b.example;x=1&y".into()));
        assert!(
            sip.contains("<Dial><Sip>sip:a@b.example;x=1&amp;y</Sip></Dial>"),
            "{sip}"
        );
    }

    #[test]
    fn reject_names_its_reason() {
        assert!(reject(RejectReason::Busy).contains(r#"<Reject reason="busy"/>"#));
        assert!(reject(RejectReason::Rejected).contains(r#"<Reject reason="rejected"/>"#));
    }
}
