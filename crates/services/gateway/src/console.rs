//! The web console (`/console`): static HTML, one CSS file and one ES module, embedded
//! in the binary, that use the public API like any client. Served with a strict
//! Content-Security-Policy (scripts and styles from this origin only, no inline script,
//! no framing), so a text that reached the page could not run as code.
//!
//! `GET /` sends a browser (it asks for `text/html`) to the console; API clients keep
//! getting the seed's JSON.

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

const INDEX: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");

/// Everything the console loads comes from the gateway itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        // Small files embedded in the binary: revalidated so an upgrade shows at once.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
    ];
    (StatusCode::OK, headers, body).into_response()
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

/// Whether a request for `/` comes from a browser rather than an API client.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A browser's `GET /`: the console.
pub fn redirect() -> Response {
    Redirect::to("/console").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // The CSP would block them: the page would break, not run them.
        assert!(!INDEX.contains("<script>") && !INDEX.contains("style="));
        assert!(INDEX.contains(r#"<script type="module" src="/console/app.js"></script>"#));
        assert!(!APP_JS.contains("innerHTML") && !APP_JS.contains("localStorage"));
        assert!(!APP_JS.contains("sessionStorage") && !APP_JS.contains("eval("));
    }
}
