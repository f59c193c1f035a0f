//! The test harness: starts the four real components, in this process or each as a
//! child process of the real binary, each on a random port with a fresh database (a
//! temporary SQLite folder, or a new PostgreSQL database); lets a test stop, crash and
//! restart any of them, and talks to them over HTTP. Also checks the invariants of
//! SPEC section 5 straight from the databases.
//!
//! A platform is described once, by the environment variables of its processes
//! ([`Options::environment`]): the in-process components read their settings from
//! them through the binary's own command line ([`Cli::from_env_vars`]), and the
//! child processes are started with them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use pedidos_veloz::cli::Cli;
use pedidos_veloz::{build, AllInOne, Common, ComponentKind, Topology};
use platform::server::{bind, serve};
use platform::shutdown::Shutdown;
use serde_json::Value;
use sqlx::Connection;

mod front;
mod hosts;
mod http;
mod invariants;
mod link;
mod network;

pub use front::Front;
pub use http::{Http, Resp};
pub use network::{Network, Peer};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one test per backend: `name::sqlite` and `name::postgres`.
///
/// The PostgreSQL variant needs `PV_TEST_POSTGRES_URL` (an admin connection, e.g.
/// `postgres://postgres@127.0.0.1:5432/postgres`) when the tests are built: without
/// it the variant is reported as ignored (build.rs turns on `cfg(pv_postgres)`).
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)($crate::harness::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(pv_postgres),
                ignore = "set PV_TEST_POSTGRES_URL to run the PostgreSQL variant"
            )]
            async fn postgres() {
                ($body)($crate::harness::Backend::Postgres).await;
            }
        }
    };
}

/// The PostgreSQL admin URL the tests create their databases with. A test that needs
/// it fails when it is missing: it never passes without having run.
pub fn postgres_admin_url() -> String {
    match std::env::var("PV_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "PV_TEST_POSTGRES_URL is not set: a PostgreSQL test cannot run without it \
             (set it to an admin URL such as postgres://postgres@127.0.0.1:5432/postgres, \
             or build the tests without it to have the PostgreSQL variants ignored)"
        ),
    }
}

/// The SHA-256 of a key, in hex: how `API_KEYS` names it.
pub fn sha256_hex(key: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Knobs a test may turn before starting the platform.
#[derive(Clone)]
pub struct Options {
    pub decline_rate: f64,
    pub payment_latency_ms: u64,
    pub call_timeout_ms: u64,
    pub lease_ms: u64,
    pub api_keys: Option<String>,
    pub upstream_timeout_ms: u64,
    pub db_max_connections: u32,
    /// Gateway rate limits, requests a second (0 = off, the tests' default).
    pub rate_limit_per_address: f64,
    pub rate_limit_per_key: f64,
    /// The gateway's time limit for a client to send its headers (0 = none).
    pub header_read_timeout_ms: u64,
    /// The gateway's limit of open client connections (0 = none).
    pub max_connections: usize,
    /// After SIGTERM, how long `/readyz` answers 503 before the listener closes.
    pub shutdown_delay_ms: u64,
    /// After the listener closes, how long in-flight requests may take.
    pub grace_seconds: u64,
    /// More environment variables, on top of (and replacing) those of the knobs above.
    pub env: Vec<(String, String)>,
    /// Processes of each component started with the platform (`Mode::Processes`
    /// only above 1). With several gateways, [`Platform::url`] is a [`Front`] that
    /// balances connections over the ready ones, as a Kubernetes Service does.
    pub replicas: usize,
    /// More ports per component, not started: every component's URL list names them
    /// too, so [`Platform::start_replica`] on one scales out with nothing restarted.
    pub spare_replicas: usize,
    /// Every process on a test host of its own (`Mode::Processes`, root): the
    /// network between them can then fail ([`Platform::network`]).
    pub hosts: bool,
    /// On PostgreSQL, the platform connects as a login role of its own that owns
    /// its database, not as the admin URL's superuser: what production does, and
    /// what makes the database's limits (`CONNECTION LIMIT`) apply to it.
    pub own_role: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            decline_rate: 0.0,
            payment_latency_ms: 0,
            call_timeout_ms: 2000,
            lease_ms: 3000,
            api_keys: None,
            upstream_timeout_ms: 10_000,
            db_max_connections: 8,
            rate_limit_per_address: 0.0,
            rate_limit_per_key: 0.0,
            header_read_timeout_ms: 10_000,
            max_connections: 4096,
            shutdown_delay_ms: 0,
            grace_seconds: 5,
            env: Vec::new(),
            replicas: 1,
            spare_replicas: 0,
            hosts: false,
            own_role: false,
        }
    }
}

