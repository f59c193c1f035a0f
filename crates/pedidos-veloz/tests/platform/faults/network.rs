//! The network between real processes failing: every component on a test host of
//! its own (a network namespace), orders and reads at fixed arrival rates, and one
//! fault per scenario on one link for a while: latency and packet loss, a partition,
//! a link that swallows every packet. Every request must get an answer within its
//! budget, and a clear one: what it asked for, or 503/504 (a pending order: 202);
//! after the heal the recovery worker must bring every order placed before it to a
//! final state within 10 s, and the invariants must hold
//! ([`Cluster::judge_after_heal`]).
//!
//! Needs root (namespaces, nftables), like the rest of the fault suite in CI.

use std::time::Duration;

use super::cluster::Cluster;
use super::options;
use crate::harness::{Network, Options, Peer};
use pedidos_veloz::ComponentKind;

fn hosted() -> Options {
    Options {
        hosts: true,
        ..options()
    }
}

/// Runs the load, applies `fault` for `lasts`, heals, and judges the outcome.
async fn under_fault(name: &str, lasts: Duration, fault: impl FnOnce(&Network)) {
    let c = Cluster::start(hosted()).await;
    fault(c.p.network());
    tokio::time::sleep(lasts).await;
    c.p.network().heal();
    c.judge_after_heal(name, &[format!("fault {:.0}s", lasts.as_secs_f64())], 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL, root; run with --ignored"]
async fn n1_latency_and_loss_between_orders_and_inventory() {
    under_fault(
        "pedidos-estoque slow, lossy",
        Duration::from_secs(20),
        |net| {
            net.delay(
                ComponentKind::Pedidos,
                ComponentKind::Estoque,
                Duration::from_millis(100),
                Duration::from_millis(300),
            );
            net.drop_packets(
                ComponentKind::Pedidos,
                Peer::Service(ComponentKind::Estoque),
                7,
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL, root; run with --ignored"]
async fn n2_partition_between_orders_and_payments() {
    under_fault(
        "partition pedidos-pagamentos",
        Duration::from_secs(10),
        |net| {
            net.drop_packets(
                ComponentKind::Pedidos,
                Peer::Service(ComponentKind::Pagamentos),
                100,
            );
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL, root; run with --ignored"]
async fn n3_partition_between_inventory_and_postgres() {
    under_fault(
        "partition estoque-postgres",
        Duration::from_secs(10),
        |net| {
            net.drop_packets(ComponentKind::Estoque, Peer::Database, 100);
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL, root; run with --ignored"]
async fn n4_silent_link_between_gateway_and_orders() {
    under_fault("silent gateway-pedidos", Duration::from_secs(10), |net| {
        net.drop_packets(
            ComponentKind::Gateway,
            Peer::Service(ComponentKind::Pedidos),
            100,
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL, root; run with --ignored"]
async fn n5_one_of_two_inventory_replicas_cut_off_from_postgres() {
    // Two processes of everything: the cut-off replica answers 503 (its database
    // unreachable) and its callers eject it, so the other one serves.
    let options = Options {
        replicas: 2,
        ..hosted()
    };
    let c = Cluster::start(options).await;
    c.p.network()
        .drop_packets_of(ComponentKind::Estoque, 0, Peer::Database, 100);
    tokio::time::sleep(Duration::from_secs(10)).await;
    c.p.network().heal();
    let notes = ["estoque replica 0 of 2 cut off 10s".to_owned()];
    c.judge_after_heal("estoque 1 of 2 cut off from postgres", &notes, 0)
        .await;
}
