//! The HTTP calls of reservations (internal: only pedidos-service makes them).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use contracts::inventory::{NewReservation, ReferenceRequest, Reservation, ReservationStatus};
use platform::extract::{Id, Json};
use platform::lines::merge_lines;
use platform::{check_text, ApiError};

use super::batch::{Hold, HoldRequest, Settle};
use super::store::{self, reservation_not_found};
use crate::state::AppState;

/// Longest caller reference.
const MAX_REFERENCE: usize = 200;

#[utoipa::path(post, path = "/reservations", tag = "estoque (internal)", request_body = NewReservation,
    responses((status = 201, description = "Held", body = Reservation),
              (status = 200, description = "A reservation with this reference already exists; it is returned as it is", body = Reservation),
              (status = 400, body = platform::error::ErrorBody), (status = 404, description = "item_not_found", body = platform::error::ErrorBody),
              (status = 409, description = "insufficient_stock: nothing is held", body = platform::error::ErrorBody)))]
pub async fn create(
    State(app): State<Arc<AppState>>,
    Json(req): Json<NewReservation>,
) -> Result<Response, ApiError> {
    check_text("reference", &req.reference, MAX_REFERENCE)?;
    let lines = merge_lines(&req.items)?;
    let request = HoldRequest {
        reference: req.reference,
        lines,
    };
    let reference = request.reference.clone();
    match app.batcher.hold(request).await? {
        Hold::Held(reservation) => {
            let location = HeaderValue::from_str(&format!("/reservations/{}", reservation.id))
                .map_err(|_| ApiError::internal())?;
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                JsonBody(reservation),
            )
                .into_response())
        }
        Hold::Exists => {
            let existing = store::find_by_reference(&app.db, &reference)
                .await?
                .ok_or_else(ApiError::internal)?;
            Ok((StatusCode::OK, JsonBody(existing)).into_response())
        }
        Hold::Refused(err) => Err(err),
    }
}

#[utoipa::path(get, path = "/reservations/{id}", tag = "estoque (internal)", params(("id" = i64, Path)),
    responses((status = 200, body = Reservation), (status = 404, body = platform::error::ErrorBody)))]
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
) -> Result<JsonBody<Reservation>, ApiError> {
    store::find(&app.db, id)
        .await?
        .map(JsonBody)
        .ok_or_else(|| reservation_not_found(id))
}

/// Moves a held reservation to `target`, adjusting every line's item; idempotent.
/// The batch path does it under load; what it leaves (not held, or inconsistent)
/// is answered one at a time.
async fn settle(
    app: &AppState,
    id: i64,
    target: ReservationStatus,
) -> Result<Reservation, ApiError> {
    match app.batcher.settle(id, target).await? {
        Settle::Done(reservation) => Ok(reservation),
        Settle::NotHeld => store::settle_in_steps(&app.db, id, target).await,
    }
}

#[utoipa::path(post, path = "/reservations/{id}/commit", tag = "estoque (internal)", params(("id" = i64, Path)),
    responses((status = 200, description = "Committed (or already was)", body = Reservation),
              (status = 404, body = platform::error::ErrorBody), (status = 409, description = "already released", body = platform::error::ErrorBody)))]
pub async fn commit(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
) -> Result<JsonBody<Reservation>, ApiError> {
    settle(&app, id, ReservationStatus::Committed)
        .await
        .map(JsonBody)
}

#[utoipa::path(post, path = "/reservations/{id}/release", tag = "estoque (internal)", params(("id" = i64, Path)),
    responses((status = 200, description = "Released (or already was)", body = Reservation),
              (status = 404, body = platform::error::ErrorBody), (status = 409, description = "already committed", body = platform::error::ErrorBody)))]
pub async fn release(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
) -> Result<JsonBody<Reservation>, ApiError> {
    settle(&app, id, ReservationStatus::Released)
        .await
        .map(JsonBody)
}

/// Releases the reservation with this reference, or, if none exists yet, records
/// a released one so that a hold still on its way (a retry, a request in flight)
/// can never take stock afterwards. Used to cancel an order whose saga is unfinished.
#[utoipa::path(post, path = "/reservations/cancel", tag = "estoque (internal)", request_body = ReferenceRequest,
    responses((status = 200, description = "Released, or fenced", body = Reservation),
              (status = 409, description = "already committed", body = platform::error::ErrorBody)))]
pub async fn cancel(
    State(app): State<Arc<AppState>>,
    Json(req): Json<ReferenceRequest>,
) -> Result<JsonBody<Reservation>, ApiError> {
    check_text("reference", &req.reference, MAX_REFERENCE)?;
    let fenced = store::fence(&app.db, &req.reference).await?;
    let existing = store::find_by_reference(&app.db, &req.reference)
        .await?
        .ok_or_else(ApiError::internal)?;
    if fenced || existing.status == ReservationStatus::Released {
        return Ok(JsonBody(existing));
    }
    settle(&app, existing.id, ReservationStatus::Released)
        .await
        .map(JsonBody)
}
