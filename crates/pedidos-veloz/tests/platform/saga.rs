//! The order saga under concurrency and faults: the invariants of SPEC section 5
//! must hold once the recovery worker has caught up.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinSet;

use crate::harness::{Backend, Mode, Options, Platform};
use crate::on_both_backends;
use pedidos_veloz::ComponentKind;

/// Places `n` one-unit orders for `item` at once; returns the status codes seen.
async fn stampede(p: &Arc<Platform>, item: i64, n: usize) -> Vec<u16> {
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let p = p.clone();
        tasks.spawn(async move { p.order(&format!("cliente {i}"), &[(item, 1)]).await.status });
    }
    let mut statuses = Vec::with_capacity(n);
    while let Some(status) = tasks.join_next().await {
        statuses.push(status.expect("order task"));
    }
    statuses
}

fn count(statuses: &[u16], code: u16) -> usize {
    statuses.iter().filter(|s| **s == code).count()
}

on_both_backends!(
    two_hundred_concurrent_orders_for_fifty_units,
    |backend: Backend| async move {
        let p = Arc::new(Platform::start(backend).await);
        let item = p.item("Tênis", 50, 199.99).await;
        let statuses = stampede(&p, item, 200).await;
        // Under a loaded test machine a saga may outlive its call timeouts (202), or a
        // request may wait too long for a database connection (503, the order then left
        // pending or never recorded): the recovery worker finishes what was recorded.
        // The outcome, checked below from the databases, must not change.
        assert_eq!(
            count(&statuses, 201)
                + count(&statuses, 202)
                + count(&statuses, 409)
                + count(&statuses, 503),
            200,
            "statuses: {statuses:?}"
        );
        assert!(count(&statuses, 201) <= 50, "statuses: {statuses:?}");
        p.settle(Duration::from_secs(30)).await;
        assert_eq!(p.stock(item).await, (0, 0, 50));
        let recorded = p.all("/orders").await.len();
        assert_eq!(p.all("/orders?status=paid").await.len(), 50);
        assert_eq!(p.all("/orders?status=rejected").await.len(), recorded - 50);
        assert_eq!(p.all("/payments").await.len(), 50);
        p.assert_invariants(&[(item, 50)]).await;
    }
);

on_both_backends!(
    declines_and_conflicts_under_concurrency_keep_every_unit,
    |backend: Backend| async move {
        let p = Arc::new(
            Platform::start_with(
                backend,
                Options {
                    decline_rate: 0.5,
                    ..Default::default()
                },
            )
            .await,
        );
        let item = p.item("Bola", 30, 45.0).await;
        let statuses = stampede(&p, item, 120).await;
        assert_eq!(
            count(&statuses, 201) + count(&statuses, 202) + count(&statuses, 409),
            120,
            "statuses: {statuses:?}"
        );
        p.settle(Duration::from_secs(10)).await;
        let paid = p.all("/orders?status=paid").await.len() as i64;
        let declined = p.all("/orders?status=payment_declined").await.len();
        assert!(
            declined > 0,
            "with a 50 % decline rate some orders must be declined"
        );
        let (quantity, reserved, sold) = p.stock(item).await;
        assert_eq!((reserved, sold), (0, paid));
        assert_eq!(
            quantity,
            30 - paid,
            "declined orders must give their units back"
        );
        p.assert_invariants(&[(item, 30)]).await;
    }
);

on_both_backends!(
    every_declined_order_gives_its_stock_back,
    |backend: Backend| async move {
        let p = Platform::start_with(
            backend,
            Options {
                decline_rate: 1.0,
                ..Default::default()
            },
        )
        .await;
        let item = p.item("Livro", 10, 35.0).await;
        for i in 0..10 {
            let r = p.order(&format!("c{i}"), &[(item, 3)]).await;
            assert_eq!(r.status, 201, "{}", r.text);
            assert_eq!(r.body["order"]["status"], "payment_declined");
            assert_eq!(r.body["payment"]["status"], "declined");
        }
        assert_eq!(p.stock(item).await, (10, 0, 0));
        p.assert_invariants(&[(item, 10)]).await;
    }
);

