//! The command line: every setting is a flag and an environment variable. The same
//! definitions serve the binary and the end-to-end tests, which describe a platform
//! by its environment variables only ([`Cli::from_env_vars`]).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
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
    #[command(flatten)]
    pub pedidos: pedidos::Settings,
    #[command(flatten)]
    pub pagamentos: pagamentos::Settings,
    #[command(flatten)]
    pub gateway: gateway::Settings,
}

impl AllArgs {
    pub fn into_config(self, data_dir: &Path) -> AllInOne {
        AllInOne {
            gateway_port: self.gateway_port,
            pedidos_port: self.pedidos_port,
            pagamentos_port: self.pagamentos_port,
            estoque_port: self.estoque_port,
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
        #[command(flatten)]
        settings: gateway::Settings,
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
            Command::Migrate { .. } | Command::Healthcheck { .. } => None,
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
    fn a_bad_value_is_refused() {
        assert!(Cli::from_env_vars(&[("PAYMENT_DECLINE_RATE", "2")]).is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
