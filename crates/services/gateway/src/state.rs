//! What every request through the gateway shares.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;

use crate::identity::Authenticator;
use crate::routes::Backend;
use crate::upstream::{Upstream, UpstreamMetrics};

pub struct Gateway {
    /// One per [`Backend`], in the order of [`Backend::ALL`].
    pub upstreams: [Upstream; 3],
    pub client: Client<HttpConnector, Body>,
    /// The wait for an upstream's response headers.
    pub upstream_timeout: Duration,
    pub body_limit: usize,
    /// Who callers are: API keys, bearer tokens, and the identity header it signs.
    pub auth: Authenticator,
    pub metrics: UpstreamMetrics,
    /// The OpenAPI document, serialised once.
    pub openapi: Bytes,
}

impl Gateway {
    pub fn upstream(&self, backend: Backend) -> &Upstream {
        match backend {
            Backend::Pedidos => &self.upstreams[0],
            Backend::Pagamentos => &self.upstreams[1],
            Backend::Estoque => &self.upstreams[2],
        }
    }
}
