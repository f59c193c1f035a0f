//! The request logs as an operator reads them: one JSON access line per component a
//! request crosses, every field at the top level, and none for probes and scrapes at
//! the default level (the process as a user runs it, its standard output in a file).

use std::time::{Duration, Instant};

use serde_json::Value;

use pedidos_veloz::ComponentKind;

use crate::harness::{Backend, Mode, Options, Platform};

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn access_lines(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == "request")
        .collect()
}

#[tokio::test]
async fn access_lines_carry_the_request_and_probes_stay_out() {
    let p = Platform::start_in(Mode::AllInOne, Backend::Sqlite, Options::default()).await;
    for path in ["/readyz", "/livez", "/metrics"] {
        assert_eq!(p.get(path).await.status, 200, "{path}");
    }
    let request_id = "logs-test-0001";
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let items = p
        .http
        .send(
            "GET",
            &p.url("/items"),
            None,
            &[("x-request-id", request_id), ("traceparent", &traceparent)],
        )
        .await;
    assert_eq!(items.status, 200, "{}", items.text);

    // A worker thread's lines reach the file when it next goes idle (platform::log_writer):
    // wait for both components' lines.
    let path = p.log_dir().join("all-in-one.log");
    let started = Instant::now();
    let lines = loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<Value> = access_lines(&log)
            .into_iter()
            .filter(|l| l["request_id"] == request_id)
            .collect();
        if lines.len() >= 2 || started.elapsed() > Duration::from_secs(5) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut components: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["component"].as_str())
        .collect();
    components.sort_unstable();
    assert_eq!(
        components,
        ["api-gateway", "estoque-service"],
        "one access line per component: {lines:#?}"
    );
    for line in &lines {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["trace_id"], TRACE_ID, "the caller's trace: {line}");
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["route"], "/items", "{line}");
        assert_eq!(line["status"], 200, "{line}");
        assert!(line["latency_ms"].as_f64().is_some(), "{line}");
        assert!(line.get("span").is_none(), "no copy of the span: {line}");
    }

    let log = std::fs::read_to_string(&path).unwrap_or_default();
    let probes: Vec<Value> = access_lines(&log)
        .into_iter()
        .filter(|l| matches!(l["route"].as_str(), Some("/readyz" | "/livez" | "/metrics")))
        .collect();
    assert!(
        probes.is_empty(),
        "probes and scrapes are logged at debug: {probes:#?}"
    );
}

/// Lines are written in batches (platform::log_writer): a graceful stop right after a
/// burst of concurrent requests still leaves every answered request's lines in the file.
#[tokio::test]
async fn a_graceful_stop_writes_every_line_it_gathered() {
    let mut p = Platform::start_in(Mode::AllInOne, Backend::Sqlite, Options::default()).await;
    let http = p.http.clone();
    let url = p.url("/items");
    let requests: Vec<String> = (0..200).map(|i| format!("stop-burst-{i:04}")).collect();
    let mut burst = tokio::task::JoinSet::new();
    for chunk in requests.chunks(25) {
        let (http, url, ids) = (http.clone(), url.clone(), chunk.to_vec());
        burst.spawn(async move {
            for id in ids {
                let answer = http.send("GET", &url, None, &[("x-request-id", &id)]).await;
                assert_eq!(answer.status, 200, "{}", answer.text);
            }
        });
    }
    while let Some(done) = burst.join_next().await {
        done.expect("a request task");
    }
    p.stop(ComponentKind::Gateway).await;

    let log = std::fs::read_to_string(p.log_dir().join("all-in-one.log")).unwrap_or_default();
    let lines = access_lines(&log);
    for id in &requests {
        let components = lines
            .iter()
            .filter(|l| l["request_id"] == id.as_str())
            .count();
        assert_eq!(components, 2, "gateway's and estoque's lines of {id}");
    }
    assert!(
        log.lines().any(|l| l.contains("\"stopped\"")),
        "the last lines of the stop are there too"
    );
}
