//! Load generator for Pedidos Veloz.
//!
//! * **Closed** load: `concurrency` workers, each sends its next request as soon as the
//!   previous one answered. Latency is measured from the moment a request is sent.
//! * **Open** load: requests are *scheduled* at a fixed rate whatever the server does;
//!   latency is measured from the scheduled send time, so a server that stalls is charged
//!   for the whole queue it built (no coordinated omission). `max_in_flight` bounds the
//!   requests outstanding at once; when it is reached the schedule keeps running and the
//!   waiting time shows up in the latency.
//!
//! One keep-alive connection pool (hyper-util legacy client, HTTP/1.1, no TLS) serves
//! every request of a run; latencies go into an HDR histogram (1 µs .. 10 min,
//! 3 significant digits). Only requests sent after the warm-up and, for closed load,
//! answered before the end of the run are counted. Every HTTP answer counts in
//! `by_status` and in the latency figures, whatever its status; transport errors and
//! timeouts count in `transport_errors` only.

pub mod alert_log;
mod client;
pub mod live;
pub mod otlp_sink;
mod plan;
mod stats;

pub use client::{http_client, list_item_ids, seed, send, HttpClient};
use plan::{execute, get_call, plan_for, Plan};
use stats::Stats;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the simulated clients do.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// Half `GET /items` (first page), half `GET /items/{id}` of an item of that page.
    Browse,
    /// `POST /orders` of one unit of a single item: every order fights over one stock row.
    OrderHot { item_id: i64 },
    /// `POST /orders` of one unit of an item drawn at random from `item_ids`.
    OrderSpread { item_ids: Vec<i64> },
    /// 90 % reads (half `GET /items`, half `GET /items/{id}`), 10 % orders, over `item_ids`.
    Mixed { item_ids: Vec<i64> },
}

/// How requests are offered to the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// `concurrency` clients, each waiting for its answer before sending again.
    Closed { concurrency: usize },
    /// A fixed arrival rate; latency from the scheduled send time.
    Open {
        rate_per_s: f64,
        max_in_flight: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `http://127.0.0.1:5000` (the gateway) or any component; no trailing slash needed.
    pub base_url: String,
    pub scenario: Scenario,
    pub load: Load,
    /// How long requests are measured, after the warm-up.
    pub duration: Duration,
    /// How long requests are sent but not counted, before the measurement.
    pub warmup: Duration,
    /// A request without an answer by then counts as a transport error.
    pub request_timeout: Duration,
}

