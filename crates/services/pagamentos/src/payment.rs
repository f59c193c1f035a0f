//! Payments: the simulated processor's charges, one per order at most, and refunds.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use chrono::{DateTime, Utc};
use platform::db::Db;
use platform::extract::{Id, Json, Query};
use platform::money::Money;
use platform::page::Page;
use platform::{with_conn, ApiError};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
    EncodeLabelValue,
)]
#[serde(rename_all = "snake_case")]
#[allow(non_camel_case_types)]
pub enum Method {
    #[default]
    credit_card,
    debit_card,
    pix,
    boleto,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::credit_card => "credit_card",
            Method::debit_card => "debit_card",
            Method::pix => "pix",
            Method::boleto => "boleto",
        }
    }
}

impl TryFrom<String> for Method {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s)).map_err(|e| e.to_string())
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema, EncodeLabelValue,
)]
#[serde(rename_all = "snake_case")]
#[allow(non_camel_case_types)]
pub enum PaymentStatus {
    approved,
    declined,
    refunded,
    /// The order was cancelled before any charge: no charge will ever be made for it.
    voided,
}

impl TryFrom<String> for PaymentStatus {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s)).map_err(|e| e.to_string())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    #[sqlx(rename = "amount_cents", try_from = "i64")]
    pub amount: Money,
    #[sqlx(try_from = "String")]
    pub method: Method,
    #[sqlx(try_from = "String")]
    pub status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! payment_columns {
    () => {
        "id, order_id, amount_cents, method, status, created_at, updated_at"
    };
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPayment {
    /// The order paid for, >= 1; at most one payment per order.
    #[schema(minimum = 1)]
    pub order_id: i64,
    /// > 0, at most two decimals.
    pub amount: Money,
    #[serde(default)]
    pub method: Option<Method>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct VoidRequest {
    pub order_id: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only the payment of this order.
    pub order_id: Option<i64>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return payments with an id greater than this.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: PaymentStatus,
    pub method: Method,
}

/// The simulated acquirer: declines with probability `decline_rate`, after `latency`.
pub struct Processor {
    decline_rate: f64,
    latency: Duration,
    rng: Mutex<StdRng>,
}

impl Processor {
    pub fn new(decline_rate: f64, seed: Option<u64>, latency: Duration) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            decline_rate,
            latency,
            rng: Mutex::new(rng),
        }
    }

    async fn decide(&self) -> PaymentStatus {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let draw: f64 = match self.rng.lock() {
            Ok(mut rng) => rng.random(),
            Err(poisoned) => poisoned.into_inner().random(),
        };
        if draw < self.decline_rate {
            PaymentStatus::declined
        } else {
            PaymentStatus::approved
        }
    }
}

fn payment_not_found(id: i64) -> ApiError {
    ApiError::not_found("payment_not_found", format!("payment {id} not found"))
        .with("payment_id", id)
}

