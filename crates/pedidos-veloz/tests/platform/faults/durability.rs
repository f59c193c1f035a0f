//! Durability of the embedded default: the all-in-one process on its SQLite files,
//! killed with SIGKILL while clients place orders, then started again on the same
//! files. Every order answered 201 must be there, paid, with its payment and its
//! stock; nothing may stay pending once the recovery worker has run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ITEMS, SETTLE, STOCK};
use crate::harness::{Backend, Http, Mode, Options, Platform};
use pedidos_veloz::ComponentKind;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Clients placing orders back to back.
const CLIENTS: usize = 16;

/// What the clients saw: answers by status, ids of the orders answered 201, and
/// requests that got no answer (those in flight at the kill, and those after it).
#[derive(Default)]
struct Seen {
    by_status: BTreeMap<u16, u64>,
    created: Vec<i64>,
    no_answer: u64,
    /// For each answer: when its request was sent (since the load began) and how
    /// long the answer took.
    latencies: Vec<(Duration, Duration)>,
}

/// Before the kill (4 s in), the first 3 s are the latency at rest.
const AT_REST: Duration = Duration::from_secs(3);

/// The 99th percentile of `latencies` in milliseconds (0 for none).
fn p99_ms(mut latencies: Vec<Duration>) -> f64 {
    latencies.sort();
    let at = (latencies.len() * 99).div_ceil(100).saturating_sub(1);
    latencies.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes; run with --ignored"]
async fn d1_all_in_one_on_sqlite_killed_under_load() {
    let options = Options {
        // 201 then means paid: every created order must come back paid.
        decline_rate: 0.0,
        payment_latency_ms: 20,
        ..Options::default()
    };
    let mut p = Platform::start_in(Mode::AllInOne, Backend::Sqlite, options).await;
    let mut added = Vec::new();
    for n in 0..ITEMS {
        added.push((p.item(&format!("Durável {n}"), STOCK, 4.25).await, STOCK));
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = CancellationToken::new();
    let mut clients = Vec::new();
    let began = Instant::now();
    for client in 0..CLIENTS {
        let (url, seen, stop) = (p.url("/orders"), seen.clone(), stop.clone());
        let item = added[client % added.len()].0;
        clients.push(tokio::spawn(async move {
            let http = Http::new();
            let body = json!({"customer": format!("durable-{client}"), "items": [{"item_id": item, "quantity": 1}]})
                .to_string()
                .into_bytes();
            while !stop.is_cancelled() {
                let sent = Instant::now();
                let answer = http
                    .try_raw(
                        "POST",
                        &url,
                        body.clone(),
                        &[("content-type", "application/json")],
                        Duration::from_secs(10),
                    )
                    .await;
                let Ok(mut seen) = seen.lock() else { return };
                match answer {
                    Ok(r) => {
                        seen.latencies
                            .push((sent.duration_since(began), sent.elapsed()));
                        *seen.by_status.entry(r.status).or_default() += 1;
                        if r.status == 201 {
                            seen.created.push(r.body["order"]["id"].as_i64().unwrap_or(-1));
                        }
                    }
                    Err(_) => seen.no_answer += 1,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    p.crash(ComponentKind::Gateway).await;
    stop.cancel();
    for client in clients {
        client.await.expect("client task");
    }
    let killed = Instant::now();
    p.restart(ComponentKind::Gateway).await;
    let back_in = killed.elapsed();
    let settle_started = Instant::now();
    let log = p.log_dir().join("all-in-one.log");
    while p.get("/orders?status=pending&limit=1").await.status != 200 {
        assert!(
            settle_started.elapsed() < SETTLE,
            "orders are not listed again after the restart; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    p.settle(SETTLE).await;
    let caught_up = settle_started.elapsed();

    let seen = std::mem::take(&mut *seen.lock().expect("results"));
    let mut missing = Vec::new();
    for id in &seen.created {
        let r = p.get(&format!("/orders/{id}")).await;
        if r.status != 200 || r.body["status"] != "paid" {
            missing.push(format!(
                "order {id} answered 201: now {} {}",
                r.status, r.text
            ));
        }
    }
    let mut violations = p.invariant_violations(&added).await;
    violations.extend(missing);
    let statuses: Vec<String> = seen
        .by_status
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect();
    let (rest, during): (Vec<_>, Vec<_>) = seen.latencies.iter().partition(|(at, _)| *at < AT_REST);
    println!(
        "FAULT {:<22} sent={:<5} answered=[{}] transport_errors={} p99 orders={:.0}ms (at rest {:.0}ms) | back_in={:.1}s caught_up_in={:.1}s | created_201={} | violations={}",
        "all-in-one SQLite kill",
        seen.by_status.values().sum::<u64>() + seen.no_answer,
        statuses.join(" "),
        seen.no_answer,
        p99_ms(during.iter().map(|(_, d)| *d).collect()),
        p99_ms(rest.iter().map(|(_, d)| *d).collect()),
        back_in.as_secs_f64(),
        caught_up.as_secs_f64(),
        seen.created.len(),
        violations.len(),
    );
    for v in &violations {
        println!("  violation: {v}");
    }
    assert!(
        seen.created.len() >= 20,
        "too few orders before the kill to show anything"
    );
    assert!(violations.is_empty(), "{} violations", violations.len());
}
