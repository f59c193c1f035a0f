//! The recovery worker: finds pending orders whose lease has expired (a crash, an
//! outage, a timeout) and drives their saga again until they reach a final status.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::order::{claim, due, load, pending_stats};
use crate::{saga, AppState};

/// Orders driven at the same time by one worker.
const CONCURRENCY: usize = 16;
const BATCH: i64 = 200;

pub async fn run(app: AppState, stop: CancellationToken) {
    let interval = app.settings.recovery_interval();
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "recovery worker started"
    );
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(interval) => {}
        }
        if let Err(err) = sweep(&app, &limit, &stop).await {
            tracing::warn!(error = %err, "recovery sweep failed");
        }
        match pending_stats(&app).await {
            Ok((count, age)) => app.metrics.set_pending(count, age),
            Err(err) => tracing::debug!(error = %err, "pending stats failed"),
        }
    }
    tracing::info!("recovery worker stopped");
}

async fn sweep(
    app: &AppState,
    limit: &Arc<Semaphore>,
    stop: &CancellationToken,
) -> Result<(), platform::ApiError> {
    let ids = due(app, BATCH).await?;
    if ids.is_empty() {
        return Ok(());
    }
    tracing::info!(count = ids.len(), "recovering pending orders");
    let mut tasks = JoinSet::new();
    for id in ids {
        if stop.is_cancelled() {
            break;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            break;
        };
        let app = app.clone();
        tasks.spawn(async move {
            let _permit = permit;
            if let Err(err) = recover(&app, id).await {
                tracing::warn!(order_id = id, error = %err, "recovery attempt failed");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn recover(app: &AppState, id: i64) -> Result<(), platform::ApiError> {
    let lease = app.settings.lease();
    // Taken before the claim, so the runner's deadline never outlasts the lease it writes.
    let deadline = Instant::now() + lease;
    if !claim(app, id, lease).await? {
        return Ok(()); // another runner (request, replica, cancellation) has it
    }
    if let Some(record) = load(app, id).await? {
        // The order's original request id, so its whole history can be found in the logs.
        let span = tracing::info_span!("recovery", component = platform::names::PEDIDOS, order_id = id, request_id = %record.request_id);
        let record = saga::drive(app, record, deadline, true)
            .instrument(span.clone())
            .await?;
        span.in_scope(|| {
            tracing::info!(
                order_id = id,
                status = record.status().as_str(),
                "recovery attempt done"
            )
        });
    }
    Ok(())
}

/// How long to wait before the next attempt at an order tried `attempts` times.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let factor = 1u32 << attempts.clamp(0, 5);
    (base * factor).min(Duration::from_secs(30))
}
