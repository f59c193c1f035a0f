//! The settings of pedidos-service (environment variables and flags), and the typed
//! durations the saga and the recovery worker read from them.

use std::time::Duration;

use contracts::identity::SigningKey;

/// Where the services pedidos calls are (set by the binary in all-in-one mode).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "orders_settings_upstreams")]
pub struct Upstreams {
    /// Base URL of estoque-service (inventory).
    #[arg(
        long,
        env = "ESTOQUE_SERVICE_URL",
        default_value = "http://localhost:5003"
    )]
    pub estoque_service_url: String,
    /// Base URL of pagamentos-service (payments).
    #[arg(
        long,
        env = "PAGAMENTOS_SERVICE_URL",
        default_value = "http://localhost:5002"
    )]
    pub pagamentos_service_url: String,
}

#[derive(Debug, Clone, clap::Args)]
#[group(id = "orders_settings")]
#[command(next_help_heading = "Orders (pedidos-service)")]
pub struct Settings {
    /// Timeout of each call the saga makes to inventory or payments, in milliseconds.
    #[arg(long, env = "SAGA_CALL_TIMEOUT_MS", default_value_t = 3000)]
    pub saga_call_timeout_ms: u64,
    /// How long one saga runner owns a pending order; a crashed runner's orders are
    /// picked up by the recovery worker after this, in milliseconds.
    #[arg(long, env = "ORDER_LEASE_MS", default_value_t = 15000, value_parser = clap::value_parser!(u64).range(1000..))]
    pub order_lease_ms: u64,
    /// How often the recovery worker looks for pending orders, and the base of its backoff, in milliseconds.
    #[arg(long, env = "RECOVERY_INTERVAL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub recovery_interval_ms: u64,
    /// The secret the gateway signs callers' identities with (IDENTITY_SIGNING_SECRET,
    /// read by the binary). Set: every order call needs a signed identity, and customers
    /// see their own orders only. Unset: the open mode.
    #[arg(skip)]
    pub identity_secret: Option<SigningKey>,
}

impl Settings {
    /// The timeout of one call of the saga to estoque or pagamentos.
    pub fn saga_call_timeout(&self) -> Duration {
        Duration::from_millis(self.saga_call_timeout_ms)
    }

    /// How long one saga runner owns a pending order.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.order_lease_ms)
    }

    /// The time a saga runner may spend: its lease.
    pub fn saga_budget(&self) -> Duration {
        self.lease()
    }

    pub fn recovery_interval(&self) -> Duration {
        Duration::from_millis(self.recovery_interval_ms)
    }

    /// How long to wait before the next attempt at an order tried `attempts` times.
    pub fn backoff(&self, attempts: i32) -> Duration {
        let factor = 1u32 << attempts.clamp(0, 5);
        (self.recovery_interval() * factor).min(Duration::from_secs(30))
    }
}