impl Config {
    /// A closed-load configuration with a 2 s warm-up and a 5 s timeout.
    pub fn closed(
        base_url: impl Into<String>,
        scenario: Scenario,
        concurrency: usize,
        duration: Duration,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            scenario,
            load: Load::Closed { concurrency },
            duration,
            warmup: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The outcome of a run. Latencies in milliseconds.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Requests counted (sent after the warm-up).
    pub sent: u64,
    /// HTTP answers by status code.
    pub by_status: BTreeMap<u16, u64>,
    /// Connection failures, broken answers and timeouts.
    pub transport_errors: u64,
    /// The measured window, in seconds.
    pub duration_s: f64,
    /// HTTP answers per second over the measured window.
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Report {
    /// HTTP answers whose status is 2xx.
    pub fn ok(&self) -> u64 {
        self.by_status
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    /// All HTTP answers, whatever the status.
    pub fn answered(&self) -> u64 {
        self.by_status.values().sum()
    }

    /// A human-readable table of the report.
    pub fn table(&self) -> String {
        let statuses: Vec<String> = self
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        format!(
            "  sent        {:>12}\n  answered    {:>12}   ({})\n  errors      {:>12}\n  duration    {:>12.2} s\n  throughput  {:>12.1} req/s\n  \
             latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n",
            self.sent,
            self.answered(),
            statuses.join(", "),
            self.transport_errors,
            self.duration_s,
            self.rps,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms
        )
    }
}

/// Runs one load test. Never panics on server trouble: errors are counted. A cancelled
/// `stop` ends the run early; the report then covers the time measured so far.
pub async fn run(config: Config, stop: CancellationToken) -> Report {
    let plan = match plan_for(&config.base_url, &config.scenario).await {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("loadgen: {err}");
            return Report::default();
        }
    };
    run_plan(config, plan, stop).await
}

/// Like [`run`], but every request is a `GET` of one of `paths` (drawn at random),
/// whatever `config.scenario` says: raw read throughput of one endpoint.
pub async fn run_get(config: Config, paths: &[String], stop: CancellationToken) -> Report {
    let list = match paths
        .iter()
        .map(|p| get_call(&config.base_url, p))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(list) if !list.is_empty() => list,
        Ok(_) => {
            eprintln!("loadgen: no path to GET");
            return Report::default();
        }
        Err(err) => {
            eprintln!("loadgen: {err}");
            return Report::default();
        }
    };
    let plan = Plan {
        list,
        item_gets: vec![],
        orders: vec![],
        order_share: 0.0,
    };
    run_plan(config, plan, stop).await
}

async fn run_plan(config: Config, plan: Plan, stop: CancellationToken) -> Report {
    let plan = Arc::new(plan);
    let start = Instant::now();
    let measure_from = start + config.warmup;
    let end = measure_from + config.duration;
    let timeout = config.request_timeout;
    let (stats, stopped_at) = match config.load {
        Load::Closed { concurrency } => {
            let concurrency = concurrency.max(1);
            let client = http_client(concurrency);
            let mut workers = Vec::with_capacity(concurrency);
            for n in 0..concurrency {
                let (client, plan, stop) = (client.clone(), plan.clone(), stop.clone());
                workers.push(tokio::spawn(async move {
                    let mut rng = SmallRng::seed_from_u64(0x5eed ^ n as u64);
                    let mut stats = Stats::new();
                    loop {
                        let sent_at = Instant::now();
                        if sent_at >= end || stop.is_cancelled() {
                            break;
                        }
                        let call = plan.pick(&mut rng);
                        let outcome = tokio::select! {
                            outcome = execute(&client, call, timeout) => outcome,
                            _ = tokio::time::sleep_until(end) => break,
                            _ = stop.cancelled() => break,
                        };
                        if sent_at >= measure_from {
                            stats.record(outcome, sent_at.elapsed());
                        }
                    }
                    stats
                }));
            }
            let mut total = Stats::new();
            for worker in workers {
                if let Ok(stats) = worker.await {
                    total.merge(&stats);
                }
            }
            (total, Instant::now().min(end))
        }
        Load::Open {
            rate_per_s,
            max_in_flight,
        } => {
            let max_in_flight = max_in_flight.max(1);
            let client = http_client(max_in_flight);
            let permits = Arc::new(Semaphore::new(max_in_flight));
            const SHARDS: usize = 16;
            let shards: Arc<Vec<Mutex<Stats>>> =
                Arc::new((0..SHARDS).map(|_| Mutex::new(Stats::new())).collect());
            let interval = Duration::from_secs_f64(1.0 / rate_per_s.max(0.001));
            let mut rng = SmallRng::seed_from_u64(0x5eed);
            let mut i: u64 = 0;
            loop {
                let scheduled = start + interval.mul_f64(i as f64);
                if scheduled >= end || stop.is_cancelled() {
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(scheduled) => {}
                    _ = stop.cancelled() => break,
                }
                let permit = tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                    _ = stop.cancelled() => break,
                };
                let call = plan.pick(&mut rng).clone();
                let (client, shards, stop) = (client.clone(), shards.clone(), stop.clone());
                let measured = scheduled >= measure_from;
                tokio::spawn(async move {
                    let outcome = tokio::select! {
                        outcome = execute(&client, &call, timeout) => outcome,
                        _ = stop.cancelled() => { drop(permit); return; }
                    };
                    // Latency from the *scheduled* send time: no coordinated omission.
                    let latency = scheduled.elapsed();
                    if measured {
                        if let Ok(mut shard) = shards[i as usize % SHARDS].lock() {
                            shard.record(outcome, latency);
                        }
                    }
                    drop(permit);
                });
                i += 1;
            }
            let stopped_at = Instant::now().min(end);
            // Wait for the requests in flight (each bounded by its own timeout).
            tokio::select! {
                _ = permits.acquire_many(max_in_flight as u32) => {}
                _ = stop.cancelled() => {}
            }
            let mut total = Stats::new();
            for shard in shards.iter() {
                if let Ok(shard) = shard.lock() {
                    total.merge(&shard);
                }
            }
            (total, stopped_at)
        }
    };
    let duration_s = stopped_at
        .checked_duration_since(measure_from)
        .unwrap_or_default()
        .as_secs_f64();
    stats.report(duration_s)
}
