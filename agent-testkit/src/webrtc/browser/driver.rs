//! The test browser's task: str0m, its UDP socket, the `oai-events` channel and the
//! microphone's 20 ms pacing.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use serde_json::Value;
use str0m::{Event, IceConnectionState, Rtc, channel::ChannelId, media::Mid};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};

use crate::webrtc::{
    EVENTS_CHANNEL,
    io::RtcSocket,
    opus::{FRAME, SILENT_FRAME, TICKS_PER_FRAME, TONE_FRAME},
};

/// What the test asks of the browser's task.
#[derive(Debug)]
pub(super) enum Command {
    /// A client event for `oai-events`.
    Send(String),
    /// Frames for the microphone track, 20 ms each: voiced (the tone) or silent.
    Audio(Vec<bool>),
    /// Hang up.
    Close,
}

/// What the browser's task shares with the handle.
#[derive(Debug, Default)]
pub(super) struct Shared {
    pub(super) audio_received: AtomicU64,
    pub(super) audio_sent: AtomicU64,
    /// The peer connection ended (ICE disconnected, the channel closed, hung up).
    pub(super) ended: AtomicBool,
}

/// The browser's task: str0m, its socket, and the microphone's pacing.
pub(super) struct Driver {
    rtc: Rtc,
    io: RtcSocket,
    mid: Mid,
    channel: Option<ChannelId>,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Value>,
    open: watch::Sender<bool>,
    shared: Arc<Shared>,
    /// Microphone frames still to send: voiced or silent.
    audio: VecDeque<bool>,
    audio_next_at: Option<Instant>,
    rtp_ticks: u64,
    connected: bool,
}

impl Driver {
    /// A task for `rtc` on `io`, whose offer (audio on `mid`) was answered.
    pub(super) fn new(
        (rtc, io, mid): (Rtc, RtcSocket, Mid),
        commands: mpsc::UnboundedReceiver<Command>,
        events: mpsc::UnboundedSender<Value>,
        open: watch::Sender<bool>,
        shared: Arc<Shared>,
    ) -> Driver {
        Driver {
            rtc,
            io,
            mid,
            channel: None,
            commands,
            events,
            open,
            shared,
            audio: VecDeque::new(),
            audio_next_at: None,
            rtp_ticks: 0,
            connected: false,
        }
    }

    pub(super) async fn run(mut self) {
        let why = self.drive().await;
        tracing::debug!(%why, "test browser: call over");
        self.shared.ended.store(true, Ordering::Relaxed);
        self.io.close(&mut self.rtc).await;
    }

    async fn drive(&mut self) -> String {
        loop {
            while let Some(event) = self.io.events.pop_front() {
                if let Err(why) = self.on_event(event) {
                    return why;
                }
            }
            let mut wake = self.io.timeout;
            if let Some(at) = self.audio_next_at {
                wake = wake.min(at);
            }
            let step = tokio::select! {
                readable = self.io.readable() => match readable {
                    Ok(()) => self.io.receive(&mut self.rtc).map_err(|e| e.to_string()),
                    Err(e) => Err(format!("the UDP socket failed: {e}")),
                },
                command = self.commands.recv() => match command {
                    None | Some(Command::Close) => return "hung up".into(),
                    Some(Command::Send(text)) => self.write(&text),
                    Some(Command::Audio(frames)) => {
                        self.audio.extend(frames);
                        self.audio_next_at.get_or_insert_with(Instant::now);
                        Ok(())
                    }
                },
                () = tokio::time::sleep_until(wake) => self.on_time(),
            };
            if let Err(why) = step {
                return why;
            }
        }
    }

    fn on_event(&mut self, event: Event) -> Result<(), String> {
        match event {
            Event::Connected => self.connected = true,
            Event::Closed => return Err("the platform closed the peer connection".into()),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.connected => {
                return Err("ICE disconnected".into());
            }
            Event::ChannelOpen(id, label) if label == EVENTS_CHANNEL => {
                self.channel = Some(id);
                let _ = self.open.send(true);
            }
            Event::ChannelData(data) if Some(data.id) == self.channel => {
                let text = String::from_utf8_lossy(&data.data);
                let event = serde_json::from_str(&text).unwrap_or(Value::String(text.into_owned()));
                let _ = self.events.send(event);
            }
            Event::ChannelClose(id) if Some(id) == self.channel => {
                return Err(format!("the platform closed `{EVENTS_CHANNEL}`"));
            }
            Event::MediaData(_) => {
                self.shared.audio_received.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes a client event to `oai-events`.
    fn write(&mut self, text: &str) -> Result<(), String> {
        let Some(id) = self.channel else {
            return Err(format!("`{EVENTS_CHANNEL}` is not open"));
        };
        let written = self
            .io
            .mutate(&mut self.rtc, |rtc| match rtc.channel(id) {
                Some(mut channel) => channel.write(false, text.as_bytes()),
                None => Ok(false),
            })
            .map_err(|e| e.to_string())?;
        if !written {
            tracing::warn!(
                bytes = text.len(),
                "test browser: the data channel is full; event not sent"
            );
        }
        Ok(())
    }

    fn on_time(&mut self) -> Result<(), String> {
        let now = Instant::now();
        if now >= self.io.timeout {
            self.io.tick(&mut self.rtc).map_err(|e| e.to_string())?;
        }
        if self.audio_next_at.is_some_and(|at| at <= now) {
            self.send_audio_frame()?;
            self.audio_next_at = (!self.audio.is_empty()).then(|| now + FRAME);
        }
        Ok(())
    }

    /// Sends the next microphone frame.
    fn send_audio_frame(&mut self) -> Result<(), String> {
        let Some(voiced) = self.audio.pop_front() else {
            return Ok(());
        };
        self.rtp_ticks += TICKS_PER_FRAME;
        let frame: &[u8] = if voiced { &TONE_FRAME } else { &SILENT_FRAME };
        let sent = self
            .io
            .write_opus(&mut self.rtc, self.mid, self.rtp_ticks, frame)
            .map_err(|e| e.to_string())?;
        if sent {
            self.shared.audio_sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}
