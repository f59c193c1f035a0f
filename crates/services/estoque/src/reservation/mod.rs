//! Reservations: all-or-nothing holds of stock for one order, identified by the
//! caller's `reference`, later committed (sold) or released (back on sale). The wire
//! types are [`contracts::inventory`].
//!
//! Holds, commits and releases are applied by the group commit of `batch` (items
//! locked in id order, several requests per transaction); what a batch leaves (a
//! reservation not held, or inconsistent) is settled one at a time by `store`. `http`
//! holds the handlers, which use both.

pub mod batch;
pub mod http;
pub mod store;
