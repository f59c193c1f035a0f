//! Rate limiting at the gateway: a token bucket per client address and one per API
//! key. A request over either limit is a 429 `rate_limited` with `Retry-After`.
//!
//! Each bucket holds up to `burst` tokens and refills at `rate` tokens a second; a
//! request takes one. Buckets live in memory (one gateway replica's view: with N
//! replicas behind a load balancer a client gets up to N times the rate). The table
//! is bounded: when it grows past `MAX_BUCKETS`, full buckets (idle clients) are
//! dropped, and if that is not enough the oldest are.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use platform::ApiError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::auth::Keys;

/// Most clients tracked at once per limiter.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A token-bucket limiter keyed by `K`. `rate` 0 disables it.
pub struct Limiter<K> {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate_per_s: f64, burst: f64) -> Self {
        Self {
            rate: rate_per_s.max(0.0),
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes a token for `key` at `now`: `Ok` if there was one, else how long until there is.
    pub fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if !self.is_enabled() {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            self.prune(&mut buckets, now);
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }

    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    fn prune(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let refill = Duration::from_secs_f64(self.burst / self.rate);
        buckets.retain(|_, b| now.saturating_duration_since(b.last) < refill);
        if buckets.len() >= MAX_BUCKETS {
            // Everyone is active: forget the least recently seen half.
            let mut lasts: Vec<Instant> = buckets.values().map(|b| b.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            buckets.retain(|_, b| b.last > cut);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.lock().unwrap().len()
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    limit: &'static str,
}

/// The gateway's two limiters and the key table used to tell whose key a request carries.
#[derive(Clone)]
pub struct RateLimits {
    per_address: Arc<Limiter<IpAddr>>,
    per_key: Arc<Limiter<usize>>,
    keys: Arc<Keys>,
    limited: Family<LimitLabel, Counter>,
}

impl RateLimits {
    /// `per_address` and `per_key` in requests a second (0 = off); a bucket holds
    /// `burst_seconds` of its rate (at least one request).
    pub fn new(per_address: f64, per_key: f64, burst_seconds: f64, keys: Arc<Keys>) -> Self {
        let burst = |rate: f64| (rate * burst_seconds).max(1.0);
        Self {
            per_address: Arc::new(Limiter::new(per_address, burst(per_address))),
            per_key: Arc::new(Limiter::new(per_key, burst(per_key))),
            keys,
            limited: Family::default(),
        }
    }

    /// Requests refused with 429, by limit (`address`, `key`), for the metrics registry.
    pub fn counter(&self) -> Family<LimitLabel, Counter> {
        self.limited.clone()
    }

    fn refuse(&self, limit: &'static str, wait: Duration) -> Response {
        self.limited.get_or_create(&LimitLabel { limit }).inc();
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u32;
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests: retry in {seconds} s"),
        )
        .with("limit", limit)
        .retry_after(seconds)
        .into_response()
    }
}

/// Middleware: the per-address limit for every request, then the per-key limit for
/// requests that carry a valid API key (an invalid key counts against the address only,
/// so guessing keys is throttled too). The key itself never leaves this function.
pub async fn limit(
    State(limits): State<RateLimits>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    if let Err(wait) = limits.per_address.check(&peer.ip()) {
        return limits.refuse("address", wait);
    }
    if limits.per_key.is_enabled() {
        if let Some(index) = limits.keys.index_of(req.headers()) {
            if let Err(wait) = limits.per_key.check(&index) {
                return limits.refuse("key", wait);
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let limiter = Limiter::new(10.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(&1, t0).is_ok());
        }
        let wait = limiter.check_at(&1, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(limiter.check_at(&2, t0).is_ok(), "buckets are per key");
        assert!(limiter
            .check_at(&1, t0 + Duration::from_millis(100))
            .is_ok());
        assert!(limiter
            .check_at(&1, t0 + Duration::from_millis(100))
            .is_err());
        // Long idle: back to a full burst, never more.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(limiter.check_at(&1, later).is_ok());
        }
        assert!(limiter.check_at(&1, later).is_err());
    }

    #[test]
    fn rate_zero_disables() {
        let limiter = Limiter::new(0.0, 0.0);
        let t0 = Instant::now();
        for _ in 0..1000 {
            assert!(limiter.check_at(&1, t0).is_ok());
        }
        assert_eq!(limiter.len(), 0);
    }

    #[test]
    fn the_table_is_bounded() {
        let limiter = Limiter::new(1.0, 1.0);
        let t0 = Instant::now();
        for i in 0..(MAX_BUCKETS + 10) {
            let _ = limiter.check_at(&i, t0 + Duration::from_micros(i as u64));
        }
        assert!(limiter.len() <= MAX_BUCKETS);
    }
}
