//! The saga's view of estoque-service and pagamentos-service: one method per call of
//! [`contracts`], each answer sorted into what the saga can act on.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use contracts::inventory::{self, NewReservation, ReferenceRequest, Reservation};
use contracts::payments::{self, NewPayment, Payment, PaymentMethod, VoidRequest};
use contracts::{with_id, ErrorCode};
use platform::client::{Answer, CallError, ServiceClient, NO_BODY};
use platform::faults::{Fault, Faults};
use platform::lines::LineRequest;
use platform::money::Money;
use serde_json::Value;

/// What a call told us, from the saga's point of view.
#[derive(Debug)]
pub enum Reply<T> {
    /// The call succeeded with this answer.
    Done(T),
    /// A definitive refusal.
    Refused(Refusal),
    /// No usable answer: the step's outcome is unknown and must be retried.
    Unknown(String),
}

/// A 4xx answer: its status, its code if the contract knows it, and the whole error
/// body, handed on to the client when the refusal ends the order.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub code: Option<ErrorCode>,
    pub body: Value,
}

fn unknown(service: &str, err: CallError) -> String {
    format!("{service} {err}")
}

fn refusal(answer: &Answer) -> Refusal {
    let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    Refusal {
        status: answer.status,
        code: ErrorCode::of(&body),
        body,
    }
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
        Ok(answer) => Reply::Refused(refusal(&answer)),
    }
}

/// Sorts a payment answer: a declined charge is a 422 whose body is the payment itself
/// (with `error` and `code` added, which the payment type leaves out).
fn sort_payment(service: &str, answer: Result<Answer, CallError>) -> Reply<Payment> {
    match answer {
        Ok(answer) if answer.status == StatusCode::UNPROCESSABLE_ENTITY => {
            match answer.json::<Payment>() {
                Ok(payment) => Reply::Done(payment),
                Err(err) => Reply::Unknown(unknown(service, err)),
            }
        }
        other => sort(service, other),
    }
}

/// A service the saga calls: its client, and the fault that makes its calls fail.
#[derive(Clone)]
pub struct Callee {
    client: ServiceClient,
    faults: Faults,
    failure: Fault,
}

impl Callee {
    /// The answer of one call, unless the fault that fails this callee's calls strikes:
    /// then the call fails before it is sent, as if the service could not be reached.
    async fn call<B: serde::Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        request_id: &str,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        if self.faults.strikes(self.failure) {
            return Err(CallError::Unreachable);
        }
        self.client
            .call(method, path, body, request_id, Some(timeout))
            .await
    }

    fn service(&self) -> &'static str {
        self.client.service()
    }
}

#[derive(Clone)]
pub struct Inventory(Callee);

impl Inventory {
    pub fn new(client: ServiceClient, faults: Faults) -> Self {
        Self(Callee {
            client,
            faults,
            failure: Fault::InventoryCallFailureRate,
        })
    }

    pub async fn reserve(
        &self,
        reference: &str,
        lines: &BTreeMap<i64, i64>,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        let body = NewReservation {
            reference: reference.to_owned(),
            items: lines
                .iter()
                .map(|(&item_id, &quantity)| LineRequest { item_id, quantity })
                .collect(),
        };
        let path = inventory::paths::RESERVATIONS;
        let answer = self
            .0
            .call(Method::POST, path, Some(&body), request_id, timeout)
            .await;
        sort(self.0.service(), answer)
    }

    pub async fn commit(
        &self,
        reservation_id: i64,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        self.settle(
            inventory::paths::COMMIT,
            reservation_id,
            request_id,
            timeout,
        )
        .await
    }

    pub async fn release(
        &self,
        reservation_id: i64,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        self.settle(
            inventory::paths::RELEASE,
            reservation_id,
            request_id,
            timeout,
        )
        .await
    }

    async fn settle(
        &self,
        template: &str,
        reservation_id: i64,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        let path = with_id(template, reservation_id);
        let answer = self
            .0
            .call(Method::POST, &path, NO_BODY, request_id, timeout)
            .await;
        sort(self.0.service(), answer)
    }

    /// Releases the order's hold, or fences the reference if nothing was held yet.
    pub async fn cancel(
        &self,
        reference: &str,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Reservation> {
        let body = ReferenceRequest {
            reference: reference.to_owned(),
        };
        let path = inventory::paths::CANCEL;
        let answer = self
            .0
            .call(Method::POST, path, Some(&body), request_id, timeout)
            .await;
        sort(self.0.service(), answer)
    }
}

#[derive(Clone)]
pub struct Payments(Callee);

impl Payments {
    pub fn new(client: ServiceClient, faults: Faults) -> Self {
        Self(Callee {
            client,
            faults,
            failure: Fault::PaymentCallFailureRate,
        })
    }

    pub async fn charge(
        &self,
        order_id: i64,
        amount: Money,
        method: PaymentMethod,
        request_id: &str,
        timeout: Duration,
    ) -> Reply<Payment> {
        let body = NewPayment {
            order_id,
            amount,
            method: Some(method),
        };
        let path = payments::paths::PAYMENTS;
        let answer = self
            .0
            .call(Method::POST, path, Some(&body), request_id, timeout)
            .await;
        sort_payment(self.0.service(), answer)
    }

    /// Refunds the order's charge, or records that it may never be charged.
    pub async fn void(&self, order_id: i64, request_id: &str, timeout: Duration) -> Reply<Payment> {
        let body = VoidRequest { order_id };
        let path = payments::paths::VOID;
        let answer = self
            .0
            .call(Method::POST, path, Some(&body), request_id, timeout)
            .await;
        sort_payment(self.0.service(), answer)
    }
}
