//! `agent run --voice`: the default microphone and speaker, through cpal (feature
//! `audio-device`).
//!
//! The microphone's audio (any rate, any channel count) is converted to the session's input
//! format and streamed as it comes; server VAD decides the turns. Assistant audio is decoded,
//! resampled to the speaker's rate and queued per item; the speaker's callback reports how much
//! of each item it actually played to the session's [`PlaybackClock`], so a barge-in truncates
//! exactly at what the user heard, and an interruption empties the queue at once.
//!
//! Use headphones: with loudspeakers, the microphone hears the assistant and interrupts it.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use agent_core::{
    audio::{InputConverter, OutputDecoder, PlaybackClock},
    protocol::AudioFormat,
    session::SessionEvent,
};
use anyhow::{Context, bail};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use tokio::sync::mpsc;

use crate::conversation::Conversation;

/// Microphone buffers waiting for the session task; older audio is dropped when it falls behind.
const MIC_QUEUE: usize = 64;

/// What the speaker still has to play, per item.
#[derive(Default)]
struct Player {
    items: VecDeque<Queued>,
}

struct Queued {
    item_id: String,
    samples: VecDeque<f32>,
    played_frames: u64,
}

impl Player {
    fn push(&mut self, item_id: &str, samples: &[i16]) {
        let fresh = self.items.back().is_none_or(|q| q.item_id != item_id);
        if fresh {
            self.items.push_back(Queued {
                item_id: item_id.to_owned(),
                samples: VecDeque::new(),
                played_frames: 0,
            });
        }
        if let Some(queued) = self.items.back_mut() {
            queued
                .samples
                .extend(samples.iter().map(|&s| f32::from(s) / 32768.0));
        }
    }

    /// Fills an interleaved output buffer and reports each item's position.
    fn fill(&mut self, out: &mut [f32], channels: usize, rate: u32, clock: &PlaybackClock) {
        for frame in out.chunks_mut(channels.max(1)) {
            let sample = loop {
                let Some(front) = self.items.front_mut() else {
                    break 0.0;
                };
                match front.samples.pop_front() {
                    Some(s) => {
                        front.played_frames += 1;
                        break s;
                    }
                    // Only drop a drained item once the next one has started arriving.
                    None if self.items.len() > 1 => {
                        self.items.pop_front();
                    }
                    None => break 0.0,
                }
            };
            frame.fill(sample);
        }
        for queued in &self.items {
            clock.report(
                &queued.item_id,
                queued.played_frames * 1000 / u64::from(rate.max(1)),
            );
        }
    }
}

