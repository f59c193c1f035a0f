//! pagamentos-service (payments): a simulated payment processor, idempotent per
//! order, with refunds and the `void` fence used when an order is cancelled.

pub mod payment;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use platform::batch::Batches;
use platform::db::{Db, Migrations};
use platform::metrics::MetricsBuilder;
use platform::names;
use platform::server::Component;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use utoipa::OpenApi;

use payment::{OutcomeLabels, Processor};

pub static MIGRATIONS: Migrations = platform::service_migrations!();

/// Settings of the simulated processor.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "payments_settings")]
#[command(next_help_heading = "Payments (pagamentos-service)")]
pub struct Settings {
    /// Probability that a payment is declined (0 to 1; the seed approved 90 %).
    #[arg(long, env = "PAYMENT_DECLINE_RATE", default_value_t = 0.1, value_parser = parse_rate)]
    pub payment_decline_rate: f64,
    /// Seed of the decline draws, to make a run repeatable (random when unset).
    #[arg(long, env = "PAYMENT_RANDOM_SEED")]
    pub payment_random_seed: Option<u64>,
    /// Simulated processor delay per charge, in milliseconds.
    #[arg(long, env = "PAYMENT_LATENCY_MS", default_value_t = 0)]
    pub payment_latency_ms: u64,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}

#[derive(Clone, Default)]
pub struct PaymentMetrics {
    pub payments: Family<OutcomeLabels, Counter>,
    pub refunds: Counter,
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub processor: Arc<Processor>,
    pub metrics: PaymentMetrics,
    /// Group commit of the charges: one multi-row INSERT per batch.
    pub charges: Batches<payment::NewCharge, Option<payment::Payment>>,
}

/// The public API (through the gateway).
#[derive(OpenApi)]
#[openapi(
    paths(payment::create, payment::list, payment::get_one, payment::refund),
    components(schemas(
        payment::Payment,
        payment::NewPayment,
        payment::Method,
        payment::PaymentStatus
    ))
)]
pub struct PublicApi;

/// Calls only pedidos-service makes; the gateway does not expose them.
#[derive(OpenApi)]
#[openapi(paths(payment::void), components(schemas(payment::VoidRequest)))]
pub struct InternalApi;

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/payments", get(payment::list).post(payment::create))
        .route("/payments/void", post(payment::void))
        .route("/payments/{id}", get(payment::get_one))
        .route("/payments/{id}/refund", post(payment::refund))
        // Shared, not cloned per request (its pools and metrics are reference counts).
        .with_state(Arc::new(state))
}

pub fn build(db: Db, settings: &Settings) -> Component {
    let mut metrics = MetricsBuilder::new(names::PAGAMENTOS);
    let business = PaymentMetrics::default();
    metrics.registry().register(
        "payments",
        "Charges by outcome and method",
        business.payments.clone(),
    );
    metrics.registry().register(
        "payments_refunds",
        "Payments refunded",
        business.refunds.clone(),
    );
    let processor = Processor::new(
        settings.payment_decline_rate,
        settings.payment_random_seed,
        Duration::from_millis(settings.payment_latency_ms),
    );
    let sizes = Histogram::new(exponential_buckets(1.0, 2.0, 7)); // 1 .. 64
    metrics.registry().register(
        "payment_batch_size",
        "Charges recorded per group-commit INSERT",
        sizes.clone(),
    );
    let charges = {
        let db = db.clone();
        // 64 charges x 6 parameters stay far under every bind-parameter limit.
        Batches::start(names::PAGAMENTOS, 2, 64, sizes, move |batch| {
            payment::record_charges(db.clone(), batch)
        })
    };
    let state = AppState {
        db: db.clone(),
        processor: Arc::new(processor),
        metrics: business,
        charges,
    };
    Component::new(names::PAGAMENTOS, routes(state), Some(db), metrics)
}
