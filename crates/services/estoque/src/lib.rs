//! estoque-service (inventory): the item catalogue and its stock, and the
//! all-or-nothing reservations that the order saga holds, commits or releases.

pub mod batch;
pub mod item;
pub mod reservation;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, patch, post};
use axum::Router;
use platform::db::{Db, Migrations};
use platform::metrics::MetricsBuilder;
use platform::server::Component;
use platform::shutdown::Shutdown;
use platform::{names, with_conn, ApiError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use utoipa::OpenApi;

pub static MIGRATIONS: Migrations = platform::service_migrations!();

/// Business metrics of the inventory.
#[derive(Clone)]
pub struct InventoryMetrics {
    pub stock_conflicts: Counter,
    reservations_held: Gauge,
    reserved_units: Gauge,
    /// Requests applied per group-commit transaction, by operation (hold|commit|release).
    pub batch_sizes: Family<OperationLabel, Histogram, fn() -> Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabel {
    pub operation: &'static str,
}

impl Default for InventoryMetrics {
    fn default() -> Self {
        Self {
            stock_conflicts: Counter::default(),
            reservations_held: Gauge::default(),
            reserved_units: Gauge::default(),
            // 1, 2, 4 ... 32 = batch::MAX_BATCH
            batch_sizes: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 2.0, 6))
            }),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub metrics: InventoryMetrics,
    pub batcher: batch::Batcher,
}

/// The public API (through the gateway).
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

/// Calls only pedidos-service makes; the gateway does not expose them.
#[derive(OpenApi)]
#[openapi(
    paths(
        reservation::create,
        reservation::get_one,
        reservation::commit,
        reservation::release,
        reservation::cancel
    ),
    components(schemas(
        reservation::Reservation,
        reservation::ReservationLine,
        reservation::ReservationStatus,
        reservation::NewReservation,
        reservation::LineRequest,
        reservation::ReferenceRequest
    ))
)]
pub struct InternalApi;

pub fn routes(state: AppState) -> Router {
    Router::new()
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
        .route("/reservations", post(reservation::create))
        .route("/reservations/cancel", post(reservation::cancel))
        .route("/reservations/{id}", get(reservation::get_one))
        .route("/reservations/{id}/commit", post(reservation::commit))
        .route("/reservations/{id}/release", post(reservation::release))
        // Shared, not cloned per request (its pools and metrics are reference counts).
        .with_state(Arc::new(state))
}

/// Builds the component on an open, migrated database and starts its metrics sampler.
pub fn build(db: Db, shutdown: &Shutdown) -> Component {
    let mut metrics = MetricsBuilder::new(names::ESTOQUE);
    let business = InventoryMetrics::default();
    let registry = metrics.registry();
    registry.register(
        "stock_conflicts",
        "Requests refused for insufficient stock",
        business.stock_conflicts.clone(),
    );
    registry.register(
        "reservations_held",
        "Reservations currently holding stock",
        business.reservations_held.clone(),
    );
    registry.register(
        "reservation_batch_size",
        "Requests applied per group-commit transaction, by operation",
        business.batch_sizes.clone(),
    );
    registry.register(
        "stock_reserved_units",
        "Units currently held for orders in flight",
        business.reserved_units.clone(),
    );
    let state = AppState {
        batcher: batch::Batcher::start(db.clone(), business.clone()),
        db: db.clone(),
        metrics: business,
    };
    tokio::spawn(sample(state.clone(), shutdown.stop.clone()));
    Component::new(names::ESTOQUE, routes(state), Some(db), metrics)
}

/// Refreshes the gauges that need a query, every few seconds.
async fn sample(state: AppState, stop: tokio_util::sync::CancellationToken) {
    let work = async {
        loop {
            if let Err(err) = sample_once(&state).await {
                tracing::debug!(error = %err, "inventory metrics sample failed");
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    };
    platform::server::until_stopped(&stop, work).await;
}

async fn sample_once(state: &AppState) -> Result<(), ApiError> {
    let (held, units): (i64, i64) = with_conn!(state.db.reader(), |conn| {
        sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM reservations WHERE status = 'held'), \
                    CAST(COALESCE((SELECT SUM(reserved) FROM items), 0) AS BIGINT)",
        )
        .fetch_one(&mut *conn)
        .await?
    });
    state.metrics.reservations_held.set(held);
    state.metrics.reserved_units.set(units);
    Ok(())
}
