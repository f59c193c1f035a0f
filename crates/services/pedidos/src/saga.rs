//! The order saga (SPEC section 5): reserve all lines, charge the exact total, then
//! commit or release the reservation, and record the final status.
//!
//! Every remote step is idempotent (the reservation is keyed by `order-<id>`, the
//! payment by the order id), so the same code serves the first attempt in the
//! request, every retry by the recovery worker, and a restart after a crash at any
//! point. A runner owns a pending order through its lease and never issues a call
//! that could outlive it: each call's timeout is cut to the time the lease has left.

use std::time::{Duration, Instant};

use contracts::inventory::{order_reference, Reservation, ReservationStatus};
use contracts::payments::PaymentStatus;
use contracts::ErrorCode;
use platform::ApiError;

use crate::clients::{Refusal, Reply};
use crate::order::lease::now_ms;
use crate::order::model::{OrderRecord, OrderStatus};
use crate::order::store;
use crate::state::AppState;

/// The refusals of a release or cancel that mean the hold is no longer there to
/// release: committed by an earlier runner (the units stay sold), or its units taken
/// back through the per-item calls.
const NOT_HELD: [ErrorCode; 2] = [
    ErrorCode::IllegalTransition,
    ErrorCode::ReservationInconsistent,
];

fn not_held(refusal: &Refusal) -> bool {
    refusal.code.is_some_and(|code| NOT_HELD.contains(&code))
}

/// Time kept back from the lease so a runner stops before another may start.
const LEASE_MARGIN: Duration = Duration::from_millis(250);
/// A call with less time than this left is not started.
const MIN_CALL: Duration = Duration::from_millis(20);

struct Runner<'a> {
    app: &'a AppState,
    deadline: Instant,
    /// Run by the recovery worker: steps count as retries.
    retry: bool,
}

impl Runner<'_> {
    /// The timeout for the next call, or `None` if the lease has too little time left.
    fn budget(&self, step: &'static str) -> Option<Duration> {
        let left = self
            .deadline
            .checked_duration_since(Instant::now())?
            .checked_sub(LEASE_MARGIN)?;
        if left < MIN_CALL {
            return None;
        }
        if self.retry {
            self.app.metrics.retry(step);
        }
        Some(left.min(self.app.settings.saga_call_timeout()))
    }

    /// Leaves the order pending, to be retried after a backoff.
    async fn postpone(&self, mut record: OrderRecord, why: &str) -> Result<OrderRecord, ApiError> {
        tracing::warn!(
            order_id = record.id(),
            attempts = record.attempts,
            reason = why,
            "order left pending for the recovery worker"
        );
        let next = now_ms() + self.app.settings.backoff(record.attempts).as_millis() as i64;
        store::save(&self.app.db, &mut record, OrderStatus::Pending, Some(next)).await?;
        Ok(record)
    }

    /// Records a final status reached from `pending` (or from `paid`, for a cancellation).
    async fn finish(
        &self,
        mut record: OrderRecord,
        status: OrderStatus,
    ) -> Result<OrderRecord, ApiError> {
        let from = record.status();
        record.order.status = status;
        if store::save(&self.app.db, &mut record, from, None).await? {
            self.app.metrics.finished(status, record.order.total);
            tracing::info!(
                order_id = record.id(),
                status = status.as_str(),
                "order finished"
            );
            return Ok(record);
        }
        // Another runner finished it first (its lease had expired): show what it wrote.
        store::load(&self.app.db, record.id())
            .await?
            .ok_or_else(ApiError::internal)
    }
}

/// Runs the saga of a pending order as far as it can go before `deadline`.
pub async fn drive(
    app: &AppState,
    record: OrderRecord,
    deadline: Instant,
    retry: bool,
) -> Result<OrderRecord, ApiError> {
    let runner = Runner {
        app,
        deadline,
        retry,
    };
    if record.status() != OrderStatus::Pending {
        return Ok(record);
    }
    run(&runner, record).await
}

