//! OpenID Connect bearer tokens: a JWT is accepted when its signature verifies with a
//! key of the provider's JWKS, its algorithm is one of those allowed (never `none`,
//! never an HMAC one, and the key's own type decides which family), and its `iss`,
//! `aud`, `exp`, `nbf` and `sub` hold, within a small clock skew. Validation is
//! jsonwebtoken's; this module chooses its settings and keeps the keys.
//!
//! The JWKS comes from a URL (fetched at start-up, again on a schedule, and at once
//! when a token names a key id it does not know — a provider that rotated its keys —
//! except within [`REFRESH_COOLDOWN`] of such a fetch that did not find the key id
//! asked for, so random key ids cannot make the gateway hammer the provider) or from a
//! file (read the same way).

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::http::{Request, StatusCode, Uri};
use contracts::identity::{Customer, Identity};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use platform::ApiError;
use serde_json::Value;

use crate::settings::OidcSettings;

/// The shortest time between two fetches of the JWKS caused by unknown key ids.
pub const REFRESH_COOLDOWN: Duration = Duration::from_secs(10);
/// The largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

type HttpsClient = Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<bytes::Bytes>,
>;

/// Where the keys come from.
#[derive(Debug, Clone)]
enum Source {
    Url(Uri),
    File(PathBuf),
}

/// One usable key: the decoding key and the algorithms it may verify.
struct Key {
    decoding: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The keys of the provider, by key id, and when they were last fetched.
pub struct Jwks {
    source: Source,
    client: HttpsClient,
    keys: RwLock<Arc<HashMap<String, Key>>>,
    /// One fetch at a time: requests with a new key id wait for the one under way.
    refreshing: tokio::sync::Mutex<()>,
    /// When a fetch for an unknown key id last came back without it.
    last_miss: Mutex<Option<Instant>>,
}

impl Jwks {
    fn keys(&self) -> Arc<HashMap<String, Key>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fetches (or reads) the JWKS again and replaces the keys if it could be read.
    pub async fn refresh(&self) -> Result<usize, String> {
        let _one_at_a_time = self.refreshing.lock().await;
        self.load().await
    }

    async fn load(&self) -> Result<usize, String> {
        let bytes = match &self.source {
            Source::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("cannot read the JWKS file {}: {e}", path.display()))?,
            Source::Url(uri) => self.fetch(uri).await?,
        };
        let keys = parse_jwks(&bytes)?;
        let count = keys.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(count)
    }

    async fn fetch(&self, uri: &Uri) -> Result<Vec<u8>, String> {
        let request = Request::get(uri.clone())
            .header("accept", "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let call = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            if response.status() != StatusCode::OK {
                return Err(format!("the JWKS URL answered {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| e.to_string())?;
            Ok(body.to_bytes().to_vec())
        };
        tokio::time::timeout(FETCH_TIMEOUT, call)
            .await
            .map_err(|_| "the JWKS URL did not answer in time".to_owned())?
            .map_err(|e| format!("cannot fetch the JWKS: {e}"))
    }

    /// Refreshes because a token named an unknown key id, unless a refresh under way
    /// brings it, or one for an unknown key id came back without it recently.
    async fn refresh_for_unknown_kid(&self, kid: &str) {
        let _one_at_a_time = self.refreshing.lock().await;
        if self.keys().contains_key(kid) {
            return;
        }
        let last_miss = || self.last_miss.lock().unwrap_or_else(|e| e.into_inner());
        if last_miss().is_some_and(|at| at.elapsed() < REFRESH_COOLDOWN) {
            return;
        }
        if let Err(err) = self.load().await {
            tracing::warn!(error = %err, "JWKS refresh for an unknown key id failed");
        }
        if !self.keys().contains_key(kid) {
            *last_miss() = Some(Instant::now());
        }
    }
}

/// The usable keys of a JWKS document: signing keys with a key id, of an asymmetric
/// type (RSA, EC, OKP); symmetric (`oct`) and encryption keys are left out, so an HMAC
/// token can never verify.
fn parse_jwks(bytes: &[u8]) -> Result<HashMap<String, Key>, String> {
    let set: JwkSet =
        serde_json::from_slice(bytes).map_err(|e| format!("the JWKS is not valid: {e}"))?;
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
            continue;
        }
        let family: &[Algorithm] = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => &[
                Algorithm::RS256,
                Algorithm::RS384,
                Algorithm::RS512,
                Algorithm::PS256,
                Algorithm::PS384,
                Algorithm::PS512,
            ],
            AlgorithmParameters::EllipticCurve(_) => &[Algorithm::ES256, Algorithm::ES384],
            AlgorithmParameters::OctetKeyPair(_) => &[Algorithm::EdDSA],
            AlgorithmParameters::OctetKey(_) => continue,
        };
        // A key that names its algorithm verifies that one only.
        let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
            Some(named) => match Algorithm::from_str(&named.to_string()) {
                Ok(alg) if family.contains(&alg) => vec![alg],
                _ => continue,
            },
            None => family.to_vec(),
        };
        match DecodingKey::from_jwk(jwk) {
            Ok(decoding) => {
                keys.insert(
                    kid,
                    Key {
                        decoding,
                        algorithms,
                    },
                );
            }
            Err(err) => tracing::warn!(kid, error = %err, "JWKS key left out"),
        }
    }
    Ok(keys)
}

