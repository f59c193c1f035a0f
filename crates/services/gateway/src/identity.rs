//! Who a request is from, and what the services are told about it. A caller proves an
//! identity with an API key ([`crate::auth`]) or an OpenID Connect bearer token
//! ([`crate::oidc`]); the access rule of the call ([`crate::routes`]) decides whether
//! it needs one and which role. The identity is passed on in the signed header of
//! [`contracts::identity`], which the gateway always writes itself: a copy sent by the
//! client is removed first, so no client can speak for another.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use contracts::identity::{Identity, SigningKey, HEADER};
use platform::ApiError;

use crate::auth::{presented_key, role, Access, Keys};
use crate::oidc::{looks_like_jwt, Verifier};

static IDENTITY: HeaderName = HeaderName::from_static(HEADER);

/// The gateway's ways of telling who a caller is.
pub struct Authenticator {
    pub keys: Arc<Keys>,
    pub oidc: Option<Verifier>,
    /// Signs the identity header; set whenever keys or OIDC are.
    pub signer: Option<SigningKey>,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

impl Authenticator {
    /// Builds it, refusing a configuration where pedidos could not trust the identity.
    pub fn new(
        keys: Arc<Keys>,
        oidc: Option<Verifier>,
        signer: Option<SigningKey>,
    ) -> Result<Self, String> {
        let auth = Self { keys, oidc, signer };
        if auth.is_enabled() && auth.signer.is_none() {
            return Err(
                "API keys or OIDC are configured: IDENTITY_SIGNING_SECRET must be set \
                        (the same secret for the gateway and pedidos-service)"
                    .to_owned(),
            );
        }
        Ok(auth)
    }

    /// Whether callers are told apart at all (else the gateway is open).
    pub fn is_enabled(&self) -> bool {
        self.keys.is_enabled() || self.oidc.is_some()
    }

    /// The identity a request's credentials prove: `None` without credentials, a 401
    /// for credentials that prove nothing.
    pub async fn identify(&self, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        if !self.is_enabled() {
            return Ok(None);
        }
        let Some(credential) = presented_key(headers) else {
            return Ok(None);
        };
        let is_token = !headers.contains_key("x-api-key") && looks_like_jwt(credential);
        if let (true, Some(oidc)) = (is_token, &self.oidc) {
            return oidc.verify(credential).await.map(Some);
        }
        self.keys
            .identity_of(credential)
            .map(Some)
            .ok_or_else(|| unauthorized("invalid API key"))
    }

    /// Checks a request against the access rule of its call: the identity to pass on
    /// (`None` for a public call, or when the gateway is open).
    pub async fn authorize(
        &self,
        access: Access,
        headers: &HeaderMap,
    ) -> Result<Option<Identity>, ApiError> {
        let Access::Needs(needed) = access else {
            return Ok(None);
        };
        if !self.is_enabled() {
            return Ok(None);
        }
        let identity = self.identify(headers).await?.ok_or_else(|| {
            unauthorized(
                "credentials are required: an API key (X-API-Key) or a bearer token (Authorization: Bearer)",
            )
        })?;
        if role(&identity) < needed {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this call needs an admin",
            ));
        }
        Ok(Some(identity))
    }

    /// Writes the identity header of a forwarded request: any copy the client sent is
    /// removed, and the caller's identity, if any, is signed now.
    pub fn stamp(&self, headers: &mut HeaderMap, identity: Option<&Identity>) {
        headers.remove(&IDENTITY);
        let (Some(identity), Some(key)) = (identity, &self.signer) else {
            return;
        };
        let now = platform::now().timestamp();
        if let Ok(value) = HeaderValue::try_from(identity.sign(key, now)) {
            headers.insert(IDENTITY.clone(), value);
        }
    }
}