async fn run(r: &Runner<'_>, mut record: OrderRecord) -> Result<OrderRecord, ApiError> {
    let app = r.app;
    let rid = record.request_id.clone();
    let reference = order_reference(record.id());

    // 2. Hold every line at inventory, in one call.
    let Some(timeout) = r.budget("reserve") else {
        return r.postpone(record, "lease exhausted before reserve").await;
    };
    let reservation = match app
        .inventory
        .reserve(&reference, &record.lines(), &rid, timeout)
        .await
    {
        Reply::Done(reservation) => reservation,
        Reply::Refused(Refusal { status, body, .. }) => {
            // Nothing is held: insufficient stock (409), unknown item (404).
            record.failure = Some((status, body));
            return r.finish(record, OrderStatus::Rejected).await;
        }
        Reply::Unknown(why) => return r.postpone(record, &why).await,
    };
    record.apply_reservation(&reservation);
    if reservation.status == ReservationStatus::Released {
        // An earlier run was declined, or the order is being cancelled.
        return void_and_finish(r, record).await;
    }

    // 3. Charge the exact total (nothing to charge for free items).
    let payment = if reservation.total.cents() == 0 {
        None
    } else {
        let Some(timeout) = r.budget("pay") else {
            return r.postpone(record, "lease exhausted before pay").await;
        };
        match app
            .payments
            .charge(
                record.id(),
                reservation.total,
                record.order.payment_method,
                &rid,
                timeout,
            )
            .await
        {
            Reply::Done(payment) => Some(payment),
            Reply::Refused(Refusal {
                code: Some(ErrorCode::OrderVoided),
                ..
            }) => {
                tracing::info!(
                    order_id = record.id(),
                    "order was voided while its saga ran: cancelling"
                );
                return release_and_cancel(r, record, &reservation).await;
            }
            Reply::Refused(Refusal { status, body, .. }) => {
                tracing::error!(order_id = record.id(), %status, body = %body, "payment refused the charge");
                return r.postpone(record, "payment refused the charge").await;
            }
            Reply::Unknown(why) => return r.postpone(record, &why).await,
        }
    };

    // 4. Commit or release, then record the outcome.
    match payment.as_ref().map(|p| p.status) {
        None | Some(PaymentStatus::Approved) => {
            record.payment = payment;
            let Some(timeout) = r.budget("commit") else {
                return r.postpone(record, "lease exhausted before commit").await;
            };
            match app.inventory.commit(reservation.id, &rid, timeout).await {
                Reply::Done(_) => r.finish(record, OrderStatus::Paid).await,
                Reply::Refused(Refusal { status, body, .. }) => {
                    // The hold is gone (cancelled meanwhile): give the money back.
                    tracing::warn!(order_id = record.id(), %status, body = %body, "reservation could not be committed: refunding");
                    void_and_finish(r, record).await
                }
                Reply::Unknown(why) => r.postpone(record, &why).await,
            }
        }
        Some(PaymentStatus::Declined) => {
            record.payment = payment;
            let Some(timeout) = r.budget("release") else {
                return r.postpone(record, "lease exhausted before release").await;
            };
            match app.inventory.release(reservation.id, &rid, timeout).await {
                Reply::Done(_) => r.finish(record, OrderStatus::PaymentDeclined).await,
                Reply::Refused(Refusal { status, body, .. }) => {
                    tracing::error!(order_id = record.id(), %status, body = %body, "declined order's reservation could not be released");
                    r.postpone(record, "reservation could not be released")
                        .await
                }
                Reply::Unknown(why) => r.postpone(record, &why).await,
            }
        }
        // The order was cancelled while this runner worked.
        Some(PaymentStatus::Voided | PaymentStatus::Refunded) => {
            record.payment = payment;
            release_and_cancel(r, record, &reservation).await
        }
    }
}

