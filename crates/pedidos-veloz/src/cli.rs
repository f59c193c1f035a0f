//! The command line: every setting is a flag and an environment variable. The same
//! definitions serve the binary and the end-to-end tests, which describe a platform
//! by its environment variables only ([`Cli::from_env_vars`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use contracts::identity::SigningKey;
use platform::telemetry::LogFormat;

use crate::startup::{AllInOne, Common, ComponentKind};

#[derive(Parser)]
#[command(
    name = "pedidos-veloz",
    version,
    about = "Pedidos Veloz: orders, payments and inventory behind one API gateway.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub all: AllArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The all-in-one command line that these environment variables describe, as if
    /// the process had been started with them and nothing else in its environment (this
    /// process's own environment is not read). Variables that are not settings of the
    /// all-in-one mode are ignored.
    pub fn from_env_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: &[(K, V)],
    ) -> Result<Self, clap::Error> {
        let command = Self::command();
        let mut argv = vec!["pedidos-veloz".to_owned()];
        for (key, value) in vars {
            let flag = command.get_arguments().find(|arg| {
                arg.get_env()
                    .is_some_and(|env| env.to_str() == Some(key.as_ref()))
            });
            if let Some(long) = flag.and_then(|arg| arg.get_long()) {
                argv.push(format!("--{long}={}", value.as_ref()));
            }
        }
        let isolated = command.mut_args(|arg| arg.env(None::<&str>));
        Self::from_arg_matches(&isolated.try_get_matches_from(argv)?)
    }
}

#[derive(Args)]
pub struct CommonArgs {
    /// Log format: human-readable lines when the logs go to a terminal and one JSON
    /// object per line otherwise (auto), or either one always.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub log_format: LogFormat,
    /// Log level or filter (RUST_LOG, when set, takes precedence).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0", global = true)]
    pub bind_address: IpAddr,
    /// Folder of the SQLite databases used when no database URL is given.
    #[arg(
        long,
        env = "PEDIDOS_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// After SIGTERM, how long in-flight requests and background workers may take before
    /// connections are closed, in seconds.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECONDS",
        default_value_t = 20,
        global = true
    )]
    pub shutdown_grace_seconds: u64,
    /// After SIGTERM, how long /readyz answers 503 before the listener closes.
    #[arg(long, env = "SHUTDOWN_DELAY_MS", default_value_t = 0, global = true)]
    pub shutdown_delay_ms: u64,
    /// Apply pending migrations at start-up.
    #[arg(long, env = "MIGRATE_ON_START", default_value_t = true, action = ArgAction::Set, global = true)]
    pub migrate_on_start: bool,
    /// Largest number of database connections per service.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10, global = true)]
    pub db_max_connections: u32,
    /// How long a request waits for a database connection before a 503, in milliseconds.
    #[arg(
        long,
        env = "DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    pub db_acquire_timeout_ms: u64,
    /// Expose `/admin/faults` (through the gateway with an admin key, and on each
    /// service's port) to switch faults on while the platform runs. For demos and tests.
    #[arg(long, env = "FAULTS_ENABLED", default_value_t = false, action = ArgAction::Set, global = true)]
    pub faults_enabled: bool,
}

impl CommonArgs {
    pub fn common(&self) -> Common {
        Common {
            bind: self.bind_address,
            grace: Duration::from_secs(self.shutdown_grace_seconds),
            shutdown_delay: Duration::from_millis(self.shutdown_delay_ms),
            migrate_on_start: self.migrate_on_start,
            db_max_connections: self.db_max_connections,
            db_acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            faults_enabled: self.faults_enabled,
        }
    }
}

/// All four components in one process (the default).
#[derive(Args)]
pub struct AllArgs {
    /// Database of estoque-service (default: SQLite under the data dir).
    #[arg(long, env = "ESTOQUE_DATABASE_URL", hide_env_values = true)]
    pub estoque_database_url: Option<String>,
    /// Database of pagamentos-service (default: SQLite under the data dir).
    #[arg(long, env = "PAGAMENTOS_DATABASE_URL", hide_env_values = true)]
    pub pagamentos_database_url: Option<String>,
    /// Database of pedidos-service (default: SQLite under the data dir).
    #[arg(long, env = "PEDIDOS_DATABASE_URL", hide_env_values = true)]
    pub pedidos_database_url: Option<String>,
    #[arg(long, env = "GATEWAY_PORT", default_value_t = 5000)]
    pub gateway_port: u16,
    #[arg(long, env = "PEDIDOS_PORT", default_value_t = 5001)]
    pub pedidos_port: u16,
    #[arg(long, env = "PAGAMENTOS_PORT", default_value_t = 5002)]
    pub pagamentos_port: u16,
    #[arg(long, env = "ESTOQUE_PORT", default_value_t = 5003)]
    pub estoque_port: u16,
    /// Address the three services listen on in the all-in-one mode (only the gateway
    /// listens on BIND_ADDRESS): the services trust their callers, so by default they
    /// are reachable from this machine only.
    #[arg(long, env = "INTERNAL_BIND_ADDRESS", default_value = "127.0.0.1")]
    pub internal_bind_address: IpAddr,
    #[command(flatten)]
    pub pedidos: pedidos::Settings,
    #[command(flatten)]
    pub pagamentos: pagamentos::Settings,
    #[command(flatten)]
    pub gateway: gateway::Settings,
    #[command(flatten)]
    pub identity: IdentityArgs,
}

