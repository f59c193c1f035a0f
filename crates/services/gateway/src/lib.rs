//! api-gateway: the platform's only public entry point. A streaming reverse proxy
//! to the three services, with the seed's `GET /` and aggregated `GET /health`, the
//! platform's OpenAPI document, optional API keys, and JSON errors naming the
//! service when an upstream is down (503), too slow (504) or broken (502).

pub mod auth;
pub mod proxy;
pub mod ratelimit;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::uri::{Authority, Scheme};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use bytes::Bytes;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use platform::client::ServiceClient;
use platform::metrics::{latency_histogram, MetricsBuilder};
use platform::names;
use platform::server::{Component, Limits, DEFAULT_BODY_LIMIT};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use serde_json::json;

/// Where the three services are (set by the binary in all-in-one mode).
#[derive(Debug, Clone, clap::Args)]
#[group(id = "gateway_settings_upstreams")]
pub struct Upstreams {
    /// Base URL of pedidos-service (orders).
    #[arg(
        long,
        env = "PEDIDOS_SERVICE_URL",
        default_value = "http://localhost:5001"
    )]
    pub pedidos_service_url: String,
    /// Base URL of pagamentos-service (payments).
    #[arg(
        long,
        env = "PAGAMENTOS_SERVICE_URL",
        default_value = "http://localhost:5002"
    )]
    pub pagamentos_service_url: String,
    /// Base URL of estoque-service (inventory).
    #[arg(
        long,
        env = "ESTOQUE_SERVICE_URL",
        default_value = "http://localhost:5003"
    )]
    pub estoque_service_url: String,
}

#[derive(Debug, Clone, clap::Args)]
#[group(id = "gateway_settings")]
#[command(next_help_heading = "Gateway (api-gateway)")]
pub struct Settings {
    /// How long the gateway waits for an upstream's response headers, in milliseconds.
    /// Keep it above ORDER_LEASE_MS so an order is never cut off while its saga runs.
    #[arg(long, env = "UPSTREAM_TIMEOUT_MS", default_value_t = 30000)]
    pub upstream_timeout_ms: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "BODY_LIMIT_BYTES", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit_bytes: usize,
    /// API keys as `role:sha256hex` entries separated by commas (roles: admin, client).
    /// Unset: the gateway runs open. Make a hash with `printf %s "$KEY" | sha256sum`.
    #[arg(long, env = "API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    /// Requests a second each client address may make (a token bucket; 0 = no limit).
    /// Over it: 429 with Retry-After. Behind a load balancer every client shares its address.
    #[arg(long, env = "RATE_LIMIT_PER_ADDRESS", default_value_t = 1000.0)]
    pub rate_limit_per_address: f64,
    /// Requests a second each API key may make (0 = no limit); counted on top of the address limit.
    #[arg(long, env = "RATE_LIMIT_PER_KEY", default_value_t = 200.0)]
    pub rate_limit_per_key: f64,
    /// Burst allowed above the rates, in seconds of the rate (2 = twice the rate at once).
    #[arg(long, env = "RATE_LIMIT_BURST_SECONDS", default_value_t = 2.0)]
    pub rate_limit_burst_seconds: f64,
    /// Client connections served at once (0 = no limit); more wait to be accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Time a client has to send its request headers, and longest idle keep-alive, in
    /// milliseconds (0 = no limit): slow clients are disconnected.
    #[arg(long, env = "HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Largest request line plus headers, in bytes (at least 1024): 431 above it.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,
}

impl Default for Settings {
    /// The command line's defaults.
    fn default() -> Self {
        Self {
            upstream_timeout_ms: 30_000,
            body_limit_bytes: DEFAULT_BODY_LIMIT,
            api_keys: None,
            rate_limit_per_address: 1000.0,
            rate_limit_per_key: 200.0,
            rate_limit_burst_seconds: 2.0,
            max_connections: 4096,
            header_read_timeout_ms: 10_000,
            max_header_bytes: 16 * 1024,
        }
    }
}

impl Settings {
    /// The server-loop limits these settings ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            max_connections: self.max_connections,
            max_header_bytes: self.max_header_bytes.max(1024),
            max_headers: 100,
            header_read_timeout: (self.header_read_timeout_ms > 0)
                .then(|| Duration::from_millis(self.header_read_timeout_ms)),
        }
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

#[derive(Clone)]
pub struct GatewayMetrics {
    duration: Family<UpstreamLabel, Histogram>,
    errors: Family<UpstreamErrorLabels, Counter>,
}

impl GatewayMetrics {
    fn observe(&self, upstream: &'static str, elapsed: Duration) {
        self.duration
            .get_or_create(&UpstreamLabel { upstream })
            .observe(elapsed.as_secs_f64());
    }

    fn error(&self, upstream: &'static str, kind: &'static str) {
        self.errors
            .get_or_create(&UpstreamErrorLabels { upstream, kind })
            .inc();
    }
}

