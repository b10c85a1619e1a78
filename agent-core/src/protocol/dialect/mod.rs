//! The two dialects of the Realtime protocol and how their event names relate.
//!
//! GA (`gpt-realtime`, no beta header) is the default. The beta dialect (header
//! `OpenAI-Beta: realtime=v1`) is still spoken by Azure OpenAI and many compatible servers: it
//! names a few server events differently, uses a flat session object and older content-part
//! types. Decoding accepts both; encoding follows the dialect of the connection.

pub(crate) mod beta;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Which wire dialect a connection speaks. A connection setting: pick it once per transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// The GA protocol (`gpt-realtime`), spoken by `api.openai.com` without a beta header.
    #[default]
    Ga,
    /// The beta protocol (`OpenAI-Beta: realtime=v1`), spoken by Azure OpenAI and many
    /// compatible servers.
    Beta,
}

impl Dialect {
    /// The lowercase name used in agent files and logs (`ga` or `beta`).
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Ga => "ga",
            Dialect::Beta => "beta",
        }
    }

    /// The extra HTTP header the WebSocket handshake must carry for this dialect, if any.
    pub fn handshake_header(self) -> Option<(&'static str, &'static str)> {
        match self {
            Dialect::Ga => None,
            Dialect::Beta => Some(("OpenAI-Beta", "realtime=v1")),
        }
    }

    /// Guesses the dialect a server speaks from one of its event types: `Some` only for the
    /// types that exist in one dialect alone (`response.audio.delta` is beta,
    /// `response.output_audio.delta` and `conversation.item.added` are GA).
    pub fn of_server_event_type(event_type: &str) -> Option<Dialect> {
        if beta::server_type_to_ga(event_type).is_some()
            || event_type == "transcription_session.updated"
        {
            Some(Dialect::Beta)
        } else if beta::ga_server_type_to_beta(event_type).is_some_and(|beta| beta != event_type)
            || beta::GA_ONLY_SERVER_TYPES.contains(&event_type)
        {
            Some(Dialect::Ga)
        } else {
            None
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a dialect name that is neither `ga` nor `beta`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown protocol dialect `{0}`: use `ga` (OpenAI GA API) or `beta` (OpenAI-Beta: realtime=v1, e.g. Azure)"
)]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ga" => Ok(Dialect::Ga),
            "beta" => Ok(Dialect::Beta),
            _ => Err(UnknownDialect(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_lowercase() {
        assert_eq!(serde_json::to_string(&Dialect::Beta).unwrap(), "\"beta\"");
        assert_eq!(
            serde_json::from_str::<Dialect>("\"ga\"").unwrap(),
            Dialect::Ga
        );
        assert_eq!(Dialect::default(), Dialect::Ga);
        assert_eq!("Beta".parse::<Dialect>().unwrap(), Dialect::Beta);
        assert!("v2".parse::<Dialect>().is_err());
    }

    #[test]
    fn guesses_dialect_from_event_types() {
        assert_eq!(
            Dialect::of_server_event_type("response.audio.delta"),
            Some(Dialect::Beta)
        );
        assert_eq!(
            Dialect::of_server_event_type("response.output_audio.delta"),
            Some(Dialect::Ga)
        );
        assert_eq!(
            Dialect::of_server_event_type("conversation.item.added"),
            Some(Dialect::Ga)
        );
        assert_eq!(Dialect::of_server_event_type("response.done"), None);
        assert_eq!(
            Dialect::handshake_header(Dialect::Beta),
            Some(("OpenAI-Beta", "realtime=v1"))
        );
    }
}
