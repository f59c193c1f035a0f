//! The item lines of an order or a reservation (`{"item_id", "quantity"}`), validated
//! and merged the same way by pedidos-service and estoque-service.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{check_range, ApiError};

pub const MAX_LINES: usize = 100;
pub const MAX_LINE_QUANTITY: i64 = 10_000;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LineRequest {
    #[schema(minimum = 1)]
    pub item_id: i64,
    /// 1-10000; lines with the same item are merged.
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: i64,
}

/// Validates the lines and merges repeated item ids (in item-id order).
pub fn merge_lines(lines: &[LineRequest]) -> Result<BTreeMap<i64, i64>, ApiError> {
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(ApiError::invalid_field(
            "items",
            format!("items must have 1 to {MAX_LINES} lines"),
        ));
    }
    let mut merged = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.item_id < 1 {
            return Err(ApiError::invalid_field(
                &format!("items[{i}].item_id"),
                "item_id must be >= 1",
            ));
        }
        check_range(
            &format!("items[{i}].quantity"),
            line.quantity,
            1,
            MAX_LINE_QUANTITY,
        )?;
        let sum: &mut i64 = merged.entry(line.item_id).or_insert(0);
        *sum += line.quantity;
        check_range(&format!("items[{i}].quantity"), *sum, 1, MAX_LINE_QUANTITY)?;
    }
    Ok(merged)
}
