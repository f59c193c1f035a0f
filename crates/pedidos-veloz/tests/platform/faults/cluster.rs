//! The load of the scenarios that change or break a running cluster: orders and
//! reads at fixed arrival rates (open model), each measured alone at rest first,
//! then both in the background while a scenario does its worst; at the end one row:
//! requests sent, answers by status, p99 during the fault next to p99 at rest,
//! recovery, violations.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{caught_up, ITEMS, SETTLE, STOCK};
use crate::harness::{Backend, Mode, Options, Platform};
use loadgen::{Config, Load, Report, Scenario};
use pedidos_veloz::ComponentKind;
use tokio_util::sync::CancellationToken;

/// Orders a second, and reads a second (item pages and single items).
const ORDER_RATE: f64 = 15.0;
const READ_RATE: f64 = 60.0;
/// Each load alone before the change: the latency at rest.
const AT_REST: Duration = Duration::from_secs(5);

/// The two loads of a run, or their reports.
pub(super) struct Loads<T> {
    pub orders: T,
    pub reads: T,
}

pub(super) struct Cluster {
    pub p: Platform,
    added: Vec<(i64, i64)>,
    rest: Loads<Report>,
    stop: CancellationToken,
    load: Loads<tokio::task::JoinHandle<Report>>,
}

