//! Several replicas behind one service: the endpoints of a list of URLs, each host
//! name re-resolved to every address it has (what `docker compose up --scale` and a
//! Kubernetes headless Service give), round-robin over those not taken out, and
//! passive health: an endpoint that refused a connection, answered 503 or did not
//! answer in time is left out for a while.
//!
//! Resolution is lazy: the first pick after `refresh_every` starts one lookup in the
//! background and goes on with the endpoints it has; a lookup that fails keeps the
//! last good addresses, so a DNS hiccup never empties the list.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::http::uri::{Authority, Scheme};
use axum::http::{HeaderValue, Uri};

/// How endpoints are taken out and found again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balancing {
    /// How long an endpoint that failed is left out.
    pub eject_for: Duration,
    /// How often host names are resolved again.
    pub refresh_every: Duration,
}

impl Default for Balancing {
    fn default() -> Self {
        Self {
            eject_for: Duration::from_secs(5),
            refresh_every: Duration::from_secs(5),
        }
    }
}

/// One URL of the list: where to look its addresses up, and its `Host` header.
#[derive(Debug)]
struct Target {
    host: String,
    port: u16,
    /// An IP address in the URL: nothing to resolve.
    literal: bool,
    host_header: HeaderValue,
}

/// One address of one replica.
#[derive(Debug)]
pub struct Endpoint {
    pub authority: Authority,
    target: usize,
    /// Milliseconds since the set's start until which the endpoint is left out.
    ejected_until: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    service: &'static str,
    scheme: Scheme,
    prefix: String,
    targets: Vec<Target>,
    current: RwLock<Arc<[Arc<Endpoint>]>>,
    next: AtomicUsize,
    balancing: Balancing,
    started: Instant,
    /// Milliseconds since `started` of the last lookup; `u64::MAX` = never.
    resolved_at: AtomicU64,
    resolving: AtomicBool,
}

/// The endpoints of one service; cheap to clone (one shared set).
#[derive(Clone, Debug)]
pub struct Endpoints {
    inner: Arc<Inner>,
}