/// The answer to a charge, the first time and every repeat: 201 with the payment
/// when approved (or since refunded), 422 with the payment when declined.
fn charge_response(payment: Payment) -> Response {
    match payment.status {
        PaymentStatus::declined => {
            let mut body = serde_json::to_value(&payment).unwrap_or_default();
            if let Some(map) = body.as_object_mut() {
                map.insert("error".into(), "payment declined by the processor".into());
                map.insert("code".into(), "payment_declined".into());
            }
            (StatusCode::UNPROCESSABLE_ENTITY, JsonBody(body)).into_response()
        }
        PaymentStatus::voided => ApiError::conflict(
            "order_voided",
            format!(
                "order {} was cancelled: it can no longer be charged",
                payment.order_id
            ),
        )
        .with("payment", &payment)
        .into_response(),
        _ => {
            let location = HeaderValue::from_str(&format!("/payments/{}", payment.id)).ok();
            let mut response = (StatusCode::CREATED, JsonBody(payment)).into_response();
            if let Some(location) = location {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}

async fn find_by_order(app: &AppState, order_id: i64) -> Result<Option<Payment>, ApiError> {
    Ok(with_conn!(app.db.writer(), |conn| {
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

async fn find(app: &AppState, id: i64) -> Result<Option<Payment>, ApiError> {
    Ok(with_conn!(app.db.reader(), |conn| {
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

/// A repeat of a charge already made: the same answer, unless the amount differs.
fn repeat(existing: Payment, amount: Money) -> Response {
    if existing.status != PaymentStatus::voided && existing.amount != amount {
        return ApiError::conflict(
            "payment_amount_mismatch",
            format!(
                "order {} was already charged {}",
                existing.order_id, existing.amount
            ),
        )
        .with("payment", &existing)
        .into_response();
    }
    charge_response(existing)
}

#[utoipa::path(post, path = "/payments", tag = "pagamentos", request_body = NewPayment,
    responses((status = 201, description = "Approved (a repeat for the same order returns the first payment)", body = Payment),
              (status = 422, description = "Declined: the payment, with `error` and `code`", body = Payment),
              (status = 400, body = platform::error::ErrorBody),
              (status = 409, description = "The order was already charged another amount, or was cancelled", body = platform::error::ErrorBody)))]
pub async fn create(
    State(app): State<Arc<AppState>>,
    Json(req): Json<NewPayment>,
) -> Result<Response, ApiError> {
    if req.order_id < 1 {
        return Err(ApiError::invalid_field("order_id", "order_id must be >= 1"));
    }
    if req.amount.cents() == 0 {
        return Err(ApiError::invalid_field(
            "amount",
            "amount must be greater than 0",
        ));
    }
    if let Some(existing) = find_by_order(&app, req.order_id).await? {
        return Ok(repeat(existing, req.amount));
    }
    let method = req.method.unwrap_or_default();
    let status = app.processor.decide().await;
    let now = platform::now();
    let inserted = app
        .charges
        .submit(NewCharge {
            order_id: req.order_id,
            amount_cents: req.amount.cents(),
            method,
            status,
            at: now,
        })
        .await?;
    match inserted {
        Some(payment) => {
            app.metrics
                .payments
                .get_or_create(&OutcomeLabels {
                    outcome: payment.status,
                    method,
                })
                .inc();
            Ok(charge_response(payment))
        }
        // A concurrent request for the same order won the race: answer as it did.
        None => {
            let existing = find_by_order(&app, req.order_id)
                .await?
                .ok_or_else(ApiError::internal)?;
            Ok(repeat(existing, req.amount))
        }
    }
}

/// A charge decided by the processor, to be recorded.
pub struct NewCharge {
    order_id: i64,
    amount_cents: i64,
    method: Method,
    status: PaymentStatus,
    at: DateTime<Utc>,
}

/// Records a batch of charges in one multi-row INSERT (see [`platform::batch`]): `None`
/// for an order that already has a payment (the caller answers with that one).
pub async fn record_charges(
    db: Db,
    charges: Vec<NewCharge>,
) -> Result<Vec<Option<Payment>>, ApiError> {
    let inserted: Vec<Payment> = with_conn!(db.writer(), |conn| {
        let mut insert = QueryBuilder::new(
            "INSERT INTO payments (order_id, amount_cents, method, status, created_at, updated_at) ",
        );
        insert.push_values(&charges, |mut row, charge| {
            row.push_bind(charge.order_id)
                .push_bind(charge.amount_cents)
                .push_bind(charge.method.as_str())
                .push_bind(status_str(charge.status))
                .push_bind(charge.at)
                .push_bind(charge.at);
        });
        insert.push(concat!(
            " ON CONFLICT (order_id) DO NOTHING RETURNING ",
            payment_columns!()
        ));
        insert.build_query_as().fetch_all(&mut *conn).await?
    });
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

fn status_str(status: PaymentStatus) -> &'static str {
    match status {
        PaymentStatus::approved => "approved",
        PaymentStatus::declined => "declined",
        PaymentStatus::refunded => "refunded",
        PaymentStatus::voided => "voided",
    }
}

#[utoipa::path(get, path = "/payments", tag = "pagamentos", params(ListParams),
    responses((status = 200, description = "Payments in id order; a `Link` header points to the next page", body = [Payment]),
              (status = 400, body = platform::error::ErrorBody)))]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let page = Page::new(params.limit, params.after)?;
    let rows: Vec<Payment> = with_conn!(app.db.reader(), |conn| {
        sqlx::query_as(concat!(
            "SELECT ",
            payment_columns!(),
            " FROM payments WHERE id > $1 AND ($2 IS NULL OR order_id = $2) ORDER BY id LIMIT $3"
        ))
        .bind(page.after)
        .bind(params.order_id)
        .bind(page.fetch_limit())
        .fetch_all(&mut *conn)
        .await?
    });
    let filters: Vec<(&str, String)> = params
        .order_id
        .map(|o| ("order_id", o.to_string()))
        .into_iter()
        .collect();
    let (headers, rows) = page.finish(rows, |p| p.id, "/payments", &filters);
    Ok((headers, JsonBody(rows)).into_response())
}

#[utoipa::path(get, path = "/payments/{id}", tag = "pagamentos", params(("id" = i64, Path)),
    responses((status = 200, body = Payment), (status = 400, body = platform::error::ErrorBody), (status = 404, body = platform::error::ErrorBody)))]
pub async fn get_one(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
) -> Result<JsonBody<Payment>, ApiError> {
    find(&app, id)
        .await?
        .map(JsonBody)
        .ok_or_else(|| payment_not_found(id))
}

/// approved → refunded, in one conditional UPDATE.
async fn refund_once(app: &AppState, id: i64) -> Result<Option<Payment>, ApiError> {
    let refunded: Option<Payment> = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as(concat!(
            "UPDATE payments SET status = 'refunded', updated_at = $2 WHERE id = $1 AND status = 'approved' RETURNING ",
            payment_columns!()))
            .bind(id)
            .bind(platform::now())
            .fetch_optional(&mut *conn)
            .await?
    });
    if refunded.is_some() {
        app.metrics.refunds.inc();
    }
    Ok(refunded)
}

#[utoipa::path(post, path = "/payments/{id}/refund", tag = "pagamentos", params(("id" = i64, Path)),
    responses((status = 200, description = "Refunded (or already was)", body = Payment),
              (status = 404, body = platform::error::ErrorBody), (status = 409, description = "Not an approved payment", body = platform::error::ErrorBody)))]
