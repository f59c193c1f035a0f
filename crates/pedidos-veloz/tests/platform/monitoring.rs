//! A real Prometheus and a real Alertmanager for the tests (the binaries named by
//! `PV_TEST_PROMETHEUS` and `PV_TEST_ALERTMANAGER`, e.g. Debian's), configured from the
//! repository's own `monitoring/` files: the alert rules as written (only their `for:`
//! shortened, so a scenario takes seconds), Alertmanager's routes as written (only the
//! receivers' URL pointed at an in-test `loadgen alert-log`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::harness::Http;
use pedidos_veloz::{ComponentKind, Topology};

/// The `for:` every alert gets in the tests.
pub const TEST_FOR: &str = "3s";

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../monitoring")
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn binary(var: &str) -> String {
    match std::env::var(var) {
        Ok(path) if !path.is_empty() => path,
        _ => panic!("{var} is not set: these tests need it (the path of the binary)"),
    }
}

/// A child process killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus scraping the four components, with the repository's alert rules, and
/// Alertmanager with the repository's routes, notifying an in-test webhook receiver.
pub struct Monitoring {
    pub prometheus: String,
    pub alertmanager: String,
    pub alert_log: String,
    http: Http,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
    _daemons: Vec<Daemon>,
}

impl Drop for Monitoring {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Monitoring {
    pub async fn start(topology: &Topology) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let stop = CancellationToken::new();
        let http = Http::new();

        let alert_log = free_port();
        tokio::spawn(loadgen::alert_log::serve(alert_log, stop.clone()));

        let am_addr = free_port();
        let am_config = std::fs::read_to_string(monitoring_dir().join("alertmanager.yml"))
            .expect("alertmanager.yml")
            .replace("http://alert-log:9095", &format!("http://{alert_log}"))
            .lines()
            .map(|line| match line.trim_start() {
                l if l.starts_with("group_wait:") || l.starts_with("group_interval:") => {
                    let indent = &line[..line.len() - l.len()];
                    let key = l.split(':').next().unwrap_or_default();
                    format!("{indent}{key}: 1s")
                }
                _ => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.path().join("alertmanager.yml"), am_config).expect("write");
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).expect("log file");
        let alertmanager = Command::new(binary("PV_TEST_ALERTMANAGER"))
            .arg(format!(
                "--config.file={}",
                dir.path().join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am-data").display()
            ))
            .arg(format!("--web.listen-address={am_addr}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(log("alertmanager.log"))
            .spawn()
            .expect("start alertmanager");

        let rules = std::fs::read_to_string(monitoring_dir().join("alerts.yml"))
            .expect("alerts.yml")
            .lines()
            .map(|line| match line.trim_start().strip_prefix("for:") {
                Some(_) => format!(
                    "{}for: {TEST_FOR}",
                    &line[..line.len() - line.trim_start().len()]
                ),
                None => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.path().join("alerts.yml"), rules).expect("write");
        let job = |kind: ComponentKind| {
            format!(
                "  - job_name: {name}\n    static_configs:\n      - targets: [\"{addr}\"]\n        labels:\n          service: {name}\n",
                name = kind.name(),
                addr = topology.addr(kind)
            )
        };
        let prom_addr = free_port();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - alerts.yml\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"{am_addr}\"]\n\
             scrape_configs:\n{}",
            ComponentKind::ALL.into_iter().map(job).collect::<String>()
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("write");
        let prometheus = Command::new(binary("PV_TEST_PROMETHEUS"))
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={prom_addr}"))
            .arg("--enable-feature=exemplar-storage")
            .stdout(Stdio::null())
            .stderr(log("prometheus.log"))
            .spawn()
            .expect("start prometheus");

        let monitoring = Self {
            prometheus: format!("http://{prom_addr}"),
            alertmanager: format!("http://{am_addr}"),
            alert_log: format!("http://{alert_log}"),
            http,
            stop,
            _dir: dir,
            _daemons: vec![Daemon(alertmanager), Daemon(prometheus)],
        };
        for url in [
            format!("{}/-/ready", monitoring.prometheus),
            format!("{}/-/ready", monitoring.alertmanager),
        ] {
            let started = Instant::now();
            while monitoring.http.try_send("GET", &url).await != Ok(200) {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "{url} never ready"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        monitoring
    }

    async fn json(&self, url: &str) -> Value {
        let r = self.http.send("GET", url, None, &[]).await;
        assert_eq!(r.status, 200, "{url}: {}", r.text);
        r.body
    }

    /// The alerts firing in Prometheus, as (alertname, component) pairs.
    pub async fn firing(&self) -> Vec<(String, String)> {
        let body = self
            .json(&format!("{}/api/v1/alerts", self.prometheus))
            .await;
        body["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                    a["labels"]["component"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    /// Waits until `alertname` fires for `component` (any component when empty); the time it took.
    pub async fn until_firing(
        &self,
        alertname: &str,
        component: &str,
        within: Duration,
    ) -> Duration {
        let started = Instant::now();
        loop {
            let firing = self.firing().await;
            if firing
                .iter()
                .any(|(name, c)| name == alertname && (component.is_empty() || c == component))
            {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{alertname} ({component}) did not fire within {within:?}; firing: {firing:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until the webhook receiver was notified of `alertname` by `receiver`.
    pub async fn until_notified(&self, receiver: &str, alertname: &str, within: Duration) {
        let started = Instant::now();
        loop {
            let got = self.json(&format!("{}/alerts", self.alert_log)).await;
            let notified = got.as_array().into_iter().flatten().any(|n| {
                n["receiver"] == receiver
                    && n["notification"]["alerts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|a| a["labels"]["alertname"] == alertname && a["status"] == "firing")
            });
            if notified {
                return;
            }
            assert!(
                started.elapsed() < within,
                "Alertmanager did not notify {receiver} of {alertname} within {within:?}: {got}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// The trace ids of the exemplars Prometheus stored for `metric` in the last minute.
    pub async fn exemplar_trace_ids(&self, metric: &str) -> Vec<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let url = format!(
            "{}/api/v1/query_exemplars?query={}&start={}&end={}",
            self.prometheus,
            urlencode(metric),
            now - 120,
            now + 5
        );
        let body = self.json(&url).await;
        body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|series| series["exemplars"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e["labels"]["trace_id"].as_str().map(str::to_owned))
            .collect()
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