/// Validates bearer tokens and turns their claims into an identity.
pub struct Verifier {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    role_claim: Vec<String>,
    admin_role: String,
    name_claim: Vec<String>,
    pub jwks: Arc<Jwks>,
    pub refresh_every: Duration,
}

fn invalid(reason: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", message).with("reason", reason)
}

impl Verifier {
    /// The verifier the settings describe, or `None` when no issuer is configured.
    pub fn from_settings(settings: &OidcSettings) -> Result<Option<Self>, String> {
        let Some(issuer) = settings.oidc_issuer.clone().filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let audience = settings
            .oidc_audience
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or("OIDC_ISSUER is set: OIDC_AUDIENCE must be set too")?;
        let url = settings.oidc_jwks_url.clone().filter(|s| !s.is_empty());
        let file = settings
            .oidc_jwks_file
            .clone()
            .filter(|p| !p.as_os_str().is_empty());
        let source = match (url, file) {
            (Some(url), None) => {
                let uri: Uri = url
                    .parse()
                    .map_err(|e| format!("OIDC_JWKS_URL {url:?}: {e}"))?;
                if !matches!(uri.scheme_str(), Some("https" | "http")) || uri.host().is_none() {
                    return Err(format!("OIDC_JWKS_URL {url:?} must be an http(s) URL"));
                }
                Source::Url(uri)
            }
            (None, Some(path)) => Source::File(path),
            _ => {
                return Err(
                    "OIDC_ISSUER is set: set exactly one of OIDC_JWKS_URL and OIDC_JWKS_FILE"
                        .to_owned(),
                )
            }
        };
        let mut algorithms = Vec::new();
        for name in settings
            .oidc_algorithms
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let alg = Algorithm::from_str(name)
                .map_err(|_| format!("OIDC_ALGORITHMS: unknown algorithm {name:?}"))?;
            if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                return Err(format!(
                    "OIDC_ALGORITHMS: {name} is a shared-secret algorithm; only public-key ones are accepted"
                ));
            }
            algorithms.push(alg);
        }
        if algorithms.is_empty() {
            return Err("OIDC_ALGORITHMS names no algorithm".to_owned());
        }
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client = platform::client::pooled(2).build(https);
        let path = |claim: &str| claim.split('.').map(str::to_owned).collect::<Vec<_>>();
        // A file is read now, so a wrong path or a broken file stops the start-up; a URL
        // is fetched by the refresh worker (the provider may come up after the gateway).
        let initial = match &source {
            Source::File(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| format!("OIDC_JWKS_FILE: cannot read {}: {e}", path.display()))?;
                parse_jwks(&bytes).map_err(|e| format!("OIDC_JWKS_FILE: {e}"))?
            }
            Source::Url(_) => HashMap::new(),
        };
        Ok(Some(Self {
            issuer,
            audience,
            algorithms,
            leeway: settings.oidc_clock_skew_seconds,
            role_claim: path(&settings.oidc_role_claim),
            admin_role: settings.oidc_admin_role.clone(),
            name_claim: path(&settings.oidc_name_claim),
            jwks: Arc::new(Jwks {
                source,
                client,
                keys: RwLock::new(Arc::new(initial)),
                refreshing: tokio::sync::Mutex::new(()),
                last_miss: Mutex::new(None),
            }),
            refresh_every: Duration::from_secs(settings.oidc_jwks_refresh_seconds.max(10)),
        }))
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The identity a token proves, or a 401 saying why it proves nothing.
    pub async fn verify(&self, token: &str) -> Result<Identity, ApiError> {
        // `alg: none`, an unknown algorithm or a malformed token fail here.
        let header = decode_header(token)
            .map_err(|_| invalid("malformed", "the bearer token is not a valid JWT"))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(invalid(
                "algorithm_not_allowed",
                "the token's algorithm is not allowed",
            ));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| invalid("no_key_id", "the token names no key id (kid)"))?;
        let mut keys = self.jwks.keys();
        if !keys.contains_key(kid) {
            self.jwks.refresh_for_unknown_kid(kid).await;
            keys = self.jwks.keys();
        }
        let key = keys
            .get(kid)
            .ok_or_else(|| invalid("unknown_key_id", "the token's key id is not in the JWKS"))?;
        if !key.algorithms.contains(&header.alg) {
            return Err(invalid(
                "algorithm_not_allowed",
                "the token's algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = decode::<Value>(token, &key.decoding, &validation)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => invalid("expired", "the token has expired"),
                ErrorKind::ImmatureSignature => {
                    invalid("not_yet_valid", "the token is not valid yet (nbf)")
                }
                ErrorKind::InvalidIssuer => {
                    invalid("wrong_issuer", "the token's issuer is not accepted")
                }
                ErrorKind::InvalidAudience => invalid(
                    "wrong_audience",
                    "the token is not meant for this API (aud)",
                ),
                ErrorKind::InvalidSignature => {
                    invalid("bad_signature", "the token's signature is not valid")
                }
                ErrorKind::MissingRequiredClaim(_) => invalid(
                    "missing_claim",
                    "the token lacks a required claim (exp, iss, aud, sub)",
                ),
                _ => invalid("invalid", "the bearer token is not valid"),
            })?
            .claims;
        self.identity(&claims)
    }

    fn identity(&self, claims: &Value) -> Result<Identity, ApiError> {
        let sub = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| invalid("missing_claim", "the token's sub is not a usable subject"))?;
        let roles = lookup(claims, &self.role_claim);
        let admin = match roles {
            Some(Value::String(role)) => role.split(' ').any(|r| r == self.admin_role),
            Some(Value::Array(roles)) => roles.iter().any(|r| r.as_str() == Some(&self.admin_role)),
            _ => false,
        };
        if admin {
            return Ok(Identity::Admin);
        }
        let name = lookup(claims, &self.name_claim)
            .and_then(Value::as_str)
            .filter(|n| !n.trim().is_empty() && n.chars().count() <= 200)
            .unwrap_or(sub);
        Ok(Identity::Customer(Customer {
            owner: sub.to_owned(),
            name: Some(name.to_owned()),
        }))
    }
}

