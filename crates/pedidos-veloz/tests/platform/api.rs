//! Every call of SPEC sections 2-6, success and error cases, as the seed shows them.

use serde_json::json;

use crate::harness::{Backend, Platform};
use crate::on_both_backends;
use pedidos_veloz::ComponentKind;

on_both_backends!(
    seed_readme_examples_work_as_shown,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let health = p.get("/health").await;
        assert_eq!(health.status, 200, "{}", health.text);
        assert_eq!(health.body["status"], "healthy");
        assert_eq!(health.body["service"], "api-gateway");
        assert_eq!(
            health.body["backends"],
            json!({"pedidos": "healthy", "pagamentos": "healthy", "estoque": "healthy"})
        );

        let items = p.get("/items").await;
        assert_eq!((items.status, items.body.clone()), (200, json!([])));

        let created = p
            .post(
                "/items",
                json!({"name": "Camiseta", "quantity": 50, "price": 59.90}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.headers["location"], "/items/1");
        assert_eq!(created.body["name"], "Camiseta");
        assert_eq!(created.body["quantity"], 50);
        assert_eq!(created.body["reserved"], 0);
        assert_eq!(created.body["price"], 59.9);

        let order = p
            .post(
                "/orders",
                json!({"customer": "João Silva", "items": [{"item_id": 1, "quantity": 2}]}),
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);
        assert_eq!(order.body["order"]["status"], "paid");
        assert_eq!(order.body["order"]["customer"], "João Silva");
        assert_eq!(order.body["order"]["total"], 119.8);
        assert_eq!(order.body["order"]["items"][0]["item_name"], "Camiseta");
        assert_eq!(order.body["order"]["items"][0]["unit_price"], 59.9);
        assert_eq!(order.body["payment"]["status"], "approved");
        assert_eq!(order.body["payment"]["amount"], 119.8);
        assert_eq!(order.body["payment"]["order_id"], order.body["order"]["id"]);

        let orders = p.get("/orders").await;
        assert_eq!(orders.status, 200);
        assert_eq!(orders.body.as_array().map(Vec::len), Some(1));
        assert_eq!(p.get("/items/1").await.body["quantity"], 48);

        let root = p.get("/").await;
        assert_eq!(root.body["service"], "Pedidos Veloz - API Gateway");
        assert!(root.body["version"].is_string() && root.body["endpoints"].is_array());
    }
);

on_both_backends!(
    request_ids_are_made_kept_and_passed_on,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let made = p.get("/items").await;
        let id = made.headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32);
        let kept = p
            .http
            .send(
                "GET",
                &p.url("/items"),
                None,
                &[("x-request-id", "trace-me-123")],
            )
            .await;
        assert_eq!(kept.headers["x-request-id"], "trace-me-123");
        // A hostile id (too long) is replaced, not echoed.
        let long = "x".repeat(300);
        let replaced = p
            .http
            .send("GET", &p.url("/items"), None, &[("x-request-id", &long)])
            .await;
        assert_ne!(replaced.headers["x-request-id"], long.as_str());
        // The order saga passes the id on: the stored order carries it.
        p.item("Caneca", 5, 10.0).await;
        let order = p
            .http
            .send(
                "POST",
                &p.url("/orders"),
                Some(json!({"customer": "Ana", "items": [{"item_id": 1, "quantity": 1}]})),
                &[("x-request-id", "order-trace-1")],
            )
            .await;
        assert_eq!(order.status, 201);
        assert_eq!(order.headers["x-request-id"], "order-trace-1");
        let stored = p
            .count(
                ComponentKind::Pedidos,
                "SELECT COUNT(*) FROM orders WHERE request_id = 'order-trace-1'",
            )
            .await;
        assert_eq!(stored, 1);
    }
);

