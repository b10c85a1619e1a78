//! HTTP plugin tools: a tool declared in an agent file that calls an HTTP endpoint.
//!
//! ```toml
//! [[http_tools]]
//! name = "get_weather"
//! description = "Current weather for a city."
//! method = "GET"
//! url = "https://api.example.com/weather/{city}"
//! headers = { Authorization = "Bearer ${WEATHER_TOKEN}" }
//! timeout_secs = 5
//! max_response_bytes = 16384
//! parameters = { type = "object", properties = { city = { type = "string" }, units = { type = "string", enum = ["metric", "imperial"] } }, required = ["city"] }
//! ```
//!
//! Arguments are checked against the whole `parameters` schema before anything is sent.
//! `{param}` placeholders in the URL's path or query are filled from the arguments,
//! percent-encoded; placeholders in the scheme, host or port are rejected, so the model cannot
//! choose where the request goes, and a value in the path can never add, remove or climb a
//! segment (see `url_template`: `/`, `\`, `?`, `#` and `%` are encoded, `.` and `..` refused).
//! Arguments not used by the URL become query parameters for `GET` and `DELETE`, and a JSON
//! body otherwise. Header values may use `${ENV_VAR}`, expanded at call time; values are never
//! logged or shown. Redirects are followed only within the URL's origin (scheme, host and
//! port); any other is refused with an error (see `redirect`). The model reads
//! `{"status": 200, "body": ..., "truncated": false}`: the body as JSON when the response is
//! complete JSON, as text otherwise, cut at `max_response_bytes`.

use std::{collections::BTreeMap, fmt, time::Duration};

mod redirect;
mod url_template;

use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use self::url_template::scalar_text;
pub use self::url_template::{FillError, UrlTemplate};
use super::{
    ArgumentValidator, EnvTemplate, SettingsError, Tool, ToolContext, ToolError, ToolOutput,
    check_object, is_valid_name, no_settings, schema,
};

/// The default time limit of one call.
pub const DEFAULT_TIMEOUT_SECS: f64 = 10.0;
/// The default limit on the response body the model reads.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The largest `max_response_bytes` accepted; model context is the real limit.
pub const MAX_RESPONSE_BYTES_LIMIT: usize = 4 * 1024 * 1024;

/// An HTTP tool as declared in an agent file (`[[http_tools]]`).
#[derive(Clone, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpToolSpec {
    /// The name the model calls it by (`^[a-zA-Z0-9_-]{1,64}$`).
    pub name: String,
    /// What it does and when to use it.
    pub description: String,
    /// The arguments, as an inline JSON Schema object. Defaults to no arguments.
    #[serde(default = "no_parameters")]
    pub parameters: Value,
    /// The HTTP method. Defaults to `GET`.
    #[serde(default)]
    pub method: HttpMethod,
    /// The URL, with `{param}` placeholders in its path or query.
    pub url: String,
    /// Request headers; values may use `${ENV_VAR}` for secrets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A header that carries the call's idempotency key (`{conversation}:{call_id}`, the
    /// same each time the call is asked for), e.g. `Idempotency-Key`, so that the API makes
    /// one thing per call however often it is retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_header: Option<String>,
    /// The time limit of one call, in seconds.
    #[serde(default = "default_timeout_secs")]
    #[schemars(range(min = 0.001, max = 300))]
    pub timeout_secs: f64,
    /// How much of the response body the model reads; the rest is cut.
    #[serde(default = "default_max_response_bytes")]
    #[schemars(range(min = 1, max = 4194304))]
    pub max_response_bytes: usize,
}

fn no_parameters() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

fn default_timeout_secs() -> f64 {
    DEFAULT_TIMEOUT_SECS
}

fn default_max_response_bytes() -> usize {
    DEFAULT_MAX_RESPONSE_BYTES
}

/// Header values are redacted: they may hold secrets.
impl fmt::Debug for HttpToolSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpToolSpec")
            .field("name", &self.name)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout_secs", &self.timeout_secs)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// The methods an HTTP tool may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// Remaining arguments go in the query string.
    #[default]
    #[serde(alias = "get")]
    Get,
    /// Remaining arguments go in a JSON body.
    #[serde(alias = "post")]
    Post,
    /// Remaining arguments go in a JSON body.
    #[serde(alias = "put")]
    Put,
    /// Remaining arguments go in a JSON body.
    #[serde(alias = "patch")]
    Patch,
    /// Remaining arguments go in the query string.
    #[serde(alias = "delete")]
    Delete,
}

