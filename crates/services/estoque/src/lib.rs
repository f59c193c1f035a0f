//! estoque-service (inventory): the item catalogue and its stock, and the
//! all-or-nothing reservations that the order saga holds, commits or releases.

pub mod item;
pub mod metrics;
pub mod reservation;
pub mod state;
pub mod stock;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, patch, post};
use axum::Router;
use contracts::inventory::paths;
use platform::db::{Db, Migrations};
use platform::faults::{Fault, Faults};
use platform::metrics::MetricsBuilder;
use platform::names;
use platform::server::Component;
use platform::worker::Workers;
use utoipa::OpenApi;

use metrics::InventoryMetrics;
use reservation::batch::Batcher;
use reservation::http as reservations;
use state::AppState;

pub static MIGRATIONS: Migrations = platform::service_migrations!();

/// How often the gauges that need a query are refreshed.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// The public API (through the gateway). The reservation calls are internal: only
/// pedidos-service makes them, and the gateway does not expose them.
#[derive(OpenApi)]
#[openapi(
    paths(
        item::list,
        item::get_one,
        item::create,
        item::replace,
        item::patch,
        item::delete,
        item::reserve,
        item::write_off,
        item::release
    ),
    components(schemas(
        item::Item,
        item::NewItem,
        item::ItemReplacement,
        item::ItemPatch,
        item::StockMove,
        item::StockMoveResult,
        platform::error::ErrorBody
    ))
)]
pub struct PublicApi;

pub fn routes(state: AppState) -> Router {
    let faults = state.faults.clone();
    let routes = Router::new()
        .route("/items", get(item::list).post(item::create))
        .route(
            "/items/{id}",
            get(item::get_one)
                .put(item::replace)
                .patch(item::patch)
                .delete(item::delete),
        )
        .route("/items/{id}/reserve", patch(item::reserve))
        .route("/items/{id}/write-off", patch(item::write_off))
        .route("/items/{id}/release", patch(item::release))
        .route(paths::RESERVATIONS, post(reservations::create))
        .route(paths::CANCEL, post(reservations::cancel))
        .route(paths::ONE, get(reservations::get_one))
        .route(paths::COMMIT, post(reservations::commit))
        .route(paths::RELEASE, post(reservations::release))
        // Shared, not cloned per request (its pools and metrics are reference counts).
        .with_state(Arc::new(state));
    if faults.is_enabled() {
        routes.route_layer(axum::middleware::from_fn_with_state(faults, inject_faults))
    } else {
        routes
    }
}

/// The inventory's faults: added latency before every call, and a share of calls
/// answered 503 as if the service were down (the saga then keeps the order pending).
async fn inject_faults(
    axum::extract::State(faults): axum::extract::State<Faults>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    faults.wait(Fault::InventoryLatencyMs).await;
    if faults.strikes(Fault::InventoryErrorRate) {
        return platform::ApiError::unavailable(names::ESTOQUE)
            .with("fault", Fault::InventoryErrorRate)
            .into_response();
    }
    next.run(req).await
}

/// Builds the component on an open, migrated database, with its group-commit workers
/// and its metrics sampler.
pub fn build(db: Db, faults: Faults) -> Component {
    let mut metrics = MetricsBuilder::new(names::ESTOQUE);
    let business = InventoryMetrics::register(&mut metrics);
    let workers = Workers::new();
    {
        let (db, business) = (db.clone(), business.clone());
        workers.every("inventory-sampler", SAMPLE_INTERVAL, move || {
            let (db, business) = (db.clone(), business.clone());
            async move { business.sample(&db).await }
        });
    }
    let state = AppState {
        batcher: Batcher::start(&workers, db.clone(), business.clone()),
        db: db.clone(),
        metrics: business,
        faults: faults.clone(),
    };
    Component::new(names::ESTOQUE, routes(state), Some(db), metrics)
        .with_workers(workers)
        .with_faults(faults)
}
