//! The SQL of orders, on either backend. Functions take the database, not the
//! component's state: the handlers, the saga and the recovery worker share them.

use std::collections::HashMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use platform::db::{decode_text, Db, PoolKind};
use platform::money::Money;
use platform::page::Page;
use platform::{with_conn, ApiError};
use serde_json::Value;
use sqlx::Connection;

use super::model::{Draft, Inserted, Order, OrderLine, OrderRecord, OrderStatus};

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    customer: String,
    owner: Option<String>,
    status: String,
    total_cents: i64,
    payment_method: String,
    payment_id: Option<i64>,
    payment: Option<String>,
    reservation_id: Option<i64>,
    failure_status: Option<i32>,
    failure: Option<String>,
    request_fingerprint: String,
    request_id: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    id: i64,
    order_id: i64,
    item_id: i64,
    item_name: Option<String>,
    quantity: i64,
    unit_price_cents: Option<i64>,
}

macro_rules! order_columns {
    () => {
        "id, customer, owner, status, total_cents, payment_method, payment_id, payment, reservation_id, \
         failure_status, failure, request_fingerprint, request_id, attempts, created_at, updated_at"
    };
}

impl LineRow {
    fn into_line(self) -> OrderLine {
        OrderLine {
            id: self.id,
            item_id: self.item_id,
            item_name: self.item_name,
            quantity: self.quantity,
            unit_price: self.unit_price_cents.and_then(Money::from_cents),
        }
    }
}

impl OrderRow {
    fn into_record(self, items: Vec<OrderLine>) -> Result<OrderRecord, ApiError> {
        let failure_status = self
            .failure_status
            .and_then(|s| StatusCode::from_u16(s as u16).ok());
        let failure = self
            .failure
            .and_then(|s| serde_json::from_str::<Value>(&s).ok());
        // The payment is kept as pagamentos-service answered it, as JSON text.
        let payment = match self.payment {
            Some(text) => Some(serde_json::from_str(&text).map_err(|err| {
                tracing::error!(order_id = self.id, error = %err, "unreadable payment in the database");
                ApiError::internal()
            })?),
            None => None,
        };
        Ok(OrderRecord {
            order: Order {
                id: self.id,
                customer: self.customer,
                status: decode_text("orders.status", &self.status)?,
                total: Money::from_cents(self.total_cents).ok_or_else(ApiError::internal)?,
                items,
                payment_id: self.payment_id,
                payment_method: decode_text("orders.payment_method", &self.payment_method)?,
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            owner: self.owner,
            reservation_id: self.reservation_id,
            payment,
            failure: failure_status.zip(failure),
            fingerprint: self.request_fingerprint,
            request_id: self.request_id,
            attempts: self.attempts,
        })
    }
}

/// Step 1 of the saga: the order and its lines, `pending`, leased to this request.
pub async fn insert(db: &Db, draft: &Draft<'_>) -> Result<Inserted, ApiError> {
    let Draft {
        customer,
        owner,
        method,
        idempotency_key,
        fingerprint,
        request_id,
        ..
    } = *draft;
    let now = platform::now();
    let inserted = match &db.writer().kind {
        PoolKind::Postgres(pool) => insert_pg(db, pool, draft, now).await?,
        PoolKind::Sqlite(_) => insert_in_steps(db, draft, now).await?,
    };
    match inserted {
        Some((id, items)) => Ok(Inserted::New(OrderRecord {
            order: Order {
                id,
                customer: customer.to_owned(),
                status: OrderStatus::Pending,
                total: Money::ZERO,
                items,
                payment_id: None,
                payment_method: method,
                created_at: now,
                updated_at: now,
            },
            owner: owner.map(str::to_owned),
            reservation_id: None,
            payment: None,
            failure: None,
            fingerprint: fingerprint.to_owned(),
            request_id: request_id.to_owned(),
            attempts: 0,
        })),
        None => {
            let key = idempotency_key.unwrap_or_default();
            let row: Option<OrderRow> = with_conn!(db.writer(), |conn| {
                sqlx::query_as(concat!(
                    "SELECT ",
                    order_columns!(),
                    " FROM orders WHERE idempotency_key = $1"
                ))
                .bind(key)
                .fetch_optional(&mut *conn)
                .await?
            });
            let row = row.ok_or_else(ApiError::internal)?;
            let items = load_lines(db, &[row.id])
                .await?
                .remove(&row.id)
                .unwrap_or_default();
            Ok(Inserted::Existing(row.into_record(items)?))
        }
    }
}

/// The new order's id and lines, or `None` when its idempotency key is taken.
type InsertedRows = Option<(i64, Vec<OrderLine>)>;

/// PostgreSQL: the order and all its lines in ONE autocommit statement (instead of
/// BEGIN, one statement for the order and one per line, COMMIT). With the
/// idempotency key taken, `o` is empty and so nothing at all is inserted.
async fn insert_pg(
    db: &Db,
    pool: &sqlx::PgPool,
    draft: &Draft<'_>,
    now: DateTime<Utc>,
) -> Result<InsertedRows, ApiError> {
    let (item_ids, quantities): (Vec<i64>, Vec<i64>) =
        draft.lines.iter().map(|(i, q)| (*i, *q)).unzip();
    let mut conn = db.writer().timed_acquire(pool).await?;
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "WITH o AS ( \
             INSERT INTO orders (customer, status, total_cents, payment_method, idempotency_key, request_fingerprint, \
             request_id, attempts, lease_until, created_at, updated_at, owner) \
             VALUES ($1, 'pending', 0, $2, $3, $4, $5, 0, $6, $7, $7, $10) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id), \
         l AS ( \
             INSERT INTO order_lines (order_id, item_id, quantity) \
             SELECT o.id, x.item_id, x.quantity FROM o, unnest($8::bigint[], $9::bigint[]) AS x(item_id, quantity) \
             ORDER BY x.item_id \
             RETURNING id, item_id, quantity) \
         SELECT o.id, l.id, l.item_id, l.quantity FROM o, l ORDER BY l.item_id",
    )
    .bind(draft.customer)
    .bind(draft.method.as_str())
    .bind(draft.idempotency_key)
    .bind(draft.fingerprint)
    .bind(draft.request_id)
    .bind(draft.lease_until)
    .bind(now)
    .bind(&item_ids)
    .bind(&quantities)
    .bind(draft.owner)
    .fetch_all(&mut *conn)
    .await?;
    let Some(&(id, ..)) = rows.first() else {
        return Ok(None);
    };
    let items = rows
        .into_iter()
        .map(|(_, line_id, item_id, quantity)| OrderLine {
            id: line_id,
            item_id,
            item_name: None,
            quantity,
            unit_price: None,
        })
        .collect();
    Ok(Some((id, items)))
}

