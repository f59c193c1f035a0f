//! `pedidos-veloz`: the one binary of the platform.
//!
//! With no subcommand it runs all four components in one process (ports 5000-5003,
//! SQLite files under `./data`); a subcommand runs one component, applies the
//! migrations, or checks a running component's health.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use pedidos_veloz::cli::{database_url, Cli, Command, ServiceArgs};
use pedidos_veloz::{listen, open_db, serve_all, start_all, Common, ComponentKind};
use platform::shutdown::Shutdown;
use platform::telemetry;

// glibc's malloc and free took ~16 % of the process's CPU samples under load (perf,
// docs/performance.md); mimalloc's per-thread free lists suit the many small,
// short-lived allocations of requests.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url, port }) = &cli.command {
        let url = url
            .clone()
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}/readyz"));
        return healthcheck(&url);
    }
    // Log lines are written once per batch a worker thread gathers (platform::log_writer).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(platform::log_writer::on_park)
        .on_thread_stop(platform::log_writer::flush)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let process = cli
        .command
        .as_ref()
        .and_then(Command::component)
        .map_or("pedidos-veloz", ComponentKind::name);
    // The batch exporter is started inside the runtime.
    let telemetry = runtime
        .block_on(async { telemetry::init(cli.common.log_format, &cli.common.log_level, process) });
    let code = match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "exiting with an error");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let common = cli.common.common();
    let data_dir = cli.common.data_dir.clone();
    let shutdown = Shutdown::new();
    shutdown.listen_for_signals(common.shutdown_delay);

    let (kind, service, component) = match cli.command {
        None => {
            let running = start_all(cli.all.into_config(&data_dir), &common, shutdown).await?;
            tracing::info!(gateway = %running.topology.gateway, "Pedidos Veloz is up: all four components in one process");
            return running.task.await.context("the platform task failed")?;
        }
        Some(Command::Migrate {
            service,
            database_url: url,
            estoque_database_url,
            pagamentos_database_url,
            pedidos_database_url,
        }) => {
            let targets = match service {
                Some(kind) => vec![(kind, database_url(kind, url, &data_dir))],
                None => vec![
                    (ComponentKind::Estoque, estoque_database_url.or(url.clone())),
                    (
                        ComponentKind::Pagamentos,
                        pagamentos_database_url.or(url.clone()),
                    ),
                    (ComponentKind::Pedidos, pedidos_database_url.or(url)),
                ]
                .into_iter()
                .map(|(kind, url)| (kind, database_url(kind, url, &data_dir)))
                .collect(),
            };
            for (kind, url) in targets {
                let db = open_db(kind, &url, &common, true).await?;
                db.close().await;
            }
            return Ok(());
        }
        Some(Command::Healthcheck { .. }) => return Ok(()),
        Some(Command::Traffic {
            url,
            rate,
            admin_key,
            client_key,
            report_seconds,
        }) => {
            if !(rate.is_finite() && rate >= 0.0) {
                anyhow::bail!("TRAFFIC_RATE must be a number >= 0, not {rate}");
            }
            let config = loadgen::live::LiveConfig {
                base_url: url,
                rate,
                admin_key,
                client_key,
                report_every: Duration::from_secs(report_seconds.max(1)),
                request_timeout: Duration::from_secs(5),
                seed: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            };
            let sent = loadgen::live::live(config, shutdown.stop.clone())
                .await
                .map_err(anyhow::Error::msg)?;
            tracing::info!(sent, "traffic stopped");
            return Ok(());
        }
        Some(Command::AlertLog { listen }) => {
            return loadgen::alert_log::serve(listen, shutdown.stop.clone())
                .await
                .map_err(anyhow::Error::msg);
        }
        Some(Command::Gateway {
            service,
            upstreams,
            mut settings,
            identity,
        }) => {
            settings.identity_secret = identity.key();
            let component = gateway::build(
                &settings,
                &upstreams,
                pedidos_veloz::public_api(),
                common.faults_enabled,
            )
            .map_err(anyhow::Error::msg)?;
            (ComponentKind::Gateway, service, component)
        }
        Some(Command::Orders {
            service,
            upstreams,
            mut settings,
            identity,
        }) => {
            settings.identity_secret = identity.key();
            let db = service_db(ComponentKind::Pedidos, &service, &data_dir, &common).await?;
            let component = pedidos::build(
                db,
                &settings,
                &upstreams,
                common.faults(ComponentKind::Pedidos),
            )
            .map_err(anyhow::Error::msg)?;
            (ComponentKind::Pedidos, service, component)
        }
        Some(Command::Payments { service, settings }) => {
            let db = service_db(ComponentKind::Pagamentos, &service, &data_dir, &common).await?;
            let component =
                pagamentos::build(db, &settings, common.faults(ComponentKind::Pagamentos));
            (ComponentKind::Pagamentos, service, component)
        }
        Some(Command::Inventory { service }) => {
            let db = service_db(ComponentKind::Estoque, &service, &data_dir, &common).await?;
            (
                ComponentKind::Estoque,
                service,
                estoque::build(db, common.faults(ComponentKind::Estoque)),
            )
        }
    };
    let port = service.port.unwrap_or_else(|| kind.default_port());
    let addr = std::net::SocketAddr::new(common.bind, port);
    let listener = listen(kind, addr, "PORT (--port)").await?;
    serve_all(vec![(component, listener)], shutdown, common.grace).await
}

/// Opens (and, unless disabled, migrates) one service's database: the URL given, or SQLite under the data dir.
async fn service_db(
    kind: ComponentKind,
    service: &ServiceArgs,
    data_dir: &std::path::Path,
    common: &Common,
) -> anyhow::Result<platform::db::Db> {
    let url = database_url(kind, service.database_url.clone(), data_dir);
    open_db(kind, &url, common, common.migrate_on_start).await
}

/// A tiny HTTP GET without a runtime-wide client: the distroless image has no curl.
fn healthcheck(url: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(_) => return ExitCode::FAILURE,
    };
    let answer = runtime.block_on(platform::client::get_url(url, Duration::from_secs(3)));
    match answer {
        Ok(answer) if answer.status.is_success() => ExitCode::SUCCESS,
        Ok(answer) => {
            eprintln!("{url} answered {}", answer.status);
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("{url}: {err}");
            ExitCode::FAILURE
        }
    }
}
