//! Reservations: all-or-nothing holds of stock for one order, identified by the
//! caller's `reference`, later committed (sold) or released (back on sale).
//!
//! Holds, commits and releases are applied by the group commit of [`crate::batch`]
//! (items locked in id order, several requests per transaction); what a batch leaves
//! (a reservation not held, or inconsistent) is settled here one at a time.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use chrono::{DateTime, Utc};
use platform::extract::{Id, Json};
use platform::money::Money;
use platform::{check_text, with_conn, ApiError};
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use utoipa::ToSchema;

use crate::batch::{Hold, HoldRequest, Settle};
use crate::AppState;

pub use platform::lines::{merge_lines, LineRequest, MAX_LINES, MAX_LINE_QUANTITY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Committed,
    Released,
}

impl ReservationStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Committed => "committed",
            ReservationStatus::Released => "released",
        }
    }

    fn parse(s: &str) -> Result<Self, ApiError> {
        match s {
            "held" => Ok(Self::Held),
            "committed" => Ok(Self::Committed),
            "released" => Ok(Self::Released),
            _ => Err(ApiError::internal()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct ReservationLine {
    pub item_id: i64,
    pub item_name: String,
    pub quantity: i64,
    #[sqlx(rename = "unit_price_cents", try_from = "i64")]
    pub unit_price: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reservation {
    pub id: i64,
    pub reference: String,
    pub status: ReservationStatus,
    pub items: Vec<ReservationLine>,
    /// Sum of quantity x unit price over the lines.
    pub total: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ReservationRow {
    id: i64,
    reference: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewReservation {
    /// The caller's idempotency reference, e.g. `order-42`.
    pub reference: String,
    pub items: Vec<LineRequest>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ReferenceRequest {
    pub reference: String,
}

pub(crate) fn total_of(lines: &[ReservationLine]) -> Result<Money, ApiError> {
    lines.iter().try_fold(Money::ZERO, |sum, line| {
        line.unit_price
            .times(line.quantity)
            .and_then(|v| sum.plus(v))
            .ok_or_else(|| {
                ApiError::conflict(
                    "total_too_large",
                    "the reservation's total exceeds the largest amount accepted",
                )
            })
    })
}

fn reservation_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        "reservation_not_found",
        format!("reservation {id} not found"),
    )
    .with("reservation_id", id)
}

#[utoipa::path(post, path = "/reservations", tag = "estoque (internal)", request_body = NewReservation,
    responses((status = 201, description = "Held", body = Reservation),
              (status = 200, description = "A reservation with this reference already exists; it is returned as it is", body = Reservation),
              (status = 400, body = platform::error::ErrorBody), (status = 404, description = "item_not_found", body = platform::error::ErrorBody),
              (status = 409, description = "insufficient_stock: nothing is held", body = platform::error::ErrorBody)))]
pub async fn create(
    State(app): State<Arc<AppState>>,
    Json(req): Json<NewReservation>,
) -> Result<Response, ApiError> {
    check_text("reference", &req.reference, 200)?;
    let lines = merge_lines(&req.items)?;
    let request = HoldRequest {
        reference: req.reference,
        lines,
    };
    let reference = request.reference.clone();
    let created = match app.batcher.hold(request).await? {
        Hold::Held(reservation) => Some(reservation),
        Hold::Exists => None,
        Hold::Refused(err) => return Err(err),
    };
    match created {
        Some(reservation) => {
            let location = HeaderValue::from_str(&format!("/reservations/{}", reservation.id))
                .map_err(|_| ApiError::internal())?;
            Ok((
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                JsonBody(reservation),
            )
                .into_response())
        }
        None => {
            let existing = find_by_reference(&app, &reference)
                .await?
                .ok_or_else(ApiError::internal)?;
            Ok((StatusCode::OK, JsonBody(existing)).into_response())
        }
    }
}

async fn load(
    app: &AppState,
    row: Option<ReservationRow>,
) -> Result<Option<Reservation>, ApiError> {
    let Some(row) = row else { return Ok(None) };
    let items: Vec<ReservationLine> = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as(
            "SELECT item_id, item_name, quantity, unit_price_cents FROM reservation_lines \
             WHERE reservation_id = $1 ORDER BY item_id",
        )
        .bind(row.id)
        .fetch_all(&mut *conn)
        .await?
    });
    Ok(Some(Reservation {
        id: row.id,
        reference: row.reference,
        status: ReservationStatus::parse(&row.status)?,
        total: total_of(&items)?,
        items,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

// Reads go to the writer pool: a caller that just held or settled must see its own write.
pub async fn find(app: &AppState, id: i64) -> Result<Option<Reservation>, ApiError> {
    let row: Option<ReservationRow> = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as(
            "SELECT id, reference, status, created_at, updated_at FROM reservations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    });
    load(app, row).await
}

async fn find_by_reference(
    app: &AppState,
    reference: &str,
) -> Result<Option<Reservation>, ApiError> {
    let row: Option<ReservationRow> = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as("SELECT id, reference, status, created_at, updated_at FROM reservations WHERE reference = $1")
            .bind(reference)
            .fetch_optional(&mut *conn)
            .await?
    });
    load(app, row).await
}

#[utoipa::path(get, path = "/reservations/{id}", tag = "estoque (internal)", params(("id" = i64, Path)),
    responses((status = 200, body = Reservation), (status = 404, body = platform::error::ErrorBody)))]
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
) -> Result<JsonBody<Reservation>, ApiError> {
    find(&app, id)
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
        Settle::NotHeld => settle_in_steps(app, id, target).await,
    }
}

