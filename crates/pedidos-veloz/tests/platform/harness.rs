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
use pedidos_veloz::{AllInOne, Common, ComponentKind, Topology};
use platform::server::bind;
use platform::shutdown::Shutdown;
use serde_json::Value;

mod database;
mod front;
mod hosts;
mod http;
mod invariants;
mod lifecycle;
mod link;
mod network;

pub use database::with_user;
use database::TestDatabase;
pub use front::Front;
pub use http::{Http, Resp};
pub use lifecycle::Termination;
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
    /// Its PostgreSQL database, dropped with it.
    pg_database: Option<TestDatabase>,
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
                let (database, url) = TestDatabase::create(options.own_role).await;
                // The three services share one fresh database: their tables and migration versions are disjoint.
                for setting in [
                    "ESTOQUE_DATABASE_URL",
                    "PAGAMENTOS_DATABASE_URL",
                    "PEDIDOS_DATABASE_URL",
                ] {
                    vars.push((setting.to_owned(), url.clone()));
                }
                Some(database)
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
            platform.front_ready().await;
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
        platform.front_ready().await;
        platform
    }

    /// With several gateways, returns once the front sends connections to one: every
    /// gateway answers `/readyz` by now, but the front learns it at its next probe.
    async fn front_ready(&self) {
        if let Some(front) = &self.front {
            front
                .until_a_backend_is_ready(Duration::from_secs(10))
                .await;
        }
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

    /// The database URL of a service, as its component was given it.
    fn database_url(&self, service: ComponentKind) -> &str {
        self.config
            .database_url(service)
            .unwrap_or_else(|| panic!("{} has no database", service.name()))
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

    /// The platform's PostgreSQL database, as the admin URL's superuser reaches it
    /// (another client of the same server), and its name.
    pub fn admin_database(&self) -> (String, &str) {
        let database = self
            .pg_database
            .as_ref()
            .expect("the platform is not on PostgreSQL");
        (database.admin_url(), database.name())
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
        self.try_all(path, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Platform::all`] that says which page was not answered 200 (or not within
    /// `timeout`) instead of panicking: for reads while a fault is on.
    pub async fn try_all(&self, path: &str, timeout: Duration) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut next = Some(format!(
            "{path}{}limit=1000",
            if path.contains('?') { "&" } else { "?" }
        ));
        while let Some(p) = next.take() {
            let r = self
                .http
                .try_raw("GET", &self.url(&p), Vec::new(), &[], timeout)
                .await
                .map_err(|e| format!("GET {p}: {e}"))?;
            if r.status != 200 {
                return Err(format!("GET {p}: {} {}", r.status, r.text));
            }
            out.extend(r.body.as_array().cloned().unwrap_or_default());
            if let Some(link) = r.headers.get("link").and_then(|v| v.to_str().ok()) {
                next = link.split(['<', '>']).nth(1).map(str::to_owned);
            }
        }
        Ok(out)
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
    }
}
