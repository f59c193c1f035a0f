//! `/health` (seed shape), `/livez` (process up) and `/readyz` (can serve now:
//! not draining, database reachable).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::db::Db;

/// How long a health probe waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Probe {
    pub service: &'static str,
    pub db: Option<Db>,
    pub draining: CancellationToken,
}

impl Probe {
    async fn database_ok(&self) -> bool {
        match &self.db {
            None => true,
            Some(db) => matches!(
                tokio::time::timeout(PROBE_TIMEOUT, db.ping()).await,
                Ok(Ok(()))
            ),
        }
    }
}

pub async fn health(State(probe): State<Probe>) -> Response {
    if probe.database_ok().await {
        Json(json!({"status": "healthy", "service": probe.service})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unhealthy", "service": probe.service, "error": "database unreachable", "code": "database_unavailable"})),
        )
            .into_response()
    }
}

pub async fn livez(State(probe): State<Probe>) -> Response {
    Json(json!({"status": "alive", "service": probe.service})).into_response()
}

pub async fn readyz(State(probe): State<Probe>) -> Response {
    if probe.draining.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining", "service": probe.service})),
        )
            .into_response();
    }
    if !probe.database_ok().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "service": probe.service, "error": "database unreachable"})),
        )
            .into_response();
    }
    Json(json!({"status": "ready", "service": probe.service})).into_response()
}
