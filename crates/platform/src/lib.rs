//! Shared platform code for every Pedidos Veloz component.
//!
//! A component (gateway, pedidos, pagamentos, estoque) is an axum `Router` plus
//! what this crate gives it: configuration helpers, telemetry, the database pool
//! and its migrations, the error type and its HTTP mapping, request extractors,
//! health and metrics endpoints, the HTTP client used to call other components,
//! and the server loop with graceful shutdown.

pub mod access_log;
pub mod balance;
pub mod batch;
pub mod client;
pub mod db;
pub mod error;
pub mod extract;
pub mod faults;
pub mod health;
pub mod lines;
pub mod log_writer;
pub mod metrics;
pub mod money;
pub mod page;
pub mod request_id;
pub mod server;
pub mod shutdown;
pub mod telemetry;
pub mod worker;

pub use error::ApiError;

/// The seed's names for the four components, used in `/health` and as the
/// `component` label of every metric and log line.
pub mod names {
    pub const GATEWAY: &str = "api-gateway";
    pub const PEDIDOS: &str = "pedidos-service";
    pub const PAGAMENTOS: &str = "pagamentos-service";
    pub const ESTOQUE: &str = "estoque-service";
}

/// Validates a required text field: trimmed not empty, at most `max` characters.
pub fn check_text(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not be empty"),
        ));
    }
    check_len(field, value, max)
}

/// Validates the length of a text field in characters, not bytes.
pub fn check_len(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    if value.chars().count() > max {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    if value.contains('\0') {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must not contain NUL characters"),
        ));
    }
    Ok(())
}

/// Validates an integer field against an inclusive range.
pub fn check_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if value < min || value > max {
        return Err(ApiError::invalid_field(
            field,
            format!("{field} must be between {min} and {max}"),
        ));
    }
    Ok(())
}

/// The current time at the precision PostgreSQL stores (microseconds), so a value
/// returned before a write equals the value read back after it, on both backends.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{SubsecRound, Utc};
    Utc::now().trunc_subsecs(6)
}
