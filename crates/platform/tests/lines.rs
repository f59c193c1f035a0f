//! Property-based tests of order line merging: repeated item ids are summed, units
//! are never lost or invented, and the limits hold for every input.

use std::collections::BTreeMap;

use platform::lines::{merge_lines, LineRequest, MAX_LINES, MAX_LINE_QUANTITY};
use proptest::prelude::*;

fn lines(raw: &[(i64, i64)]) -> Vec<LineRequest> {
    raw.iter()
        .map(|&(item_id, quantity)| LineRequest { item_id, quantity })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn valid_lines_merge_exactly(raw in prop::collection::vec((1i64..6, 1i64..=MAX_LINE_QUANTITY / 4), 1..=MAX_LINES)) {
        let mut expected: BTreeMap<i64, i64> = BTreeMap::new();
        for &(item, quantity) in &raw {
            *expected.entry(item).or_default() += quantity;
        }
        let too_many = expected.values().any(|&q| q > MAX_LINE_QUANTITY);
        match merge_lines(&lines(&raw)) {
            Ok(merged) => {
                prop_assert!(!too_many);
                prop_assert_eq!(merged, expected);
            }
            Err(err) => {
                prop_assert!(too_many, "refused valid lines: {}", err);
                prop_assert_eq!(err.status.as_u16(), 400);
            }
        }
    }

    #[test]
    fn any_lines_are_validated_without_panicking(raw in prop::collection::vec((any::<i64>(), any::<i64>()), 0..=MAX_LINES + 2)) {
        match merge_lines(&lines(&raw)) {
            Ok(merged) => {
                prop_assert!(!raw.is_empty() && raw.len() <= MAX_LINES);
                prop_assert!(merged.iter().all(|(&i, &q)| i >= 1 && (1..=MAX_LINE_QUANTITY).contains(&q)));
                let total: i64 = raw.iter().map(|l| l.1).sum();
                prop_assert_eq!(merged.values().sum::<i64>(), total);
            }
            Err(err) => {
                prop_assert_eq!(err.status.as_u16(), 400);
                prop_assert_eq!(err.code, "invalid_field");
            }
        }
    }
}
