//! The streaming reverse proxy: forwards a call of a [`Route`] to its upstream,
//! passes method, path, query, headers and body through without buffering, and turns
//! upstream failures into JSON 502/503/504 errors that name the service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body as _;
use platform::client::CallError;
use platform::request_id::RouteLabel;
use platform::ApiError;
use tracing::Instrument;

use crate::routes::Route;
use crate::state::Gateway;
use crate::upstream::Failure;

/// Headers that describe one connection, not the message (RFC 9110 section 7.6.1).
/// Named once: removing by `&str` would parse each name on every request.
static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
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
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    // hyper sets the framing of the outgoing message itself.
    headers.remove(header::TRANSFER_ENCODING);
}

/// Serves every path of `route`.
pub async fn proxy(
    route: &'static Route,
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let label = RouteLabel(route.label(req.uri().path()));
    let mut response = forward(route, &gateway, peer, req)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(label);
    response
}

async fn forward(
    route: &Route,
    gateway: &Gateway,
    peer: SocketAddr,
    req: Request,
) -> Result<Response, ApiError> {
    let path = req.uri().path();
    if !route.exposes(path) {
        return Err(ApiError::not_found(
            "route_not_found",
            format!("no route for {} {path}", req.method()),
        ));
    }
    let upstream = gateway.upstream(route.backend);
    let identity = gateway
        .auth
        .authorize(route.access(req.method(), path), req.headers())
        .await?;

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
    parts.uri = upstream.uri(std::mem::take(&mut parts.uri))?;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::HOST, upstream.host.clone());
    // The key stops here: the services do not need it, so it cannot reach their logs.
    parts.headers.remove(&X_API_KEY);
    parts.headers.remove(header::AUTHORIZATION);
    // Who the caller is, signed by the gateway; never a copy the client sent.
    gateway.auth.stamp(&mut parts.headers, identity.as_ref());
    // The upstream continues the gateway's call span, child of its request span, which
    // continues the client's trace.
    let span = platform::telemetry::client_span(route.backend.name(), &parts.method);
    platform::telemetry::inject_from(&span, &mut parts.headers);
    if let Ok(value) = HeaderValue::try_from(peer.ip().to_string()) {
        parts.headers.append(X_FORWARDED_FOR.clone(), value);
    }
    parts
        .headers
        .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    // Streamed through; a body without Content-Length is cut off at the limit. Most
    // requests (every GET) have none: nothing to wrap.
    let body = if body.is_end_stream() {
        Body::empty()
    } else {
        Body::new(Limited::new(body, gateway.body_limit))
    };
    let upstream_req = Request::from_parts(parts, body);

    let backend = route.backend;
    let started = Instant::now();
    let call = gateway.client.request(upstream_req);
    let result = tokio::time::timeout(gateway.upstream_timeout, call)
        .instrument(span.clone())
        .await;
    gateway.metrics.observe(backend, started.elapsed());
    match &result {
        Ok(Ok(response)) => platform::telemetry::record_status(&span, response.status().as_u16()),
        _ => platform::telemetry::record_failure(&span),
    }
    let response = match result {
        Err(_) => {
            gateway.metrics.error(backend, Failure::Timeout);
            return Err(CallError::Timeout.to_api_error(backend.name()));
        }
        Ok(Err(err)) => {
            if is_body_limit(&err) {
                return Err(too_large());
            }
            let err = platform::client::classify(&err);
            let failure = if err == CallError::Unreachable {
                Failure::Unavailable
            } else {
                Failure::BadGateway
            };
            gateway.metrics.error(backend, failure);
            tracing::warn!(upstream = backend.name(), error = %err, "upstream call failed");
            return Err(err.to_api_error(backend.name()));
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
