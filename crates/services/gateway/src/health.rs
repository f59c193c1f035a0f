//! The gateway's own answers: the seed's `GET /` and the aggregated `GET /health`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use platform::names;
use serde_json::json;

use crate::state::Gateway;

/// The seed's `GET /`; a browser is sent to the console instead.
pub async fn root(headers: HeaderMap) -> Response {
    if crate::console::wants_html(&headers) {
        return crate::console::redirect();
    }
    Json(json!({
        "service": "Pedidos Veloz - API Gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": ["/orders", "/payments", "/items", "/health", "/livez", "/readyz", "/metrics", "/openapi.json", "/me", "/console"],
    }))
    .into_response()
}

/// Asks every backend's `/health`: 200 when all are healthy, 207 otherwise (seed behaviour).
pub async fn health(State(gateway): State<Arc<Gateway>>) -> Response {
    let check = |index: usize| {
        let upstream = &gateway.upstreams[index];
        let probe = upstream.probe.clone();
        let label = upstream.backend.label();
        async move {
            let state = match probe
                .call(Method::GET, "/health", platform::client::NO_BODY, "", None)
                .await
            {
                Ok(answer) if answer.status == StatusCode::OK => "healthy",
                Ok(_) => "unhealthy",
                Err(_) => "unreachable",
            };
            (label, state)
        }
    };
    let (a, b, c) = tokio::join!(check(0), check(1), check(2));
    let healthy = [a, b, c].iter().all(|(_, s)| *s == "healthy");
    let (status, word) = if healthy {
        (StatusCode::OK, "healthy")
    } else {
        (StatusCode::MULTI_STATUS, "degraded")
    };
    let backends: serde_json::Map<String, serde_json::Value> = [a, b, c]
        .into_iter()
        .map(|(label, state)| (label.to_owned(), state.into()))
        .collect();
    let body = json!({
        "status": word,
        "service": names::GATEWAY,
        "backends": backends,
    });
    (status, Json(body)).into_response()
}
