//! Bearer tokens end to end: a token of the test's own identity provider (its JWKS in
//! a file, or served over HTTP) is a customer or an admin; a token with a bad
//! signature, another issuer or audience, expired or not yet valid, `alg: none`, HS256
//! signed with the public key, or an unknown key id is a 401 with a JSON error and
//! changes nothing; a rotated key is fetched when a token names it.

use serde_json::{json, Value};

use crate::harness::{Backend, Options, Platform, Resp};
use crate::on_both_backends;
use crate::tokens::{self, claims, handmade, jwks, JwksServer, Key};
use pedidos_veloz::ComponentKind;

async fn bearer(p: &Platform, method: &str, path: &str, body: Option<Value>, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    p.http
        .send(method, &p.url(path), body, &[("authorization", &auth)])
        .await
}

fn order(customer: &str, item: i64) -> Value {
    json!({"customer": customer, "items": [{"item_id": item, "quantity": 1}]})
}

async fn orders_in_db(p: &Platform) -> i64 {
    p.count(ComponentKind::Pedidos, "SELECT COUNT(*) FROM orders")
        .await
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
