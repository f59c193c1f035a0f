//! Turning a component's routes into a served application: the standard endpoints
//! (`/health`, `/livez`, `/readyz`, `/metrics`), JSON fallbacks, body limit, panic
//! guard, request tracking, and a server loop that drains gracefully.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

use crate::db::Db;
use crate::error::ApiError;
use crate::faults::{self, Faults};
use crate::health::{self, Probe};
use crate::metrics::{metrics_handler, MetricsBuilder};
use crate::request_id::{self, RequestContext};
use crate::shutdown::Shutdown;
use crate::worker::Workers;

/// Requests bodies above this are refused with 413 (SPEC section 2).
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// What one client connection may cost a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Open connections served at once; 0 = no limit. Beyond it new connections
    /// wait in the kernel's accept queue until one closes.
    pub max_connections: usize,
    /// Largest request head (request line + headers), in bytes: 431 above it.
    pub max_header_bytes: usize,
    /// Largest number of request headers: 431 above it.
    pub max_headers: usize,
    /// Time a client has to send a complete request head (also how long an idle
    /// keep-alive connection stays open); `None` = no limit.
    pub header_read_timeout: Option<Duration>,
}

impl Default for Limits {
    /// For the internal services: generous, since only the platform calls them. No
    /// header timeout: it would also close idle keep-alive connections, racing the
    /// callers' pools (which drop idle connections themselves, see
    /// [`crate::client::POOL_IDLE_TIMEOUT`]).
    fn default() -> Self {
        Self {
            max_connections: 0,
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            header_read_timeout: None,
        }
    }
}

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
    /// Read each request's whole body (up to `body_limit`) before routing. On for the
    /// internal services, off for the gateway, which reads them itself in its proxy.
    pub read_whole_body: bool,
    /// Connection limits of its server loop.
    pub limits: Limits,
    /// Its background tasks: stopped and waited for by [`serve`] before the pools close.
    pub workers: Workers,
    /// The faults it applies, switchable on its `/admin/faults` when enabled.
    pub faults: Faults,
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
            read_whole_body: true,
            limits: Limits::default(),
            workers: Workers::new(),
            faults: Faults::disabled(name),
        }
    }

    /// The faults the component's state applies; its database applies the database's.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        if let Some(db) = &self.db {
            db.apply_faults(&faults);
        }
        self.faults = faults;
        self
    }

    /// The background tasks the component's state started (see [`Workers`]).
    pub fn with_workers(mut self, workers: Workers) -> Self {
        self.workers = workers;
        self
    }

    /// The whole application: the component's routes plus the standard endpoints and
    /// layers; and what outlives the routes until shutdown ends: the workers and the database.
    pub fn into_app(mut self, shutdown: &Shutdown) -> (Router, Workers, Option<Db>) {
        self.faults.start(self.metrics.registry(), &self.workers);
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
        let standard = match faults::routes(&self.faults) {
            Some(admin) => standard.merge(admin),
            None => standard,
        };
        let mut app = self
            .routes
            .merge(standard)
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .route_layer(axum::middleware::from_fn(request_id::capture_route));
        if self.read_whole_body {
            app = app.layer(axum::middleware::from_fn_with_state(
                self.body_limit,
                read_whole_body,
            ));
        }
        let app = app
            .layer(axum::middleware::from_fn_with_state(
                shutdown.draining.clone(),
                close_when_draining,
            ))
            .layer(DefaultBodyLimit::max(self.body_limit))
            .layer(CatchPanicLayer::custom(|_| {
                tracing::error!("handler panicked");
                ApiError::internal().into_response()
            }))
            .layer(axum::middleware::from_fn_with_state(
                context,
                request_id::track,
            ));
        (app, self.workers, self.db)
    }
}

