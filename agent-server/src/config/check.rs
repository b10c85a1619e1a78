//! The checks `serve.toml` must pass beyond its shape: addresses, URLs, limits and routes.

use std::{collections::HashSet, net::SocketAddr, ops::Range, path::PathBuf, time::Duration};

use agent_core::agent::Diagnostic;
use toml::Spanned;

use super::{ConfigError, Limits, Route, ServeConfig, spec::ServeSpec};

/// The most calls one process is allowed to be configured for.
const MAX_CALLS_CEILING: usize = 100_000;

pub(super) struct Checker<'a> {
    pub(super) path: PathBuf,
    pub(super) source: &'a str,
    pub(super) problems: Vec<Diagnostic>,
}

impl Checker<'_> {
    pub(super) fn at(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<&str>,
    ) {
        self.problems.push(Diagnostic::at(
            &self.path,
            self.source,
            span,
            message,
            hint.map(str::to_owned),
        ));
    }

    /// An `http(s)://` URL with a host and neither query nor fragment, without a trailing `/`.
    fn base_url(&mut self, value: &Spanned<String>, key: &str) -> String {
        let text = value.get_ref().trim_end_matches('/');
        match url::Url::parse(text) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host_str().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none()
                    && url.username().is_empty()
                    && url.password().is_none() => {}
            _ => self.at(
                value.span(),
                format!("`{key}` must be an http:// or https:// URL with a host and no query, credentials or fragment"),
                Some("for example \"https://voice.example.com\""),
            ),
        }
        text.to_owned()
    }

    /// [`base_url`](Self::base_url), and https unless the host is a loopback address: the
    /// URL is where Twilio sends a live call's parameters, signed but readable on the way.
    fn secure_base_url(&mut self, value: &Spanned<String>, key: &str) -> String {
        let text = self.base_url(value, key);
        if let Ok(url) = url::Url::parse(&text)
            && url.scheme() == "http"
            && !is_loopback(&url)
        {
            self.at(
                value.span(),
                format!("`{key}` must be an https:// URL (http:// only on a loopback address)"),
                Some("for example \"https://voice.example.com\""),
            );
        }
        text
    }

    fn secs(&mut self, value: f64, key: &str) -> Duration {
        if value.is_finite() && value > 0.0 && value <= 86_400.0 {
            return Duration::from_secs_f64(value);
        }
        let span = key_span(self.source, key);
        self.at(
            span,
            format!("`limits.{key}` must be a number of seconds above 0 and at most 86400"),
            None,
        );
        Duration::from_secs(1)
    }

    fn count(&mut self, value: usize, key: &str) -> usize {
        if value == 0 {
            let span = key_span(self.source, key);
            self.at(span, format!("`limits.{key}` must be at least 1"), None);
        }
        value.max(1)
    }
}

/// Whether the URL's host is `localhost` or a loopback IP address.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Where `key =` first appears, for values that carry no span.
fn key_span(source: &str, key: &str) -> Range<usize> {
    let mut offset = 0;
    for line in source.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            let start = offset + line.len() - trimmed.len();
            return start..start + key.len();
        }
        offset += line.len();
    }
    0..0
}

