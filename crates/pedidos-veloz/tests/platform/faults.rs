//! Fault injection under load: the four components as separate processes on
//! PostgreSQL, orders at a steady rate from the load generator, and while the load
//! runs one fault per scenario. After each, once the recovery worker has caught up,
//! the invariants of SPEC section 5 are checked from the databases, and one line per
//! scenario is printed: requests sent, answers by status, time to recover, violations.
//!
//! Ignored by default (they take minutes and need PostgreSQL). Run them with
//!
//! ```text
//! PV_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/postgres \
//!   cargo test -p pedidos-veloz --test platform faults:: -- --ignored --nocapture --test-threads=1
//! ```
//!
//! (or `.ci/faults.sh`). The PostgreSQL restart scenario runs `PV_TEST_POSTGRES_RESTART`
//! (a shell command, default `pg_ctlcluster --skip-systemctl-redirect 15 main restart`),
//! which restarts the server for every client on it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::harness::{Backend, Http, Mode, Options, Platform};
use loadgen::{Config, Load, Report, Scenario};
use pedidos_veloz::ComponentKind;
use serde_json::json;
use tokio_util::sync::CancellationToken;

mod cluster;
mod database;
mod durability;
mod network;
mod rolling;
mod soak;

/// Orders a second offered during every scenario.
const RATE: f64 = 25.0;
/// Units of stock per item: far more than a scenario sells, so no order is short.
const STOCK: i64 = 1_000_000;
/// Items the orders spread over.
const ITEMS: usize = 4;
/// The load alone before the fault, measured as the latency at rest.
const BEFORE: Duration = Duration::from_secs(4);
/// Load after the fault has ended.
const AFTER: Duration = Duration::from_secs(6);
/// Longest wait for the recovery worker to finish every pending order.
const SETTLE: Duration = Duration::from_secs(60);

fn options() -> Options {
    Options {
        // A payment takes a while, so a kill finds sagas between their steps.
        payment_latency_ms: 40,
        call_timeout_ms: 1000,
        lease_ms: 2000,
        upstream_timeout_ms: 10_000,
        decline_rate: 0.1,
        shutdown_delay_ms: 500,
        grace_seconds: 10,
        ..Default::default()
    }
}

/// One running scenario: the platform, the load in the background and the clock.
struct Run {
    name: &'static str,
    p: Platform,
    added: Vec<(i64, i64)>,
    stop: CancellationToken,
    load: tokio::task::JoinHandle<Report>,
    /// The same load before the fault: the latency at rest.
    rest: Report,
    notes: Vec<String>,
}

