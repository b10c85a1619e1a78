//! Audio files for `agent run`: the `--input-audio` stream and the `--output-audio` record, plus
//! the synthetic "voice" offline runs speak with when no file is given.

use std::{path::PathBuf, time::Duration};

use agent_core::{
    audio::{InputConverter, WavAudio, WavWriter, decode_into, samples_for_ms},
    protocol::{AudioFormat, ClientEvent},
    session::{SessionEvent, SessionHandle},
};
use anyhow::Context;

/// Something that sees every session event a conversation renders (the output file, a
/// transcript view).
pub type EventTap = Box<dyn FnMut(&SessionEvent) + Send>;

/// The audio options of `agent run`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AudioArgs {
    /// Speak this WAV file to the agent (any rate and channel count; converted to the session's
    /// input format and streamed in real time). With --offline, each utterance the server's VAD
    /// finds replaces the next scripted user turn.
    #[arg(long, value_name = "FILE.wav")]
    pub input_audio: Option<PathBuf>,
    /// Write what the assistant said (what the user heard, cut where they interrupted) to this
    /// 16-bit PCM WAV file. Switches the agent's replies to audio for this run.
    #[arg(long, value_name = "FILE.wav")]
    pub output_audio: Option<PathBuf>,
    /// Stream audio (--input-audio, or the synthetic speech of offline transcription runs) as
    /// fast as possible instead of in real time; assistant audio then counts as heard the moment
    /// it arrives.
    #[arg(long)]
    pub no_pace: bool,
    /// Talk through the microphone and speaker (needs a build with `--features audio-device`).
    #[arg(long, conflicts_with = "input_audio")]
    pub voice: bool,
    /// Audio per `input_audio_buffer.append` event, in ms.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(10..=500))]
    pub chunk_ms: u32,
}

impl AudioArgs {
    /// Whether any audio option was given.
    pub fn wanted(&self) -> bool {
        self.input_audio.is_some() || self.output_audio.is_some() || self.voice
    }
}

/// Records assistant audio to a WAV file, keeping only what the user heard: when an item is
/// interrupted, the file is cut back to where its playback stopped.
#[derive(Debug)]
pub struct WavSink {
    writer: WavWriter,
    format: AudioFormat,
    /// Recent items and the sample at which each starts in the file.
    starts: Vec<(String, u64)>,
    decoded: Vec<i16>,
    /// The first write error; later audio is dropped.
    pub error: Option<String>,
}

impl WavSink {
    /// A sink writing `format` audio, decoded to PCM16 at the format's rate, to `path`.
    pub fn create(path: &std::path::Path, format: AudioFormat) -> anyhow::Result<WavSink> {
        let writer = WavWriter::create(path, format.sample_rate())
            .with_context(|| "cannot write --output-audio".to_owned())?;
        // The recording is the conversation: owner-only, like traces and the history.
        agent_core::private_file::restrict(path)
            .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
        Ok(WavSink {
            writer,
            format,
            starts: Vec::new(),
            decoded: Vec::new(),
            error: None,
        })
    }

    /// Takes the audio out of one session event.
    pub fn on_event(&mut self, event: &SessionEvent) {
        if self.error.is_some() {
            return;
        }
        let result = match event {
            SessionEvent::Audio { item_id, data, .. } => self.audio(item_id, data),
            SessionEvent::Interrupted {
                item_id,
                audio_end_ms,
            } => self.interrupted(item_id, *audio_end_ms),
            SessionEvent::Idle => self.writer.flush().map_err(anyhow::Error::from),
            _ => Ok(()),
        };
        if let Err(err) = result {
            self.error = Some(format!("{err:#}"));
        }
    }

    fn audio(&mut self, item_id: &str, data: &[u8]) -> anyhow::Result<()> {
        if !self.starts.iter().any(|(id, _)| id == item_id) {
            if self.starts.len() == 64 {
                self.starts.remove(0);
            }
            self.starts
                .push((item_id.to_owned(), self.writer.samples_written()));
        }
        self.decoded.clear();
        decode_into(self.format, data, &mut self.decoded)?;
        self.writer.write(&self.decoded)?;
        Ok(())
    }

