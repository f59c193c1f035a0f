//! The business metrics of the inventory, and the sampler that refreshes the gauges
//! that need a query.

use platform::db::Db;
use platform::metrics::MetricsBuilder;
use platform::{with_conn, ApiError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: &'static str,
}

#[derive(Clone)]
pub struct InventoryMetrics {
    stock_conflicts: Counter,
    reservations_held: Gauge,
    reserved_units: Gauge,
    /// Requests applied per group-commit transaction, by operation (hold|commit|release).
    batch_sizes: Family<OperationLabel, Histogram, fn() -> Histogram>,
}

impl InventoryMetrics {
    pub fn register(builder: &mut MetricsBuilder) -> Self {
        let metrics = Self {
            stock_conflicts: Counter::default(),
            reservations_held: Gauge::default(),
            reserved_units: Gauge::default(),
            // 1, 2, 4 ... 32 = the group commit's largest batch
            batch_sizes: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1.0, 2.0, 6))
            }),
        };
        let registry = builder.registry();
        registry.register(
            "stock_conflicts",
            "Requests refused for insufficient stock",
            metrics.stock_conflicts.clone(),
        );
        registry.register(
            "reservations_held",
            "Reservations currently holding stock",
            metrics.reservations_held.clone(),
        );
        registry.register(
            "reservation_batch_size",
            "Requests applied per group-commit transaction, by operation",
            metrics.batch_sizes.clone(),
        );
        registry.register(
            "stock_reserved_units",
            "Units currently held for orders in flight",
            metrics.reserved_units.clone(),
        );
        metrics
    }

    pub fn stock_conflict(&self) {
        self.stock_conflicts.inc();
    }

    /// The batch-size histogram of one operation (`hold`, `commit`, `release`).
    pub fn batch_sizes(&self, operation: &'static str) -> Histogram {
        self.batch_sizes
            .get_or_create(&OperationLabel { operation })
            .clone()
    }

    /// Refreshes the gauges that need a query (the sampler's tick).
    pub async fn sample(&self, db: &Db) {
        if let Err(err) = self.sample_once(db).await {
            tracing::debug!(error = %err, "inventory metrics sample failed");
        }
    }

    async fn sample_once(&self, db: &Db) -> Result<(), ApiError> {
        let (held, units): (i64, i64) = with_conn!(db.reader(), |conn| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM reservations WHERE status = 'held'), \
                        CAST(COALESCE((SELECT SUM(reserved) FROM items), 0) AS BIGINT)",
            )
            .fetch_one(&mut *conn)
            .await?
        });
        self.reservations_held.set(held);
        self.reserved_units.set(units);
        Ok(())
    }
}
