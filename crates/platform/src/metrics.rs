//! Prometheus metrics of one component: HTTP, process, database pool and build info,
//! plus whatever the component registers for its business.
//!
//! Each component owns its registry (carrying a constant `component` label), so four
//! components in one process still export four separate, non-overlapping `/metrics`.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::db::Db;

/// Latency buckets for a fast service: 0.5 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

/// The exemplar of a request duration: the trace that request belongs to, so that a
/// latency panel leads to a trace (Prometheus stores it with exemplar storage on).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    pub trace_id: String,
}

fn latency_histogram_with_exemplars() -> HistogramWithExemplars<TraceExemplar> {
    HistogramWithExemplars::new(LATENCY_BUCKETS.iter().copied())
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: &'static str,
    pub route: String,
    pub status_class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: &'static str,
    pub route: String,
}

/// Request counters, latency histogram and in-flight gauge, recorded by the
/// request middleware in [`crate::request_id`].
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<RouteLabels, HistogramWithExemplars<TraceExemplar>>,
    pub in_flight: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    git_sha: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolStateLabels {
    state: &'static str,
}

#[derive(Clone, Default)]
struct ProcessMetrics {
    resident: Gauge,
    virtual_bytes: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
    open_fds: Gauge,
    max_fds: Gauge,
    start_time: Gauge,
    last_cpu: Arc<Mutex<f64>>,
}

#[derive(Clone)]
struct PoolMetrics {
    db: Db,
    connections: Family<PoolStateLabels, Gauge>,
    max: Gauge,
}

/// The registry under construction: the component adds its own metrics, then calls
/// [`MetricsBuilder::finish`].
pub struct MetricsBuilder {
    registry: Registry,
    http: HttpMetrics,
    process: ProcessMetrics,
    pool: Option<PoolMetrics>,
}

impl MetricsBuilder {
    pub fn new(component: &'static str) -> Self {
        let mut registry = Registry::with_labels(std::iter::once((
            Cow::Borrowed("component"),
            Cow::Borrowed(component),
        )));
        let http = HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram_with_exemplars),
            in_flight: Gauge::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status class",
            http.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            http.duration.clone(),
        );
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served now",
            http.in_flight.clone(),
        );

        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                git_sha: option_env!("GIT_SHA").unwrap_or("unknown"),
            })
            .set(1);
        registry.register(
            "build_info",
            "Version and git commit of the running build",
            build,
        );

        let process = ProcessMetrics::default();
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            process.resident.clone(),
        );
        registry.register(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            process.virtual_bytes.clone(),
        );
        registry.register(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            process.cpu_seconds.clone(),
        );
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            process.open_fds.clone(),
        );
        registry.register(
            "process_max_fds",
            "Limit of open file descriptors",
            process.max_fds.clone(),
        );
        registry.register(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            process.start_time.clone(),
        );

        Self {
            registry,
            http,
            process,
            pool: None,
        }
    }

    /// Adds the pool metrics of the component's database.
    pub fn with_db(&mut self, db: &Db) {
        let pool = PoolMetrics {
            db: db.clone(),
            connections: Family::default(),
            max: Gauge::default(),
        };
        self.registry.register(
            "db_pool_connections",
            "Database connections by state (idle, in_use)",
            pool.connections.clone(),
        );
        self.registry.register(
            "db_pool_max_connections",
            "Largest number of database connections the pool may open",
            pool.max.clone(),
        );
        self.registry.register(
            "db_pool_acquire_duration_seconds",
            "Time a request waited for a database connection",
            db.acquire_histogram(),
        );
        self.pool = Some(pool);
    }

    pub fn registry(&mut self) -> &mut Registry {
        &mut self.registry
    }

    pub fn http(&self) -> HttpMetrics {
        self.http.clone()
    }

    pub fn finish(self) -> Arc<Metrics> {
        Arc::new(Metrics {
            registry: self.registry,
            process: self.process,
            pool: self.pool,
        })
    }
}

/// A finished registry, served by [`metrics_handler`].
pub struct Metrics {
    registry: Registry,
    process: ProcessMetrics,
    pool: Option<PoolMetrics>,
}

impl Metrics {
    /// The OpenMetrics text of this component, with process and pool gauges sampled now.
    pub fn render(&self) -> String {
        self.process.sample();
        if let Some(pool) = &self.pool {
            let stats = pool.db.stats();
            pool.connections
                .get_or_create(&PoolStateLabels { state: "idle" })
                .set(i64::from(stats.idle));
            pool.connections
                .get_or_create(&PoolStateLabels { state: "in_use" })
                .set(i64::from(stats.in_use));
            pool.max.set(i64::from(stats.max));
        }
        let mut out = String::with_capacity(16 * 1024);
        if let Err(err) = encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "cannot encode metrics");
        }
        out
    }
}

pub async fn metrics_handler(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}

impl ProcessMetrics {
    /// Reads /proc/self (Linux); elsewhere the gauges stay at zero.
    fn sample(&self) {
        const TICKS_PER_SECOND: f64 = 100.0;
        const PAGE_SIZE: i64 = 4096;
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // Fields after the parenthesised command name, which may itself hold spaces.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
            return;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| {
            fields
                .get(n - 3)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let cpu = (field(14) + field(15)) as f64 / TICKS_PER_SECOND;
        if let Ok(mut last) = self.last_cpu.lock() {
            if cpu > *last {
                self.cpu_seconds.inc_by(cpu - *last);
                *last = cpu;
            }
        }
        self.virtual_bytes.set(field(23));
        self.resident.set(field(24) * PAGE_SIZE);
        if let Some(boot) = boot_time() {
            self.start_time
                .set(boot + (field(22) as f64 / TICKS_PER_SECOND) as i64);
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(dir.count() as i64);
        }
        if let Some(max) = max_open_files() {
            self.max_fds.set(max);
        }
    }
}

fn boot_time() -> Option<i64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn max_open_files() -> Option<i64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
}
