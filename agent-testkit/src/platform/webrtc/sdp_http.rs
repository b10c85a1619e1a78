//! `POST /v1/realtime/calls` as HTTP: which of its two forms a request takes, whether its bearer
//! may open a call, and the offer and session it brings (shared/realtime-spec/realtime-rest.md,
//! "WebRTC calls").
//!
//! - **Browser direct:** `Content-Type: application/sdp`, the body is the offer, and the bearer
//!   is a client secret this platform minted and that has not expired; the session is the
//!   secret's. Anything else as the bearer (the API key included) is refused with 401: the
//!   point of this form is that the browser never holds the key.
//! - **Unified:** `Content-Type: multipart/form-data` with a part `sdp` and an optional part
//!   `session` (a GA session config), and the API key as the bearer.

use serde_json::{Value, json};

use super::multipart;
use crate::{
    mcp::http::Request,
    platform::{
        client_secrets::{ClientSecrets, Refused, invalid_api_key},
        rest::error,
    },
    server::{Dialect, session},
};

/// The form of a `POST /v1/realtime/calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferForm {
    /// `application/sdp` with a client secret.
    ClientSecret,
    /// `multipart/form-data` with the API key.
    Multipart,
}

/// A request that may open a call.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Offer {
    pub(super) form: OfferForm,
    pub(super) sdp: String,
    /// The session config the call starts with.
    pub(super) session: Value,
}

/// A request that opens no call: its form (when recognised), the status and the error body.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Refusal {
    pub(super) form: Option<OfferForm>,
    pub(super) status: u16,
    pub(super) body: Value,
}

impl Refusal {
    fn new(form: Option<OfferForm>, status: u16, body: Value) -> Self {
        Refusal { form, status, body }
    }
}

/// Reads a create-call request; `api_key` is the platform's key (`None`: any bearer passes the
/// key check, as on the other endpoints).
pub(super) fn read_offer(
    request: &Request,
    api_key: Option<&str>,
    secrets: &ClientSecrets,
) -> Result<Offer, Refusal> {
    let content_type = header(request, "content-type").unwrap_or_default();
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media_type.as_str() {
        "application/sdp" => direct(request, secrets),
        "multipart/form-data" => unified(request, content_type, api_key),
        _ => Err(Refusal::new(
            None,
            400,
            error(
                "unsupported_content_type",
                &format!(
                    "Unsupported Content-Type '{content_type}': send the offer as application/sdp (with a client secret) or as multipart/form-data with parts 'sdp' and 'session' (with the API key)."
                ),
            ),
        )),
    }
}

/// The browser-direct form.
fn direct(request: &Request, secrets: &ClientSecrets) -> Result<Offer, Refusal> {
    let form = Some(OfferForm::ClientSecret);
    let session = match bearer(request).map(|value| secrets.session_for(value)) {
        Some(Ok(session)) => session,
        Some(Err(Refused::Expired)) => {
            return Err(Refusal::new(
                form,
                401,
                json!({"error": {
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                    "param": null,
                    "message": "The client secret has expired. Mint a new one with POST /v1/realtime/client_secrets.",
                }}),
            ));
        }
        Some(Err(Refused::Unknown)) | None => {
            return Err(Refusal::new(form, 401, invalid_api_key()));
        }
    };
    let sdp = sdp_text(&request.body).map_err(|body| Refusal::new(form, 400, body))?;
    Ok(Offer {
        form: OfferForm::ClientSecret,
        sdp,
        session: strip_response_fields(session),
    })
}

/// The unified form.
fn unified(request: &Request, content_type: &str, api_key: Option<&str>) -> Result<Offer, Refusal> {
    let form = Some(OfferForm::Multipart);
    let refuse = |status, body| Refusal::new(form, status, body);
    if api_key.is_some_and(|key| bearer(request) != Some(key)) {
        return Err(refuse(401, invalid_api_key()));
    }
    let boundary = multipart::boundary(content_type).ok_or_else(|| {
        refuse(
            400,
            error(
                "invalid_request_error",
                "multipart/form-data needs a boundary parameter in its Content-Type.",
            ),
        )
    })?;
    let parts = multipart::parse(&request.body, &boundary).map_err(|why| {
        refuse(
            400,
            error(
                "invalid_request_error",
                &format!("Malformed multipart body: {why}."),
            ),
        )
    })?;
    if let Some(part) = parts
        .iter()
        .find(|p| !matches!(p.name.as_str(), "sdp" | "session"))
    {
        return Err(refuse(
            400,
            error(
                "unknown_parameter",
                &format!("Unknown parameter: '{}'.", part.name),
            ),
        ));
    }
    let Some(sdp) = parts.iter().find(|p| p.name == "sdp") else {
        return Err(refuse(
            400,
            error(
                "missing_required_parameter",
                "Missing required parameter: 'sdp'.",
            ),
        ));
    };
    let sdp = sdp_text(&sdp.body).map_err(|body| refuse(400, body))?;
    let session = match parts.iter().find(|p| p.name == "session") {
        None => json!({"type": "realtime"}),
        Some(part) => {
            let session: Value = serde_json::from_slice(&part.body).map_err(|e| {
                refuse(
                    400,
                    error(
                        "invalid_json",
                        &format!("The 'session' part is not JSON ({e})."),
                    ),
                )
            })?;
            if let Err(spec) = session::validate_update(Dialect::Ga, Some(&session)) {
                let code = spec.code.as_deref().unwrap_or("invalid_value");
                return Err(refuse(
                    400,
                    error(code, &format!("session: {}", spec.message)),
                ));
            }
            session
        }
    };
    Ok(Offer {
        form: OfferForm::Multipart,
        sdp,
        session,
    })
}

