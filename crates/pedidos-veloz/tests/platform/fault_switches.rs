//! Faults switched on while the platform runs (`/admin/faults`): off unless enabled,
//! admin only, refused when malformed, effective while on, over when switched off or
//! when their time to live ends, and never a unit or a payment lost meanwhile.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{Backend, Options, Platform, Resp};
use crate::on_both_backends;
use pedidos_veloz::ComponentKind;

fn with_faults() -> Options {
    Options {
        env: vec![("FAULTS_ENABLED".to_owned(), "true".to_owned())],
        ..Default::default()
    }
}

async fn switch_on(p: &Platform, fault: &str, body: Value) -> Resp {
    let url = p.url(&format!("/admin/faults/{fault}"));
    p.http.send("PUT", &url, Some(body), &[]).await
}

async fn switch_off(p: &Platform, fault: &str) -> Resp {
    let url = p.url(&format!("/admin/faults/{fault}"));
    p.http.send("DELETE", &url, None, &[]).await
}

/// The faults that are on, as `fault@component` names.
async fn active(p: &Platform) -> Vec<String> {
    let r = p.get("/admin/faults").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["unreachable"], json!([]), "{}", r.text);
    let mut on: Vec<String> = r.body["faults"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["active"] == true)
        .map(|f| {
            format!(
                "{}@{}",
                f["fault"].as_str().unwrap_or(""),
                f["component"].as_str().unwrap_or("")
            )
        })
        .collect();
    on.sort();
    on
}

on_both_backends!(
    faults_are_off_unless_enabled,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        let r = switch_on(&p, "payment_decline_rate", json!({"value": 1})).await;
        assert_eq!((r.status, r.code()), (404, "route_not_found"));
        let direct = p.service_url(ComponentKind::Pagamentos, "/admin/faults");
        assert_eq!(p.http.send("GET", &direct, None, &[]).await.status, 404);
        let metrics = p.metrics(ComponentKind::Pagamentos).await;
        assert!(!metrics.contains("fault_active"), "{metrics}");
    }
);

