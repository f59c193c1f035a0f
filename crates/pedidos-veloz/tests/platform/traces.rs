//! Traces end to end: the four components as separate processes export their spans
//! over OTLP/HTTP to a receiver in the test, which decodes them (the OTLP protobuf
//! types) and checks that one order is one trace, gateway → pedidos → estoque and
//! pagamentos, with correct parent links (each component's server span continues the
//! client span of its caller: the edges of the service graph) and the request id on
//! every request span; and that the request-duration histograms carry that trace as
//! their exemplar.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use pedidos_veloz::ComponentKind;
use prost::Message;

use crate::harness::{Backend, Mode, Options, Platform};
use crate::on_both_backends;

/// One span as the receiver got it.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    /// OpenTelemetry's span kind: 2 server, 3 client.
    kind: i32,
    attributes: HashMap<String, String>,
}

const SERVER: i32 = 2;
const CLIENT: i32 = 3;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn text(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| {
            let value = match kv.value.as_ref()?.value.as_ref()? {
                AnyValue::StringValue(s) => s.clone(),
                AnyValue::IntValue(i) => i.to_string(),
                AnyValue::BoolValue(b) => b.to_string(),
                AnyValue::DoubleValue(d) => d.to_string(),
                _ => return None,
            };
            Some((kv.key.clone(), value))
        })
        .collect()
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, protobuf) keeping every span it is sent.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("addr");
        let spans = Arc::new(Mutex::new(Vec::new()));
        let store = spans.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let store = store.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let store = store.clone();
                        async move {
                            let ok = req.uri().path() == "/v1/traces";
                            let body = req.into_body().collect().await?.to_bytes();
                            if ok {
                                if let Ok(export) = ExportTraceServiceRequest::decode(body) {
                                    store.lock().expect("spans").extend(decode(export));
                                }
                            }
                            let status = if ok { 200 } else { 404 };
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/x-protobuf")
                                    .body(Full::new(Bytes::new()))
                                    .expect("response"),
                            )
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(tcp);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self { addr, spans }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().expect("spans").clone()
    }
}

fn decode(export: ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for resource in export.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .map(|r| text(&r.attributes))
            .and_then(|a| a.get("service.name").cloned())
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                out.push(Span {
                    service: service.clone(),
                    name: span.name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    kind: span.kind,
                    attributes: text(&span.attributes),
                });
            }
        }
    }
    out
}

/// The four components as processes exporting their spans to a new receiver.
async fn traced_platform(backend: Backend) -> (Receiver, Platform) {
    let receiver = Receiver::start().await;
    let endpoint = format!("http://{}", receiver.addr);
    let options = Options {
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
        ],
        ..Default::default()
    };
    let p = Platform::start_in(Mode::Processes, backend, options).await;
    (receiver, p)
}

/// A real Prometheus (exemplar storage on) keeps the exemplars of the latency
/// histograms, and their trace ids are traces the components exported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pv_prometheus),
    ignore = "set PV_TEST_PROMETHEUS and PV_TEST_ALERTMANAGER to run it"
)]
async fn prometheus_stores_exemplars_that_lead_to_exported_traces() {
    let (receiver, p) = traced_platform(Backend::Sqlite).await;
    let monitoring = crate::monitoring::Monitoring::start(&p.topology).await;
    let item = p.item("Cachecol", 50, 49.9).await;
    let started = std::time::Instant::now();
    let stored = loop {
        assert_eq!(p.order("Lia", &[(item, 1)]).await.status, 201);
        let stored = monitoring
            .exemplar_trace_ids(r#"http_request_duration_seconds_bucket{component="api-gateway"}"#)
            .await;
        if !stored.is_empty() {
            break stored;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus stored no exemplar"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let exported: std::collections::HashSet<String> =
        receiver.spans().into_iter().map(|s| s.trace_id).collect();
    for id in &stored {
        assert!(
            exported.contains(id),
            "exemplar trace {id} was never exported"
        );
    }
}

on_both_backends!(
    one_order_is_one_trace_across_the_four_components,
    |backend: Backend| async move {
        let (receiver, p) = traced_platform(backend).await;
        let item = p.item("Agasalho", 5, 120.0).await;
        let request_id = "trace-test-order-1";
        let order = p
            .http
            .send(
                "POST",
                &p.url("/orders"),
                Some(serde_json::json!({"customer": "Rui", "items": [{"item_id": item, "quantity": 1}]})),
                &[("x-request-id", request_id)],
            )
            .await;
        assert_eq!(order.status, 201, "{}", order.text);

        // The request spans of the order, one per component, as they arrive.
        let services = [
            "api-gateway",
            "pedidos-service",
            "estoque-service",
            "pagamentos-service",
        ];
        let mut spans = Vec::new();
        for _ in 0..100 {
            spans = receiver
                .spans()
                .into_iter()
                .filter(|s| s.attributes.get("request_id").map(String::as_str) == Some(request_id))
                .collect();
            if services.iter().all(|svc| {
                spans
                    .iter()
                    .any(|s| s.service == *svc && s.name == "request")
            }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let request_span = |service: &str| {
            spans
                .iter()
                .find(|s| s.service == service && s.name == "request")
                .unwrap_or_else(|| panic!("no request span from {service}: {spans:#?}"))
                .clone()
        };
        let gateway = request_span("api-gateway");
        let pedidos = request_span("pedidos-service");
        let estoque = request_span("estoque-service");
        let pagamentos = request_span("pagamentos-service");
        for span in &spans {
            assert_eq!(span.trace_id, gateway.trace_id, "one trace: {span:?}");
        }
        assert_ne!(gateway.trace_id, "0".repeat(32));
        let all = receiver.spans();
        let by_id: HashMap<&str, &Span> = all.iter().map(|s| (s.span_id.as_str(), s)).collect();
        // Each callee's server span continues a client span of its caller, child of the
        // caller's own request span: one edge of the service graph.
        for (callee, caller) in [
            (&pedidos, &gateway),
            (&estoque, &pedidos),
            (&pagamentos, &pedidos),
        ] {
            assert_eq!(callee.kind, SERVER, "{callee:?}");
            let call = by_id.get(callee.parent.as_str()).unwrap_or_else(|| {
                panic!(
                    "{}'s parent {} is not in the trace",
                    callee.service, callee.parent
                )
            });
            assert_eq!(
                (call.service.as_str(), call.name.as_str(), call.kind),
                (caller.service.as_str(), "call", CLIENT),
                "{call:?}"
            );
            assert_eq!(call.parent, caller.span_id, "{call:?}");
            assert_eq!(call.attributes.get("peer.service"), Some(&callee.service));
            assert_eq!(call.trace_id, gateway.trace_id);
        }
        assert_eq!(
            gateway
                .attributes
                .get("http.response.status_code")
                .map(String::as_str),
            Some("201")
        );

        // The gateway's latency histogram points at this trace (or another real one).
        let metrics = p.metrics(ComponentKind::Gateway).await;
        let seen: std::collections::HashSet<String> =
            receiver.spans().into_iter().map(|s| s.trace_id).collect();
        let exemplars: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("http_request_duration_seconds_bucket"))
            .filter_map(|l| l.split("trace_id=\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .collect();
        assert!(
            !exemplars.is_empty(),
            "no exemplar on the duration histogram:\n{metrics}"
        );
        for id in &exemplars {
            assert!(seen.contains(*id), "exemplar trace {id} was never exported");
        }
        assert!(
            exemplars.contains(&gateway.trace_id.as_str()),
            "the order's trace is an exemplar"
        );
    }
);
