//! WAV files in and out: recorded input for a session, and a record of what the assistant said.
//!
//! Any PCM WAV reads (8, 16, 24 or 32-bit integers, or 32-bit floats; any rate and channel
//! count) into interleaved 16-bit samples, which [`super::InputConverter`] turns into the
//! session's format (decoding uses `hound`). Output is always 16-bit mono PCM, the most widely
//! playable WAV, written by a small writer of our own that can also cut audio back.

use std::{
    fs::File,
    io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
};

use crate::fs_limits::{MAX_WAV_SAMPLES, MAX_WAV_SECONDS, ReadError, open_regular};

/// A whole WAV file in memory, as interleaved 16-bit samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavAudio {
    /// Frames per second.
    pub sample_rate: u32,
    /// Channels per frame.
    pub channels: u16,
    /// Interleaved samples (`channels` per frame).
    pub samples: Vec<i16>,
}

impl WavAudio {
    /// Frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// The length in whole milliseconds.
    pub fn duration_ms(&self) -> u64 {
        super::duration_ms(self.frames(), self.sample_rate)
    }
}

/// Why a WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// The input file could not be read: missing, or not a regular file.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The input is longer than [`MAX_WAV_SECONDS`] (or holds more than [`MAX_WAV_SAMPLES`]),
    /// so it is refused before it is decoded into memory.
    #[error(
        "{path} holds {minutes} minutes of {channels}-channel audio at {rate} Hz; audio input \
         takes at most {} minutes (and no more samples than an hour of 48 kHz stereo), so cut \
         it (`sox IN OUT.wav trim 0 3600`) or downmix and resample it \
         (`sox IN -c 1 -r 24000 OUT.wav`) first",
        MAX_WAV_SECONDS / 60,
        path = path.display()
    )]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Its length as its header declares it, in whole minutes (rounded up).
        minutes: u64,
        /// Its sample rate.
        rate: u32,
        /// Its channel count.
        channels: u16,
    },
    /// The output file could not be created.
    #[error("cannot open {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a WAV file the reader understands.
    #[error(
        "{path} is not a readable WAV file ({message}); convert it to 16-bit PCM WAV, e.g. \
         `sox IN -b 16 OUT.wav` or `ffmpeg -i IN -c:a pcm_s16le OUT.wav`"
    )]
    Format {
        /// The file.
        path: PathBuf,
        /// What the decoder said.
        message: String,
    },
    /// Writing failed (disk full, file removed...).
    #[error("cannot write {path}: {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Reads a whole WAV file: a regular file of at most [`MAX_WAV_SECONDS`] of audio.
pub fn read_wav(path: impl AsRef<Path>) -> Result<WavAudio, WavError> {
    let path = path.as_ref();
    let file = open_regular(path, "WAV file")?;
    decode(BufReader::new(file)).map_err(|problem| match problem {
        Problem::Format(message) => WavError::Format {
            path: path.to_owned(),
            message,
        },
        Problem::TooLong {
            minutes,
            rate,
            channels,
        } => WavError::TooLong {
            path: path.to_owned(),
            minutes,
            rate,
            channels,
        },
    })
}

/// Reads a WAV stream of at most [`MAX_WAV_SECONDS`] of audio; the error is the decoder's
/// message.
pub fn read_wav_from(reader: impl Read) -> Result<WavAudio, String> {
    decode(reader).map_err(|problem| match problem {
        Problem::Format(message) => message,
        Problem::TooLong {
            minutes,
            rate,
            channels,
        } => format!(
            "{minutes} minutes of {channels}-channel audio at {rate} Hz, over the limit of {} \
             minutes (and of an hour of 48 kHz stereo samples)",
            MAX_WAV_SECONDS / 60
        ),
    })
}

/// Why a WAV stream was not decoded.
enum Problem {
    Format(String),
    TooLong {
        minutes: u64,
        rate: u32,
        channels: u16,
    },
}

