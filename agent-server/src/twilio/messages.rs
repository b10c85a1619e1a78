//! The JSON messages of a Twilio media stream (see shared/telephony.md), both ways.
//!
//! Inbound messages are parsed leniently: unknown fields are ignored, and a message that does
//! not parse is reported to the caller of [`parse`], which logs and skips it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A message from Twilio.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// The socket is open.
    Connected {},
    /// The stream starts: which call, which format, the TwiML's parameters.
    Start {
        /// The stream's details.
        start: Start,
    },
    /// 20 ms of the caller's audio.
    Media {
        /// The audio.
        media: Media,
    },
    /// A mark we sent was reached: all audio before it was played.
    Mark {
        /// Which mark.
        mark: MarkBody,
    },
    /// The caller pressed a key.
    Dtmf {
        /// Which key.
        dtmf: Dtmf,
    },
    /// The call ended.
    Stop {},
}

/// The `start` message's details.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    /// The call.
    pub call_sid: String,
    /// The stream; every message we send names it.
    pub stream_sid: String,
    /// The TwiML's `<Parameter>`s.
    #[serde(default)]
    pub custom_parameters: BTreeMap<String, String>,
    /// The audio format; Twilio sends 8 kHz μ-law.
    #[serde(default)]
    pub media_format: Option<MediaFormat>,
}

/// The stream's audio format.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    /// `audio/x-mulaw`.
    pub encoding: String,
    /// 8000.
    pub sample_rate: u32,
    /// 1.
    #[serde(default = "one")]
    pub channels: u32,
}

fn one() -> u32 {
    1
}

impl MediaFormat {
    /// Whether this is the 8 kHz mono μ-law that passes through as `audio/pcmu`.
    pub fn is_pcmu(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("audio/x-mulaw")
            && self.sample_rate == 8000
            && self.channels == 1
    }
}

/// A `media` message's audio.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Media {
    /// `inbound` (the caller) or `outbound`; absent means inbound.
    #[serde(default)]
    pub track: Option<String>,
    /// Base64 μ-law.
    pub payload: String,
}

/// A mark's name.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct MarkBody {
    /// The name we gave it.
    pub name: String,
}

/// A key press.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Dtmf {
    /// `0`-`9`, `*`, `#`.
    pub digit: String,
}

/// Which message it is.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Event {
    Connected,
    Start,
    Media,
    Mark,
    Dtmf,
    Stop,
}

/// Any message, read in one pass. serde's internally tagged enums buffer every field of the
/// message (each string copied) before picking the variant; a `media` frame comes 50 times
/// a second per call, so the envelope reads the tag and the body side by side instead.
#[derive(Deserialize)]
struct Envelope {
    event: Event,
    start: Option<Start>,
    media: Option<Media>,
    mark: Option<MarkBody>,
    dtmf: Option<Dtmf>,
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Inbound, serde_json::Error> {
    let envelope: Envelope = serde_json::from_str(text)?;
    let missing = |field: &str| {
        <serde_json::Error as serde::de::Error>::custom(format!(
            "a {:?} message without its `{field}`",
            envelope.event
        ))
    };
    Ok(match envelope.event {
        Event::Connected => Inbound::Connected {},
        Event::Stop => Inbound::Stop {},
        Event::Start => Inbound::Start {
            start: envelope.start.ok_or_else(|| missing("start"))?,
        },
        Event::Media => Inbound::Media {
            media: envelope.media.ok_or_else(|| missing("media"))?,
        },
        Event::Mark => Inbound::Mark {
            mark: envelope.mark.ok_or_else(|| missing("mark"))?,
        },
        Event::Dtmf => Inbound::Dtmf {
            dtmf: envelope.dtmf.ok_or_else(|| missing("dtmf"))?,
        },
    })
}

/// A message to Twilio.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Outbound {
    /// Audio to play, queued after what is already queued.
    Media {
        /// The stream.
        #[serde(rename = "streamSid")]
        stream_sid: String,
        /// The audio.
        media: OutboundMedia,
    },
    /// Echoed back once everything queued before it has played.
    Mark {
        /// The stream.
        #[serde(rename = "streamSid")]
        stream_sid: String,
        /// Its name.
        mark: MarkBody,
    },
    /// Drops all queued audio (barge-in); pending marks come back at once.
    Clear {
        /// The stream.
        #[serde(rename = "streamSid")]
        stream_sid: String,
    },
}

/// Outbound audio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundMedia {
    /// Base64 μ-law at 8 kHz.
    pub payload: String,
}

impl Outbound {
    /// The frame's text.
    pub fn to_text(&self) -> String {
        // A derived Serialize of strings cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_messages_of_the_telephony_notes() {
        let start = parse(
            r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1","start":{"accountSid":"AC1",
            "callSid":"CA1","streamSid":"MZ1","tracks":["inbound"],"mediaFormat":{"encoding":
            "audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"token":"t"}}}"#,
        )
        .unwrap();
        let Inbound::Start { start } = start else {
            panic!("{start:?}")
        };
        assert_eq!(start.call_sid, "CA1");
        assert_eq!(start.custom_parameters["token"], "t");
        assert!(start.media_format.unwrap().is_pcmu());
        assert_eq!(
            parse(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}"#).unwrap(),
            Inbound::Mark {
                mark: MarkBody { name: "m1".into() }
            }
        );
        assert!(matches!(
            parse(r#"{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}"#).unwrap(),
            Inbound::Dtmf { dtmf } if dtmf.digit == "5"
        ));
        assert_eq!(
            parse(r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#).unwrap(),
            Inbound::Connected {}
        );
        for bad in [
            "not json",
            r#"{"event":"media"}"#,
            r#"{"event":"teleport"}"#,
            r#"{"media":{"payload":"AA=="}}"#,
            r#"{"event":"start","start":{"callSid":1}}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outbound_messages_have_twilios_shape() {
        let media = Outbound::Media {
            stream_sid: "MZ1".into(),
            media: OutboundMedia {
                payload: "AAE=".into(),
            },
        };
        assert_eq!(
            media.to_text(),
            r#"{"event":"media","streamSid":"MZ1","media":{"payload":"AAE="}}"#
        );
        assert_eq!(
            Outbound::Clear {
                stream_sid: "MZ1".into()
            }
            .to_text(),
            r#"{"event":"clear","streamSid":"MZ1"}"#
        );
    }
}
