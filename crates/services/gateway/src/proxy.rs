//! The reverse proxy: forwards a call of a [`Route`] to one replica of its upstream,
//! passes method, path, query, headers and body through (the answer streamed), sends
//! a call that never reached a replica, or an idempotent one that failed, to another
//! replica within the time limit, and turns upstream failures into JSON 502/503/504
//! errors that name the service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
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
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Replicas tried for one call at most.
const MAX_ATTEMPTS: usize = 3;

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
    strip_hop_by_hop(&mut parts.headers);
    // The key stops here: the services do not need it, so it cannot reach their logs.
    parts.headers.remove(&X_API_KEY);
    parts.headers.remove(header::AUTHORIZATION);
    // Who the caller is, signed by the gateway; never a copy the client sent.
    gateway.auth.stamp(&mut parts.headers, identity.as_ref());
    if let Ok(value) = HeaderValue::try_from(peer.ip().to_string()) {
        parts.headers.append(X_FORWARDED_FOR.clone(), value);
    }
    parts
        .headers
        .insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    // Read whole (it is capped at the limit anyway) so that a call can be sent again to
    // another replica. Most requests (every GET) have none: nothing to read.
    let body = if body.is_end_stream() {
        Bytes::new()
    } else {
        match Limited::new(body, gateway.body_limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
            Err(_) => {
                return Err(ApiError::bad_request(
                    "invalid_body",
                    "could not read the request body",
                ))
            }
        }
    };
    let retry_broken = is_idempotent(&parts.method, &parts.headers);

    let backend = route.backend;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + gateway.upstream_timeout;
    let attempts = MAX_ATTEMPTS.min(upstream.endpoints.all().len());
    let mut tried = Vec::new();
    let response = loop {
        let Some(endpoint) = upstream.endpoints.pick(&tried) else {
            gateway.metrics.error(backend, Failure::Unavailable);
            return Err(CallError::Unreachable.to_api_error(backend.name()));
        };
        let mut attempt = Request::from_parts(parts.clone(), Body::from(body.clone()));
        *attempt.uri_mut() = upstream.uri(&parts.uri, &endpoint)?;
        attempt
            .headers_mut()
            .insert(header::HOST, upstream.endpoints.host_header(&endpoint));
        // The upstream continues the gateway's call span, child of its request span,
        // which continues the client's trace.
        let span = platform::telemetry::client_span(backend.name(), &parts.method);
        platform::telemetry::inject_from(&span, attempt.headers_mut());
        let result = tokio::time::timeout_at(deadline, gateway.client.request(attempt))
            .instrument(span.clone())
            .await;
        match &result {
            Ok(Ok(response)) => {
                platform::telemetry::record_status(&span, response.status().as_u16())
            }
            _ => platform::telemetry::record_failure(&span),
        }
        // No other replica to try, or no time left: this answer is the answer.
        let last = tokio::time::Instant::now() >= deadline || tried.len() + 1 >= attempts;
        let failure = match result {
            Err(_) => {
                // No answer in time: the next calls go to the other replicas first.
                upstream.endpoints.eject(&endpoint);
                gateway.metrics.observe(backend, started.elapsed());
                gateway.metrics.error(backend, Failure::Timeout);
                return Err(CallError::Timeout.to_api_error(backend.name()));
            }
            Ok(Ok(response)) if response.status() == StatusCode::SERVICE_UNAVAILABLE => {
                upstream.endpoints.eject(&endpoint);
                if !retry_broken || last {
                    break response;
                }
                tracing::info!(upstream = backend.name(), endpoint = %endpoint.authority,
                    "upstream answered 503: trying another replica");
                tried.push(endpoint);
                continue;
            }
            Ok(Ok(response)) => break response,
            Ok(Err(err)) => platform::client::classify(&err),
        };
        let unsent = failure == CallError::Unreachable;
        if unsent {
            upstream.endpoints.eject(&endpoint);
        }
        if (unsent || retry_broken) && !last {
            tracing::info!(upstream = backend.name(), endpoint = %endpoint.authority,
                error = %failure, "upstream call failed: trying another replica");
            tried.push(endpoint);
            continue;
        }
        gateway.metrics.observe(backend, started.elapsed());
        gateway.metrics.error(
            backend,
            if unsent {
                Failure::Unavailable
            } else {
                Failure::BadGateway
            },
        );
        tracing::warn!(upstream = backend.name(), error = %failure, "upstream call failed");
        return Err(failure.to_api_error(backend.name()));
    };
    gateway.metrics.observe(backend, started.elapsed());
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(
        parts,
        Body::new(body.map_err(axum::Error::new)),
    ))
}

/// Calls that may be sent again after their connection broke or the replica answered
/// 503: the methods HTTP defines as idempotent, and any call with an Idempotency-Key
/// (pedidos answers a repeated key with the first order).
fn is_idempotent(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    ) || headers.contains_key(&IDEMPOTENCY_KEY)
}
