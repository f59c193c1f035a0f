//! What every handler of pagamentos-service shares, and its business metrics.

use std::sync::Arc;

use platform::batch::Batches;
use platform::db::Db;
use platform::metrics::MetricsBuilder;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::payment::store::NewCharge;
use crate::processor::Processor;
use contracts::payments::{Payment, PaymentMethod, PaymentStatus};

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub processor: Arc<Processor>,
    pub metrics: PaymentMetrics,
    /// Group commit of the charges: one multi-row INSERT per batch.
    pub charges: Batches<NewCharge, Option<Payment>>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
    method: &'static str,
}

#[derive(Clone, Default)]
pub struct PaymentMetrics {
    payments: Family<OutcomeLabels, Counter>,
    refunds: Counter,
}

impl PaymentMetrics {
    pub fn register(builder: &mut MetricsBuilder, batch_sizes: &Histogram) -> Self {
        let metrics = Self::default();
        let registry = builder.registry();
        registry.register(
            "payments",
            "Charges by outcome and method",
            metrics.payments.clone(),
        );
        registry.register(
            "payments_refunds",
            "Payments refunded",
            metrics.refunds.clone(),
        );
        registry.register(
            "payment_batch_size",
            "Charges recorded per group-commit INSERT",
            batch_sizes.clone(),
        );
        metrics
    }

    pub fn charged(&self, outcome: PaymentStatus, method: PaymentMethod) {
        self.payments
            .get_or_create(&OutcomeLabels {
                outcome: outcome.as_str(),
                method: method.as_str(),
            })
            .inc();
    }

    pub fn refunded(&self) {
        self.refunds.inc();
    }
}
