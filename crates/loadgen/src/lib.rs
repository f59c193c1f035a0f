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
pub mod live;
pub mod otlp_sink;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
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

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One pooled keep-alive HTTP/1.1 client.
pub fn http_client(max_idle_per_host: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle_per_host.max(1))
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn uri(base_url: &str, path: &str) -> Result<Uri, String> {
    format!("{}{}", base(base_url), path)
        .parse()
        .map_err(|e| format!("bad URL {base_url}{path}: {e}"))
}

/// Sends one request and reads its whole answer: the status and the body.
pub async fn send(
    client: &HttpClient,
    method: Method,
    uri: Uri,
    body: Option<Bytes>,
) -> Result<(u16, Bytes), String> {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// Creates `count` items (`quantity` = `stock`, price 10.00) through `base_url` and
/// returns their ids. `api_key`, when the gateway has keys, must be an admin key.
pub async fn seed(
    base_url: &str,
    count: usize,
    stock: i64,
    api_key: Option<&str>,
) -> Result<Vec<i64>, String> {
    let client = http_client(8);
    let target = uri(base_url, "/items")?;
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let body = serde_json::json!({
            "name": format!("loadgen item {n}"),
            "description": "created by loadgen seed",
            "quantity": stock,
            "price": 10.0,
        });
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(target.clone())
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(key) = api_key {
            req = req.header("x-api-key", key);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status != 201 {
            return Err(format!(
                "POST /items answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        let item: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let id = item["id"]
            .as_i64()
            .ok_or_else(|| format!("POST /items answered no id: {item}"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// The ids of the first page of `GET /items`.
pub async fn list_item_ids(base_url: &str) -> Result<Vec<i64>, String> {
    let client = http_client(1);
    let (status, body) = send(&client, Method::GET, uri(base_url, "/items")?, None).await?;
    if status != 200 {
        return Err(format!("GET /items answered {status}"));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let list = match &value {
        serde_json::Value::Array(list) => list.clone(),
        other => other["items"].as_array().cloned().unwrap_or_default(),
    };
    Ok(list.iter().filter_map(|i| i["id"].as_i64()).collect())
}

// ---- the request mix ---------------------------------------------------------------

#[derive(Clone)]
struct Call {
    method: Method,
    uri: Uri,
    body: Option<Bytes>,
}

/// Everything a run sends, built once before the run starts.
struct Plan {
    list: Vec<Call>,
    item_gets: Vec<Call>,
    orders: Vec<Call>,
    /// Probability of an order; the rest are reads.
    order_share: f64,
}

impl Plan {
    fn pick(&self, rng: &mut SmallRng) -> &Call {
        if !self.orders.is_empty()
            && (self.order_share >= 1.0 || rng.random::<f64>() < self.order_share)
        {
            return &self.orders[rng.random_range(0..self.orders.len())];
        }
        if !self.item_gets.is_empty() && (self.list.is_empty() || rng.random::<bool>()) {
            return &self.item_gets[rng.random_range(0..self.item_gets.len())];
        }
        &self.list[rng.random_range(0..self.list.len())]
    }
}

fn order_call(base_url: &str, item_id: i64) -> Result<Call, String> {
    let body = format!(
        r#"{{"customer":"loadgen","items":[{{"item_id":{item_id},"quantity":1}}],"payment_method":"credit_card"}}"#
    );
    Ok(Call {
        method: Method::POST,
        uri: uri(base_url, "/orders")?,
        body: Some(Bytes::from(body)),
    })
}

fn get_call(base_url: &str, path: &str) -> Result<Call, String> {
    Ok(Call {
        method: Method::GET,
        uri: uri(base_url, path)?,
        body: None,
    })
}

async fn plan_for(base_url: &str, scenario: &Scenario) -> Result<Plan, String> {
    let reads = |ids: &[i64]| -> Result<(Vec<Call>, Vec<Call>), String> {
        let list = vec![get_call(base_url, "/items")?];
        let gets = ids
            .iter()
            .map(|id| get_call(base_url, &format!("/items/{id}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((list, gets))
    };
    Ok(match scenario {
        Scenario::Browse => {
            let ids = list_item_ids(base_url).await.unwrap_or_default();
            let (list, item_gets) = reads(&ids)?;
            Plan {
                list,
                item_gets,
                orders: vec![],
                order_share: 0.0,
            }
        }
        Scenario::OrderHot { item_id } => Plan {
            list: vec![],
            item_gets: vec![],
            orders: vec![order_call(base_url, *item_id)?],
            order_share: 1.0,
        },
        Scenario::OrderSpread { item_ids } => {
            if item_ids.is_empty() {
                return Err("OrderSpread needs at least one item id".into());
            }
            Plan {
                list: vec![],
                item_gets: vec![],
                orders: item_ids
                    .iter()
                    .map(|id| order_call(base_url, *id))
                    .collect::<Result<_, _>>()?,
                order_share: 1.0,
            }
        }
        Scenario::Mixed { item_ids } => {
            if item_ids.is_empty() {
                return Err("Mixed needs at least one item id".into());
            }
            let (list, item_gets) = reads(item_ids)?;
            Plan {
                list,
                item_gets,
                orders: item_ids
                    .iter()
                    .map(|id| order_call(base_url, *id))
                    .collect::<Result<_, _>>()?,
                order_share: 0.1,
            }
        }
    })
}

// ---- measuring -----------------------------------------------------------------------

struct Stats {
    hist: Histogram<u64>,
    by_status: BTreeMap<u16, u64>,
    errors: u64,
    sent: u64,
}

impl Stats {
    fn new() -> Self {
        Self {
            // 1 µs .. 10 min, 3 significant digits.
            hist: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds"),
            by_status: BTreeMap::new(),
            errors: 0,
            sent: 0,
        }
    }

    fn record(&mut self, outcome: Result<u16, ()>, latency: Duration) {
        self.sent += 1;
        match outcome {
            Ok(status) => {
                *self.by_status.entry(status).or_default() += 1;
                let us = (latency.as_micros() as u64).clamp(1, 600_000_000);
                self.hist.saturating_record(us);
            }
            Err(()) => self.errors += 1,
        }
    }

    fn merge(&mut self, other: &Stats) {
        let _ = self.hist.add(&other.hist);
        for (s, n) in &other.by_status {
            *self.by_status.entry(*s).or_default() += n;
        }
        self.errors += other.errors;
        self.sent += other.sent;
    }

    fn report(&self, duration_s: f64) -> Report {
        let q = |q: f64| {
            if self.hist.is_empty() {
                0.0
            } else {
                self.hist.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let answered: u64 = self.by_status.values().sum();
        Report {
            sent: self.sent,
            by_status: self.by_status.clone(),
            transport_errors: self.errors,
            duration_s,
            rps: if duration_s > 0.0 {
                answered as f64 / duration_s
            } else {
                0.0
            },
            p50_ms: q(0.5),
            p90_ms: q(0.9),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            max_ms: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.max() as f64 / 1000.0
            },
        }
    }
}

async fn execute(client: &HttpClient, call: &Call, timeout: Duration) -> Result<u16, ()> {
    let mut req = Request::builder()
        .method(call.method.clone())
        .uri(call.uri.clone());
    if call.body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(call.body.clone().unwrap_or_default()))
        .map_err(|_| ())?;
    let answer = async {
        let resp = client.request(req).await.map_err(|_| ())?;
        let status = resp.status().as_u16();
        resp.into_body().collect().await.map_err(|_| ())?;
        Ok(status)
    };
    match tokio::time::timeout(timeout, answer).await {
        Ok(outcome) => outcome,
        Err(_) => Err(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_percentiles_and_rate() {
        let mut stats = Stats::new();
        for ms in 1..=100u64 {
            stats.record(Ok(200), Duration::from_millis(ms));
        }
        stats.record(Err(()), Duration::from_millis(1));
        let report = stats.report(2.0);
        assert_eq!(report.sent, 101);
        assert_eq!(report.transport_errors, 1);
        assert_eq!(report.by_status[&200], 100);
        assert!((report.rps - 50.0).abs() < 1e-9);
        assert!((report.p50_ms - 50.0).abs() < 0.1, "{}", report.p50_ms);
        assert!((report.p99_ms - 99.0).abs() < 0.1, "{}", report.p99_ms);
        assert!((report.max_ms - 100.0).abs() < 0.1, "{}", report.max_ms);
    }

    #[test]
    fn mixed_plan_is_about_ten_percent_orders() {
        let orders = vec![order_call("http://h", 1).unwrap()];
        let plan = Plan {
            list: vec![get_call("http://h", "/items").unwrap()],
            item_gets: vec![get_call("http://h", "/items/1").unwrap()],
            orders,
            order_share: 0.1,
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let posts = (0..10_000)
            .filter(|_| plan.pick(&mut rng).method == Method::POST)
            .count();
        assert!((800..1200).contains(&posts), "{posts}");
    }
}
