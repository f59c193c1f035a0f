//! What every handler of estoque-service shares.

use platform::db::Db;
use platform::faults::Faults;

use crate::metrics::InventoryMetrics;
use crate::reservation::batch::Batcher;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub metrics: InventoryMetrics,
    /// The group commit of holds, commits and releases.
    pub batcher: Batcher,
    pub faults: Faults,
}
