//! Who calls pedidos-service, as the gateway signed it ([`contracts::identity`]).
//!
//! With a signing secret (identity on at the gateway: API keys or OIDC), every order
//! call must carry a valid signed identity, or it is a 401: pedidos never serves an
//! order to a caller it cannot name. Without one (the open mode) every caller may do
//! everything, as in the seed, and a request that carries an identity header is refused
//! as a misconfiguration: the gateway signs identities that nobody here would check.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use contracts::identity::{Customer, Identity, HEADER};
use platform::ApiError;

use crate::state::AppState;

/// The caller of an order call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The open mode: no identities, every order visible to everyone.
    Open,
    Admin,
    Customer(Customer),
}

impl Caller {
    /// The owner recorded on the orders this caller places (`None`: no owner, which
    /// only admins, or anyone in the open mode, can see).
    pub fn owner(&self) -> Option<&str> {
        match self {
            Caller::Customer(c) => Some(&c.owner),
            Caller::Open | Caller::Admin => None,
        }
    }

    /// Whether this caller may see an order that belongs to `owner`.
    pub fn sees(&self, owner: Option<&str>) -> bool {
        match self {
            Caller::Open | Caller::Admin => true,
            Caller::Customer(c) => owner == Some(c.owner.as_str()),
        }
    }

    /// The `Idempotency-Key` as stored: scoped to the owner, so one customer's key
    /// never finds another's order. An owner's keys carry the owner's length and name
    /// before the key, which no unscoped key of the same owner can imitate.
    pub fn scope_key(&self, key: &str) -> String {
        match self.owner() {
            Some(owner) => format!("{}:{owner}:{key}", owner.len()),
            None => key.to_owned(),
        }
    }

    /// Refuses an order whose `customer` is not the customer the identity names.
    pub fn check_customer(&self, customer: &str) -> Result<(), ApiError> {
        match self {
            Caller::Customer(Customer {
                name: Some(name), ..
            }) if name != customer => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "customer_mismatch",
                "an order's customer must be the caller's own name",
            )
            .with("customer", name.as_str())),
            _ => Ok(()),
        }
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(HEADER);
        let Some(key) = &app.settings.identity_secret else {
            if header.is_some() {
                tracing::error!(
                    "an identity header arrived but IDENTITY_SIGNING_SECRET is not set: \
                     set the gateway's secret here too, or ownership is not enforced"
                );
                return Err(ApiError::internal());
            }
            return Ok(Caller::Open);
        };
        let now = platform::now().timestamp();
        let identity = header
            .and_then(|value| value.to_str().ok())
            .and_then(|value| Identity::verify(value, key, now));
        match identity {
            Some(Identity::Admin) => Ok(Caller::Admin),
            Some(Identity::Customer(customer)) => Ok(Caller::Customer(customer)),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "order calls need an identity signed by the gateway",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(owner: &str) -> Caller {
        Caller::Customer(Customer {
            owner: owner.into(),
            name: Some(owner.into()),
        })
    }

    #[test]
    fn customers_see_their_own_orders_only() {
        let ana = customer("ana");
        assert!(ana.sees(Some("ana")));
        assert!(!ana.sees(Some("bia")));
        assert!(!ana.sees(None), "orders from before ownership: admins only");
        assert!(Caller::Admin.sees(None) && Caller::Open.sees(Some("ana")));
        assert!(ana.check_customer("ana").is_ok());
        assert_eq!(
            ana.check_customer("bia").unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert!(Caller::Admin.check_customer("anyone").is_ok());
    }

    #[test]
    fn idempotency_keys_are_scoped_to_their_owner() {
        assert_eq!(customer("ana").scope_key("k"), "3:ana:k");
        assert_ne!(
            customer("a:b").scope_key("c"),
            customer("a").scope_key("b:c")
        );
        assert_eq!(Caller::Open.scope_key("k"), "k");
    }
}