impl HttpMethod {
    fn as_reqwest(self) -> reqwest::Method {
        match self {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        }
    }

    fn sends_body(self) -> bool {
        matches!(self, HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch)
    }
}

/// Why an HTTP tool declaration cannot be used; reported when the agent file is loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("http tool `{tool}`: {problem}")]
pub struct HttpToolError {
    /// The tool's name as declared.
    pub tool: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

/// A [`Tool`] that calls an HTTP endpoint, built from an [`HttpToolSpec`].
pub struct HttpTool {
    spec: HttpToolSpec,
    url: UrlTemplate,
    headers: Vec<(HeaderName, EnvTemplate)>,
    /// Where the call's idempotency key goes, if anywhere.
    idempotency_header: Option<HeaderName>,
    strict: Value,
    relaxed: Value,
    /// The declared schema, compiled once: arguments are checked against all of it (the same
    /// check [`super::ToolRegistry::invoke`] makes, repeated so a direct `call` is safe too).
    validator: ArgumentValidator,
    timeout: Duration,
    client: reqwest::Client,
}

impl fmt::Debug for HttpTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HttpTool").field(&self.spec).finish()
    }
}

impl HttpTool {
    /// Checks the declaration and builds the tool. Every problem an agent author can fix is
    /// reported here, before any session starts; only missing environment variables wait until
    /// a call (see [`HttpTool::env_vars`] to check them early).
    pub fn new(spec: HttpToolSpec) -> Result<Self, HttpToolError> {
        let fail = |problem: String| HttpToolError {
            tool: spec.name.clone(),
            problem,
        };
        if !is_valid_name(&spec.name) {
            return Err(fail(
                "the name must be 1 to 64 letters, digits, `_` or `-`".into(),
            ));
        }
        if spec.description.trim().is_empty() {
            return Err(fail(
                "`description` is empty; the model needs it to know when to call the tool".into(),
            ));
        }
        match spec.parameters.get("type") {
            None => {}
            Some(t) if t == "object" => {}
            Some(_) => {
                return Err(fail(
                    "`parameters` must be a JSON Schema with `type = \"object\"`".into(),
                ));
            }
        }
        if !spec.parameters.is_object() {
            return Err(fail("`parameters` must be a JSON Schema object".into()));
        }
        if !(spec.timeout_secs.is_finite() && spec.timeout_secs > 0.0 && spec.timeout_secs <= 300.0)
        {
            return Err(fail("`timeout_secs` must be between 0 and 300".into()));
        }
        if spec.max_response_bytes == 0 || spec.max_response_bytes > MAX_RESPONSE_BYTES_LIMIT {
            return Err(fail(format!(
                "`max_response_bytes` must be between 1 and {MAX_RESPONSE_BYTES_LIMIT}"
            )));
        }
        let relaxed = schema::normalize(spec.parameters.clone(), false);
        let strict = schema::normalize(spec.parameters.clone(), true);
        let validator =
            ArgumentValidator::new(&relaxed).map_err(|err| fail(format!("`parameters`: {err}")))?;
        let url = UrlTemplate::parse(&spec.url).map_err(&fail)?;
        let declared: Vec<&String> = relaxed
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().collect())
            .unwrap_or_default();
        for name in url.placeholders() {
            if !declared.iter().any(|d| *d == name) {
                return Err(fail(format!(
                    "the URL uses `{{{name}}}`, but `parameters` has no property `{name}`"
                )));
            }
        }
        let mut headers = Vec::new();
        for (name, value) in &spec.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| fail(format!("`{name}` is not a valid header name")))?;
            let template =
                EnvTemplate::parse(value).map_err(|err| fail(format!("header `{name}`: {err}")))?;
            headers.push((header, template));
        }
        let idempotency_header = match &spec.idempotency_header {
            Some(name) => Some(HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                fail(format!(
                    "`idempotency_header`: `{name}` is not a valid header name"
                ))
            })?),
            None => None,
        };
        let timeout = Duration::from_secs_f64(spec.timeout_secs);
        crate::tls::ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .redirect(redirect::same_origin_only())
            .build()
            .map_err(|err| fail(format!("cannot build an HTTP client: {err}")))?;
        Ok(HttpTool {
            spec,
            url,
            headers,
            idempotency_header,
            strict,
            relaxed,
            validator,
            timeout,
            client,
        })
    }

    /// The declaration it was built from.
    pub fn spec(&self) -> &HttpToolSpec {
        &self.spec
    }

    /// The environment variables its headers read, for `agent check` to verify up front.
    pub fn env_vars(&self) -> Vec<&str> {
        self.headers
            .iter()
            .flat_map(|(_, template)| template.variables())
            .collect()
    }

    fn build_url(&self, args: &mut Map<String, Value>) -> Result<reqwest::Url, ToolError> {
        let mut url = self.url.fill(args).map_err(|err| match err {
            FillError::Argument(message) => self.invalid(message),
            FillError::Url(message) => ToolError::failed(message),
        })?;
        if !self.spec.method.sends_body() && !args.is_empty() {
            let mut query = url.query_pairs_mut();
            for (name, value) in args.iter() {
                match value {
                    Value::Array(items) => {
                        for item in items {
                            query.append_pair(
                                name,
                                &scalar_text(item).unwrap_or_else(|| item.to_string()),
                            );
                        }
                    }
                    other => {
                        query.append_pair(
                            name,
                            &scalar_text(other).unwrap_or_else(|| other.to_string()),
                        );
                    }
                }
            }
        }
        Ok(url)
    }

    fn invalid(&self, message: String) -> ToolError {
        ToolError::invalid_arguments(
            &self.spec.name,
            message,
            schema::describe_expected(&self.relaxed),
        )
    }
}

