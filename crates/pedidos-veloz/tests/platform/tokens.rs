//! Test tokens: an identity provider of the test's own, with ES256 keys made at run
//! time, that mints JWTs (good ones and every kind of bad one) and publishes its JWKS
//! as a file or from a small HTTP server on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

pub const ISSUER: &str = "https://idp.test/realms/shop";
pub const AUDIENCE: &str = "pedidos-api";

/// One signing key of the provider.
pub struct Key {
    pub kid: String,
    pkcs8: Vec<u8>,
    /// The uncompressed public point: 0x04 || x || y.
    public: Vec<u8>,
}

impl Key {
    pub fn new(kid: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("generate a P-256 key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("read the key back");
        Self {
            kid: kid.to_owned(),
            public: pair.public_key().as_ref().to_vec(),
            pkcs8: pkcs8.as_ref().to_vec(),
        }
    }

    /// The key as a JWKS entry.
    pub fn jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(&self.public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&self.public[33..65]),
        })
    }

    /// A token signed by this key with these claims.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).expect("sign")
    }

    /// The classic algorithm confusion: HS256 "signed" with the public key as the secret.
    pub fn sign_hs256_with_public_key(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &EncodingKey::from_secret(&self.public)).expect("sign")
    }
}

pub fn jwks(keys: &[&Key]) -> Value {
    json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()})
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Good claims for `sub`, valid for ten minutes; `roles` as given.
pub fn claims(sub: &str, roles: &[&str]) -> Value {
    let now = now();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "nbf": now - 5,
           "exp": now + 600, "roles": roles})
}

/// A token whose header and claims are written by hand, with any signature text.
pub fn handmade(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The environment variables of a gateway that trusts this provider.
pub fn oidc_env(jwks: (&str, String)) -> Vec<(String, String)> {
    vec![
        ("OIDC_ISSUER".to_owned(), ISSUER.to_owned()),
        ("OIDC_AUDIENCE".to_owned(), AUDIENCE.to_owned()),
        (jwks.0.to_owned(), jwks.1),
    ]
}

/// A JWKS endpoint on loopback whose document a test can change while it runs; counts
/// the fetches.
pub struct JwksServer {
    pub addr: SocketAddr,
    pub document: Arc<Mutex<Value>>,
    pub fetches: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(document: Value) -> Self {
        let document = Arc::new(Mutex::new(document));
        let fetches = Arc::new(Mutex::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (doc, count) = (doc.clone(), count.clone());
                async move {
                    *count.lock().expect("lock") += 1;
                    axum::Json(doc.lock().expect("lock").clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            document,
            fetches,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/jwks", self.addr)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