/// The SDP offer as text, or the error body.
fn sdp_text(body: &[u8]) -> Result<String, Value> {
    let text = std::str::from_utf8(body)
        .map_err(|_| error("invalid_sdp", "The SDP offer is not UTF-8 text."))?;
    if text.trim().is_empty() {
        return Err(error("invalid_sdp", "The SDP offer is empty."));
    }
    Ok(text.to_owned())
}

/// A client secret's session is a full session object (the mint's answer); the call's session
/// takes only its config, as an accept would.
fn strip_response_fields(mut session: Value) -> Value {
    if let Some(object) = session.as_object_mut() {
        for key in ["object", "id", "expires_at"] {
            object.remove(key);
        }
    }
    session
}

fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The bearer token of the request's `Authorization` header.
pub(crate) fn bearer(request: &Request) -> Option<&str> {
    header(request, "authorization")?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(content_type: &str, bearer: Option<&str>, body: &[u8]) -> Request {
        let mut headers = vec![("content-type".to_owned(), content_type.to_owned())];
        if let Some(b) = bearer {
            headers.push(("authorization".to_owned(), format!("Bearer {b}")));
        }
        Request {
            method: "POST".into(),
            path: "/v1/realtime/calls".into(),
            headers,
            body: body.to_vec(),
        }
    }

    #[test]
    fn the_direct_form_takes_its_session_from_the_secret() {
        let secrets = ClientSecrets::default();
        let secret = secrets
            .issue(&json!({"type": "realtime", "instructions": "Hi."}), 60)
            .unwrap();
        let offer = read_offer(
            &request("application/sdp", Some(&secret.value), b"v=0\r\n"),
            Some("sk-test"),
            &secrets,
        )
        .unwrap();
        assert_eq!(offer.form, OfferForm::ClientSecret);
        assert_eq!(offer.session["instructions"], "Hi.");
        assert!(offer.session.get("id").is_none());
        for bad in [None, Some("sk-test"), Some("ek_unknown")] {
            let refused = read_offer(
                &request("application/sdp", bad, b"v=0\r\n"),
                Some("sk-test"),
                &secrets,
            )
            .unwrap_err();
            assert_eq!(refused.status, 401, "{bad:?}");
        }
        let empty = read_offer(
            &request("application/sdp", Some(&secret.value), b" "),
            None,
            &secrets,
        )
        .unwrap_err();
        assert_eq!(empty.status, 400);
    }

    #[test]
    fn the_unified_form_needs_the_key_an_sdp_part_and_a_valid_session() {
        let secrets = ClientSecrets::default();
        let ct = "multipart/form-data; boundary=B";
        let good = multipart::encode(
            "B",
            &[
                ("sdp", "application/sdp", "v=0"),
                ("session", "application/json", r#"{"type":"realtime"}"#),
            ],
        );
        let offer = read_offer(
            &request(ct, Some("sk-test"), &good),
            Some("sk-test"),
            &secrets,
        )
        .unwrap();
        assert_eq!(
            (offer.form, offer.sdp.as_str()),
            (OfferForm::Multipart, "v=0")
        );
        let refused = read_offer(
            &request(ct, Some("sk-wrong"), &good),
            Some("sk-test"),
            &secrets,
        );
        assert_eq!(refused.unwrap_err().status, 401);
        assert_eq!(
            read_offer(&request(ct, None, &good), Some("sk-test"), &secrets)
                .unwrap_err()
                .status,
            401
        );
        for body in [
            multipart::encode("B", &[("session", "application/json", "{}")]),
            multipart::encode(
                "B",
                &[
                    ("sdp", "application/sdp", "v=0"),
                    ("session", "application/json", "{"),
                ],
            ),
            multipart::encode(
                "B",
                &[
                    ("sdp", "application/sdp", "v=0"),
                    (
                        "session",
                        "application/json",
                        r#"{"instructions":"no type"}"#,
                    ),
                ],
            ),
            multipart::encode(
                "B",
                &[
                    ("sdp", "application/sdp", "v=0"),
                    ("extra", "text/plain", "x"),
                ],
            ),
            b"garbage".to_vec(),
        ] {
            let refused = read_offer(
                &request(ct, Some("sk-test"), &body),
                Some("sk-test"),
                &secrets,
            );
            assert_eq!(refused.unwrap_err().status, 400);
        }
        let other = read_offer(
            &request("text/plain", Some("sk-test"), b"v=0"),
            Some("sk-test"),
            &secrets,
        );
        assert_eq!(other.unwrap_err().status, 400);
    }
}