    fn interrupted(&mut self, item_id: &str, audio_end_ms: u64) -> anyhow::Result<()> {
        let Some(start) = self
            .starts
            .iter()
            .find(|(id, _)| id == item_id)
            .map(|(_, s)| *s)
        else {
            return Ok(());
        };
        let ms = u32::try_from(audio_end_ms).unwrap_or(u32::MAX);
        let keep = start + samples_for_ms(ms, self.format.sample_rate()) as u64;
        self.writer.truncate(keep)?;
        Ok(())
    }

    /// Milliseconds written so far.
    pub fn duration_ms(&self) -> u64 {
        agent_core::audio::duration_ms(
            self.writer.samples_written() as usize,
            self.format.sample_rate(),
        )
    }

    /// Completes the file.
    pub fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(err) = &self.error {
            anyhow::bail!("{err}");
        }
        self.writer.finish()?;
        Ok(())
    }
}

/// How to stream audio into a session.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// The session's input format.
    pub format: AudioFormat,
    /// Audio per append event.
    pub chunk_ms: u32,
    /// Send at real time (true) or as fast as possible.
    pub pace: bool,
    /// Silence appended after the audio so server VAD ends the last turn.
    pub trailing_silence_ms: u32,
    /// Commit the buffer at the end and ask for a response (push-to-talk sessions).
    pub commit: bool,
}

/// Streams `audio` into the session as `input_audio_buffer.append` events; returns the
/// milliseconds sent.
pub async fn stream(
    handle: SessionHandle,
    audio: WavAudio,
    options: StreamOptions,
) -> anyhow::Result<u64> {
    let mut converter = InputConverter::new(
        audio.sample_rate,
        audio.channels,
        options.format,
        options.chunk_ms,
    )?;
    let channels = usize::from(audio.channels.max(1));
    let block = samples_for_ms(options.chunk_ms, audio.sample_rate).max(1) * channels;
    let silence =
        vec![0i16; samples_for_ms(options.trailing_silence_ms, audio.sample_rate) * channels];
    let mut pacer = Pacer {
        handle: &handle,
        start: tokio::time::Instant::now(),
        chunk: Duration::from_millis(u64::from(options.chunk_ms)),
        pace: options.pace,
        sent: 0,
    };
    for piece in audio.samples.chunks(block).chain(silence.chunks(block)) {
        for event in converter.push_i16(piece) {
            pacer.send(event).await?;
        }
    }
    for event in converter.finish() {
        pacer.send(event).await?;
    }
    let sent_ms = u64::from(pacer.sent) * u64::from(options.chunk_ms);
    if options.commit {
        handle
            .commit_audio()
            .await
            .context("the session ended before the audio was committed")?;
    }
    Ok(sent_ms)
}

/// Sends append events, each at its real-time moment when pacing.
struct Pacer<'a> {
    handle: &'a SessionHandle,
    start: tokio::time::Instant,
    chunk: Duration,
    pace: bool,
    sent: u32,
}

impl Pacer<'_> {
    async fn send(&mut self, event: ClientEvent) -> anyhow::Result<()> {
        if self.pace {
            tokio::time::sleep_until(self.start + self.chunk * self.sent).await;
        }
        self.sent = self.sent.saturating_add(1);
        self.handle
            .send_event(event)
            .await
            .context("the session ended while audio was streaming")
    }
}

/// The sample rate of the synthetic voice.
const VOICE_RATE: u32 = 16_000;