/// Settles the payment of an order whose stock is no longer held, and ends it: the
/// reservation was released before we got here (an earlier run was declined, or the
/// order is being cancelled), or could not be committed after an approved charge. The
/// void refunds an approved charge, keeps a declined one, and fences the order against
/// any charge still on its way; the payment's status then says how the order ends.
async fn void_and_finish(r: &Runner<'_>, mut record: OrderRecord) -> Result<OrderRecord, ApiError> {
    let Some(timeout) = r.budget("cancel") else {
        return r.postpone(record, "lease exhausted before void").await;
    };
    match r
        .app
        .payments
        .void(record.id(), &record.request_id, timeout)
        .await
    {
        Reply::Done(payment) => {
            let declined = payment.status == PaymentStatus::Declined;
            record.payment = Some(payment);
            let status = if declined {
                OrderStatus::PaymentDeclined
            } else {
                OrderStatus::Cancelled
            };
            r.finish(record, status).await
        }
        Reply::Refused(Refusal { body, .. }) => {
            tracing::error!(order_id = record.id(), body = %body, "payment void refused");
            r.postpone(record, "payment void refused").await
        }
        Reply::Unknown(why) => r.postpone(record, &why).await,
    }
}

/// Releases the hold (the payment is already voided) and ends the order as cancelled.
async fn release_and_cancel(
    r: &Runner<'_>,
    record: OrderRecord,
    reservation: &Reservation,
) -> Result<OrderRecord, ApiError> {
    let Some(timeout) = r.budget("release") else {
        return r.postpone(record, "lease exhausted before release").await;
    };
    match r
        .app
        .inventory
        .release(reservation.id, &record.request_id, timeout)
        .await
    {
        // Already committed by an earlier runner: the payment is refunded, the units stay sold.
        Reply::Done(_) => r.finish(record, OrderStatus::Cancelled).await,
        Reply::Refused(refusal) if not_held(&refusal) => {
            r.finish(record, OrderStatus::Cancelled).await
        }
        Reply::Refused(Refusal { body, .. }) => {
            tracing::error!(order_id = record.id(), body = %body, "reservation release refused");
            r.postpone(record, "reservation release refused").await
        }
        Reply::Unknown(why) => r.postpone(record, &why).await,
    }
}

/// `POST /orders/{id}/cancel` for a paid order, or a pending one whose lease the
/// caller holds: void the payment first (so no charge can follow), then release
/// the hold (or fence the reference), then record `cancelled`.
pub async fn cancel(
    app: &AppState,
    mut record: OrderRecord,
    request_id: &str,
) -> Result<OrderRecord, ApiError> {
    let r = Runner {
        app,
        deadline: Instant::now() + app.settings.saga_budget(),
        retry: false,
    };
    let was = record.status();
    let timeout = app.settings.saga_call_timeout();
    match app.payments.void(record.id(), request_id, timeout).await {
        Reply::Done(payment) => record.payment = Some(payment),
        Reply::Refused(Refusal { status, body, .. }) => {
            tracing::error!(order_id = record.id(), %status, body = %body, "payment void refused");
            return abandon(&r, was, record, ApiError::internal()).await;
        }
        Reply::Unknown(why) => {
            tracing::warn!(order_id = record.id(), reason = %why, "cancellation: payments unavailable");
            return abandon(&r, was, record, ApiError::unavailable("pagamentos-service")).await;
        }
    }
    if was == OrderStatus::Pending {
        let reference = order_reference(record.id());
        match app.inventory.cancel(&reference, request_id, timeout).await {
            Reply::Done(_) => {}
            Reply::Refused(refusal) if not_held(&refusal) => {}
            Reply::Refused(Refusal { status, body, .. }) => {
                tracing::error!(order_id = record.id(), %status, body = %body, "reservation cancel refused");
                return abandon(&r, was, record, ApiError::internal()).await;
            }
            Reply::Unknown(why) => {
                tracing::warn!(order_id = record.id(), reason = %why, "cancellation: inventory unavailable");
                return abandon(&r, was, record, ApiError::unavailable("estoque-service")).await;
            }
        }
    }
    r.finish(record, OrderStatus::Cancelled).await
}

/// A cancellation that could not finish: a pending order goes back to the worker,
/// which will find the payment voided and complete the cancellation.
async fn abandon(
    r: &Runner<'_>,
    was: OrderStatus,
    record: OrderRecord,
    err: ApiError,
) -> Result<OrderRecord, ApiError> {
    if was == OrderStatus::Pending {
        r.postpone(record, "cancellation could not finish").await?;
    }
    Err(err)
}
