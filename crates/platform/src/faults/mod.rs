//! Faults an operator switches on while the platform runs, to watch an alert fire and
//! a dashboard move (see docs/scenarios.md): a payment processor that declines or is
//! slow, an inventory that errors or is slow, pedidos' calls failing, a slow database.
//!
//! Off unless the deployment enables them (`FAULTS_ENABLED`). Each fault is owned by
//! the components that apply it, has a value within its range and a time to live (a
//! forgotten fault ends by itself), and every change is logged and exported as
//! `fault_active{fault}`. While no fault is on, asking for one costs an atomic load.

mod http;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::worker::Workers;
use crate::{names, ApiError};

pub use http::{parse_fault, routes, FaultState, FaultsAnswer, NewFault};

/// How often expired faults are switched off (and their gauge reset).
const EXPIRY_INTERVAL: Duration = Duration::from_secs(1);
/// Time to live of a fault switched on without one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Longest time to live accepted.
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// A fault that can be switched on.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Fault {
    /// pagamentos: probability that a charge is declined (replaces PAYMENT_DECLINE_RATE).
    PaymentDeclineRate,
    /// pagamentos: milliseconds the processor takes per charge (replaces PAYMENT_LATENCY_MS).
    PaymentLatencyMs,
    /// estoque: probability that a request is answered 503.
    InventoryErrorRate,
    /// estoque: milliseconds added before every request.
    InventoryLatencyMs,
    /// pedidos: probability that a call of the saga to estoque fails before it is sent.
    InventoryCallFailureRate,
    /// pedidos: probability that a call of the saga to pagamentos fails before it is sent.
    PaymentCallFailureRate,
    /// pedidos, pagamentos, estoque: milliseconds added before every database statement.
    DatabaseLatencyMs,
}

