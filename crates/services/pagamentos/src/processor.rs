//! The simulated acquirer: declines with a configured probability, after a configured
//! delay, from a seedable random source so that a run can be repeated.

use std::sync::Mutex;
use std::time::Duration;

use contracts::payments::PaymentStatus;
use platform::faults::{Fault, Faults};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct Processor {
    decline_rate: f64,
    latency: Duration,
    rng: Mutex<StdRng>,
    /// `payment_decline_rate` and `payment_latency_ms`, when on, replace the settings.
    faults: Faults,
}

impl Processor {
    pub fn new(decline_rate: f64, seed: Option<u64>, latency: Duration, faults: Faults) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            decline_rate,
            latency,
            rng: Mutex::new(rng),
            faults,
        }
    }

    /// The outcome of one charge: approved or declined.
    pub async fn decide(&self) -> PaymentStatus {
        let latency = self
            .faults
            .delay(Fault::PaymentLatencyMs)
            .unwrap_or(self.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let decline_rate = self
            .faults
            .value(Fault::PaymentDeclineRate)
            .unwrap_or(self.decline_rate);
        let draw: f64 = match self.rng.lock() {
            Ok(mut rng) => rng.random(),
            Err(poisoned) => poisoned.into_inner().random(),
        };
        if draw < decline_rate {
            PaymentStatus::Declined
        } else {
            PaymentStatus::Approved
        }
    }
}
