//! Replicas under change, as Kubernetes changes them: two processes of every
//! component on one PostgreSQL database, callers balanced over them (URL lists,
//! passive ejection, retries), the gateways behind a [`crate::harness::Front`] that
//! follows their readiness, and orders and reads at fixed arrival rates (open model)
//! while every replica is replaced one at a time (SIGTERM, then SIGKILL), or a third
//! one is added and removed (HPA). Each prints one row: requests sent, answers by
//! status, p99 during the change next to p99 at rest, violations.

use std::time::{Duration, Instant};

use super::cluster::{failed, Cluster};
use super::options;
use crate::harness::{Http, Options, Platform};
use pedidos_veloz::ComponentKind;

/// Callers and the front stop choosing a draining replica within a probe period or a
/// pooled connection's life (1 s): the delay leaves them twice that.
fn replicated() -> Options {
    Options {
        replicas: 2,
        spare_replicas: 1,
        shutdown_delay_ms: 2000,
        grace_seconds: 10,
        ..options()
    }
}

/// Services first, the gateway last: the order of a deploy that changes them all.
const COMPONENTS: [ComponentKind; 4] = [
    ComponentKind::Pagamentos,
    ComponentKind::Estoque,
    ComponentKind::Pedidos,
    ComponentKind::Gateway,
];

/// Requests a replica's own `/metrics` counts, all routes and statuses together.
async fn requests_served(p: &Platform, service: ComponentKind, slot: usize) -> f64 {
    let text = Http::new()
        .send("GET", &p.replica_url(service, slot, "/metrics"), None, &[])
        .await
        .text;
    text.lines()
        .filter(|line| line.starts_with("http_requests_total{") && !line.contains("/metrics"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// How one replica is taken away.
#[derive(Clone, Copy, PartialEq)]
enum Removal {
    Terminate,
    Kill,
}

/// Replaces both replicas of every component, one at a time: the spare port starts a
/// new process, it becomes ready, then an old one goes. Slots 0 and 1 run before;
/// slots 2 and 0 (a new process) after.
async fn roll(c: &mut Cluster, removal: Removal) -> Vec<String> {
    let mut notes = Vec::new();
    for service in COMPONENTS {
        for (new, old) in [(2, 0), (0, 1)] {
            let started = Instant::now();
            c.p.start_replica(service, new).await;
            c.p.wait_ready(service, new).await;
            let ready_in = started.elapsed();
            match removal {
                Removal::Terminate => {
                    let t = c.p.terminate_replica(service, old).await;
                    assert!(
                        t.status.success(),
                        "{} {old}: exit {}",
                        service.name(),
                        t.status
                    );
                    assert!(t.saw_not_ready, "{} {old}: never unready", service.name());
                    notes.push(format!(
                        "{} {old}->{new} ready {:.1}s exit {:.1}s",
                        service.name(),
                        ready_in.as_secs_f64(),
                        t.exited_after.as_secs_f64()
                    ));
                }
                Removal::Kill => {
                    c.p.crash_replica(service, old).await;
                    notes.push(format!(
                        "{} {old}->{new} ready {:.1}s, old killed",
                        service.name(),
                        ready_in.as_secs_f64()
                    ));
                    // Callers find out by a refused connection, then the next one
                    // is replaced: give them that long, as a deploy's minReadySeconds.
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    notes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn r1_rolling_update_sigterm_every_replica() {
    let mut c = Cluster::start(replicated()).await;
    let started = Instant::now();
    let mut notes = roll(&mut c, Removal::Terminate).await;
    notes.insert(
        0,
        format!("roll took {:.1}s", started.elapsed().as_secs_f64()),
    );
    let (during, violations) = c.finish("rolling update SIGTERM", None, &notes).await;
    assert_eq!(failed(&during.orders), 0, "orders failed during the roll");
    assert_eq!(failed(&during.reads), 0, "reads failed during the roll");
    assert!(violations.is_empty(), "invariant violations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn r2_rolling_kill_every_replica() {
    let mut c = Cluster::start(replicated()).await;
    let notes = roll(&mut c, Removal::Kill).await;
    let (during, violations) = c.finish("rolling SIGKILL", None, &notes).await;
    // Only requests in flight on a killed process may fail, each with a status that
    // says so (502/503/504) or, for a killed gateway, a broken connection: never a 500.
    for report in [&during.orders, &during.reads] {
        assert_eq!(report.by_status.get(&500), None, "a 500 during the kills");
        assert!(
            failed(report) <= 8 * 4,
            "{} failures in 8 kills: more than a few in flight on each",
            failed(report)
        );
    }
    assert!(violations.is_empty(), "invariant violations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn r3_scale_out_and_in() {
    let mut c = Cluster::start(replicated()).await;
    let scaled = [ComponentKind::Pedidos, ComponentKind::Estoque];
    for service in scaled {
        c.p.start_replica(service, 2).await;
        c.p.wait_ready(service, 2).await;
    }
    let before: Vec<f64> = third_replica_counters(&c.p, &scaled).await;
    // Callers ejected the spare port while it refused connections: 5 s at most.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let after: Vec<f64> = third_replica_counters(&c.p, &scaled).await;
    let mut notes = Vec::new();
    for (n, service) in scaled.iter().enumerate() {
        notes.push(format!(
            "{} replica 3 served {:.0} requests in 12 s",
            service.name(),
            after[n] - before[n]
        ));
    }
    for service in scaled {
        let t = c.p.terminate_replica(service, 2).await;
        assert!(t.status.success(), "{}: exit {}", service.name(), t.status);
    }
    let (during, violations) = c.finish("scale out and in", None, &notes).await;
    for (n, service) in scaled.iter().enumerate() {
        assert!(
            after[n] - before[n] >= 20.0,
            "{}: the third replica took no share of the load",
            service.name()
        );
    }
    assert_eq!(failed(&during.orders), 0, "orders failed while scaling");
    assert_eq!(failed(&during.reads), 0, "reads failed while scaling");
    assert!(violations.is_empty(), "invariant violations");
}

/// The request counters of the third replica of each of `services`.
async fn third_replica_counters(p: &Platform, services: &[ComponentKind]) -> Vec<f64> {
    let mut out = Vec::new();
    for service in services {
        out.push(requests_served(p, *service, 2).await);
    }
    out
}