/// What a fault's value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A probability, 0 to 1.
    Probability,
    Milliseconds,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn unit(self) -> Unit {
        match self {
            Fault::PaymentLatencyMs | Fault::InventoryLatencyMs | Fault::DatabaseLatencyMs => {
                Unit::Milliseconds
            }
            _ => Unit::Probability,
        }
    }

    /// The largest value accepted (the smallest is 0).
    pub fn max(self) -> f64 {
        match self.unit() {
            Unit::Probability => 1.0,
            // A latency beyond every timeout of the platform tells nothing more.
            Unit::Milliseconds => 60_000.0,
        }
    }

    /// The components that apply this fault.
    pub fn owners(self) -> &'static [&'static str] {
        match self {
            Fault::PaymentDeclineRate | Fault::PaymentLatencyMs => &[names::PAGAMENTOS],
            Fault::InventoryErrorRate | Fault::InventoryLatencyMs => &[names::ESTOQUE],
            Fault::InventoryCallFailureRate | Fault::PaymentCallFailureRate => &[names::PEDIDOS],
            Fault::DatabaseLatencyMs => &[names::PEDIDOS, names::PAGAMENTOS, names::ESTOQUE],
        }
    }

    /// Every fault a component applies.
    pub fn owned_by(component: &str) -> Vec<Fault> {
        use strum::VariantArray;
        Fault::VARIANTS
            .iter()
            .copied()
            .filter(|fault| fault.owners().contains(&component))
            .collect()
    }

    /// Checks a value and a time to live before anything changes.
    pub fn check(self, value: f64, ttl: Duration) -> Result<(), ApiError> {
        if !value.is_finite() || value < 0.0 || value > self.max() {
            return Err(ApiError::invalid_field(
                "value",
                format!("{} must be between 0 and {}", self.as_str(), self.max()),
            ));
        }
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(ApiError::invalid_field(
                "ttl_seconds",
                format!("ttl_seconds must be between 1 and {}", MAX_TTL.as_secs()),
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabel {
    fault: &'static str,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    value: f64,
    until: Instant,
    until_wall: DateTime<Utc>,
}

struct Inner {
    component: &'static str,
    enabled: bool,
    owned: Vec<Fault>,
    /// True while some fault may be on: the fast path of [`Faults::value`].
    any: AtomicBool,
    active: RwLock<HashMap<Fault, Active>>,
    gauge: Family<FaultLabel, Gauge>,
}

/// The faults one component applies; cheap to clone.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults")
            .field("component", &self.inner.component)
            .field("enabled", &self.inner.enabled)
            .finish()
    }
}

impl Faults {
    /// Faults switched off for good (`FAULTS_ENABLED=false`): every question is "no".
    pub fn disabled(component: &'static str) -> Self {
        Self::build(component, false)
    }

    /// The faults `component` owns, switchable through its `/admin/faults` routes.
    pub fn enabled(component: &'static str) -> Self {
        Self::build(component, true)
    }

    fn build(component: &'static str, enabled: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                component,
                enabled,
                owned: Fault::owned_by(component),
                any: AtomicBool::new(false),
                active: RwLock::new(HashMap::new()),
                gauge: Family::default(),
            }),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.enabled && !self.inner.owned.is_empty()
    }

    pub fn component(&self) -> &'static str {
        self.inner.component
    }

    /// Exports `fault_active{fault}` for every fault the component owns, and switches
    /// expired faults off every second.
    pub fn start(&self, registry: &mut Registry, workers: &Workers) {
        if !self.is_enabled() {
            return;
        }
        for fault in &self.inner.owned {
            self.inner
                .gauge
                .get_or_create(&FaultLabel {
                    fault: fault.as_str(),
                })
                .set(0);
        }
        registry.register(
            "fault_active",
            "Faults switched on (1) or off (0), by fault",
            self.inner.gauge.clone(),
        );
        let faults = self.clone();
        workers.every("fault-expiry", EXPIRY_INTERVAL, move || {
            let faults = faults.clone();
            async move { faults.expire(Instant::now()) }
        });
    }

    /// The value of `fault` if it is on now.
    pub fn value(&self, fault: Fault) -> Option<f64> {
        if !self.inner.any.load(Ordering::Relaxed) {
            return None;
        }
        let active = self.inner.active.read().ok()?;
        active
            .get(&fault)
            .filter(|a| a.until > Instant::now())
            .map(|a| a.value)
    }

    /// A latency fault as a duration, if on.
    pub fn delay(&self, fault: Fault) -> Option<Duration> {
        self.value(fault)
            .filter(|ms| *ms > 0.0)
            .map(|ms| Duration::from_secs_f64(ms / 1000.0))
    }

    /// Whether a probability fault strikes this time.
    pub fn strikes(&self, fault: Fault) -> bool {
        self.value(fault)
            .is_some_and(|rate| rand::random::<f64>() < rate)
    }

    /// Sleeps for a latency fault, if on.
    pub async fn wait(&self, fault: Fault) {
        if let Some(delay) = self.delay(fault) {
            tokio::time::sleep(delay).await;
        }
    }

    fn owns(&self, fault: Fault) -> Result<(), ApiError> {
        if self.inner.owned.contains(&fault) {
            return Ok(());
        }
        Err(ApiError::not_found(
            "fault_not_here",
            format!(
                "{} does not apply {} (applied by {})",
                self.inner.component,
                fault.as_str(),
                fault.owners().join(", ")
            ),
        ))
    }

    /// Switches `fault` on at `value` for `ttl`.
    pub fn set(&self, fault: Fault, value: f64, ttl: Duration) -> Result<FaultState, ApiError> {
        self.owns(fault)?;
        fault.check(value, ttl)?;
        let active = Active {
            value,
            until: Instant::now() + ttl,
            until_wall: crate::now() + chrono::Duration::from_std(ttl).unwrap_or_default(),
        };
        {
            let mut map = self
                .inner
                .active
                .write()
                .map_err(|_| ApiError::internal())?;
            map.insert(fault, active);
            self.inner.any.store(true, Ordering::Relaxed);
        }
        self.set_gauge(fault, 1);
        tracing::warn!(
            component = self.inner.component,
            fault = fault.as_str(),
            value,
            ttl_seconds = ttl.as_secs(),
            "fault switched on"
        );
        Ok(self.state(fault, Some(active)))
    }

    /// Switches `fault` off (nothing happens if it was off).
    pub fn clear(&self, fault: Fault) -> Result<FaultState, ApiError> {
        self.owns(fault)?;
        let was = {
            let mut map = self
                .inner
                .active
                .write()
                .map_err(|_| ApiError::internal())?;
            let was = map.remove(&fault);
            self.inner.any.store(!map.is_empty(), Ordering::Relaxed);
            was
        };
        self.set_gauge(fault, 0);
        if was.is_some() {
            tracing::warn!(
                component = self.inner.component,
                fault = fault.as_str(),
                "fault switched off"
            );
        }
        Ok(self.state(fault, None))
    }

    /// Every fault the component owns, on or off.
    pub fn list(&self) -> Vec<FaultState> {
        let now = Instant::now();
        let active = self
            .inner
            .active
            .read()
            .map(|map| map.clone())
            .unwrap_or_default();
        self.inner
            .owned
            .iter()
            .map(|&fault| {
                let on = active.get(&fault).copied().filter(|a| a.until > now);
                self.state(fault, on)
            })
            .collect()
    }

    fn expire(&self, now: Instant) {
        let expired: Vec<Fault> = match self.inner.active.write() {
            Ok(mut map) => {
                let expired: Vec<Fault> = map
                    .iter()
                    .filter(|(_, a)| a.until <= now)
                    .map(|(f, _)| *f)
                    .collect();
                for fault in &expired {
                    map.remove(fault);
                }
                self.inner.any.store(!map.is_empty(), Ordering::Relaxed);
                expired
            }
            Err(_) => return,
        };
        for fault in expired {
            self.set_gauge(fault, 0);
            tracing::warn!(
                component = self.inner.component,
                fault = fault.as_str(),
                "fault expired: switched off"
            );
        }
    }

    fn set_gauge(&self, fault: Fault, on: i64) {
        self.inner
            .gauge
            .get_or_create(&FaultLabel {
                fault: fault.as_str(),
            })
            .set(on);
    }

    fn state(&self, fault: Fault, active: Option<Active>) -> FaultState {
        let now = Instant::now();
        FaultState {
            fault,
            component: self.inner.component.to_owned(),
            active: active.is_some(),
            value: active.map(|a| a.value),
            expires_at: active.map(|a| a.until_wall),
            remaining_seconds: active.map(|a| a.until.saturating_duration_since(now).as_secs()),
            unit: fault.unit(),
            max: fault.max(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_on_until_it_expires_or_is_cleared() {
        let faults = Faults::enabled(names::PAGAMENTOS);
        assert_eq!(faults.value(Fault::PaymentLatencyMs), None);
        faults
            .set(Fault::PaymentLatencyMs, 250.0, Duration::from_secs(60))
            .unwrap();
        assert_eq!(faults.value(Fault::PaymentLatencyMs), Some(250.0));
        assert_eq!(
            faults.delay(Fault::PaymentLatencyMs),
            Some(Duration::from_millis(250))
        );
        faults.expire(Instant::now() + Duration::from_secs(61));
        assert_eq!(faults.value(Fault::PaymentLatencyMs), None);
        faults
            .set(Fault::PaymentDeclineRate, 1.0, Duration::from_secs(60))
            .unwrap();
        assert!(faults.strikes(Fault::PaymentDeclineRate));
        faults.clear(Fault::PaymentDeclineRate).unwrap();
        assert!(!faults.strikes(Fault::PaymentDeclineRate));
    }

    #[test]
    fn bad_values_and_foreign_faults_change_nothing() {
        let faults = Faults::enabled(names::ESTOQUE);
        let ttl = Duration::from_secs(10);
        for (fault, value) in [
            (Fault::InventoryErrorRate, 1.5),
            (Fault::InventoryErrorRate, -0.1),
            (Fault::InventoryLatencyMs, -1.0),
            (Fault::InventoryLatencyMs, f64::NAN),
        ] {
            assert_eq!(
                faults.set(fault, value, ttl).unwrap_err().status.as_u16(),
                400
            );
        }
        let too_long = MAX_TTL + Duration::from_secs(1);
        assert!(faults
            .set(Fault::InventoryErrorRate, 0.5, too_long)
            .is_err());
        let foreign = faults.set(Fault::PaymentLatencyMs, 10.0, ttl).unwrap_err();
        assert_eq!(foreign.status.as_u16(), 404);
        assert!(faults.list().iter().all(|state| !state.active));
    }

    #[test]
    fn every_fault_has_an_owner_and_only_services_own_faults() {
        use strum::VariantArray;
        for fault in Fault::VARIANTS {
            assert!(!fault.owners().is_empty());
        }
        assert!(Fault::owned_by(names::GATEWAY).is_empty());
        assert_eq!(Fault::owned_by(names::PEDIDOS).len(), 3);
    }
}
