//! Optional API-key authentication (SPEC section 6). Keys are configured as SHA-256
//! hashes, compared in constant time, and never logged. Without keys the gateway
//! runs open and says so at start-up.

use axum::http::{HeaderMap, StatusCode};
use platform::ApiError;
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

#[derive(Clone, Default)]
pub struct Keys {
    keys: Vec<(Role, [u8; 32])>,
}

impl Keys {
    /// Parses `role:sha256hex,role:sha256hex` (roles `admin`, `client`).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut keys = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (role, hash) = entry
                .split_once(':')
                .ok_or_else(|| "each API key entry must be role:sha256hex".to_owned())?;
            let role = match role.trim() {
                "admin" => Role::Admin,
                "client" => Role::Client,
                other => {
                    return Err(format!(
                        "unknown API key role '{other}' (expected admin or client)"
                    ))
                }
            };
            let hash = decode_hex(hash.trim())
                .ok_or_else(|| "an API key hash must be 64 hex characters (sha256)".to_owned())?;
            keys.push((role, hash));
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

    /// The role of a presented key, if it is one of ours. Every configured hash is
    /// compared, in constant time, so timing tells nothing about which matched.
    fn role_of(&self, presented: &str) -> Option<Role> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (role, hash) in &self.keys {
            if bool::from(hash.ct_eq(&digest)) {
                found = found.max(Some(*role));
            }
        }
        found
    }

    /// Which configured key a request presents (its position in the configuration),
    /// if a valid one: the identity the per-key rate limit counts by.
    pub fn index_of(&self, headers: &HeaderMap) -> Option<usize> {
        let digest: [u8; 32] = Sha256::digest(presented_key(headers)?.as_bytes()).into();
        let mut found = None;
        for (index, (_, hash)) in self.keys.iter().enumerate() {
            if bool::from(hash.ct_eq(&digest)) {
                found = Some(index);
            }
        }
        found
    }

    /// Checks a request against the access rule of its call.
    pub fn check(&self, access: Access, headers: &HeaderMap) -> Result<(), ApiError> {
        let Access::Needs(needed) = access else {
            return Ok(());
        };
        if !self.is_enabled() {
            return Ok(());
        }
        let presented = presented_key(headers).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an API key is required (X-API-Key or Authorization: Bearer)",
            )
        })?;
        match self.role_of(presented) {
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "invalid API key",
            )),
            Some(role) if role >= needed => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this call needs an admin API key",
            )),
        }
    }
}

fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key);
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
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

    fn hex(key: &str) -> String {
        Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn headers(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", key.parse().unwrap());
        h
    }

    #[test]
    fn roles_are_enforced() {
        let keys = Keys::parse(&format!("admin:{},client:{}", hex("adm"), hex("cli"))).unwrap();
        let admin = Access::Needs(Role::Admin);
        assert!(keys.check(admin, &headers("adm")).is_ok());
        assert_eq!(
            keys.check(admin, &headers("cli")).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            keys.check(admin, &headers("nope")).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            keys.check(admin, &HeaderMap::new()).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        assert!(keys
            .check(Access::Needs(Role::Client), &headers("cli"))
            .is_ok());
        assert!(keys.check(Access::Anyone, &HeaderMap::new()).is_ok());
    }

    #[test]
    fn bad_configuration_is_refused() {
        assert!(Keys::parse("root:abc").is_err());
        assert!(Keys::parse("admin:xyz").is_err());
        assert!(Keys::parse("").unwrap().is_empty());
    }
}