impl Options {
    /// The platform these knobs describe, as the environment variables every one of
    /// its components is started with (where each one listens, and its database, come
    /// on top).
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = [
            ("PAYMENT_DECLINE_RATE", self.decline_rate.to_string()),
            ("PAYMENT_RANDOM_SEED", "7".to_owned()),
            ("PAYMENT_LATENCY_MS", self.payment_latency_ms.to_string()),
            ("SAGA_CALL_TIMEOUT_MS", self.call_timeout_ms.to_string()),
            ("ORDER_LEASE_MS", self.lease_ms.to_string()),
            ("RECOVERY_INTERVAL_MS", "100".to_owned()),
            ("UPSTREAM_TIMEOUT_MS", self.upstream_timeout_ms.to_string()),
            ("DB_MAX_CONNECTIONS", self.db_max_connections.to_string()),
            ("SHUTDOWN_GRACE_SECONDS", self.grace_seconds.to_string()),
            ("SHUTDOWN_DELAY_MS", self.shutdown_delay_ms.to_string()),
            (
                "RATE_LIMIT_PER_ADDRESS",
                self.rate_limit_per_address.to_string(),
            ),
            ("RATE_LIMIT_PER_KEY", self.rate_limit_per_key.to_string()),
            (
                "HEADER_READ_TIMEOUT_MS",
                self.header_read_timeout_ms.to_string(),
            ),
            ("MAX_CONNECTIONS", self.max_connections.to_string()),
            ("BIND_ADDRESS", "127.0.0.1".to_owned()),
            ("LOG_LEVEL", "info".to_owned()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        if let Some(keys) = &self.api_keys {
            vars.push(("API_KEYS".to_owned(), keys.clone()));
        }
        // Separate processes share the gateway's signing secret only when it is given.
        let oidc = self.env.iter().any(|(key, _)| key == "OIDC_ISSUER");
        if self.api_keys.is_some() || oidc {
            vars.push((
                "IDENTITY_SIGNING_SECRET".to_owned(),
                "test-secret-of-at-least-32-bytes!".to_owned(),
            ));
        }
        for (key, value) in &self.env {
            vars.retain(|(k, _)| k != key);
            vars.push((key.clone(), value.clone()));
        }
        vars
    }
}

/// A running component: a task of this process, or a child process of the real binary.
enum Handle {
    Task {
        shutdown: Shutdown,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    },
    Process(std::process::Child),
}

/// Where the components run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// All four in the test's process: fast, and stops are graceful.
    InProcess,
    /// Each one a separate `pedidos-veloz` process: crashes are real SIGKILLs.
    Processes,
    /// All four in one `pedidos-veloz` process, as a user runs it: stopping,
    /// crashing or restarting any component does it to that one process.
    AllInOne,
}

pub struct Platform {
    pub backend: Backend,
    mode: Mode,
    /// The variables of [`Options::environment`], for the child processes.
    env: Vec<(String, String)>,
    /// Where replica 0 of each component listens (the gateway: the [`Front`], if any).
    pub topology: Topology,
    /// Where every replica of each component listens, started or not.
    slots: HashMap<ComponentKind, Vec<SocketAddr>>,
    /// The connection balancer in front of several gateways.
    front: Option<Front>,
    pub http: Http,
    /// The settings the environment describes, as the all-in-one mode reads them.
    config: AllInOne,
    common: Common,
    handles: HashMap<(ComponentKind, usize), Handle>,
    service_env: HashMap<ComponentKind, Vec<(String, String)>>,
    dir: tempfile::TempDir,
    /// The admin URL, the test database and its own role (if any), to drop them.
    pg_database: Option<(String, String, bool)>,
    /// The test hosts, with [`Options::hosts`].
    network: Option<Network>,
}

