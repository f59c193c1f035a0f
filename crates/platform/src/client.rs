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

use crate::balance::{Endpoint, Endpoints};
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

/// A connection idle longer than this is not reused. Shorter than the drain delay a
/// rolling update should use (`SHUTDOWN_DELAY_MS` ≥ 2 s): a replica that stops closes
/// its idle connections at the end of that delay, and a call written on one of them at
/// that instant would fail with its outcome unknown; such a connection has been idle
/// for the whole delay, so no pool here still offers it.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(1);

/// A pooled client builder: idle connections are kept for reuse, up to `max_idle` per upstream.
pub fn pooled(max_idle: usize) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
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

/// Which failed calls are sent again, to another endpoint, within the call's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Only calls that never reached a server (no connection could be made).
    Unsent,
    /// Also calls answered 503 or whose connection broke: for callees that treat a
    /// repeated call as the same call (the saga's calls carry the order's reference).
    Idempotent,
}

/// Calls at most this many endpoints for one call.
const MAX_ATTEMPTS: usize = 3;

/// A client for one other component, e.g. pedidos → estoque, balanced over its
/// replicas ([`Endpoints`]).
#[derive(Clone, Debug)]
pub struct ServiceClient {
    endpoints: Endpoints,
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    retry: Retry,
}

impl ServiceClient {
    pub fn new(endpoints: Endpoints, timeout: Duration, max_idle: usize, retry: Retry) -> Self {
        Self {
            endpoints,
            client: pooled(max_idle).build(connector(Duration::from_secs(1))),
            timeout,
            retry,
        }
    }

    pub fn service(&self) -> &'static str {
        self.endpoints.service()
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Sends one request with an optional JSON body ([`NO_BODY`] for none); waits at
    /// most `timeout` (or the client's default) for the whole answer, trying other
    /// endpoints as its [`Retry`] allows.
    pub async fn call<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        request_id: &str,
        timeout: Option<Duration>,
    ) -> Result<Answer, CallError> {
        let payload = match body {
            Some(value) => Some(Bytes::from(
                serde_json::to_vec(value).map_err(|e| CallError::Broken(e.to_string()))?,
            )),
            None => None,
        };
        let deadline = tokio::time::Instant::now() + timeout.unwrap_or(self.timeout);
        let attempts = MAX_ATTEMPTS.min(self.endpoints.all().len());
        let mut tried = Vec::new();
        loop {
            let Some(endpoint) = self.endpoints.pick(&tried) else {
                return Err(CallError::Unreachable);
            };
            let result = tokio::time::timeout_at(
                deadline,
                self.call_one(&endpoint, method.clone(), path, payload.clone(), request_id),
            )
            .await
            .unwrap_or(Err(CallError::Timeout));
            let again = match &result {
                Err(CallError::Unreachable) => true,
                Err(CallError::Broken(_)) => self.retry == Retry::Idempotent,
                Ok(answer) if answer.status == StatusCode::SERVICE_UNAVAILABLE => {
                    self.retry == Retry::Idempotent
                }
                _ => false,
            };
            // A replica that refused, said it cannot serve, or did not answer in
            // time is left out for a while: the next calls go to the others.
            if matches!(&result, Err(CallError::Unreachable | CallError::Timeout))
                || matches!(&result, Ok(a) if a.status == StatusCode::SERVICE_UNAVAILABLE)
            {
                self.endpoints.eject(&endpoint);
            }
            tried.push(endpoint);
            let last = tried.len() >= attempts || tokio::time::Instant::now() >= deadline;
            if !again || last {
                return result;
            }
        }
    }

    /// The same call to every endpoint known now (an operator's switch that must
    /// reach every replica): each endpoint's address and answer.
    pub async fn call_each<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        request_id: &str,
    ) -> Vec<(String, Result<Answer, CallError>)> {
        let payload = match body.map(serde_json::to_vec) {
            Some(Ok(bytes)) => Some(Bytes::from(bytes)),
            Some(Err(err)) => {
                return vec![(String::new(), Err(CallError::Broken(err.to_string())))]
            }
            None => None,
        };
        let mut answers = Vec::new();
        for endpoint in self.endpoints.all().iter() {
            let answer = tokio::time::timeout(
                self.timeout,
                self.call_one(endpoint, method.clone(), path, payload.clone(), request_id),
            )
            .await
            .unwrap_or(Err(CallError::Timeout));
            answers.push((endpoint.authority.to_string(), answer));
        }
        answers
    }

    async fn call_one(
        &self,
        endpoint: &Endpoint,
        method: Method,
        path: &str,
        payload: Option<Bytes>,
        request_id: &str,
    ) -> Result<Answer, CallError> {
        let uri = format!(
            "{}://{}{}{path}",
            self.endpoints.scheme(),
            endpoint.authority,
            self.endpoints.prefix()
        );
        let mut builder = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, self.endpoints.host_header(endpoint));
        if let Ok(id) = HeaderValue::from_str(request_id) {
            builder = builder.header(&X_REQUEST_ID, id);
        }
        if payload.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let mut request = builder
            .body(Full::new(payload.unwrap_or_default()))
            .map_err(|e| CallError::Broken(e.to_string()))?;
        let span = crate::telemetry::client_span(self.service(), request.method());
        crate::telemetry::inject_from(&span, request.headers_mut());
        let answer = exchange(&self.client, request)
            .instrument(span.clone())
            .await;
        match &answer {
            Ok(answer) => crate::telemetry::record_status(&span, answer.status.as_u16()),
            Err(_) => crate::telemetry::record_failure(&span),
        }
        answer
    }
}

/// One GET of a whole URL, outside any service's endpoints (the container's
/// health check of its own `/readyz`).
pub async fn get_url(url: &str, timeout: Duration) -> Result<Answer, CallError> {
    let client: Client<HttpConnector, Full<Bytes>> =
        pooled(1).build(connector(Duration::from_secs(1)));
    let request = Request::builder()
        .uri(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| CallError::Broken(e.to_string()))?;
    tokio::time::timeout(timeout, exchange(&client, request))
        .await
        .unwrap_or(Err(CallError::Timeout))
}

/// Sends `request` and reads the whole answer.
async fn exchange(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Answer, CallError> {
    let response = client.request(request).await.map_err(|e| classify(&e))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| CallError::Broken(e.to_string()))?
        .to_bytes();
    Ok(Answer { status, body })
}
