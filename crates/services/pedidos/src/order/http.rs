//! The HTTP calls of pedidos-service: place, list, read and cancel orders.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json as JsonBody};
use platform::extract::{Id, Json, Query};
use platform::lines::merge_lines;
use platform::page::Page;
use platform::request_id::RequestId;
use platform::{check_text, ApiError};
use serde_json::json;

use super::lease::{self, now_ms};
use super::model::{
    Draft, Inserted, ListParams, NewOrder, Order, OrderCreated, OrderOnly, OrderRecord, OrderStatus,
};
use super::store;
use crate::caller::Caller;
use crate::saga;
use crate::state::AppState;

const MAX_CUSTOMER: usize = 200;
const MAX_IDEMPOTENCY_KEY: usize = 255;

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
              (status = 403, description = "With identity on: `customer` is not the caller's own name (`customer_mismatch`); nothing is recorded", body = platform::error::ErrorBody),
              (status = 404, description = "An item does not exist: the order is `rejected`", body = platform::error::ErrorBody),
              (status = 409, description = "Insufficient stock: the order is `rejected`, nothing is held", body = platform::error::ErrorBody),
              (status = 413, body = platform::error::ErrorBody), (status = 415, body = platform::error::ErrorBody),
              (status = 422, description = "The Idempotency-Key was used with another body", body = platform::error::ErrorBody),
              (status = 503, body = platform::error::ErrorBody)))]
pub async fn create(
    State(app): State<Arc<AppState>>,
    Extension(request_id): Extension<RequestId>,
    caller: Caller,
    headers: HeaderMap,
    Json(req): Json<NewOrder>,
) -> Result<Response, ApiError> {
    check_text("customer", &req.customer, MAX_CUSTOMER)?;
    caller.check_customer(&req.customer)?;
    let lines = merge_lines(&req.items)?;
    let key = idempotency_key(&headers)?.map(|key| caller.scope_key(&key));
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
        owner: caller.owner(),
        lines: &lines,
        method,
        idempotency_key: key.as_deref(),
        fingerprint: &fingerprint,
        request_id: request_id.as_str(),
        lease_until,
    };
    let inserted = store::insert(&app.db, &draft).await?;
    let record = match inserted {
        Inserted::Existing(existing) => {
            if !caller.sees(existing.owner.as_deref()) {
                // Keys are scoped to their owner; this is a key stored before ownership.
                return Err(ApiError::conflict(
                    "idempotency_key_reused",
                    "this Idempotency-Key is taken: use another",
                ));
            }
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
    app.metrics.created();
    let deadline = started + app.settings.saga_budget();
    let record = saga::drive(&app, record, deadline, false).await?;
    Ok(respond(record))
}

#[utoipa::path(get, path = "/orders", tag = "pedidos", params(ListParams),
    responses((status = 200, description = "Orders in id order; a `Link` header points to the next page", body = [Order]),
              (status = 400, body = platform::error::ErrorBody)))]
pub async fn list(
    State(app): State<Arc<AppState>>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<Response, ApiError> {
    let page = Page::new(params.limit, params.after)?;
    let orders = store::list(
        &app.db,
        &page,
        params.status,
        params.customer.as_deref(),
        caller.owner(),
    )
    .await?;
    let mut filters = Vec::new();
    if let Some(status) = params.status {
        filters.push(("status", status.as_str().to_owned()));
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
    caller: Caller,
    Id(id): Id,
) -> Result<JsonBody<Order>, ApiError> {
    load_visible(&app, &caller, id)
        .await
        .map(|r| JsonBody(r.order))
}

/// An order the caller may see; another customer's order is "not found", exactly like
/// an id that does not exist, so ids tell nothing about other customers' orders.
async fn load_visible(app: &AppState, caller: &Caller, id: i64) -> Result<OrderRecord, ApiError> {
    store::load(&app.db, id)
        .await?
        .filter(|record| caller.sees(record.owner.as_deref()))
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
    caller: Caller,
    Id(id): Id,
) -> Result<Response, ApiError> {
    let record = load_visible(&app, &caller, id).await?;
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
            if !lease::claim(&app.db, id, app.settings.lease()).await? {
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