#[async_trait]
impl Tool for HttpTool {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn description(&self) -> &str {
        &self.spec.description
    }

    fn parameters(&self, strict: bool) -> &Value {
        if strict { &self.strict } else { &self.relaxed }
    }

    /// An HTTP tool is configured entirely in its `[[http_tools]]` entry, so any
    /// `[tool_config.NAME]` setting for it is a mistake.
    fn check_settings(&self, settings: &Value) -> Result<(), SettingsError> {
        no_settings(&self.spec.name, settings)
    }

    async fn call(&self, args: Value, ctx: ToolContext) -> Result<ToolOutput, ToolError> {
        let args = check_object(&self.spec.name, args, &self.relaxed)?;
        self.validator.check(&self.spec.name, &args)?;
        let Value::Object(mut args) = args else {
            return Err(self.invalid("the arguments must be a JSON object".into()));
        };
        let url = self.build_url(&mut args)?;
        let mut headers = HeaderMap::new();
        for (name, template) in &self.headers {
            let value = template.expand().map_err(|missing| {
                ToolError::failed(format!(
                    "tool `{}` is not configured: environment variable `{}` (used in header `{name}`) is not set",
                    self.spec.name, missing.name
                ))
            })?;
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                ToolError::failed(format!(
                    "tool `{}` is not configured: header `{name}` has characters a header value cannot hold",
                    self.spec.name
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(name.clone(), value);
        }
        if let Some(name) = &self.idempotency_header {
            // Conversation ids and call ids are printable ASCII; anything else is left out
            // rather than failing the call.
            if let Ok(value) = HeaderValue::from_str(&ctx.idempotency_key()) {
                headers.insert(name.clone(), value);
            }
        }
        let mut request = self
            .client
            .request(self.spec.method.as_reqwest(), url)
            .headers(headers);
        if self.spec.method.sends_body() {
            request = request.json(&Value::Object(args));
        }
        let send = async {
            let response = request.send().await?;
            read_response(response, self.spec.max_response_bytes, false).await
        };
        let summary = tokio::select! {
            () = ctx.cancelled() => return Err(ToolError::Cancelled),
            result = send => result.map_err(|err| request_error(&err, self.timeout))?,
        };
        ToolOutput::json(&summary)
    }
}

/// A reqwest failure as a tool error; timeouts keep their kind.
pub fn request_error(err: &reqwest::Error, timeout: Duration) -> ToolError {
    if err.is_timeout() {
        return ToolError::Timeout { after: timeout };
    }
    let mut message = format!("the request failed: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    ToolError::failed(message)
}

/// What the model reads about an HTTP response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpResponseSummary {
    /// The status code.
    pub status: u16,
    /// The final URL, when redirects may have changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The `Content-Type`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// JSON for a complete JSON body, text for text, a note for binary content.
    pub body: Value,
    /// Whether the body was cut at the size limit.
    pub truncated: bool,
}

/// Reads at most `max_bytes` of `response`'s body (never more into memory) and summarizes it.
pub async fn read_response(
    mut response: reqwest::Response,
    max_bytes: usize,
    include_url: bool,
) -> Result<HttpResponseSummary, reqwest::Error> {
    let status = response.status().as_u16();
    let url = include_url.then(|| response.url().to_string());
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    let mut truncated = false;
    while let Some(chunk) = response.chunk().await? {
        let room = max_bytes - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            truncated = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let body = render_body(&body, content_type.as_deref(), truncated);
    Ok(HttpResponseSummary {
        status,
        url,
        content_type,
        body,
        truncated,
    })
}

fn render_body(body: &[u8], content_type: Option<&str>, truncated: bool) -> Value {
    let mime = content_type
        .and_then(|ct| ct.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let is_json = mime == "application/json" || mime.ends_with("+json");
    if is_json
        && !truncated
        && let Ok(value) = serde_json::from_slice(body)
    {
        return value;
    }
    let texty = mime.is_empty()
        || mime.starts_with("text/")
        || is_json
        || mime.ends_with("+xml")
        || matches!(
            mime.as_str(),
            "application/xml" | "application/javascript" | "application/x-www-form-urlencoded"
        );
    match std::str::from_utf8(body) {
        Ok(text) if texty => Value::from(text),
        Err(err) if texty && truncated && err.error_len().is_none() => {
            // The cut fell inside a UTF-8 sequence: drop the partial character.
            Value::from(String::from_utf8_lossy(&body[..err.valid_up_to()]).into_owned())
        }
        _ => Value::from(format!(
            "[{} bytes of {} content not shown]",
            body.len(),
            if mime.is_empty() { "binary" } else { &mime }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
    };

    fn spec(url: &str) -> HttpToolSpec {
        serde_json::from_value(json!({
            "name": "get_weather",
            "description": "Weather.",
            "url": url,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "units": {"type": "string"}}, "required": ["city"]},
        }))
        .unwrap()
    }

    #[test]
    fn declarations_are_checked() {
        let cases = [
            ("https://{city}.example.com/", "scheme, host or port"),
            ("https://example.com/{town}", "no property `town`"),
            ("https://example.com/{city", "without `}`"),
            ("example.com/{city}", "no scheme"),
            ("ftp://example.com/{city}", "http or https"),
            ("https://user:pw@example.com/{city}", "credentials"),
        ];
        for (url, want) in cases {
            let err = HttpTool::new(spec(url)).unwrap_err();
            assert!(err.to_string().contains(want), "{url}: {err}");
        }
        let mut bad_header = spec("https://example.com/{city}");
        bad_header
            .headers
            .insert("Authorization".into(), "Bearer ${TOKEN".into());
        assert!(
            HttpTool::new(bad_header)
                .unwrap_err()
                .to_string()
                .contains("header `Authorization`")
        );
        let unknown: Result<HttpToolSpec, _> = serde_json::from_value(
            json!({"name": "x", "description": "d", "url": "https://e.com", "verb": "GET"}),
        );
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `verb`")
        );
    }

    #[test]
    fn urls_are_filled_and_encoded() {
        let tool = HttpTool::new(spec("https://example.com/weather/{city}?lang=en")).unwrap();
        let mut args = json!({"city": "São Paulo/../x", "units": "metric"})
            .as_object()
            .unwrap()
            .clone();
        let url = tool.build_url(&mut args).unwrap();
        assert_eq!(
            url.as_str(),
            "https://example.com/weather/S%C3%A3o%20Paulo%2F..%2Fx?lang=en&units=metric"
        );
        let strict = tool.parameters(true);
        assert_eq!(strict["required"], json!(["city", "units"]));
        assert_eq!(
            strict["properties"]["units"]["type"],
            json!(["string", "null"])
        );
        assert!(format!("{tool:?}").contains("get_weather"));
    }

    /// Serves one canned response on loopback and returns the request it received.
    async fn serve_once(response: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request);
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            socket.write_all(response).await.unwrap();
            socket.shutdown().await.ok();
            String::from_utf8_lossy(&request).into_owned()
        });
        (format!("http://{addr}"), handle)
    }

