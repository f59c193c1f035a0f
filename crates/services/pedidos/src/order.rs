//! Orders: their types, their SQL, and the HTTP calls of pedidos-service.
//! The saga that moves an order from `pending` to a final status is in [`crate::saga`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json as JsonBody};
use chrono::{DateTime, Utc};
use platform::db::PoolKind;
use platform::extract::{Id, Json, Query};
use platform::money::Money;
use platform::page::Page;
use platform::request_id::RequestId;
use platform::{check_text, with_conn, ApiError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Connection;
use utoipa::{IntoParams, ToSchema};

use crate::clients::Reservation;
use crate::{saga, AppState};

pub use platform::lines::{merge_lines, LineRequest, MAX_LINES, MAX_LINE_QUANTITY};
const MAX_CUSTOMER: usize = 200;
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    PaymentDeclined,
    Rejected,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::PaymentDeclined => "payment_declined",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => OrderStatus::Pending,
            "paid" => OrderStatus::Paid,
            "payment_declined" => OrderStatus::PaymentDeclined,
            "rejected" => OrderStatus::Rejected,
            "cancelled" => OrderStatus::Cancelled,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    #[default]
    CreditCard,
    DebitCard,
    Pix,
    Boleto,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::CreditCard => "credit_card",
            PaymentMethod::DebitCard => "debit_card",
            PaymentMethod::Pix => "pix",
            PaymentMethod::Boleto => "boleto",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderLine {
    pub id: i64,
    pub item_id: i64,
    /// Known once inventory has reserved the line.
    pub item_name: Option<String>,
    pub quantity: i64,
    pub unit_price: Option<Money>,
}

/// An order as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Order {
    pub id: i64,
    pub customer: String,
    pub status: OrderStatus,
    pub total: Money,
    pub items: Vec<OrderLine>,
    pub payment_id: Option<i64>,
    pub payment_method: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order with what the saga keeps about it.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    pub order: Order,
    pub reservation_id: Option<i64>,
    pub payment: Option<Value>,
    pub failure: Option<(StatusCode, Value)>,
    pub fingerprint: String,
    pub request_id: String,
    pub attempts: i32,
}

impl OrderRecord {
    pub fn id(&self) -> i64 {
        self.order.id
    }

    pub fn status(&self) -> OrderStatus {
        self.order.status
    }

    pub fn lines(&self) -> BTreeMap<i64, i64> {
        self.order
            .items
            .iter()
            .map(|l| (l.item_id, l.quantity))
            .collect()
    }

