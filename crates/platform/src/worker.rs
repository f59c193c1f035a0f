//! Background work that belongs to a component: the recovery worker, the metric
//! samplers, the group-commit workers.
//!
//! A component spawns them on its [`Workers`]. [`crate::server::serve`] stops them only
//! after the last in-flight request has been answered (a request never waits on a
//! worker that is gone), waits for them within the shutdown grace period, and only then
//! closes the database pools, so no worker's query is cut off by a closed pool.
//!
//! Two shapes of worker, no other: a periodic one ([`Workers::every`]), and a queue
//! consumer ([`crate::batch`]) that runs until its queue closes or the component stops.

use std::future::Future;
use std::time::Duration;

use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The background tasks of one component; cheap to clone.
#[derive(Clone, Default)]
pub struct Workers {
    tracker: TaskTracker,
    stop: CancellationToken,
}

impl Workers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns a task that watches [`Workers::stopping`] itself.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Runs `tick` at once and then every `interval` (a slow tick delays the next one,
    /// never piles them up) until the component stops; a tick in progress is finished.
    pub fn every<F, Fut>(&self, name: &'static str, interval: Duration, mut tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let stop = self.stop.clone();
        self.tracker.spawn(async move {
            tracing::debug!(
                worker = name,
                interval_ms = interval.as_millis() as u64,
                "worker started"
            );
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    _ = ticks.tick() => {}
                }
                tick().await;
            }
            tracing::debug!(worker = name, "worker stopped");
        });
    }

    /// Cancelled when the workers must stop: long ticks check it between steps.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Tells every worker to stop and waits at most `within` for them; false if some
    /// were still running then.
    pub async fn stop(&self, within: Duration) -> bool {
        self.stop.cancel();
        self.tracker.close();
        tokio::time::timeout(within, self.tracker.wait())
            .await
            .is_ok()
    }

    /// Workers still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    #[tokio::test]
    async fn stop_waits_for_the_tick_in_progress() {
        let workers = Workers::new();
        let ticks = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let (t, f) = (ticks.clone(), finished.clone());
        workers.every("test", Duration::from_millis(5), move || {
            let (t, f) = (t.clone(), f.clone());
            async move {
                t.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                f.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(workers.stop(Duration::from_secs(5)).await);
        assert!(workers.is_empty());
        // Every tick that started also finished: none was cut off.
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            finished.load(Ordering::SeqCst)
        );
        assert!(ticks.load(Ordering::SeqCst) >= 1);
    }

    #[tokio::test]
    async fn stop_gives_up_after_its_bound() {
        let workers = Workers::new();
        workers.spawn(std::future::pending());
        assert!(!workers.stop(Duration::from_millis(20)).await);
        assert_eq!(workers.len(), 1);
    }
}