/// Either backend: one transaction, one statement for the order and one per line.
async fn insert_in_steps(
    db: &Db,
    draft: &Draft<'_>,
    now: DateTime<Utc>,
) -> Result<InsertedRows, ApiError> {
    let Draft {
        customer,
        owner,
        lines,
        method,
        idempotency_key,
        fingerprint,
        request_id,
        lease_until,
    } = *draft;
    Ok(with_conn!(db.writer(), |conn| {
        let mut tx = conn.begin().await?;
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO orders (customer, status, total_cents, payment_method, idempotency_key, request_fingerprint, \
             request_id, attempts, lease_until, created_at, updated_at, owner) \
             VALUES ($1, 'pending', 0, $2, $3, $4, $5, 0, $6, $7, $7, $8) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(customer)
        .bind(method.as_str())
        .bind(idempotency_key)
        .bind(fingerprint)
        .bind(request_id)
        .bind(lease_until)
        .bind(now)
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await?;
        match id {
            None => None,
            Some((id,)) => {
                let mut items = Vec::with_capacity(lines.len());
                for (&item_id, &quantity) in lines {
                    let (line_id,): (i64,) = sqlx::query_as(
                        "INSERT INTO order_lines (order_id, item_id, quantity) VALUES ($1, $2, $3) RETURNING id",
                    )
                    .bind(id)
                    .bind(item_id)
                    .bind(quantity)
                    .fetch_one(&mut *tx)
                    .await?;
                    items.push(OrderLine {
                        id: line_id,
                        item_id,
                        item_name: None,
                        quantity,
                        unit_price: None,
                    });
                }
                tx.commit().await?;
                Some((id, items))
            }
        }
    }))
}

async fn load_lines(db: &Db, ids: &[i64]) -> Result<HashMap<i64, Vec<OrderLine>>, ApiError> {
    let (Some(&first), Some(&last)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(HashMap::new());
    };
    // One range query for a whole page instead of one query per order.
    let rows: Vec<LineRow> = with_conn!(db.writer(), |conn| {
        sqlx::query_as(
            "SELECT id, order_id, item_id, item_name, quantity, unit_price_cents FROM order_lines \
             WHERE order_id BETWEEN $1 AND $2 ORDER BY order_id, item_id",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&mut *conn)
        .await?
    });
    let mut by_order: HashMap<i64, Vec<OrderLine>> = HashMap::with_capacity(ids.len());
    for row in rows {
        if ids.contains(&row.order_id) {
            by_order
                .entry(row.order_id)
                .or_default()
                .push(row.into_line());
        }
    }
    Ok(by_order)
}

pub async fn load(db: &Db, id: i64) -> Result<Option<OrderRecord>, ApiError> {
    let row: Option<OrderRow> = with_conn!(db.writer(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    });
    let Some(row) = row else { return Ok(None) };
    let items = load_lines(db, &[id]).await?.remove(&id).unwrap_or_default();
    row.into_record(items).map(Some)
}

