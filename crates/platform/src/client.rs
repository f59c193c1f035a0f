//! The HTTP client one component uses to call another: pooled keep-alive
//! connections, a timeout per call, the request id passed on, and failures
//! classified so the caller can answer 503 (not reachable), 504 (too slow) or
//! treat the outcome as unknown.

use std::time::Duration;

use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use tracing::Instrument;

use crate::error::ApiError;
use crate::request_id::X_REQUEST_ID;

/// A connector tuned for calls inside the platform: no Nagle delay, fast connect failure.
pub fn connector(connect_timeout: Duration) -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_keepalive(Some(Duration::from_secs(30)));
    connector
}

/// A pooled client builder: idle connections are kept for reuse, up to `max_idle` per upstream.
pub fn pooled(max_idle: usize) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(max_idle)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new());
    builder
}

/// Why a call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No connection could be made: the request was never delivered.
    Unreachable,
    /// No answer within the timeout: the request may or may not have been processed.
    Timeout,
    /// The connection broke, or the answer was not understood: outcome unknown.
    Broken(String),
}

impl CallError {
    /// The error a caller answers with when it cannot go on without this call.
    pub fn to_api_error(&self, service: &str) -> ApiError {
        match self {
            CallError::Unreachable => ApiError::unavailable(service),
            CallError::Timeout => ApiError::timeout(service),
            CallError::Broken(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                format!("{service} gave no valid answer"),
            )
            .with("service", service),
        }
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable => f.write_str("unreachable"),
            CallError::Timeout => f.write_str("timed out"),
            CallError::Broken(why) => write!(f, "broken: {why}"),
        }
    }
}

/// Classifies a hyper client error.
pub fn classify(err: &hyper_util::client::legacy::Error) -> CallError {
    if err.is_connect() {
        CallError::Unreachable
    } else {
        CallError::Broken(err.to_string())
    }
}

/// An answer: status and whole body (JSON calls between components are small).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CallError> {
        serde_json::from_slice(&self.body)
            .map_err(|err| CallError::Broken(format!("unexpected body: {err}")))
    }
}

/// The body of a call that sends none.
pub const NO_BODY: Option<&()> = None;

/// A client for one other component, e.g. pedidos → estoque.
#[derive(Clone, Debug)]
pub struct ServiceClient {
    service: &'static str,
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl ServiceClient {
    pub fn new(service: &'static str, base_url: &str, timeout: Duration, max_idle: usize) -> Self {
        Self {
            service,
            base: base_url.trim_end_matches('/').to_owned(),
            client: pooled(max_idle).build(connector(Duration::from_secs(1))),
            timeout,
        }
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends one request with an optional JSON body ([`NO_BODY`] for none); waits at
    /// most `timeout` (or the client's default) for the whole answer.
    pub async fn call<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        request_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Answer, CallError> {
        let uri = format!("{}{}", self.base, path);
        let mut builder = Request::builder().method(method).uri(uri);
        if let Ok(id) = HeaderValue::from_str(request_id) {
            builder = builder.header(&X_REQUEST_ID, id);
        }
        let payload = match body {
            Some(value) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(
                    serde_json::to_vec(value).map_err(|e| CallError::Broken(e.to_string()))?,
                )
            }
            None => Bytes::new(),
        };
        let mut request = builder
            .body(Full::new(payload))
            .map_err(|e| CallError::Broken(e.to_string()))?;
        let span = crate::telemetry::client_span(self.service, request.method());
        crate::telemetry::inject_from(&span, request.headers_mut());
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| classify(&e))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CallError::Broken(e.to_string()))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        let answer = match tokio::time::timeout(timeout.unwrap_or(self.timeout), exchange)
            .instrument(span.clone())
            .await
        {
            Ok(result) => result,
            Err(_) => Err(CallError::Timeout),
        };
        match &answer {
            Ok(answer) => crate::telemetry::record_status(&span, answer.status.as_u16()),
            Err(_) => crate::telemetry::record_failure(&span),
        }
        answer
    }
}
