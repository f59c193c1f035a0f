//! The answers about stock that the item calls and the reservations share.

use contracts::ErrorCode;
use platform::ApiError;

pub fn item_not_found(id: i64) -> ApiError {
    ApiError::not_found(
        ErrorCode::ItemNotFound.as_str(),
        format!("item {id} not found"),
    )
    .with("item_id", id)
}

pub fn insufficient_stock(item_id: i64, available: i64, requested: i64) -> ApiError {
    ApiError::conflict(
        ErrorCode::InsufficientStock.as_str(),
        format!(
            "insufficient stock for item {item_id}: {available} available, {requested} requested"
        ),
    )
    .with("item_id", item_id)
    .with("available", available)
    .with("requested", requested)
}