impl Endpoints {
    /// The endpoints of `urls`: one URL (`http://host:port`, optionally with a path) or
    /// several separated by commas, all with the same scheme and path.
    pub fn parse(service: &'static str, urls: &str, balancing: Balancing) -> Result<Self, String> {
        let mut targets = Vec::new();
        let mut shape: Option<(Scheme, String)> = None;
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let url = url.trim_end_matches('/');
            let uri: Uri = url
                .parse()
                .map_err(|e| format!("{service}: invalid URL {url:?}: {e}"))?;
            let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority()) else {
                return Err(format!("{service}: URL {url:?} needs a scheme and a host"));
            };
            let port = authority.port_u16().unwrap_or(match scheme.as_str() {
                "https" => 443,
                _ => 80,
            });
            let host = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let prefix = uri.path().trim_end_matches('/').to_owned();
            match &shape {
                None => shape = Some((scheme, prefix)),
                Some(first) if *first == (scheme.clone(), prefix.clone()) => {}
                Some(_) => {
                    return Err(format!(
                        "{service}: the URLs of one service need the same scheme and path ({url:?})"
                    ))
                }
            }
            targets.push(Target {
                host: host.to_owned(),
                port,
                literal: host.parse::<std::net::IpAddr>().is_ok(),
                host_header: HeaderValue::from_str(authority.as_str())
                    .map_err(|e| format!("{service}: URL {url:?}: {e}"))?,
            });
        }
        let Some((scheme, prefix)) = shape else {
            return Err(format!("{service}: no URL given"));
        };
        // Until the first lookup, each URL is its own endpoint (the connector resolves it).
        let first: Vec<Arc<Endpoint>> = targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let authority = t.host_header.to_str().ok()?.parse().ok()?;
                Some(Arc::new(Endpoint::new(authority, i)))
            })
            .collect();
        let needs_lookup = targets.iter().any(|t| !t.literal);
        Ok(Self {
            inner: Arc::new(Inner {
                service,
                scheme,
                prefix,
                targets,
                current: RwLock::new(first.into()),
                next: AtomicUsize::new(0),
                balancing,
                started: Instant::now(),
                resolved_at: AtomicU64::new(if needs_lookup { u64::MAX } else { 0 }),
                resolving: AtomicBool::new(false),
            }),
        })
    }

    pub fn service(&self) -> &'static str {
        self.inner.service
    }

    pub fn scheme(&self) -> &Scheme {
        &self.inner.scheme
    }

    /// The path of the URLs (usually none), put before every path called.
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// The `Host` header for a call to `endpoint`: the name in its URL, not its address.
    pub fn host_header(&self, endpoint: &Endpoint) -> HeaderValue {
        self.inner.targets[endpoint.target].host_header.clone()
    }

    /// Every endpoint known now.
    pub fn all(&self) -> Arc<[Arc<Endpoint>]> {
        self.refresh_if_due();
        self.current()
    }

    /// The next endpoint to call, skipping those in `tried`: one that is not taken out
    /// if there is one, else one that is (a guess beats a refusal), else none.
    pub fn pick(&self, tried: &[Arc<Endpoint>]) -> Option<Arc<Endpoint>> {
        self.refresh_if_due();
        let all = self.current();
        let n = all.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let fresh = |e: &Arc<Endpoint>| !tried.iter().any(|t| Arc::ptr_eq(t, e));
        let mut fallback = None;
        for i in 0..n {
            let endpoint = &all[(start + i) % n];
            if !fresh(endpoint) {
                continue;
            }
            if endpoint.ejected_until.load(Ordering::Relaxed) <= now {
                return Some(endpoint.clone());
            }
            fallback.get_or_insert_with(|| endpoint.clone());
        }
        fallback
    }

    /// Leaves `endpoint` out for [`Balancing::eject_for`].
    pub fn eject(&self, endpoint: &Endpoint) {
        let until = self.now_ms() + self.inner.balancing.eject_for.as_millis() as u64;
        if endpoint.ejected_until.swap(until, Ordering::Relaxed) <= self.now_ms() {
            tracing::info!(
                service = self.inner.service,
                endpoint = %endpoint.authority,
                eject_ms = self.inner.balancing.eject_for.as_millis() as u64,
                "endpoint taken out"
            );
        }
    }

    /// Whether `endpoint` is taken out now.
    pub fn is_ejected(&self, endpoint: &Endpoint) -> bool {
        endpoint.ejected_until.load(Ordering::Relaxed) > self.now_ms()
    }

    /// Looks every host name up again now.
    pub async fn refresh(&self) {
        let inner = &self.inner;
        let old = self.current();
        let mut fresh: Vec<Arc<Endpoint>> = Vec::new();
        for (i, target) in inner.targets.iter().enumerate() {
            let kept = || old.iter().filter(|e| e.target == i).cloned();
            if target.literal {
                fresh.extend(kept());
                continue;
            }
            match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
                Ok(addresses) => {
                    let before = fresh.len();
                    for address in addresses {
                        let Some(authority) = authority_of(address) else {
                            continue;
                        };
                        if fresh.iter().any(|e| e.authority == authority) {
                            continue;
                        }
                        // An address seen before keeps its state (taken out or not).
                        let endpoint = old
                            .iter()
                            .find(|e| e.authority == authority)
                            .cloned()
                            .unwrap_or_else(|| Arc::new(Endpoint::new(authority, i)));
                        fresh.push(endpoint);
                    }
                    if fresh.len() == before {
                        fresh.extend(kept());
                    }
                }
                Err(err) => {
                    tracing::warn!(service = inner.service, host = %target.host, error = %err,
                        "lookup failed: keeping the last addresses");
                    fresh.extend(kept());
                }
            }
        }
        if fresh.len() != old.len()
            || fresh
                .iter()
                .zip(old.iter())
                .any(|(a, b)| !Arc::ptr_eq(a, b))
        {
            tracing::info!(
                service = inner.service,
                endpoints = fresh.len(),
                "endpoints changed"
            );
        }
        if let Ok(mut current) = inner.current.write() {
            *current = fresh.into();
        }
        inner.resolved_at.store(self.now_ms(), Ordering::Relaxed);
    }

    fn refresh_if_due(&self) {
        let inner = &self.inner;
        let at = inner.resolved_at.load(Ordering::Relaxed);
        let due = at == u64::MAX
            || self.now_ms().saturating_sub(at) >= inner.balancing.refresh_every.as_millis() as u64;
        if !due || inner.resolving.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            inner.resolving.store(false, Ordering::Release);
            return;
        };
        let this = self.clone();
        // A lookup is short and touches no pool: it need not hold up a shutdown.
        runtime.spawn(async move {
            this.refresh().await;
            this.inner.resolving.store(false, Ordering::Release);
        });
    }

    fn current(&self) -> Arc<[Arc<Endpoint>]> {
        match self.inner.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.inner.started.elapsed().as_millis() as u64
    }
}

