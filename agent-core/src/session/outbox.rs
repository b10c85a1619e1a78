//! Delivering [`SessionEvent`]s to the app without letting a slow app stall the socket.
//!
//! The session loop must keep reading the WebSocket whatever the app does: a loop that waits
//! for a full event channel stops reading frames, pings go unanswered, and when the app
//! catches up the keepalive check finds a connection that looks dead. So the loop never waits
//! here. Events go into a bounded channel; when it is full they wait in a backlog that the
//! loop drains as the app reads. In the backlog, text and audio deltas of the same item are
//! merged into one event (nothing is lost, it just arrives in bigger pieces); control events
//! (calls, outputs, errors, turn ends) are kept one by one. A backlog past its bound means the
//! app has stopped keeping up: the session ends with [`CloseReason::ConsumerTooSlow`] rather
//! than grow without limit or drop anything silently.

use std::{collections::VecDeque, time::Duration};

use tokio::sync::mpsc;

use super::events::{CloseReason, SessionEvent};

/// Limits of one session's event delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBuffer {
    /// Events the channel holds before the backlog starts.
    pub channel: usize,
    /// Events the backlog may hold (after merging deltas) before the session gives up.
    pub backlog_events: usize,
    /// Bytes of text and audio the backlog may hold before the session gives up.
    pub backlog_bytes: usize,
}

impl Default for EventBuffer {
    fn default() -> Self {
        EventBuffer {
            channel: 256,
            backlog_events: 4096,
            backlog_bytes: 32 * 1024 * 1024,
        }
    }
}

/// The app reads events too slowly: the backlog passed its bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooSlow {
    /// Events waiting when the bound was passed.
    pub waiting: usize,
}

impl From<TooSlow> for CloseReason {
    fn from(slow: TooSlow) -> Self {
        CloseReason::ConsumerTooSlow {
            waiting: slow.waiting,
        }
    }
}

/// The sending side of a session's event stream.
#[derive(Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<SessionEvent>,
    backlog: VecDeque<SessionEvent>,
    backlog_bytes: usize,
    limits: EventBuffer,
    /// The app dropped its receiver: events go nowhere, and that is fine.
    gone: bool,
}

impl Outbox {
    /// An outbox and the receiver the app reads.
    pub(crate) fn new(limits: EventBuffer) -> (Self, mpsc::Receiver<SessionEvent>) {
        let (tx, rx) = mpsc::channel(limits.channel.max(1));
        let outbox = Outbox {
            tx,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            limits,
            gone: false,
        };
        (outbox, rx)
    }

