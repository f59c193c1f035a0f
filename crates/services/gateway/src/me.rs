//! `GET /me`: who a request's credentials make its caller, for clients such as the web
//! console, which shows a customer's name and the operator's view only to admins.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::Json;
use contracts::identity::Identity;
use platform::ApiError;
use serde::Serialize;

use crate::state::Gateway;

/// What `GET /me` answers.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// `open` (no keys, no tokens: every call is allowed) or `protected`.
    pub mode: &'static str,
    /// `admin`, `customer`, or null without credentials (or in the open mode).
    pub role: Option<&'static str>,
    /// The name a customer's orders carry; null for an admin, an unbound client key,
    /// or without credentials.
    pub customer: Option<String>,
    /// The OpenID Connect issuer whose tokens are accepted, if any.
    pub oidc_issuer: Option<String>,
}

/// `GET /me`: who the request's credentials make its caller (401 if they are invalid).
pub async fn me(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
) -> Result<(HeaderMap, Json<Me>), ApiError> {
    let auth = &gateway.auth;
    let identity = auth.identify(&headers).await?;
    let (role, customer) = match identity {
        None => (None, None),
        Some(Identity::Admin) => (Some("admin"), None),
        Some(Identity::Customer(c)) => (Some("customer"), c.name),
    };
    let mut answer = HeaderMap::new();
    // The answer depends on the credentials: never from a shared cache.
    answer.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok((
        answer,
        Json(Me {
            mode: if auth.is_enabled() {
                "protected"
            } else {
                "open"
            },
            role,
            customer,
            oidc_issuer: auth.oidc.as_ref().map(|o| o.issuer().to_owned()),
        }),
    ))
}
