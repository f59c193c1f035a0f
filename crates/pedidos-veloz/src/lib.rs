//! Wiring: opens each service's database, builds the components and serves them,
//! one per process or all four in one. The command line is in `main.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use platform::db::{Db, DbOptions, Migrations};
use platform::server::{bind, serve, Component};
use platform::shutdown::Shutdown;
use tokio::net::TcpListener;
use utoipa::OpenApi;

/// Settings every component shares.
#[derive(Debug, Clone)]
pub struct Common {
    pub bind: std::net::IpAddr,
    pub grace: Duration,
    pub shutdown_delay: Duration,
    pub migrate_on_start: bool,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
}

/// The four components of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    Gateway,
    Orders,
    Payments,
    Inventory,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Gateway => platform::names::GATEWAY,
            Service::Orders => platform::names::PEDIDOS,
            Service::Payments => platform::names::PAGAMENTOS,
            Service::Inventory => platform::names::ESTOQUE,
        }
    }

    pub fn migrations(self) -> Option<&'static Migrations> {
        match self {
            Service::Gateway => None,
            Service::Orders => Some(&pedidos::MIGRATIONS),
            Service::Payments => Some(&pagamentos::MIGRATIONS),
            Service::Inventory => Some(&estoque::MIGRATIONS),
        }
    }

    /// The SQLite file used when no database URL is given.
    pub fn default_database_url(self, data_dir: &std::path::Path) -> String {
        let file = match self {
            Service::Orders => "pedidos.db",
            Service::Payments => "pagamentos.db",
            _ => "estoque.db",
        };
        format!("sqlite://{}", data_dir.join(file).display())
    }
}

/// The public OpenAPI document of the three services (the gateway adds its own part).
pub fn public_api() -> utoipa::openapi::OpenApi {
    let mut doc = estoque::PublicApi::openapi();
    doc.merge(pagamentos::PublicApi::openapi());
    doc.merge(pedidos::PublicApi::openapi());
    doc
}

/// Opens a service's database and, if asked, applies its migrations, waiting up to
/// 30 s for a PostgreSQL that is still starting.
pub async fn open_db(
    service: Service,
    url: &str,
    common: &Common,
    migrate: bool,
) -> anyhow::Result<Db> {
    let options = DbOptions {
        max_connections: common.db_max_connections,
        acquire_timeout: common.db_acquire_timeout,
        application_name: service.name().to_owned(),
    };
    let db = Db::connect(url, &options).await.with_context(|| {
        format!(
            "{}: cannot open database {}",
            service.name(),
            platform::db::redact(url)
        )
    })?;
    if let (true, Some(migrations)) = (migrate, service.migrations()) {
        let started = Instant::now();
        loop {
            match db.migrate(migrations).await {
                Ok(()) => break,
                Err(sqlx::migrate::MigrateError::Execute(err))
                    if platform::db::is_unavailable(&err)
                        && started.elapsed() < Duration::from_secs(30) =>
                {
                    tracing::warn!(component = service.name(), error = %err, "database not reachable yet; retrying migrations");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("{}: migrations failed", service.name()))
                }
            }
        }
        tracing::info!(component = service.name(), "migrations applied");
    }
    Ok(db)
}

/// Everything the all-in-one mode needs.
#[derive(Debug, Clone)]
pub struct AllInOne {
    pub gateway_port: u16,
    pub orders_port: u16,
    pub payments_port: u16,
    pub inventory_port: u16,
    pub orders_db: String,
    pub payments_db: String,
    pub inventory_db: String,
    pub orders: pedidos::Settings,
    pub payments: pagamentos::Settings,
    pub gateway: gateway::Settings,
}

/// A running platform: its addresses, its shutdown switch, and the task serving it.
pub struct Running {
    pub topology: Topology,
    pub shutdown: Shutdown,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The base URL of a component listening on `addr`.
pub fn url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}", addr.port())
}

/// Where each component listens.
#[derive(Debug, Clone, Copy)]
pub struct Topology {
    pub gateway: SocketAddr,
    pub orders: SocketAddr,
    pub payments: SocketAddr,
    pub inventory: SocketAddr,
}

/// Opens the database of `service` (if it has one) and builds the component, wired
/// to the others at the addresses of `topology`.
pub async fn build(
    service: Service,
    config: &AllInOne,
    common: &Common,
    topology: &Topology,
    shutdown: &Shutdown,
) -> anyhow::Result<Component> {
    let migrate = common.migrate_on_start;
    Ok(match service {
        Service::Inventory => estoque::build(
            open_db(service, &config.inventory_db, common, migrate).await?,
            shutdown,
        ),
        Service::Payments => pagamentos::build(
            open_db(service, &config.payments_db, common, migrate).await?,
            &config.payments,
        ),
        Service::Orders => pedidos::build(
            open_db(service, &config.orders_db, common, migrate).await?,
            &config.orders,
            &pedidos::Upstreams {
                estoque_service_url: url(topology.inventory),
                pagamentos_service_url: url(topology.payments),
            },
            shutdown,
        ),
        Service::Gateway => gateway::build(
            &config.gateway,
            &gateway::Upstreams {
                pedidos_service_url: url(topology.orders),
                pagamentos_service_url: url(topology.payments),
                estoque_service_url: url(topology.inventory),
            },
            public_api(),
        )
        .map_err(anyhow::Error::msg)?,
    })
}

/// Starts all four components in this process, each on its own port and talking to
/// the others over HTTP exactly as separate processes would. Port 0 picks a free port.
pub async fn start_all(
    config: AllInOne,
    common: &Common,
    shutdown: Shutdown,
) -> anyhow::Result<Running> {
    let listen = |port| bind(SocketAddr::new(common.bind, port));
    let listeners = [
        (Service::Inventory, listen(config.inventory_port).await?),
        (Service::Payments, listen(config.payments_port).await?),
        (Service::Orders, listen(config.orders_port).await?),
        (Service::Gateway, listen(config.gateway_port).await?),
    ];
    let topology = Topology {
        inventory: listeners[0].1.local_addr()?,
        payments: listeners[1].1.local_addr()?,
        orders: listeners[2].1.local_addr()?,
        gateway: listeners[3].1.local_addr()?,
    };
    let mut components = Vec::with_capacity(4);
    for (service, listener) in listeners {
        components.push((
            build(service, &config, common, &topology, &shutdown).await?,
            listener,
        ));
    }
    let task = tokio::spawn(serve_all(components, shutdown.clone(), common.grace));
    Ok(Running {
        topology,
        shutdown,
        task,
    })
}

/// Serves components until shutdown; an error in one stops them all.
pub async fn serve_all(
    components: Vec<(Component, TcpListener)>,
    shutdown: Shutdown,
    grace: Duration,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for (component, listener) in components {
        tasks.spawn(serve(component, listener, shutdown.clone(), grace));
    }
    let mut result = Ok(());
    while let Some(done) = tasks.join_next().await {
        let outcome = match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(anyhow::Error::from(err)),
            Err(err) => Err(anyhow::Error::from(err)),
        };
        if let Err(err) = outcome {
            tracing::error!(error = %err, "a component failed: stopping the others");
            shutdown.trigger(Duration::ZERO);
            result = Err(err);
        }
    }
    result
}
