//! The saga's view of estoque-service and pagamentos-service: one method per call,
//! each answer sorted into what the saga can act on.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use platform::client::{Answer, CallError, ServiceClient};
use platform::money::Money;
use serde::Deserialize;
use serde_json::{json, Value};

/// What a call told us, from the saga's point of view.
#[derive(Debug)]
pub enum Reply<T> {
    /// The call succeeded with this answer.
    Done(T),
    /// A definitive refusal: status and error body.
    Refused(StatusCode, Value),
    /// No usable answer: the step's outcome is unknown and must be retried.
    Unknown(String),
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReservedLine {
    pub item_id: i64,
    pub item_name: String,
    pub quantity: i64,
    pub unit_price: Money,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Reservation {
    pub id: i64,
    pub status: String,
    pub items: Vec<ReservedLine>,
    pub total: Money,
}

/// A payment as pagamentos answered it: the parsed fields the saga needs, and the
/// whole body to hand back to the client.
#[derive(Debug, Clone)]
pub struct Payment {
    pub id: i64,
    pub status: String,
    pub body: Value,
}

#[derive(Deserialize)]
struct PaymentFields {
    id: i64,
    status: String,
}

fn unknown(service: &str, err: CallError) -> String {
    format!("{service} {err}")
}

/// Sorts an answer: 2xx parses as `T`; 5xx is unknown; other statuses are refusals.
fn sort<T: serde::de::DeserializeOwned>(
    service: &str,
    answer: Result<Answer, CallError>,
) -> Reply<T> {
    match answer {
        Err(err) => Reply::Unknown(unknown(service, err)),
        Ok(answer) if answer.status.is_success() => match answer.json() {
            Ok(value) => Reply::Done(value),
            Err(err) => Reply::Unknown(unknown(service, err)),
        },
        Ok(answer) if answer.status.is_server_error() => {
            Reply::Unknown(format!("{service} answered {}", answer.status))
        }
        Ok(answer) => Reply::Refused(
            answer.status,
            serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
        ),
    }
}

fn sort_payment(answer: Result<Answer, CallError>) -> Reply<Payment> {
    let service = "pagamentos-service";
    match answer {
        // A declined charge is a 422 whose body is the payment itself.
        Ok(answer)
            if answer.status.is_success() || answer.status == StatusCode::UNPROCESSABLE_ENTITY =>
        {
            let body: Value = match answer.json() {
                Ok(body) => body,
                Err(err) => return Reply::Unknown(unknown(service, err)),
            };
            match serde_json::from_value::<PaymentFields>(body.clone()) {
                Ok(fields) => Reply::Done(Payment {
                    id: fields.id,
                    status: fields.status,
                    body: strip_error(body),
                }),
                Err(err) => Reply::Unknown(format!("{service} answered an unexpected body: {err}")),
            }
        }
        other => match sort::<serde::de::IgnoredAny>(service, other) {
            Reply::Refused(status, body) => Reply::Refused(status, body),
            Reply::Unknown(why) => Reply::Unknown(why),
            Reply::Done(_) => Reply::Unknown(format!("{service} answered an unexpected status")),
        },
    }
}

/// The payment object without the `error`/`code` a 422 adds to it.
fn strip_error(mut body: Value) -> Value {
    if let Some(map) = body.as_object_mut() {
        map.remove("error");
        map.remove("code");
    }
    body
}

#[derive(Clone)]
pub struct Inventory(pub ServiceClient);

impl Inventory {
    pub async fn reserve(
        &self,
        reference: &str,
        lines: &BTreeMap<i64, i64>,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        let items: Vec<Value> = lines
            .iter()
            .map(|(id, q)| json!({"item_id": id, "quantity": q}))
            .collect();
        let body = json!({"reference": reference, "items": items});
        sort(
            self.0.service(),
            self.0
                .call(
                    Method::POST,
                    "/reservations",
                    Some(&body),
                    request_id,
                    Some(timeout),
                )
                .await,
        )
    }

    pub async fn commit(
        &self,
        reservation_id: i64,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        let path = format!("/reservations/{reservation_id}/commit");
        sort(
            self.0.service(),
            self.0
                .call(Method::POST, &path, None, request_id, Some(timeout))
                .await,
        )
    }

    pub async fn release(
        &self,
        reservation_id: i64,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        let path = format!("/reservations/{reservation_id}/release");
        sort(
            self.0.service(),
            self.0
                .call(Method::POST, &path, None, request_id, Some(timeout))
                .await,
        )
    }

    /// Releases the order's hold, or fences the reference if nothing was held yet.
    pub async fn cancel(
        &self,
        reference: &str,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        let body = json!({"reference": reference});
        sort(
            self.0.service(),
            self.0
                .call(
                    Method::POST,
                    "/reservations/cancel",
                    Some(&body),
                    request_id,
                    Some(timeout),
                )
                .await,
        )
    }
}

#[derive(Clone)]
pub struct Payments(pub ServiceClient);

impl Payments {
    pub async fn charge(
        &self,
        order_id: i64,
        amount: Money,
        method: &str,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Payment> {
        let body = json!({"order_id": order_id, "amount": amount, "method": method});
        sort_payment(
            self.0
                .call(
                    Method::POST,
                    "/payments",
                    Some(&body),
                    request_id,
                    Some(timeout),
                )
                .await,
        )
    }

    /// Refunds the order's charge, or records that it may never be charged.
    pub async fn void(&self, order_id: i64, request_id: &str, timeout: Duration) -> Reply<Payment> {
        let body = json!({"order_id": order_id});
        sort_payment(
            self.0
                .call(
                    Method::POST,
                    "/payments/void",
                    Some(&body),
                    request_id,
                    Some(timeout),
                )
                .await,
        )
    }
}
