//! `multipart/form-data` bodies (RFC 7578), as far as `POST /v1/realtime/calls` needs them:
//! named parts with text values. A malformed body is an error that says what is wrong.

/// One part of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    /// The `name` of its `Content-Disposition`.
    pub(super) name: String,
    /// Its `Content-Type`, when given.
    pub(super) content_type: Option<String>,
    /// Its bytes.
    pub(super) body: Vec<u8>,
}

/// The boundary of a `multipart/form-data; boundary=...` content type.
pub(super) fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

/// The parts of `body`, split at `boundary`.
pub(super) fn parse(body: &[u8], boundary: &str) -> Result<Vec<Part>, String> {
    let delimiter = format!("--{boundary}").into_bytes();
    let mut rest = match find(body, &delimiter) {
        Some(at) => &body[at + delimiter.len()..],
        None => return Err(format!("the body has no part delimited by `--{boundary}`")),
    };
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts); // the closing delimiter
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a part delimiter must end its line with CRLF")?;
        let next = [b"\r\n".as_slice(), &delimiter].concat();
        let end = find(rest, &next)
            .ok_or("the body ends inside a part: the closing delimiter is missing")?;
        parts.push(part(&rest[..end])?);
        rest = &rest[end + next.len()..];
    }
}

/// One part: headers, a blank line, the body.
fn part(raw: &[u8]) -> Result<Part, String> {
    let split = find(raw, b"\r\n\r\n").ok_or("a part has no blank line after its headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "a part's headers are not UTF-8")?;
    let mut name = None;
    let mut content_type = None;
    for line in head.split("\r\n") {
        let Some((header, value)) = line.split_once(':') else {
            return Err(format!("a part has a malformed header line `{line}`"));
        };
        if header.trim().eq_ignore_ascii_case("content-disposition") {
            name = value
                .split(';')
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim() == "name")
                .map(|(_, v)| v.trim().trim_matches('"').to_owned());
        } else if header.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    let name = name.ok_or("a part has no `Content-Disposition: form-data; name=...`")?;
    Ok(Part {
        name,
        content_type,
        body: raw[split + 4..].to_vec(),
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A form with text parts, as `fetch` and curl send it (for the test browser and tests).
pub(crate) fn encode(boundary: &str, parts: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, content_type, value) in parts {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_form() {
        let body = encode(
            "XyZ",
            &[
                (
                    "sdp",
                    "application/sdp",
                    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n",
                ),
                ("session", "application/json", "{}"),
            ],
        );
        let parts = parse(&body, "XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "sdp");
        assert_eq!(parts[0].body, b"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n");
        assert_eq!(parts[1].content_type.as_deref(), Some("application/json"));
        assert_eq!(parts[1].body, b"{}");
    }

    #[test]
    fn reads_the_boundary_parameter() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"a b\"").as_deref(),
            Some("a b")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=x").as_deref(),
            Some("x")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("application/sdp; boundary=x"), None);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for (body, why) in [
            (&b"nothing here"[..], "no part"),
            (
                b"--b\r\nContent-Disposition: form-data; name=\"sdp\"\r\n\r\nv=0",
                "unterminated",
            ),
            (b"--b\r\nno-colon\r\n\r\nx\r\n--b--", "bad header"),
            (
                b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--",
                "no name",
            ),
            (b"--bX", "bad delimiter line"),
        ] {
            assert!(parse(body, "b").is_err(), "{why}");
        }
    }
}
