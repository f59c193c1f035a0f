//! The HTTP calls of pagamentos-service.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json as JsonBody;
use contracts::payments::{NewPayment, Payment, PaymentStatus, VoidRequest};
use contracts::ErrorCode;
use platform::extract::{Id, Json, Query};
use platform::money::Money;
use platform::page::Page;
use platform::ApiError;
use serde::Deserialize;
use utoipa::IntoParams;

use super::store::{self, NewCharge};
use crate::state::AppState;

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

fn payment_not_found(id: i64) -> ApiError {
    ApiError::not_found("payment_not_found", format!("payment {id} not found"))
        .with("payment_id", id)
}

fn check_order_id(order_id: i64) -> Result<(), ApiError> {
    if order_id < 1 {
        return Err(ApiError::invalid_field("order_id", "order_id must be >= 1"));
    }
    Ok(())
}

/// The answer to a charge, the first time and every repeat: 201 with the payment
/// when approved (or since refunded), 422 with the payment when declined.
fn charge_response(payment: Payment) -> Response {
    match payment.status {
        PaymentStatus::Declined => {
            let mut body = serde_json::to_value(&payment).unwrap_or_default();
            if let Some(map) = body.as_object_mut() {
                map.insert("error".into(), "payment declined by the processor".into());
                map.insert("code".into(), ErrorCode::PaymentDeclined.as_str().into());
            }
            (StatusCode::UNPROCESSABLE_ENTITY, JsonBody(body)).into_response()
        }
        PaymentStatus::Voided => ApiError::conflict(
            ErrorCode::OrderVoided.as_str(),
            format!(
                "order {} was cancelled: it can no longer be charged",
                payment.order_id
            ),
        )
        .with("payment", &payment)
        .into_response(),
        PaymentStatus::Approved | PaymentStatus::Refunded => {
            let location = HeaderValue::from_str(&format!("/payments/{}", payment.id)).ok();
            let mut response = (StatusCode::CREATED, JsonBody(payment)).into_response();
            if let Some(location) = location {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
    }
}

/// A repeat of a charge already made: the same answer, unless the amount differs.
fn repeat(existing: Payment, amount: Money) -> Response {
    if existing.status != PaymentStatus::Voided && existing.amount != amount {
        return ApiError::conflict(
            ErrorCode::PaymentAmountMismatch.as_str(),
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
    check_order_id(req.order_id)?;
    if req.amount.cents() == 0 {
        return Err(ApiError::invalid_field(
            "amount",
            "amount must be greater than 0",
        ));
    }
    if let Some(existing) = store::find_by_order(&app.db, req.order_id).await? {
        return Ok(repeat(existing, req.amount));
    }
    let method = req.method.unwrap_or_default();
    let status = app.processor.decide().await;
    let inserted = app
        .charges
        .submit(NewCharge {
            order_id: req.order_id,
            amount: req.amount,
            method,
            status,
            at: platform::now(),
        })
        .await?;
    match inserted {
        Some(payment) => {
            app.metrics.charged(payment.status, method);
            Ok(charge_response(payment))
        }
        // A concurrent request for the same order won the race: answer as it did.
        None => {
            let existing = store::find_by_order(&app.db, req.order_id)
                .await?
                .ok_or_else(ApiError::internal)?;
            Ok(repeat(existing, req.amount))
        }
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
    let rows = store::list(&app.db, &page, params.order_id).await?;
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
    store::find(&app.db, id)
        .await?
        .map(JsonBody)
        .ok_or_else(|| payment_not_found(id))
}

/// approved → refunded, counted once.
async fn refund_once(app: &AppState, id: i64) -> Result<Option<Payment>, ApiError> {
    let refunded = store::refund_once(&app.db, id).await?;
    if refunded.is_some() {
        app.metrics.refunded();
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
    let payment = store::find(&app.db, id)
        .await?
        .ok_or_else(|| payment_not_found(id))?;
    if payment.status == PaymentStatus::Refunded {
        return Ok(JsonBody(payment));
    }
    Err(ApiError::conflict(
        ErrorCode::IllegalTransition.as_str(),
        format!(
            "payment {id} is {} and cannot be refunded",
            payment.status.as_str()
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
    check_order_id(req.order_id)?;
    if let Some(payment) = store::fence(&app.db, req.order_id).await? {
        return Ok(JsonBody(payment));
    }
    let existing = store::find_by_order(&app.db, req.order_id)
        .await?
        .ok_or_else(ApiError::internal)?;
    if existing.status == PaymentStatus::Approved {
        if let Some(refunded) = refund_once(&app, existing.id).await? {
            return Ok(JsonBody(refunded));
        }
        let again = store::find_by_order(&app.db, req.order_id)
            .await?
            .ok_or_else(ApiError::internal)?;
        return Ok(JsonBody(again));
    }
    Ok(JsonBody(existing))
}
