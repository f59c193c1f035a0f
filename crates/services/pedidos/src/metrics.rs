//! The business metrics of orders: created, finished by status, value, retried saga
//! steps, and how many orders wait for the recovery worker.

use std::sync::atomic::AtomicU64;

use platform::metrics::MetricsBuilder;
use platform::money::Money;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

use crate::order::model::OrderStatus;

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
    created: Counter,
    finished: Family<StatusLabel, Counter>,
    value: Histogram,
    retries: Family<StepLabel, Counter>,
    pending: Gauge,
    pending_age: Gauge<f64, AtomicU64>,
}

impl OrderMetrics {
    pub fn register(builder: &mut MetricsBuilder) -> Self {
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

    pub fn created(&self) {
        self.created.inc();
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
