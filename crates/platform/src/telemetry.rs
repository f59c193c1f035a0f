//! Logs and traces.
//!
//! Logs: one JSON object per line on stdout (default), or human-readable lines with
//! `LOG_FORMAT=pretty`; the level comes from `RUST_LOG`, else `LOG_LEVEL`. A runtime
//! worker's lines are written in batches ([`crate::log_writer`]).
//!
//! Traces: every request gets an OpenTelemetry span whose context comes from the
//! caller's W3C `traceparent` header and goes on to every call this component makes
//! (see [`inject`]), so one order is one trace across gateway → orders → inventory and
//! payments; its trace id is written in the request's log lines. Spans are exported
//! over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

use axum::http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable when the logs go to a terminal, JSON otherwise (a collector reads them).
    Auto,
    Json,
    Pretty,
}

impl LogFormat {
    /// `Auto` decided by where the logs go: standard output.
    pub fn resolve(self) -> Self {
        use std::io::IsTerminal;
        match self {
            LogFormat::Auto if std::io::stdout().is_terminal() => LogFormat::Pretty,
            LogFormat::Auto => LogFormat::Json,
            other => other,
        }
    }
}

/// Whether spans are exported (OTLP endpoint configured): set once by [`init`].
static EXPORTING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process exports its spans, so that their trace ids lead somewhere.
pub fn is_exporting() -> bool {
    EXPORTING.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the log lines are JSON: set once by [`init`].
static JSON_LINES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process writes JSON log lines (what [`crate::access_log`] writes itself).
pub fn writes_json() -> bool {
    JSON_LINES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Keeps the trace pipeline alive; [`Telemetry::shutdown`] flushes pending spans.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("trace exporter shutdown: {err}");
        }
    }
}

/// Installs the global subscriber (later calls, as in tests, keep the first one).
/// `service` names the process in exported traces.
pub fn init(format: LogFormat, level: &str, service: &str) -> Telemetry {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let mut provider = SdkTracerProvider::builder().with_resource(
        Resource::builder()
            .with_service_name(service.to_owned())
            .build(),
    );
    let exporting = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").is_ok_and(|v| !v.is_empty());
    if exporting {
        // The endpoint (and headers) are read from the standard OTEL_EXPORTER_OTLP_* variables.
        match opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
        {
            Ok(exporter) => {
                provider = provider.with_batch_exporter(exporter);
                EXPORTING.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Err(err) => eprintln!("cannot build the OTLP exporter, traces stay local: {err}"),
        }
    }
    let provider = provider.build();
    // Only what a trace reader uses: the span's own fields, kind and status. The
    // layer's defaults add source location, thread and target attributes to every span
    // and time every poll of an instrumented future (busy/idle); nothing here reads the
    // OpenTelemetry context of the current thread (calls take it from their span:
    // `inject_from`), so none is attached on entering a span. Measured
    // (docs/performance.md): a GET through the gateway with every span exported, 208 →
    // 181 µs of CPU.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("pedidos-veloz"))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let format = format.resolve();
    let result = match format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(crate::log_writer::Stdout),
            )
            .try_init(),
        LogFormat::Pretty | LogFormat::Auto => registry
            .with(
                fmt::layer()
                    .compact()
                    .with_writer(crate::log_writer::Stdout),
            )
            .try_init(),
    };
    if result.is_ok() {
        JSON_LINES.store(
            format == LogFormat::Json,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    if result.is_ok() && exporting {
        tracing::info!(service, "exporting traces over OTLP/HTTP");
    }
    Telemetry { provider }
}

/// Continues the caller's trace (W3C `traceparent`) in `span`, and returns the trace id.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) -> String {
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
    trace_id(span)
}

/// The trace id of `span` as 32 hex digits (zeros when tracing is off).
pub fn trace_id(span: &tracing::Span) -> String {
    span.context().span().span_context().trace_id().to_string()
}

/// Writes the current span's context as `traceparent` into an outgoing request.
pub fn inject(headers: &mut HeaderMap) {
    inject_from(&tracing::Span::current(), headers);
}

/// Writes `span`'s context as `traceparent` into an outgoing request.
pub fn inject_from(span: &tracing::Span, headers: &mut HeaderMap) {
    if span.is_disabled() {
        return;
    }
    let context = span.context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// The span of a call to another component (OpenTelemetry kind `client`), child of the
/// current span: the server span of the callee continues it, and the pair is one edge
/// of the service graph.
pub fn client_span(peer: &'static str, method: &axum::http::Method) -> tracing::Span {
    tracing::info_span!(
        "call",
        otel.kind = "client",
        peer.service = peer,
        http.request.method = method.as_str(),
    )
}

/// Marks a call that got no answer as failed on its span.
pub fn record_failure(span: &tracing::Span) {
    if !span.is_disabled() {
        span.set_status(opentelemetry::trace::Status::error("no answer"));
    }
}

/// Records a call's or a request's HTTP status on its span (an error status for 5xx,
/// which tail sampling keeps). Set on the OpenTelemetry span only: a `tracing` record
/// would make the log formatter parse and re-write the span's fields (measured: a
/// third of what logging a request cost).
pub fn record_status(span: &tracing::Span, status: u16) {
    if span.is_disabled() {
        return;
    }
    span.set_attribute("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.set_status(opentelemetry::trace::Status::error(""));
    }
}