impl Cluster {
    /// Starts the platform's processes, measures each load at rest, then starts
    /// both loads in the background.
    pub async fn start(options: Options) -> Cluster {
        let p = Platform::start_in(Mode::Processes, Backend::Postgres, options).await;
        let mut added = Vec::new();
        for n in 0..ITEMS {
            added.push((p.item(&format!("Réplica {n}"), STOCK, 9.9).await, STOCK));
        }
        let ids: Vec<i64> = added.iter().map(|(id, _)| *id).collect();
        let orders = Scenario::OrderSpread {
            item_ids: ids.clone(),
        };
        let reads = Scenario::Browse;
        let idle = CancellationToken::new();
        let rest = Loads {
            orders: tokio::spawn(loadgen::run(
                config(&p, orders.clone(), ORDER_RATE, AT_REST),
                idle.clone(),
            )),
            reads: tokio::spawn(loadgen::run(
                config(&p, reads.clone(), READ_RATE, AT_REST),
                idle,
            )),
        };
        let rest = Loads {
            orders: rest.orders.await.expect("load at rest"),
            reads: rest.reads.await.expect("load at rest"),
        };
        let stop = CancellationToken::new();
        // Long enough for any change: the run ends the load with `stop`.
        let until_stopped = Duration::from_secs(600);
        let load = Loads {
            orders: tokio::spawn(loadgen::run(
                config(&p, orders, ORDER_RATE, until_stopped),
                stop.clone(),
            )),
            reads: tokio::spawn(loadgen::run(
                config(&p, reads, READ_RATE, until_stopped),
                stop.clone(),
            )),
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        Cluster {
            p,
            added,
            rest,
            stop,
            load,
        }
    }

    /// The items the orders spread over.
    pub fn item_ids(&self) -> Vec<i64> {
        self.added.iter().map(|(id, _)| *id).collect()
    }

    /// Keeps the load on a little longer, stops it, waits for every order to finish
    /// and checks the invariants; prints the row (with `recovery`, the time the
    /// scenario measured from the end of its fault until every order placed before
    /// was final, if it did) and returns the loads' reports and the violations.
    pub async fn finish(
        self,
        name: &str,
        recovery: Option<Duration>,
        notes: &[String],
    ) -> (Loads<Report>, Vec<String>) {
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.stop.cancel();
        let during = Loads {
            orders: self.load.orders.await.expect("order load"),
            reads: self.load.reads.await.expect("read load"),
        };
        let caught_up = caught_up(&self.p).await;
        let violations = self.p.invariant_violations(&self.added).await;
        let mut by_status: BTreeMap<u16, u64> = during.orders.by_status.clone();
        for (status, n) in &during.reads.by_status {
            *by_status.entry(*status).or_default() += n;
        }
        let statuses: Vec<String> = by_status.iter().map(|(s, n)| format!("{s}:{n}")).collect();
        println!(
            "FAULT {:<22} sent={:<5} answered=[{}] transport_errors={} p99 orders={:.0}ms (at rest {:.0}ms) reads={:.0}ms (at rest {:.0}ms) | recovery={} caught_up_in={} | violations={} | {}",
            name,
            during.orders.sent + during.reads.sent,
            statuses.join(" "),
            during.orders.transport_errors + during.reads.transport_errors,
            during.orders.p99_ms,
            self.rest.orders.p99_ms,
            during.reads.p99_ms,
            self.rest.reads.p99_ms,
            recovery.map_or("-".to_owned(), |d| format!("{:.1}s", d.as_secs_f64())),
            caught_up.map_or("NOT (60 s)".to_owned(), |d| format!("{:.1}s", d.as_secs_f64())),
            violations.len(),
            notes.join("; "),
        );
        for v in &violations {
            println!("  violation: {v}");
        }
        assert!(
            caught_up.is_some(),
            "{name}: orders still pending after {SETTLE:?}"
        );
        (during, violations)
    }

    /// After a fault has ended: waits until every order placed before now is final,
    /// runs [`Cluster::finish`], and requires a clear answer to every request
    /// ([`unclear`]; with `kills` processes killed, a 502 for at most
    /// [`IN_FLIGHT_PER_KILL`] requests each), recovery within [`RECOVERY`], and no
    /// violation.
    pub async fn judge_after_heal(self, name: &str, notes: &[String], kills: u64) {
        let recovery = final_since_heal(&self.p).await;
        let (during, violations) = self.finish(name, recovery, notes).await;
        let recovery =
            recovery.unwrap_or_else(|| panic!("{name}: orders still pending 60 s after the heal"));
        assert!(
            recovery <= RECOVERY,
            "{name}: orders placed before the heal were final only {recovery:?} after it"
        );
        for (what, report) in [("orders", &during.orders), ("reads", &during.reads)] {
            let cut_off = report.by_status.get(&502).copied().unwrap_or(0);
            assert!(
                cut_off <= kills * IN_FLIGHT_PER_KILL,
                "{name}: {cut_off} {what} answered 502 with {kills} processes killed"
            );
            assert_eq!(
                unclear(report) - cut_off,
                0,
                "{name}: {what} without a clear answer"
            );
        }
        assert!(violations.is_empty(), "{name}: invariant violations");
    }
}

fn config(p: &Platform, scenario: Scenario, rate: f64, duration: Duration) -> Config {
    Config {
        base_url: p.url(""),
        scenario,
        load: Load::Open {
            rate_per_s: rate,
            max_in_flight: 256,
        },
        duration,
        warmup: Duration::ZERO,
        request_timeout: Duration::from_secs(15),
    }
}

/// Answers that are failures: 5xx, and requests that got no answer at all.
pub(super) fn failed(report: &Report) -> u64 {
    server_errors_but(report, &[])
}

/// Requests that got no answer, and 5xx answers whose status is not in `clear`.
fn server_errors_but(report: &Report, clear: &[u16]) -> u64 {
    let server_errors: u64 = report
        .by_status
        .iter()
        .filter(|(status, _)| **status >= 500 && !clear.contains(status))
        .map(|(_, n)| n)
        .sum();
    server_errors + report.transport_errors
}

/// Requests a killed process may have had in flight, each answered 502 by its caller.
const IN_FLIGHT_PER_KILL: u64 = 8;

/// From the heal until every order placed before it is paid, declined or rejected.
const RECOVERY: Duration = Duration::from_secs(10);

/// Statuses that are not a clear answer: a server error that says nothing about
/// what happened (500, 502), and requests that got no answer in time.
fn unclear(report: &Report) -> u64 {
    server_errors_but(report, &[503, 504])
}

/// How long after now every order placed until now is final (read from pedidos'
/// database, which the test reaches directly), or `None` after a minute.
async fn final_since_heal(p: &Platform) -> Option<Duration> {
    let healed = Instant::now();
    let last = p
        .count(
            ComponentKind::Pedidos,
            "SELECT COALESCE(MAX(id), 0) FROM orders",
        )
        .await;
    let pending = format!("SELECT COUNT(*) FROM orders WHERE status = 'pending' AND id <= {last}");
    while healed.elapsed() < Duration::from_secs(60) {
        if p.count(ComponentKind::Pedidos, &pending).await == 0 {
            return Some(healed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}
