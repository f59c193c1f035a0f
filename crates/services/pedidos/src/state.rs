//! What every handler, saga runner and the recovery worker of pedidos-service share.

use std::sync::Arc;

use platform::db::Db;

use crate::clients::{Inventory, Payments};
use crate::metrics::OrderMetrics;
use crate::settings::Settings;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub inventory: Inventory,
    pub payments: Payments,
    pub metrics: OrderMetrics,
}
