//! Identity and ownership: customers (client keys bound to them, unbound client keys,
//! bearer tokens) see, list and cancel only their own orders by any path or parameter;
//! idempotency keys do not cross customers; the identity header is the gateway's alone;
//! bad tokens of every kind are a 401 with a JSON error and change nothing.

use serde_json::{json, Value};

use crate::harness::{sha256_hex, Backend, Options, Platform, Resp};
use crate::on_both_backends;
use crate::tokens::{self, claims, handmade, jwks, JwksServer, Key};
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

async fn bearer(p: &Platform, method: &str, path: &str, body: Option<Value>, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    p.http
        .send(method, &p.url(path), body, &[("authorization", &auth)])
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

on_both_backends!(bad_tokens_are_refused, |backend: Backend| async move {
    let dir = tempfile::tempdir().expect("dir");
    let key = Key::new("k1");
    let other = Key::new("k1");
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&key]).to_string()).expect("write jwks");
    let p = Platform::start_with(
        backend,
        Options {
            env: tokens::oidc_env(("OIDC_JWKS_FILE", file.display().to_string())),
            ..Default::default()
        },
    )
    .await;
    let admin = key.sign(&claims("ops-1", &["admin"]));
    let item = bearer(
        &p,
        "POST",
        "/items",
        Some(json!({"name": "Tigela", "quantity": 5, "price": 4})),
        &admin,
    )
    .await;
    assert_eq!(
        item.status, 201,
        "an admin token manages items: {}",
        item.text
    );
    let item = item.body["id"].as_i64().expect("item");
    let good = key.sign(&claims("user-7", &[]));
    let placed = bearer(&p, "POST", "/orders", Some(order("user-7", item)), &good).await;
    assert_eq!(placed.status, 201, "{}", placed.text);
    assert_eq!(
        bearer(&p, "GET", "/payments", None, &admin).await.status,
        200
    );
    assert_eq!(
        bearer(&p, "GET", "/payments", None, &good).await.status,
        403
    );
    let me = bearer(&p, "GET", "/me", None, &good).await;
    assert_eq!(
        me.body,
        json!({"mode": "protected", "role": "customer", "customer": "user-7", "oidc_issuer": tokens::ISSUER})
    );

    let now = tokens::now();
    let mut wrong_iss = claims("user-7", &[]);
    wrong_iss["iss"] = json!("https://evil.test/");
    let mut wrong_aud = claims("user-7", &[]);
    wrong_aud["aud"] = json!("another-api");
    let mut expired = claims("user-7", &[]);
    expired["exp"] = json!(now - 120);
    let mut not_yet = claims("user-7", &[]);
    not_yet["nbf"] = json!(now + 600);
    let mut string_exp = claims("user-7", &[]);
    string_exp["exp"] = json!("never");
    let mut no_exp = claims("user-7", &[]);
    no_exp.as_object_mut().expect("object").remove("exp");
    let mut no_sub = claims("user-7", &[]);
    no_sub.as_object_mut().expect("object").remove("sub");
    let good_claims = claims("user-7", &["admin"]);
    let signature = good.rsplit('.').next().unwrap_or("").to_owned();
    let cases: Vec<(&str, String)> = vec![
        (
            "bad signature (another key, same kid)",
            other.sign(&good_claims),
        ),
        (
            "claims changed after signing",
            handmade(
                &json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}),
                &good_claims,
                &signature,
            ),
        ),
        ("wrong issuer", key.sign(&wrong_iss)),
        ("wrong audience", key.sign(&wrong_aud)),
        ("expired", key.sign(&expired)),
        ("not yet valid", key.sign(&not_yet)),
        ("exp of the wrong type", key.sign(&string_exp)),
        ("no exp", key.sign(&no_exp)),
        ("no sub", key.sign(&no_sub)),
        (
            "alg none",
            handmade(
                &json!({"alg": "none", "kid": "k1", "typ": "JWT"}),
                &good_claims,
                "",
            ),
        ),
        (
            "alg None",
            handmade(&json!({"alg": "None", "kid": "k1"}), &good_claims, ""),
        ),
        (
            "HS256 signed with the public key",
            key.sign_hs256_with_public_key(&good_claims),
        ),
        (
            "RS256 header on an EC key",
            handmade(
                &json!({"alg": "RS256", "kid": "k1"}),
                &good_claims,
                &signature,
            ),
        ),
        ("unknown kid", Key::new("k-unknown").sign(&good_claims)),
        (
            "no kid",
            handmade(&json!({"alg": "ES256"}), &good_claims, &signature),
        ),
        ("not base64", "eyJ.a$b.c".to_owned()),
        ("garbage in three parts", "abc.def.ghi".to_owned()),
    ];
    let before = orders_in_db(&p).await;
    for (what, token) in &cases {
        for (method, path, body) in [
            ("POST", "/orders".to_owned(), Some(order("user-7", item))),
            ("GET", "/orders".to_owned(), None),
            ("GET", "/payments".to_owned(), None),
            ("DELETE", format!("/items/{item}"), None),
            ("GET", "/me".to_owned(), None),
        ] {
            let r = bearer(&p, method, &path, body, token).await;
            assert_eq!(r.status, 401, "{what}: {method} {path}: {}", r.text);
            assert!(
                matches!(r.code(), "invalid_token" | "unauthorized"),
                "{what}: {}",
                r.text
            );
            assert!(
                r.body["error"].is_string(),
                "{what}: a JSON error: {}",
                r.text
            );
        }
    }
    assert_eq!(
        orders_in_db(&p).await,
        before,
        "no bad token placed an order"
    );
    assert_eq!(p.stock(item).await, (4, 0, 1), "nor moved stock");
    assert_eq!(
        bearer(&p, "GET", &format!("/items/{item}"), None, "junk")
            .await
            .status,
        200,
        "the catalogue stays public"
    );
});

on_both_backends!(
    a_new_signing_key_is_fetched_when_a_token_names_it,
    |backend: Backend| async move {
        let first = Key::new("2026-a");
        let server = JwksServer::start(jwks(&[&first])).await;
        let p = Platform::start_with(
            backend,
            Options {
                env: tokens::oidc_env(("OIDC_JWKS_URL", server.url())),
                ..Default::default()
            },
        )
        .await;
        // The gateway's first fetch, at start-up.
        for _ in 0..100 {
            if *server.fetches.lock().expect("lock") > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let token = first.sign(&claims("ana-sub", &[]));
        assert_eq!(bearer(&p, "GET", "/orders", None, &token).await.status, 200);
        // The provider rotates: a token of the new key is accepted at once.
        let second = Key::new("2026-b");
        *server.document.lock().expect("lock") = jwks(&[&first, &second]);
        let fetched = *server.fetches.lock().expect("lock");
        let rotated = second.sign(&claims("ana-sub", &[]));
        let r = bearer(&p, "GET", "/orders", None, &rotated).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            *server.fetches.lock().expect("lock"),
            fetched + 1,
            "one fetch for the new kid"
        );
        // Unknown key ids do not make the gateway fetch again and again.
        for i in 0..5 {
            let stranger = Key::new(&format!("rogue-{i}")).sign(&claims("x", &["admin"]));
            let r = bearer(&p, "GET", "/payments", None, &stranger).await;
            assert_eq!(
                (r.status, r.body["reason"].as_str()),
                (401, Some("unknown_key_id"))
            );
        }
        assert_eq!(
            *server.fetches.lock().expect("lock"),
            fetched + 2,
            "one fetch for the first stranger, none for the others"
        );
    }
);
