//! The scenario catalogue (docs/scenarios.md), each as an end-to-end test: the platform
//! under steady traffic, a real Prometheus evaluating the repository's alert rules and a
//! real Alertmanager routing them; one fault switched on through `/admin/faults`; its
//! alert must fire and reach the receiver its severity routes to, the drill alert must
//! reach `drills`, and once the fault is off the invariants must hold. Each scenario's
//! time to fire is written to `target/scenarios.txt`.
//!
//! Needs `PV_TEST_PROMETHEUS` and `PV_TEST_ALERTMANAGER` (ignored otherwise).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::harness::{Backend, Options, Platform};
use crate::monitoring::{Monitoring, TEST_FOR};

struct Scenario {
    fault: &'static str,
    value: f64,
    alert: &'static str,
    /// The component the alert must name ("" for any).
    component: &'static str,
    receiver: &'static str,
}

const SCENARIOS: [Scenario; 7] = [
    Scenario {
        fault: "payment_decline_rate",
        value: 0.9,
        alert: "PedidosPaymentDeclineRatioHigh",
        component: "pagamentos-service",
        receiver: "team",
    },
    Scenario {
        fault: "payment_latency_ms",
        value: 3000.0,
        alert: "PedidosSagaStepsRetrying",
        component: "pedidos-service",
        receiver: "team",
    },
    Scenario {
        fault: "inventory_error_rate",
        value: 0.5,
        alert: "PedidosHighErrorRatio",
        component: "estoque-service",
        receiver: "oncall",
    },
    Scenario {
        fault: "inventory_latency_ms",
        value: 800.0,
        alert: "PedidosHighLatencyP99",
        component: "estoque-service",
        receiver: "team",
    },
    Scenario {
        fault: "inventory_call_failure_rate",
        value: 1.0,
        alert: "PedidosSagaStepsRetrying",
        component: "pedidos-service",
        receiver: "team",
    },
    Scenario {
        fault: "payment_call_failure_rate",
        value: 1.0,
        alert: "PedidosSagaStepsRetrying",
        component: "pedidos-service",
        receiver: "team",
    },
    Scenario {
        fault: "database_latency_ms",
        value: 600.0,
        alert: "PedidosHighLatencyP99",
        component: "estoque-service",
        receiver: "team",
    },
];