impl AllArgs {
    pub fn into_config(mut self, data_dir: &Path) -> AllInOne {
        // With identity on, the gateway signs and pedidos verifies with one secret: the
        // one given, or a random one made now (both components live in this process).
        if identity_enabled(&self.gateway) {
            let key = self.identity.key().unwrap_or_else(random_signing_key);
            self.gateway.identity_secret = Some(key.clone());
            self.pedidos.identity_secret = Some(key);
        }
        AllInOne {
            gateway_port: self.gateway_port,
            pedidos_port: self.pedidos_port,
            pagamentos_port: self.pagamentos_port,
            estoque_port: self.estoque_port,
            internal_bind: self.internal_bind_address,
            pedidos_db: database_url(ComponentKind::Pedidos, self.pedidos_database_url, data_dir),
            pagamentos_db: database_url(
                ComponentKind::Pagamentos,
                self.pagamentos_database_url,
                data_dir,
            ),
            estoque_db: database_url(ComponentKind::Estoque, self.estoque_database_url, data_dir),
            pedidos: self.pedidos,
            pagamentos: self.pagamentos,
            gateway: self.gateway,
        }
    }
}

/// Whether the gateway's settings tell callers apart (API keys or OIDC); a key list
/// that does not parse counts, and stops the gateway's start-up later.
fn identity_enabled(gateway: &gateway::Settings) -> bool {
    let keys = gateway
        .api_keys
        .as_deref()
        .is_some_and(|spec| gateway::auth::Keys::parse(spec).map_or(true, |k| k.is_enabled()));
    let oidc = gateway
        .oidc
        .oidc_issuer
        .as_deref()
        .is_some_and(|issuer| !issuer.is_empty());
    keys || oidc
}

fn random_signing_key() -> SigningKey {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    SigningKey::new(&secret).unwrap_or_else(|_| unreachable!("32 bytes is the minimum"))
}

/// The secret the gateway signs callers' identities with and pedidos checks them with.
#[derive(Args, Clone, Default)]
pub struct IdentityArgs {
    /// Secret (at least 32 bytes) shared by the gateway and pedidos-service to sign and
    /// check the identity the gateway passes on. Needed by both when they run as
    /// separate processes with API keys or OIDC; the all-in-one mode makes a random one.
    #[arg(long, env = "IDENTITY_SIGNING_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub identity_signing_secret: Option<Secret>,
}

/// A signing secret as given; empty means none (an unset variable in compose files).
#[derive(Clone)]
pub struct Secret(Option<SigningKey>);

fn parse_secret(value: &str) -> Result<Secret, String> {
    if value.is_empty() {
        return Ok(Secret(None));
    }
    SigningKey::new(value.as_bytes()).map(|key| Secret(Some(key)))
}

impl IdentityArgs {
    pub fn key(&self) -> Option<SigningKey> {
        self.identity_signing_secret
            .as_ref()
            .and_then(|secret| secret.0.clone())
    }
}

/// The URL given, or the SQLite file of `kind` under the data dir.
pub fn database_url(kind: ComponentKind, given: Option<String>, data_dir: &Path) -> String {
    given.unwrap_or_else(|| kind.default_database_url(data_dir))
}

