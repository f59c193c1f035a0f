//! Identity and ownership: customers (client keys bound to them, unbound client keys)
//! see, list and cancel only their own orders by any path or parameter; idempotency
//! keys do not cross customers; the identity header is the gateway's alone, in one
//! process and as separate processes. Bearer tokens: `oidc.rs`.

use serde_json::{json, Value};

use crate::harness::{sha256_hex, Backend, Mode, Options, Platform, Resp};
use crate::on_both_backends;
use crate::tokens;
use pedidos_veloz::ComponentKind;

const ADMIN: &str = "admin-secret";
const ANA: &str = "ana-secret";
const BIA: &str = "bia-secret";
const SHOP: &str = "shop-secret";

/// Keys of an admin, of Ana and Bia (client keys bound to them), and of a shop front
/// end (an unbound client key).
fn keys() -> String {
    format!(
        "admin:{},client:{}:Ana,client:{}:Bia,client:{}",
        sha256_hex(ADMIN),
        sha256_hex(ANA),
        sha256_hex(BIA),
        sha256_hex(SHOP)
    )
}

async fn call(p: &Platform, method: &str, path: &str, body: Option<Value>, key: &str) -> Resp {
    p.http
        .send(method, &p.url(path), body, &[("x-api-key", key)])
        .await
}

fn order(customer: &str, item: i64) -> Value {
    json!({"customer": customer, "items": [{"item_id": item, "quantity": 1}]})
}

fn ids(list: &Resp) -> Vec<i64> {
    list.body
        .as_array()
        .map(|a| a.iter().filter_map(|o| o["id"].as_i64()).collect())
        .unwrap_or_default()
}

async fn orders_in_db(p: &Platform) -> i64 {
    p.count(ComponentKind::Pedidos, "SELECT COUNT(*) FROM orders")
        .await
}