    #[tokio::test]
    async fn calls_with_env_headers_and_json_body() {
        let (base, server) = serve_once(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"id\": 42}\n",
        )
        .await;
        let mut spec = spec(&format!("{base}/orders/{{city}}"));
        spec.method = HttpMethod::Post;
        // A variable every test environment has; its value is never shown.
        spec.headers.insert("X-Home".into(), "h=${PATH}".into());
        let tool = HttpTool::new(spec).unwrap();
        assert_eq!(tool.env_vars(), ["PATH"]);
        let out = tool
            .call(
                json!({"city": "Oslo", "units": "metric"}),
                ToolContext::standalone(),
            )
            .await
            .unwrap();
        let out: Value = serde_json::from_str(out.as_str()).unwrap();
        assert_eq!(out["status"], 201);
        assert_eq!(out["body"], json!({"id": 42}));
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /orders/Oslo HTTP/1.1"),
            "{request}"
        );
        assert!(request.to_ascii_lowercase().contains("x-home: h="));
        assert!(request.ends_with(r#"{"units":"metric"}"#), "{request}");
    }

    #[tokio::test]
    async fn the_idempotency_header_carries_the_calls_key_on_every_attempt() {
        let (base, seen) = serve_all(vec![ok_response()]).await;
        let mut spec = spec(&format!("{base}/tickets/{{city}}"));
        spec.method = HttpMethod::Post;
        spec.idempotency_header = Some("Idempotency-Key".into());
        let tool = HttpTool::new(spec).unwrap();
        let ctx = || {
            ToolContext::new("call_9", "support", "sess_1", Default::default())
                .with_conversation("conv_1".into())
        };
        for _ in 0..2 {
            tool.call(json!({"city": "Oslo"}), ctx()).await.unwrap();
        }
        let requests = seen.lock().unwrap().clone();
        assert_eq!(requests.len(), 2);
        for request in requests {
            assert!(
                request
                    .to_ascii_lowercase()
                    .contains("idempotency-key: conv_1:call_9\r\n"),
                "{request}"
            );
        }
        let mut bad = self::spec(&format!("{base}/x"));
        bad.idempotency_header = Some("not a header".into());
        let err = HttpTool::new(bad).unwrap_err();
        assert!(err.to_string().contains("idempotency_header"), "{err}");
    }

    /// A loopback server that answers request `i` with `responses[i]` (the last one for every
    /// request after), one request per connection, and records each request it received.
    async fn serve_all(responses: Vec<String>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            for i in 0.. {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !String::from_utf8_lossy(&request).contains("\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&request).into_owned());
                let response = responses.get(i).or(responses.last()).unwrap();
                socket.write_all(response.as_bytes()).await.ok();
                socket.shutdown().await.ok();
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn ok_response() -> String {
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".into()
    }

    fn redirect_to(location: &str) -> String {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }

    fn keyed_spec(url: &str, parameter: &str) -> HttpToolSpec {
        let mut spec: HttpToolSpec = serde_json::from_value(json!({
            "name": "get_profile",
            "description": "A user's profile.",
            "url": url,
            "parameters": {"type": "object", "properties": {parameter: {"type": "string"}}, "required": [parameter]},
        }))
        .unwrap();
        spec.headers.insert("X-Api-Key".into(), "tok-secret".into());
        spec
    }

    fn request_path(request: &str) -> &str {
        request.split(' ').nth(1).unwrap_or_default()
    }

    #[tokio::test]
    async fn path_placeholders_cannot_change_the_path() {
        let (base, seen) = serve_all(vec![ok_response()]).await;
        let tool = HttpTool::new(keyed_spec(
            &format!("{base}/api/v1/users/{{id}}/profile"),
            "id",
        ))
        .unwrap();
        for bad in ["..", ".", "%2e%2e", "%2E.", ".%2e", "%2e", ""] {
            let err = tool
                .call(json!({ "id": bad }), ToolContext::standalone())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), "invalid_arguments", "{bad}: {err}");
            assert!(err.to_string().contains("argument `id`"), "{bad}: {err}");
        }
        assert!(
            seen.lock().unwrap().is_empty(),
            "{:?}",
            seen.lock().unwrap()
        );

        let out = tool
            .call(json!({"id": "a/b\\c?d#e%f"}), ToolContext::standalone())
            .await
            .unwrap();
        assert!(out.as_str().contains("\"status\":200"), "{}", out.as_str());
        let out = tool
            .call(json!({"id": "../admin"}), ToolContext::standalone())
            .await
            .unwrap();
        assert!(out.as_str().contains("\"status\":200"), "{}", out.as_str());
        let seen = seen.lock().unwrap();
        let paths: Vec<&str> = seen.iter().map(|r| request_path(r)).collect();
        assert_eq!(
            paths,
            [
                "/api/v1/users/a%2Fb%5Cc%3Fd%23e%25f/profile",
                "/api/v1/users/..%2Fadmin/profile"
            ]
        );
    }

    #[tokio::test]
    async fn redirects_to_another_origin_are_refused_and_leak_no_header() {
        let (other, other_seen) = serve_all(vec![ok_response()]).await;
        // Same host, another port: a different origin.
        let (base, seen) = serve_all(vec![redirect_to(&format!("{other}/leak"))]).await;
        let tool = HttpTool::new(keyed_spec(&format!("{base}/users/{{id}}"), "id")).unwrap();
        let err = tool
            .call(json!({"id": "7"}), ToolContext::standalone())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), "failed", "{err}");
        assert!(err.to_string().contains("another origin"), "{err}");
        assert!(err.to_string().contains(&other), "{err}");
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert!(
            other_seen.lock().unwrap().is_empty(),
            "the other origin received: {:?}",
            other_seen.lock().unwrap()
        );
    }

