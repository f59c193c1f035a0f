//! The SQL of reservations done one at a time, on either backend: reading them back,
//! settling what the group commit could not, and fencing a reference. Functions take
//! the database, not the component's state, so the handlers and the batches share them.

use chrono::{DateTime, Utc};
use contracts::inventory::{Reservation, ReservationLine, ReservationStatus};
use contracts::ErrorCode;
use platform::db::{decode_text, Db};
use platform::money::Money;
use platform::{with_conn, ApiError};
use sqlx::Connection;

#[derive(sqlx::FromRow)]
struct ReservationRow {
    id: i64,
    reference: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A line as `reservation_lines` stores it.
#[derive(sqlx::FromRow)]
pub struct LineRow {
    item_id: i64,
    item_name: String,
    quantity: i64,
    unit_price_cents: i64,
}

impl LineRow {
    pub fn into_line(self) -> Result<ReservationLine, ApiError> {
        Ok(ReservationLine {
            item_id: self.item_id,
            item_name: self.item_name,
            quantity: self.quantity,
            unit_price: Money::try_from(self.unit_price_cents).map_err(|_| ApiError::internal())?,
        })
    }
}

/// Sum of quantity x unit price over the lines.
pub fn total_of(lines: &[ReservationLine]) -> Result<Money, ApiError> {
    lines.iter().try_fold(Money::ZERO, |sum, line| {
        line.unit_price
            .times(line.quantity)
            .and_then(|v| sum.plus(v))
            .ok_or_else(|| {
                ApiError::conflict(
                    ErrorCode::TotalTooLarge.as_str(),
                    "the reservation's total exceeds the largest amount accepted",
                )
            })
    })
}

pub fn reservation_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        "reservation_not_found",
        format!("reservation {id} not found"),
    )
    .with("reservation_id", id)
}

async fn load(db: &Db, row: Option<ReservationRow>) -> Result<Option<Reservation>, ApiError> {
    let Some(row) = row else { return Ok(None) };
    let lines: Vec<LineRow> = with_conn!(db.writer(), |conn| {
        sqlx::query_as(
            "SELECT item_id, item_name, quantity, unit_price_cents FROM reservation_lines \
             WHERE reservation_id = $1 ORDER BY item_id",
        )
        .bind(row.id)
        .fetch_all(&mut *conn)
        .await?
    });
    let items = lines
        .into_iter()
        .map(LineRow::into_line)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Reservation {
        id: row.id,
        reference: row.reference,
        status: decode_text("reservations.status", &row.status)?,
        total: total_of(&items)?,
        items,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

// Reads go to the writer pool: a caller that just held or settled must see its own write.
pub async fn find(db: &Db, id: i64) -> Result<Option<Reservation>, ApiError> {
    let row: Option<ReservationRow> = with_conn!(db.writer(), |conn| {
        sqlx::query_as(
            "SELECT id, reference, status, created_at, updated_at FROM reservations WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    });
    load(db, row).await
}

pub async fn find_by_reference(db: &Db, reference: &str) -> Result<Option<Reservation>, ApiError> {
    let row: Option<ReservationRow> = with_conn!(db.writer(), |conn| {
        sqlx::query_as("SELECT id, reference, status, created_at, updated_at FROM reservations WHERE reference = $1")
            .bind(reference)
            .fetch_optional(&mut *conn)
            .await?
    });
    load(db, row).await
}

/// Records a released reservation under `reference` if it has none, so that a hold
/// still on its way can never take stock afterwards; false if the reference exists.
pub async fn fence(db: &Db, reference: &str) -> Result<bool, ApiError> {
    let now = platform::now();
    let fenced: Option<(i64,)> = with_conn!(db.writer(), |conn| {
        sqlx::query_as(
            "INSERT INTO reservations (reference, status, created_at, updated_at) VALUES ($1, 'released', $2, $2) \
             ON CONFLICT (reference) DO NOTHING RETURNING id",
        )
        .bind(reference)
        .bind(now)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(fenced.is_some())
}

/// Moves any reservation to `target` in one transaction, adjusting every line's item;
/// idempotent. Answers precisely what the group commit could not: a reservation that
/// is not held (already settled, unknown), or whose items no longer hold its units.
pub async fn settle_in_steps(
    db: &Db,
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
    with_conn!(db.writer(), |conn| {
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
                        ErrorCode::ReservationInconsistent.as_str(),
                        format!("item {item_id} no longer holds the units of reservation {id}"),
                    ));
                }
            }
            tx.commit().await?;
        }
    });
    let reservation = find(db, id)
        .await?
        .ok_or_else(|| reservation_not_found(id))?;
    if reservation.status == target {
        Ok(reservation)
    } else {
        Err(ApiError::conflict(
            ErrorCode::IllegalTransition.as_str(),
            format!("reservation {id} is {}", reservation.status.as_str()),
        )
        .with("status", reservation.status)
        .with("reservation", &reservation))
    }
}