on_both_backends!(
    multi_item_orders_are_all_or_nothing,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let a = p.item("Calça", 5, 100.0).await;
        let b = p.item("Cinto", 1, 50.0).await;
        let rejected = p.order("Davi", &[(a, 2), (b, 2)]).await;
        assert_eq!(
            (rejected.status, rejected.code()),
            (409, "insufficient_stock")
        );
        assert_eq!(rejected.body["item_id"], b);
        assert_eq!(rejected.body["available"], 1);
        assert_eq!(rejected.body["order"]["status"], "rejected");
        assert_eq!(p.stock(a).await, (5, 0, 0));
        let unknown = p.order("Davi", &[(a, 1), (999, 1)]).await;
        assert_eq!((unknown.status, unknown.code()), (404, "item_not_found"));
        assert_eq!(p.stock(a).await, (5, 0, 0));
        let ok = p.order("Davi", &[(a, 2), (b, 1), (a, 1)]).await;
        assert_eq!(ok.status, 201, "{}", ok.text);
        assert_eq!(ok.body["order"]["total"], 350.0);
        assert_eq!(
            ok.body["order"]["items"].as_array().map(Vec::len),
            Some(2),
            "repeated item ids are merged"
        );
        assert_eq!(p.stock(a).await, (2, 0, 3));
        p.assert_invariants(&[(a, 5), (b, 1)]).await;
    }
);

on_both_backends!(
    orders_wait_out_a_payments_outage,
    |backend: Backend| async move {
        let mut p = Platform::start(backend).await;
        let item = p.item("Relógio", 10, 250.0).await;
        p.stop(ComponentKind::Pagamentos).await;
        for i in 0..4 {
            let r = p.order(&format!("c{i}"), &[(item, 1)]).await;
            assert_eq!(r.status, 202, "{}", r.text);
            assert_eq!(r.body["order"]["status"], "pending");
            assert_eq!(
                r.body["order"]["total"], 250.0,
                "the reserved total is known while pending"
            );
        }
        assert_eq!(
            p.stock(item).await,
            (6, 4, 0),
            "pending orders hold their units"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            p.all("/orders?status=pending").await.len(),
            4,
            "nothing can finish while payments is down"
        );
        p.restart(ComponentKind::Pagamentos).await;
        p.settle(Duration::from_secs(20)).await;
        assert_eq!(p.all("/orders?status=paid").await.len(), 4);
        p.assert_invariants(&[(item, 10)]).await;
        assert!(
            p.metrics(ComponentKind::Pedidos)
                .await
                .contains("saga_step_retries_total{"),
            "the worker's retries are counted"
        );
    }
);

on_both_backends!(
    a_crash_of_orders_mid_saga_loses_nothing,
    |backend: Backend| async move {
        // Slow payments keep sagas in flight; the orders process is SIGKILLed under them.
        let options = Options {
            payment_latency_ms: 300,
            ..Default::default()
        };
        let mut p = Platform::start_in(Mode::Processes, backend, options).await;
        let item = p.item("Fone", 40, 80.0).await;
        let shared = Arc::new(crate::harness::Http::new());
        let url = p.url("/orders");
        let mut tasks = JoinSet::new();
        for i in 0..20 {
            let http = shared.clone();
            let url = url.clone();
            tasks.spawn(async move {
                let body =
                    json!({"customer": format!("c{i}"), "items": [{"item_id": 1, "quantity": 1}]});
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    http.send("POST", &url, Some(body), &[]),
                )
                .await;
            });
        }
        // Kill it while sagas hold stock and wait on the slow processor, however loaded
        // the machine is.
        let mut held = 0;
        for _ in 0..200 {
            held = p.stock(item).await.1;
            if held > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(held > 0, "no saga reached its reservation");
        p.crash(ComponentKind::Pedidos).await;
        while tasks.join_next().await.is_some() {}
        p.restart(ComponentKind::Pedidos).await;
        p.settle(Duration::from_secs(20)).await;
        p.assert_invariants(&[(item, 40)]).await;
    }
);

