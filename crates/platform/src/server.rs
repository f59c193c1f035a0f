//! Turning a component's routes into a served application: the standard endpoints
//! (`/health`, `/livez`, `/readyz`, `/metrics`), JSON fallbacks, body limit, panic
//! guard, request tracking, and a server loop that drains gracefully.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::db::Db;
use crate::error::ApiError;
use crate::health::{self, Probe};
use crate::metrics::{metrics_handler, MetricsBuilder};
use crate::request_id::{self, RequestContext};
use crate::shutdown::Shutdown;

/// Requests bodies above this are refused with 413 (SPEC section 2).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// One component ready to serve.
pub struct Component {
    /// The seed's name: `estoque-service`, `api-gateway` …
    pub name: &'static str,
    /// The component's own routes, state applied.
    pub routes: Router,
    /// Its database, if it has one: used by `/health`, `/readyz`, pool metrics and closed at exit.
    pub db: Option<Db>,
    pub metrics: MetricsBuilder,
    /// Replaces the default `/health` (the gateway aggregates its backends).
    pub health: Option<Router>,
    pub body_limit: usize,
}

impl Component {
    pub fn new(
        name: &'static str,
        routes: Router,
        db: Option<Db>,
        mut metrics: MetricsBuilder,
    ) -> Self {
        if let Some(db) = &db {
            metrics.with_db(db);
        }
        Self {
            name,
            routes,
            db,
            metrics,
            health: None,
            body_limit: DEFAULT_BODY_LIMIT,
        }
    }

    /// The whole application: the component's routes plus the standard endpoints and layers.
    pub fn into_app(self, shutdown: &Shutdown) -> (Router, Option<Db>) {
        let probe = Probe {
            service: self.name,
            db: self.db.clone(),
            draining: shutdown.draining.clone(),
        };
        let context = RequestContext {
            component: self.name,
            http: self.metrics.http(),
        };
        let metrics = self.metrics.finish();
        let health = self.health.unwrap_or_else(|| {
            Router::new()
                .route("/health", get(health::health))
                .with_state(probe.clone())
        });
        let standard = Router::new()
            .route("/livez", get(health::livez))
            .route("/readyz", get(health::readyz))
            .with_state(probe)
            .merge(
                Router::new()
                    .route("/metrics", get(metrics_handler))
                    .with_state(metrics),
            )
            .merge(health);
        let app = self
            .routes
            .merge(standard)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .route_layer(axum::middleware::from_fn(request_id::capture_route))
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(CatchPanicLayer::custom(|_| {
                tracing::error!("handler panicked");
                ApiError::internal().into_response()
            }))
            .layer(axum::middleware::from_fn_with_state(
                context,
                request_id::track,
            ));
        (app, self.db)
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::not_found(
        "route_not_found",
        format!("no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Binds `addr`, reporting the address in use in the error.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|err| std::io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}")))
}

/// Serves `component` on `listener` until `shutdown.stop`, then finishes in-flight
/// requests for at most `grace` and closes the database pools.
pub async fn serve(
    component: Component,
    listener: TcpListener,
    shutdown: Shutdown,
    grace: Duration,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;

    let name = component.name;
    let (app, db) = component.into_app(&shutdown);
    let addr = listener.local_addr()?;
    tracing::info!(component = name, %addr, "listening");
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stop = shutdown.stop.clone();
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop.clone().cancelled_owned());
    let deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!(component = name, grace_s = grace.as_secs_f64(), "grace period over: closing the remaining connections");
            Ok(())
        }
    };
    if let Some(db) = db {
        db.close().await;
    }
    tracing::info!(component = name, "stopped");
    result
}

/// Runs `future` until it completes or `stop` is cancelled (for background workers).
pub async fn until_stopped<F: std::future::Future<Output = ()>>(
    stop: &tokio_util::sync::CancellationToken,
    future: F,
) {
    tokio::select! {
        () = future => {},
        () = stop.cancelled() => {},
    }
}

/// Shared handle to a component's state, for services that need `Arc` state.
pub type Shared<T> = Arc<T>;