on_both_backends!(items_crud_and_errors, |backend: Backend| async move {
    let p = Platform::start(backend).await;
    let id = p.item("Boné", 10, 25.5).await;
    let got = p.get(&format!("/items/{id}")).await;
    assert_eq!((got.status, got.body["price"].clone()), (200, json!(25.5)));
    assert!(got.body["created_at"].as_str().unwrap().ends_with('Z'));

    let missing = p.get("/items/999").await;
    assert_eq!((missing.status, missing.code()), (404, "item_not_found"));
    assert!(missing.body["error"].is_string());

    let put = p
        .http
        .send(
            "PUT",
            &p.url(&format!("/items/{id}")),
            Some(json!({"name": "Boné azul", "quantity": 12, "price": 30})),
            &[],
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(
        (
            put.body["name"].clone(),
            put.body["quantity"].clone(),
            put.body["price"].clone(),
            put.body["description"].clone()
        ),
        (json!("Boné azul"), json!(12), json!(30), json!(null))
    );
    let put_missing = p
        .http
        .send(
            "PUT",
            &p.url(&format!("/items/{id}")),
            Some(json!({"name": "x"})),
            &[],
        )
        .await;
    assert_eq!(put_missing.status, 400);

    let patch = p
        .http
        .send(
            "PATCH",
            &p.url(&format!("/items/{id}")),
            Some(json!({"description": "algodão", "quantity": 20})),
            &[],
        )
        .await;
    assert_eq!(patch.status, 200);
    assert_eq!(
        (
            patch.body["name"].clone(),
            patch.body["description"].clone(),
            patch.body["quantity"].clone()
        ),
        (json!("Boné azul"), json!("algodão"), json!(20))
    );
    let patch_missing = p
        .http
        .send(
            "PATCH",
            &p.url("/items/999"),
            Some(json!({"quantity": 1})),
            &[],
        )
        .await;
    assert_eq!(patch_missing.status, 404);

    // The seed's stock calls.
    let reserve = p
        .http
        .send(
            "PATCH",
            &p.url(&format!("/items/{id}/reserve")),
            Some(json!({"quantity": 5})),
            &[],
        )
        .await;
    assert_eq!(reserve.status, 200, "{}", reserve.text);
    assert!(reserve.body["message"].is_string());
    assert_eq!(
        (
            reserve.body["item"]["quantity"].clone(),
            reserve.body["item"]["reserved"].clone()
        ),
        (json!(15), json!(5))
    );
    let too_many = p
        .http
        .send(
            "PATCH",
            &p.url(&format!("/items/{id}/reserve")),
            Some(json!({"quantity": 16})),
            &[],
        )
        .await;
    assert_eq!(
        (too_many.status, too_many.code()),
        (409, "insufficient_stock")
    );
    assert_eq!(too_many.body["available"], 15);

    let delete_held = p
        .http
        .send("DELETE", &p.url(&format!("/items/{id}")), None, &[])
        .await;
    assert_eq!(
        (delete_held.status, delete_held.code()),
        (409, "item_has_reservations")
    );

    let write_off = p
        .http
        .send(
            "PATCH",
            &p.url(&format!("/items/{id}/write-off")),
            Some(json!({"quantity": 2})),
            &[],
        )
        .await;
    assert_eq!(write_off.status, 200);
    assert_eq!(write_off.body["item"]["reserved"], 3);
    let release = p
        .http
        .send(
            "PATCH",
            &p.url(&format!("/items/{id}/release")),
            Some(json!({"quantity": 3})),
            &[],
        )
        .await;
    assert_eq!(release.status, 200);
    assert_eq!(
        (
            release.body["item"]["quantity"].clone(),
            release.body["item"]["reserved"].clone()
        ),
        (json!(18), json!(0))
    );
    let over_release = p
        .http
        .send(
            "PATCH",
            &p.url(&format!("/items/{id}/release")),
            Some(json!({"quantity": 1})),
            &[],
        )
        .await;
    assert_eq!(
        (over_release.status, over_release.code()),
        (409, "insufficient_reserved")
    );
    assert_eq!(p.stock(id).await, (18, 0, 2));

    let deleted = p
        .http
        .send("DELETE", &p.url(&format!("/items/{id}")), None, &[])
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(p.get(&format!("/items/{id}")).await.status, 404);
    assert_eq!(
        p.http
            .send("DELETE", &p.url(&format!("/items/{id}")), None, &[])
            .await
            .status,
        404
    );
});

on_both_backends!(
    lists_paginate_with_link_headers,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        for i in 0..5 {
            p.item(&format!("item {i}"), 1, 1.0).await;
        }
        let first = p.get("/items?limit=2").await;
        assert_eq!(first.body.as_array().map(Vec::len), Some(2));
        assert_eq!(
            first.headers["link"],
            "</items?limit=2&after=2>; rel=\"next\""
        );
        let last = p.get("/items?limit=2&after=4").await;
        assert_eq!(last.body[0]["id"], 5);
        assert!(last.headers.get("link").is_none());
        assert_eq!(p.all("/items").await.len(), 5);
        for bad in [
            "/items?limit=0",
            "/items?limit=1001",
            "/items?limit=abc",
            "/items?after=-1",
            "/orders?status=lost",
            "/payments?order_id=x",
        ] {
            let r = p.get(bad).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.text);
            assert!(r.body["code"].is_string(), "{bad}");
        }
        // Filters are kept in the next link.
        let id = p.item("Meia", 10, 5.0).await;
        for _ in 0..3 {
            assert_eq!(p.order("Bia Souza", &[(id, 1)]).await.status, 201);
        }
        p.order("Caio", &[(id, 1)]).await;
        let page = p.get("/orders?customer=Bia%20Souza&limit=2").await;
        assert_eq!(page.body.as_array().map(Vec::len), Some(2));
        assert_eq!(
            page.headers["link"],
            "</orders?customer=Bia+Souza&limit=2&after=2>; rel=\"next\""
        );
        assert_eq!(p.all("/orders?customer=Bia%20Souza").await.len(), 3);
        assert_eq!(p.all("/orders?status=paid").await.len(), 4);
    }
);

