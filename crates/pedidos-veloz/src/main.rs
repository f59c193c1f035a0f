//! `pedidos-veloz`: the one binary of the platform.
//!
//! With no subcommand it runs all four components in one process (ports 5000-5003,
//! SQLite files under `./data`); a subcommand runs one component, applies the
//! migrations, or checks a running component's health.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{ArgAction, Args, Parser, Subcommand};
use pedidos_veloz::{open_db, serve_all, start_all, AllInOne, Common, Service};
use platform::server::bind;
use platform::shutdown::Shutdown;
use platform::telemetry::{self, LogFormat};

// glibc's malloc and free took ~16 % of the process's CPU samples under load (perf,
// docs/performance.md); mimalloc's per-thread free lists suit the many small,
// short-lived allocations of requests.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pedidos-veloz",
    version,
    about = "Pedidos Veloz: orders, payments and inventory behind one API gateway.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    all: AllArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args)]
struct CommonArgs {
    /// Log format: one JSON object per line, or human-readable.
    #[arg(
        long,
        env = "LOG_FORMAT",
        value_enum,
        default_value = "json",
        global = true
    )]
    log_format: LogFormat,
    /// Log level or filter (RUST_LOG, when set, takes precedence).
    #[arg(long, env = "LOG_LEVEL", default_value = "info", global = true)]
    log_level: String,
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0", global = true)]
    bind_address: IpAddr,
    /// Folder of the SQLite databases used when no database URL is given.
    #[arg(
        long,
        env = "PEDIDOS_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    data_dir: PathBuf,
    /// After SIGTERM, how long in-flight requests may take before connections are closed.
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECONDS",
        default_value_t = 20,
        global = true
    )]
    shutdown_grace_seconds: u64,
    /// After SIGTERM, how long /readyz answers 503 before the listener closes.
    #[arg(long, env = "SHUTDOWN_DELAY_MS", default_value_t = 0, global = true)]
    shutdown_delay_ms: u64,
    /// Apply pending migrations at start-up.
    #[arg(long, env = "MIGRATE_ON_START", default_value_t = true, action = ArgAction::Set, global = true)]
    migrate_on_start: bool,
    /// Largest number of database connections per service.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10, global = true)]
    db_max_connections: u32,
    /// How long a request waits for a database connection before a 503, in milliseconds.
    #[arg(
        long,
        env = "DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 5000,
        global = true
    )]
    db_acquire_timeout_ms: u64,
}

/// All four components in one process (the default).
#[derive(Args)]
struct AllArgs {
    /// Database of estoque-service (default: SQLite under the data dir).
    #[arg(long, env = "ESTOQUE_DATABASE_URL", hide_env_values = true)]
    estoque_database_url: Option<String>,
    /// Database of pagamentos-service (default: SQLite under the data dir).
    #[arg(long, env = "PAGAMENTOS_DATABASE_URL", hide_env_values = true)]
    pagamentos_database_url: Option<String>,
    /// Database of pedidos-service (default: SQLite under the data dir).
    #[arg(long, env = "PEDIDOS_DATABASE_URL", hide_env_values = true)]
    pedidos_database_url: Option<String>,
    #[arg(long, env = "GATEWAY_PORT", default_value_t = 5000)]
    gateway_port: u16,
    #[arg(long, env = "PEDIDOS_PORT", default_value_t = 5001)]
    pedidos_port: u16,
    #[arg(long, env = "PAGAMENTOS_PORT", default_value_t = 5002)]
    pagamentos_port: u16,
    #[arg(long, env = "ESTOQUE_PORT", default_value_t = 5003)]
    estoque_port: u16,
    #[command(flatten)]
    orders: pedidos::Settings,
    #[command(flatten)]
    payments: pagamentos::Settings,
    #[command(flatten)]
    gateway: gateway::Settings,
}

#[derive(Args)]
struct ServiceArgs {
    /// Port to listen on.
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// postgres://user:password@host:5432/db or sqlite://path (default: SQLite under the data dir).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
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
    Orders {
        #[command(flatten)]
        service: ServiceArgs,
        #[command(flatten)]
        upstreams: pedidos::Upstreams,
        #[command(flatten)]
        settings: pedidos::Settings,
    },
    /// Run pagamentos-service (payments) alone (default port 5002).
    Payments {
        #[command(flatten)]
        service: ServiceArgs,
        #[command(flatten)]
        settings: pagamentos::Settings,
    },
    /// Run estoque-service (inventory) alone (default port 5003).
    Inventory {
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// Apply the migrations and exit: one service with DATABASE_URL, or all three
    /// with ESTOQUE_/PAGAMENTOS_/PEDIDOS_DATABASE_URL (or SQLite under the data dir).
    Migrate {
        /// Which service's migrations (omit for all three).
        #[arg(long, value_enum)]
        service: Option<Service>,
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

fn default_port(service: Service) -> u16 {
    match service {
        Service::Gateway => 5000,
        Service::Orders => 5001,
        Service::Payments => 5002,
        Service::Inventory => 5003,
    }
}

fn database_url(service: Service, given: Option<String>, data_dir: &Path) -> String {
    given.unwrap_or_else(|| service.default_database_url(data_dir))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url, port }) = &cli.command {
        let url = url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}/readyz"));
        return healthcheck(&url);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let process = match &cli.command {
        Some(Command::Gateway { .. }) => Service::Gateway.name(),
        Some(Command::Orders { .. }) => Service::Orders.name(),
        Some(Command::Payments { .. }) => Service::Payments.name(),
        Some(Command::Inventory { .. }) => Service::Inventory.name(),
        _ => "pedidos-veloz",
    };
    // The batch exporter is started inside the runtime.
    let telemetry = runtime
        .block_on(async { telemetry::init(cli.common.log_format, &cli.common.log_level, process) });
    let code = match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "exiting with an error");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let c = &cli.common;
    let common = Common {
        bind: c.bind_address,
        grace: Duration::from_secs(c.shutdown_grace_seconds),
        shutdown_delay: Duration::from_millis(c.shutdown_delay_ms),
        migrate_on_start: c.migrate_on_start,
        db_max_connections: c.db_max_connections,
        db_acquire_timeout: Duration::from_millis(c.db_acquire_timeout_ms),
    };
    let data_dir = c.data_dir.clone();
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals(common.shutdown_delay);

