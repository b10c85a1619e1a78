//! OpenTelemetry traces: the session spans agent-core creates (call → turn → response → tool
//! call, see `agent_core::session::spans`) exported over OTLP/HTTP with protobuf bodies, when
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! The standard variables apply: `OTEL_SERVICE_NAME` (default `agent`),
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS` (and its `_TRACES_` form),
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, the batch processor's `OTEL_BSP_*`; `OTEL_SDK_DISABLED=true`
//! or `OTEL_TRACES_EXPORTER=none` turn export off. Only the session spans are exported, never
//! a log record: those go to stderr through the scrubbing writer, and header values are
//! registered as secrets so that no log line can show them.
//!
//! Spans are batched on the SDK's own thread; [`Telemetry::shutdown`] sends the last batch
//! when the command ends, and waits at most [`SHUTDOWN_WAIT`] for it, so a collector that does
//! not answer never holds the process.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use opentelemetry::{KeyValue, trace::TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::{Resource, trace::SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::{Layer, filter::Targets, registry::LookupSpan};

/// How long the last batch may take to leave when the command ends.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(3);
/// How long one export request may take, unless `OTEL_EXPORTER_OTLP_TIMEOUT` says otherwise
/// (the OpenTelemetry default).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// `service.name` unless `OTEL_SERVICE_NAME` names another.
const SERVICE_NAME: &str = "agent";

/// The exporter, while the command runs.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Starts exporting when the environment asks for it: the exporter, and the layer that
    /// feeds it the session spans. `node` is `agent serve`'s node name, a resource attribute.
    /// `Err` says why export is off although it was asked for (no header value in it).
    pub fn from_env<S>(
        node: Option<&str>,
    ) -> Result<Option<(Telemetry, impl Layer<S> + Send + Sync)>, String>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || env("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        if endpoint.is_none() || disabled {
            return Ok(None);
        }
        for name in [
            "OTEL_EXPORTER_OTLP_HEADERS",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        ] {
            if let Some(headers) = env(name) {
                register_header_values(&headers);
            }
        }
        let client = http_client(export_timeout(&env))?;
        // The endpoint, headers and timeout are read from the environment by the exporter
        // itself, per the specification; only the protocol is fixed (no gRPC, no JSON here).
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_http_client(client)
            .build()
            .map_err(|err| err.to_string())?;
        let provider = SdkTracerProvider::builder()
            .with_resource(resource(env("OTEL_SERVICE_NAME").is_none(), node))
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer("agent");
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            // The spans are never entered on the session's task, so idle/busy time says
            // nothing; nor does the source line of the one module that makes them.
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_filter(only_session_spans());
        Ok(Some((Telemetry { provider }, layer)))
    }

    /// Sends what is left and stops, within [`SHUTDOWN_WAIT`]; past that the spans still
    /// queued are lost, and the process goes on ending.
    pub fn shutdown(self) {
        let began = Instant::now();
        if let Err(err) = self.provider.shutdown_with_timeout(SHUTDOWN_WAIT) {
            tracing::warn!(
                "the last traces may not have reached the OTLP collector within {:.1} s: {err}",
                began.elapsed().as_secs_f64()
            );
        }
    }
}

/// What the OTLP layer sees: the session spans and their events, nothing else (no log
/// record, whose text could hold anything).
pub fn only_session_spans() -> Targets {
    Targets::new().with_target(agent_core::session::spans::TARGET, tracing::Level::INFO)
}

/// The resource every span carries: the service (`agent` unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` says otherwise), its version, and `agent serve`'s node.
fn resource(default_name: bool, node: Option<&str>) -> Resource {
    let mut builder = Resource::builder()
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    if default_name && !resource_names_service() {
        builder = builder.with_service_name(SERVICE_NAME);
    }
    if let Some(node) = node {
        builder = builder.with_attributes([
            KeyValue::new("service.instance.id", node.to_owned()),
            KeyValue::new("agent.node", node.to_owned()),
        ]);
    }
    builder.build()
}

/// Whether `OTEL_RESOURCE_ATTRIBUTES` names the service itself.
fn resource_names_service() -> bool {
    std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attributes| {
        attributes
            .split(',')
            .any(|pair| pair.split('=').next().map(str::trim) == Some("service.name"))
    })
}

/// The per-request deadline: `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or `OTEL_EXPORTER_OTLP_TIMEOUT`
/// (milliseconds), else [`EXPORT_TIMEOUT`].
fn export_timeout(env: &impl Fn(&str) -> Option<String>) -> Duration {
    env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| env("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|ms| ms.trim().parse::<u64>().ok())
        .map_or(EXPORT_TIMEOUT, Duration::from_millis)
}

/// The workspace's reqwest, blocking (the batch processor exports from a plain thread), with a
/// deadline per request and no redirects: a redirect would carry the headers elsewhere. It is
/// built on a thread of its own because reqwest's blocking client refuses to be built inside
/// an async runtime, wherever `agent_cli::main` is called from.
fn http_client(timeout: Duration) -> Result<reqwest::blocking::Client, String> {
    agent_core::tls::ensure_crypto_provider();
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("cannot build the OTLP HTTP client: {err}"))
    })
    .join()
    .map_err(|_| "cannot build the OTLP HTTP client".to_owned())?
}

/// Registers every value of a `key=value,key=value` header list (percent-decoded too) as a
/// secret, so no log line or error message shows it.
fn register_header_values(list: &str) {
    for (_, value) in header_pairs(list) {
        agent_core::redact::register_secret(&value);
        if let Ok(decoded) = percent_encoding::percent_decode_str(&value).decode_utf8() {
            agent_core::redact::register_secret(&decoded);
        }
    }
}

/// The pairs of an `OTEL_EXPORTER_OTLP_HEADERS` value, as written.
fn header_pairs(list: &str) -> HashMap<String, String> {
    list.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_are_read_as_written_and_decoded() {
        let pairs = header_pairs("x-api-key=abc%20def , authorization=Bearer%20tok=en,broken");
        assert_eq!(pairs["x-api-key"], "abc%20def");
        assert_eq!(pairs["authorization"], "Bearer%20tok=en");
        assert_eq!(pairs.len(), 2);
    }

    #[test]
    fn the_timeout_is_the_environment_s_in_milliseconds() {
        let env = |name: &str| (name == "OTEL_EXPORTER_OTLP_TIMEOUT").then(|| "2500".to_owned());
        assert_eq!(export_timeout(&env), Duration::from_millis(2500));
        assert_eq!(export_timeout(&|_: &str| None), EXPORT_TIMEOUT);
        let bad = |_: &str| Some("soon".to_owned());
        assert_eq!(export_timeout(&bad), EXPORT_TIMEOUT);
    }

    #[test]
    fn the_resource_names_the_service_and_the_node() {
        let resource = resource(true, Some("voice-1"));
        let get = |key: &str| {
            resource
                .get(&opentelemetry::Key::from(key.to_owned()))
                .map(|v| v.to_string())
        };
        assert_eq!(get("service.instance.id").as_deref(), Some("voice-1"));
        assert_eq!(get("agent.node").as_deref(), Some("voice-1"));
        if std::env::var("OTEL_SERVICE_NAME").is_err()
            && std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_err()
        {
            assert_eq!(get("service.name").as_deref(), Some("agent"));
        }
    }
}
