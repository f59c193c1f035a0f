//! The streaming reverse proxy: picks the upstream by path, passes method, path,
//! query, headers and body through without buffering, and turns upstream failures
//! into JSON 502/503/504 errors that name the service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use platform::client::CallError;
use platform::request_id::RouteLabel;
use platform::ApiError;

use crate::{auth, Gateway, Upstream};

/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // hyper sets the framing of the outgoing message itself.
    headers.remove(header::TRANSFER_ENCODING);
}

/// Path segments that are words of the API; anything else in a path is an id.
const WORDS: [&str; 8] = [
    "items",
    "orders",
    "payments",
    "reserve",
    "write-off",
    "release",
    "cancel",
    "refund",
];

/// `/orders/42/cancel` → `/orders/{id}/cancel`: a bounded label for metrics and logs.
pub fn route_label(path: &str) -> String {
    let mut label = String::with_capacity(path.len());
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        label.push('/');
        label.push_str(if WORDS.contains(&segment) {
            segment
        } else {
            "{id}"
        });
    }
    if label.is_empty() {
        label.push('/');
    }
    label
}

/// The upstream that serves a public path; internal calls have none.
fn upstream_for<'a>(gateway: &'a Gateway, path: &str) -> Option<&'a Upstream> {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let upstream = match first {
        "orders" => &gateway.pedidos,
        "items" => &gateway.estoque,
        // `/payments/void` is the orders service's fence, not a public call.
        "payments" if path.trim_end_matches('/') != "/payments/void" => &gateway.pagamentos,
        _ => return None,
    };
    Some(upstream)
}

pub async fn proxy(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let path = req.uri().path().to_owned();
    let label = RouteLabel(route_label(&path));
    let mut response = forward(&gateway, peer, req, &path)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(label);
    response
}

async fn forward(
    gateway: &Gateway,
    peer: SocketAddr,
    req: Request,
    path: &str,
) -> Result<Response, ApiError> {
    let Some(upstream) = upstream_for(gateway, path) else {
        return Err(ApiError::not_found(
            "route_not_found",
            format!("no route for {} {path}", req.method()),
        ));
    };
    gateway
        .keys
        .check(auth::access(req.method(), path), req.headers())?;

    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than the limit",
        )
        .with("limit_bytes", gateway.body_limit)
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > gateway.body_limit as u64) {
        // Read and drop a moderately oversized body before answering: a client still
        // sending when the connection closes would see a reset instead of our 413.
        if len <= 8 * gateway.body_limit as u64 {
            let _ = Limited::new(req.into_body(), 8 * gateway.body_limit)
                .collect()
                .await;
        }
        return Err(too_large());
    }

    let (mut parts, body) = req.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = Uri::try_from(format!("{}{}", upstream.base, path_and_query)).map_err(|_| {
        ApiError::bad_request("invalid_path", "the request path cannot be forwarded")
    })?;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::HOST);
    // The key stops here: the services do not need it, so it cannot reach their logs.
    parts.headers.remove("x-api-key");
    parts.headers.remove(header::AUTHORIZATION);
    // The upstream continues the gateway's span, which continues the client's trace.
    platform::telemetry::inject(&mut parts.headers);
    if let Ok(value) = HeaderValue::from_str(&peer.ip().to_string()) {
        parts
            .headers
            .append(HeaderName::from_static("x-forwarded-for"), value);
    }
    parts.headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("http"),
    );
    // Streamed through; a body without Content-Length is cut off at the limit.
    let body = Body::new(Limited::new(body, gateway.body_limit));
    let upstream_req = Request::from_parts(parts, body);

    let started = Instant::now();
    let result = tokio::time::timeout(gateway.timeout, gateway.client.request(upstream_req)).await;
    gateway.metrics.observe(upstream.label, started.elapsed());
    let response = match result {
        Err(_) => {
            gateway.metrics.error(upstream.label, "timeout");
            return Err(CallError::Timeout.to_api_error(upstream.name));
        }
        Ok(Err(err)) => {
            if is_body_limit(&err) {
                return Err(too_large());
            }
            let err = platform::client::classify(&err);
            let kind = if err == CallError::Unreachable {
                "unavailable"
            } else {
                "bad_gateway"
            };
            gateway.metrics.error(upstream.label, kind);
            tracing::warn!(upstream = upstream.name, error = %err, "upstream call failed");
            return Err(err.to_api_error(upstream.name));
        }
        Ok(Ok(response)) => response,
    };
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(
        parts,
        Body::new(body.map_err(axum::Error::new)),
    ))
}

fn is_body_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::route_label;

    #[test]
    fn labels_replace_ids() {
        assert_eq!(route_label("/orders/42/cancel"), "/orders/{id}/cancel");
        assert_eq!(route_label("/items"), "/items");
        assert_eq!(route_label("/items/abc%20x/reserve"), "/items/{id}/reserve");
        assert_eq!(route_label("/"), "/");
    }
}