/// Orders and reads at a steady pace until `stop`; the items' stock is far above what
/// it sells.
fn traffic(p: Arc<Platform>, item: i64, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.is_cancelled() {
            n += 1;
            let key = format!("scenario-{n}");
            let body = json!({"customer": "Drill", "items": [{"item_id": item, "quantity": 1}]});
            let (orders, reads) = (p.url("/orders"), p.url(&format!("/items/{item}")));
            let headers = [
                ("content-type", "application/json"),
                ("idempotency-key", key.as_str()),
            ];
            let wait = Duration::from_secs(10);
            let order = p.http.try_raw(
                "POST",
                &orders,
                body.to_string().into_bytes(),
                &headers,
                wait,
            );
            let read = p.http.try_raw("GET", &reads, vec![], &[], wait);
            let _ = tokio::join!(order, read);
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
                () = stop.cancelled() => {}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pv_prometheus),
    ignore = "set PV_TEST_PROMETHEUS and PV_TEST_ALERTMANAGER to run the alert scenarios"
)]
async fn every_fault_fires_its_alert_and_loses_nothing() {
    let mut rows = Vec::new();
    for scenario in &SCENARIOS {
        let options = Options {
            decline_rate: 0.1,
            env: vec![("FAULTS_ENABLED".to_owned(), "true".to_owned())],
            ..Default::default()
        };
        let p = Arc::new(Platform::start_with(Backend::Sqlite, options).await);
        let stock = 1_000_000;
        let item = p.item("Drill", stock, 25.0).await;
        let monitoring = Monitoring::start(&p.topology).await;
        let stop = CancellationToken::new();
        let load = traffic(p.clone(), item, stop.clone());
        // A baseline first: the platform is healthy and nothing fires.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = monitoring.firing().await;
        assert!(
            before.is_empty(),
            "{}: alerts before the fault: {before:?}",
            scenario.fault
        );

        let url = p.url(&format!("/admin/faults/{}", scenario.fault));
        let on = p
            .http
            .send(
                "PUT",
                &url,
                Some(json!({"value": scenario.value, "ttl_seconds": 600})),
                &[],
            )
            .await;
        assert_eq!(on.status, 200, "{}: {}", scenario.fault, on.text);
        let switched = Instant::now();
        let fired = monitoring
            .until_firing(scenario.alert, scenario.component, Duration::from_secs(120))
            .await;
        monitoring
            .until_notified(scenario.receiver, scenario.alert, Duration::from_secs(30))
            .await;
        monitoring
            .until_notified("drills", "PedidosFaultActive", Duration::from_secs(30))
            .await;
        let notified = switched.elapsed();

        let off = p.http.send("DELETE", &url, None, &[]).await;
        assert_eq!(off.status, 200, "{}", off.text);
        stop.cancel();
        let _ = load.await;
        p.settle(Duration::from_secs(60)).await;
        let violations = p.invariant_violations(&[(item, stock)]).await;
        assert!(violations.is_empty(), "{}: {violations:?}", scenario.fault);
        let orders = p.all("/orders").await.len();
        rows.push(format!(
            "{:<30} {:<31} {:<19} fired after {:>5.1} s (for: {TEST_FOR} in the test), notified {:>5.1} s | {orders} orders, 0 violations",
            format!("{}={}", scenario.fault, scenario.value),
            scenario.alert,
            scenario.component,
            fired.as_secs_f64(),
            notified.as_secs_f64(),
        ));
    }
    let table = rows.join("\n");
    println!("{table}");
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/scenarios.txt");
    std::fs::write(out, format!("{table}\n")).expect("write target/scenarios.txt");
}

/// While a component is down, its latency and error-ratio alerts are inhibited: the
/// routing of monitoring/alertmanager.yml, on the real Alertmanager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pv_prometheus),
    ignore = "set PV_TEST_PROMETHEUS and PV_TEST_ALERTMANAGER to run the alert scenarios"
)]
async fn a_component_down_silences_its_own_latency_alert() {
    let p = Platform::start(Backend::Sqlite).await;
    let monitoring = Monitoring::start(&p.topology).await;
    let alert = |name: &str, severity: &str, component: &str| {
        json!({"labels": {"alertname": name, "severity": severity, "component": component},
               "annotations": {"summary": format!("{name} {component}")}})
    };
    let alerts = json!([
        alert("PedidosComponentDown", "critical", "estoque-service"),
        alert("PedidosHighLatencyP99", "warning", "estoque-service"),
        alert("PedidosHighLatencyP99", "warning", "pedidos-service"),
    ]);
    let posted = p
        .http
        .send(
            "POST",
            &format!("{}/api/v2/alerts", monitoring.alertmanager),
            Some(alerts),
            &[],
        )
        .await;
    assert_eq!(posted.status, 200, "{}", posted.text);
    let started = Instant::now();
    loop {
        let r = p
            .http
            .send(
                "GET",
                &format!("{}/api/v2/alerts", monitoring.alertmanager),
                None,
                &[],
            )
            .await;
        let list = r.body.as_array().cloned().unwrap_or_default();
        let state = |name: &str, component: &str| {
            list.iter()
                .find(|a| a["labels"]["alertname"] == name && a["labels"]["component"] == component)
                .map(|a| a["status"]["state"].as_str().unwrap_or("").to_owned())
        };
        let down = state("PedidosComponentDown", "estoque-service");
        let slow_down = state("PedidosHighLatencyP99", "estoque-service");
        let slow_up = state("PedidosHighLatencyP99", "pedidos-service");
        if down.as_deref() == Some("active") && slow_down.as_deref() == Some("suppressed") {
            assert_eq!(
                slow_up.as_deref(),
                Some("active"),
                "another component's alert stays active"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "not inhibited: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    monitoring
        .until_notified("oncall", "PedidosComponentDown", Duration::from_secs(20))
        .await;
}
