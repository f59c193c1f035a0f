//! api-gateway: the platform's only public entry point. A streaming reverse proxy
//! to the three services, with the seed's `GET /` and aggregated `GET /health`, the
//! platform's OpenAPI document, optional API keys, and JSON errors naming the
//! service when an upstream is down (503), too slow (504) or broken (502).
//!
//! What the gateway knows about each public path (its upstream, who may call it, its
//! metric label) is in one table, [`routes::ROUTES`].

pub mod auth;
pub mod console;
pub mod faults;
pub mod health;
pub mod identity;
pub mod me;
pub mod oidc;
pub mod openapi;
pub mod proxy;
pub mod ratelimit;
pub mod routes;
pub mod settings;
pub mod state;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{any, get};
use axum::Router;
use bytes::Bytes;
use platform::metrics::MetricsBuilder;
use platform::names;
use platform::server::Component;

use routes::{Backend, ROUTES};
pub use settings::{Settings, Upstreams};
use state::Gateway;
use upstream::{Upstream, UpstreamMetrics};

/// Idle keep-alive connections kept to each upstream.
const MAX_IDLE_CONNECTIONS: usize = 256;

/// Builds the gateway. `api` is the public OpenAPI document of the services; the
/// gateway adds its own endpoints to it. With `faults_enabled`, it also serves every
/// component's `/admin/faults` behind the admin key.
pub fn build(
    settings: &Settings,
    upstreams: &Upstreams,
    api: utoipa::openapi::OpenApi,
    faults_enabled: bool,
) -> Result<Component, String> {
    let keys = match &settings.api_keys {
        Some(spec) => auth::Keys::parse(spec)?,
        None => auth::Keys::default(),
    };
    if !(settings.rate_limit_per_address >= 0.0
        && settings.rate_limit_per_key >= 0.0
        && settings.rate_limit_burst_seconds >= 0.0)
    {
        return Err("rate limits must be numbers >= 0".to_owned());
    }
    let oidc = oidc::Verifier::from_settings(&settings.oidc)?;
    if keys.is_enabled() {
        tracing::info!(keys = keys.len(), "API key authentication enabled");
    }
    if let Some(oidc) = &oidc {
        tracing::info!(
            issuer = oidc.issuer(),
            "OpenID Connect bearer tokens accepted"
        );
    }
    if !keys.is_enabled() && oidc.is_none() {
        tracing::warn!(
            "neither API_KEYS nor OIDC_ISSUER is set: the gateway is OPEN, every call is allowed without credentials"
        );
    }
    let mut metrics = MetricsBuilder::new(names::GATEWAY);
    let upstream_metrics = UpstreamMetrics::register(&mut metrics);
    let keys = Arc::new(keys);
    let limits = ratelimit::RateLimits::new(
        settings.rate_limit_per_address,
        settings.rate_limit_per_key,
        settings.rate_limit_burst_seconds,
        keys.clone(),
    );
    metrics.registry().register(
        "gateway_rate_limited",
        "Requests refused with 429, by limit (address, key)",
        limits.counter(),
    );
    tracing::info!(
        per_address = settings.rate_limit_per_address,
        per_key = settings.rate_limit_per_key,
        "rate limits (requests a second, 0 = off)"
    );
    let workers = platform::worker::Workers::new();
    if let Some(oidc) = &oidc {
        let jwks = oidc.jwks.clone();
        workers.every("jwks_refresh", oidc.refresh_every, move || {
            let jwks = jwks.clone();
            async move {
                match jwks.refresh().await {
                    Ok(keys) => tracing::debug!(keys, "JWKS refreshed"),
                    Err(err) => tracing::warn!(error = %err, "JWKS refresh failed"),
                }
            }
        });
    }
    let auth = identity::Authenticator::new(keys, oidc, settings.identity_secret.clone())?;
    let document = openapi::document(api, auth.is_enabled())?;
    let url = |backend| match backend {
        Backend::Pedidos => &upstreams.pedidos_service_url,
        Backend::Pagamentos => &upstreams.pagamentos_service_url,
        Backend::Estoque => &upstreams.estoque_service_url,
    };
    let [pedidos, pagamentos, estoque] = Backend::ALL;
    // Shared, not cloned per request: the state holds a dozen reference counts.
    let gateway = Arc::new(Gateway {
        upstreams: [
            Upstream::new(pedidos, url(pedidos))?,
            Upstream::new(pagamentos, url(pagamentos))?,
            Upstream::new(estoque, url(estoque))?,
        ],
        client: platform::client::pooled(MAX_IDLE_CONNECTIONS)
            .build(platform::client::connector(Duration::from_secs(1))),
        upstream_timeout: Duration::from_millis(settings.upstream_timeout_ms),
        body_limit: settings.body_limit_bytes,
        auth,
        metrics: upstream_metrics,
        openapi: Bytes::from(document),
    });
    let mut public = Router::new()
        .route("/", get(health::root))
        .route("/openapi.json", get(openapi::serve))
        .route("/me", get(me::me))
        .route("/console", get(console::index))
        .route("/console/", get(console::index))
        .route("/console/app.js", get(console::script))
        .route("/console/app.css", get(console::style));
    for route in &ROUTES {
        let proxy = any(move |state, peer, req| proxy::proxy(route, state, peer, req));
        public = public
            .route(route.prefix, proxy.clone())
            .route(&format!("{}/{{*rest}}", route.prefix), proxy);
    }
    let mut public = public.with_state(gateway.clone());
    if faults_enabled {
        tracing::warn!("FAULTS_ENABLED: /admin/faults switches faults on in every component");
        public = public.merge(faults::routes(gateway.clone()));
    }
    let public = public.layer(axum::middleware::from_fn_with_state(
        limits.clone(),
        ratelimit::limit,
    ));
    let mut component = Component::new(names::GATEWAY, public, None, metrics).with_workers(workers);
    // `/health` calls every backend: limited like the public calls. Probes and
    // `/metrics` are not (they come from the orchestrator and Prometheus).
    component.health = Some(
        Router::new()
            .route("/health", get(health::health))
            .with_state(gateway)
            .layer(axum::middleware::from_fn_with_state(
                limits,
                ratelimit::limit,
            )),
    );
    component.body_limit = settings.body_limit_bytes;
    component.read_whole_body = false;
    component.limits = settings.limits();
    Ok(component)
}
