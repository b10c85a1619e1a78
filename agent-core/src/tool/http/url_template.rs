//! An HTTP tool's URL with `{param}` placeholders, filled from the model's arguments without
//! letting a value change where the request goes.
//!
//! Placeholders may only sit in the path or the query, so the model never picks the scheme,
//! host or port. In the path, a value stays inside its segment: every character outside RFC
//! 3986's "unreserved" set is percent-encoded (`/`, `\`, `?`, `#` and `%` included), and a
//! value that is, or percent-decodes to, `.` or `..` is refused, as is a segment a value leaves
//! empty, `.` or `..` (servers and proxies collapse `//` and resolve dot segments, which would
//! remove or climb a segment of the URL the agent author wrote). As a last guard the filled URL
//! must have exactly as many path segments as the template.

use std::ops::Range;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde_json::{Map, Value};

/// Characters left as they are in a filled placeholder (RFC 3986 "unreserved").
const PLACEHOLDER_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// How many rounds of percent-decoding a path value gets before it is compared with `.` and
/// `..`: servers that decode twice would otherwise read `%252e%252e` as `..`.
const DECODE_ROUNDS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder { name: String, in_path: bool },
}

/// A parsed URL template.
#[derive(Debug, Clone)]
pub struct UrlTemplate {
    parts: Vec<Part>,
    /// The byte where the path starts; nothing before it is a placeholder, so the offset is the
    /// same in every filled URL.
    path_start: usize,
    /// How many path segments the template has; a filled URL must have as many.
    segments: usize,
}

/// Why a template could not be filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FillError {
    /// An argument cannot be used; the message names it, for the model to correct.
    Argument(String),
    /// The filled URL is unusable for another reason.
    Url(String),
}