#[derive(Args)]
pub struct ServiceArgs {
    /// Port to listen on.
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// postgres://user:password@host:5432/db or sqlite://path (default: SQLite under the data dir).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run api-gateway alone (default port 5000).
    Gateway {
        #[command(flatten)]
        service: ServiceArgs,
        #[command(flatten)]
        upstreams: gateway::Upstreams,
        // Boxed: the gateway's settings are by far the largest of the subcommands'.
        #[command(flatten)]
        settings: Box<gateway::Settings>,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Run pedidos-service (orders) alone (default port 5001).
    #[command(alias = "pedidos")]
    Orders {
        #[command(flatten)]
        service: ServiceArgs,
        #[command(flatten)]
        upstreams: pedidos::Upstreams,
        #[command(flatten)]
        settings: pedidos::Settings,
        #[command(flatten)]
        identity: IdentityArgs,
    },
    /// Run pagamentos-service (payments) alone (default port 5002).
    #[command(alias = "pagamentos")]
    Payments {
        #[command(flatten)]
        service: ServiceArgs,
        #[command(flatten)]
        settings: pagamentos::Settings,
    },
    /// Run estoque-service (inventory) alone (default port 5003).
    #[command(alias = "estoque")]
    Inventory {
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Apply the migrations and exit: one service with DATABASE_URL, or all three
    /// with ESTOQUE_/PAGAMENTOS_/PEDIDOS_DATABASE_URL (or SQLite under the data dir).
    Migrate {
        /// Which service's migrations (omit for all three).
        #[arg(long, value_enum)]
        service: Option<ComponentKind>,
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        #[arg(long, env = "ESTOQUE_DATABASE_URL", hide_env_values = true)]
        estoque_database_url: Option<String>,
        #[arg(long, env = "PAGAMENTOS_DATABASE_URL", hide_env_values = true)]
        pagamentos_database_url: Option<String>,
        #[arg(long, env = "PEDIDOS_DATABASE_URL", hide_env_values = true)]
        pedidos_database_url: Option<String>,
    },
    /// Live traffic against a running platform until SIGTERM: a steady mix of shoppers
    /// (browsing, orders, retries, cancels, a few bad requests) for dashboards and
    /// alerts. TRAFFIC_RATE=0 turns it off (it then idles until stopped).
    Traffic {
        /// The gateway.
        #[arg(long, env = "TRAFFIC_TARGET", default_value = "http://127.0.0.1:5000")]
        url: String,
        /// Requests a second.
        #[arg(long, env = "TRAFFIC_RATE", default_value_t = 5.0)]
        rate: f64,
        /// Admin API key (creating and restocking items), when the gateway has keys.
        #[arg(long, env = "TRAFFIC_ADMIN_KEY", hide_env_values = true)]
        admin_key: Option<String>,
        /// Client API key (orders), when the gateway has keys; the admin key otherwise.
        #[arg(long, env = "TRAFFIC_CLIENT_KEY", hide_env_values = true)]
        client_key: Option<String>,
        /// Seconds between two summary lines of the answers.
        #[arg(long, env = "TRAFFIC_REPORT_SECONDS", default_value_t = 30)]
        report_seconds: u64,
    },
    /// The local Alertmanager's webhook receiver: one log line per alert notified,
    /// `GET /alerts` lists what was received. Runs until SIGTERM.
    AlertLog {
        #[arg(long, env = "ALERT_LOG_LISTEN", default_value = "0.0.0.0:9095")]
        listen: std::net::SocketAddr,
    },
    /// Exit 0 if a component answers 200 on its readiness endpoint (for container health checks).
    Healthcheck {
        /// URL to probe (default: http://127.0.0.1:$PORT/readyz).
        #[arg(long)]
        url: Option<String>,
        #[arg(long, env = "PORT", default_value_t = 5000)]
        port: u16,
    },
}

impl Command {
    /// The component a subcommand runs alone, if it runs one.
    pub fn component(&self) -> Option<ComponentKind> {
        match self {
            Command::Gateway { .. } => Some(ComponentKind::Gateway),
            Command::Orders { .. } => Some(ComponentKind::Pedidos),
            Command::Payments { .. } => Some(ComponentKind::Pagamentos),
            Command::Inventory { .. } => Some(ComponentKind::Estoque),
            Command::Migrate { .. }
            | Command::Healthcheck { .. }
            | Command::Traffic { .. }
            | Command::AlertLog { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_come_from_the_environment_variables_given() {
        let cli = Cli::from_env_vars(&[
            ("SAGA_CALL_TIMEOUT_MS", "1234"),
            ("PAYMENT_DECLINE_RATE", "0.5"),
            ("GATEWAY_PORT", "0"),
            ("MIGRATE_ON_START", "false"),
            ("API_KEYS", "admin:aa"),
            ("PORT", "9999"), // a single-component setting: ignored here
        ])
        .expect("parse");
        assert!(cli.command.is_none());
        assert_eq!(cli.all.pedidos.saga_call_timeout_ms, 1234);
        assert_eq!(cli.all.pagamentos.payment_decline_rate, 0.5);
        assert_eq!(cli.all.gateway_port, 0);
        assert_eq!(cli.all.pedidos_port, 5001);
        assert!(!cli.common.migrate_on_start);
        assert_eq!(cli.all.gateway.api_keys.as_deref(), Some("admin:aa"));
    }

    #[test]
    fn only_the_gateway_listens_on_the_public_address() {
        let cli = Cli::from_env_vars(&[("BIND_ADDRESS", "0.0.0.0")]).expect("parse");
        let common = cli.common.common();
        let config = cli.all.into_config(Path::new("data"));
        assert_eq!(
            config.address(ComponentKind::Gateway, &common).to_string(),
            "0.0.0.0:5000"
        );
        for kind in [
            ComponentKind::Pedidos,
            ComponentKind::Pagamentos,
            ComponentKind::Estoque,
        ] {
            assert!(config.address(kind, &common).ip().is_loopback(), "{kind:?}");
        }
        let moved = Cli::from_env_vars(&[("INTERNAL_BIND_ADDRESS", "0.0.0.0")]).expect("parse");
        let config = moved.all.into_config(Path::new("data"));
        assert!(config
            .address(ComponentKind::Estoque, &common)
            .ip()
            .is_unspecified());
    }

    #[test]
    fn a_bad_value_is_refused() {
        assert!(Cli::from_env_vars(&[("PAYMENT_DECLINE_RATE", "2")]).is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
