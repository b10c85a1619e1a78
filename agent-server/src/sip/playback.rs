//! What the caller of a SIP call is hearing, from the platform's `output_audio_buffer.started`,
//! `.stopped` and `.cleared` events on the sideband.
//!
//! On a SIP call the platform plays the agent's audio, so "the goodbye has been played" is its
//! `output_audio_buffer.stopped`, not the end of the response (which comes while the audio is
//! still playing). The session loop does not turn these events into session events, so a
//! [`WireObserver`] reads them off the wire as they arrive, before the session handles the
//! frame: by the time the session reports a response done, a `started` that preceded it is
//! already seen. The call reads [`PlaybackWatch::playing`] after every event and feeds the
//! policy, which then hangs up or transfers only once the line is quiet.

use std::sync::Arc;

use agent_core::session::{Direction, WireObserver};
use tokio::sync::watch;

/// The platform's playback events carry this prefix; no other frame does, save a transcript
/// quoting it, which the type check below rules out.
const PREFIX: &str = "output_audio_buffer.";

/// The call's side: whether the platform is playing the agent's audio.
#[derive(Debug)]
pub struct PlaybackWatch {
    sender: Arc<watch::Sender<bool>>,
    playing: watch::Receiver<bool>,
}

impl PlaybackWatch {
    /// A watch and the observer that feeds it, chained to `inner` (a trace, say) so that it
    /// still sees every frame.
    pub fn new(inner: Option<Arc<dyn WireObserver>>) -> (PlaybackWatch, Arc<dyn WireObserver>) {
        let (tx, rx) = watch::channel(false);
        let sender = Arc::new(tx);
        let observer = PlaybackObserver {
            playing: sender.clone(),
            inner,
        };
        let watch = PlaybackWatch {
            sender,
            playing: rx,
        };
        (watch, Arc::new(observer))
    }

    /// Whether the agent's audio is playing now.
    pub fn playing(&self) -> bool {
        *self.playing.borrow()
    }

    /// Completes when playback starts or stops (never, once the session is gone).
    pub async fn changed(&mut self) {
        if self.playing.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A re-attached sideband may have missed a `stopped`: the line counts as quiet until the
    /// platform says otherwise, rather than holding an ending for its whole grace time.
    pub fn reset(&mut self) {
        self.sender.send_replace(false);
        self.playing.mark_unchanged();
    }
}

struct PlaybackObserver {
    playing: Arc<watch::Sender<bool>>,
    inner: Option<Arc<dyn WireObserver>>,
}

impl WireObserver for PlaybackObserver {
    fn frame(&self, direction: Direction, text: &str) {
        if let Some(inner) = &self.inner {
            inner.frame(direction, text);
        }
        if direction != Direction::Received || !text.contains(PREFIX) {
            return;
        }
        if let Some(playing) = playback_change(text) {
            self.playing.send_if_modified(|now| {
                let changed = *now != playing;
                *now = playing;
                changed
            });
        }
    }

    fn note(&self, kind: &str, data: &serde_json::Value) {
        if let Some(inner) = &self.inner {
            inner.note(kind, data);
        }
    }
}

/// `Some(true)` for `started`, `Some(false)` for `stopped` and `cleared`, `None` otherwise.
fn playback_change(text: &str) -> Option<bool> {
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    let typed: Typed<'_> = serde_json::from_str(text).ok()?;
    match typed.kind.strip_prefix(PREFIX)? {
        "started" => Some(true),
        "stopped" | "cleared" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_plays_and_stopped_or_cleared_ends_it() {
        let (mut watch, observer) = PlaybackWatch::new(None);
        assert!(!watch.playing());
        observer.frame(
            Direction::Received,
            r#"{"event_id":"e1","type":"output_audio_buffer.started","response_id":"r1"}"#,
        );
        assert!(watch.playing());
        // Ours, or a transcript that quotes the name, changes nothing.
        observer.frame(Direction::Sent, r#"{"type":"output_audio_buffer.clear"}"#);
        observer.frame(
            Direction::Received,
            r#"{"type":"response.output_audio_transcript.delta","delta":"output_audio_buffer.stopped"}"#,
        );
        assert!(watch.playing());
        observer.frame(
            Direction::Received,
            r#"{"type":"output_audio_buffer.stopped","response_id":"r1"}"#,
        );
        assert!(!watch.playing());
        observer.frame(
            Direction::Received,
            r#"{"type":"output_audio_buffer.started"}"#,
        );
        watch.reset();
        assert!(!watch.playing(), "a re-attach counts as quiet");
    }
}
