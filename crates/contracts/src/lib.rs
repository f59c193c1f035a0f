//! The wire contract between the services: the types, paths and error codes that one
//! service sends and another reads, in one place, so that a change to a call is a
//! change to a type that both sides compile against.
//!
//! Every enum here has one style: Rust variants in `CamelCase`, written on the wire
//! (JSON, database text, metric labels) in `snake_case` through serde and strum, with
//! `as_str` for the text and `FromStr` to read it back.

pub mod identity;
pub mod inventory;
pub mod payments;

use serde::{Deserialize, Serialize};

/// Error codes that cross a service boundary: the called service answers them and
/// the caller (the order saga) acts on them, or passes them on to the client.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum ErrorCode {
    /// estoque: a line asks for more units than are available; nothing is held.
    InsufficientStock,
    /// estoque: a line names an item that does not exist; nothing is held.
    ItemNotFound,
    /// estoque, pagamentos: the reservation or payment is already in another final state.
    IllegalTransition,
    /// estoque: an item no longer holds the units of a reservation.
    ReservationInconsistent,
    /// estoque: the reservation's total exceeds the largest amount accepted.
    TotalTooLarge,
    /// pagamentos: the processor declined the charge (the 422 body is the payment).
    PaymentDeclined,
    /// pagamentos: the order was cancelled before any charge; it can never be charged.
    OrderVoided,
    /// pagamentos: the order was already charged another amount.
    PaymentAmountMismatch,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The code of an error body (`{"error": …, "code": …}`), if it is one of these.
    pub fn of(body: &serde_json::Value) -> Option<Self> {
        body.get("code")?.as_str()?.parse().ok()
    }
}

/// Replaces the `{id}` of a route template: `/reservations/{id}/commit` → `/reservations/7/commit`.
pub fn with_id(template: &str, id: i64) -> String {
    template.replacen("{id}", &id.to_string(), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_back_what_they_write() {
        for code in [
            ErrorCode::InsufficientStock,
            ErrorCode::OrderVoided,
            ErrorCode::PaymentAmountMismatch,
        ] {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
            assert_eq!(
                ErrorCode::of(&serde_json::json!({ "code": json })),
                Some(code)
            );
        }
        assert_eq!(
            ErrorCode::of(&serde_json::json!({"code": "no_such_code"})),
            None
        );
        assert_eq!(
            with_id("/reservations/{id}/commit", 7),
            "/reservations/7/commit"
        );
    }
}