    #[tokio::test]
    async fn redirects_within_the_origin_are_followed() {
        let (base, seen) = serve_all(vec![redirect_to("/users/8"), ok_response()]).await;
        let tool = HttpTool::new(keyed_spec(&format!("{base}/users/{{id}}"), "id")).unwrap();
        let out = tool
            .call(json!({"id": "7"}), ToolContext::standalone())
            .await
            .unwrap();
        assert!(out.as_str().contains("\"status\":200"), "{}", out.as_str());
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(request_path(&seen[1]), "/users/8");
        assert!(
            seen[1]
                .to_ascii_lowercase()
                .contains("x-api-key: tok-secret")
        );
    }

    #[tokio::test]
    async fn truncates_and_reports_missing_env() {
        let (base, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nabcdefghijklmnopqrstuvwxyz",
        )
        .await;
        let mut spec = spec(&format!("{base}/{{city}}"));
        spec.max_response_bytes = 10;
        let tool = HttpTool::new(spec.clone()).unwrap();
        let out = tool
            .call(json!({"city": "x"}), ToolContext::standalone())
            .await
            .unwrap();
        let out: Value = serde_json::from_str(out.as_str()).unwrap();
        assert_eq!(out["body"], "abcdefghij");
        assert_eq!(out["truncated"], true);

        spec.headers.insert(
            "Authorization".into(),
            "Bearer ${AGENT_TEST_SURELY_UNSET_VAR}".into(),
        );
        let err = HttpTool::new(spec)
            .unwrap()
            .call(json!({"city": "x"}), ToolContext::standalone())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("`AGENT_TEST_SURELY_UNSET_VAR`"),
            "{err}"
        );

