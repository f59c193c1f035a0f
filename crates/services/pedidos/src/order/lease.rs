//! Who owns a pending order: the lease a saga runner (a request, or the recovery
//! worker of any replica) takes before it drives the order's saga, so that no two
//! runners drive one order at once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use platform::db::Db;
use platform::{with_conn, ApiError};

/// The time leases are written in: epoch milliseconds.
pub fn now_ms() -> i64 {
    platform::now().timestamp_millis()
}

/// Takes the lease of a pending order whose lease has expired; false if someone holds it.
pub async fn claim(db: &Db, id: i64, lease: Duration) -> Result<bool, ApiError> {
    let now = now_ms();
    let claimed = with_conn!(db.writer(), |conn| {
        sqlx::query(
            "UPDATE orders SET lease_until = $1, attempts = attempts + 1 \
             WHERE id = $2 AND status = 'pending' AND (lease_until IS NULL OR lease_until < $3)",
        )
        .bind(now + lease.as_millis() as i64)
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(claimed == 1)
}

/// Pending orders whose lease has expired, oldest first.
pub async fn due(db: &Db, limit: i64) -> Result<Vec<i64>, ApiError> {
    let rows: Vec<(i64,)> = with_conn!(db.writer(), |conn| {
        sqlx::query_as(
            "SELECT id FROM orders WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < $1) ORDER BY id LIMIT $2",
        )
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?
    });
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

/// Number of pending orders and age in seconds of the oldest.
pub async fn pending_stats(db: &Db) -> Result<(i64, f64), ApiError> {
    let (count, oldest): (i64, Option<DateTime<Utc>>) = with_conn!(db.reader(), |conn| {
        sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM orders WHERE status = 'pending'")
            .fetch_one(&mut *conn)
            .await?
    });
    let age = oldest
        .map(|t| (platform::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    Ok((count, age))
}
