//! The per-request middleware: `X-Request-Id` (taken or made), a tracing span that
//! carries it, one access line ([`crate::access_log`]) and the HTTP metrics for every
//! response.

use std::borrow::Cow;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::access_log::AccessLine;
use crate::metrics::{HttpMetrics, RequestLabels, RouteLabels};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the request being served, readable by handlers.
#[derive(Clone, Debug)]
pub struct RequestId(pub HeaderValue);

impl RequestId {
    pub fn as_str(&self) -> &str {
        self.0.to_str().unwrap_or("")
    }

    pub fn generate() -> Self {
        let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
        let id = uuid::Uuid::new_v4().simple().encode_lower(&mut buf);
        // A 32-char hex string is always a valid header value.
        RequestId(HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("invalid")))
    }
}

/// Accepts a caller's id only if it is short, printable ASCII (it ends up in logs).
fn accepted(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// A route template set by a handler that serves many paths (the gateway's proxy),
/// preferred over axum's matched path in metrics and logs. Keep it low-cardinality.
#[derive(Clone, Debug)]
pub struct RouteLabel(pub String);

#[derive(Clone)]
pub struct RequestContext {
    pub component: &'static str,
    pub http: HttpMetrics,
}

/// Outer middleware (`Router::layer`). The route template comes back in the
/// response extensions from [`capture_route`], which runs inside the router.
pub async fn track(State(ctx): State<RequestContext>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| accepted(v))
        .cloned()
        .map(RequestId)
        .unwrap_or_else(RequestId::generate);
    req.headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id.0.clone());
    req.extensions_mut().insert(request_id.clone());
    let method = method_label(req.method());

    let span = tracing::info_span!(
        "request",
        otel.kind = "server",
        component = ctx.component,
        request_id = request_id.as_str(),
        method,
    );
    // A disabled span (LOG_LEVEL above info) carries no trace: nothing to continue.
    // The trace id is a field of the access line, not of the span: recording a field on
    // a span after its creation costs the log formatter a re-parse of all its fields.
    let trace_id = if span.is_disabled() {
        Cow::Borrowed(NO_TRACE)
    } else {
        Cow::Owned(crate::telemetry::continue_trace(&span, req.headers()))
    };
    ctx.http.in_flight.inc();
    let mut response = next.run(req).instrument(span.clone()).await;
    ctx.http.in_flight.dec();

    let route = match response.extensions_mut().remove::<RouteLabel>() {
        Some(label) => label.0,
        None => match response.extensions().get::<MatchedPath>() {
            Some(matched) => matched.as_str().to_owned(),
            None => "unmatched".to_owned(),
        },
    };
    let status = response.status().as_u16();
    crate::telemetry::record_status(&span, status);
    let elapsed = started.elapsed();
    let labels = RouteLabels { method, route };
    // The trace as the exemplar, when traces leave the process (else it leads nowhere).
    let exemplar = (crate::telemetry::is_exporting() && trace_id != NO_TRACE).then(|| {
        crate::metrics::TraceExemplar {
            trace_id: trace_id.to_string(),
        }
    });
    ctx.http
        .duration
        .get_or_create(&labels)
        .observe(elapsed.as_secs_f64(), exemplar, None);
    ctx.http
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: labels.route.clone(),
            status_class: status_class(status),
        })
        .inc();
    let route = labels.route;
    response
        .headers_mut()
        .insert(X_REQUEST_ID.clone(), request_id.0);

    // The access line carries every field at the top level, for log queries.
    let request_id = response
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Written outside the request's span: the line already has every field of the span,
    // and inside it the trace layer would copy the line into the span as an event.
    drop(span);
    AccessLine {
        component: ctx.component,
        request_id,
        trace_id: &trace_id,
        method,
        route: &route,
        status,
        latency_ms: elapsed.as_secs_f64() * 1000.0,
    }
    .write();
    response
}

/// The trace id written when a request has no trace (as OpenTelemetry prints an invalid one).
const NO_TRACE: &str = "00000000000000000000000000000000";

/// A bounded metric label for the method: the standard ones, else `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// Inner middleware (`Router::route_layer`): hands the matched route template to [`track`].
pub async fn capture_route(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}
