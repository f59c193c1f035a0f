//! The gateway: upstream failures as JSON errors naming the service, aggregated
//! health, the OpenAPI document, API keys, and graceful shutdown under load.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{Backend, Http, Options, Platform};
use crate::on_both_backends;
use pedidos_veloz::ComponentKind;

on_both_backends!(
    a_backend_down_is_a_503_naming_it,
    |backend: Backend| async move {
        let mut p = Platform::start(backend).await;
        p.stop(ComponentKind::Estoque).await;
        let items = p.get("/items").await;
        assert_eq!((items.status, items.code()), (503, "service_unavailable"));
        assert_eq!(items.body["service"], "estoque-service");
        assert!(items.headers.contains_key("retry-after"));
        let health = p.get("/health").await;
        assert_eq!(health.status, 207);
        assert_eq!(health.body["status"], "degraded");
        assert_eq!(health.body["backends"]["estoque"], "unreachable");
        assert_eq!(health.body["backends"]["pedidos"], "healthy");
        // Orders need inventory: nothing can be reserved, the order waits as pending.
        let order = p.order("Lia", &[(1, 1)]).await;
        assert_eq!(order.status, 202, "{}", order.text);
        assert_eq!(
            p.get("/livez").await.status,
            200,
            "liveness does not depend on backends"
        );
        assert_eq!(
            p.get("/readyz").await.status,
            200,
            "readiness does not depend on backends"
        );
        p.restart(ComponentKind::Estoque).await;
        assert_eq!(p.get("/items").await.status, 200);
        p.settle(Duration::from_secs(10)).await;
        let rejected = p.get("/orders?status=rejected").await;
        assert_eq!(
            rejected.body.as_array().map(Vec::len),
            Some(1),
            "the unknown item rejects the order once inventory is back"
        );
    }
);

on_both_backends!(a_slow_backend_is_a_504, |backend: Backend| async move {
    let options = Options {
        payment_latency_ms: 1500,
        upstream_timeout_ms: 300,
        ..Default::default()
    };
    let p = Platform::start_with(backend, options).await;
    let r = p
        .post("/payments", json!({"order_id": 1, "amount": 5}))
        .await;
    assert_eq!((r.status, r.code()), (504, "service_timeout"));
    assert_eq!(r.body["service"], "pagamentos-service");
});

on_both_backends!(
    openapi_describes_the_public_api_only,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let doc = p.get("/openapi.json").await;
        assert_eq!(doc.status, 200);
        assert!(doc.body["openapi"].as_str().unwrap_or("").starts_with("3."));
        let paths: Vec<&str> = doc.body["paths"]
            .as_object()
            .map(|m| m.keys().map(String::as_str).collect())
            .unwrap_or_default();
        for path in [
            "/items",
            "/items/{id}",
            "/items/{id}/reserve",
            "/orders",
            "/orders/{id}",
            "/orders/{id}/cancel",
            "/payments",
            "/payments/{id}/refund",
            "/health",
        ] {
            assert!(paths.contains(&path), "{path} missing from {paths:?}");
        }
        assert!(
            !paths
                .iter()
                .any(|p| p.starts_with("/reservations") || *p == "/payments/void"),
            "internal calls documented: {paths:?}"
        );
    }
);

