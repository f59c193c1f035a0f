//! Optional API-key authentication (SPEC section 6). Keys are configured as SHA-256
//! hashes, compared in constant time, and never logged. A client key stands for a
//! customer: the one it is bound to, or itself. Without keys (and without OIDC) the
//! gateway runs open and says so at start-up.

use axum::http::HeaderMap;
use contracts::identity::{Customer, Identity};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Client,
    Admin,
}

/// Who may make a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Anyone,
    Needs(Role),
}

/// One configured key: its role, the SHA-256 of its value, and the customer a client
/// key is bound to, if any.
#[derive(Clone)]
struct Key {
    role: Role,
    hash: [u8; 32],
    customer: Option<String>,
}

#[derive(Clone, Default)]
pub struct Keys {
    keys: Vec<Key>,
}

/// The longest customer name a client key may be bound to (the orders' `customer` limit).
const MAX_CUSTOMER: usize = 200;

impl Keys {
    /// Parses `role:sha256hex` entries separated by commas (roles `admin`, `client`); a
    /// client entry may bind its key to a customer: `client:sha256hex:customer`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (role, rest) = entry.split_once(':').ok_or_else(|| {
                "each API key entry must be role:sha256hex or client:sha256hex:customer".to_owned()
            })?;
            let role = match role.trim() {
                "admin" => Role::Admin,
                "client" => Role::Client,
                other => {
                    return Err(format!(
                        "unknown API key role '{other}' (expected admin or client)"
                    ))
                }
            };
            let (hash, customer) = match rest.split_once(':') {
                Some((hash, customer)) => (hash, Some(customer.trim())),
                None => (rest, None),
            };
            let hash = decode_hex(hash.trim())
                .ok_or_else(|| "an API key hash must be 64 hex characters (sha256)".to_owned())?;
            let customer = match customer {
                None => None,
                Some(_) if role == Role::Admin => {
                    return Err("an admin key cannot be bound to a customer".to_owned())
                }
                Some(name)
                    if name.is_empty()
                        || name.chars().count() > MAX_CUSTOMER
                        || name.chars().any(char::is_control) =>
                {
                    return Err(format!(
                        "the customer of a client key must have 1 to {MAX_CUSTOMER} characters"
                    ))
                }
                Some(name) => Some(name.to_owned()),
            };
            keys.push(Key {
                role,
                hash,
                customer,
            });
        }
        Ok(Self { keys })
    }

    pub fn is_enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The position of a presented key in the configuration, if it is one of ours. Every
    /// configured hash is compared, in constant time, so timing tells nothing about
    /// which matched.
    fn position(&self, presented: &str) -> Option<usize> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (index, key) in self.keys.iter().enumerate() {
            if bool::from(key.hash.ct_eq(&digest)) {
                found = Some(found.map_or(index, |f: usize| f.min(index)));
            }
        }
        found
    }

    /// Who a presented key is: an admin; the customer its client key is bound to; or,
    /// for an unbound client key, the key itself, named by a prefix of its hash (never
    /// by its value).
    pub fn identity_of(&self, presented: &str) -> Option<Identity> {
        let key = &self.keys[self.position(presented)?];
        Some(match (key.role, &key.customer) {
            (Role::Admin, _) => Identity::Admin,
            (Role::Client, Some(customer)) => Identity::Customer(Customer {
                owner: customer.clone(),
                name: Some(customer.clone()),
            }),
            (Role::Client, None) => Identity::Customer(Customer {
                owner: format!("key:{}", hex(&key.hash[..8])),
                name: None,
            }),
        })
    }

    /// Which configured key a request presents (its position in the configuration),
    /// if a valid one: the identity the per-key rate limit counts by.
    pub fn index_of(&self, headers: &HeaderMap) -> Option<usize> {
        self.position(presented_key(headers)?)
    }
}

/// The role an identity acts with.
pub fn role(identity: &Identity) -> Role {
    match identity {
        Identity::Admin => Role::Admin,
        Identity::Customer(_) => Role::Client,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The API key a request presents: `X-API-Key`, or the `Authorization: Bearer` credential.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key);
    }
    // The scheme's name is case-insensitive (RFC 9110 section 11.1).
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| credential.trim())
        .filter(|c| !c.is_empty())
}

fn decode_hex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(key: &str) -> String {
        hex(&Sha256::digest(key.as_bytes()))
    }

    #[test]
    fn keys_are_identities() {
        let keys = Keys::parse(&format!(
            "admin:{},client:{},client:{}: Ana Maria ",
            sha("adm"),
            sha("cli"),
            sha("ana")
        ))
        .unwrap();
        assert_eq!(keys.identity_of("adm"), Some(Identity::Admin));
        let Some(Identity::Customer(unbound)) = keys.identity_of("cli") else {
            panic!("a client key is a customer");
        };
        assert_eq!(unbound.owner, format!("key:{}", &sha("cli")[..16]));
        assert_eq!(unbound.name, None);
        assert_eq!(
            keys.identity_of("ana"),
            Some(Identity::Customer(Customer {
                owner: "Ana Maria".into(),
                name: Some("Ana Maria".into())
            }))
        );
        assert_eq!(keys.identity_of("nope"), None);
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "bearer ana".parse().unwrap());
        assert_eq!(keys.index_of(&headers), Some(2));
        headers.insert("authorization", "Basic ana".parse().unwrap());
        assert_eq!(keys.index_of(&headers), None);
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(Keys::parse("root:abc").is_err());
        assert!(Keys::parse("admin:xyz").is_err());
        assert!(Keys::parse(&format!("admin:{}:bob", sha("a"))).is_err());
        assert!(Keys::parse(&format!("client:{}:", sha("a"))).is_err());
        assert!(Keys::parse("").unwrap().is_empty());
    }
}