impl Run {
    async fn start(name: &'static str, options: Options) -> Run {
        let p = Platform::start_in(Mode::Processes, Backend::Postgres, options).await;
        let mut added = Vec::new();
        for n in 0..ITEMS {
            added.push((p.item(&format!("Falha {n}"), STOCK, 12.5).await, STOCK));
        }
        let config = Config {
            base_url: p.url(""),
            scenario: Scenario::OrderSpread {
                item_ids: added.iter().map(|(id, _)| *id).collect(),
            },
            load: Load::Open {
                rate_per_s: RATE,
                max_in_flight: 256,
            },
            // Long enough for any scenario: the run ends the load with `stop`.
            duration: Duration::from_secs(600),
            warmup: Duration::ZERO,
            request_timeout: Duration::from_secs(15),
        };
        let at_rest = Config {
            duration: BEFORE,
            ..config.clone()
        };
        let rest = loadgen::run(at_rest, CancellationToken::new()).await;
        let stop = CancellationToken::new();
        let load = tokio::spawn(loadgen::run(config, stop.clone()));
        // Sagas in flight when the fault strikes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Run {
            name,
            p,
            added,
            stop,
            load,
            rest,
            notes: Vec::new(),
        }
    }

    /// Waits until an order placed through the gateway completes again (201),
    /// returning the time since `since`.
    async fn until_orders_complete(&self, since: Instant) -> Duration {
        let url = self.p.url("/orders");
        let body =
            json!({"customer": "probe", "items": [{"item_id": self.added[0].0, "quantity": 1}]})
                .to_string()
                .into_bytes();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            // A new connection each time: the gateway itself may have restarted.
            let r = Http::new()
                .try_raw(
                    "POST",
                    &url,
                    body.clone(),
                    &[("content-type", "application/json")],
                    Duration::from_secs(15),
                )
                .await;
            if matches!(&r, Ok(r) if r.status == 201) {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{}: orders did not complete again within 60 s", self.name);
    }

    /// Keeps the load on for `AFTER`, stops it, waits for the recovery worker and
    /// checks the invariants; prints the scenario's line and returns its violations.
    async fn finish(self, recovered: Duration) -> usize {
        tokio::time::sleep(AFTER).await;
        self.stop.cancel();
        let report = self.load.await.expect("load task");
        let caught_up = caught_up(&self.p).await;
        let violations = self.p.invariant_violations(&self.added).await;
        let orders = self.p.all("/orders").await;
        let mut final_status: BTreeMap<String, usize> = BTreeMap::new();
        for o in &orders {
            *final_status
                .entry(o["status"].as_str().unwrap_or("?").to_owned())
                .or_default() += 1;
        }
        let statuses: Vec<String> = report
            .by_status
            .iter()
            .map(|(s, n)| format!("{s}:{n}"))
            .collect();
        println!(
            "FAULT {:<22} sent={:<5} answered=[{}] transport_errors={} p99={:.0}ms (at rest {:.0}ms) | recovered_in={:.1}s (after the fault) caught_up_in={} | orders={:?} | violations={}{}",
            self.name,
            report.sent,
            statuses.join(" "),
            report.transport_errors,
            report.p99_ms,
            self.rest.p99_ms,
            recovered.as_secs_f64(),
            caught_up.map_or("NOT (60 s)".to_owned(), |d| format!("{:.1}s", d.as_secs_f64())),
            final_status,
            violations.len(),
            if self.notes.is_empty() { String::new() } else { format!(" | {}", self.notes.join("; ")) },
        );
        for v in &violations {
            println!("  violation: {v}");
        }
        assert!(
            caught_up.is_some(),
            "{}: orders still pending after {SETTLE:?}",
            self.name
        );
        violations.len()
    }
}

