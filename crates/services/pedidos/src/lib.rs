//! pedidos-service (orders): orders and the saga that reserves stock, charges the
//! payment and settles the reservation, with a recovery worker that finishes every
//! order a crash or an outage left `pending`.

pub mod clients;
pub mod order;
pub mod recovery;
pub mod saga;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use platform::client::ServiceClient;
use platform::db::{Db, Migrations};
use platform::metrics::MetricsBuilder;
use platform::money::Money;
use platform::names;
use platform::server::Component;
use platform::shutdown::Shutdown;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use utoipa::OpenApi;

use clients::{Inventory, Payments};
use order::OrderStatus;

pub static MIGRATIONS: Migrations = platform::service_migrations!();

/// Where the services pedidos calls are (set by the binary in all-in-one mode).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "orders_settings_upstreams")]
pub struct Upstreams {
    /// Base URL of estoque-service (inventory).
    #[arg(
        long,
        env = "ESTOQUE_SERVICE_URL",
        default_value = "http://localhost:5003"
    )]
    pub estoque_service_url: String,
    /// Base URL of pagamentos-service (payments).
    #[arg(
        long,
        env = "PAGAMENTOS_SERVICE_URL",
        default_value = "http://localhost:5002"
    )]
    pub pagamentos_service_url: String,
}

#[derive(Debug, Clone, clap::Args)]
#[group(id = "orders_settings")]
#[command(next_help_heading = "Orders (pedidos-service)")]
pub struct Settings {
    /// Timeout of each call the saga makes to inventory or payments, in milliseconds.
    #[arg(long, env = "SAGA_CALL_TIMEOUT_MS", default_value_t = 3000)]
    pub saga_call_timeout_ms: u64,
    /// How long one saga runner owns a pending order; a crashed runner's orders are
    /// picked up by the recovery worker after this, in milliseconds.
    #[arg(long, env = "ORDER_LEASE_MS", default_value_t = 15000, value_parser = clap::value_parser!(u64).range(1000..))]
    pub order_lease_ms: u64,
    /// How often the recovery worker looks for pending orders, and the base of its backoff, in milliseconds.
    #[arg(long, env = "RECOVERY_INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub recovery_interval_ms: u64,
}

impl Settings {
    pub fn upstream_timeout(&self) -> Duration {
        Duration::from_millis(self.saga_call_timeout_ms)
    }
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.order_lease_ms)
    }
    /// The time a saga runner may spend: its lease.
    pub fn saga_budget(&self) -> Duration {
        self.lease()
    }
    pub fn recovery_interval(&self) -> Duration {
        Duration::from_millis(self.recovery_interval_ms)
    }
    pub fn backoff(&self, attempts: i32) -> Duration {
        recovery::backoff(self.recovery_interval(), attempts)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabel {
    step: &'static str,
}

/// Order value buckets, in BRL.
const VALUE_BUCKETS: [f64; 10] = [
    10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

#[derive(Clone)]
pub struct OrderMetrics {
    pub created: Counter,
    finished: Family<StatusLabel, Counter>,
    value: Histogram,
    retries: Family<StepLabel, Counter>,
    pending: Gauge,
    pending_age: Gauge<f64, AtomicU64>,
}

impl OrderMetrics {
    fn register(builder: &mut MetricsBuilder) -> Self {
        let metrics = Self {
            created: Counter::default(),
            finished: Family::default(),
            value: Histogram::new(VALUE_BUCKETS.iter().copied()),
            retries: Family::default(),
            pending: Gauge::default(),
            pending_age: Gauge::default(),
        };
        let registry = builder.registry();
        registry.register("orders_created", "Orders recorded", metrics.created.clone());
        registry.register(
            "orders_finished",
            "Orders that reached a final status, by status",
            metrics.finished.clone(),
        );
        registry.register(
            "order_value_brl",
            "Value of paid orders, in BRL",
            metrics.value.clone(),
        );
        registry.register(
            "saga_step_retries",
            "Saga steps repeated by the recovery worker, by step",
            metrics.retries.clone(),
        );
        registry.register(
            "orders_pending",
            "Orders waiting for the outcome of a saga step",
            metrics.pending.clone(),
        );
        registry.register(
            "orders_pending_oldest_age_seconds",
            "Age of the oldest pending order (0 when none)",
            metrics.pending_age.clone(),
        );
        metrics
    }

    pub fn retry(&self, step: &'static str) {
        self.retries.get_or_create(&StepLabel { step }).inc();
    }

    pub fn finished(&self, status: OrderStatus, total: Money) {
        self.finished
            .get_or_create(&StatusLabel {
                status: status.as_str(),
            })
            .inc();
        if status == OrderStatus::Paid {
            self.value.observe(total.as_f64());
        }
    }

    pub fn set_pending(&self, count: i64, oldest_age_seconds: f64) {
        self.pending.set(count);
        self.pending_age.set(oldest_age_seconds);
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub inventory: Inventory,
    pub payments: Payments,
    pub metrics: OrderMetrics,
}

#[derive(OpenApi)]
#[openapi(
    paths(order::create, order::list, order::get_one, order::cancel),
    components(schemas(
        order::Order,
        order::OrderLine,
        order::OrderStatus,
        order::PaymentMethod,
        order::NewOrder,
        order::LineRequest,
        order::OrderCreated,
        order::OrderOnly
    ))
)]
pub struct PublicApi;

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/orders", get(order::list).post(order::create))
        .route("/orders/{id}", get(order::get_one))
        .route("/orders/{id}/cancel", post(order::cancel))
        // Shared, not cloned per request (its pools and metrics are reference counts).
        .with_state(Arc::new(state))
}

/// Builds the component and starts its recovery worker.
pub fn build(db: Db, settings: &Settings, upstreams: &Upstreams, shutdown: &Shutdown) -> Component {
    let mut metrics = MetricsBuilder::new(names::PEDIDOS);
    let business = OrderMetrics::register(&mut metrics);
    let timeout = settings.upstream_timeout();
    let state = AppState {
        db: db.clone(),
        settings: Arc::new(settings.clone()),
        inventory: Inventory(ServiceClient::new(
            names::ESTOQUE,
            &upstreams.estoque_service_url,
            timeout,
            256,
        )),
        payments: Payments(ServiceClient::new(
            names::PAGAMENTOS,
            &upstreams.pagamentos_service_url,
            timeout,
            256,
        )),
        metrics: business,
    };
    tokio::spawn(recovery::run(state.clone(), shutdown.stop.clone()));
    Component::new(names::PEDIDOS, routes(state), Some(db), metrics)
}