impl UrlTemplate {
    /// Parses `template`; the error says what an agent author must fix.
    pub fn parse(template: &str) -> Result<Self, String> {
        let scheme_end = template
            .find("://")
            .ok_or_else(|| format!("the URL `{template}` has no scheme; start it with https://"))?;
        let authority_start = scheme_end + 3;
        let path_start = template[authority_start..]
            .find(['/', '?', '#'])
            .map_or(template.len(), |i| authority_start + i);
        let query_start = template[path_start..]
            .find(['?', '#'])
            .map_or(template.len(), |i| path_start + i);
        let mut parts = Vec::new();
        let mut rest = template;
        let mut offset = 0;
        while let Some(open) = rest.find(['{', '}']) {
            if rest.as_bytes()[open] == b'}' {
                return Err(format!(
                    "the URL has a `}}` without `{{` at byte {}",
                    offset + open
                ));
            }
            let Some(close) = rest[open..].find('}') else {
                return Err(format!(
                    "the URL has a `{{` without `}}` at byte {}",
                    offset + open
                ));
            };
            let name = &rest[open + 1..open + close];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`{{{name}}}` in the URL is not a placeholder; use `{{parameter_name}}`"
                ));
            }
            if offset + open < path_start {
                return Err(format!(
                    "`{{{name}}}` is in the URL's scheme, host or port; placeholders may only appear in the path or query, so the model cannot choose where requests go"
                ));
            }
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            parts.push(Part::Placeholder {
                name: name.to_owned(),
                in_path: offset + open < query_start,
            });
            offset += open + close + 1;
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        if template[authority_start..path_start].trim().is_empty() {
            return Err(format!("the URL `{template}` has no host"));
        }
        let parsed =
            sample(&parts, "x").map_err(|err| format!("the URL `{template}` is invalid: {err}"))?;
        // The URL parser forgives a lot (`http:///host/`, tabs, backslashes), so where the path
        // starts is checked on the parsed result too: filled two ways, the origin must not move.
        let other =
            sample(&parts, "y").map_err(|err| format!("the URL `{template}` is invalid: {err}"))?;
        if other.origin() != parsed.origin() {
            return Err(format!(
                "a placeholder in `{template}` would be read as part of the host; placeholders may only appear in the path or query"
            ));
        }
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "the URL must be http or https, not `{}`",
                parsed.scheme()
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("the URL may not hold credentials; use a header with ${ENV_VAR}".into());
        }
        Ok(UrlTemplate {
            parts,
            path_start,
            segments: segment_count(&parsed),
        })
    }

    /// The names of its placeholders, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Placeholder { name, .. } => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fills every placeholder, removing the arguments it used from `args`.
    pub fn fill(&self, args: &mut Map<String, Value>) -> Result<reqwest::Url, FillError> {
        let mut url = String::new();
        let mut in_path: Vec<(Range<usize>, &str)> = Vec::new();
        for part in &self.parts {
            let (name, is_path) = match part {
                Part::Literal(text) => {
                    url.push_str(text);
                    continue;
                }
                Part::Placeholder { name, in_path } => (name.as_str(), *in_path),
            };
            let value = args.remove(name).ok_or_else(|| {
                FillError::Argument(format!("missing argument `{name}` (it is part of the URL)"))
            })?;
            let text = scalar_text(&value).ok_or_else(|| {
                FillError::Argument(format!(
                    "argument `{name}` must be a string, number or boolean (it is part of the URL)"
                ))
            })?;
            if is_path && is_dot_segment(&text) {
                return Err(FillError::Argument(format!(
                    "argument `{name}` is `{text}`, which would climb the URL's path; a value in the path cannot be `.` or `..` (or their percent-encoded forms)"
                )));
            }
            let start = url.len();
            url.extend(utf8_percent_encode(&text, PLACEHOLDER_ENCODE));
            if is_path {
                in_path.push((start..url.len(), name));
            }
        }
        self.check_segments(&url, &in_path)?;
        let parsed = reqwest::Url::parse(&url)
            .map_err(|err| FillError::Url(format!("the filled-in URL is invalid: {err}")))?;
        if segment_count(&parsed) != self.segments {
            return Err(FillError::Url(
                "the filled-in URL's path does not have the shape the tool declares".into(),
            ));
        }
        Ok(parsed)
    }

    /// Refuses a path segment that a value left empty, `.` or `..` (servers collapse `//` and
    /// resolve dot segments, which would remove or climb a segment).
    fn check_segments(&self, url: &str, in_path: &[(Range<usize>, &str)]) -> Result<(), FillError> {
        let start = self.path_start.min(url.len());
        let end = url[start..]
            .find(['?', '#'])
            .map_or(url.len(), |i| start + i);
        let mut segment_start = start;
        for segment in url[start..end].split('/') {
            let range = segment_start..segment_start + segment.len();
            segment_start = range.end + 1;
            let names: Vec<&str> = in_path
                .iter()
                .filter(|(filled, _)| filled.start <= range.end && filled.end >= range.start)
                .map(|(_, name)| *name)
                .collect();
            if names.is_empty() {
                continue;
            }
            let arguments = names.join("`, `");
            if segment.is_empty() {
                return Err(FillError::Argument(format!(
                    "argument `{arguments}` is empty, but it fills a segment of the URL's path; give a value"
                )));
            }
            if is_dot_segment(segment) {
                return Err(FillError::Argument(format!(
                    "argument `{arguments}` makes the URL's path segment `{segment}`, which would climb the path; use another value"
                )));
            }
        }
        Ok(())
    }
}

/// The template with every placeholder replaced by `filler`, parsed.
fn sample(parts: &[Part], filler: &str) -> Result<reqwest::Url, url::ParseError> {
    let text: String = parts
        .iter()
        .map(|part| match part {
            Part::Literal(text) => text.as_str(),
            Part::Placeholder { .. } => filler,
        })
        .collect();
    reqwest::Url::parse(&text)
}