on_both_backends!(
    customers_reach_only_their_own_orders,
    |backend: Backend| async move {
        let p = Platform::start_with(
            backend,
            Options {
                api_keys: Some(keys()),
                ..Default::default()
            },
        )
        .await;
        let item = call(
            &p,
            "POST",
            "/items",
            Some(json!({"name": "Caneca", "quantity": 50, "price": 10})),
            ADMIN,
        )
        .await;
        let item = item.body["id"].as_i64().expect("item");
        let ana = call(&p, "POST", "/orders", Some(order("Ana", item)), ANA).await;
        assert_eq!(ana.status, 201, "{}", ana.text);
        let ana_id = ana.body["order"]["id"].as_i64().expect("id");
        let bia = call(&p, "POST", "/orders", Some(order("Bia", item)), BIA).await;
        assert_eq!(bia.status, 201, "{}", bia.text);
        let bia_id = bia.body["order"]["id"].as_i64().expect("id");
        let shop = call(&p, "POST", "/orders", Some(order("Zé", item)), SHOP).await;
        assert_eq!(shop.status, 201, "{}", shop.text);
        let shop_id = shop.body["order"]["id"].as_i64().expect("id");
        let admin = call(&p, "POST", "/orders", Some(order("Balcão", item)), ADMIN).await;
        let admin_id = admin.body["order"]["id"].as_i64().expect("id");

        // Lists: one's own orders, whatever the filters say.
        for path in [
            "/orders",
            "/orders?customer=Bia",
            "/orders?status=paid",
            "/orders?customer=Bia&status=paid",
            "/orders?after=0&limit=1000",
            "/orders?limit=1",
        ] {
            let list = call(&p, "GET", path, None, ANA).await;
            assert_eq!(list.status, 200, "{path}: {}", list.text);
            let expected: Vec<i64> = if path.contains("customer=Bia") {
                vec![]
            } else {
                vec![ana_id]
            };
            assert_eq!(ids(&list), expected, "Ana's {path}");
        }
        assert_eq!(
            ids(&call(&p, "GET", "/orders", None, SHOP).await),
            [shop_id]
        );
        let all = call(&p, "GET", "/orders", None, ADMIN).await;
        assert_eq!(
            ids(&all),
            [ana_id, bia_id, shop_id, admin_id],
            "admins see all"
        );

        // Reads and cancels of another's order: 404, exactly like an id that does not exist.
        let missing = call(&p, "GET", "/orders/999999", None, ANA).await;
        for other in [bia_id, shop_id, admin_id] {
            for (method, path) in [
                ("GET", format!("/orders/{other}")),
                ("GET", format!("/orders/{other}/")),
                ("GET", format!("/orders/{other}?customer=Ana")),
                ("POST", format!("/orders/{other}/cancel")),
                ("POST", format!("/orders//{other}/cancel")),
            ] {
                let r = call(&p, method, &path, None, ANA).await;
                assert!(
                    r.status == 404 || (r.status == 400 && r.code() != "order_not_found"),
                    "{method} {path}: {} {}",
                    r.status,
                    r.text
                );
                if r.status == 404 && r.code() == "order_not_found" {
                    assert_eq!(r.body["error"], format!("order {other} not found"));
                    assert_eq!(missing.code(), r.code());
                }
            }
        }
        let still = call(&p, "GET", &format!("/orders/{bia_id}"), None, BIA).await;
        assert_eq!(
            still.body["status"], "paid",
            "Bia's order was not cancelled"
        );
        assert_eq!(
            call(&p, "GET", &format!("/orders/{ana_id}"), None, ANA)
                .await
                .status,
            200
        );
        let cancelled = call(&p, "POST", &format!("/orders/{ana_id}/cancel"), None, ANA).await;
        assert_eq!(
            cancelled.body["order"]["status"], "cancelled",
            "{}",
            cancelled.text
        );

        // A customer orders as themselves only; an unbound key types any name.
        let before = orders_in_db(&p).await;
        let as_bia = call(&p, "POST", "/orders", Some(order("Bia", item)), ANA).await;
        assert_eq!(
            (as_bia.status, as_bia.code()),
            (403, "customer_mismatch"),
            "{}",
            as_bia.text
        );
        assert_eq!(
            orders_in_db(&p).await,
            before,
            "a refused order records nothing"
        );
        assert_eq!(p.stock(item).await, (46, 0, 4), "and holds nothing");

        // Customers cannot reach payments or item management.
        assert_eq!(call(&p, "GET", "/payments", None, ANA).await.status, 403);
        assert_eq!(
            call(
                &p,
                "PATCH",
                &format!("/items/{item}"),
                Some(json!({"quantity": 1})),
                ANA
            )
            .await
            .status,
            403
        );
    }
);

on_both_backends!(
    idempotency_keys_do_not_cross_customers,
    |backend: Backend| async move {
        let p = Platform::start_with(
            backend,
            Options {
                api_keys: Some(keys()),
                ..Default::default()
            },
        )
        .await;
        let item = call(
            &p,
            "POST",
            "/items",
            Some(json!({"name": "Meia", "quantity": 9, "price": 3})),
            ADMIN,
        )
        .await;
        let item = item.body["id"].as_i64().expect("item");
        let send = |key: &'static str, customer: &'static str| {
            let p = &p;
            async move {
                p.http
                    .send(
                        "POST",
                        &p.url("/orders"),
                        Some(order(customer, item)),
                        &[("x-api-key", key), ("idempotency-key", "same-key-1")],
                    )
                    .await
            }
        };
        let first = send(ANA, "Ana").await;
        assert_eq!(first.status, 201, "{}", first.text);
        let ana_id = first.body["order"]["id"].as_i64();
        // Ana's retry finds her order.
        assert_eq!(send(ANA, "Ana").await.body["order"]["id"].as_i64(), ana_id);
        // Bia's key, her own body: a new order, not Ana's, not a 422.
        let bia = send(BIA, "Bia").await;
        assert_eq!(bia.status, 201, "{}", bia.text);
        assert_ne!(bia.body["order"]["id"].as_i64(), ana_id);
        // The shop types Ana's very body with Ana's key: still not Ana's order.
        let shop = send(SHOP, "Ana").await;
        assert_eq!(shop.status, 201, "{}", shop.text);
        let shop_id = shop.body["order"]["id"].as_i64();
        assert!(shop_id != ana_id && shop_id != bia.body["order"]["id"].as_i64());
        assert!(!shop
            .text
            .contains(&format!("\"id\":{}", ana_id.unwrap_or(0))));
        assert_eq!(orders_in_db(&p).await, 3);
    }
);

