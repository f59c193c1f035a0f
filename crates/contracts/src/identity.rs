//! Who is calling, as the gateway tells the services behind it: one header, which
//! the gateway writes on every request it forwards (after removing any copy a client
//! sent) and signs with HMAC-SHA256 under a secret only the gateway and pedidos hold.
//! A service trusts an identity only when its signature verifies, so a caller that
//! reaches a service directly, or a client that sends the header through the gateway,
//! cannot claim to be someone else.
//!
//! The header's value is `v1.<issued at, unix seconds>.<role>.<owner>.<name>.<mac>`,
//! the owner and the name base64url-encoded, the MAC over everything before it. A
//! value older (or newer) than [`MAX_AGE_SECONDS`] is refused, which bounds the replay
//! of a header seen inside the network.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header the identity travels in, gateway → service.
pub const HEADER: &str = "x-pedidos-identity";

/// How far an identity's time may be from the verifier's clock.
pub const MAX_AGE_SECONDS: i64 = 300;

/// The shortest signing secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 32;

const VERSION: &str = "v1";

/// Who a request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// An operator: sees and manages every order.
    Admin,
    /// A customer: places orders and sees only their own.
    Customer(Customer),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// Whom the customer's orders belong to: a token's `sub`, the customer a client
    /// key is bound to, or the key itself (`key:<hash prefix>`) for an unbound key.
    pub owner: String,
    /// The name the customer's orders must carry in `customer`; `None` for an unbound
    /// client key (a machine client that orders for the names it types).
    pub name: Option<String>,
}

/// The secret shared by the gateway (which signs) and pedidos (which verifies).
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

impl SigningKey {
    /// A key from configured secret bytes: at least [`MIN_SECRET_BYTES`] of them.
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the identity signing secret must have at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        Ok(Self(secret.to_vec()))
    }

    fn mac(&self, text: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(text.as_bytes());
        mac
    }
}

impl Identity {
    fn role(&self) -> &'static str {
        match self {
            Identity::Admin => "admin",
            Identity::Customer(_) => "customer",
        }
    }

    /// The header value that carries this identity, signed at `now` (unix seconds).
    pub fn sign(&self, key: &SigningKey, now: i64) -> String {
        let (owner, name) = match self {
            Identity::Admin => ("", ""),
            Identity::Customer(c) => (c.owner.as_str(), c.name.as_deref().unwrap_or("")),
        };
        let text = format!(
            "{VERSION}.{now}.{}.{}.{}",
            self.role(),
            URL_SAFE_NO_PAD.encode(owner),
            URL_SAFE_NO_PAD.encode(name)
        );
        let tag = URL_SAFE_NO_PAD.encode(key.mac(&text).finalize().into_bytes());
        format!("{text}.{tag}")
    }

    /// The identity a header value carries, if it is well formed, signed with `key` and
    /// recent; `None` otherwise (the caller treats it as no identity at all).
    pub fn verify(value: &str, key: &SigningKey, now: i64) -> Option<Identity> {
        let (text, tag) = value.rsplit_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // Constant-time comparison of the MAC.
        key.mac(text).verify_slice(&tag).ok()?;
        let mut parts = text.split('.');
        let (version, issued, role, owner, name) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if version != VERSION || parts.next().is_some() {
            return None;
        }
        let issued: i64 = issued.parse().ok()?;
        if (now - issued).abs() > MAX_AGE_SECONDS {
            return None;
        }
        let text = |b64: &str| -> Option<String> {
            String::from_utf8(URL_SAFE_NO_PAD.decode(b64).ok()?).ok()
        };
        match role {
            "admin" => Some(Identity::Admin),
            "customer" => {
                let owner = text(owner)?;
                let name = text(name)?;
                if owner.is_empty() {
                    return None;
                }
                Some(Identity::Customer(Customer {
                    owner,
                    name: (!name.is_empty()).then_some(name),
                }))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SigningKey {
        SigningKey::new(&[byte; 32]).unwrap()
    }

    fn alice() -> Identity {
        Identity::Customer(Customer {
            owner: "sub-1.a".into(),
            name: Some("Alice Ó".into()),
        })
    }

    #[test]
    fn a_signed_identity_verifies_and_nothing_else_does() {
        let now = 1_700_000_000;
        for identity in [
            alice(),
            Identity::Admin,
            Identity::Customer(Customer {
                owner: "key:ab".into(),
                name: None,
            }),
        ] {
            let header = identity.sign(&key(1), now);
            assert!(header.is_ascii());
            assert_eq!(Identity::verify(&header, &key(1), now + 10), Some(identity));
            assert_eq!(Identity::verify(&header, &key(2), now), None, "other key");
            assert_eq!(Identity::verify(&header, &key(1), now + 301), None, "old");
        }
        let header = alice().sign(&key(1), now);
        let (text, tag) = header.rsplit_once('.').unwrap();
        let forged = text.replace(".customer.", ".admin.");
        assert_eq!(
            Identity::verify(&format!("{forged}.{tag}"), &key(1), now),
            None
        );
        for junk in ["", "v1", "v1.1.admin..", "....", "v1.x.admin...AAAA"] {
            assert_eq!(Identity::verify(junk, &key(1), now), None, "{junk:?}");
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(SigningKey::new(b"short").is_err());
        assert!(format!("{:?}", key(7)).contains('…'));
    }
}