pub(super) fn check(
    path: PathBuf,
    source: &str,
    spec: ServeSpec,
) -> Result<ServeConfig, ConfigError> {
    let mut c = Checker {
        path: path.clone(),
        source,
        problems: Vec::new(),
    };
    let listen = match spec.listen.get_ref().parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            c.at(
                spec.listen.span(),
                format!(
                    "`listen` = `{}` is not an address and port",
                    spec.listen.get_ref()
                ),
                Some("for example \"127.0.0.1:8080\" or \"0.0.0.0:8080\""),
            );
            SocketAddr::from(([127, 0, 0, 1], 0))
        }
    };
    let public_base_url = c.base_url(&spec.public_base_url, "public_base_url");
    let max_calls = *spec.max_calls.get_ref();
    if !(1..=MAX_CALLS_CEILING).contains(&max_calls) {
        c.at(
            spec.max_calls.span(),
            format!("`max_calls` must be between 1 and {MAX_CALLS_CEILING}"),
            None,
        );
    }
    let twilio_api_base = c.base_url(&spec.twilio.api_base, "twilio.api_base");
    let twilio_resume_base_url = spec
        .twilio
        .resume_base_url
        .as_ref()
        .map(|url| c.secure_base_url(url, "twilio.resume_base_url"));
    let realtime_url = spec.openai.realtime_url.as_ref().map(|url| {
        if !url.get_ref().starts_with("ws://") && !url.get_ref().starts_with("wss://") {
            c.at(
                url.span(),
                "`openai.realtime_url` must be a ws:// or wss:// URL",
                Some("for example \"wss://api.openai.com/v1/realtime\""),
            );
        }
        url.get_ref().clone()
    });
    let api_base = spec
        .openai
        .api_base
        .as_ref()
        .map(|url| c.base_url(url, "openai.api_base"));
    let l = &spec.limits;
    let limits = Limits {
        max_body_bytes: c.count(l.max_body_bytes, "max_body_bytes"),
        request_timeout: c.secs(l.request_timeout_secs, "request_timeout_secs"),
        max_concurrent_requests: c.count(l.max_concurrent_requests, "max_concurrent_requests"),
        max_frame_bytes: c.count(l.max_frame_bytes, "max_frame_bytes"),
        stream_token_ttl: c.secs(l.stream_token_secs, "stream_token_secs"),
        stream_start: c.secs(l.stream_start_secs, "stream_start_secs"),
        stream_idle: c.secs(l.stream_idle_secs, "stream_idle_secs"),
        stream_write: c.secs(l.stream_write_secs, "stream_write_secs"),
        webhook_requests_per_minute: c.count(
            l.webhook_requests_per_minute as usize,
            "webhook_requests_per_minute",
        ) as u32,
        webhook_burst: c.count(l.webhook_burst as usize, "webhook_burst") as u32,
    };
    let admin_listen = super::operations::admin_listen(&mut c, spec.admin.as_ref());
    let node = super::operations::node(&mut c, spec.node.as_ref());
    let history = super::operations::history(&mut c, &spec.history);
    let routes = check_routes(&mut c, &spec);
    let browser = super::browser::check(&mut c, &spec.browser, &routes);
    if !c.problems.is_empty() {
        return Err(ConfigError::Invalid(c.problems));
    }
    Ok(ServeConfig {
        path,
        listen,
        public_base_url,
        max_calls,
        secrets: spec.secrets,
        twilio_api_base,
        twilio_resume_base_url,
        realtime_url,
        api_base,
        limits,
        routes,
        admin_listen,
        node,
        history,
        browser,
    })
}

fn check_routes(c: &mut Checker<'_>, spec: &ServeSpec) -> Vec<Route> {
    if spec.routes.is_empty() {
        c.at(
            0..0,
            "no `[[route]]`: the server would answer no call",
            Some(
                "add [[route]] with agent = \"agents/support.toml\" and numbers = [\"+15550100\"]",
            ),
        );
    }
    let base = c.path.parent().map(PathBuf::from).unwrap_or_default();
    // Each number, SIP user and path may lead to one agent only.
    let mut seen: HashSet<String> = HashSet::new();
    let mut routes = Vec::new();
    for route in &spec.routes {
        if route.numbers.is_empty()
            && route.sip_users.is_empty()
            && route.path.is_none()
            && !route.browser
        {
            c.at(
                route.agent.span(),
                "this route reaches its agent by no number, SIP user, path or browser",
                Some("add numbers = [\"+15550100\"], sip_users = [\"support\"], path = \"support\" or browser = true"),
            );
        }
        for number in &route.numbers {
            let n = number.get_ref();
            let digits = n.strip_prefix('+').unwrap_or("");
            if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                c.at(
                    number.span(),
                    format!("`{n}` is not an E.164 number"),
                    Some("write it as Twilio sends `To`: \"+\" and up to 15 digits, e.g. \"+15550100\""),
                );
            }
        }
        let keys = route
            .numbers
            .iter()
            .map(|n| (format!("number {}", n.get_ref()), n))
            .chain(
                route
                    .sip_users
                    .iter()
                    .map(|u| (format!("SIP user {}", u.get_ref()), u)),
            )
            .chain(
                route
                    .path
                    .iter()
                    .map(|p| (format!("path {}", p.get_ref()), p)),
            );
        for (key, value) in keys {
            if !seen.insert(key.clone()) {
                c.at(
                    value.span(),
                    format!("{key} is routed twice; each may lead to one agent only"),
                    None,
                );
            }
        }
        if let Some(path) = &route.path {
            let p = path.get_ref();
            if p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                c.at(
                    path.span(),
                    "`path` must be one URL path segment of letters, digits, `-` and `_`",
                    None,
                );
            }
        }
        if let Some(cap) = &route.max_cost_usd_per_day
            && !(cap.get_ref().is_finite() && *cap.get_ref() >= 0.0)
        {
            c.at(
                cap.span(),
                "`max_cost_usd_per_day` must be a number of dollars, 0 or more",
                None,
            );
        }
        routes.push(Route {
            agent_path: base.join(route.agent.get_ref()),
            numbers: route.numbers.iter().map(|n| n.get_ref().clone()).collect(),
            sip_users: route
                .sip_users
                .iter()
                .map(|u| u.get_ref().clone())
                .collect(),
            path: route.path.as_ref().map(|p| p.get_ref().clone()),
            max_cost_usd_per_day: route.max_cost_usd_per_day.as_ref().map(|c| *c.get_ref()),
            greet: route.greet,
            browser: route.browser,
        });
    }
    routes
}

