//! The simulated acquirer: declines with a configured probability, after a configured
//! delay, from a seedable random source so that a run can be repeated.

use std::sync::Mutex;
use std::time::Duration;

use contracts::payments::PaymentStatus;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct Processor {
    decline_rate: f64,
    latency: Duration,
    rng: Mutex<StdRng>,
}

impl Processor {
    pub fn new(decline_rate: f64, seed: Option<u64>, latency: Duration) -> Self {
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            decline_rate,
            latency,
            rng: Mutex::new(rng),
        }
    }

    /// The outcome of one charge: approved or declined.
    pub async fn decide(&self) -> PaymentStatus {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let draw: f64 = match self.rng.lock() {
            Ok(mut rng) => rng.random(),
            Err(poisoned) => poisoned.into_inner().random(),
        };
        if draw < self.decline_rate {
            PaymentStatus::Declined
        } else {
            PaymentStatus::Approved
        }
    }
}
