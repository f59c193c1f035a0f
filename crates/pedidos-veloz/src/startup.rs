//! Start-up: opens each service's database, builds the components and serves them,
//! one per process or all four in one.

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
    /// Whether `/admin/faults` is served.
    pub faults_enabled: bool,
}

impl Common {
    /// The faults a component applies, switchable only when enabled.
    pub fn faults(&self, kind: ComponentKind) -> platform::faults::Faults {
        if self.faults_enabled {
            platform::faults::Faults::enabled(kind.name())
        } else {
            platform::faults::Faults::disabled(kind.name())
        }
    }
}

/// The four components of the platform, by their seed names. On the command line each
/// is named by its domain (`orders`), with the component's name as an alias (`pedidos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ComponentKind {
    Gateway,
    #[value(name = "orders", alias = "pedidos")]
    Pedidos,
    #[value(name = "payments", alias = "pagamentos")]
    Pagamentos,
    #[value(name = "inventory", alias = "estoque")]
    Estoque,
}

impl ComponentKind {
    /// Every component, in start-up order: each one's callees first.
    pub const ALL: [ComponentKind; 4] = [
        ComponentKind::Estoque,
        ComponentKind::Pagamentos,
        ComponentKind::Pedidos,
        ComponentKind::Gateway,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ComponentKind::Gateway => platform::names::GATEWAY,
            ComponentKind::Pedidos => platform::names::PEDIDOS,
            ComponentKind::Pagamentos => platform::names::PAGAMENTOS,
            ComponentKind::Estoque => platform::names::ESTOQUE,
        }
    }

    /// The subcommand that runs this component alone.
    pub fn command(self) -> &'static str {
        match self {
            ComponentKind::Gateway => "gateway",
            ComponentKind::Pedidos => "orders",
            ComponentKind::Pagamentos => "payments",
            ComponentKind::Estoque => "inventory",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            ComponentKind::Gateway => 5000,
            ComponentKind::Pedidos => 5001,
            ComponentKind::Pagamentos => 5002,
            ComponentKind::Estoque => 5003,
        }
    }

    /// The setting that moves this component's port in the all-in-one mode.
    pub fn port_setting(self) -> &'static str {
        match self {
            ComponentKind::Gateway => "GATEWAY_PORT (--gateway-port)",
            ComponentKind::Pedidos => "PEDIDOS_PORT (--pedidos-port)",
            ComponentKind::Pagamentos => "PAGAMENTOS_PORT (--pagamentos-port)",
            ComponentKind::Estoque => "ESTOQUE_PORT (--estoque-port)",
        }
    }

    pub fn migrations(self) -> Option<&'static Migrations> {
        match self {
            ComponentKind::Gateway => None,
            ComponentKind::Pedidos => Some(&pedidos::MIGRATIONS),
            ComponentKind::Pagamentos => Some(&pagamentos::MIGRATIONS),
            ComponentKind::Estoque => Some(&estoque::MIGRATIONS),
        }
    }

    /// The SQLite file used when no database URL is given.
    pub fn default_database_url(self, data_dir: &std::path::Path) -> String {
        let file = match self {
            ComponentKind::Pedidos => "pedidos.db",
            ComponentKind::Pagamentos => "pagamentos.db",
            ComponentKind::Estoque | ComponentKind::Gateway => "estoque.db",
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
    kind: ComponentKind,
    url: &str,
    common: &Common,
    migrate: bool,
) -> anyhow::Result<Db> {
    let options = DbOptions {
        max_connections: common.db_max_connections,
        acquire_timeout: common.db_acquire_timeout,
        application_name: kind.name().to_owned(),
    };
    let db = Db::connect(url, &options).await.with_context(|| {
        format!(
            "{}: cannot open database {}",
            kind.name(),
            platform::db::redact(url)
        )
    })?;
    if let (true, Some(migrations)) = (migrate, kind.migrations()) {
        let started = Instant::now();
        loop {
            match db.migrate(migrations).await {
                Ok(()) => break,
                Err(sqlx::migrate::MigrateError::Execute(err))
                    if platform::db::is_unavailable(&err)
                        && started.elapsed() < Duration::from_secs(30) =>
                {
                    tracing::warn!(component = kind.name(), error = %err, "database not reachable yet; retrying migrations");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) => {
                    return Err(err).with_context(|| format!("{}: migrations failed", kind.name()))
                }
            }
        }
        tracing::info!(component = kind.name(), "migrations applied");
    }
    Ok(db)
}

/// Everything the all-in-one mode needs.
#[derive(Debug, Clone)]
pub struct AllInOne {
    pub gateway_port: u16,
    pub pedidos_port: u16,
    pub pagamentos_port: u16,
    pub estoque_port: u16,
    /// Where the three services listen (the gateway listens on [`Common::bind`]).
    pub internal_bind: std::net::IpAddr,
    pub pedidos_db: String,
    pub pagamentos_db: String,
    pub estoque_db: String,
    pub pedidos: pedidos::Settings,
    pub pagamentos: pagamentos::Settings,
    pub gateway: gateway::Settings,
}

impl AllInOne {
    /// The address `kind` listens on: the gateway on the public address, the services
    /// on the internal one.
    pub fn address(&self, kind: ComponentKind, common: &Common) -> SocketAddr {
        let ip = match kind {
            ComponentKind::Gateway => common.bind,
            _ => self.internal_bind,
        };
        SocketAddr::new(ip, self.port(kind))
    }

    pub fn port(&self, kind: ComponentKind) -> u16 {
        match kind {
            ComponentKind::Gateway => self.gateway_port,
            ComponentKind::Pedidos => self.pedidos_port,
            ComponentKind::Pagamentos => self.pagamentos_port,
            ComponentKind::Estoque => self.estoque_port,
        }
    }

    /// The database URL of a service (the gateway has none).
    pub fn database_url(&self, kind: ComponentKind) -> Option<&str> {
        match kind {
            ComponentKind::Gateway => None,
            ComponentKind::Pedidos => Some(&self.pedidos_db),
            ComponentKind::Pagamentos => Some(&self.pagamentos_db),
            ComponentKind::Estoque => Some(&self.estoque_db),
        }
    }
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
    pub pedidos: SocketAddr,
    pub pagamentos: SocketAddr,
    pub estoque: SocketAddr,
}

impl Topology {
    pub fn addr(&self, kind: ComponentKind) -> SocketAddr {
        match kind {
            ComponentKind::Gateway => self.gateway,
            ComponentKind::Pedidos => self.pedidos,
            ComponentKind::Pagamentos => self.pagamentos,
            ComponentKind::Estoque => self.estoque,
        }
    }

    pub fn set(&mut self, kind: ComponentKind, addr: SocketAddr) {
        match kind {
            ComponentKind::Gateway => self.gateway = addr,
            ComponentKind::Pedidos => self.pedidos = addr,
            ComponentKind::Pagamentos => self.pagamentos = addr,
            ComponentKind::Estoque => self.estoque = addr,
        }
    }
}

/// Opens the database of `kind` (if it has one) and builds the component, wired to
/// the others at the addresses of `topology`.
pub async fn build(
    kind: ComponentKind,
    config: &AllInOne,
    common: &Common,
    topology: &Topology,
) -> anyhow::Result<Component> {
    let migrate = common.migrate_on_start;
    Ok(match kind {
        ComponentKind::Estoque => estoque::build(
            open_db(kind, &config.estoque_db, common, migrate).await?,
            common.faults(kind),
        ),
        ComponentKind::Pagamentos => pagamentos::build(
            open_db(kind, &config.pagamentos_db, common, migrate).await?,
            &config.pagamentos,
            common.faults(kind),
        ),
        ComponentKind::Pedidos => pedidos::build(
            open_db(kind, &config.pedidos_db, common, migrate).await?,
            &config.pedidos,
            &pedidos::Upstreams {
                estoque_service_url: url(topology.estoque),
                pagamentos_service_url: url(topology.pagamentos),
            },
            common.faults(kind),
        )
        .map_err(anyhow::Error::msg)?,
        ComponentKind::Gateway => gateway::build(
            &config.gateway,
            &gateway::Upstreams {
                pedidos_service_url: url(topology.pedidos),
                pagamentos_service_url: url(topology.pagamentos),
                estoque_service_url: url(topology.estoque),
            },
            public_api(),
            common.faults_enabled,
        )
        .map_err(anyhow::Error::msg)?,
    })
}

/// Binds a component's address; a port already taken names the setting that moves it.
pub async fn listen(
    kind: ComponentKind,
    addr: SocketAddr,
    setting: &str,
) -> anyhow::Result<TcpListener> {
    bind(addr).await.map_err(|err| {
        let mut message = format!("{}: {err}", kind.name());
        if err.kind() == std::io::ErrorKind::AddrInUse {
            message.push_str(&format!(
                ". Another program holds port {}: stop it, or set {setting} to a free port",
                addr.port()
            ));
            if addr.port() == 5000 {
                message.push_str(" (on macOS the AirPlay Receiver listens on 5000: turn it off in System Settings > General > AirDrop & Handoff)");
            }
        }
        anyhow::Error::msg(message)
    })
}

/// Starts all four components in this process, each on its own port and talking to
/// the others over HTTP exactly as separate processes would. Port 0 picks a free port.
pub async fn start_all(
    config: AllInOne,
    common: &Common,
    shutdown: Shutdown,
) -> anyhow::Result<Running> {
    let any = SocketAddr::new(common.bind, 0);
    let mut topology = Topology {
        gateway: any,
        pedidos: any,
        pagamentos: any,
        estoque: any,
    };
    let mut listeners = Vec::with_capacity(4);
    for kind in ComponentKind::ALL {
        let addr = config.address(kind, common);
        let listener = listen(kind, addr, kind.port_setting()).await?;
        topology.set(kind, listener.local_addr()?);
        listeners.push((kind, listener));
    }
    let mut components = Vec::with_capacity(4);
    for (kind, listener) in listeners {
        components.push((build(kind, &config, common, &topology).await?, listener));
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