/// Talks through the default devices until Ctrl-C or the end of the session.
pub async fn converse(
    conversation: &mut Conversation,
    format: AudioFormat,
    output_format: AudioFormat,
    chunk_ms: u32,
    clock: &PlaybackClock,
) -> anyhow::Result<()> {
    let host = cpal::default_host();
    let mic = host
        .default_input_device()
        .context("no microphone found (cpal has no default input device)")?;
    let speaker = host
        .default_output_device()
        .context("no speaker found (cpal has no default output device)")?;
    let mic_config = mic
        .default_input_config()
        .context("the microphone has no usable configuration")?;
    let speaker_config = speaker
        .default_output_config()
        .context("the speaker has no usable configuration")?;

    let (mic_tx, mut mic_rx) = mpsc::channel::<Vec<f32>>(MIC_QUEUE);
    let mic_stream = {
        let config = mic_config.config();
        let on_error = |err| eprintln!("microphone error: {err}");
        match mic_config.sample_format() {
            cpal::SampleFormat::F32 => mic.build_input_stream(
                config,
                move |data: &[f32], _: &cpal::InputCallbackInfo| {
                    let _ = mic_tx.try_send(data.to_vec());
                },
                on_error,
                None,
            ),
            cpal::SampleFormat::I16 => mic.build_input_stream(
                config,
                move |data: &[i16], _: &cpal::InputCallbackInfo| {
                    let _ = mic_tx.try_send(data.iter().map(|&s| f32::from(s) / 32768.0).collect());
                },
                on_error,
                None,
            ),
            other => {
                bail!("the microphone delivers {other} samples; only f32 and i16 are supported")
            }
        }
        .context("cannot open the microphone")?
    };

    let player = Arc::new(Mutex::new(Player::default()));
    let speaker_rate = speaker_config.sample_rate();
    let speaker_channels = usize::from(speaker_config.channels());
    if speaker_config.sample_format() != cpal::SampleFormat::F32 {
        bail!(
            "the speaker wants {} samples; only f32 output is supported",
            speaker_config.sample_format()
        );
    }
    let speaker_stream = {
        let player = Arc::clone(&player);
        let clock = clock.clone();
        speaker
            .build_output_stream(
                speaker_config.config(),
                move |out: &mut [f32], _: &cpal::OutputCallbackInfo| match player.try_lock() {
                    Ok(mut p) => p.fill(out, speaker_channels, speaker_rate, &clock),
                    Err(_) => out.fill(0.0),
                },
                |err| eprintln!("speaker error: {err}"),
                None,
            )
            .context("cannot open the speaker")?
    };
    mic_stream.play().context("cannot start the microphone")?;
    speaker_stream.play().context("cannot start the speaker")?;
    eprintln!(
        "listening on {} and speaking on {} — use headphones; Ctrl-C to quit.",
        mic.description()
            .map_or_else(|_| "the microphone".into(), |d| d.to_string()),
        speaker
            .description()
            .map_or_else(|_| "the speaker".into(), |d| d.to_string()),
    );

    let mut input = InputConverter::new(
        mic_config.sample_rate(),
        mic_config.channels(),
        format,
        chunk_ms,
    )?;
    let mut decoder = OutputDecoder::new(output_format, speaker_rate)?;
    let mut current_item: Option<String> = None;
    let mut decoded = Vec::new();
    let handle = conversation.session_mut().handle.clone();
    loop {
        tokio::select! {
            Some(block) = mic_rx.recv() => {
                for event in input.push_f32(&block) {
                    if handle.send_event(event).await.is_err() {
                        return Ok(());
                    }
                }
            }
            event = conversation.session_mut().events.recv() => {
                let Some(event) = event else { return Ok(()) };
                conversation.render(&event);
                let mut p = player.lock().unwrap_or_else(|e| e.into_inner());
                match &event {
                    SessionEvent::Audio { item_id, data, .. } => {
                        decoded.clear();
                        if current_item.as_deref() != Some(item_id) {
                            decoder.finish(&mut decoded);
                            if let Some(previous) = &current_item {
                                p.push(previous, &decoded);
                            }
                            decoded.clear();
                            current_item = Some(item_id.clone());
                        }
                        if decoder.push(data, &mut decoded).is_ok() {
                            p.push(item_id, &decoded);
                        }
                    }
                    SessionEvent::Interrupted { .. } => {
                        // Stop at once: nothing queued is heard any more.
                        p.items.clear();
                        decoder.reset();
                        current_item = None;
                    }
                    SessionEvent::Closed { .. } => return Ok(()),
                    _ => {}
                }
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\nclosing the session…");
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_player_reports_each_items_position_and_moves_on() {
        let clock = PlaybackClock::reported();
        let mut player = Player::default();
        player.push("a", &[1000; 100]);
        player.push("b", &[2000; 100]);
        let mut out = vec![0.0; 300]; // 150 stereo frames at 1 kHz
        player.fill(&mut out, 2, 1_000, &clock);
        assert_eq!(clock.reported_ms("a"), Some(100));
        assert_eq!(clock.reported_ms("b"), Some(50));
        assert_eq!(out[0], out[1], "mono on every channel");
        assert!(out[299] > out[0]);
    }
}