on_both_backends!(
    payments_are_idempotent_per_order,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let first = p
            .post(
                "/payments",
                json!({"order_id": 77, "amount": 10.5, "method": "pix"}),
            )
            .await;
        assert_eq!(first.status, 201, "{}", first.text);
        assert_eq!(
            (
                first.body["status"].clone(),
                first.body["method"].clone(),
                first.body["amount"].clone()
            ),
            (json!("approved"), json!("pix"), json!(10.5))
        );
        assert!(first.headers["location"]
            .to_str()
            .unwrap()
            .starts_with("/payments/"));
        let again = p
            .post(
                "/payments",
                json!({"order_id": 77, "amount": 10.5, "method": "pix"}),
            )
            .await;
        assert_eq!(
            (again.status, again.body["id"].clone()),
            (201, first.body["id"].clone())
        );
        let other_amount = p
            .post("/payments", json!({"order_id": 77, "amount": 11}))
            .await;
        assert_eq!(
            (other_amount.status, other_amount.code()),
            (409, "payment_amount_mismatch")
        );
        assert_eq!(
            p.count(
                ComponentKind::Pagamentos,
                "SELECT COUNT(*) FROM payments WHERE order_id = 77"
            )
            .await,
            1
        );

        // Concurrent charges share batches (one multi-row INSERT): for orders 100..105,
        // three charges each at once, every answer is the order's one payment.
        let mut charges = tokio::task::JoinSet::new();
        for order_id in (100..105).chain(100..105).chain(100..105) {
            let (http, url) = (p.http.clone(), p.url("/payments"));
            charges.spawn(async move {
                let body = json!({"order_id": order_id, "amount": 2.5});
                (order_id, http.send("POST", &url, Some(body), &[]).await)
            });
        }
        let mut ids = std::collections::HashMap::new();
        while let Some(joined) = charges.join_next().await {
            let (order_id, r) = joined.unwrap();
            assert_eq!(r.status, 201, "{}", r.text);
            let id = r.body["id"].as_i64().unwrap();
            assert_eq!(
                *ids.entry(order_id).or_insert(id),
                id,
                "one payment per order"
            );
        }
        assert_eq!(
            p.count(
                ComponentKind::Pagamentos,
                "SELECT COUNT(*) FROM payments WHERE order_id BETWEEN 100 AND 104"
            )
            .await,
            5
        );

        let default_method = p
            .post("/payments", json!({"order_id": 78, "amount": 1}))
            .await;
        assert_eq!(default_method.body["method"], "credit_card");

        let id = first.body["id"].as_i64().unwrap();
        assert_eq!(p.get(&format!("/payments/{id}")).await.body["order_id"], 77);
        assert_eq!(p.get("/payments/9999").await.status, 404);
        let by_order = p.get("/payments?order_id=77").await;
        assert_eq!(by_order.body.as_array().map(Vec::len), Some(1));

        let refund = p.post(&format!("/payments/{id}/refund"), json!({})).await;
        assert_eq!(
            (refund.status, refund.body["status"].clone()),
            (200, json!("refunded"))
        );
        let refund_again = p.post(&format!("/payments/{id}/refund"), json!({})).await;
        assert_eq!(
            (refund_again.status, refund_again.body["status"].clone()),
            (200, json!("refunded"))
        );
        assert_eq!(p.post("/payments/9999/refund", json!({})).await.status, 404);
    }
);