/// Waits until no order is pending (the recovery workers have caught up), asking
/// through the gateway with a new connection each time: how long that took, or `None`
/// after `SETTLE`.
async fn caught_up(p: &Platform) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < SETTLE {
        let pending = Http::new()
            .try_raw(
                "GET",
                &p.url("/orders?status=pending&limit=1"),
                Vec::new(),
                &[],
                Duration::from_secs(5),
            )
            .await;
        if matches!(&pending, Ok(r) if r.status == 200 && r.body.as_array().is_some_and(Vec::is_empty))
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// SIGKILL one component mid-load, start it again after `down`.
async fn kill_and_restart(name: &'static str, service: ComponentKind, down: Duration) {
    kill_and_restart_with(name, service, down, options()).await;
}

async fn kill_and_restart_with(
    name: &'static str,
    service: ComponentKind,
    down: Duration,
    options: Options,
) {
    let mut run = Run::start(name, options).await;
    let fault_at = Instant::now();
    run.p.crash(service).await;
    let pending = run
        .p
        .count(
            ComponentKind::Pedidos,
            "SELECT COUNT(*) FROM orders WHERE status = 'pending'",
        )
        .await;
    run.notes
        .push(format!("{pending} orders pending right after the kill"));
    tokio::time::sleep(down).await;
    run.p.restart(service).await;
    let back = Instant::now();
    let recovered = run.until_orders_complete(back).await;
    run.notes.push(format!(
        "down {:.1}s, then back in {:.1}s",
        down.as_secs_f64(),
        back.duration_since(fault_at).as_secs_f64() - down.as_secs_f64()
    ));
    let violations = run.finish(recovered).await;
    assert_eq!(violations, 0, "{name}: invariant violations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn f1_payments_killed_and_back_after_5s() {
    kill_and_restart(
        "payments SIGKILL 5s",
        ComponentKind::Pagamentos,
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn f2_orders_killed_mid_saga() {
    // A slower processor keeps several sagas between their steps at any moment.
    kill_and_restart_with(
        "orders SIGKILL mid-saga",
        ComponentKind::Pedidos,
        Duration::from_secs(1),
        Options {
            payment_latency_ms: 300,
            ..options()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn f3_inventory_killed() {
    kill_and_restart(
        "inventory SIGKILL",
        ComponentKind::Estoque,
        Duration::from_secs(1),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn f4_postgres_restarted() {
    let mut run = Run::start("postgres restart", options()).await;
    let command = std::env::var("PV_TEST_POSTGRES_RESTART")
        .unwrap_or_else(|_| "pg_ctlcluster --skip-systemctl-redirect 15 main restart".into());
    let fault_at = Instant::now();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .status()
        .await
        .expect("run the PostgreSQL restart command");
    assert!(status.success(), "`{command}` failed: {status}");
    let back = Instant::now();
    let recovered = run.until_orders_complete(back).await;
    run.notes.push(format!(
        "restart took {:.1}s",
        back.duration_since(fault_at).as_secs_f64()
    ));
    let violations = run.finish(recovered).await;
    assert_eq!(violations, 0, "postgres restart: invariant violations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn f5_payments_slower_than_the_saga_timeout() {
    let mut run = Run::start("payments slower than timeout", options()).await;
    // 2.5 s per charge against SAGA_CALL_TIMEOUT_MS=1000 for 8 s, then normal again.
    run.p
        .set_service_env(ComponentKind::Pagamentos, &[("PAYMENT_LATENCY_MS", "2500")]);
    run.p.stop(ComponentKind::Pagamentos).await;
    run.p.restart(ComponentKind::Pagamentos).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    run.p.set_service_env(ComponentKind::Pagamentos, &[]);
    run.p.stop(ComponentKind::Pagamentos).await;
    run.p.restart(ComponentKind::Pagamentos).await;
    let back = Instant::now();
    let recovered = run.until_orders_complete(back).await;
    run.notes
        .push("PAYMENT_LATENCY_MS=2500 > SAGA_CALL_TIMEOUT_MS=1000 for 8 s".into());
    let violations = run.finish(recovered).await;
    assert_eq!(violations, 0, "slow payments: invariant violations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn f6_sigterm_each_component_under_load() {
    let mut run = Run::start("SIGTERM each component", options()).await;
    let grace = Duration::from_secs(options().grace_seconds);
    let item = run.added[0].0;
    for service in [
        ComponentKind::Pagamentos,
        ComponentKind::Estoque,
        ComponentKind::Pedidos,
        ComponentKind::Gateway,
    ] {
        // Requests in flight when the signal arrives: each must be answered.
        let mut in_flight = Vec::new();
        for n in 0..8 {
            let url = run.p.url("/orders");
            let body = json!({"customer": format!("term-{n}"), "items": [{"item_id": item, "quantity": 1}]})
                .to_string()
                .into_bytes();
            in_flight.push(tokio::spawn(async move {
                Http::new()
                    .try_raw(
                        "POST",
                        &url,
                        body,
                        &[("content-type", "application/json")],
                        Duration::from_secs(30),
                    )
                    .await
                    .map(|r| r.status)
            }));
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
        let t = run.p.terminate(service).await;
        let mut answers = Vec::new();
        for task in in_flight {
            answers.push(task.await.expect("request task"));
        }
        let lost: Vec<_> = answers.iter().filter(|a| a.is_err()).collect();
        run.notes.push(format!(
            "{}: readyz 503 first={} closed_after={:.2}s exit={} in {:.2}s, in-flight answers {:?}",
            service.name(),
            t.saw_not_ready,
            t.closed_after.map_or(f64::NAN, |d| d.as_secs_f64()),
            t.status.code().map_or("signal".into(), |c| c.to_string()),
            t.exited_after.as_secs_f64(),
            answers
                .iter()
                .map(|a| a.as_ref().map_or(0, |s| *s))
                .collect::<Vec<_>>()
        ));
        assert!(
            t.saw_not_ready,
            "{}: /readyz never answered 503",
            service.name()
        );
        assert!(
            t.status.success(),
            "{}: exit status {}",
            service.name(),
            t.status
        );
        assert!(
            t.exited_after
                <= grace
                    + Duration::from_millis(options().shutdown_delay_ms)
                    + Duration::from_secs(2),
            "{}: took {:?} to exit",
            service.name(),
            t.exited_after
        );
        assert!(
            lost.is_empty(),
            "{}: requests accepted before SIGTERM got no answer: {lost:?}",
            service.name()
        );
        run.p.restart(service).await;
    }
    let back = Instant::now();
    let recovered = run.until_orders_complete(back).await;
    let violations = run.finish(recovered).await;
    assert_eq!(violations, 0, "SIGTERM: invariant violations");
}
