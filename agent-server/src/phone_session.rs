//! The session config of a phone call: the agent's own (tools, history, cost, limits, the
//! same session loop `agent run` drives), with what the phone transport pins.
//!
//! A phone line carries 8 kHz μ-law both ways, so both formats are `audio/pcmu` whatever the
//! agent file says (no resampling, and no handoff can change them mid-call), and the model
//! answers with audio. Playback is what the transport reports (Twilio's marks), and the tools
//! see the call through `ToolContext::phone_call`.

use std::sync::Arc;

use agent_core::{
    agent::{Agent, ConnectConfigError, ConnectOverrides},
    audio::PlaybackClock,
    protocol::{AudioFormat, Modality},
    session::SessionConfig,
    tool::PhoneCall,
};

/// The config of one call's session.
pub fn session_config(
    agent: &Agent,
    overrides: &ConnectOverrides,
    call: PhoneCall,
    clock: PlaybackClock,
) -> Result<SessionConfig, ConnectConfigError> {
    let mut config = agent.session_config(overrides, None)?;
    config.session.audio_input_mut().format = Some(AudioFormat::Pcmu);
    config.session.audio_output_mut().format = Some(AudioFormat::Pcmu);
    config.session.output_modalities = Some(vec![Modality::Audio]);
    config.playback = clock;
    let mut tools = (*config.tool_config).clone();
    tools.insert_extension(call);
    config.tool_config = Arc::new(tools);
    Ok(config)
}
