//! The `/admin/faults` calls of a component (mounted only when faults are enabled;
//! the gateway exposes them, behind the admin key, for all components at once).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json as JsonBody, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Fault, Faults, Unit, DEFAULT_TTL};
use crate::extract::Json;
use crate::ApiError;

/// `PUT /admin/faults/{fault}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewFault {
    /// A probability (0-1) or milliseconds (0-60000), as the fault's unit says.
    pub value: f64,
    /// How long the fault stays on, 1-3600 s (default 300).
    pub ttl_seconds: Option<u64>,
}

/// One fault of one component, on or off.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FaultState {
    pub fault: Fault,
    pub component: String,
    pub active: bool,
    pub value: Option<f64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub remaining_seconds: Option<u64>,
    pub unit: Unit,
    pub max: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct FaultsAnswer {
    pub faults: Vec<FaultState>,
}

/// The name in a path, or 400 naming the faults that exist.
pub fn parse_fault(name: &str) -> Result<Fault, ApiError> {
    name.parse().map_err(|_| {
        use strum::VariantArray;
        let known: Vec<&str> = Fault::VARIANTS.iter().map(|f| f.as_str()).collect();
        ApiError::bad_request("unknown_fault", format!("no fault named '{name}'"))
            .with("faults", known)
    })
}

async fn list(State(faults): State<Faults>) -> JsonBody<FaultsAnswer> {
    JsonBody(FaultsAnswer {
        faults: faults.list(),
    })
}

async fn put(
    State(faults): State<Faults>,
    Path(name): Path<String>,
    Json(new): Json<NewFault>,
) -> Result<JsonBody<FaultState>, ApiError> {
    let fault = parse_fault(&name)?;
    let ttl = new
        .ttl_seconds
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TTL);
    faults.set(fault, new.value, ttl).map(JsonBody)
}

async fn delete(
    State(faults): State<Faults>,
    Path(name): Path<String>,
) -> Result<JsonBody<FaultState>, ApiError> {
    faults.clear(parse_fault(&name)?).map(JsonBody)
}

/// The routes of a component's faults, or none when they are disabled.
pub fn routes(faults: &Faults) -> Option<Router> {
    faults.is_enabled().then(|| {
        Router::new()
            .route("/admin/faults", get(list))
            .route(
                "/admin/faults/{fault}",
                axum::routing::put(put).delete(delete),
            )
            .with_state(faults.clone())
    })
}
