//! The entry points that `cargo fuzz` drives, one function per target, each taking the raw bytes
//! of one input.
//!
//! They live in a workspace crate rather than in `fuzz/` so that two things run the same code:
//! the sanitizer-instrumented fuzzers in `fuzz/` (nightly features, run in sessions, see the
//! README's "Fuzzing" section) and `tests/replay.rs`, which replays every committed corpus entry
//! and every crash file as an ordinary `cargo test` case. A crash found once then stays fixed
//! without a sanitizer build in CI.
//!
//! Each function returns normally for any input the code handles correctly, including inputs it
//! rejects with an error. It panics only when the code under test panics, or when a property the
//! code promises does not hold (for example, a filled URL template that changed its host).

use agent_core::{
    agent::AgentFile,
    history::parse_import,
    protocol::{ClientEvent, Dialect, ServerEvent},
    tool::http::{FillError, UrlTemplate},
};
use serde_json::Value;

/// A fuzz target's entry point: one input's bytes.
pub type Target = fn(&[u8]);

/// Every fuzz target: its name (the directory under `fuzz/corpus/` and `fuzz/artifacts/`) and
/// its entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("server_event", server_event),
    ("client_event", client_event),
    ("agent_file", agent_file),
    ("scenario", scenario),
    ("http_url", http_url),
    ("calculator", calculator),
    ("history_import", history_import),
];

/// `ServerEvent::decode` on one frame. A decoded event must encode again in the GA dialect, and
/// that frame must decode and encode to the same frame: what the scripted server sends is what
/// the client reads. (The first encoding may drop what GA has no field for, such as a beta
/// `temperature`, so the property is that encoding is stable, not that decoding is lossless.)
pub fn server_event(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = ServerEvent::decode(text) else {
        return;
    };
    let Ok(encoded) = event.encode(Dialect::Ga) else {
        return;
    };
    let again = ServerEvent::decode(&encoded).unwrap_or_else(|err| {
        panic!("a decoded event re-encodes to a frame that fails to decode: {err}\n{encoded}")
    });
    let re_encoded = again
        .encode(Dialect::Ga)
        .unwrap_or_else(|err| panic!("a re-decoded event fails to encode: {err}\n{encoded}"));
    assert_eq!(re_encoded, encoded, "encoding is not stable");
}

/// `ClientEvent::decode` on one frame (the scripted server reads these).
pub fn client_event(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ClientEvent::decode(text);
    }
}

/// Loading an agent file: TOML parsing, the schema, and every semantic check.
pub fn agent_file(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = AgentFile::parse("fuzz/agent.toml", text.to_owned());
    }
}

/// Parsing and validating a scenario file.
pub fn scenario(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = agent_testkit::scenario::ScenarioFile::from_str(text, "fuzz.scenarios.toml");
    }
}

/// An HTTP tool's URL template, filled from model arguments. The input is the template, a
/// newline, and the arguments as a JSON object.
///
/// Properties checked: a filled URL keeps the template's scheme, host and port, keeps its number
/// of path segments, and no segment a value filled decodes to `.` or `..`.
pub fn http_url(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (template_text, args_text) = text.split_once('\n').unwrap_or((text, "{}"));
    let Ok(template) = UrlTemplate::parse(template_text) else {
        return;
    };
    let Ok(Value::Object(mut args)) = serde_json::from_str::<Value>(args_text) else {
        return;
    };
    let sample_text = sample_url(template_text);
    let sample = url::Url::parse(&sample_text).unwrap_or_else(|err| {
        panic!("a parsed template's sample `{sample_text}` is invalid: {err}")
    });
    let url = match template.fill(&mut args) {
        Ok(url) => url,
        Err(FillError::Argument(_) | FillError::Url(_)) => return,
    };
    assert_eq!(url.scheme(), sample.scheme(), "scheme changed: {url}");
    assert_eq!(url.host_str(), sample.host_str(), "host changed: {url}");
    assert_eq!(
        url.port_or_known_default(),
        sample.port_or_known_default(),
        "port changed: {url}"
    );
    assert_eq!(url.username(), "", "credentials appeared: {url}");
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    let expected: Vec<&str> = sample
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    assert_eq!(
        segments.len(),
        expected.len(),
        "the path changed shape: {url} vs {sample}"
    );
    for (segment, literal) in segments.iter().zip(&expected) {
        if segment != literal {
            assert!(
                !is_dot_segment(segment),
                "a value became a dot segment: {url}"
            );
        }
    }
}

/// The template with every `{name}` replaced by `x`: the shape every filled URL must keep.
fn sample_url(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                out.push('x');
                rest = &rest[open + close + 1..];
            }
            None => {
                rest = &rest[open..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `segment`, percent-decoded up to three times, is `.` or `..`.
fn is_dot_segment(segment: &str) -> bool {
    let mut text = segment.to_owned();
    for _ in 0..4 {
        if text == "." || text == ".." {
            return true;
        }
        text = percent_encoding::percent_decode_str(&text)
            .decode_utf8_lossy()
            .into_owned();
    }
    false
}

/// The calculator tool's expression parser: any result must be finite.
pub fn calculator(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(value) = agent_tools::calculate::evaluate(text)
    {
        assert!(value.is_finite(), "`{text}` evaluated to {value}");
    }
}

/// Importing a conversation export (chat-completions JSON or JSONL items).
pub fn history_import(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_import(text);
    }
}