/// Reads the request body to its end before the handler runs. A handler that answers
/// without reading a body (a bad id in the path, a wrong content type) would otherwise
/// leave part of it unread; hyper then closes the connection after the response, while
/// the caller's pool (the gateway's, pedidos') may already be reusing it for the next
/// request, which then fails as a 502. Found by schemathesis (PATCH /items/{id}/reserve).
async fn read_whole_body(State(limit): State<usize>, req: Request, next: Next) -> Response {
    // Most requests (every GET) have no body: nothing to read, nothing to copy.
    if axum::body::HttpBody::is_end_stream(req.body()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    match http_body_util::BodyExt::collect(http_body_util::Limited::new(body, limit)).await {
        Ok(collected) => {
            let body = Body::from(collected.to_bytes());
            next.run(Request::from_parts(parts, body)).await
        }
        Err(err) if err.is::<http_body_util::LengthLimitError>() => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "request body is larger than the limit",
        )
        .with("limit_bytes", limit)
        .into_response(),
        Err(_) => {
            ApiError::bad_request("invalid_body", "could not read the request body").into_response()
        }
    }
}

/// While draining, every answer asks its client to close the connection: a caller
/// then opens its next connection to another replica (this one is unready), and no
/// connection the caller keeps is closed under it when the listener stops (callers'
/// pools drop connections idle longer than [`crate::client::POOL_IDLE_TIMEOUT`],
/// which is shorter than a `SHUTDOWN_DELAY_MS` worth having).
async fn close_when_draining(
    State(draining): State<tokio_util::sync::CancellationToken>,
    req: Request,
    next: Next,
) -> Response {
    let mut response = next.run(req).await;
    if draining.is_cancelled() {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
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

/// Serves `component` on `listener` until `shutdown.stop`, then stops accepting,
/// lets in-flight requests finish (idle keep-alive connections close at once), stops
/// the component's background workers and waits for them, all within `grace`, and
/// closes the database pools.
///
/// The loop is hyper's HTTP/1 connection builder driven directly (not `axum::serve`)
/// so that the component's [`Limits`] apply: header size and count (431 above them),
/// the time a client may take to send its headers (slow clients are disconnected),
/// and the number of open connections (beyond it new connections wait in the
/// kernel's accept queue).
pub async fn serve(
    component: Component,
    listener: TcpListener,
    shutdown: Shutdown,
    grace: Duration,
) -> std::io::Result<()> {
    let name = component.name;
    let limits = component.limits.clone();
    let (app, workers, db) = component.into_app(&shutdown);
    let addr = listener.local_addr()?;
    tracing::info!(
        component = name,
        %addr,
        max_connections = limits.max_connections,
        max_header_bytes = limits.max_header_bytes,
        header_read_timeout_ms = limits.header_read_timeout.map(|d| d.as_millis() as u64),
        "listening"
    );
    let stop = shutdown.stop.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_SIZE) * 2);
    let mut connections = tokio::task::JoinSet::new();
    let result = loop {
        // Reap finished connections; at the limit, wait for one to end before accepting.
        while connections.try_join_next().is_some() {}
        if limits.max_connections > 0 && connections.len() >= limits.max_connections {
            tokio::select! {
                _ = connections.join_next() => continue,
                () = stop.cancelled() => break Ok(()),
            }
        }
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) if is_connection_error(&err) => continue,
                Err(err) => {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tracing::error!(component = name, error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let service = tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            },
        );
        let conn = builder.serve_connection(
            hyper_util::rt::TokioIo::new(tcp),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let stop = stop.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%peer, error = %err, "connection ended with an error");
                    }
                    return;
                }
                () = stop.cancelled() => {}
            }
            // Finish the request in progress (if any), then close.
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    };
    drop(listener);
    let deadline = tokio::time::Instant::now() + grace;
    let open = connections.len();
    if open > 0 {
        tracing::info!(
            component = name,
            connections = open,
            "stopped accepting: finishing in-flight requests"
        );
    }
    let drained = tokio::time::timeout_at(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            component = name,
            grace_s = grace.as_secs_f64(),
            connections = connections.len(),
            "grace period over: closing the remaining connections"
        );
        connections.shutdown().await;
    }
    // The routes hold the state that feeds some workers (the group-commit queues):
    // dropping them lets those workers end once their queues are empty.
    drop(app);
    let running = workers.len();
    if !workers
        .stop(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        tracing::warn!(
            component = name,
            workers = workers.len(),
            of = running,
            "grace period over: background workers still running when the pools close"
        );
    }
    if let Some(db) = db {
        db.close().await;
    }
    tracing::info!(component = name, "stopped");
    result
}

/// hyper's smallest read buffer.
const MIN_BUF_SIZE: usize = 8192;

/// Errors of one incoming connection (the client gave up before we accepted it):
/// not a reason to stop serving.
fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
