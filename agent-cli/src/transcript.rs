//! How a transcription agent's output looks: live deltas, then each completed segment with its
//! item id and where it sits in the input audio.

use std::{collections::HashMap, fmt::Write as _, time::Instant};

use agent_core::session::SessionEvent;

/// Renders transcription events as lines of text.
#[derive(Debug)]
pub struct TranscriptView {
    started: Instant,
    /// Where each item's speech started and stopped in the input audio, in ms.
    spans: HashMap<String, (Option<u64>, Option<u64>)>,
    /// The item whose deltas are being written on the current line.
    open: Option<String>,
}

impl Default for TranscriptView {
    fn default() -> Self {
        TranscriptView {
            started: Instant::now(),
            spans: HashMap::new(),
            open: None,
        }
    }
}

/// `mm:ss.mmm`.
pub fn clock(ms: u64) -> String {
    format!("{:02}:{:02}.{:03}", ms / 60_000, ms / 1000 % 60, ms % 1000)
}

impl TranscriptView {
    /// The text to print for one event (possibly empty, possibly without a final newline while
    /// a segment is still streaming).
    pub fn show(&mut self, event: &SessionEvent) -> String {
        let mut out = String::new();
        match event {
            SessionEvent::SpeechStarted {
                item_id,
                audio_start_ms,
            } => {
                self.spans.entry(item_id.clone()).or_default().0 = Some(*audio_start_ms);
            }
            SessionEvent::SpeechStopped {
                item_id,
                audio_end_ms,
            } => {
                self.spans.entry(item_id.clone()).or_default().1 = Some(*audio_end_ms);
            }
            SessionEvent::UserTranscriptDelta { item_id, delta } => {
                if self.open.as_deref() != Some(item_id) {
                    self.end_line(&mut out);
                    let at = self
                        .spans
                        .get(item_id)
                        .and_then(|s| s.0)
                        .map_or_else(|| clock(self.started.elapsed().as_millis() as u64), clock);
                    let _ = write!(out, "… [{at}] {item_id}: ");
                    self.open = Some(item_id.clone());
                }
                out.push_str(delta);
            }
            SessionEvent::UserTranscript { item_id, text } => {
                self.end_line(&mut out);
                let span = match self.spans.remove(item_id) {
                    Some((Some(start), Some(end))) => format!("{} → {}", clock(start), clock(end)),
                    Some((Some(start), None)) => clock(start),
                    _ => clock(self.started.elapsed().as_millis() as u64),
                };
                let _ = writeln!(out, "✓ [{span}] {item_id}: {}", text.trim());
            }
            SessionEvent::Error { code, message, .. } => {
                self.end_line(&mut out);
                let _ = writeln!(
                    out,
                    "! error ({}): {message}",
                    code.as_deref().unwrap_or("error")
                );
            }
            _ => {}
        }
        out
    }

    fn end_line(&mut self, out: &mut String) {
        if self.open.take().is_some() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_stream_on_one_line_and_segments_show_their_span() {
        let mut view = TranscriptView::default();
        let mut text = String::new();
        for event in [
            SessionEvent::SpeechStarted {
                item_id: "i1".into(),
                audio_start_ms: 300,
            },
            SessionEvent::SpeechStopped {
                item_id: "i1".into(),
                audio_end_ms: 65_432,
            },
            SessionEvent::UserTranscriptDelta {
                item_id: "i1".into(),
                delta: "Hello ".into(),
            },
            SessionEvent::UserTranscriptDelta {
                item_id: "i1".into(),
                delta: "there.".into(),
            },
            SessionEvent::UserTranscript {
                item_id: "i1".into(),
                text: "Hello there.".into(),
            },
        ] {
            text.push_str(&view.show(&event));
        }
        assert_eq!(
            text,
            "… [00:00.300] i1: Hello there.\n✓ [00:00.300 → 01:05.432] i1: Hello there.\n"
        );
    }
}