on_both_backends!(
    declined_payments_answer_422_every_time,
    |backend: Backend| async move {
        let p = Platform::start_with(
            backend,
            crate::harness::Options {
                decline_rate: 1.0,
                ..Default::default()
            },
        )
        .await;
        let declined = p
            .post("/payments", json!({"order_id": 5, "amount": 20}))
            .await;
        assert_eq!(
            (declined.status, declined.code()),
            (422, "payment_declined")
        );
        assert_eq!(declined.body["status"], "declined");
        let again = p
            .post("/payments", json!({"order_id": 5, "amount": 20}))
            .await;
        assert_eq!(
            (again.status, again.body["id"].clone()),
            (422, declined.body["id"].clone())
        );
        let id = declined.body["id"].as_i64().unwrap();
        let refund = p.post(&format!("/payments/{id}/refund"), json!({})).await;
        assert_eq!((refund.status, refund.code()), (409, "illegal_transition"));
    }
);

on_both_backends!(
    reservations_are_all_or_nothing_and_idempotent,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let a = p.item("A", 5, 2.5).await;
        let b = p.item("B", 1, 4.0).await;
        let inv = |path: &str| p.service_url(ComponentKind::Estoque, path);
        let short = p.http.send("POST", &inv("/reservations"), Some(json!({"reference": "r1", "items": [{"item_id": a, "quantity": 2}, {"item_id": b, "quantity": 2}]})), &[]).await;
        assert_eq!((short.status, short.code()), (409, "insufficient_stock"));
        assert_eq!(
            (
                short.body["item_id"].clone(),
                short.body["available"].clone()
            ),
            (json!(b), json!(1))
        );
        assert_eq!(
            p.stock(a).await,
            (5, 0, 0),
            "nothing may stay held after a refused reservation"
        );

        let unknown = p
            .http
            .send(
                "POST",
                &inv("/reservations"),
                Some(json!({"reference": "r1", "items": [{"item_id": 999, "quantity": 1}]})),
                &[],
            )
            .await;
        assert_eq!((unknown.status, unknown.code()), (404, "item_not_found"));

        let body = json!({"reference": "r2", "items": [{"item_id": a, "quantity": 1}, {"item_id": b, "quantity": 1}, {"item_id": a, "quantity": 1}]});
        let held = p
            .http
            .send("POST", &inv("/reservations"), Some(body.clone()), &[])
            .await;
        assert_eq!(held.status, 201, "{}", held.text);
        assert_eq!(held.body["status"], "held");
        assert_eq!(held.body["total"], 9.0);
        assert_eq!(
            held.body["items"][0]["quantity"], 2,
            "repeated item ids are merged"
        );
        assert_eq!(held.body["items"][0]["item_name"], "A");
        let repeat = p
            .http
            .send("POST", &inv("/reservations"), Some(body), &[])
            .await;
        assert_eq!(
            (repeat.status, repeat.body["id"].clone()),
            (200, held.body["id"].clone())
        );
        assert_eq!(p.stock(a).await, (3, 2, 0));

        let id = held.body["id"].as_i64().unwrap();
        let commit = p
            .http
            .send(
                "POST",
                &inv(&format!("/reservations/{id}/commit")),
                None,
                &[],
            )
            .await;
        assert_eq!(
            (commit.status, commit.body["status"].clone()),
            (200, json!("committed"))
        );
        let commit_again = p
            .http
            .send(
                "POST",
                &inv(&format!("/reservations/{id}/commit")),
                None,
                &[],
            )
            .await;
        assert_eq!(commit_again.status, 200);
        let release_after = p
            .http
            .send(
                "POST",
                &inv(&format!("/reservations/{id}/release")),
                None,
                &[],
            )
            .await;
        assert_eq!(
            (release_after.status, release_after.code()),
            (409, "illegal_transition")
        );
        assert_eq!(p.stock(a).await, (3, 0, 2));

        let r3 = p
            .http
            .send(
                "POST",
                &inv("/reservations"),
                Some(json!({"reference": "r3", "items": [{"item_id": a, "quantity": 3}]})),
                &[],
            )
            .await;
        let id3 = r3.body["id"].as_i64().unwrap();
        assert_eq!(
            p.http
                .send(
                    "POST",
                    &inv(&format!("/reservations/{id3}/release")),
                    None,
                    &[]
                )
                .await
                .status,
            200
        );
        assert_eq!(
            p.http
                .send(
                    "POST",
                    &inv(&format!("/reservations/{id3}/release")),
                    None,
                    &[]
                )
                .await
                .status,
            200
        );
        assert_eq!(
            p.http
                .send(
                    "POST",
                    &inv(&format!("/reservations/{id3}/commit")),
                    None,
                    &[]
                )
                .await
                .status,
            409
        );
        assert_eq!(p.stock(a).await, (3, 0, 2));
        assert_eq!(
            p.http
                .send("POST", &inv("/reservations/999/commit"), None, &[])
                .await
                .status,
            404
        );

        // The fence: cancelling a reference nobody reserved yet blocks a later hold.
        let fence = p
            .http
            .send(
                "POST",
                &inv("/reservations/cancel"),
                Some(json!({"reference": "r4"})),
                &[],
            )
            .await;
        assert_eq!(
            (fence.status, fence.body["status"].clone()),
            (200, json!("released"))
        );
        let late = p
            .http
            .send(
                "POST",
                &inv("/reservations"),
                Some(json!({"reference": "r4", "items": [{"item_id": a, "quantity": 1}]})),
                &[],
            )
            .await;
        assert_eq!(
            (late.status, late.body["status"].clone()),
            (200, json!("released"))
        );
        assert_eq!(p.stock(a).await, (3, 0, 2));
    }
);

