//! `loadgen`: load tests against Pedidos Veloz (see the library docs for the method).
//!
//! ```text
//! loadgen seed --url http://127.0.0.1:5000 --items 100 --stock 1000000
//! loadgen run  --url http://127.0.0.1:5000 --scenario order-hot --item 1 --concurrency 64 --duration 20s --json out.json
//! loadgen run  --scenario soak --items 1-100 --rate 500 --duration 5m --sample-rss 1234
//! loadgen live --url http://api-gateway:5000 --rate 5        # until SIGTERM
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use loadgen::{Config, Load, Report, Scenario};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "loadgen", version, about = "Load generator for Pedidos Veloz")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, Debug, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum ScenarioName {
    /// GET /items and GET /items/{id}.
    Browse,
    /// POST /orders of one hot item (--item).
    OrderHot,
    /// POST /orders spread over --items.
    OrderSpread,
    /// 90 % reads, 10 % orders over --items.
    Mixed,
    /// Mixed traffic under open load (--rate) for minutes.
    Soak,
    /// GET of the --path(s) only: raw read throughput.
    Get,
}

#[derive(Subcommand)]
enum Command {
    /// Create items through the gateway and print their ids (comma separated).
    Seed {
        #[arg(long, default_value = "http://127.0.0.1:5000")]
        url: String,
        /// How many items.
        #[arg(long, default_value_t = 100)]
        items: usize,
        /// Stock of each item.
        #[arg(long, default_value_t = 1_000_000)]
        stock: i64,
        /// Admin API key, when the gateway has keys.
        #[arg(long, env = "LOADGEN_API_KEY")]
        api_key: Option<String>,
        /// Also write the ids as a JSON array to this file.
        #[arg(long)]
        json: Option<String>,
    },
    /// Start a command and time it until `--url` answers 200 (polled every millisecond).
    /// Prints `<ms> <pid>`; the command is left running.
    Startup {
        /// Readiness URL, e.g. http://127.0.0.1:5000/readyz.
        #[arg(long)]
        url: String,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
        /// Where the command's stdout and stderr go.
        #[arg(long, default_value = "/dev/null")]
        log: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Live traffic until SIGTERM or Ctrl-C: a steady mix of shoppers (browsing, orders,
    /// retries, cancels, a few bad requests) for dashboards and alerts; prints a summary
    /// of the answers every --report-every.
    Live {
        #[arg(long, env = "TRAFFIC_TARGET", default_value = "http://127.0.0.1:5000")]
        url: String,
        /// Requests a second; 0 turns the traffic off (exits at once).
        #[arg(long, env = "TRAFFIC_RATE", default_value_t = 5.0)]
        rate: f64,
        /// Admin API key (items, restocks), when the gateway has keys.
        #[arg(long, env = "LOADGEN_API_KEY", hide_env_values = true)]
        api_key: Option<String>,
        /// Client API key (orders), when the gateway has keys; the admin key otherwise.
        #[arg(long, env = "LOADGEN_CLIENT_KEY", hide_env_values = true)]
        client_key: Option<String>,
        #[arg(long, env = "TRAFFIC_REPORT_EVERY", default_value = "30s", value_parser = parse_duration)]
        report_every: Duration,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
        /// Seed of the mix (and of the idempotency keys it makes).
        #[arg(long, env = "TRAFFIC_SEED")]
        seed: Option<u64>,
    },
    /// The local Alertmanager's webhook receiver: one log line per alert notified;
    /// `GET /alerts` lists what was received. Runs until SIGTERM or Ctrl-C.
    AlertLog {
        #[arg(long, env = "ALERT_LOG_LISTEN", default_value = "0.0.0.0:9095")]
        listen: std::net::SocketAddr,
    },
    /// An OTLP/HTTP endpoint that accepts every export and only counts them (for the
    /// benchmarks: the cost of exporting traces, without a collector's work).
    /// Prints what it received when stopped (SIGTERM or Ctrl-C).
    OtlpSink {
        #[arg(long, default_value = "127.0.0.1:4318")]
        listen: std::net::SocketAddr,
    },
    /// Run one load test, print a table and optionally write JSON.
    Run {
        #[arg(long, default_value = "http://127.0.0.1:5000")]
        url: String,
        #[arg(long, value_enum, default_value = "browse")]
        scenario: ScenarioName,
        /// The hot item of order-hot.
        #[arg(long)]
        item: Option<i64>,
        /// Items of order-spread / mixed / soak: `1,2,3` or `1-100`.
        #[arg(long)]
        items: Option<String>,
        /// Paths of the `get` scenario (repeatable).
        #[arg(long = "path", default_value = "/items")]
        paths: Vec<String>,
        /// Closed load: this many clients (ignored when --rate is given).
        #[arg(long, short = 'c', default_value_t = 16)]
        concurrency: usize,
        /// Open load: requests per second (latency from the scheduled time).
        #[arg(long)]
        rate: Option<f64>,
        /// Open load: most requests in flight at once.
        #[arg(long, default_value_t = 1024)]
        max_in_flight: usize,
        /// Measured time: `30s`, `5m`, `500ms` or seconds.
        #[arg(long, short = 'd', default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long, short = 'w', default_value = "2s", value_parser = parse_duration)]
        warmup: Duration,
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
        /// Write {label, config, report, rss_kb} as JSON to this file.
        #[arg(long)]
        json: Option<String>,
        /// A free-form label stored in the JSON.
        #[arg(long, default_value = "")]
        label: String,
        /// Sample this process's resident memory (VmRSS) once per `--rss-every`.
        #[arg(long)]
        sample_rss: Option<u32>,
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        rss_every: Duration,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {text} (ms, s, m, h)")),
    };
    if !(secs >= 0.0 && secs.is_finite()) {
        return Err(format!("not a duration: {text}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_ids(text: &str) -> Result<Vec<i64>, String> {
    let mut ids = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some((a, b)) = part.split_once('-') {
            let a: i64 = a
                .trim()
                .parse()
                .map_err(|_| format!("bad id range {part}"))?;
            let b: i64 = b
                .trim()
                .parse()
                .map_err(|_| format!("bad id range {part}"))?;
            ids.extend(a..=b);
        } else {
            ids.push(part.parse().map_err(|_| format!("bad id {part}"))?);
        }
    }
    Ok(ids)
}

/// SIGTERM (a container stopping) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("loadgen: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::OtlpSink { listen } => {
            let stop = CancellationToken::new();
            let on_signal = stop.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                on_signal.cancel();
            });
            let counts = loadgen::otlp_sink::serve(listen, stop).await?;
            println!(
                "loadgen otlp-sink: {} exports, {} bytes",
                counts.exports.load(std::sync::atomic::Ordering::Relaxed),
                counts.bytes.load(std::sync::atomic::Ordering::Relaxed)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::AlertLog { listen } => {
            let stop = CancellationToken::new();
            let on_signal = stop.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                on_signal.cancel();
            });
            loadgen::alert_log::serve(listen, stop).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Live {
            url,
            rate,
            api_key,
            client_key,
            report_every,
            timeout,
            seed,
        } => {
            if !(rate.is_finite() && rate >= 0.0) {
                return Err(format!("--rate must be a number >= 0, not {rate}"));
            }
            let stop = CancellationToken::new();
            let on_signal = stop.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                on_signal.cancel();
            });
            let seed = seed.unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs())
            });
            let config = loadgen::live::LiveConfig {
                base_url: url,
                rate,
                admin_key: api_key,
                client_key,
                report_every,
                request_timeout: timeout,
                seed,
            };
            let sent = loadgen::live::live(config, stop).await?;
            println!("loadgen live: stopped after {sent} requests");
            Ok(ExitCode::SUCCESS)
        }
        Command::Seed {
            url,
            items,
            stock,
            api_key,
            json,
        } => {
            let ids = loadgen::seed(&url, items, stock, api_key.as_deref()).await?;
            let text: Vec<String> = ids.iter().map(i64::to_string).collect();
            println!("{}", text.join(","));
            if let Some(path) = json {
                std::fs::write(
                    &path,
                    serde_json::to_string(&ids).map_err(|e| e.to_string())?,
                )
                .map_err(|e| format!("{path}: {e}"))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Startup {
            url,
            timeout,
            log,
            command,
        } => {
            let log_file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| format!("{log}: {e}"))?;
            let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
            let client = loadgen::http_client(1);
            let target: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
            let started = Instant::now();
            let child = std::process::Command::new(&command[0])
                .args(&command[1..])
                .stdin(std::process::Stdio::null())
                .stdout(log_file)
                .stderr(log_err)
                .spawn()
                .map_err(|e| format!("{}: {e}", command[0]))?;
            loop {
                let probe = tokio::time::timeout(
                    Duration::from_millis(200),
                    loadgen::send(&client, http::Method::GET, target.clone(), None),
                )
                .await;
                if let Ok(Ok((200, _))) = probe {
                    println!(
                        "{:.1} {}",
                        started.elapsed().as_secs_f64() * 1000.0,
                        child.id()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
                if started.elapsed() > timeout {
                    eprintln!("loadgen: {url} not ready after {timeout:?}");
                    println!("-1 {}", child.id());
                    return Ok(ExitCode::FAILURE);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Command::Run {
            url,
            scenario,
            item,
            items,
            paths,
            concurrency,
            rate,
            max_in_flight,
            duration,
            warmup,
            timeout,
            json,
            label,
            sample_rss,
            rss_every,
        } => {
            let ids = match &items {
                Some(text) => parse_ids(text)?,
                None => vec![],
            };
            let need_ids = || {
                if ids.is_empty() {
                    Err(format!("{scenario:?} needs --items"))
                } else {
                    Ok(ids.clone())
                }
            };
            let model = match scenario {
                ScenarioName::Browse | ScenarioName::Get => Scenario::Browse,
                ScenarioName::OrderHot => Scenario::OrderHot {
                    item_id: item
                        .or(ids.first().copied())
                        .ok_or("order-hot needs --item")?,
                },
                ScenarioName::OrderSpread => Scenario::OrderSpread {
                    item_ids: need_ids()?,
                },
                ScenarioName::Mixed | ScenarioName::Soak => Scenario::Mixed {
                    item_ids: need_ids()?,
                },
            };
            let rate = match (scenario, rate) {
                (ScenarioName::Soak, None) => Some(500.0),
                (_, rate) => rate,
            };
            let load = match rate {
                Some(rate_per_s) => Load::Open {
                    rate_per_s,
                    max_in_flight,
                },
                None => Load::Closed { concurrency },
            };
            let config = Config {
                base_url: url.clone(),
                scenario: model,
                load: load.clone(),
                duration,
                warmup,
                request_timeout: timeout,
            };
            let stop = CancellationToken::new();
            {
                let stop = stop.clone();
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        stop.cancel();
                    }
                });
            }
            let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(f64, u64)>::new()));
            let sampler = sample_rss.map(|pid| {
                let samples = samples.clone();
                let started = Instant::now();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(rss_every);
                    loop {
                        tick.tick().await;
                        if let Some(kb) = rss_kb(pid) {
                            if let Ok(mut s) = samples.lock() {
                                s.push((started.elapsed().as_secs_f64(), kb));
                            }
                        }
                    }
                })
            });
            let report: Report = match scenario {
                ScenarioName::Get => loadgen::run_get(config, &paths, stop).await,
                _ => loadgen::run(config, stop).await,
            };
            if let Some(sampler) = sampler {
                sampler.abort();
                if let (Some(pid), Ok(mut s)) = (sample_rss, samples.lock()) {
                    if let Some(kb) = rss_kb(pid) {
                        s.push((-1.0, kb));
                    }
                }
            }
            let load_text = match load {
                Load::Closed { concurrency } => format!("closed, {concurrency} clients"),
                Load::Open {
                    rate_per_s,
                    max_in_flight,
                } => {
                    format!("open, {rate_per_s}/s, at most {max_in_flight} in flight")
                }
            };
            println!(
                "loadgen {label} {scenario:?} against {url} ({load_text}, {:.0} s + {:.0} s warm-up)",
                duration.as_secs_f64(),
                warmup.as_secs_f64()
            );
            print!("{}", report.table());
            let rss: Vec<(f64, u64)> = samples.lock().map(|s| s.clone()).unwrap_or_default();
            if let Some(last) = rss.last() {
                println!(
                    "  rss         {:>12} kB (last of {} samples)",
                    last.1,
                    rss.len()
                );
            }
            if let Some(path) = json {
                let out = serde_json::json!({
                    "label": label,
                    "url": url,
                    "scenario": scenario,
                    "load": load_text,
                    "concurrency": if rate.is_none() { Some(concurrency) } else { None },
                    "rate_per_s": rate,
                    "duration_s": duration.as_secs_f64(),
                    "warmup_s": warmup.as_secs_f64(),
                    "report": report,
                    "rss_kb": rss,
                });
                std::fs::write(
                    &path,
                    serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?,
                )
                .map_err(|e| format!("{path}: {e}"))?;
            }
            Ok(if report.answered() == 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ids() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("x").is_err());
        assert_eq!(parse_ids("1-3,7").unwrap(), vec![1, 2, 3, 7]);
    }
}