    /// Hands `event` to the app, or queues it; never waits.
    pub(crate) fn push(&mut self, event: SessionEvent) -> Result<(), TooSlow> {
        if self.gone {
            return Ok(());
        }
        self.drain();
        if self.backlog.is_empty() {
            match self.tx.try_send(event) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.gone = true;
                    return Ok(());
                }
                Err(mpsc::error::TrySendError::Full(event)) => return self.queue(event),
            }
        }
        self.queue(event)
    }

    fn queue(&mut self, event: SessionEvent) -> Result<(), TooSlow> {
        let bytes = payload_bytes(&event);
        if let Some(last) = self.backlog.back_mut()
            && merge(last, &event)
        {
            self.backlog_bytes += bytes;
        } else {
            self.backlog_bytes += bytes;
            self.backlog.push_back(event);
        }
        if self.backlog.len() > self.limits.backlog_events
            || self.backlog_bytes > self.limits.backlog_bytes
        {
            return Err(TooSlow {
                waiting: self.backlog.len() + self.limits.channel,
            });
        }
        Ok(())
    }

    /// Moves what fits from the backlog into the channel.
    pub(crate) fn drain(&mut self) {
        while let Some(event) = self.backlog.pop_front() {
            let bytes = payload_bytes(&event);
            match self.tx.try_send(event) {
                Ok(()) => self.backlog_bytes = self.backlog_bytes.saturating_sub(bytes),
                Err(mpsc::error::TrySendError::Full(event)) => {
                    self.backlog.push_front(event);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.gone = true;
                    self.backlog.clear();
                    self.backlog_bytes = 0;
                    return;
                }
            }
        }
    }

    /// Whether events are waiting for room in the channel.
    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Resolves once the channel has room (for the loop's `select!` while a backlog waits).
    pub(crate) async fn room(&self) {
        if let Ok(permit) = self.tx.reserve().await {
            drop(permit);
        }
    }

    /// Delivers the backlog and then `last`, waiting at most `deadline` for the app: the end of
    /// a session, where waiting no longer holds up the socket.
    pub(crate) async fn finish(&mut self, last: SessionEvent, deadline: Duration) {
        if self.gone {
            return;
        }
        self.backlog.push_back(last);
        let tx = self.tx.clone();
        let backlog = std::mem::take(&mut self.backlog);
        let deliver = async move {
            for event in backlog {
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        };
        if tokio::time::timeout(deadline, deliver).await.is_err() {
            tracing::warn!("the app did not read the session's last events within {deadline:?}");
        }
    }
}

/// Text and audio carried by an event, for the backlog's byte bound.
fn payload_bytes(event: &SessionEvent) -> usize {
    match event {
        SessionEvent::TextDelta { delta, .. }
        | SessionEvent::TranscriptDelta { delta, .. }
        | SessionEvent::UserTranscriptDelta { delta, .. } => delta.len(),
        SessionEvent::Audio { data, .. } => data.len(),
        _ => 64,
    }
}

/// Appends `next` to `last` when both are deltas of the same kind and item.
fn merge(last: &mut SessionEvent, next: &SessionEvent) -> bool {
    match (last, next) {
        (
            SessionEvent::TextDelta {
                item_id: a,
                delta: into,
                ..
            },
            SessionEvent::TextDelta {
                item_id: b, delta, ..
            },
        )
        | (
            SessionEvent::TranscriptDelta {
                item_id: a,
                delta: into,
                ..
            },
            SessionEvent::TranscriptDelta {
                item_id: b, delta, ..
            },
        )
        | (
            SessionEvent::UserTranscriptDelta {
                item_id: a,
                delta: into,
            },
            SessionEvent::UserTranscriptDelta { item_id: b, delta },
        ) if a == b => {
            into.push_str(delta);
            true
        }
        (
            SessionEvent::Audio {
                item_id: a,
                data: into,
                ..
            },
            SessionEvent::Audio {
                item_id: b, data, ..
            },
        ) if a == b => {
            into.extend_from_slice(data);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(item: &str, delta: &str) -> SessionEvent {
        SessionEvent::TextDelta {
            response_id: "r".into(),
            item_id: item.into(),
            delta: delta.into(),
        }
    }

    fn limits(channel: usize, backlog_events: usize) -> EventBuffer {
        EventBuffer {
            channel,
            backlog_events,
            backlog_bytes: 1 << 20,
        }
    }

    #[tokio::test]
    async fn a_full_channel_never_blocks_and_deltas_merge_in_order() {
        let (mut outbox, mut rx) = Outbox::new(limits(1, 8));
        outbox.push(text("a", "1")).unwrap();
        outbox.push(text("a", "2")).unwrap();
        outbox.push(text("a", "3")).unwrap();
        outbox.push(SessionEvent::Idle).unwrap();
        outbox.push(text("a", "4")).unwrap();
        assert_eq!(rx.recv().await, Some(text("a", "1")));
        outbox.drain();
        assert_eq!(rx.recv().await, Some(text("a", "23")));
        outbox.drain();
        assert_eq!(rx.recv().await, Some(SessionEvent::Idle));
        outbox.drain();
        assert_eq!(rx.recv().await, Some(text("a", "4")));
        assert!(!outbox.has_backlog());
    }

    #[tokio::test]
    async fn control_events_are_kept_until_the_bound_then_the_session_gives_up() {
        let (mut outbox, _rx) = Outbox::new(limits(1, 2));
        outbox.push(SessionEvent::Idle).unwrap();
        outbox.push(SessionEvent::Idle).unwrap();
        outbox.push(SessionEvent::Idle).unwrap();
        assert_eq!(outbox.push(SessionEvent::Idle), Err(TooSlow { waiting: 4 }));
    }

    #[tokio::test]
    async fn a_dropped_receiver_is_not_an_error() {
        let (mut outbox, rx) = Outbox::new(limits(1, 1));
        drop(rx);
        for _ in 0..10 {
            outbox.push(SessionEvent::Idle).unwrap();
        }
    }

    #[tokio::test]
    async fn finish_delivers_everything_then_the_last_event() {
        let (mut outbox, mut rx) = Outbox::new(limits(1, 8));
        outbox.push(text("a", "1")).unwrap();
        outbox.push(SessionEvent::Idle).unwrap();
        let reader = tokio::spawn(async move {
            let mut seen = Vec::new();
            while let Some(event) = rx.recv().await {
                seen.push(event);
            }
            seen
        });
        let closed = SessionEvent::Closed {
            reason: CloseReason::Requested,
        };
        outbox.finish(closed.clone(), Duration::from_secs(1)).await;
        drop(outbox);
        assert_eq!(
            reader.await.unwrap(),
            vec![text("a", "1"), SessionEvent::Idle, closed]
        );
    }
}