on_both_backends!(
    the_identity_header_is_the_gateways_alone,
    |backend: Backend| async move {
        let p = Platform::start_with(
            backend,
            Options {
                api_keys: Some(keys()),
                ..Default::default()
            },
        )
        .await;
        let item = call(
            &p,
            "POST",
            "/items",
            Some(json!({"name": "Vaso", "quantity": 5, "price": 2})),
            ADMIN,
        )
        .await;
        let item = item.body["id"].as_i64().expect("item");
        let bia = call(&p, "POST", "/orders", Some(order("Bia", item)), BIA).await;
        let bia_id = bia.body["order"]["id"].as_i64().expect("id");
        // A header a client writes, claiming to be an admin (well formed, signed with
        // another secret), or copied from nowhere: removed by the gateway.
        let forged = contracts_admin_header();
        for value in [forged.as_str(), "v1.0.admin...", "admin"] {
            let headers = [("x-api-key", ANA), ("x-pedidos-identity", value)];
            let list = p.http.send("GET", &p.url("/orders"), None, &headers).await;
            assert_eq!(ids(&list), Vec::<i64>::new(), "Ana still sees only hers");
            let read = p
                .http
                .send("GET", &p.url(&format!("/orders/{bia_id}")), None, &headers)
                .await;
            assert_eq!(read.status, 404);
            let anonymous = p
                .http
                .send(
                    "GET",
                    &p.url("/orders"),
                    None,
                    &[("x-pedidos-identity", value)],
                )
                .await;
            assert_eq!((anonymous.status, anonymous.code()), (401, "unauthorized"));
            // Straight to pedidos: an identity it cannot verify is no identity.
            let direct = p
                .http
                .send(
                    "GET",
                    &p.service_url(ComponentKind::Pedidos, "/orders"),
                    None,
                    &[("x-pedidos-identity", value)],
                )
                .await;
            assert_eq!(
                (direct.status, direct.code()),
                (401, "unauthorized"),
                "{}",
                direct.text
            );
        }
        let bare = p
            .http
            .send(
                "GET",
                &p.service_url(ComponentKind::Pedidos, &format!("/orders/{bia_id}")),
                None,
                &[],
            )
            .await;
        assert_eq!(
            bare.status, 401,
            "pedidos serves no order without an identity"
        );
    }
);

/// An admin identity header signed with a secret that is not the platform's.
fn contracts_admin_header() -> String {
    let key = contracts::identity::SigningKey::new(&[42u8; 32]).expect("key");
    contracts::identity::Identity::Admin.sign(&key, tokens::now())
}

on_both_backends!(
    ownership_holds_across_separate_processes,
    |backend: Backend| async move {
        // One component per process: the gateway and pedidos share the secret they are
        // given (IDENTITY_SIGNING_SECRET), as in containers.
        let options = Options {
            api_keys: Some(keys()),
            ..Default::default()
        };
        let p = Platform::start_in(Mode::Processes, backend, options).await;
        let item = call(
            &p,
            "POST",
            "/items",
            Some(json!({"name": "Prato", "quantity": 5, "price": 7})),
            ADMIN,
        )
        .await;
        let item = item.body["id"].as_i64().expect("item");
        let ana = call(&p, "POST", "/orders", Some(order("Ana", item)), ANA).await;
        assert_eq!(ana.status, 201, "{}", ana.text);
        let ana_id = ana.body["order"]["id"].as_i64().expect("id");
        assert_eq!(
            call(&p, "GET", &format!("/orders/{ana_id}"), None, BIA)
                .await
                .status,
            404
        );
        assert_eq!(
            ids(&call(&p, "GET", "/orders", None, BIA).await),
            Vec::<i64>::new()
        );
        assert_eq!(ids(&call(&p, "GET", "/orders", None, ANA).await), [ana_id]);
        assert_eq!(
            ids(&call(&p, "GET", "/orders", None, ADMIN).await),
            [ana_id]
        );
    }
);