on_both_backends!(
    idempotency_key_gives_one_order_and_one_payment,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let item = p.item("Mochila", 10, 120.0).await;
        let body = json!({"customer": "Eva", "items": [{"item_id": item, "quantity": 1}]});
        let headers = [("idempotency-key", "pedido-eva-1")];
        let first = p
            .http
            .send("POST", &p.url("/orders"), Some(body.clone()), &headers)
            .await;
        let second = p
            .http
            .send("POST", &p.url("/orders"), Some(body.clone()), &headers)
            .await;
        assert_eq!((first.status, second.status), (201, 201));
        assert_eq!(
            first.body, second.body,
            "a retry returns the first response"
        );
        assert_eq!(p.all("/orders").await.len(), 1);
        assert_eq!(p.all("/payments").await.len(), 1);
        assert_eq!(p.stock(item).await, (9, 0, 1));
        let other = json!({"customer": "Eva", "items": [{"item_id": item, "quantity": 2}]});
        let reused = p
            .http
            .send("POST", &p.url("/orders"), Some(other), &headers)
            .await;
        assert_eq!(
            (reused.status, reused.code()),
            (422, "idempotency_key_reused")
        );
        let long_key = "k".repeat(256);
        let too_long = p
            .http
            .send(
                "POST",
                &p.url("/orders"),
                Some(body.clone()),
                &[("idempotency-key", &long_key)],
            )
            .await;
        assert_eq!(
            (too_long.status, too_long.code()),
            (400, "invalid_idempotency_key")
        );
        // A retry after the order was cancelled returns the order as it is now.
        let id = first.body["order"]["id"].as_i64().unwrap();
        assert_eq!(
            p.post(&format!("/orders/{id}/cancel"), json!({}))
                .await
                .status,
            200
        );
        let after_cancel = p
            .http
            .send("POST", &p.url("/orders"), Some(body.clone()), &headers)
            .await;
        assert_eq!(
            (
                after_cancel.status,
                after_cancel.body["order"]["status"].clone()
            ),
            (200, json!("cancelled")),
            "{}",
            after_cancel.text
        );
        assert_eq!(
            p.all("/payments").await.len(),
            1,
            "the retry charged nothing"
        );
        // Concurrent retries with one key still make one order.
        let arc = Arc::new(p);
        let mut tasks = JoinSet::new();
        for _ in 0..10 {
            let p = arc.clone();
            tasks.spawn(async move {
                let body = json!({"customer": "Gil", "items": [{"item_id": 1, "quantity": 1}]});
                p.http
                    .send(
                        "POST",
                        &p.url("/orders"),
                        Some(body),
                        &[("idempotency-key", "gil-1")],
                    )
                    .await
                    .status
            });
        }
        while let Some(status) = tasks.join_next().await {
            assert!(matches!(status.unwrap(), 201 | 202));
        }
        arc.settle(Duration::from_secs(10)).await;
        assert_eq!(arc.all("/orders?customer=Gil").await.len(), 1);
        arc.assert_invariants(&[(item, 10)]).await;
    }
);