/// A deterministic stand-in for speech: one burst of a voiced, syllable-modulated buzz per
/// utterance, with silence around and between them. Loud enough for any energy VAD, so the
/// scripted server hears one user turn per burst. `utterances` are the burst lengths in ms.
pub fn synthetic_speech(utterances: &[u32], gap_ms: u32) -> WavAudio {
    let mut samples = Vec::new();
    let silence = |ms: u32, samples: &mut Vec<i16>| {
        samples.extend(std::iter::repeat_n(0i16, samples_for_ms(ms, VOICE_RATE)));
    };
    silence(300, &mut samples);
    for (n, &ms) in utterances.iter().enumerate() {
        if n > 0 {
            silence(gap_ms, &mut samples);
        }
        let len = samples_for_ms(ms, VOICE_RATE);
        let fade = samples_for_ms(20, VOICE_RATE).min(len / 2).max(1);
        for i in 0..len {
            let t = i as f64 / f64::from(VOICE_RATE);
            // A 140 Hz voice with falling harmonics, four syllables a second.
            let voice: f64 = (1..=6)
                .map(|h| (std::f64::consts::TAU * 140.0 * f64::from(h) * t).sin() / f64::from(h))
                .sum();
            let syllables = 0.65 + 0.35 * (std::f64::consts::TAU * 4.0 * t).sin();
            let edge = (i.min(len - 1 - i) as f64 / fade as f64).min(1.0);
            samples.push((voice * syllables * edge * 6_000.0).round() as i16);
        }
    }
    silence(600, &mut samples);
    WavAudio {
        sample_rate: VOICE_RATE,
        channels: 1,
        samples,
    }
}

/// A burst length for an utterance of `text`: about as long as saying it, within 0.6–4 s.
pub fn utterance_ms(text: &str) -> u32 {
    let chars = u32::try_from(text.chars().count()).unwrap_or(u32::MAX);
    chars.saturating_mul(60).clamp(600, 4_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample WAV shipped under `agents/audio/`: one question, as synthetic speech.
    fn sample_question() -> WavAudio {
        synthetic_speech(&[1_500], 0)
    }

    fn repo(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path)
    }

    /// The shipped sample is exactly what the generator makes; `UPDATE_SAMPLE_AUDIO=1`
    /// regenerates it.
    #[test]
    fn the_shipped_sample_wav_is_generated() {
        let path = repo("agents/audio/question.wav");
        let audio = sample_question();
        if std::env::var_os("UPDATE_SAMPLE_AUDIO").is_some() {
            let mut writer = WavWriter::create(&path, audio.sample_rate).unwrap();
            writer.write(&audio.samples).unwrap();
            writer.finish().unwrap();
        }
        let shipped = agent_core::audio::read_wav(&path).unwrap();
        assert_eq!(
            shipped, audio,
            "run with UPDATE_SAMPLE_AUDIO=1 to regenerate"
        );
        assert_eq!(shipped.duration_ms(), 2_400);
    }

    #[test]
    fn the_sink_cuts_interrupted_items_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut sink = WavSink::create(&path, AudioFormat::pcm16()).unwrap();
        let audio = |item: &str, ms: usize| SessionEvent::Audio {
            response_id: "r".into(),
            item_id: item.into(),
            data: vec![1; ms * 48],
        };
        sink.on_event(&audio("a", 500));
        sink.on_event(&audio("a", 500));
        sink.on_event(&SessionEvent::Interrupted {
            item_id: "a".into(),
            audio_end_ms: 300,
        });
        assert_eq!(sink.duration_ms(), 300);
        sink.on_event(&audio("b", 200));
        sink.on_event(&SessionEvent::Interrupted {
            item_id: "unknown".into(),
            audio_end_ms: 0,
        });
        assert_eq!(sink.duration_ms(), 500);
        sink.finish().unwrap();
        assert_eq!(
            agent_core::audio::read_wav(&path).unwrap().duration_ms(),
            500
        );
    }

    #[test]
    fn g711_output_is_decoded_at_8k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mu.wav");
        let mut sink = WavSink::create(&path, AudioFormat::Pcmu).unwrap();
        sink.on_event(&SessionEvent::Audio {
            response_id: "r".into(),
            item_id: "a".into(),
            data: vec![0x80; 800],
        });
        sink.finish().unwrap();
        let wav = agent_core::audio::read_wav(&path).unwrap();
        assert_eq!(wav.sample_rate, 8_000);
        assert_eq!(wav.samples.len(), 800);
        assert_eq!(wav.samples[0], 32_124);
    }
}