#[cfg(test)]
mod tests {
    use super::super::*;

    const GOOD: &str = r#"
listen = "127.0.0.1:8080"
public_base_url = "https://voice.example.com/"
max_calls = 3

[limits]
stream_token_secs = 10

[[route]]
agent = "agents/support.toml"
numbers = ["+15550100"]
max_cost_usd_per_day = 5.0
"#;

    #[test]
    fn a_good_file_gives_the_checked_values() {
        let config = ServeConfig::parse("/etc/agent/serve.toml", GOOD).unwrap();
        assert_eq!(config.listen.port(), 8080);
        assert_eq!(config.public_base_url, "https://voice.example.com");
        assert_eq!(
            config.media_stream_url(),
            "wss://voice.example.com/twilio/media-stream"
        );
        assert_eq!(config.max_calls, 3);
        assert_eq!(config.limits.stream_token_ttl, Duration::from_secs(10));
        assert_eq!(config.secrets.twilio_auth_token_env, "TWILIO_AUTH_TOKEN");
        assert_eq!(
            config.routes[0].agent_path,
            PathBuf::from("/etc/agent/agents/support.toml")
        );
        assert_eq!(config.route_for_number("+15550100"), Some(0));
        assert_eq!(config.route_for_number("+15550199"), None);
        assert!(config.routes[0].greet);
    }

    #[test]
    fn the_resume_url_is_https_or_loopback_http() {
        let config = ServeConfig::parse("serve.toml", GOOD).unwrap();
        assert_eq!(config.twilio_resume_url(1), None, "off unless set");
        let with = |url: &str| {
            let text = GOOD.replace(
                "[limits]",
                &format!("[twilio]\nresume_base_url = \"{url}\"\n\n[limits]"),
            );
            ServeConfig::parse("serve.toml", &text)
        };
        let config = with("https://lb.example.com/").unwrap();
        assert_eq!(
            config.twilio_resume_url(2).as_deref(),
            Some("https://lb.example.com/twilio/resume?attempt=2")
        );
        assert!(with("http://127.0.0.1:8080").is_ok());
        assert!(with("http://localhost:8080").is_ok());
        let err = with("http://lb.example.com").unwrap_err().to_string();
        assert!(
            err.contains("`twilio.resume_base_url` must be an https:// URL"),
            "{err}"
        );
        let err = with("ftp://lb.example.com").unwrap_err().to_string();
        assert!(err.contains("`twilio.resume_base_url` must be"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused_with_line_and_column() {
        let text = GOOD.replace("max_calls = 3", "max_call = 3");
        let err = ServeConfig::parse("serve.toml", &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("serve.toml:4:1: unknown field `max_call`"),
            "{err}"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
listen = "localhost"
public_base_url = "https://voice.example.com/?x=1"
max_calls = 0

[limits]
stream_idle_secs = -1

[[route]]
agent = "a.toml"
numbers = ["555-0100", "+15550100"]

[[route]]
agent = "b.toml"
numbers = ["+15550100"]
path = "a b"
max_cost_usd_per_day = -2.0
"#;
        let err = ServeConfig::parse("serve.toml", text)
            .unwrap_err()
            .to_string();
        for expected in [
            "serve.toml:2:10: `listen` = `localhost` is not an address",
            "serve.toml:3:19: `public_base_url` must be",
            "serve.toml:4:13: `max_calls` must be between 1",
            "serve.toml:7:1: `limits.stream_idle_secs`",
            "serve.toml:11:12: `555-0100` is not an E.164 number",
            "serve.toml:15:12: number +15550100 is routed twice",
            "serve.toml:16:8: `path` must be one URL path segment",
            "serve.toml:17:24: `max_cost_usd_per_day` must be",
        ] {
            assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
        }
    }

    #[test]
    fn a_file_without_routes_or_a_routeless_route_is_refused() {
        let err = ServeConfig::parse(
            "serve.toml",
            "listen = \"127.0.0.1:1\"\npublic_base_url = \"http://127.0.0.1:1\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no `[[route]]`"), "{err}");
        let err = ServeConfig::parse(
            "serve.toml",
            "listen = \"127.0.0.1:1\"\npublic_base_url = \"http://127.0.0.1:1\"\n[[route]]\nagent = \"a.toml\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("serve.toml:4:9: this route reaches its agent by no number"),
            "{err}"
        );
    }
}
