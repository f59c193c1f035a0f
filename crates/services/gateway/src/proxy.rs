//! The streaming reverse proxy: picks the upstream by path, passes method, path,
//! query, headers and body through without buffering, and turns upstream failures
//! into JSON 502/503/504 errors that name the service.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::uri::PathAndQuery;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body as _;
use platform::client::CallError;
use platform::request_id::RouteLabel;
use platform::ApiError;

use crate::{auth, Gateway, Upstream};

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
    let label = RouteLabel(route_label(req.uri().path()));
    let mut response = forward(&gateway, peer, req)
        .await
        .unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(label);
    response
}

async fn forward(gateway: &Gateway, peer: SocketAddr, req: Request) -> Result<Response, ApiError> {
    let path = req.uri().path();
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
    parts.uri = upstream_uri(upstream, std::mem::take(&mut parts.uri))?;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::HOST, upstream.host.clone());
    // The key stops here: the services do not need it, so it cannot reach their logs.
    parts.headers.remove(&X_API_KEY);
    parts.headers.remove(header::AUTHORIZATION);
    // The upstream continues the gateway's span, which continues the client's trace.
    platform::telemetry::inject(&mut parts.headers);
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

/// The request's URI pointed at `upstream`: its path and query are reused as they
/// are (not parsed again), behind the upstream's path prefix if it has one.
fn upstream_uri(upstream: &Upstream, uri: Uri) -> Result<Uri, ApiError> {
    let invalid = || ApiError::bad_request("invalid_path", "the request path cannot be forwarded");
    let mut uri = uri.into_parts();
    uri.scheme = Some(upstream.scheme.clone());
    uri.authority = Some(upstream.authority.clone());
    if !upstream.prefix.is_empty() {
        let path_and_query = uri.path_and_query.as_ref().map_or("/", |p| p.as_str());
        let prefixed = format!("{}{path_and_query}", upstream.prefix);
        uri.path_and_query = Some(PathAndQuery::try_from(prefixed).map_err(|_| invalid())?);
    } else if uri.path_and_query.is_none() {
        uri.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    Uri::from_parts(uri).map_err(|_| invalid())
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
    use super::{route_label, upstream_uri};
    use crate::Upstream;

    #[test]
    fn upstream_uris_keep_path_and_query() {
        let plain = Upstream::new("estoque-service", "estoque", "http://inventory:5003/").unwrap();
        let uri = upstream_uri(&plain, "/items/7?page=2".parse().unwrap()).unwrap();
        assert_eq!(uri.to_string(), "http://inventory:5003/items/7?page=2");
        assert_eq!(plain.host, "inventory:5003");

        let prefixed =
            Upstream::new("estoque-service", "estoque", "http://lb:80/estoque/").unwrap();
        let uri = upstream_uri(&prefixed, "/items?limit=5".parse().unwrap()).unwrap();
        assert_eq!(uri.to_string(), "http://lb:80/estoque/items?limit=5");
    }

    #[test]
    fn upstream_urls_need_scheme_and_host() {
        assert!(Upstream::new("estoque-service", "estoque", "inventory:5003").is_err());
        assert!(Upstream::new("estoque-service", "estoque", "/items").is_err());
        assert!(Upstream::new("estoque-service", "estoque", "http://in valid").is_err());
    }

    #[test]
    fn labels_replace_ids() {
        assert_eq!(route_label("/orders/42/cancel"), "/orders/{id}/cancel");
        assert_eq!(route_label("/items"), "/items");
        assert_eq!(route_label("/items/abc%20x/reserve"), "/items/{id}/reserve");
        assert_eq!(route_label("/"), "/");
    }
}