        let err = tool
            .call(json!({"units": "x"}), ToolContext::standalone())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("missing argument `city`"), "{err}");
    }

    #[tokio::test]
    async fn arguments_are_checked_against_the_whole_schema() {
        let mut spec = spec("http://127.0.0.1:9/{city}");
        spec.parameters = json!({"type": "object", "properties": {
            "city": {"type": "string"},
            "units": {"type": "string", "enum": ["metric", "imperial"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7}
        }, "required": ["city"]});
        let tool = HttpTool::new(spec.clone()).unwrap();
        for (args, expected) in [
            (json!({"city": 3}), "argument `city`"),
            (json!({"city": "x", "units": "kelvin"}), "argument `units`"),
            (json!({"city": "x", "days": 30}), "argument `days`"),
        ] {
            let err = tool
                .call(args.clone(), ToolContext::standalone())
                .await
                .unwrap_err();
            assert_eq!(err.kind(), "invalid_arguments", "{args}: {err}");
            assert!(err.to_string().contains(expected), "{args}: {err}");
        }
        spec.parameters = json!({"type": "object", "properties": {"city": {"type": 12}}});
        let err = HttpTool::new(spec).unwrap_err();
        assert!(err.to_string().contains("not a valid JSON Schema"), "{err}");
    }

    #[test]
    fn bodies_render_by_type() {
        assert_eq!(
            render_body(b"{\"a\":1}", Some("application/json; charset=utf-8"), false),
            json!({"a": 1})
        );
        assert_eq!(
            render_body(b"{\"a\":", Some("application/json"), true),
            json!("{\"a\":")
        );
        assert_eq!(
            render_body("h\u{e9}".as_bytes()[..2].as_ref(), Some("text/plain"), true),
            json!("h")
        );
        assert_eq!(
            render_body(&[0, 159, 146, 150], Some("image/png"), false),
            json!("[4 bytes of image/png content not shown]")
        );
    }
}