/// One upstream service.
#[derive(Clone)]
pub struct Upstream {
    /// Seed name, used in errors: `pedidos-service`.
    pub name: &'static str,
    /// Short name, used in metrics and `/health`: `pedidos`.
    pub label: &'static str,
    /// `http://host:port`, no trailing slash.
    pub base: String,
    scheme: Scheme,
    authority: Authority,
    /// The path of the base URL (usually none), put before every forwarded path.
    prefix: String,
    /// The `Host` header of forwarded requests, made once.
    host: HeaderValue,
    /// For the `/health` probe.
    probe: ServiceClient,
}

impl Upstream {
    fn new(name: &'static str, label: &'static str, base: &str) -> Result<Self, String> {
        let base = base.trim_end_matches('/').to_owned();
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
            name,
            label,
            probe: ServiceClient::new(name, &base, Duration::from_secs(2), 4),
            base,
            scheme,
            authority,
            prefix,
            host,
        })
    }
}

#[derive(Clone)]
pub struct Gateway {
    pub pedidos: Upstream,
    pub pagamentos: Upstream,
    pub estoque: Upstream,
    client: Client<HttpConnector, Body>,
    timeout: Duration,
    body_limit: usize,
    keys: Arc<auth::Keys>,
    metrics: GatewayMetrics,
    openapi: Bytes,
}

async fn root() -> Json<serde_json::Value> {
    Json(json!({
        "service": "Pedidos Veloz - API Gateway",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": ["/orders", "/payments", "/items", "/health", "/livez", "/readyz", "/metrics", "/openapi.json"],
    }))
}

/// Asks every backend's `/health`: 200 when all are healthy, 207 otherwise (seed behaviour).
async fn health(State(gateway): State<Arc<Gateway>>) -> Response {
    let check = |u: &Upstream| {
        let probe = u.probe.clone();
        async move {
            match probe
                .call(Method::GET, "/health", platform::client::NO_BODY, "", None)
                .await
            {
                Ok(answer) if answer.status == StatusCode::OK => "healthy",
                Ok(_) => "unhealthy",
                Err(_) => "unreachable",
            }
        }
    };
    let (pedidos, pagamentos, estoque) = tokio::join!(
        check(&gateway.pedidos),
        check(&gateway.pagamentos),
        check(&gateway.estoque)
    );
    let healthy = [pedidos, pagamentos, estoque]
        .iter()
        .all(|s| *s == "healthy");
    let (status, word) = if healthy {
        (StatusCode::OK, "healthy")
    } else {
        (StatusCode::MULTI_STATUS, "degraded")
    };
    let body = json!({
        "status": word,
        "service": names::GATEWAY,
        "backends": {"pedidos": pedidos, "pagamentos": pagamentos, "estoque": estoque},
    });
    (status, Json(body)).into_response()
}

async fn openapi(State(gateway): State<Arc<Gateway>>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        gateway.openapi.clone(),
    )
        .into_response()
}

