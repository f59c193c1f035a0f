//! pagamentos-service's charges, as pedidos-service (and the public API) make them:
//! at most one payment per order, refunded or voided when the order is cancelled.

use chrono::{DateTime, Utc};
use platform::money::Money;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Route templates of the payment calls.
pub mod paths {
    pub const PAYMENTS: &str = "/payments";
    /// Internal: only pedidos-service calls it; the gateway does not expose it.
    pub const VOID: &str = "/payments/void";
    pub const ONE: &str = "/payments/{id}";
    pub const REFUND: &str = "/payments/{id}/refund";
}

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
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PaymentMethod {
    #[default]
    CreditCard,
    DebitCard,
    Pix,
    Boleto,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
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
pub enum PaymentStatus {
    Approved,
    Declined,
    Refunded,
    /// The order was cancelled before any charge: no charge will ever be made for it.
    Voided,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    pub id: i64,
    pub order_id: i64,
    pub amount: Money,
    pub method: PaymentMethod,
    pub status: PaymentStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// `POST /payments`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewPayment {
    /// The order paid for, >= 1; at most one payment per order.
    #[schema(minimum = 1)]
    pub order_id: i64,
    /// > 0, at most two decimals.
    pub amount: Money,
    #[serde(default)]
    pub method: Option<PaymentMethod>,
}

/// `POST /payments/void`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VoidRequest {
    pub order_id: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_speak_snake_case_everywhere() {
        assert_eq!(PaymentMethod::DebitCard.as_str(), "debit_card");
        assert_eq!(
            "debit_card".parse::<PaymentMethod>(),
            Ok(PaymentMethod::DebitCard)
        );
        assert_eq!(
            serde_json::to_value(PaymentStatus::Voided).unwrap(),
            PaymentStatus::Voided.as_str()
        );
        assert!("Voided".parse::<PaymentStatus>().is_err());
    }
}