fn decode(reader: impl Read) -> Result<WavAudio, Problem> {
    let mut wav = hound::WavReader::new(reader).map_err(|e| Problem::Format(e.to_string()))?;
    let spec = wav.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(Problem::Format(format!(
            "{} channels at {} Hz",
            spec.channels, spec.sample_rate
        )));
    }
    // The header says how much follows: a file too long to hold is refused before decoding.
    let frames = u64::from(wav.duration());
    let rate = u64::from(spec.sample_rate);
    if frames > rate * MAX_WAV_SECONDS || u64::from(wav.len()) > MAX_WAV_SAMPLES {
        return Err(Problem::TooLong {
            minutes: frames.div_ceil(rate * 60),
            rate: spec.sample_rate,
            channels: spec.channels,
        });
    }
    let samples: Vec<i16> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => wav
            .samples::<f32>()
            .map(|s| s.map(super::resample::f32_to_i16))
            .collect::<Result<_, _>>(),
        (hound::SampleFormat::Int, bits @ 1..=16) => {
            let shift = 16 - u32::from(bits);
            wav.samples::<i16>()
                .map(|s| s.map(|v| v << shift))
                .collect::<Result<_, _>>()
        }
        (hound::SampleFormat::Int, bits @ 17..=32) => {
            let shift = u32::from(bits) - 16;
            wav.samples::<i32>()
                .map(|s| s.map(|v| (v >> shift) as i16))
                .collect::<Result<_, _>>()
        }
        (format, bits) => {
            return Err(Problem::Format(format!(
                "{bits}-bit {format:?} samples are not supported"
            )));
        }
    }
    .map_err(|e| Problem::Format(e.to_string()))?;
    Ok(WavAudio {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
        samples,
    })
}

/// Writes a 16-bit mono PCM WAV file as samples arrive, and can cut it back
/// ([`WavWriter::truncate`]) when the user interrupted audio that was already written. The
/// header's lengths are fixed up by [`WavWriter::finish`] (or, best effort, on drop), and after
/// every [`WavWriter::flush`], so a file being written is always playable.
pub struct WavWriter {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    sample_rate: u32,
    samples: u64,
}

impl std::fmt::Debug for WavWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavWriter")
            .field("path", &self.path)
            .field("sample_rate", &self.sample_rate)
            .field("samples", &self.samples)
            .finish()
    }
}

/// The canonical 44-byte header of 16-bit mono PCM.
const HEADER_LEN: u64 = 44;

fn header(sample_rate: u32, samples: u64) -> [u8; HEADER_LEN as usize] {
    let data = u32::try_from(samples * 2).unwrap_or(u32::MAX - 36);
    let mut h = [0u8; HEADER_LEN as usize];
    let fields: [&[u8]; 13] = [
        b"RIFF",
        &(36 + data).to_le_bytes(),
        b"WAVE",
        b"fmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(), // PCM
        &1u16.to_le_bytes(), // mono
        &sample_rate.to_le_bytes(),
        &(sample_rate * 2).to_le_bytes(), // bytes per second
        &2u16.to_le_bytes(),              // bytes per frame
        &16u16.to_le_bytes(),             // bits per sample
        b"data",
        &data.to_le_bytes(),
    ];
    let mut at = 0;
    for field in fields {
        h[at..at + field.len()].copy_from_slice(field);
        at += field.len();
    }
    h
}

impl WavWriter {
    /// Creates (or replaces) `path` for `sample_rate` Hz mono audio.
    pub fn create(path: impl AsRef<Path>, sample_rate: u32) -> Result<WavWriter, WavError> {
        let path = path.as_ref().to_owned();
        let io = |source| WavError::Io {
            path: path.clone(),
            source,
        };
        let mut file = BufWriter::new(File::create(&path).map_err(io)?);
        file.write_all(&header(sample_rate, 0)).map_err(io)?;
        Ok(WavWriter {
            path,
            file: Some(file),
            sample_rate,
            samples: 0,
        })
    }

    fn write_error(&self, err: std::io::Error) -> WavError {
        WavError::Write {
            path: self.path.clone(),
            message: err.to_string(),
        }
    }

