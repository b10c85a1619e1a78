//! An OTLP/HTTP trace receiver on 127.0.0.1 for the tests: `POST /v1/traces` with a protobuf
//! body, decoded with opentelemetry-proto into plain [`SpanRecord`]s. It runs on a runtime of
//! its own, so a test can run the `agent` binary with a blocking wait meanwhile.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    convert::Infallible,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use http_body_util::{BodyExt as _, Full};
use hyper::{Request, Response, body::Bytes, service::service_fn};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, KeyValue, any_value},
};
use prost::Message as _;
use serde_json::Value;

/// One span as the collector received it.
#[derive(Debug, Clone)]
pub struct SpanRecord {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_id: String,
    pub attributes: HashMap<String, Value>,
    /// The attributes of the resource it came with.
    pub resource: HashMap<String, Value>,
    /// Its events: name and attributes.
    pub events: Vec<(String, HashMap<String, Value>)>,
    pub start_ns: u64,
    pub end_ns: u64,
    /// The status code (0 unset, 1 ok, 2 error).
    pub status: i32,
}

impl SpanRecord {
    /// The attribute `key` as text (`None` when missing or not text).
    pub fn text(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// The attribute `key` as a whole number.
    pub fn int(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_i64)
    }

    /// The attribute `key` as a number.
    pub fn number(&self, key: &str) -> Option<f64> {
        self.attributes.get(key).and_then(Value::as_f64)
    }
}

/// One request the collector answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub content_type: String,
    pub headers: HashMap<String, String>,
}

#[derive(Default)]
struct Shared {
    spans: Vec<SpanRecord>,
    requests: Vec<Received>,
}

/// The receiver; it stops when dropped.
pub struct Collector {
    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Collector {
    /// Listens on a free port of 127.0.0.1.
    pub fn start() -> Collector {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, port) = std::sync::mpsc::channel();
        let state = shared.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _ = bound.send(listener.local_addr().expect("address").port());
                tokio::select! {
                    () = accept(listener, state) => {}
                    _ = stopped => {}
                }
            });
        });
        let port = port
            .recv_timeout(Duration::from_secs(5))
            .expect("the collector listens");
        Collector {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            stop: Some(stop),
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.lock().spans.clone()
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Received> {
        self.lock().requests.clone()
    }

    /// Waits (within `limit`) until `done` holds for the spans received, and returns them.
    pub fn wait_for(
        &self,
        limit: Duration,
        done: impl Fn(&[SpanRecord]) -> bool,
    ) -> Vec<SpanRecord> {
        let began = Instant::now();
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                began.elapsed() < limit,
                "the collector did not get the expected spans within {limit:?}; it got: {:#?}",
                spans
                    .iter()
                    .map(|s| (&s.name, &s.attributes))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn accept(listener: tokio::net::TcpListener, shared: Arc<Mutex<Shared>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, shared.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    shared: Arc<Mutex<Shared>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received = Received {
        path: request.uri().path().to_owned(),
        content_type: request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    };
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(400)),
    };
    let Ok(export) = ExportTraceServiceRequest::decode(body) else {
        return Ok(status(400));
    };
    let spans = records(export);
    let mut shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
    shared.requests.push(received);
    shared.spans.extend(spans);
    // An empty ExportTraceServiceResponse is zero bytes of protobuf.
    Ok(Response::builder()
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::new()))
        .expect("response"))
}

fn status(code: u16) -> Response<Full<Bytes>> {
    Response::builder()
        .status(code)
        .body(Full::new(Bytes::new()))
        .expect("response")
}

fn records(export: ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for resource_spans in export.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| attributes(r.attributes))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                out.push(SpanRecord {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_id: hex(&span.parent_span_id),
                    attributes: attributes(span.attributes),
                    resource: resource.clone(),
                    events: span
                        .events
                        .into_iter()
                        .map(|e| (e.name, attributes(e.attributes)))
                        .collect(),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                    status: span.status.map_or(0, |s| s.code),
                });
            }
        }
    }
    out
}

fn attributes(list: Vec<KeyValue>) -> HashMap<String, Value> {
    list.into_iter()
        .map(|kv| (kv.key, kv.value.map_or(Value::Null, value)))
        .collect()
}

fn value(value: AnyValue) -> Value {
    match value.value {
        Some(any_value::Value::StringValue(s)) => Value::from(s),
        Some(any_value::Value::BoolValue(b)) => Value::from(b),
        Some(any_value::Value::IntValue(i)) => Value::from(i),
        Some(any_value::Value::DoubleValue(d)) => Value::from(d),
        Some(other) => Value::from(format!("{other:?}")),
        None => Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
