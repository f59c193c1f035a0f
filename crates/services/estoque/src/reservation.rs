//! Reservations: all-or-nothing holds of stock for one order, identified by the
//! caller's `reference`, later committed (sold) or released (back on sale).
//!
//! Every stock change is a conditional UPDATE inside one transaction, taken in
//! item-id order so that concurrent multi-item reservations cannot deadlock.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use chrono::{DateTime, Utc};
use platform::db::PoolKind;
use platform::extract::{Id, Json};
use platform::money::Money;
use platform::{check_text, with_conn, ApiError};
use serde::{Deserialize, Serialize};
use sqlx::Connection;
use utoipa::ToSchema;

use crate::item::insufficient_stock;
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
    fn as_str(self) -> &'static str {
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

fn total_of(lines: &[ReservationLine]) -> Result<Money, ApiError> {
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
    State(app): State<AppState>,
    Json(req): Json<NewReservation>,
) -> Result<Response, ApiError> {
    check_text("reference", &req.reference, 200)?;
    let lines = merge_lines(&req.items)?;
    let now = platform::now();
    let created = match (&app.db.writer().kind, lines.len()) {
        (PoolKind::Postgres(pool), 1) => {
            let (&item_id, &quantity) = lines.iter().next().ok_or_else(ApiError::internal)?;
            reserve_one_pg(&app, pool, &req.reference, item_id, quantity, now).await?
        }
        _ => reserve_in_steps(&app, &req.reference, &lines, now).await?,
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
            let existing = find_by_reference(&app, &req.reference)
                .await?
                .ok_or_else(ApiError::internal)?;
            Ok((StatusCode::OK, JsonBody(existing)).into_response())
        }
    }
}

/// PostgreSQL's error code for a division by zero: the guard of the one-statement paths.
const GUARD_TRIPPED: &str = "22012";

fn guard_tripped(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some(GUARD_TRIPPED))
}

/// The error of a hold that found too little stock, or no item: nothing is held.
async fn hold_refused(app: &AppState, item_id: i64, quantity: i64) -> ApiError {
    let available: Result<Option<(i64,)>, ApiError> = async {
        Ok(with_conn!(app.db.writer(), |conn| {
            sqlx::query_as("SELECT quantity FROM items WHERE id = $1")
                .bind(item_id)
                .fetch_optional(&mut *conn)
                .await?
        }))
    }
    .await;
    match available {
        Err(err) => err,
        Ok(None) => ApiError::not_found("item_not_found", format!("item {item_id} not found"))
            .with("item_id", item_id),
        Ok(Some((available,))) => {
            app.metrics.stock_conflicts.inc();
            insufficient_stock(item_id, available, quantity)
        }
    }
}