/// Writes the saga's state: lines' names and prices, total, reservation, payment,
/// failure, and the new status (or the next attempt time for a pending order).
/// Only moves an order that is still in `expected` status; returns false otherwise.
pub async fn save(
    db: &Db,
    record: &mut OrderRecord,
    expected: OrderStatus,
    next_attempt: Option<i64>,
) -> Result<bool, ApiError> {
    let now = platform::now();
    let order = &record.order;
    let payment = record
        .payment
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|_| ApiError::internal())?;
    let (failure_status, failure) = match &record.failure {
        Some((status, body)) => (Some(i32::from(status.as_u16())), Some(body.to_string())),
        None => (None, None),
    };
    let payment_id = record.payment.as_ref().map(|p| p.id);
    // The order row's update, $1 .. $11, on both paths.
    macro_rules! update_order_sql {
        () => {
            "UPDATE orders SET status = $1, total_cents = $2, payment_id = $3, payment = $4, reservation_id = $5, \
             failure_status = $6, failure = $7, lease_until = $8, updated_at = $9 WHERE id = $10 AND status = $11"
        };
    }
    macro_rules! bind_order_state {
        ($query:expr) => {
            $query
                .bind(order.status.as_str())
                .bind(order.total.cents())
                .bind(payment_id)
                .bind(&payment)
                .bind(record.reservation_id)
                .bind(failure_status)
                .bind(&failure)
                .bind(next_attempt)
                .bind(now)
                .bind(order.id)
                .bind(expected.as_str())
        };
    }
    let saved = if let PoolKind::Postgres(pool) = &db.writer().kind {
        // One autocommit statement: the order's row and its lines' names and prices,
        // the lines only when the order's row changed (instead of BEGIN, 1 + lines
        // statements, COMMIT).
        let named: Vec<&OrderLine> = order
            .items
            .iter()
            .filter(|l| l.item_name.is_some())
            .collect();
        let line_ids: Vec<i64> = named.iter().map(|l| l.id).collect();
        let names: Vec<&str> = named
            .iter()
            .map(|l| l.item_name.as_deref().unwrap_or_default())
            .collect();
        let prices: Vec<Option<i64>> = named
            .iter()
            .map(|l| l.unit_price.map(Money::cents))
            .collect();
        let mut conn = db.writer().timed_acquire(pool).await?;
        let (changed,): (i64,) = bind_order_state!(sqlx::query_as(concat!(
            "WITH o AS (",
            update_order_sql!(),
            " RETURNING id), \
             l AS ( \
                 UPDATE order_lines SET item_name = x.name, unit_price_cents = x.price \
                 FROM unnest($12::bigint[], $13::text[], $14::bigint[]) AS x(id, name, price) \
                 WHERE order_lines.id = x.id AND order_lines.order_id = $10 AND EXISTS (SELECT 1 FROM o)) \
             SELECT count(*) FROM o"
        )))
        .bind(&line_ids)
        .bind(&names)
        .bind(&prices)
        .fetch_one(&mut *conn)
        .await?;
        changed == 1
    } else {
        with_conn!(db.writer(), |conn| {
            let mut tx = conn.begin().await?;
            let changed = bind_order_state!(sqlx::query(update_order_sql!()))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 1 {
                for line in order.items.iter().filter(|l| l.item_name.is_some()) {
                    sqlx::query(
                        "UPDATE order_lines SET item_name = $1, unit_price_cents = $2 WHERE id = $3",
                    )
                    .bind(&line.item_name)
                    .bind(line.unit_price.map(Money::cents))
                    .bind(line.id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
            changed == 1
        })
    };
    if saved {
        record.order.updated_at = now;
        record.order.payment_id = payment_id;
    }
    Ok(saved)
}

/// One page of orders in id order, optionally filtered by status, customer, and owner
/// (a customer's list: their own orders only).
pub async fn list(
    db: &Db,
    page: &Page,
    status: Option<OrderStatus>,
    customer: Option<&str>,
    owner: Option<&str>,
) -> Result<Vec<Order>, ApiError> {
    let rows: Vec<OrderRow> = with_conn!(db.reader(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE id > $1 AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR customer = $3) AND ($5 IS NULL OR owner = $5) ORDER BY id LIMIT $4"
        ))
        .bind(page.after)
        .bind(status.map(OrderStatus::as_str))
        .bind(customer)
        .bind(page.fetch_limit())
        .bind(owner)
        .fetch_all(&mut *conn)
        .await?
    });
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut lines = load_lines(db, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let items = lines.remove(&row.id).unwrap_or_default();
            row.into_record(items).map(|record| record.order)
        })
        .collect()
}
