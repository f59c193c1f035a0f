//! estoque-service's reservations, as pedidos-service calls them: all-or-nothing holds
//! of stock for one order, keyed by the caller's `reference`, later committed (sold) or
//! released (back on sale).

use chrono::{DateTime, Utc};
use platform::lines::LineRequest;
use platform::money::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Route templates of the reservation calls.
pub mod paths {
    pub const RESERVATIONS: &str = "/reservations";
    pub const CANCEL: &str = "/reservations/cancel";
    pub const ONE: &str = "/reservations/{id}";
    pub const COMMIT: &str = "/reservations/{id}/commit";
    pub const RELEASE: &str = "/reservations/{id}/release";
}

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
pub enum ReservationStatus {
    Held,
    Committed,
    Released,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReservationLine {
    pub item_id: i64,
    pub item_name: String,
    pub quantity: i64,
    pub unit_price: Money,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Reservation {
    pub id: i64,
    pub reference: String,
    pub status: ReservationStatus,
    pub items: Vec<ReservationLine>,
    /// Sum of quantity x unit price over the lines.
    pub total: Money,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /reservations`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewReservation {
    /// The caller's idempotency reference, e.g. `order-42`.
    pub reference: String,
    pub items: Vec<LineRequest>,
}

/// `POST /reservations/cancel`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReferenceRequest {
    pub reference: String,
}

/// The reference under which pedidos-service holds the stock of an order.
pub fn order_reference(order_id: i64) -> String {
    format!("order-{order_id}")
}