/// Settles any reservation, on either backend, in one transaction.
async fn settle_in_steps(
    app: &AppState,
    id: i64,
    target: ReservationStatus,
) -> Result<Reservation, ApiError> {
    let stock_sql = match target {
        ReservationStatus::Committed => {
            "UPDATE items SET reserved = reserved - $1, sold = sold + $1, updated_at = $2 WHERE id = $3 AND reserved >= $1"
        }
        _ => "UPDATE items SET reserved = reserved - $1, quantity = quantity + $1, updated_at = $2 WHERE id = $3 AND reserved >= $1",
    };
    let now = platform::now();
    with_conn!(app.db.writer(), |conn| {
        let mut tx = conn.begin().await?;
        let changed = sqlx::query("UPDATE reservations SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'held'")
            .bind(target.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 1 {
            let lines: Vec<(i64, i64)> =
                sqlx::query_as("SELECT item_id, quantity FROM reservation_lines WHERE reservation_id = $1 ORDER BY item_id")
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
            for (item_id, quantity) in lines {
                let moved = sqlx::query(stock_sql)
                    .bind(quantity)
                    .bind(now)
                    .bind(item_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if moved != 1 {
                    // Someone released these units through the per-item seed calls.
                    tracing::error!(
                        reservation_id = id,
                        item_id,
                        "held units missing from the item"
                    );
                    return Err(ApiError::conflict(
                        "reservation_inconsistent",
                        format!("item {item_id} no longer holds the units of reservation {id}"),
                    ));
                }
            }
            tx.commit().await?;
        }
    });
    let reservation = find(app, id)
        .await?
        .ok_or_else(|| reservation_not_found(id))?;
    if reservation.status == target {
        Ok(reservation)
    } else {
        Err(ApiError::conflict(
            "illegal_transition",
            format!("reservation {id} is {}", reservation.status.as_str()),
        )
        .with("status", reservation.status)
        .with("reservation", &reservation))
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
    check_text("reference", &req.reference, 200)?;
    let now = platform::now();
    let fenced: Option<(i64,)> = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as(
            "INSERT INTO reservations (reference, status, created_at, updated_at) VALUES ($1, 'released', $2, $2) \
             ON CONFLICT (reference) DO NOTHING RETURNING id",
        )
        .bind(&req.reference)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?
    });
    let existing = find_by_reference(&app, &req.reference)
        .await?
        .ok_or_else(ApiError::internal)?;
    if fenced.is_some() || existing.status == ReservationStatus::Released {
        return Ok(JsonBody(existing));
    }
    settle(&app, existing.id, ReservationStatus::Released)
        .await
        .map(JsonBody)
}