    /// Takes the names, prices and total that inventory reserved.
    pub fn apply_reservation(&mut self, reservation: &Reservation) {
        self.reservation_id = Some(reservation.id);
        if reservation.items.is_empty() {
            return;
        }
        self.order.total = reservation.total;
        for line in &mut self.order.items {
            if let Some(r) = reservation.items.iter().find(|r| r.item_id == line.item_id) {
                line.item_name = Some(r.item_name.clone());
                line.unit_price = Some(r.unit_price);
            }
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewOrder {
    /// 1-200 characters, not only spaces.
    #[schema(min_length = 1, max_length = 200)]
    pub customer: String,
    /// 1-100 lines.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<LineRequest>,
    /// Default `credit_card`.
    pub payment_method: Option<PaymentMethod>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderCreated {
    pub order: Order,
    /// The payment as pagamentos-service answered it; null when the order is free.
    #[schema(value_type = Option<Object>)]
    pub payment: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderOnly {
    pub order: Order,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only orders in this status.
    pub status: Option<OrderStatus>,
    /// Only orders of this customer (exact match).
    pub customer: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return orders with an id greater than this.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

// ---- SQL -------------------------------------------------------------------------

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: i64,
    customer: String,
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
        "id, customer, status, total_cents, payment_method, payment_id, payment, reservation_id, \
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
    fn into_record(self, items: Vec<OrderLine>) -> OrderRecord {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str::<Value>(&s).ok());
        let failure_status = self
            .failure_status
            .and_then(|s| StatusCode::from_u16(s as u16).ok());
        OrderRecord {
            order: Order {
                id: self.id,
                customer: self.customer,
                status: OrderStatus::parse(&self.status).unwrap_or(OrderStatus::Pending),
                total: Money::from_cents(self.total_cents).unwrap_or_default(),
                items,
                payment_id: self.payment_id,
                payment_method: self.payment_method,
                created_at: self.created_at,
                updated_at: self.updated_at,
            },
            reservation_id: self.reservation_id,
            payment: parse(self.payment),
            failure: failure_status.zip(parse(self.failure)),
            fingerprint: self.request_fingerprint,
            request_id: self.request_id,
            attempts: self.attempts,
        }
    }
}

pub fn now_ms() -> i64 {
    platform::now().timestamp_millis()
}

/// What inserting a new order found.
pub enum Inserted {
    New(OrderRecord),
    /// An order with the same `Idempotency-Key` exists.
    Existing(OrderRecord),
}

/// A new order as the request describes it, before it is recorded.
pub struct Draft<'a> {
    pub customer: &'a str,
    pub lines: &'a BTreeMap<i64, i64>,
    pub method: PaymentMethod,
    pub idempotency_key: Option<&'a str>,
    pub fingerprint: &'a str,
    pub request_id: &'a str,
    /// Epoch ms until which the request that records it owns the order.
    pub lease_until: i64,
}

/// Step 1 of the saga: the order and its lines, `pending`, leased to this request.
pub async fn insert(app: &AppState, draft: &Draft<'_>) -> Result<Inserted, ApiError> {
    let Draft {
        customer,
        method,
        idempotency_key,
        fingerprint,
        request_id,
        ..
    } = *draft;
    let now = platform::now();
    let inserted = match &app.db.writer().kind {
        PoolKind::Postgres(pool) => insert_pg(app, pool, draft, now).await?,
        PoolKind::Sqlite(_) => insert_in_steps(app, draft, now).await?,
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
                payment_method: method.as_str().to_owned(),
                created_at: now,
                updated_at: now,
            },
            reservation_id: None,
            payment: None,
            failure: None,
            fingerprint: fingerprint.to_owned(),
            request_id: request_id.to_owned(),
            attempts: 0,
        })),
        None => {
            let key = idempotency_key.unwrap_or_default();
            let row: Option<OrderRow> = with_conn!(app.db.writer(), |conn| {
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
            let items = load_lines(app, &[row.id])
                .await?
                .remove(&row.id)
                .unwrap_or_default();
            Ok(Inserted::Existing(row.into_record(items)))
        }
    }
}

/// The new order's id and lines, or `None` when its idempotency key is taken.
type InsertedRows = Option<(i64, Vec<OrderLine>)>;

/// PostgreSQL: the order and all its lines in ONE autocommit statement (instead of
/// BEGIN, one statement for the order and one per line, COMMIT). With the
/// idempotency key taken, `o` is empty and so nothing at all is inserted.
async fn insert_pg(
    app: &AppState,
    pool: &sqlx::PgPool,
    draft: &Draft<'_>,
    now: DateTime<Utc>,
) -> Result<InsertedRows, ApiError> {
    let (item_ids, quantities): (Vec<i64>, Vec<i64>) =
        draft.lines.iter().map(|(i, q)| (*i, *q)).unzip();
    let mut conn = app.db.writer().timed_acquire(pool).await?;
    let rows: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
        "WITH o AS ( \
             INSERT INTO orders (customer, status, total_cents, payment_method, idempotency_key, request_fingerprint, \
             request_id, attempts, lease_until, created_at, updated_at) \
             VALUES ($1, 'pending', 0, $2, $3, $4, $5, 0, $6, $7, $7) \
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
    app: &AppState,
    draft: &Draft<'_>,
    now: DateTime<Utc>,
) -> Result<InsertedRows, ApiError> {
    let Draft {
        customer,
        lines,
        method,
        idempotency_key,
        fingerprint,
        request_id,
        lease_until,
    } = *draft;
    Ok(with_conn!(app.db.writer(), |conn| {
        let mut tx = conn.begin().await?;
        let id: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO orders (customer, status, total_cents, payment_method, idempotency_key, request_fingerprint, \
             request_id, attempts, lease_until, created_at, updated_at) \
             VALUES ($1, 'pending', 0, $2, $3, $4, $5, 0, $6, $7, $7) \
             ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(customer)
        .bind(method.as_str())
        .bind(idempotency_key)
        .bind(fingerprint)
        .bind(request_id)
        .bind(lease_until)
        .bind(now)
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

async fn load_lines(app: &AppState, ids: &[i64]) -> Result<HashMap<i64, Vec<OrderLine>>, ApiError> {
    let (Some(&first), Some(&last)) = (ids.iter().min(), ids.iter().max()) else {
        return Ok(HashMap::new());
    };
    // One range query for a whole page instead of one query per order.
    let rows: Vec<LineRow> = with_conn!(app.db.writer(), |conn| {
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

pub async fn load(app: &AppState, id: i64) -> Result<Option<OrderRecord>, ApiError> {
    let row: Option<OrderRow> = with_conn!(app.db.writer(), |conn| {
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
    let items = load_lines(app, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(Some(row.into_record(items)))
}

/// Takes the lease of a pending order whose lease has expired; false if someone holds it.
pub async fn claim(app: &AppState, id: i64, lease: Duration) -> Result<bool, ApiError> {
    let now = now_ms();
    let claimed = with_conn!(app.db.writer(), |conn| {
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
pub async fn due(app: &AppState, limit: i64) -> Result<Vec<i64>, ApiError> {
    let rows: Vec<(i64,)> = with_conn!(app.db.writer(), |conn| {
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
pub async fn pending_stats(app: &AppState) -> Result<(i64, f64), ApiError> {
    let (count, oldest): (i64, Option<DateTime<Utc>>) = with_conn!(app.db.reader(), |conn| {
        sqlx::query_as("SELECT COUNT(*), MIN(created_at) FROM orders WHERE status = 'pending'")
            .fetch_one(&mut *conn)
            .await?
    });
    let age = oldest
        .map(|t| (platform::now() - t).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    Ok((count, age))
}

/// Writes the saga's state: lines' names and prices, total, reservation, payment,
/// failure, and the new status (or the next attempt time for a pending order).
/// Only moves an order that is still in `expected` status; returns false otherwise.
pub async fn save(
    app: &AppState,
    record: &mut OrderRecord,
    expected: OrderStatus,
    next_attempt: Option<i64>,
) -> Result<bool, ApiError> {
    let now = platform::now();
    let order = &record.order;
    let payment = record.payment.as_ref().map(Value::to_string);
    let (failure_status, failure) = match &record.failure {
        Some((status, body)) => (Some(i32::from(status.as_u16())), Some(body.to_string())),
        None => (None, None),
    };
    let payment_id = record
        .payment
        .as_ref()
        .and_then(|p| p.get("id"))
        .and_then(Value::as_i64);
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
    let saved = if let PoolKind::Postgres(pool) = &app.db.writer().kind {
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
        let mut conn = app.db.writer().timed_acquire(pool).await?;
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
        with_conn!(app.db.writer(), |conn| {
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

// ---- HTTP ------------------------------------------------------------------------

fn order_not_found(id: i64) -> ApiError {
    ApiError::not_found("order_not_found", format!("order {id} not found")).with("order_id", id)
}

/// The answer for an order in its current state; the same for the first request and
/// for every replay with the same `Idempotency-Key`.
pub fn respond(record: OrderRecord) -> Response {
    match record.status() {
        OrderStatus::Paid | OrderStatus::PaymentDeclined => (
            StatusCode::CREATED,
            location(record.id()),
            JsonBody(OrderCreated {
                order: record.order,
                payment: record.payment,
            }),
        )
            .into_response(),
        OrderStatus::Rejected => {
            let (status, mut body) = record.failure.unwrap_or((
                StatusCode::CONFLICT,
                json!({"error": "order rejected", "code": "order_rejected"}),
            ));
            if let Some(map) = body.as_object_mut() {
                map.insert(
                    "order".into(),
                    serde_json::to_value(&record.order).unwrap_or_default(),
                );
            }
            (status, JsonBody(body)).into_response()
        }
        OrderStatus::Pending => (
            StatusCode::ACCEPTED,
            location(record.id()),
            JsonBody(OrderOnly {
                order: record.order,
            }),
        )
            .into_response(),
        OrderStatus::Cancelled => (
            StatusCode::OK,
            JsonBody(OrderOnly {
                order: record.order,
            }),
        )
            .into_response(),
    }
}

fn location(id: i64) -> [(header::HeaderName, HeaderValue); 1] {
    let value = HeaderValue::from_str(&format!("/orders/{id}"))
        .unwrap_or(HeaderValue::from_static("/orders"));
    [(header::LOCATION, value)]
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map_err(|_| {
        ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be printable ASCII",
        )
    })?;
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key must have 1 to {MAX_IDEMPOTENCY_KEY} characters"),
        ));
    }
    Ok(Some(key.to_owned()))
}

#[utoipa::path(post, path = "/orders", tag = "pedidos", request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, description = "Up to 255 characters; a retry with the same key and body returns the first response")),
    responses((status = 201, description = "Paid or payment declined (see `order.status`)", body = OrderCreated),
              (status = 202, description = "Outcome not known yet: the order is `pending` and will be finished by the recovery worker", body = OrderOnly),
              (status = 200, description = "Idempotent retry of an order that has been cancelled since the first request", body = OrderOnly),
              (status = 400, body = platform::error::ErrorBody),
              (status = 404, description = "An item does not exist: the order is `rejected`", body = platform::error::ErrorBody),
              (status = 409, description = "Insufficient stock: the order is `rejected`, nothing is held", body = platform::error::ErrorBody),
              (status = 413, body = platform::error::ErrorBody), (status = 415, body = platform::error::ErrorBody),
              (status = 422, description = "The Idempotency-Key was used with another body", body = platform::error::ErrorBody),
              (status = 503, body = platform::error::ErrorBody)))]
pub async fn create(
    State(app): State<Arc<AppState>>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Json(req): Json<NewOrder>,
) -> Result<Response, ApiError> {
    check_text("customer", &req.customer, MAX_CUSTOMER)?;
    let lines = merge_lines(&req.items)?;
    let key = idempotency_key(&headers)?;
    let method = req.payment_method.unwrap_or_default();
    let fingerprint = json!([
        req.customer,
        lines.iter().collect::<Vec<_>>(),
        method.as_str()
    ])
    .to_string();
    let started = Instant::now();
    let lease_until = now_ms() + app.settings.lease().as_millis() as i64;
    let draft = Draft {
        customer: &req.customer,
        lines: &lines,
        method,
        idempotency_key: key.as_deref(),
        fingerprint: &fingerprint,
        request_id: request_id.as_str(),
        lease_until,
    };
    let inserted = insert(&app, &draft).await?;
    let record = match inserted {
        Inserted::Existing(existing) => {
            if existing.fingerprint != fingerprint {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request body",
                )
                .with("order_id", existing.id()));
            }
            return Ok(respond(existing));
        }
        Inserted::New(record) => record,
    };
    app.metrics.created.inc();
    let deadline = started + app.settings.saga_budget();
    let record = saga::drive(&app, record, deadline, false).await?;
    Ok(respond(record))
}

#[utoipa::path(get, path = "/orders", tag = "pedidos", params(ListParams),
    responses((status = 200, description = "Orders in id order; a `Link` header points to the next page", body = [Order]),
              (status = 400, body = platform::error::ErrorBody)))]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let page = Page::new(params.limit, params.after)?;
    let status = params.status.map(OrderStatus::as_str);
    let rows: Vec<OrderRow> = with_conn!(app.db.reader(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE id > $1 AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR customer = $3) ORDER BY id LIMIT $4"
        ))
        .bind(page.after)
        .bind(status)
        .bind(&params.customer)
        .bind(page.fetch_limit())
        .fetch_all(&mut *conn)
        .await?
    });
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut lines = load_lines(&app, &ids).await?;
    let orders: Vec<Order> = rows
        .into_iter()
        .map(|row| {
            let items = lines.remove(&row.id).unwrap_or_default();
            row.into_record(items).order
        })
        .collect();
    let mut filters = Vec::new();
    if let Some(status) = status {
        filters.push(("status", status.to_owned()));
    }
    if let Some(customer) = &params.customer {
        filters.push(("customer", customer.clone()));
    }
    let (headers, orders) = page.finish(orders, |o| o.id, "/orders", &filters);
    Ok((headers, JsonBody(orders)).into_response())
}

#[utoipa::path(get, path = "/orders/{id}", tag = "pedidos", params(("id" = i64, Path)),
    responses((status = 200, body = Order), (status = 400, body = platform::error::ErrorBody), (status = 404, body = platform::error::ErrorBody)))]
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
) -> Result<JsonBody<Order>, ApiError> {
    load(&app, id)
        .await?
        .map(|r| JsonBody(r.order))
        .ok_or_else(|| order_not_found(id))
}

#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "pedidos", params(("id" = i64, Path)),
    responses((status = 200, description = "Cancelled: held stock released, or the payment refunded", body = OrderOnly),
              (status = 404, body = platform::error::ErrorBody),
              (status = 409, description = "The order is rejected or declined, or its saga is running right now (retry)", body = platform::error::ErrorBody),
              (status = 503, body = platform::error::ErrorBody), (status = 504, body = platform::error::ErrorBody)))]
pub async fn cancel(
    State(app): State<Arc<AppState>>,
    Extension(request_id): Extension<RequestId>,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let record = load(&app, id).await?.ok_or_else(|| order_not_found(id))?;
    match record.status() {
        OrderStatus::Cancelled => Ok(respond(record)),
        OrderStatus::Rejected | OrderStatus::PaymentDeclined => Err(ApiError::conflict(
            "illegal_transition",
            format!(
                "order {id} is {} and cannot be cancelled",
                record.status().as_str()
            ),
        )
        .with("status", record.status())),
        OrderStatus::Paid => saga::cancel(&app, record, request_id.as_str())
            .await
            .map(respond),
        OrderStatus::Pending => {
            if !claim(&app, id, app.settings.lease()).await? {
                return Err(ApiError::conflict(
                    "order_in_progress",
                    format!("order {id} is being processed; retry shortly"),
                )
                .with("status", OrderStatus::Pending)
                .retry_after(1));
            }
            saga::cancel(&app, record, request_id.as_str())
                .await
                .map(respond)
        }
    }
}
