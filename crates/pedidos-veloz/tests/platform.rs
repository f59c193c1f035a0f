//! End-to-end tests of the whole platform over HTTP, each on SQLite and on PostgreSQL.

#[path = "platform/harness.rs"]
pub mod harness;

#[path = "platform/api.rs"]
mod api;
#[path = "platform/gateway.rs"]
mod gateway;
#[path = "platform/hostile.rs"]
mod hostile;
#[path = "platform/saga.rs"]
mod saga;