/// Whether `text` is `.` or `..`, as written or after percent-decoding.
fn is_dot_segment(text: &str) -> bool {
    let mut current = text.to_owned();
    for _ in 0..=DECODE_ROUNDS {
        if current == "." || current == ".." {
            return true;
        }
        let decoded = percent_decode_str(&current)
            .decode_utf8_lossy()
            .into_owned();
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    false
}

fn segment_count(url: &reqwest::Url) -> usize {
    url.path_segments().map_or(0, Iterator::count)
}

/// A scalar as text for a URL; `None` for arrays, objects and null.
pub(super) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fill(template: &str, args: Value) -> Result<String, FillError> {
        let mut args = args.as_object().unwrap().clone();
        UrlTemplate::parse(template)
            .unwrap()
            .fill(&mut args)
            .map(|url| url.to_string())
    }

    const PROFILE: &str = "http://127.0.0.1:9/api/v1/users/{id}/profile";

    /// Found by fuzzing (fuzz/artifacts/http_url/): with three slashes the URL parser reads
    /// the first path segment as the host, so `{a}` chose the host.
    #[test]
    fn a_placeholder_can_never_reach_the_host() {
        for template in [
            "http:///items+{a}/x",
            "https:// /{a}",
            "http://{a}.example.com/",
            "http://example.com{a}/",
        ] {
            let err = UrlTemplate::parse(template).unwrap_err();
            assert!(err.contains("host"), "{template}: {err}");
        }
        assert!(UrlTemplate::parse("http://example.com/{a}").is_ok());
    }

    #[test]
    fn dot_values_cannot_climb_the_path() {
        for bad in [
            ".",
            "..",
            "%2e%2e",
            "%2E.",
            ".%2e",
            "%2e",
            "%2E%2E",
            "%252e%252e",
        ] {
            let err = fill(PROFILE, json!({ "id": bad })).unwrap_err();
            let FillError::Argument(message) = &err else {
                panic!("{bad}: {err:?}")
            };
            assert!(message.contains("argument `id`"), "{bad}: {message}");
        }
        // In other positions too: the last segment, and a segment the value shares.
        for template in [
            "http://127.0.0.1:9/api/{id}",
            "http://127.0.0.1:9/{id}/x",
            "http://127.0.0.1:9/api/{id}?q=1",
        ] {
            assert!(fill(template, json!({"id": ".."})).is_err(), "{template}");
        }
        let err = fill("http://127.0.0.1:9/api/.{id}/x", json!({"id": ""})).unwrap_err();
        assert!(matches!(err, FillError::Argument(m) if m.contains("`id`")));
        let err = fill("http://127.0.0.1:9/api/{a}{b}/x", json!({"a": "", "b": ""})).unwrap_err();
        assert!(matches!(err, FillError::Argument(m) if m.contains("`a`, `b`")));
    }

    #[test]
    fn empty_values_cannot_remove_a_segment() {
        let err = fill(PROFILE, json!({"id": ""})).unwrap_err();
        assert!(matches!(err, FillError::Argument(m) if m.contains("argument `id` is empty")));
        // Inside a segment with literal text, an empty value is fine.
        assert_eq!(
            fill("http://127.0.0.1:9/files/{name}.json", json!({"name": ""})).unwrap(),
            "http://127.0.0.1:9/files/.json"
        );
    }

    #[test]
    fn separators_stay_inside_their_segment() {
        let url = fill(PROFILE, json!({"id": "a/b\\c?d#e%f..g"})).unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:9/api/v1/users/a%2Fb%5Cc%3Fd%23e%25f..g/profile"
        );
        let url = fill(PROFILE, json!({"id": "../../admin"})).unwrap();
        assert_eq!(
            url,
            "http://127.0.0.1:9/api/v1/users/..%2F..%2Fadmin/profile"
        );
        let url = fill(PROFILE, json!({"id": "...", "extra": 1})).unwrap();
        assert_eq!(url, "http://127.0.0.1:9/api/v1/users/.../profile");
    }

    #[test]
    fn query_placeholders_take_any_value() {
        let url = fill(
            "http://127.0.0.1:9/search?q={q}&n={n}",
            json!({"q": "..", "n": 3}),
        )
        .unwrap();
        assert_eq!(url, "http://127.0.0.1:9/search?q=..&n=3");
        let url = fill("http://127.0.0.1:9/search?q={q}", json!({"q": "a&b=c"})).unwrap();
        assert_eq!(url, "http://127.0.0.1:9/search?q=a%26b%3Dc");
    }

    #[test]
    fn arguments_must_be_present_and_scalar() {
        assert!(matches!(
            fill(PROFILE, json!({})).unwrap_err(),
            FillError::Argument(m) if m.contains("missing argument `id`")
        ));
        assert!(matches!(
            fill(PROFILE, json!({"id": [1]})).unwrap_err(),
            FillError::Argument(m) if m.contains("string, number or boolean")
        ));
    }
}
