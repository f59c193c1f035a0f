//! One service behind the gateway: where it is, the parts of its URL made once, its
//! `/health` probe, and the metrics of the calls made to it.

use std::time::Duration;

use axum::http::uri::{Authority, PathAndQuery, Scheme};
use axum::http::{HeaderValue, Uri};
use platform::client::ServiceClient;
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
    scheme: Scheme,
    authority: Authority,
    /// The path of the base URL (usually none), put before every forwarded path.
    prefix: String,
    /// The `Host` header of forwarded requests, made once.
    pub host: HeaderValue,
    /// For the `/health` probe.
    pub probe: ServiceClient,
}

impl Upstream {
    /// An upstream at `base` (`http://host:port`, optionally with a path prefix).
    pub fn new(backend: Backend, base: &str) -> Result<Self, String> {
        let name = backend.name();
        let base = base.trim_end_matches('/');
        let uri: Uri = base
            .parse()
            .map_err(|e| format!("{name}: invalid URL {base:?}: {e}"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(format!("{name}: URL {base:?} needs a scheme and a host"));
        };
        let prefix = uri.path().trim_end_matches('/').to_owned();
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|e| format!("{name}: URL {base:?}: {e}"))?;
        Ok(Self {
            backend,
            probe: ServiceClient::new(name, base, Duration::from_secs(2), 4),
            scheme,
            authority,
            prefix,
            host,
        })
    }

    /// The request's URI pointed at this upstream: its path and query are reused as
    /// they are (not parsed again), behind the upstream's path prefix if it has one.
    pub fn uri(&self, uri: Uri) -> Result<Uri, ApiError> {
        let invalid =
            || ApiError::bad_request("invalid_path", "the request path cannot be forwarded");
        let mut uri = uri.into_parts();
        uri.scheme = Some(self.scheme.clone());
        uri.authority = Some(self.authority.clone());
        if !self.prefix.is_empty() {
            let path_and_query = uri.path_and_query.as_ref().map_or("/", |p| p.as_str());
            let prefixed = format!("{}{path_and_query}", self.prefix);
            uri.path_and_query = Some(PathAndQuery::try_from(prefixed).map_err(|_| invalid())?);
        } else if uri.path_and_query.is_none() {
            uri.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        Uri::from_parts(uri).map_err(|_| invalid())
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
        let uri = plain.uri("/items/7?page=2".parse().unwrap()).unwrap();
        assert_eq!(uri.to_string(), "http://inventory:5003/items/7?page=2");
        assert_eq!(plain.host, "inventory:5003");

        let prefixed = Upstream::new(Backend::Estoque, "http://lb:80/estoque/").unwrap();
        let uri = prefixed.uri("/items?limit=5".parse().unwrap()).unwrap();
        assert_eq!(uri.to_string(), "http://lb:80/estoque/items?limit=5");
    }

    #[test]
    fn upstream_urls_need_scheme_and_host() {
        assert!(Upstream::new(Backend::Estoque, "inventory:5003").is_err());
        assert!(Upstream::new(Backend::Estoque, "/items").is_err());
        assert!(Upstream::new(Backend::Estoque, "http://in valid").is_err());
    }
}