impl Endpoint {
    fn new(authority: Authority, target: usize) -> Self {
        Self {
            authority,
            target,
            ejected_until: AtomicU64::new(0),
        }
    }
}

fn authority_of(address: SocketAddr) -> Option<Authority> {
    address.to_string().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(urls: &str) -> Endpoints {
        Endpoints::parse("estoque-service", urls, Balancing::default()).unwrap()
    }

    fn names(picks: impl IntoIterator<Item = Arc<Endpoint>>) -> Vec<String> {
        picks.into_iter().map(|e| e.authority.to_string()).collect()
    }

    #[test]
    fn a_list_of_urls_is_balanced_round_robin() {
        let endpoints = set("http://127.0.0.1:1, http://127.0.0.1:2,http://127.0.0.1:3/");
        let picks: Vec<_> = (0..6).filter_map(|_| endpoints.pick(&[])).collect();
        let mut seen = names(picks);
        assert_eq!(seen[..3], seen[3..]);
        seen.truncate(3);
        seen.sort();
        assert_eq!(seen, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]);
    }

    #[test]
    fn an_ejected_endpoint_is_skipped_until_every_other_is_tried() {
        let endpoints = set("http://127.0.0.1:1,http://127.0.0.1:2");
        let all = endpoints.all();
        endpoints.eject(&all[0]);
        assert!(endpoints.is_ejected(&all[0]));
        for _ in 0..4 {
            assert_eq!(endpoints.pick(&[]).unwrap().authority, all[1].authority);
        }
        // Every other one tried: the ejected one is still better than nothing.
        let last = endpoints.pick(&[all[1].clone()]).unwrap();
        assert_eq!(last.authority, all[0].authority);
        assert!(endpoints.pick(&[all[0].clone(), all[1].clone()]).is_none());
    }

    #[test]
    fn ejection_ends_after_its_time() {
        let endpoints = Endpoints::parse(
            "estoque-service",
            "http://127.0.0.1:1,http://127.0.0.1:2",
            Balancing {
                eject_for: Duration::ZERO,
                ..Balancing::default()
            },
        )
        .unwrap();
        let all = endpoints.all();
        endpoints.eject(&all[0]);
        assert!(!endpoints.is_ejected(&all[0]));
    }

    #[test]
    fn urls_keep_their_name_in_the_host_header_and_share_a_path() {
        let endpoints = set("http://lb:80/estoque/");
        let one = endpoints.pick(&[]).unwrap();
        assert_eq!(endpoints.host_header(&one), "lb:80");
        assert_eq!(endpoints.prefix(), "/estoque");
        assert!(Endpoints::parse("x", "http://a:1/p,http://b:1/q", Balancing::default()).is_err());
        assert!(Endpoints::parse("x", "http://a:1,https://b:1", Balancing::default()).is_err());
        for bad in ["", " , ", "inventory:5003", "/items", "http://in valid"] {
            assert!(
                Endpoints::parse("x", bad, Balancing::default()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_host_name_becomes_every_address_it_has() {
        let endpoints = set("http://localhost:5003");
        endpoints.refresh().await;
        let all = names(endpoints.all().iter().cloned());
        assert!(all.contains(&"127.0.0.1:5003".to_owned()), "{all:?}");
        assert_eq!(endpoints.host_header(&endpoints.all()[0]), "localhost:5003");
    }

    #[tokio::test]
    async fn a_failed_lookup_keeps_the_last_addresses() {
        let endpoints = set("http://no-such-host.invalid:5003");
        endpoints.refresh().await;
        assert_eq!(
            names(endpoints.all().iter().cloned()),
            ["no-such-host.invalid:5003"]
        );
    }
}