    /// Appends samples.
    pub fn write(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut bytes = [0u8; 4096];
        for round in samples.chunks(bytes.len() / 2) {
            for (pair, sample) in bytes.chunks_exact_mut(2).zip(round) {
                pair.copy_from_slice(&sample.to_le_bytes());
            }
            if let Err(err) = file.write_all(&bytes[..round.len() * 2]) {
                return Err(self.write_error(err));
            }
        }
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Cuts the audio back to its first `samples` samples (no-op when it is shorter).
    pub fn truncate(&mut self, samples: u64) -> Result<(), WavError> {
        if samples >= self.samples {
            return Ok(());
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let result = file.flush().and_then(|()| {
            let inner = file.get_mut();
            inner.set_len(HEADER_LEN + samples * 2)?;
            inner.seek(SeekFrom::End(0)).map(|_| ())
        });
        result.map_err(|err| self.write_error(err))?;
        self.samples = samples;
        Ok(())
    }

    /// Writes what is buffered and updates the header, so the file is complete as it stands.
    pub fn flush(&mut self) -> Result<(), WavError> {
        let rate = self.sample_rate;
        let samples = self.samples;
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let result = file.flush().and_then(|()| {
            let inner = file.get_mut();
            inner.seek(SeekFrom::Start(0))?;
            inner.write_all(&header(rate, samples))?;
            inner.seek(SeekFrom::End(0)).map(|_| ())
        });
        result.map_err(|err| self.write_error(err))
    }

    /// The sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Samples in the file so far.
    pub fn samples_written(&self) -> u64 {
        self.samples
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the final header and closes the file. Further writes are ignored.
    pub fn finish(&mut self) -> Result<(), WavError> {
        let result = self.flush();
        self.file = None;
        result
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        if let Err(err) = self.finish() {
            tracing::warn!("{err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.wav");
        let mut writer = WavWriter::create(&path, 8_000).unwrap();
        writer.write(&[1, -2, 3]).unwrap();
        writer.write(&[i16::MAX, i16::MIN]).unwrap();
        assert_eq!(writer.samples_written(), 5);
        writer.flush().unwrap();
        assert_eq!(
            read_wav(&path).unwrap().samples.len(),
            5,
            "playable mid-write"
        );
        writer.finish().unwrap();
        let audio = read_wav(&path).unwrap();
        assert_eq!(audio.sample_rate, 8_000);
        assert_eq!(audio.channels, 1);
        assert_eq!(audio.samples, [1, -2, 3, i16::MAX, i16::MIN]);
    }

    #[test]
    fn truncates_audio_already_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.wav");
        let mut writer = WavWriter::create(&path, 24_000).unwrap();
        let long: Vec<i16> = (0..10_000).map(|i| i as i16).collect();
        writer.write(&long).unwrap();
        writer.truncate(2_400).unwrap();
        writer.truncate(5_000).unwrap(); // longer than what is left: no-op
        writer.write(&[-7, -8]).unwrap();
        drop(writer);
        let audio = read_wav(&path).unwrap();
        assert_eq!(audio.samples.len(), 2_402);
        assert_eq!(audio.samples[2_399], 2_399);
        assert_eq!(&audio.samples[2_400..], [-7, -8]);
        assert_eq!(audio.duration_ms(), 100);
    }

    #[test]
    fn reads_other_sample_formats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for s in [0.5f32, -0.5, 1.0, -1.0] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        let audio = read_wav(&path).unwrap();
        assert_eq!(audio.channels, 2);
        assert_eq!(audio.frames(), 2);
        assert_eq!(audio.samples, [16_384, -16_384, 32_767, -32_768]);

        let path = dir.path().join("24.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        w.write_sample(0x12_3456i32).unwrap();
        w.write_sample(-0x40_0000i32).unwrap();
        w.finalize().unwrap();
        assert_eq!(read_wav(&path).unwrap().samples, [0x1234, -0x4000]);
    }

    #[test]
    fn bad_files_say_how_to_convert() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.wav");
        std::fs::write(&path, b"not a wav file at all").unwrap();
        let err = read_wav(&path).unwrap_err().to_string();
        assert!(err.contains("16-bit PCM WAV"), "{err}");
        assert!(matches!(
            read_wav(dir.path().join("missing.wav")),
            Err(WavError::Read(ReadError::Io { .. }))
        ));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn devices_are_not_read_as_audio() {
        let err = read_wav("/dev/zero").unwrap_err();
        assert!(
            matches!(err, WavError::Read(ReadError::NotRegular { .. })),
            "{err}"
        );
    }

    #[test]
    fn audio_over_an_hour_is_refused_before_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.wav");
        // A header that declares an hour and a second at 8 kHz, followed by a few samples.
        let declared = 8_000 * (MAX_WAV_SECONDS + 1);
        let mut bytes = header(8_000, declared).to_vec();
        bytes.extend_from_slice(&[0; 64]);
        std::fs::write(&path, bytes).unwrap();
        let err = read_wav(&path).unwrap_err();
        assert!(
            matches!(err, WavError::TooLong { minutes: 61, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("61 minutes of 1-channel audio at 8000 Hz; audio input takes at most 60"),
            "{err}"
        );
        // An hour exactly passes the limit, and fails only because its samples are missing.
        let mut bytes = header(8_000, 8_000 * MAX_WAV_SECONDS).to_vec();
        bytes.extend_from_slice(&[0; 64]);
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(read_wav(&path), Err(WavError::Format { .. })));
    }
}
