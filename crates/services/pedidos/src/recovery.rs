//! The recovery worker: finds pending orders whose lease has expired (a crash, an
//! outage, a timeout) and drives their saga again until they reach a final status.

use std::sync::Arc;
use std::time::Instant;

use platform::worker::Workers;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::order::{lease, store};
use crate::saga;
use crate::state::AppState;

/// Orders driven at the same time by one worker.
const CONCURRENCY: usize = 16;
/// Most orders taken in one sweep.
const BATCH: i64 = 200;

/// Starts the worker on the component's `workers`: a sweep every recovery interval,
/// then the pending-orders gauges.
pub fn start(workers: &Workers, app: AppState) {
    let interval = app.settings.recovery_interval();
    let stop = workers.stopping();
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        "recovery worker started"
    );
    workers.every("recovery", interval, move || {
        let (app, limit, stop) = (app.clone(), limit.clone(), stop.clone());
        async move {
            if let Err(err) = sweep(&app, &limit, &stop).await {
                tracing::warn!(error = %err, "recovery sweep failed");
            }
            match lease::pending_stats(&app.db).await {
                Ok((count, age)) => app.metrics.set_pending(count, age),
                Err(err) => tracing::debug!(error = %err, "pending stats failed"),
            }
        }
    });
}

async fn sweep(
    app: &AppState,
    limit: &Arc<Semaphore>,
    stop: &CancellationToken,
) -> Result<(), platform::ApiError> {
    let ids = lease::due(&app.db, BATCH).await?;
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
    if !lease::claim(&app.db, id, lease).await? {
        return Ok(()); // another runner (request, replica, cancellation) has it
    }
    if let Some(record) = store::load(&app.db, id).await? {
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
