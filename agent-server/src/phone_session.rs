//! The session config of a phone call: the agent's own (tools, history, cost, limits, the
//! same session loop `agent run` drives), with what the phone transport pins.
//!
//! A phone line carries 8 kHz μ-law both ways, so both formats are `audio/pcmu` whatever the
//! agent file says (no resampling, and no handoff can change them mid-call), and the model
//! answers with audio. Playback is what the transport reports (Twilio's marks), and the tools
//! see the call through `ToolContext::phone_call`.
//!
//! A program that embeds the server (`agent call` printing a call's transcript) may watch
//! every call's wire through a [`SessionObserver`].

use std::sync::{Arc, OnceLock};

use agent_core::{
    agent::{Agent, ConnectConfigError, ConnectOverrides},
    audio::PlaybackClock,
    protocol::{AudioFormat, Modality},
    session::{SessionConfig, WireObserver},
    tool::PhoneCall,
};

/// The observer every call's session reports its frames and notes to, set at most once by
/// the embedding program before calls come in; unset (the usual case), sessions have none.
#[derive(Default)]
pub struct SessionObserver(OnceLock<Arc<dyn WireObserver>>);

impl SessionObserver {
    /// Sets the observer; `false` when one was set already (the first one stays).
    pub fn set(&self, observer: Arc<dyn WireObserver>) -> bool {
        self.0.set(observer).is_ok()
    }

    /// The observer, if one was set.
    pub fn get(&self) -> Option<Arc<dyn WireObserver>> {
        self.0.get().cloned()
    }
}

impl std::fmt::Debug for SessionObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SessionObserver")
            .field(&self.0.get().is_some())
            .finish()
    }
}

/// The config of one call's session; `observer` sees its wire, when set.
pub fn session_config(
    agent: &Agent,
    overrides: &ConnectOverrides,
    call: PhoneCall,
    clock: PlaybackClock,
    observer: Option<Arc<dyn WireObserver>>,
) -> Result<SessionConfig, ConnectConfigError> {
    let mut config = agent.session_config(overrides, observer)?;
    config.session.audio_input_mut().format = Some(AudioFormat::Pcmu);
    config.session.audio_output_mut().format = Some(AudioFormat::Pcmu);
    config.session.output_modalities = Some(vec![Modality::Audio]);
    config.playback = clock;
    let mut tools = (*config.tool_config).clone();
    tools.insert_extension(call);
    config.tool_config = Arc::new(tools);
    Ok(config)
}