on_both_backends!(
    a_fault_acts_while_on_and_ends_by_itself,
    |backend: Backend| async move {
        let p = Platform::start_with(backend, with_faults()).await;
        let item = p.item("Meia", 10, 15.0).await;
        let r = switch_on(
            &p,
            "payment_decline_rate",
            json!({"value": 1, "ttl_seconds": 2}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["faults"][0]["component"], "pagamentos-service");
        assert_eq!(
            active(&p).await,
            ["payment_decline_rate@pagamentos-service"]
        );
        let metrics = p.metrics(ComponentKind::Pagamentos).await;
        assert!(
            metrics.contains(
                r#"fault_active{component="pagamentos-service",fault="payment_decline_rate"} 1"#
            ),
            "{metrics}"
        );

        let declined = p.order("Ana", &[(item, 1)]).await;
        assert_eq!(
            declined.body["order"]["status"], "payment_declined",
            "{}",
            declined.text
        );
        // The time to live ends it: the configured decline rate (0) is back.
        tokio::time::sleep(Duration::from_millis(3200)).await;
        assert!(active(&p).await.is_empty());
        let paid = p.order("Ana", &[(item, 1)]).await;
        assert_eq!(paid.body["order"]["status"], "paid", "{}", paid.text);
        let metrics = p.metrics(ComponentKind::Pagamentos).await;
        assert!(
            metrics.contains(
                r#"fault_active{component="pagamentos-service",fault="payment_decline_rate"} 0"#
            ),
            "{metrics}"
        );
        p.assert_invariants(&[(item, 10)]).await;
    }
);

on_both_backends!(
    malformed_fault_switches_change_nothing,
    |backend: Backend| async move {
        let p = Platform::start_with(backend, with_faults()).await;
        for (fault, body, code) in [
            (
                "payment_decline_rate",
                json!({"value": 1.5}),
                "invalid_field",
            ),
            (
                "payment_decline_rate",
                json!({"value": -0.1}),
                "invalid_field",
            ),
            ("payment_latency_ms", json!({"value": -5}), "invalid_field"),
            (
                "payment_latency_ms",
                json!({"value": "slow"}),
                "invalid_field",
            ),
            (
                "inventory_error_rate",
                json!({"value": 0.5, "ttl_seconds": 0}),
                "invalid_field",
            ),
            (
                "inventory_error_rate",
                json!({"value": 0.5, "ttl_seconds": 86400}),
                "invalid_field",
            ),
            (
                "database_latency_ms",
                json!({"value": 1e9}),
                "invalid_field",
            ),
            ("database_latency_ms", json!([10]), "invalid_body"),
            ("no_such_fault", json!({"value": 1}), "unknown_fault"),
        ] {
            let r = switch_on(&p, fault, body.clone()).await;
            assert_eq!(
                (r.status, r.code()),
                (400, code),
                "{fault} {body}: {}",
                r.text
            );
        }
        assert_eq!(switch_off(&p, "no_such_fault").await.status, 400);
        assert!(active(&p).await.is_empty());
    }
);

on_both_backends!(faults_need_the_admin_key, |backend: Backend| async move {
    let sha = |k: &str| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(k.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let mut options = with_faults();
    options.api_keys = Some(format!("admin:{},client:{}", sha("adm"), sha("cli")));
    let p = Platform::start_with(backend, options).await;
    let url = p.url("/admin/faults/inventory_latency_ms");
    let body = json!({"value": 10});
    let anonymous = p.http.send("PUT", &url, Some(body.clone()), &[]).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    let client = p
        .http
        .send("PUT", &url, Some(body.clone()), &[("x-api-key", "cli")])
        .await;
    assert_eq!(client.status, 403, "{}", client.text);
    let listing = p
        .http
        .send(
            "GET",
            &p.url("/admin/faults"),
            None,
            &[("x-api-key", "cli")],
        )
        .await;
    assert_eq!(listing.status, 403);
    let admin = p
        .http
        .send("PUT", &url, Some(body), &[("x-api-key", "adm")])
        .await;
    assert_eq!(admin.status, 200, "{}", admin.text);
    let off = p
        .http
        .send("DELETE", &url, None, &[("x-api-key", "adm")])
        .await;
    assert_eq!(
        (off.status, off.body["faults"][0]["active"].clone()),
        (200, json!(false))
    );
});

on_both_backends!(
    an_unavailable_inventory_leaves_orders_pending_and_loses_nothing,
    |backend: Backend| async move {
        let p = Platform::start_with(backend, with_faults()).await;
        let item = p.item("Boné", 20, 30.0).await;
        assert_eq!(
            switch_on(&p, "inventory_error_rate", json!({"value": 1}))
                .await
                .status,
            200
        );
        let items = p.get(&format!("/items/{item}")).await;
        assert_eq!((items.status, items.code()), (503, "service_unavailable"));
        assert_eq!(items.body["fault"], "inventory_error_rate");
        let pending = p.order("Bia", &[(item, 2)]).await;
        assert_eq!(pending.status, 202, "{}", pending.text);
        assert_eq!(switch_off(&p, "inventory_error_rate").await.status, 200);
        p.settle(Duration::from_secs(20)).await;
        let order = p
            .get(&format!("/orders/{}", pending.body["order"]["id"]))
            .await;
        assert_eq!(order.body["status"], "paid", "{}", order.text);
        p.assert_invariants(&[(item, 20)]).await;
    }
);

on_both_backends!(
    failing_calls_and_a_slow_payment_processor_are_recovered,
    |backend: Backend| async move {
        let p = Platform::start_with(backend, with_faults()).await;
        let item = p.item("Luva", 20, 12.5).await;
        for fault in ["payment_call_failure_rate", "inventory_call_failure_rate"] {
            assert_eq!(switch_on(&p, fault, json!({"value": 1})).await.status, 200);
            let r = p.order("Caio", &[(item, 1)]).await;
            assert_eq!(r.status, 202, "{fault}: {}", r.text);
            assert_eq!(switch_off(&p, fault).await.status, 200);
        }
        // Slower than the saga's call timeout (2 s in the tests): the outcome is unknown.
        let slow = json!({"value": 2500, "ttl_seconds": 30});
        assert_eq!(switch_on(&p, "payment_latency_ms", slow).await.status, 200);
        let r = p.order("Caio", &[(item, 1)]).await;
        assert_eq!(r.status, 202, "{}", r.text);
        assert_eq!(switch_off(&p, "payment_latency_ms").await.status, 200);
        p.settle(Duration::from_secs(20)).await;
        assert_eq!(p.all("/orders?status=paid").await.len(), 3);
        p.assert_invariants(&[(item, 20)]).await;
    }
);

on_both_backends!(
    latency_faults_add_their_delay,
    |backend: Backend| async move {
        let p = Platform::start_with(backend, with_faults()).await;
        let item = p.item("Cinto", 5, 40.0).await;
        let timed = |path: String| {
            let p = &p;
            async move {
                let started = Instant::now();
                let r = p.get(&path).await;
                assert_eq!(r.status, 200, "{}", r.text);
                started.elapsed()
            }
        };
        let db = switch_on(&p, "database_latency_ms", json!({"value": 300})).await;
        assert_eq!(db.status, 200, "{}", db.text);
        assert_eq!(
            db.body["faults"].as_array().map(Vec::len),
            Some(3),
            "every service applies it"
        );
        assert!(timed(format!("/items/{item}")).await >= Duration::from_millis(300));
        assert_eq!(switch_off(&p, "database_latency_ms").await.status, 200);
        assert_eq!(
            switch_on(&p, "inventory_latency_ms", json!({"value": 300}))
                .await
                .status,
            200
        );
        assert!(timed(format!("/items/{item}")).await >= Duration::from_millis(300));
        assert_eq!(switch_off(&p, "inventory_latency_ms").await.status, 200);
        assert!(active(&p).await.is_empty());
    }
);
