//! What an order is: its statuses, its lines, what the API shows of it, and what the
//! saga keeps about it.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use contracts::inventory::Reservation;
use contracts::payments::{Payment, PaymentMethod};
use platform::lines::LineRequest;
use platform::money::Money;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum OrderStatus {
    Pending,
    Paid,
    PaymentDeclined,
    Rejected,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
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
    pub payment_method: PaymentMethod,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An order with what the saga keeps about it.
#[derive(Debug, Clone)]
pub struct OrderRecord {
    pub order: Order,
    /// Whose order it is (a customer identity); `None` for orders placed in the open
    /// mode, by an admin, or before ownership existed.
    pub owner: Option<String>,
    pub reservation_id: Option<i64>,
    /// The payment as pagamentos-service last answered it.
    pub payment: Option<Payment>,
    /// Why the order was rejected: the status and error body inventory answered.
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
    pub payment: Option<Payment>,
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
    /// Only orders of this customer (exact match); a customer's list holds only their
    /// own orders whatever this says.
    pub customer: Option<String>,
    /// Page size, 1-1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Return orders with an id greater than this.
    #[param(minimum = 0)]
    pub after: Option<i64>,
}

/// A new order as the request describes it, before it is recorded.
pub struct Draft<'a> {
    pub customer: &'a str,
    pub owner: Option<&'a str>,
    pub lines: &'a BTreeMap<i64, i64>,
    pub method: PaymentMethod,
    pub idempotency_key: Option<&'a str>,
    pub fingerprint: &'a str,
    pub request_id: &'a str,
    /// Epoch ms until which the request that records it owns the order.
    pub lease_until: i64,
}

/// What inserting a new order found.
pub enum Inserted {
    New(OrderRecord),
    /// An order with the same `Idempotency-Key` exists.
    Existing(OrderRecord),
}
