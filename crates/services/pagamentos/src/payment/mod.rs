//! Payments: the simulated processor's charges, at most one per order, refunds, and
//! the `void` fence used when an order is cancelled. The wire types are
//! [`contracts::payments`]; `store` holds the SQL, `http` the handlers.

pub mod http;
pub mod store;
