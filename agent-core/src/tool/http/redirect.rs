//! Which redirects an HTTP tool follows: only those within the origin of its own URL.
//!
//! An HTTP tool's headers usually carry a secret (`X-Api-Key = "${TOKEN}"`), and reqwest strips
//! only `Authorization` and cookies on a cross-host redirect, never custom headers; it also
//! treats another port on the same host as the same place. So a redirect is followed only when
//! its target has the same origin (scheme, host **and** port) as the URL the tool called, and
//! any other redirect is refused with an error the model reads.
//!
//! Refusing, rather than following without the headers, is deliberate: the agent author vetted
//! one endpoint, and a 307/308 redirect would carry the request body (the model's arguments,
//! often the user's data) to wherever the server points, headers or not. A tool whose endpoint
//! really moved should have its `url` updated.

use reqwest::redirect::{Attempt, Policy};

/// The most redirects followed for one call.
pub(super) const MAX_REDIRECTS: usize = 5;

/// The redirect policy of every HTTP tool's client (see the [module docs](self)).
pub(super) fn same_origin_only() -> Policy {
    Policy::custom(decide)
}

fn decide(attempt: Attempt<'_>) -> reqwest::redirect::Action {
    let Some(first) = attempt.previous().first() else {
        return attempt.stop();
    };
    if first.origin() != attempt.url().origin() {
        let message = format!(
            "the server redirected to another origin ({}); HTTP tools follow redirects only within {} so their headers and arguments never reach another server; if the endpoint moved, update the tool's `url`",
            attempt.url().origin().ascii_serialization(),
            first.origin().ascii_serialization(),
        );
        return attempt.error(message);
    }
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
    }
    attempt.follow()
}