    let (service, port, component) = match cli.command {
        None => {
            let all = cli.all;
            let config = AllInOne {
                gateway_port: all.gateway_port,
                orders_port: all.pedidos_port,
                payments_port: all.pagamentos_port,
                inventory_port: all.estoque_port,
                orders_db: database_url(Service::Orders, all.pedidos_database_url, &data_dir),
                payments_db: database_url(
                    Service::Payments,
                    all.pagamentos_database_url,
                    &data_dir,
                ),
                inventory_db: database_url(Service::Inventory, all.estoque_database_url, &data_dir),
                orders: all.orders,
                payments: all.payments,
                gateway: all.gateway,
            };
            let running = start_all(config, &common, shutdown).await?;
            tracing::info!(gateway = %running.topology.gateway, "Pedidos Veloz is up: all four components in one process");
            return running.task.await.context("the platform task failed")?;
        }
        Some(Command::Migrate {
            service,
            database_url: url,
            estoque_database_url,
            pagamentos_database_url,
            pedidos_database_url,
        }) => {
            let targets = match service {
                Some(service) => vec![(
                    service,
                    url.unwrap_or_else(|| service.default_database_url(&data_dir)),
                )],
                None => vec![
                    (
                        Service::Inventory,
                        database_url(
                            Service::Inventory,
                            estoque_database_url.or(url.clone()),
                            &data_dir,
                        ),
                    ),
                    (
                        Service::Payments,
                        database_url(
                            Service::Payments,
                            pagamentos_database_url.or(url.clone()),
                            &data_dir,
                        ),
                    ),
                    (
                        Service::Orders,
                        database_url(Service::Orders, pedidos_database_url.or(url), &data_dir),
                    ),
                ],
            };
            for (service, url) in targets {
                let db = open_db(service, &url, &common, true).await?;
                db.close().await;
            }
            return Ok(());
        }
        Some(Command::Healthcheck { .. }) => return Ok(()),
        Some(Command::Gateway {
            service,
            upstreams,
            settings,
        }) => {
            let component = gateway::build(&settings, &upstreams, pedidos_veloz::public_api())
                .map_err(anyhow::Error::msg)?;
            (Service::Gateway, service.port, component)
        }
        Some(Command::Orders {
            service,
            upstreams,
            settings,
        }) => {
            let db = service_db(Service::Orders, service.database_url, &data_dir, &common).await?;
            (
                Service::Orders,
                service.port,
                pedidos::build(db, &settings, &upstreams, &shutdown),
            )
        }
        Some(Command::Payments { service, settings }) => {
            let db =
                service_db(Service::Payments, service.database_url, &data_dir, &common).await?;
            (
                Service::Payments,
                service.port,
                pagamentos::build(db, &settings),
            )
        }
        Some(Command::Inventory { service }) => {
            let db =
                service_db(Service::Inventory, service.database_url, &data_dir, &common).await?;
            (
                Service::Inventory,
                service.port,
                estoque::build(db, &shutdown),
            )
        }
    };
    let addr =
        std::net::SocketAddr::new(common.bind, port.unwrap_or_else(|| default_port(service)));
    let listener = bind(addr).await?;
    serve_all(vec![(component, listener)], shutdown, common.grace).await
}

/// Opens (and, unless disabled, migrates) one service's database: the URL given, or SQLite under the data dir.
async fn service_db(
    service: Service,
    url: Option<String>,
    data_dir: &Path,
    common: &Common,
) -> anyhow::Result<platform::db::Db> {
    open_db(
        service,
        &database_url(service, url, data_dir),
        common,
        common.migrate_on_start,
    )
    .await
}

/// A tiny HTTP GET without a runtime-wide client: the distroless image has no curl.
fn healthcheck(url: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(_) => return ExitCode::FAILURE,
    };
    let client = platform::client::ServiceClient::new("healthcheck", "", Duration::from_secs(3), 1);
    let answer =
        runtime.block_on(client.call(axum::http::Method::GET, url, None, "healthcheck", None));
    match answer {
        Ok(answer) if answer.status.is_success() => ExitCode::SUCCESS,
        Ok(answer) => {
            eprintln!("{url} answered {}", answer.status);
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("{url}: {err}");
            ExitCode::FAILURE
        }
    }
}
