//! pedidos-service (orders): orders and the saga that reserves stock, charges the
//! payment and settles the reservation, with a recovery worker that finishes every
//! order a crash or an outage left `pending`.

pub mod caller;
pub mod clients;
pub mod metrics;
pub mod order;
pub mod recovery;
pub mod saga;
pub mod settings;
pub mod state;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use platform::balance::{Balancing, Endpoints};
use platform::client::{Retry, ServiceClient};
use platform::db::{Db, Migrations};
use platform::faults::Faults;
use platform::metrics::MetricsBuilder;
use platform::names;
use platform::server::Component;
use platform::worker::Workers;
use utoipa::OpenApi;

use clients::{Inventory, Payments};
use metrics::OrderMetrics;
use order::{http, model};
pub use settings::{Settings, Upstreams};
use state::AppState;

pub static MIGRATIONS: Migrations = platform::service_migrations!();

/// Idle keep-alive connections kept to each service the saga calls.
const MAX_IDLE_CONNECTIONS: usize = 256;

#[derive(OpenApi)]
#[openapi(
    paths(http::create, http::list, http::get_one, http::cancel),
    components(schemas(
        model::Order,
        model::OrderLine,
        model::OrderStatus,
        model::NewOrder,
        model::OrderCreated,
        model::OrderOnly,
        contracts::payments::PaymentMethod,
        contracts::payments::Payment,
        platform::lines::LineRequest
    ))
)]
pub struct PublicApi;

pub fn routes(state: AppState) -> Router {
    Router::new()
        .route("/orders", get(http::list).post(http::create))
        .route("/orders/{id}", get(http::get_one))
        .route("/orders/{id}/cancel", post(http::cancel))
        // Shared, not cloned per request (its pools and metrics are reference counts).
        .with_state(Arc::new(state))
}

/// Builds the component with its recovery worker; fails on an invalid service URL.
pub fn build(
    db: Db,
    settings: &Settings,
    upstreams: &Upstreams,
    faults: Faults,
) -> Result<Component, String> {
    let mut metrics = MetricsBuilder::new(names::PEDIDOS);
    let business = OrderMetrics::register(&mut metrics);
    let timeout = settings.saga_call_timeout();
    // Every call of the saga names its order, so a repeat is the same call: it may be
    // sent again to another replica after a 503 or a broken connection.
    let client = |service, url: &str| {
        let endpoints = Endpoints::parse(service, url, Balancing::default())?;
        Ok::<_, String>(ServiceClient::new(
            endpoints,
            timeout,
            MAX_IDLE_CONNECTIONS,
            Retry::Idempotent,
        ))
    };
    let state = AppState {
        db: db.clone(),
        settings: Arc::new(settings.clone()),
        inventory: Inventory::new(
            client(names::ESTOQUE, &upstreams.estoque_service_url)?,
            faults.clone(),
        ),
        payments: Payments::new(
            client(names::PAGAMENTOS, &upstreams.pagamentos_service_url)?,
            faults.clone(),
        ),
        metrics: business,
    };
    let workers = Workers::new();
    recovery::start(&workers, state.clone());
    Ok(
        Component::new(names::PEDIDOS, routes(state), Some(db), metrics)
            .with_workers(workers)
            .with_faults(faults),
    )
}
