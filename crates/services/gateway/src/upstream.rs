//! One service behind the gateway: its replicas, its `/health` probe, and the metrics
//! of the calls made to it.

use std::time::Duration;

use axum::http::uri::PathAndQuery;
use axum::http::Uri;
use platform::balance::{Balancing, Endpoint, Endpoints};
use platform::client::{Retry, ServiceClient};
use platform::metrics::{latency_histogram, MetricsBuilder};
use platform::ApiError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::routes::Backend;

#[derive(Clone)]
pub struct Upstream {
    pub backend: Backend,
    /// Its replicas: the endpoints of its URL list, balanced and passively checked.
    pub endpoints: Endpoints,
    /// For the `/health` probe and the fault switches (calls of the gateway's own).
    pub probe: ServiceClient,
}

impl Upstream {
    /// An upstream at `urls`: `http://host:port` (optionally with a path prefix), or
    /// several such URLs separated by commas.
    pub fn new(backend: Backend, urls: &str) -> Result<Self, String> {
        let endpoints = Endpoints::parse(backend.name(), urls, Balancing::default())?;
        Ok(Self {
            backend,
            probe: ServiceClient::new(endpoints.clone(), Duration::from_secs(2), 4, Retry::Unsent),
            endpoints,
        })
    }

    /// The request's URI pointed at `endpoint`: its path and query are reused as they
    /// are (not parsed again), behind the upstream's path prefix if it has one.
    pub fn uri(&self, uri: &Uri, endpoint: &Endpoint) -> Result<Uri, ApiError> {
        let invalid =
            || ApiError::bad_request("invalid_path", "the request path cannot be forwarded");
        let mut parts = axum::http::uri::Parts::default();
        parts.scheme = Some(self.endpoints.scheme().clone());
        parts.authority = Some(endpoint.authority.clone());
        let path_and_query = uri.path_and_query();
        let prefix = self.endpoints.prefix();
        parts.path_and_query = Some(if !prefix.is_empty() {
            let rest = path_and_query.map_or("/", |p| p.as_str());
            PathAndQuery::try_from(format!("{prefix}{rest}")).map_err(|_| invalid())?
        } else {
            path_and_query
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/"))
        });
        Uri::from_parts(parts).map_err(|_| invalid())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamErrorLabels {
    upstream: &'static str,
    kind: &'static str,
}

/// How a call to an upstream failed, as the `kind` label counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Unavailable,
    Timeout,
    BadGateway,
}

impl Failure {
    fn as_str(self) -> &'static str {
        match self {
            Failure::Unavailable => "unavailable",
            Failure::Timeout => "timeout",
            Failure::BadGateway => "bad_gateway",
        }
    }
}

#[derive(Clone)]
pub struct UpstreamMetrics {
    duration: Family<UpstreamLabel, Histogram>,
    errors: Family<UpstreamErrorLabels, Counter>,
}

impl UpstreamMetrics {
    pub fn register(builder: &mut MetricsBuilder) -> Self {
        let metrics = Self {
            duration: Family::new_with_constructor(latency_histogram),
            errors: Family::default(),
        };
        builder.registry().register(
            "gateway_upstream_request_duration_seconds",
            "Time to the upstream's response headers, by upstream",
            metrics.duration.clone(),
        );
        builder.registry().register(
            "gateway_upstream_errors",
            "Upstream calls that failed, by upstream and kind (unavailable, timeout, bad_gateway)",
            metrics.errors.clone(),
        );
        metrics
    }

    pub fn observe(&self, backend: Backend, elapsed: Duration) {
        self.duration
            .get_or_create(&UpstreamLabel {
                upstream: backend.label(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn error(&self, backend: Backend, failure: Failure) {
        self.errors
            .get_or_create(&UpstreamErrorLabels {
                upstream: backend.label(),
                kind: failure.as_str(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_uris_keep_path_and_query() {
        let plain = Upstream::new(Backend::Estoque, "http://inventory:5003/").unwrap();
        let endpoint = plain.endpoints.pick(&[]).unwrap();
        let uri = plain
            .uri(&"/items/7?page=2".parse().unwrap(), &endpoint)
            .unwrap();
        assert_eq!(uri.to_string(), "http://inventory:5003/items/7?page=2");
        assert_eq!(plain.endpoints.host_header(&endpoint), "inventory:5003");

        let prefixed = Upstream::new(Backend::Estoque, "http://lb:80/estoque/").unwrap();
        let endpoint = prefixed.endpoints.pick(&[]).unwrap();
        let uri = prefixed
            .uri(&"/items?limit=5".parse().unwrap(), &endpoint)
            .unwrap();
        assert_eq!(uri.to_string(), "http://lb:80/estoque/items?limit=5");
    }

    #[test]
    fn upstream_urls_need_scheme_and_host() {
        assert!(Upstream::new(Backend::Estoque, "inventory:5003").is_err());
        assert!(Upstream::new(Backend::Estoque, "/items").is_err());
        assert!(Upstream::new(Backend::Estoque, "http://in valid").is_err());
    }
}