/// Builds the gateway. `api` is the public OpenAPI document of the services; the
/// gateway adds its own endpoints to it.
pub fn build(
    settings: &Settings,
    upstreams: &Upstreams,
    mut api: utoipa::openapi::OpenApi,
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
    if keys.is_enabled() {
        tracing::info!(keys = keys.len(), "API key authentication enabled");
    } else {
        tracing::warn!(
            "API_KEYS is not set: the gateway is OPEN, every call is allowed without a key"
        );
    }
    let mut metrics = MetricsBuilder::new(names::GATEWAY);
    let gateway_metrics = GatewayMetrics {
        duration: Family::new_with_constructor(latency_histogram),
        errors: Family::default(),
    };
    metrics.registry().register(
        "gateway_upstream_request_duration_seconds",
        "Time to the upstream's response headers, by upstream",
        gateway_metrics.duration.clone(),
    );
    metrics.registry().register(
        "gateway_upstream_errors",
        "Upstream calls that failed, by upstream and kind (unavailable, timeout, bad_gateway)",
        gateway_metrics.errors.clone(),
    );
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
    api.merge(gateway_api());
    let keys_for_doc = keys.clone();
    api.info.title = "Pedidos Veloz API".into();
    api.info.description = Some("The public API of Pedidos Veloz, served by api-gateway.".into());
    let mut document = serde_json::to_value(&api).map_err(|e| e.to_string())?;
    document_gateway_answers(&mut document, &keys_for_doc);
    let document = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
    // Shared, not cloned per request: the state holds a dozen reference counts.
    let gateway = Arc::new(Gateway {
        pedidos: Upstream::new(names::PEDIDOS, "pedidos", &upstreams.pedidos_service_url)?,
        pagamentos: Upstream::new(
            names::PAGAMENTOS,
            "pagamentos",
            &upstreams.pagamentos_service_url,
        )?,
        estoque: Upstream::new(names::ESTOQUE, "estoque", &upstreams.estoque_service_url)?,
        client: platform::client::pooled(256)
            .build(platform::client::connector(Duration::from_secs(1))),
        timeout: Duration::from_millis(settings.upstream_timeout_ms),
        body_limit: settings.body_limit_bytes,
        keys,
        metrics: gateway_metrics,
        openapi: Bytes::from(document),
    });
    let routes = Router::new()
        .route("/", get(root))
        .route("/openapi.json", get(openapi))
        .route("/orders", any(proxy::proxy))
        .route("/orders/{*rest}", any(proxy::proxy))
        .route("/payments", any(proxy::proxy))
        .route("/payments/{*rest}", any(proxy::proxy))
        .route("/items", any(proxy::proxy))
        .route("/items/{*rest}", any(proxy::proxy))
        .with_state(gateway.clone())
        .layer(axum::middleware::from_fn_with_state(
            limits.clone(),
            ratelimit::limit,
        ));
    let mut component = Component::new(names::GATEWAY, routes, None, metrics);
    // `/health` calls every backend: limited like the public calls. Probes and
    // `/metrics` are not (they come from the orchestrator and Prometheus).
    component.health = Some(
        Router::new()
            .route("/health", get(health))
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

/// Adds to every operation of the document the answers the platform gives whatever
/// the operation: 400 for a malformed id, query or body, 413/415 for bodies, 429 from
/// the rate limits, 401/403 when API keys guard the call, and 502/503/504 when the
/// upstream is broken, down or slow. The services document their own answers; these
/// come from the gateway and the shared extractors.
fn document_gateway_answers(doc: &mut serde_json::Value, keys: &auth::Keys) {
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        })
    };
    let has_error_schema = doc.pointer("/components/schemas/ErrorBody").is_some();
    if !has_error_schema {
        if let Some(schemas) = doc
            .pointer_mut("/components/schemas")
            .and_then(|s| s.as_object_mut())
        {
            schemas.insert(
                "ErrorBody".into(),
                json!({"type": "object", "required": ["error", "code"],
                       "properties": {"error": {"type": "string"}, "code": {"type": "string"}}}),
            );
        }
    }
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let proxied = ["/items", "/orders", "/payments"]
            .iter()
            .any(|p| path == p || path.starts_with(&format!("{p}/")));
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            let Ok(http_method) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) else {
                continue;
            };
            let has_input = operation.get("parameters").is_some();
            let has_body = operation.get("requestBody").is_some();
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(|r| r.as_object_mut())
            else {
                continue;
            };
            let mut add = |status: &str, description: &str| {
                responses
                    .entry(status.to_owned())
                    .or_insert_with(|| error(description));
            };
            if !proxied {
                continue;
            }
            if has_input || has_body {
                add("400", "Invalid id, query parameter or body");
            }
            if has_body {
                add("413", "Body larger than the limit");
                add("415", "Body is not application/json");
            }
            add(
                "429",
                "Rate limited: retry after the Retry-After header's seconds",
            );
            add("502", "The upstream service answered something broken");
            add(
                "503",
                "The upstream service (or its database) is unavailable",
            );
            add("504", "The upstream service did not answer in time");
            if keys.is_enabled() {
                if let auth::Access::Needs(role) = auth::access(&http_method, path) {
                    add("401", "An API key is required");
                    if role == auth::Role::Admin {
                        add("403", "This call needs an admin API key");
                    }
                }
            }
        }
    }
}

/// The gateway's own endpoints, for the OpenAPI document.
fn gateway_api() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi;

    #[derive(utoipa::ToSchema, serde::Serialize)]
    #[allow(dead_code)]
    struct Backends {
        pedidos: String,
        pagamentos: String,
        estoque: String,
    }

    #[derive(utoipa::ToSchema, serde::Serialize)]
    #[allow(dead_code)]
    struct GatewayHealth {
        /// `healthy` or `degraded`.
        status: String,
        service: String,
        backends: Backends,
    }

    #[utoipa::path(get, path = "/", tag = "api-gateway", responses((status = 200, description = "Service name, version and endpoints", body = Object)))]
    #[allow(dead_code)]
    fn root_doc() {}

    #[utoipa::path(get, path = "/health", tag = "api-gateway",
        responses((status = 200, description = "Every backend is healthy", body = GatewayHealth),
                  (status = 207, description = "Degraded: some backend is unhealthy or unreachable", body = GatewayHealth)))]
    #[allow(dead_code)]
    fn health_doc() {}

    #[utoipa::path(get, path = "/livez", tag = "api-gateway", responses((status = 200, description = "The process is up", body = Object)))]
    #[allow(dead_code)]
    fn livez_doc() {}

    #[utoipa::path(get, path = "/readyz", tag = "api-gateway",
        responses((status = 200, description = "Ready to serve", body = Object), (status = 503, description = "Draining", body = Object)))]
    #[allow(dead_code)]
    fn readyz_doc() {}

    #[derive(OpenApi)]
    #[openapi(
        paths(root_doc, health_doc, livez_doc, readyz_doc),
        components(schemas(GatewayHealth, Backends))
    )]
    struct GatewayApi;

    GatewayApi::openapi()
}
