//! A raw WebSocket client for the integration tests: send JSON, read events with timeouts.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use agent_testkit::{ModelStep, Scenario, ScriptedCall, Turn};

pub const WAIT: Duration = Duration::from_secs(10);

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the next read gave.
#[derive(Debug)]
pub enum Read {
    Text(String),
    Closed(Option<(u16, String)>),
    Error(String),
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        Self::connect_with(url, &[]).await
    }

    pub async fn connect_with(url: &str, headers: &[(&str, &str)]) -> Client {
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Client { ws }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).await.unwrap();
    }

    pub async fn read(&mut self) -> Read {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no server frame within the timeout");
            return match msg {
                None => Read::Closed(None),
                Some(Err(e)) => Read::Error(e.to_string()),
                Some(Ok(Message::Text(t))) => Read::Text(t.as_str().to_string()),
                Some(Ok(Message::Close(frame))) => {
                    Read::Closed(frame.map(|f| (u16::from(f.code), f.reason.as_str().to_string())))
                }
                Some(Ok(_)) => continue,
            };
        }
    }

    /// The next JSON event; panics on anything else.
    pub async fn next_event(&mut self) -> Value {
        match self.read().await {
            Read::Text(t) => {
                serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
            }
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Events up to and including the first of type `ty`.
    pub async fn until(&mut self, ty: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let ev = self.next_event().await;
            let done = ev["type"] == ty;
            out.push(ev);
            if done {
                return out;
            }
        }
    }

    /// Reads `session.created`, sends a GA text session.update and reads `session.updated`.
    pub async fn text_session(&mut self) -> Value {
        let created = self.next_event().await;
        assert_eq!(created["type"], "session.created");
        self.send(json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"]}}))
            .await;
        let updated = self.next_event().await;
        assert_eq!(updated["type"], "session.updated", "{updated}");
        updated
    }

    pub async fn user_says(&mut self, text: &str) -> Vec<Value> {
        self.send(json!({
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        }))
        .await;
        self.until("conversation.item.done").await
    }

    pub async fn output(&mut self, call_id: &str, output: &str) -> Vec<Value> {
        self.send(json!({
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": output}
        }))
        .await;
        self.until("conversation.item.done").await
    }
}

pub fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// One turn: the model says something and calls two tools, then answers.
pub fn two_call_scenario() -> Scenario {
    Scenario::new("two calls").turn(
        Turn::user("Where are my orders A1001 and A1002?")
            .model(
                ModelStep::say("Let me check both.")
                    .call(ScriptedCall::new(
                        "lookup_order",
                        json!({"order_id": "A1001"}),
                    ))
                    .call(ScriptedCall::new(
                        "lookup_order",
                        json!({"order_id": "A1002"}),
                    )),
            )
            .model(ModelStep::say("Both orders have shipped.")),
    )
}
