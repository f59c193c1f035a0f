//! Orders, by layer: `model` (what an order is), `store` (its SQL, on either backend)
//! with `lease` (who owns a pending order), `http` (the calls of pedidos-service). The saga ([`crate::saga`]) moves an order
//! from `pending` to a final status with `model` and `store`; `http` starts it.

pub mod http;
pub mod lease;
pub mod model;
pub mod store;