on_both_backends!(
    cancel_releases_stock_or_refunds,
    |backend: Backend| async move {
        let mut p = Platform::start(backend).await;
        let item = p.item("Jaqueta", 5, 300.0).await;
        let paid = p.order("Iris", &[(item, 1)]).await;
        let paid_id = paid.body["order"]["id"].as_i64().unwrap();
        let cancelled = p
            .post(&format!("/orders/{paid_id}/cancel"), json!({}))
            .await;
        assert_eq!(
            (cancelled.status, cancelled.body["order"]["status"].clone()),
            (200, json!("cancelled")),
            "{}",
            cancelled.text
        );
        let payment = p.get(&format!("/payments?order_id={paid_id}")).await;
        assert_eq!(payment.body[0]["status"], "refunded");
        assert_eq!(
            p.post(&format!("/orders/{paid_id}/cancel"), json!({}))
                .await
                .status,
            200,
            "cancel is idempotent"
        );

        // A pending order: payments is down, so cancelling must wait for it.
        p.stop(ComponentKind::Pagamentos).await;
        let pending = p.order("Iris", &[(item, 2)]).await;
        assert_eq!(pending.status, 202);
        let pending_id = pending.body["order"]["id"].as_i64().unwrap();
        tokio::time::sleep(Duration::from_millis(3200)).await; // the request's lease runs out
        let blocked = p
            .post(&format!("/orders/{pending_id}/cancel"), json!({}))
            .await;
        assert!(matches!(blocked.status, 409 | 503), "{}", blocked.text);
        p.restart(ComponentKind::Pagamentos).await;
        let mut status = 0;
        for _ in 0..50 {
            let r = p
                .post(&format!("/orders/{pending_id}/cancel"), json!({}))
                .await;
            status = r.status;
            if r.status == 200 || r.code() == "illegal_transition" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        p.settle(Duration::from_secs(10)).await;
        let order = p.get(&format!("/orders/{pending_id}")).await;
        // Either the cancellation won (cancelled, units back) or the worker paid it first (then cancel is 409? no: paid can be cancelled).
        assert!(
            status == 200 || order.body["status"] == "paid",
            "status {status}: {}",
            order.text
        );
        let declined = p.order("Iris", &[(999, 1)]).await;
        let rejected_id = declined.body["order"]["id"].as_i64().unwrap();
        let illegal = p
            .post(&format!("/orders/{rejected_id}/cancel"), json!({}))
            .await;
        assert_eq!(
            (illegal.status, illegal.code()),
            (409, "illegal_transition")
        );
        assert_eq!(p.post("/orders/9999/cancel", json!({})).await.status, 404);
        p.assert_invariants(&[(item, 5)]).await;
    }
);

on_both_backends!(
    concurrent_cancels_finish_each_order_once,
    |backend: Backend| async move {
        // Many cancellations of the same paid orders at once: each order's final update
        // is a compare-and-set on its status, so exactly one of them moves it; the others
        // answer with what it wrote.
        let p = Arc::new(Platform::start(backend).await);
        let item = p.item("Cachecol", 10, 40.0).await;
        let mut orders = Vec::new();
        for customer in ["Lia", "Rui", "Ana"] {
            let placed = p.order(customer, &[(item, 2)]).await;
            assert_eq!(placed.body["order"]["status"], "paid", "{}", placed.text);
            orders.push(placed.body["order"]["id"].as_i64().unwrap());
        }
        let mut tasks = JoinSet::new();
        for _ in 0..12 {
            for &id in &orders {
                let p = p.clone();
                tasks.spawn(async move {
                    let r = p.post(&format!("/orders/{id}/cancel"), json!({})).await;
                    (id, r.status, r.body["order"]["status"].clone(), r.text)
                });
            }
        }
        while let Some(answer) = tasks.join_next().await {
            let (id, status, order_status, text) = answer.expect("cancel task");
            assert_eq!(
                (status, order_status),
                (200, json!("cancelled")),
                "order {id}: {text}"
            );
        }
        for &id in &orders {
            let order = p.get(&format!("/orders/{id}")).await;
            assert_eq!(order.body["status"], "cancelled", "{}", order.text);
            let payment = p.get(&format!("/payments?order_id={id}")).await;
            assert_eq!(
                payment.body.as_array().map(Vec::len),
                Some(1),
                "{}",
                payment.text
            );
            assert_eq!(payment.body[0]["status"], "refunded", "{}", payment.text);
        }
        assert_eq!(
            p.count(
                ComponentKind::Pedidos,
                "SELECT count(*) FROM orders WHERE status = 'cancelled'"
            )
            .await,
            3
        );
        // Only the update that moved an order counts it as finished: an update that lost
        // the race must see its compare-and-set fail.
        let metrics = p.metrics(ComponentKind::Pedidos).await;
        let cancelled: f64 = metrics
            .lines()
            .filter(|l| {
                l.starts_with("orders_finished_total{") && l.contains(r#"status="cancelled""#)
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(cancelled, 3.0, "{metrics}");
        p.assert_invariants(&[(item, 10)]).await;
    }
);