// Concurrent holds and settles are applied in shared batches (estoque's group commit):
// within one batch, each request must still get its own all-or-nothing outcome.
on_both_backends!(
    concurrent_reservations_keep_their_own_outcome,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let item = p.item("Lote", 20, 1.0).await;
        let inv = |path: &str| p.service_url(ComponentKind::Estoque, path);
        let mut holds = tokio::task::JoinSet::new();
        for n in 0..18 {
            // 8 retries of one reference wanting 2 units, 10 others wanting 3 each.
            let (reference, quantity) = if n < 8 {
                ("dup".to_string(), 2)
            } else {
                (format!("r{n}"), 3)
            };
            let (http, url) = (p.http.clone(), inv("/reservations"));
            holds.spawn(async move {
                let body = json!({"reference": reference, "items": [{"item_id": item, "quantity": quantity}]});
                let r = http.send("POST", &url, Some(body), &[]).await;
                (reference, r.status, r.body)
            });
        }
        let (mut dup_ids, mut dup_created, mut held, mut refused) = (Vec::new(), 0, Vec::new(), 0);
        while let Some(joined) = holds.join_next().await {
            let (reference, status, body) = joined.unwrap();
            match (reference.as_str(), status) {
                ("dup", 201 | 200) => {
                    dup_created += usize::from(status == 201);
                    dup_ids.push(body["id"].as_i64().unwrap());
                }
                (_, 201) => held.push(body["id"].as_i64().unwrap()),
                (_, 409) => {
                    assert_eq!(body["code"], "insufficient_stock", "{body}");
                    refused += 1;
                }
                other => panic!("unexpected answer {other:?}: {body}"),
            }
        }
        assert_eq!(dup_created, 1, "one reference, one reservation");
        assert!(dup_ids.windows(2).all(|w| w[0] == w[1]), "{dup_ids:?}");
        assert_eq!(held.len() + refused, 10);
        let reserved = 2 + 3 * held.len() as i64;
        assert_eq!(p.stock(item).await, (20 - reserved, reserved, 0));
        if refused > 0 {
            assert!(
                20 - reserved < 3,
                "a hold was refused while its units were free"
            );
        }

        // Commit every held reservation twice at once, release the duplicate's.
        let mut settles = tokio::task::JoinSet::new();
        for &id in held.iter().chain(&held) {
            let (http, url) = (p.http.clone(), inv(&format!("/reservations/{id}/commit")));
            settles.spawn(async move { http.send("POST", &url, None, &[]).await });
        }
        let (http, url) = (
            p.http.clone(),
            inv(&format!("/reservations/{}/release", dup_ids[0])),
        );
        settles.spawn(async move { http.send("POST", &url, None, &[]).await });
        while let Some(joined) = settles.join_next().await {
            let r = joined.unwrap();
            assert_eq!(r.status, 200, "{}", r.text);
            assert!(matches!(
                r.body["status"].as_str(),
                Some("committed" | "released")
            ));
            assert_eq!(r.body["items"][0]["item_name"], "Lote");
        }
        let sold = 3 * held.len() as i64;
        assert_eq!(p.stock(item).await, (20 - sold, 0, sold));
    }
);