/// The value at a dotted claim path (`realm_access.roles`); a claim whose own name has a
/// dot (`cognito:groups` has none) is found whole first.
fn lookup<'a>(claims: &'a Value, path: &[String]) -> Option<&'a Value> {
    if let Some(whole) = claims.get(path.join(".")) {
        return Some(whole);
    }
    path.iter().try_fold(claims, |value, part| value.get(part))
}

/// Whether a bearer credential has the shape of a JWT (three base64url parts) rather
/// than of an API key.
pub fn looks_like_jwt(credential: &str) -> bool {
    let parts: Vec<&str> = credential.split('.').collect();
    parts.len() == 3
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shapes_are_told_from_keys() {
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("admin-secret"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c d"));
    }

    #[test]
    fn symmetric_and_unnamed_keys_are_left_out() {
        let jwks = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty":"EC","kid":"e","crv":"P-256","alg":"ES256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
        ]}"#;
        let keys = parse_jwks(jwks).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["e"]);
        assert_eq!(keys["e"].algorithms, [Algorithm::ES256]);
        assert!(parse_jwks(b"[]").is_err());
    }

    #[test]
    fn rsa_keys_verify_rsa_algorithms_only() {
        // The RSA public key of RFC 7517, appendix A.1; an encryption key is left out.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "r", "use": "sig", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": n, "e": "AQAB"},
            {"kty": "RSA", "kid": "r256", "alg": "RS256", "n": n, "e": "AQAB"}
        ]});
        let keys = parse_jwks(jwks.to_string().as_bytes()).unwrap();
        assert!(!keys.contains_key("enc"));
        assert!(keys["r"].algorithms.contains(&Algorithm::PS256));
        assert!(!keys["r"].algorithms.contains(&Algorithm::ES256));
        assert!(!keys["r"].algorithms.contains(&Algorithm::HS256));
        assert_eq!(keys["r256"].algorithms, [Algorithm::RS256]);
    }

    #[test]
    fn roles_are_read_at_a_dotted_path() {
        let claims =
            serde_json::json!({"realm_access": {"roles": ["admin"]}, "cognito:groups": ["x"]});
        let path = |p: &str| p.split('.').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(
            lookup(&claims, &path("realm_access.roles")),
            Some(&serde_json::json!(["admin"]))
        );
        assert_eq!(
            lookup(&claims, &path("cognito:groups")),
            Some(&serde_json::json!(["x"]))
        );
        assert_eq!(lookup(&claims, &path("nope.x")), None);
    }
}
