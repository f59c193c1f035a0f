//! Exact money: integer cents in storage and arithmetic, a JSON number with at most
//! two decimals on the wire (`59.9`, `119.8`).

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::RefOr;

/// An amount of money in cents, never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Money(i64);

/// The largest amount accepted anywhere: ten billion, in cents. Below 10^15 cents
/// every amount prints back exactly from an `f64`, so JSON round-trips are exact.
pub const MAX_CENTS: i64 = 1_000_000_000_000;

impl Money {
    pub const ZERO: Money = Money(0);

    pub fn from_cents(cents: i64) -> Option<Self> {
        (0..=MAX_CENTS).contains(&cents).then_some(Money(cents))
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// `self * quantity`, or `None` past [`MAX_CENTS`].
    pub fn times(self, quantity: i64) -> Option<Money> {
        self.0.checked_mul(quantity).and_then(Money::from_cents)
    }

    pub fn plus(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).and_then(Money::from_cents)
    }

    /// The amount in currency units, for metrics (never for arithmetic).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

/// Decoding from a database column of cents.
impl TryFrom<i64> for Money {
    type Error = String;
    fn try_from(cents: i64) -> Result<Self, String> {
        Money::from_cents(cents).ok_or_else(|| format!("amount out of range: {cents}"))
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % 100 == 0 {
            serializer.serialize_i64(self.0 / 100)
        } else {
            // cents < 2^53 is exact in f64 and the division is correctly rounded, so
            // the shortest representation printed is the two-decimal value itself.
            serializer.serialize_f64(self.as_f64())
        }
    }
}

const EXPECTED: &str = "a number >= 0 with at most two decimals, at most 10000000000";

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MoneyVisitor;

        impl Visitor<'_> for MoneyVisitor {
            type Value = Money;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Money, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|units| units.checked_mul(100))
                    .and_then(Money::from_cents)
                    .ok_or_else(|| E::custom(format!("invalid amount {v}: expected {EXPECTED}")))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Money, E> {
                v.checked_mul(100)
                    .and_then(Money::from_cents)
                    .ok_or_else(|| E::custom(format!("invalid amount {v}: expected {EXPECTED}")))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Money, E> {
                let err = || E::custom(format!("invalid amount {v}: expected {EXPECTED}"));
                if !v.is_finite() || v < 0.0 || v > (MAX_CENTS / 100) as f64 {
                    return Err(err());
                }
                let scaled = v * 100.0;
                let cents = scaled.round();
                // A decimal with two places lands within a few ulps of an integer; a third
                // decimal digit is at least 0.1 cent away, far above that below MAX_CENTS.
                let tolerance = cents.abs() * 8.0 * f64::EPSILON + 1e-9;
                if (scaled - cents).abs() > tolerance {
                    return Err(err());
                }
                Money::from_cents(cents as i64).ok_or_else(err)
            }
        }

        deserializer.deserialize_any(MoneyVisitor)
    }
}

impl utoipa::PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Number))
            .minimum(Some(0.0))
            .maximum(Some((MAX_CENTS / 100) as f64))
            .description(Some(
                "Amount in BRL with at most two decimals (exact; stored as integer cents).",
            ))
            .examples([serde_json::json!(59.9)])
            .into()
    }
}

impl utoipa::ToSchema for Money {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Money, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn parses_two_decimals_exactly() {
        assert_eq!(parse("59.90").unwrap().cents(), 5990);
        assert_eq!(parse("0.01").unwrap().cents(), 1);
        assert_eq!(parse("0.29").unwrap().cents(), 29);
        assert_eq!(parse("1.005e2").unwrap().cents(), 10050);
        assert_eq!(parse("12").unwrap().cents(), 1200);
        assert_eq!(parse("9999999999.99").unwrap().cents(), 999_999_999_999);
    }

    #[test]
    fn rejects_what_is_not_money() {
        for bad in [
            "-1",
            "0.001",
            "1.234",
            "3999.991",
            "9999999999.995",
            "10.000001",
            "1e300",
            "10000000001",
            "\"5\"",
            "null",
            "true",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn prints_the_shortest_exact_decimal() {
        let json = |c| serde_json::to_string(&Money::from_cents(c).unwrap()).unwrap();
        assert_eq!(json(5990), "59.9");
        assert_eq!(json(11980), "119.8");
        assert_eq!(json(1), "0.01");
        assert_eq!(json(500), "5");
        assert_eq!(json(999_999_999_999), "9999999999.99");
    }

    #[test]
    fn arithmetic_is_checked() {
        let price = Money::from_cents(5990).unwrap();
        assert_eq!(price.times(2), Money::from_cents(11980));
        assert_eq!(Money::from_cents(MAX_CENTS).unwrap().times(2), None);
        assert_eq!(price.to_string(), "59.90");
    }
}
