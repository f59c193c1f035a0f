//! The settings of the simulated processor (environment variables and flags).

/// Settings of the simulated processor.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "payments_settings")]
#[command(next_help_heading = "Payments (pagamentos-service)")]
pub struct Settings {
    /// Probability that a payment is declined (0 to 1; the seed approved 90 %).
    #[arg(long, env = "PAYMENT_DECLINE_RATE", default_value_t = 0.1, value_parser = parse_rate)]
    pub payment_decline_rate: f64,
    /// Seed of the decline draws, to make a run repeatable (random when unset).
    #[arg(long, env = "PAYMENT_RANDOM_SEED")]
    pub payment_random_seed: Option<u64>,
    /// Simulated processor delay per charge, in milliseconds.
    #[arg(long, env = "PAYMENT_LATENCY_MS", default_value_t = 0)]
    pub payment_latency_ms: u64,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("{rate} is not between 0 and 1"))
    }
}
