//! The SQL of payments, on either backend. Functions take the database, not the
//! component's state, so the handlers and the group commit share them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use contracts::payments::{Payment, PaymentMethod, PaymentStatus};
use platform::db::{decode_text, Db};
use platform::money::Money;
use platform::page::Page;
use platform::{with_conn, ApiError};
use sqlx::QueryBuilder;

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: i64,
    order_id: i64,
    amount_cents: i64,
    method: String,
    status: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl PaymentRow {
    fn into_payment(self) -> Result<Payment, ApiError> {
        Ok(Payment {
            id: self.id,
            order_id: self.order_id,
            amount: Money::from_cents(self.amount_cents).ok_or_else(ApiError::internal)?,
            method: decode_text("payments.method", &self.method)?,
            status: decode_text("payments.status", &self.status)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

fn decode(rows: Vec<PaymentRow>) -> Result<Vec<Payment>, ApiError> {
    rows.into_iter().map(PaymentRow::into_payment).collect()
}

fn decode_one(row: Option<PaymentRow>) -> Result<Option<Payment>, ApiError> {
    row.map(PaymentRow::into_payment).transpose()
}

macro_rules! payment_columns {
    () => {
        "id, order_id, amount_cents, method, status, created_at, updated_at"
    };
}

// Read from the writer: a caller that just charged or voided must see its own write.
pub async fn find_by_order(db: &Db, order_id: i64) -> Result<Option<Payment>, ApiError> {
    decode_one(with_conn!(db.writer(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE order_id = $1"
        ))
        .bind(order_id)
        .fetch_optional(&mut *conn)
        .await?
    }))
}

pub async fn find(db: &Db, id: i64) -> Result<Option<Payment>, ApiError> {
    decode_one(with_conn!(db.reader(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
    }))
}

/// One page of payments in id order, optionally only an order's.
pub async fn list(db: &Db, page: &Page, order_id: Option<i64>) -> Result<Vec<Payment>, ApiError> {
    decode(with_conn!(db.reader(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE id > $1 AND ($2 IS NULL OR order_id = $2) ORDER BY id LIMIT $3"
        ))
        .bind(page.after)
        .bind(order_id)
        .bind(page.fetch_limit())
        .fetch_all(&mut *conn)
        .await?
    }))
}

/// A charge decided by the processor, to be recorded.
pub struct NewCharge {
    pub order_id: i64,
    pub amount: Money,
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    pub at: DateTime<Utc>,
}

/// Records a batch of charges in one multi-row INSERT (see [`platform::batch`]): `None`
/// for an order that already has a payment (the caller answers with that one).
pub async fn record_charges(
    db: Db,
    charges: Vec<NewCharge>,
) -> Result<Vec<Option<Payment>>, ApiError> {
    let inserted = decode(with_conn!(db.writer(), |conn| {
        let mut insert = QueryBuilder::new(
            "INSERT INTO payments (order_id, amount_cents, method, status, created_at, updated_at) ",
        );
        insert.push_values(&charges, |mut row, charge| {
            row.push_bind(charge.order_id)
                .push_bind(charge.amount.cents())
                .push_bind(charge.method.as_str())
                .push_bind(charge.status.as_str())
                .push_bind(charge.at)
                .push_bind(charge.at);
        });
        insert.push(concat!(
            " ON CONFLICT (order_id) DO NOTHING RETURNING ",
            payment_columns!()
        ));
        insert.build_query_as().fetch_all(&mut *conn).await?
    }))?;
    // An order twice in one batch: the first charge is recorded, the others find it.
    let mut by_order: HashMap<i64, Payment> = inserted
        .into_iter()
        .map(|payment| (payment.order_id, payment))
        .collect();
    Ok(charges
        .iter()
        .map(|charge| by_order.remove(&charge.order_id))
        .collect())
}

/// approved → refunded, in one conditional UPDATE; `None` if it was not approved.
pub async fn refund_once(db: &Db, id: i64) -> Result<Option<Payment>, ApiError> {
    decode_one(with_conn!(db.writer(), |conn| {
        sqlx::query_as(concat!(
            "UPDATE payments SET status = 'refunded', updated_at = $2 WHERE id = $1 AND status = 'approved' RETURNING ",
            payment_columns!()))
            .bind(id)
            .bind(platform::now())
            .fetch_optional(&mut *conn)
            .await?
    }))
}

/// Records a `voided` payment for an order that has none, so that no charge can
/// follow; `None` if the order already has a payment.
pub async fn fence(db: &Db, order_id: i64) -> Result<Option<Payment>, ApiError> {
    let now = platform::now();
    decode_one(with_conn!(db.writer(), |conn| {
        sqlx::query_as(concat!(
            "INSERT INTO payments (order_id, amount_cents, method, status, created_at, updated_at) \
             VALUES ($1, 0, 'credit_card', 'voided', $2, $2) ON CONFLICT (order_id) DO NOTHING RETURNING ", payment_columns!()))
            .bind(order_id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
    }))
}
