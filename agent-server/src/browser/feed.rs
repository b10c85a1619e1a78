//! The console's per-call event feed: what the sideband's session sees (transcripts, tool
//! calls, cost, latency, warnings), as small JSON objects, served as Server-Sent Events at
//! `GET /agents/{name}/calls/{call_id}/feed?token=...`.
//!
//! The token is made per call and handed only to the page that made (or attached) the call,
//! in `X-Agent-Feed-Token` or the attach answer's `feed_token`. Publishing never waits: each
//! reader has a bounded queue, and a reader that falls behind is dropped rather than slowing
//! the call. A reader that joins late first gets the call's recent events (a bounded backlog),
//! so a page that opens the feed after the answer still sees the start of the call. Every
//! event is scrubbed of known secrets before it leaves the server.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
};

use agent_core::session::SessionEvent;
use axum::{
    body::Body,
    extract::{Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::guard;
use crate::state::AppState;

/// Events a reader may fall behind by before it is dropped.
const READER_QUEUE: usize = 256;
/// Recent events a late reader gets first.
const BACKLOG: usize = 256;

/// One call's feed: its token, its recent events and its readers.
#[derive(Debug)]
pub struct Feed {
    token: String,
    /// Recent events; its lock is held while publishing so a new reader misses none.
    backlog: Mutex<VecDeque<Arc<str>>>,
    sender: broadcast::Sender<Arc<str>>,
}

impl Feed {
    fn new(token: String) -> Self {
        Feed {
            token,
            backlog: Mutex::new(VecDeque::new()),
            sender: broadcast::channel(READER_QUEUE).0,
        }
    }

    /// The token a reader must present.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Publishes `event` to every reader (never waits; readers with no room lag and are
    /// dropped when they next read).
    pub fn publish(&self, event: &SessionEvent) {
        let Some(mut value) = to_json(event) else {
            return;
        };
        agent_core::redact::scrub_value(&mut value);
        let text: Arc<str> = value.to_string().into();
        let mut backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        if backlog.len() == BACKLOG {
            backlog.pop_front();
        }
        backlog.push_back(Arc::clone(&text));
        // No reader is not an error: the console may not be open.
        let _ = self.sender.send(text);
    }

    /// The backlog and a receiver for what follows it, without a gap.
    fn subscribe(&self) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        (backlog.iter().cloned().collect(), self.sender.subscribe())
    }

    fn token_matches(&self, presented: &str) -> bool {
        guard::same_token(presented, &self.token)
    }
}

/// The feeds of the calls in progress, by call id.
#[derive(Debug, Default)]
pub struct Feeds {
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
}

impl Feeds {
    /// A fresh feed for `call_id` (replacing any left over), or `None` without randomness.
    pub fn open(&self, call_id: &str) -> Option<Arc<Feed>> {
        let token = match crate::random::token() {
            Ok(token) => token,
            Err(err) => {
                tracing::error!(call_id, "the call gets no console feed: {err}");
                return None;
            }
        };
        let feed = Arc::new(Feed::new(token));
        self.lock().insert(call_id.to_owned(), Arc::clone(&feed));
        Some(feed)
    }

    /// The feed of `call_id`, while the call goes on.
    pub fn get(&self, call_id: &str) -> Option<Arc<Feed>> {
        self.lock().get(call_id).cloned()
    }

    /// The call is over: its readers end once they have read what is left.
    pub fn close(&self, call_id: &str) {
        self.lock().remove(call_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Feed>>> {
        self.feeds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `GET /agents/{name}/calls/{call_id}/feed?token=...`: the call's events as
/// `text/event-stream`, one `data:` line of JSON each.
pub(super) async fn serve(
    State(state): State<Arc<AppState>>,
    Path((name, call_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(browser) = &state.browser else {
        return super::not_enabled();
    };
    if super::route_named(&state, &name).is_none() {
        return super::calls::unknown_agent(&name);
    }
    let Some(feed) = browser.feeds.get(&call_id) else {
        return guard::refuse(
            StatusCode::NOT_FOUND,
            "unknown_call",
            "no call in progress has that id",
        );
    };
    let presented = query_token(query.as_deref()).unwrap_or_default();
    if !feed.token_matches(&presented) {
        return guard::refuse(
            StatusCode::FORBIDDEN,
            "bad_feed_token",
            "the feed needs the call's token: ?token= from X-Agent-Feed-Token",
        );
    }
    let (backlog, receiver) = feed.subscribe();
    drop(feed);
    let mut response = Body::from_stream(stream(backlog, receiver)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `token` from a query string.
fn query_token(query: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value.into_owned())
}

/// The SSE stream: the backlog, then live events, until the call ends or the reader lags.
fn stream(
    backlog: Vec<Arc<str>>,
    receiver: broadcast::Receiver<Arc<str>>,
) -> impl futures_util::Stream<Item = Result<String, std::convert::Infallible>> {
    let backlog = futures_util::stream::iter(backlog.into_iter().map(|e| Ok(sse(&e))));
    let live = futures_util::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(event) => Some((Ok(sse(&event)), receiver)),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "a console feed reader fell behind; dropped");
                None
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    });
    futures_util::StreamExt::chain(backlog, live)
}

fn sse(event: &str) -> String {
    format!("data: {event}\n\n")
}

/// What the console shows of `event`; `None` for what it does not (audio, idle).
pub fn to_json(event: &SessionEvent) -> Option<Value> {
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let value = match event {
        SessionEvent::Ready { model, .. } => json!({"type": "ready", "model": model}),
        SessionEvent::ResponseStarted { response_id } => {
            json!({"type": "response.started", "response_id": response_id})
        }
        SessionEvent::TextDelta {
            response_id,
            item_id,
            delta,
        }
        | SessionEvent::TranscriptDelta {
            response_id,
            item_id,
            delta,
        } => json!({
            "type": "assistant.delta",
            "response_id": response_id,
            "item_id": item_id,
            "delta": delta,
        }),
        SessionEvent::UserTranscript { item_id, text } => {
            json!({"type": "user.transcript", "item_id": item_id, "text": text})
        }
        SessionEvent::UserTranscriptDelta { item_id, delta } => {
            json!({"type": "user.delta", "item_id": item_id, "delta": delta})
        }
        SessionEvent::Interrupted {
            item_id,
            audio_end_ms,
        } => json!({"type": "interrupted", "item_id": item_id, "audio_end_ms": audio_end_ms}),
        SessionEvent::SpeechStarted { item_id, .. } => {
            json!({"type": "speech.started", "item_id": item_id})
        }
        SessionEvent::SpeechStopped { item_id, .. } => {
            json!({"type": "speech.stopped", "item_id": item_id})
        }
        SessionEvent::ToolCallStarted {
            call_id,
            name,
            arguments,
        } => json!({
            "type": "tool.started",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }),
        SessionEvent::ToolCallFinished {
            call_id,
            name,
            arguments,
            duration,
            result,
        } => {
            let (ok, output) = match result {
                Ok(output) => (true, output),
                Err(error) => (false, error),
            };
            json!({
                "type": "tool.finished",
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
                "duration_ms": ms(*duration),
                "ok": ok,
                "output": output,
            })
        }
        SessionEvent::ToolCallNotRun {
            call_id,
            name,
            arguments,
            why,
            output,
        } => json!({
            "type": "tool.not_run",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "why": format!("{why:?}"),
            "output": output,
        }),
        SessionEvent::GuardrailTripped {
            guardrail,
            stage,
            reason,
            item_id,
        } => json!({
            "type": "guardrail.tripped",
            "guardrail": guardrail,
            "stage": stage.as_str(),
            "reason": reason,
            "item_id": item_id,
        }),
        SessionEvent::Handoff { call_id, from, to } => json!({
            "type": "handoff",
            "call_id": call_id,
            "from": from,
            "to": to,
        }),
        SessionEvent::ApprovalRequested {
            id,
            name,
            arguments,
            timeout,
            ..
        } => json!({
            "type": "approval.requested",
            "id": id,
            "name": name,
            "arguments": arguments,
            "timeout_secs": timeout.as_secs_f64(),
        }),
        SessionEvent::ApprovalDecided {
            id,
            name,
            approved,
            how,
        } => json!({
            "type": "approval.decided",
            "id": id,
            "name": name,
            "approved": approved,
            "how": how,
        }),
        SessionEvent::ResponseDone {
            response_id,
            status,
            ..
        } => json!({"type": "response.done", "response_id": response_id, "status": status}),
        SessionEvent::Cost(report) => json!({
            "type": "cost",
            "model": report.model,
            "cost_usd": report.cost_usd,
            "session_cost_usd": report.session.cost_usd,
            "unpriced": report.session.unpriced,
        }),
        SessionEvent::TurnLatency(turn) => json!({
            "type": "turn.latency",
            "turn": turn.turn,
            "first_delta_ms": turn.first_delta.map(ms),
            "first_audio_ms": turn.first_audio.map(ms),
            "total_ms": ms(turn.total),
            "tools": turn.tools.iter().map(|t| json!({"name": t.name, "round_trip_ms": ms(t.round_trip)})).collect::<Vec<_>>(),
        }),
        _ => return notice(event),
    };
    Some(value)
}

/// Warnings, errors and the close: what the console shows as notices.
fn notice(event: &SessionEvent) -> Option<Value> {
    let value = match event {
        SessionEvent::TurnFailed { failure } => {
            json!({"type": "warning", "message": failure.to_string()})
        }
        SessionEvent::BudgetWarning {
            spent_usd,
            limit_usd,
        } => json!({
            "type": "warning",
            "message": format!("spent ${spent_usd:.4} of the ${limit_usd:.2} budget"),
        }),
        SessionEvent::BudgetExhausted {
            spent_usd,
            limit_usd,
        } => json!({
            "type": "warning",
            "message": format!("the budget is spent (${spent_usd:.4} of ${limit_usd:.2}); the call ends"),
        }),
        SessionEvent::Error {
            code,
            message,
            fatal,
        } => json!({"type": "error", "code": code, "message": message, "fatal": fatal}),
        SessionEvent::Reconnecting { attempt, .. } => json!({
            "type": "warning",
            "message": format!("the sideband is reconnecting (attempt {attempt})"),
        }),
        SessionEvent::SessionLimitNear { remaining } => json!({
            "type": "warning",
            "message": format!("the call reaches its time limit in {} s", remaining.as_secs()),
        }),
        SessionEvent::Warning { message } => json!({"type": "warning", "message": message}),
        SessionEvent::Dtmf { digit, .. } => json!({"type": "dtmf", "digit": digit}),
        SessionEvent::Closed { reason } => {
            json!({"type": "closed", "reason": reason.to_string()})
        }
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_tool_call_reads_with_its_output_and_duration() {
        let event = SessionEvent::ToolCallFinished {
            call_id: "c1".into(),
            name: "caller_lookup".into(),
            arguments: "{\"order_id\":\"A1\"}".into(),
            duration: Duration::from_millis(12),
            result: Ok("shipped".into()),
        };
        let value = to_json(&event).unwrap();
        assert_eq!(value["type"], "tool.finished");
        assert_eq!(value["duration_ms"], 12);
        assert_eq!(value["output"], "shipped");
        assert_eq!(value["ok"], true);
        let audio = SessionEvent::Audio {
            response_id: "r".into(),
            item_id: "i".into(),
            data: vec![0; 4],
        };
        assert_eq!(to_json(&audio), None, "audio is not for the console");
    }

    #[tokio::test]
    async fn a_late_reader_gets_the_backlog_and_a_slow_one_is_dropped() {
        let feed = Feed::new("t".into());
        let warn = |n: usize| SessionEvent::Warning {
            message: format!("w{n}"),
        };
        feed.publish(&warn(0));
        let (backlog, mut receiver) = feed.subscribe();
        assert_eq!(backlog.len(), 1);
        assert!(backlog[0].contains("w0"));
        feed.publish(&warn(1));
        assert!(receiver.recv().await.unwrap().contains("w1"));
        // Publishing never waits for this reader; it lags and its stream ends.
        for n in 0..READER_QUEUE + 10 {
            feed.publish(&warn(n));
        }
        let mut live = std::pin::pin!(stream(Vec::new(), receiver));
        let next = futures_util::StreamExt::next(&mut live).await;
        assert!(next.is_none(), "a lagging reader is dropped: {next:?}");
        assert_eq!(feed.subscribe().0.len(), BACKLOG, "the backlog is bounded");
    }

    #[test]
    fn tokens_are_compared_whole_and_read_from_the_query() {
        let feed = Feed::new("abc".into());
        assert!(feed.token_matches("abc"));
        assert!(!feed.token_matches("ab"));
        assert!(!feed.token_matches("abd"));
        assert_eq!(query_token(Some("x=1&token=a%2Bb")).as_deref(), Some("a+b"));
        assert_eq!(query_token(Some("x=1")), None);
        assert_eq!(query_token(None), None);
    }
}