pub async fn refund(
    State(app): State<Arc<AppState>>,
    Id(id): Id,
) -> Result<JsonBody<Payment>, ApiError> {
    if let Some(payment) = refund_once(&app, id).await? {
        return Ok(JsonBody(payment));
    }
    let payment = find(&app, id).await?.ok_or_else(|| payment_not_found(id))?;
    if payment.status == PaymentStatus::refunded {
        return Ok(JsonBody(payment));
    }
    Err(ApiError::conflict(
        "illegal_transition",
        format!(
            "payment {id} is {} and cannot be refunded",
            status_str(payment.status)
        ),
    )
    .with("status", payment.status))
}

/// Settles an order's payment for a cancellation: refunds an approved charge, and
/// when none was made yet records a `voided` one, so that no charge can follow.
#[utoipa::path(post, path = "/payments/void", tag = "pagamentos (internal)", request_body = VoidRequest,
    responses((status = 200, description = "The order's payment: refunded, declined or voided", body = Payment),
              (status = 400, body = platform::error::ErrorBody)))]
pub async fn void(
    State(app): State<Arc<AppState>>,
    Json(req): Json<VoidRequest>,
) -> Result<JsonBody<Payment>, ApiError> {
    if req.order_id < 1 {
        return Err(ApiError::invalid_field("order_id", "order_id must be >= 1"));
    }
    let now = platform::now();
    let voided: Option<Payment> = with_conn!(app.db.writer(), |conn| {
        sqlx::query_as(concat!(
            "INSERT INTO payments (order_id, amount_cents, method, status, created_at, updated_at) \
             VALUES ($1, 0, 'credit_card', 'voided', $2, $2) ON CONFLICT (order_id) DO NOTHING RETURNING ", payment_columns!()))
            .bind(req.order_id)
            .bind(now)
            .fetch_optional(&mut *conn)
            .await?
    });
    if let Some(payment) = voided {
        return Ok(JsonBody(payment));
    }
    let existing = find_by_order(&app, req.order_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    if existing.status == PaymentStatus::approved {
        if let Some(refunded) = refund_once(&app, existing.id).await? {
            return Ok(JsonBody(refunded));
        }
        let again = find_by_order(&app, req.order_id)
            .await?
            .ok_or_else(ApiError::internal)?;
        return Ok(JsonBody(again));
    }
    Ok(JsonBody(existing))
}