/// A one-line reservation on PostgreSQL in ONE autocommit statement: the reservation,
/// the conditional stock update and the line. The hot item's row lock is then held
/// only while PostgreSQL runs the statement and commits, never across a round trip
/// to this process (with BEGIN ... COMMIT it was held across two). All or nothing:
/// * the reference already exists: nothing is inserted or updated (`ins` is empty);
/// * too little stock, or no such item: the UPDATE matches no row and the guard
///   `1 / count(upd)` divides by zero, which aborts the whole statement;
/// * `quantity >= $4` is first tested on the statement's snapshot, without a lock, so
///   requests for a sold-out item fail at once instead of queueing on its row lock.
async fn reserve_one_pg(
    app: &AppState,
    pool: &sqlx::PgPool,
    reference: &str,
    item_id: i64,
    quantity: i64,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, ApiError> {
    let row: Result<Option<(i64, String, i64, i64)>, sqlx::Error> = async {
        let mut conn = app.db.writer().timed_acquire(pool).await?;
        sqlx::query_as(
            "WITH ins AS ( \
                 INSERT INTO reservations (reference, status, created_at, updated_at) VALUES ($1, 'held', $2, $2) \
                 ON CONFLICT (reference) DO NOTHING RETURNING id), \
             upd AS ( \
                 UPDATE items SET quantity = quantity - $4, reserved = reserved + $4, updated_at = $2 \
                 WHERE id = $3 AND quantity >= $4 AND EXISTS (SELECT 1 FROM ins) RETURNING name, price_cents), \
             line AS ( \
                 INSERT INTO reservation_lines (reservation_id, item_id, item_name, quantity, unit_price_cents) \
                 SELECT ins.id, $3, upd.name, $4, upd.price_cents FROM ins, upd) \
             SELECT ins.id, upd.name, upd.price_cents, 1 / (SELECT count(*) FROM upd) AS guard \
             FROM ins LEFT JOIN upd ON true",
        )
        .bind(reference)
        .bind(now)
        .bind(item_id)
        .bind(quantity)
        .fetch_optional(&mut *conn)
        .await
    }
    .await;
    let (id, item_name, price_cents) = match row {
        Ok(None) => return Ok(None),
        Ok(Some((id, name, price_cents, _guard))) => (id, name, price_cents),
        Err(err) if guard_tripped(&err) => return Err(hold_refused(app, item_id, quantity).await),
        Err(err) => return Err(err.into()),
    };
    let held = vec![ReservationLine {
        item_id,
        item_name,
        quantity,
        unit_price: Money::try_from(price_cents).map_err(|_| ApiError::internal())?,
    }];
    Ok(Some(Reservation {
        id,
        reference: reference.to_owned(),
        status: ReservationStatus::Held,
        total: total_of(&held)?,
        items: held,
        created_at: now,
        updated_at: now,
    }))
}

/// Any reservation, on either backend: one transaction, one statement per line,
/// items taken in id order so that concurrent multi-item holds cannot deadlock.
async fn reserve_in_steps(
    app: &AppState,
    reference: &str,
    lines: &BTreeMap<i64, i64>,
    now: DateTime<Utc>,
) -> Result<Option<Reservation>, ApiError> {
    Ok(with_conn!(app.db.writer(), |conn| {
        let mut tx = conn.begin().await?;
        let inserted: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO reservations (reference, status, created_at, updated_at) VALUES ($1, 'held', $2, $2) \
             ON CONFLICT (reference) DO NOTHING RETURNING id",
        )
        .bind(reference)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        match inserted {
            None => None,
            Some((id,)) => {
                let mut held = Vec::with_capacity(lines.len());
                for (&item_id, &quantity) in lines {
                    let row: Option<(String, i64)> = sqlx::query_as(
                        "UPDATE items SET quantity = quantity - $1, reserved = reserved + $1, updated_at = $2 \
                         WHERE id = $3 AND quantity >= $1 RETURNING name, price_cents",
                    )
                    .bind(quantity)
                    .bind(now)
                    .bind(item_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some((item_name, price_cents)) = row else {
                        let available: Option<(i64,)> =
                            sqlx::query_as("SELECT quantity FROM items WHERE id = $1")
                                .bind(item_id)
                                .fetch_optional(&mut *tx)
                                .await?;
                        // Dropping the transaction rolls back whatever was held so far.
                        return Err(match available {
                            None => ApiError::not_found(
                                "item_not_found",
                                format!("item {item_id} not found"),
                            )
                            .with("item_id", item_id),
                            Some((available,)) => {
                                app.metrics.stock_conflicts.inc();
                                insufficient_stock(item_id, available, quantity)
                            }
                        });
                    };
                    sqlx::query(
                        "INSERT INTO reservation_lines (reservation_id, item_id, item_name, quantity, unit_price_cents) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(id)
                    .bind(item_id)
                    .bind(&item_name)
                    .bind(quantity)
                    .bind(price_cents)
                    .execute(&mut *tx)
                    .await?;
                    held.push(ReservationLine {
                        item_id,
                        item_name,
                        quantity,
                        unit_price: Money::try_from(price_cents)
                            .map_err(|_| ApiError::internal())?,
                    });
                }
                let total = total_of(&held)?;
                tx.commit().await?;
                Some(Reservation {
                    id,
                    reference: reference.to_owned(),
                    status: ReservationStatus::Held,
                    items: held,
                    total,
                    created_at: now,
                    updated_at: now,
                })
            }
        }
    }))
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
    State(app): State<AppState>,
    Id(id): Id,
) -> Result<JsonBody<Reservation>, ApiError> {
    find(&app, id)
        .await?
        .map(JsonBody)
        .ok_or_else(|| reservation_not_found(id))
}

/// Moves a held reservation to `target`, adjusting every line's item; idempotent.
async fn settle(
    app: &AppState,
    id: i64,
    target: ReservationStatus,
) -> Result<Reservation, ApiError> {
    if let PoolKind::Postgres(pool) = &app.db.writer().kind {
        if let Some(settled) = settle_one_pg(app, pool, id, target).await? {
            return Ok(settled);
        }
    }
    settle_in_steps(app, id, target).await
}

/// Settles a held ONE-line reservation on PostgreSQL in one autocommit statement that
/// also returns it (instead of BEGIN, four statements, COMMIT and two reads). `None`
/// when it does not apply, changing nothing: not held (already settled: the caller's
/// general path answers), several lines (their items must be locked in id order), or
/// the item no longer holds the units (the general path reports the inconsistency).
/// All or nothing: when the stock UPDATE matches no row, the guard `1 / count(u)`
/// divides by zero and aborts the statement, the reservation's change included.
async fn settle_one_pg(
    app: &AppState,
    pool: &sqlx::PgPool,
    id: i64,
    target: ReservationStatus,
) -> Result<Option<Reservation>, ApiError> {
    let sql = match target {
        ReservationStatus::Committed => SETTLE_ONE_PG_COMMIT,
        ReservationStatus::Released => SETTLE_ONE_PG_RELEASE,
        ReservationStatus::Held => return Ok(None),
    };
    let now = platform::now();
    let row: Result<Option<SettledRow>, sqlx::Error> = async {
        let mut conn = app.db.writer().timed_acquire(pool).await?;
        sqlx::query_as(sql)
            .bind(target.as_str())
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
    }
    .await;
    let row = match row {
        Ok(Some(row)) => row,
        Ok(None) => return Ok(None),
        Err(err) if guard_tripped(&err) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let items = vec![ReservationLine {
        item_id: row.item_id,
        item_name: row.item_name,
        quantity: row.quantity,
        unit_price: Money::try_from(row.unit_price_cents).map_err(|_| ApiError::internal())?,
    }];
    Ok(Some(Reservation {
        id: row.id,
        reference: row.reference,
        status: target,
        total: total_of(&items)?,
        items,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

#[derive(sqlx::FromRow)]
struct SettledRow {
    id: i64,
    reference: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    item_id: i64,
    item_name: String,
    quantity: i64,
    unit_price_cents: i64,
}

/// `$1` target status, `$2` now, `$3` reservation id; `STOCK` is the line's stock move.
macro_rules! settle_one_pg_sql {
    ($stock:literal) => {
        concat!(
            "WITH r AS ( \
                 UPDATE reservations SET status = $1, updated_at = $2 \
                 WHERE id = $3 AND status = 'held' \
                   AND (SELECT count(*) FROM reservation_lines WHERE reservation_id = $3) = 1 \
                 RETURNING id, reference, created_at, updated_at), \
             l AS (SELECT item_id, item_name, quantity, unit_price_cents FROM reservation_lines WHERE reservation_id = $3), \
             u AS ( \
                 UPDATE items SET ", $stock, ", updated_at = $2 FROM l \
                 WHERE items.id = l.item_id AND items.reserved >= l.quantity AND EXISTS (SELECT 1 FROM r) \
                 RETURNING items.id) \
             SELECT r.id, r.reference, r.created_at, r.updated_at, l.item_id, l.item_name, l.quantity, l.unit_price_cents, \
                    1 / (SELECT count(*) FROM u) AS guard \
             FROM r, l"
        )
    };
}
const SETTLE_ONE_PG_COMMIT: &str =
    settle_one_pg_sql!("reserved = items.reserved - l.quantity, sold = items.sold + l.quantity");
const SETTLE_ONE_PG_RELEASE: &str = settle_one_pg_sql!(
    "reserved = items.reserved - l.quantity, quantity = items.quantity + l.quantity"
);

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
    State(app): State<AppState>,
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
    State(app): State<AppState>,
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
    State(app): State<AppState>,
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