on_both_backends!(
    api_keys_guard_writes_and_private_reads,
    |backend: Backend| async move {
        let sha = |k: &str| -> String {
            use sha2::Digest;
            sha2::Sha256::digest(k.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let keys = format!(
            "admin:{},client:{}",
            sha("admin-secret"),
            sha("client-secret")
        );
        let p = Platform::start_with(
            backend,
            Options {
                api_keys: Some(keys),
                ..Default::default()
            },
        )
        .await;
        let item = json!({"name": "Chave", "quantity": 3, "price": 1});
        assert_eq!(p.post("/items", item.clone()).await.status, 401);
        let as_client = p
            .http
            .send(
                "POST",
                &p.url("/items"),
                Some(item.clone()),
                &[("x-api-key", "client-secret")],
            )
            .await;
        assert_eq!((as_client.status, as_client.code()), (403, "forbidden"));
        let as_admin = p
            .http
            .send(
                "POST",
                &p.url("/items"),
                Some(item),
                &[("authorization", "Bearer admin-secret")],
            )
            .await;
        assert_eq!(as_admin.status, 201);
        assert_eq!(p.get("/items").await.status, 200, "the catalogue is public");
        let order = json!({"customer": "Kai", "items": [{"item_id": 1, "quantity": 1}]});
        assert_eq!(p.post("/orders", order.clone()).await.status, 401);
        let placed = p
            .http
            .send(
                "POST",
                &p.url("/orders"),
                Some(order),
                &[("x-api-key", "client-secret")],
            )
            .await;
        assert_eq!(placed.status, 201);
        assert_eq!(
            p.http
                .send(
                    "GET",
                    &p.url("/orders/1"),
                    None,
                    &[("x-api-key", "client-secret")]
                )
                .await
                .status,
            200
        );
        // A client key lists its own orders (the admin's list has them all).
        let own = p
            .http
            .send(
                "GET",
                &p.url("/orders"),
                None,
                &[("x-api-key", "client-secret")],
            )
            .await;
        assert_eq!(own.status, 200, "{}", own.text);
        assert_eq!(own.body.as_array().map(Vec::len), Some(1));
        assert_eq!(
            p.http
                .send("GET", &p.url("/payments"), None, &[("x-api-key", "wrong")])
                .await
                .status,
            401
        );
        assert_eq!(
            p.http
                .send(
                    "GET",
                    &p.url("/payments"),
                    None,
                    &[("x-api-key", "admin-secret")]
                )
                .await
                .status,
            200
        );
    }
);

on_both_backends!(
    sigterm_drains_in_flight_requests,
    |backend: Backend| async move {
        let options = Options {
            payment_latency_ms: 700,
            ..Default::default()
        };
        let mut p = Platform::start_with(backend, options).await;
        let id = p.item("Vaso", 3, 15.0).await;
        let http = p.http.clone();
        let url = p.url("/orders");
        let in_flight = tokio::spawn(async move {
            http.send(
                "POST",
                &url,
                Some(json!({"customer": "Noa", "items": [{"item_id": id, "quantity": 1}]})),
                &[],
            )
            .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Drain pagamentos while it is processing the charge: the charge must complete.
        p.stop(ComponentKind::Pagamentos).await;
        let done = in_flight.await.expect("order task");
        assert_eq!(done.status, 201, "{}", done.text);
        assert_eq!(done.body["order"]["status"], "paid");
        let ready: Value = p
            .http
            .send(
                "GET",
                &p.service_url(ComponentKind::Pedidos, "/readyz"),
                None,
                &[],
            )
            .await
            .body;
        assert_eq!(ready["status"], "ready");
    }
);

on_both_backends!(
    internal_calls_are_not_reachable_through_the_gateway,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let item = p.item("Interno", 5, 1.0).await;
        let reservation = json!({"reference": "x-1", "items": [{"item_id": item, "quantity": 1}]});
        for (method, path) in [
            ("POST", "/reservations"),
            ("POST", "/reservations/"),
            ("GET", "/reservations/1"),
            ("POST", "/reservations/1/commit"),
            ("POST", "/reservations/1/release"),
            ("POST", "/reservations/cancel"),
            ("POST", "//reservations"),
            ("POST", "/%72eservations"),
            ("POST", "/RESERVATIONS"),
            ("POST", "/items/../reservations"),
            ("POST", "/items/%2e%2e/reservations"),
            ("POST", "/orders/../reservations"),
            ("POST", "/payments/void"),
            ("POST", "/payments/void/"),
            ("POST", "/payments//void"),
            ("POST", "/payments/%76oid"),
            ("POST", "/payments/VOID"),
            ("POST", "/payments/void?x=1"),
            ("POST", "/payments/./void"),
            ("POST", "/items/../payments/void"),
        ] {
            let r = p
                .http
                .send(method, &p.url(path), Some(reservation.clone()), &[])
                .await;
            assert!(
                matches!(r.status, 400 | 404 | 405),
                "{method} {path} reached a service: {} {}",
                r.status,
                r.text
            );
        }
        assert_eq!(p.stock(item).await, (5, 0, 0), "nothing was held");
        // The services themselves still answer them (the platform's own calls).
        let direct = p
            .http
            .send(
                "POST",
                &p.service_url(ComponentKind::Estoque, "/reservations"),
                Some(reservation),
                &[],
            )
            .await;
        assert_eq!(direct.status, 201, "{}", direct.text);
    }
);

on_both_backends!(
    rate_limits_answer_429_with_retry_after,
    |backend: Backend| async move {
        let sha = |k: &str| -> String {
            use sha2::Digest;
            sha2::Sha256::digest(k.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        let keys = format!("admin:{}", sha("admin-secret"));
        // 1 request/s with a burst of 2 s: slow refill, so timing cannot blur the counts.
        let p = Platform::start_with(
            backend,
            Options {
                rate_limit_per_address: 1.0,
                api_keys: Some(keys.clone()),
                ..Default::default()
            },
        )
        .await;
        let mut statuses = Vec::new();
        for _ in 0..4 {
            statuses.push(p.get("/items").await);
        }
        let codes: Vec<u16> = statuses.iter().map(|r| r.status).collect();
        assert_eq!(
            codes,
            [200, 200, 429, 429],
            "the burst passes, then the address is limited"
        );
        let r = &statuses[2];
        assert_eq!(
            (r.code(), r.body["limit"].as_str()),
            ("rate_limited", Some("address"))
        );
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(retry, 1, "Retry-After in whole seconds");
        // Probes are not limited.
        for _ in 0..20 {
            assert_eq!(p.get("/livez").await.status, 200);
            assert_eq!(p.get("/readyz").await.status, 200);
        }
        // A wrong key is not a key: it counts against the address.
        let wrong = p
            .http
            .send("GET", &p.url("/payments"), None, &[("x-api-key", "guess")])
            .await;
        assert_eq!(wrong.status, 429);
        drop(p);

        // Per key, with the address limit off.
        let p = Platform::start_with(
            backend,
            Options {
                rate_limit_per_key: 1.0,
                api_keys: Some(keys),
                ..Default::default()
            },
        )
        .await;
        let mut by_key = Vec::new();
        for _ in 0..4 {
            by_key.push(
                p.http
                    .send(
                        "GET",
                        &p.url("/payments"),
                        None,
                        &[("x-api-key", "admin-secret")],
                    )
                    .await,
            );
        }
        let codes: Vec<u16> = by_key.iter().map(|r| r.status).collect();
        assert_eq!(codes, [200, 200, 429, 429], "{codes:?}");
        assert_eq!(by_key[2].body["limit"], "key");
        assert!(
            !by_key[2].text.contains("admin-secret"),
            "the key is never echoed"
        );
        // Other clients (no key, or a wrong one) are not held back by that key's limit.
        assert_eq!(p.get("/items").await.status, 200);
        let wrong = p
            .http
            .send("GET", &p.url("/payments"), None, &[("x-api-key", "guess")])
            .await;
        assert_eq!(wrong.status, 401);
    }
);

on_both_backends!(
    oversized_and_slow_headers_are_refused,
    |backend: Backend| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let p = Platform::start_with(
            backend,
            Options {
                header_read_timeout_ms: 300,
                ..Default::default()
            },
        )
        .await;
        let big = "x".repeat(20 * 1024);
        let r = p
            .http
            .send("GET", &p.url("/items"), None, &[("x-big", big.as_str())])
            .await;
        assert_eq!(r.status, 431, "a 20 KiB header is refused");
        let many: Vec<(String, String)> = (0..120)
            .map(|i| (format!("x-h{i}"), "1".to_owned()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = Http::new().send("GET", &p.url("/items"), None, &many).await;
        assert_eq!(r.status, 431, "120 headers are refused");
        // A client that starts a request and stalls is disconnected.
        let mut slow = tokio::net::TcpStream::connect(p.topology.gateway)
            .await
            .expect("connect");
        slow.write_all(b"GET /items HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(_)) | Ok(Err(_))),
            "the connection was not closed"
        );
        // Normal requests still work.
        assert_eq!(p.get("/items").await.status, 200);
    }
);

// Regression cases found by schemathesis (.ci/schemathesis.sh): the document must
// describe what the platform answers.
on_both_backends!(openapi_matches_the_answers, |backend: Backend| async move {
    let p = Platform::start(backend).await;
    let doc = p.get("/openapi.json").await.body;
    // Paging parameters are query parameters (they were documented as path ones).
    for path in ["/items", "/orders", "/payments"] {
        let params = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(!params.is_empty(), "{path}: no parameters");
        for param in &params {
            assert_eq!(param["in"], "query", "{path}: {param}");
        }
    }
    // Answers every proxied call can give are documented (400 for an id out of range).
    let delete = &doc["paths"]["/items/{id}"]["delete"]["responses"];
    for status in ["400", "429", "503", "504"] {
        assert!(
            delete.get(status).is_some(),
            "DELETE /items/{{id}}: no {status}"
        );
    }
    let create = &doc["paths"]["/payments"]["post"]["responses"];
    for status in ["400", "413", "415"] {
        assert!(create.get(status).is_some(), "POST /payments: no {status}");
    }
    let r = p
        .http
        .send("DELETE", &p.url("/items/9223372036854775808"), None, &[])
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    // A free order is paid without a payment: `payment` is null, and documented so.
    let free = p.item("Brinde", 5, 0.0).await;
    let order = p.order("Zoe", &[(free, 2)]).await;
    assert_eq!(order.status, 201, "{}", order.text);
    assert_eq!(order.body["order"]["status"], "paid");
    assert!(order.body["payment"].is_null());
    let payment = &doc["components"]["schemas"]["OrderCreated"]["properties"]["payment"];
    let nullable = payment["nullable"] == true
        || payment["type"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "null"))
        || payment["oneOf"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["type"] == "null"));
    assert!(nullable, "payment must be nullable: {payment}");
});

on_both_backends!(
    open_connections_are_limited,
    |backend: Backend| async move {
        let p = Platform::start_with(
            backend,
            Options {
                max_connections: 2,
                ..Default::default()
            },
        )
        .await;
        // Two clients hold connections open without sending anything.
        let idle_a = tokio::net::TcpStream::connect(p.topology.gateway)
            .await
            .expect("connect");
        let _idle_b = tokio::net::TcpStream::connect(p.topology.gateway)
            .await
            .expect("connect");
        tokio::time::sleep(Duration::from_millis(200)).await;
        // A third waits in the accept queue: no answer while both are open.
        let url = p.url("/items");
        let waiting = tokio::spawn(async move {
            Http::new()
                .try_raw("GET", &url, Vec::new(), &[], Duration::from_secs(10))
                .await
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "a third connection was served");
        // One closes: the waiting request is served.
        drop(idle_a);
        let r = waiting.await.expect("task").expect("answer");
        assert_eq!(r.status, 200);
    }
);