impl Platform {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, Options::default()).await
    }

    pub async fn start_with(backend: Backend, options: Options) -> Self {
        Self::start_in(Mode::InProcess, backend, options).await
    }

    pub async fn start_in(mode: Mode, backend: Backend, options: Options) -> Self {
        let slots_per_component = options.replicas + options.spare_replicas;
        assert!(
            options.replicas >= 1 && (mode == Mode::Processes || slots_per_component == 1),
            "replicas need Mode::Processes"
        );
        assert!(
            mode == Mode::Processes || !options.hosts,
            "test hosts need Mode::Processes"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let env = options.environment();
        let mut vars = env.clone();
        let pg_database = match backend {
            // Each service's SQLite file in the temporary folder: the binary's default.
            Backend::Sqlite => None,
            Backend::Postgres => {
                let admin = postgres_admin_url();
                let name = format!("pv_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to the PostgreSQL admin URL");
                let mut base = admin
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .unwrap_or(admin.clone());
                let create = if options.own_role {
                    sqlx::query(&format!("CREATE ROLE {name} LOGIN"))
                        .execute(&mut conn)
                        .await
                        .expect("create the test role");
                    base = with_user(&base, &name);
                    format!("CREATE DATABASE {name} OWNER {name}")
                } else {
                    format!("CREATE DATABASE {name}")
                };
                sqlx::query(&create)
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                // The three services share one fresh database: their tables and migration versions are disjoint.
                let url = format!("{base}/{name}");
                for setting in [
                    "ESTOQUE_DATABASE_URL",
                    "PAGAMENTOS_DATABASE_URL",
                    "PEDIDOS_DATABASE_URL",
                ] {
                    vars.push((setting.to_owned(), url.clone()));
                }
                Some((admin, name, options.own_role))
            }
        };
        let cli = Cli::from_env_vars(&vars).unwrap_or_else(|e| panic!("the test settings: {e}"));
        let common = cli.common.common();
        let config = cli.all.into_config(dir.path());
        let any = SocketAddr::new(common.bind, 0);
        let mut platform = Platform {
            backend,
            mode,
            env,
            topology: Topology {
                gateway: any,
                pedidos: any,
                pagamentos: any,
                estoque: any,
            },
            slots: HashMap::new(),
            front: None,
            http: Http::new(),
            config,
            common,
            handles: HashMap::new(),
            service_env: HashMap::new(),
            dir,
            pg_database,
            network: None,
        };
        if options.hosts {
            let database = (backend == Backend::Postgres)
                .then(|| network::database_addr(&postgres_admin_url()));
            let network = Network::create(slots_per_component, database).await;
            for service in ComponentKind::ALL {
                let addrs: Vec<SocketAddr> = (0..slots_per_component)
                    .map(|slot| network.addr(service, slot))
                    .collect();
                platform.topology.set(service, addrs[0]);
                platform.slots.insert(service, addrs);
            }
            if slots_per_component > 1 {
                let gateways = platform.slots[&ComponentKind::Gateway].clone();
                let front = Front::start(any, gateways).await;
                platform.topology.gateway = front.addr();
                platform.front = Some(front);
            }
            platform.network = Some(network);
            for service in ComponentKind::ALL {
                for slot in 0..options.replicas {
                    platform.run(service, slot, None).await;
                }
            }
            return platform;
        }
        // Bind everything first so each component knows where the others are.
        let mut listeners = Vec::new();
        for service in ComponentKind::ALL {
            let mut addrs = Vec::new();
            for slot in 0..slots_per_component {
                let listener = bind(any).await.expect("bind");
                addrs.push(listener.local_addr().expect("addr"));
                if slot < options.replicas {
                    listeners.push((service, slot, listener));
                }
            }
            platform.topology.set(service, addrs[0]);
            platform.slots.insert(service, addrs);
        }
        if slots_per_component > 1 {
            let front = Front::start(any, platform.slots[&ComponentKind::Gateway].clone()).await;
            platform.topology.gateway = front.addr();
            platform.front = Some(front);
        }
        if mode == Mode::AllInOne {
            // The one process binds every port itself.
            drop(listeners);
            platform.spawn_all_in_one().await;
            return platform;
        }
        for (service, slot, listener) in listeners {
            platform.run(service, slot, Some(listener)).await;
        }
        platform
    }

    /// Whose handle runs one replica: in `Mode::AllInOne`, the one process's.
    fn key(&self, service: ComponentKind, slot: usize) -> (ComponentKind, usize) {
        match self.mode {
            Mode::AllInOne => (ComponentKind::Gateway, 0),
            _ => (service, slot),
        }
    }

    /// Starts the binary with no subcommand (all four components) on the
    /// topology's ports and the platform's databases, and waits until it is live.
    async fn spawn_all_in_one(&mut self) {
        let port = |kind| self.topology.addr(kind).port().to_string();
        let mut cmd = self.command(None, "all-in-one.log");
        cmd.env("GATEWAY_PORT", port(ComponentKind::Gateway))
            .env("PEDIDOS_PORT", port(ComponentKind::Pedidos))
            .env("PAGAMENTOS_PORT", port(ComponentKind::Pagamentos))
            .env("ESTOQUE_PORT", port(ComponentKind::Estoque))
            .env("INTERNAL_BIND_ADDRESS", "127.0.0.1");
        for (kind, setting) in [
            (ComponentKind::Estoque, "ESTOQUE_DATABASE_URL"),
            (ComponentKind::Pagamentos, "PAGAMENTOS_DATABASE_URL"),
            (ComponentKind::Pedidos, "PEDIDOS_DATABASE_URL"),
        ] {
            cmd.env(setting, self.database_url(kind));
        }
        let child = cmd.spawn().expect("spawn pedidos-veloz");
        self.handles
            .insert((ComponentKind::Gateway, 0), Handle::Process(child));
        self.wait_live(
            &self.service_url(ComponentKind::Gateway, "/livez"),
            "pedidos-veloz",
        )
        .await;
    }

    /// The binary, with the platform's environment, its output appended to `log`;
    /// on the test host of `replica` if the platform has them.
    fn command(&self, replica: Option<(ComponentKind, usize)>, log: &str) -> std::process::Command {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(log))
            .expect("log file");
        let binary = env!("CARGO_BIN_EXE_pedidos-veloz");
        let mut cmd = match (&self.network, replica) {
            (Some(network), Some((kind, slot))) => network.command(kind, slot, binary),
            _ => std::process::Command::new(binary),
        };
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        cmd
    }

    async fn wait_live(&self, live: &str, what: &str) {
        for _ in 0..200 {
            if let Ok(Ok(r)) =
                tokio::time::timeout(Duration::from_millis(200), self.http.try_send("GET", live))
                    .await
            {
                if r == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{what} did not come up; see its log");
    }

    async fn run(
        &mut self,
        service: ComponentKind,
        slot: usize,
        listener: Option<tokio::net::TcpListener>,
    ) {
        if self.mode == Mode::AllInOne {
            drop(listener); // the one process binds every port itself
            if !self.handles.contains_key(&self.key(service, slot)) {
                self.spawn_all_in_one().await;
            }
            return;
        }
        if self.mode == Mode::Processes {
            drop(listener); // the child binds the port itself
            self.spawn(service, slot).await;
            return;
        }
        let listener = listener.expect("an in-process component needs its listener");
        let shutdown = Shutdown::new();
        let component = build(service, &self.config, &self.common, &self.topology)
            .await
            .unwrap_or_else(|e| panic!("build {}: {e:#}", service.name()));
        let task = tokio::spawn(serve(
            component,
            listener,
            shutdown.clone(),
            self.common.grace,
        ));
        self.handles
            .insert((service, slot), Handle::Task { shutdown, task });
    }

    /// Where one replica listens.
    pub fn replica_addr(&self, service: ComponentKind, slot: usize) -> SocketAddr {
        self.slots[&service][slot]
    }

    /// Every replica's URL, comma-separated: how `caller` is told about them.
    fn urls(&self, caller: ComponentKind, service: ComponentKind) -> String {
        if let Some(network) = &self.network {
            return network.urls(caller, service);
        }
        let urls: Vec<String> = self.slots[&service]
            .iter()
            .map(|addr| pedidos_veloz::url(*addr))
            .collect();
        urls.join(",")
    }

    /// Starts the real binary for one replica of a component and waits until it is live.
    async fn spawn(&mut self, service: ComponentKind, slot: usize) {
        let name = match slot {
            0 => format!("{}.log", service.command()),
            n => format!("{}-{n}.log", service.command()),
        };
        let mut cmd = self.command(Some((service, slot)), &name);
        cmd.arg(service.command())
            .env("PORT", self.replica_addr(service, slot).port().to_string())
            .env(
                "PEDIDOS_SERVICE_URL",
                self.urls(service, ComponentKind::Pedidos),
            )
            .env(
                "PAGAMENTOS_SERVICE_URL",
                self.urls(service, ComponentKind::Pagamentos),
            )
            .env(
                "ESTOQUE_SERVICE_URL",
                self.urls(service, ComponentKind::Estoque),
            )
            .envs(
                self.service_env
                    .get(&service)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k, v)),
            );
        if let Some(db) = self.config.database_url(service) {
            match &self.network {
                Some(network) if self.backend == Backend::Postgres => {
                    cmd.env("DATABASE_URL", network.database_url(db))
                }
                _ => cmd.env("DATABASE_URL", db),
            };
        }
        if self.network.is_some() {
            // Its own host: every address of it is the test's.
            cmd.env("BIND_ADDRESS", "0.0.0.0");
        }
        let child = cmd.spawn().expect("spawn pedidos-veloz");
        self.handles.insert((service, slot), Handle::Process(child));
        let live = self.replica_url(service, slot, "/livez");
        self.wait_live(&live, service.command()).await;
    }

    /// Waits until one replica answers `/readyz` 200 (its database reachable).
    pub async fn wait_ready(&self, service: ComponentKind, slot: usize) {
        let ready = self.replica_url(service, slot, "/readyz");
        for _ in 0..200 {
            let answer = tokio::time::timeout(
                Duration::from_millis(500),
                Http::new().try_send("GET", &ready),
            )
            .await;
            if matches!(answer, Ok(Ok(200))) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} replica {slot} never became ready", service.name());
    }

    /// The database URL of a service, as its component was given it.
    fn database_url(&self, service: ComponentKind) -> &str {
        self.config
            .database_url(service)
            .unwrap_or_else(|| panic!("{} has no database", service.name()))
    }

    /// Graceful stop (SIGTERM for a process): drain, finish in-flight requests, close the pools.
    pub async fn stop(&mut self, service: ComponentKind) {
        match self.handles.remove(&self.key(service, 0)) {
            Some(Handle::Task { shutdown, task }) => {
                shutdown.trigger(Duration::ZERO);
                let _ = task.await;
            }
            Some(Handle::Process(mut child)) => {
                let _ = std::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(child.id().to_string())
                    .status();
                let status = tokio::task::spawn_blocking(move || child.wait())
                    .await
                    .expect("join")
                    .expect("wait");
                assert!(
                    status.success(),
                    "{} exited with {status} after SIGTERM",
                    service.name()
                );
            }
            None => {}
        }
    }

    /// SIGTERM to a process, watching it go: returns whether `/readyz` answered 503
    /// before the listener closed, and the exit status and time. Process mode only.
    pub async fn terminate(&mut self, service: ComponentKind) -> Termination {
        self.terminate_replica(service, 0).await
    }

    /// [`Platform::terminate`] of one replica.
    pub async fn terminate_replica(&mut self, service: ComponentKind, slot: usize) -> Termination {
        let Some(Handle::Process(mut child)) = self.handles.remove(&self.key(service, slot)) else {
            panic!(
                "terminate() needs Mode::Processes and a running {}",
                service.name()
            );
        };
        let started = std::time::Instant::now();
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let ready = self.replica_url(service, slot, "/readyz");
        let mut saw_not_ready = false;
        let mut closed_after = None;
        // A fresh client per probe: a pooled connection would outlive the listener.
        while closed_after.is_none() && started.elapsed() < Duration::from_secs(60) {
            match tokio::time::timeout(
                Duration::from_millis(500),
                Http::new().try_send("GET", &ready),
            )
            .await
            {
                Ok(Ok(503)) => saw_not_ready = true,
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(_)) => closed_after = Some(started.elapsed()),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (status, exited_after) = tokio::task::spawn_blocking(move || {
            let status = child.wait().expect("wait");
            (status, started.elapsed())
        })
        .await
        .expect("join");
        Termination {
            saw_not_ready,
            closed_after,
            status,
            exited_after,
        }
    }

    /// A crash: SIGKILL. Only in process mode: in-process tasks cannot be killed mid-flight.
    pub async fn crash(&mut self, service: ComponentKind) {
        self.crash_replica(service, 0).await;
    }

    /// [`Platform::crash`] of one replica.
    pub async fn crash_replica(&mut self, service: ComponentKind, slot: usize) {
        let key = self.key(service, slot);
        match self.handles.remove(&key) {
            Some(Handle::Process(mut child)) => {
                let _ = child.kill();
                let _ = tokio::task::spawn_blocking(move || child.wait()).await;
            }
            Some(other) => {
                self.handles.insert(key, other);
                panic!("crash() needs Mode::Processes");
            }
            None => {}
        }
    }

    /// Environment variables for `service`'s next start, on top of the options'
    /// (`Mode::Processes` only): e.g. a slow payment processor.
    pub fn set_service_env(&mut self, service: ComponentKind, env: &[(&str, &str)]) {
        self.service_env.insert(
            service,
            env.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
    }

    /// The folder of the processes' logs (`gateway.log`, `orders.log` …).
    pub fn log_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Starts a stopped component again on the same port.
    pub async fn restart(&mut self, service: ComponentKind) {
        // Connections pooled to the old process are dead: start with fresh ones.
        self.http = Http::new();
        self.start_replica(service, 0).await;
    }

    /// Starts one replica (a stopped one, or a spare: scale out) on its port and
    /// waits until it is live; [`Platform::wait_ready`] waits for its readiness.
    pub async fn start_replica(&mut self, service: ComponentKind, slot: usize) {
        if self.network.is_some() {
            // Its address is on its own host: nothing of this machine to wait for.
            self.run(service, slot, None).await;
            return;
        }
        let addr = self.replica_addr(service, slot);
        let mut tries = 0;
        let listener = loop {
            match bind(addr).await {
                Ok(listener) => break listener,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => panic!("rebind {addr}: {err}"),
            }
        };
        self.run(service, slot, Some(listener)).await;
    }

    /// The process id of one replica, if it runs as a process of its own.
    pub fn pid(&self, service: ComponentKind, slot: usize) -> Option<u32> {
        match self.handles.get(&self.key(service, slot)) {
            Some(Handle::Process(child)) => Some(child.id()),
            _ => None,
        }
    }

    /// The platform's PostgreSQL database, as the admin URL's superuser reaches it
    /// (another client of the same server), and its name.
    pub fn admin_database(&self) -> (String, &str) {
        let (admin, name, _) = self
            .pg_database
            .as_ref()
            .expect("the platform is not on PostgreSQL");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        (format!("{base}/{name}"), name)
    }

    /// The test hosts, to put faults on the links between them ([`Options::hosts`]).
    pub fn network(&self) -> &Network {
        self.network
            .as_ref()
            .expect("the platform was started without Options::hosts")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.topology.gateway)
    }

    pub fn service_url(&self, service: ComponentKind, path: &str) -> String {
        format!("http://{}{path}", self.topology.addr(service))
    }

    pub fn replica_url(&self, service: ComponentKind, slot: usize, path: &str) -> String {
        format!("http://{}{path}", self.replica_addr(service, slot))
    }

    /// The Prometheus text a component serves on its own `/metrics`.
    pub async fn metrics(&self, service: ComponentKind) -> String {
        let url = self.service_url(service, "/metrics");
        self.http.send("GET", &url, None, &[]).await.text
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.http.send("GET", &self.url(path), None, &[]).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Resp {
        self.http
            .send("POST", &self.url(path), Some(body), &[])
            .await
    }

    /// Creates an item with `quantity` units at `price`, returning its id.
    pub async fn item(&self, name: &str, quantity: i64, price: f64) -> i64 {
        let r = self
            .post(
                "/items",
                serde_json::json!({"name": name, "quantity": quantity, "price": price}),
            )
            .await;
        assert_eq!(r.status, 201, "create item: {}", r.text);
        r.body["id"].as_i64().expect("item id")
    }

    pub async fn order(&self, customer: &str, lines: &[(i64, i64)]) -> Resp {
        let items: Vec<Value> = lines
            .iter()
            .map(|(i, q)| serde_json::json!({"item_id": i, "quantity": q}))
            .collect();
        self.post(
            "/orders",
            serde_json::json!({"customer": customer, "items": items}),
        )
        .await
    }

    /// Every element of a paginated list, following `Link` headers.
    pub async fn all(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next = Some(format!(
            "{path}{}limit=1000",
            if path.contains('?') { "&" } else { "?" }
        ));
        while let Some(p) = next.take() {
            let r = self.get(&p).await;
            assert_eq!(r.status, 200, "GET {p}: {}", r.text);
            out.extend(r.body.as_array().cloned().unwrap_or_default());
            if let Some(link) = r.headers.get("link").and_then(|v| v.to_str().ok()) {
                next = link.split(['<', '>']).nth(1).map(str::to_owned);
            }
        }
        out
    }

    /// Waits until no order is pending (the recovery worker caught up), or panics.
    pub async fn settle(&self, within: Duration) {
        let started = std::time::Instant::now();
        loop {
            let pending = self.all("/orders?status=pending").await;
            if pending.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < within,
                "{} orders still pending after {within:?}",
                pending.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for (_, handle) in self.handles.drain() {
            match handle {
                Handle::Task { shutdown, task } => {
                    shutdown.stop.cancel();
                    task.abort();
                }
                Handle::Process(mut child) => {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        if let Some((admin, name, own_role)) = self.pg_database.take() {
            // Best effort, in the background: the test's runtime is going away.
            std::thread::spawn(move || {
                if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    rt.block_on(async move {
                        if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(&mut conn)
                            .await;
                            if own_role {
                                let _ = sqlx::query(&format!("DROP ROLE IF EXISTS {name}"))
                                    .execute(&mut conn)
                                    .await;
                            }
                        }
                    });
                }
            })
            .join()
            .ok();
        }
    }
}

/// `postgres://user@host/…` with another user (and no password).
pub fn with_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

/// How a process went down after SIGTERM.
#[derive(Debug)]
pub struct Termination {
    /// `/readyz` answered 503 at least once before the listener closed.
    pub saw_not_ready: bool,
    /// When the listener stopped accepting, after the signal.
    pub closed_after: Option<Duration>,
    pub status: std::process::ExitStatus,
    /// When the process exited, after the signal.
    pub exited_after: Duration,
}
