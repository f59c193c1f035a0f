//! pagamentos-service (payments): a simulated payment processor, idempotent per
//! order, with refunds and the `void` fence used when an order is cancelled.

pub mod payment;
pub mod processor;
pub mod settings;
pub mod state;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use contracts::payments::paths;
use platform::batch::Batches;
use platform::db::{Db, Migrations};
use platform::faults::Faults;
use platform::metrics::MetricsBuilder;
use platform::names;
use platform::server::Component;
use platform::worker::Workers;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use utoipa::OpenApi;

use payment::{http, store};
use processor::Processor;
pub use settings::Settings;
use state::{AppState, PaymentMetrics};

pub static MIGRATIONS: Migrations = platform::service_migrations!();

/// The public API (through the gateway). `POST /payments/void` is internal: only
/// pedidos-service calls it, and the gateway does not expose it.
#[derive(OpenApi)]
#[openapi(
    paths(http::create, http::list, http::get_one, http::refund),
    components(schemas(
        contracts::payments::Payment,
        contracts::payments::NewPayment,
        contracts::payments::PaymentMethod,
        contracts::payments::PaymentStatus
    ))
)]
pub struct PublicApi;

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route(paths::PAYMENTS, get(http::list).post(http::create))
        .route(paths::VOID, post(http::void))
        .route(paths::ONE, get(http::get_one))
        .route(paths::REFUND, post(http::refund))
        // Shared, not cloned per request (its pools and metrics are reference counts).
        .with_state(Arc::new(state))
}

pub fn build(db: Db, settings: &Settings, faults: Faults) -> Component {
    let mut metrics = MetricsBuilder::new(names::PAGAMENTOS);
    let sizes = Histogram::new(exponential_buckets(1.0, 2.0, 7)); // 1 .. 64
    let business = PaymentMetrics::register(&mut metrics, &sizes);
    let processor = Processor::new(
        settings.payment_decline_rate,
        settings.payment_random_seed,
        Duration::from_millis(settings.payment_latency_ms),
        faults.clone(),
    );
    let workers = Workers::new();
    let charges = {
        let db = db.clone();
        // 64 charges x 6 parameters stay far under every bind-parameter limit.
        Batches::start(&workers, names::PAGAMENTOS, 2, 64, sizes, move |batch| {
            store::record_charges(db.clone(), batch)
        })
    };
    let state = AppState {
        db: db.clone(),
        processor: Arc::new(processor),
        metrics: business,
        charges,
    };
    Component::new(names::PAGAMENTOS, routes(state), Some(db), metrics)
        .with_workers(workers)
        .with_faults(faults)
}
