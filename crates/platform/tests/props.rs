//! Property-based tests of the request parsing and validation code: money
//! round-trips exactly, JSON parsing never panics and always answers 400 on bad
//! input, text validation follows its rule for every string.

use platform::extract::parse_json;
use platform::money::{Money, MAX_CENTS};
use platform::{check_range, check_text};
use proptest::prelude::*;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Sample {
    name: String,
    quantity: i64,
    price: Money,
    #[serde(default)]
    tags: Vec<String>,
}

fn json_text() -> impl Strategy<Value = String> {
    // Mostly JSON-looking text, so the parser gets past the first byte.
    let atom = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"name\"".to_owned()),
        Just("\"quantity\"".to_owned()),
        Just("\"price\"".to_owned()),
        Just("\"tags\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1e400".to_owned()),
        Just("-0.001".to_owned()),
        Just("99999999999999999999".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        "[0-9.eE+-]{1,12}",
        "\"[^\"\\\\]{0,8}\"",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(atom, 0..24).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn money_round_trips_through_json(cents in 0..=MAX_CENTS) {
        let money = Money::from_cents(cents).unwrap();
        let json = serde_json::to_string(&money).unwrap();
        let back: Money = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, money, "{}", json);
        // The printed form with two decimals parses to the same amount.
        let printed: Money = serde_json::from_str(&money.to_string()).unwrap();
        prop_assert_eq!(printed, money);
        prop_assert!(!json.contains('e'), "no exponent: {}", json);
    }

    #[test]
    fn money_refuses_a_third_decimal(cents in 0..MAX_CENTS / 10, digit in 1u8..=9) {
        let text = format!("{}.{:02}{}", cents / 100, cents % 100, digit);
        prop_assert!(serde_json::from_str::<Money>(&text).is_err(), "{}", text);
    }

    #[test]
    fn money_refuses_negatives_and_too_large(cents in 1..=MAX_CENTS) {
        let negative = format!("-{}.{:02}", cents / 100, cents % 100);
        prop_assert!(serde_json::from_str::<Money>(&negative).is_err(), "{}", negative);
        let large = format!("{}", MAX_CENTS / 100 + cents);
        prop_assert!(serde_json::from_str::<Money>(&large).is_err(), "{}", large);
    }

    #[test]
    fn parse_json_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Err(err) = parse_json::<Sample>(&bytes) {
            prop_assert_eq!(err.status.as_u16(), 400);
        }
    }

    #[test]
    fn parse_json_never_panics_on_json_like_text(text in json_text()) {
        match parse_json::<Sample>(text.as_bytes()) {
            Ok(sample) => prop_assert!(sample.price.cents() <= MAX_CENTS),
            Err(err) => {
                prop_assert_eq!(err.status.as_u16(), 400);
                prop_assert!(err.code == "invalid_json" || err.code == "invalid_field");
                // A data error names the field, not a position in the input.
                if err.code == "invalid_field" {
                    prop_assert!(!err.message.contains(" at line "), "{}", err.message);
                }
            }
        }
    }

    #[test]
    fn check_text_follows_its_rule(value in any::<String>(), max in 0usize..64) {
        let ok = !value.trim().is_empty() && value.chars().count() <= max && !value.contains('\0');
        prop_assert_eq!(check_text("name", &value, max).is_ok(), ok, "{:?}", value);
    }

    #[test]
    fn check_range_is_inclusive(v in any::<i64>(), a in -1000i64..1000, len in 0i64..1000) {
        prop_assert_eq!(check_range("q", v, a, a + len).is_ok(), (a..=a + len).contains(&v));
    }
}
