//! Group commit: requests that arrive while a batch is being written wait in a queue,
//! and each worker takes all that are waiting (up to a maximum) and applies them in one
//! database round of its own making, then answers each. With one request in flight a
//! batch is that one request, so nothing waits for a batch to fill; under load, the
//! per-transaction costs (a commit's log flush, a hot row's lock) are paid once per batch.

use std::future::Future;
use std::sync::Arc;

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, oneshot, Mutex};

use crate::worker::Workers;
use crate::ApiError;

/// Requests waiting for a batch; beyond it, callers wait to enqueue (back-pressure).
const QUEUE: usize = 1024;

struct Job<Req, Out> {
    request: Req,
    reply: oneshot::Sender<Result<Out, ApiError>>,
}

/// The entry point of one kind of batch; cheap to clone. Its workers stop when the
/// last clone is dropped or the component stops.
pub struct Batches<Req, Out> {
    queue: mpsc::Sender<Job<Req, Out>>,
    service: &'static str,
}

impl<Req, Out> Clone for Batches<Req, Out> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            service: self.service,
        }
    }
}

impl<Req: Send + 'static, Out: Send + 'static> Batches<Req, Out> {
    /// Starts `concurrency` tasks on the component's `workers` that each take up to
    /// `max` waiting requests, run them with `run` (which answers one outcome per
    /// request, in order) and record the batch's size in `sizes`. `service` names the
    /// component in a 503 if the workers are gone. Needs a Tokio runtime.
    pub fn start<F, Fut>(
        workers: &Workers,
        service: &'static str,
        concurrency: usize,
        max: usize,
        sizes: Histogram,
        run: F,
    ) -> Self
    where
        F: Fn(Vec<Req>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Out>, ApiError>> + Send,
    {
        let (queue, waiting) = mpsc::channel::<Job<Req, Out>>(QUEUE);
        let waiting = Arc::new(Mutex::new(waiting));
        for _ in 0..concurrency.max(1) {
            let waiting = waiting.clone();
            let (run, sizes) = (run.clone(), sizes.clone());
            let stop = workers.stopping();
            workers.spawn(async move {
                loop {
                    let jobs = {
                        let mut waiting = waiting.lock().await;
                        // A batch in progress is finished; only the wait for the next one stops.
                        let first = tokio::select! {
                            first = waiting.recv() => first,
                            () = stop.cancelled() => None,
                        };
                        let Some(first) = first else {
                            return;
                        };
                        let mut jobs = vec![first];
                        while jobs.len() < max {
                            match waiting.try_recv() {
                                Ok(job) => jobs.push(job),
                                Err(_) => break,
                            }
                        }
                        jobs
                    };
                    sizes.observe(jobs.len() as f64);
                    let (requests, replies): (Vec<Req>, Vec<_>) =
                        jobs.into_iter().map(|job| (job.request, job.reply)).unzip();
                    match run(requests).await {
                        Ok(outcomes) => {
                            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                                let _ = reply.send(Ok(outcome));
                            }
                        }
                        Err(err) => {
                            for reply in replies {
                                let _ = reply.send(Err(err.clone()));
                            }
                        }
                    }
                }
            });
        }
        Self { queue, service }
    }

    /// Queues one request and waits for its outcome.
    pub async fn submit(&self, request: Req) -> Result<Out, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job { request, reply })
            .await
            .map_err(|_| ApiError::unavailable(self.service))?;
        answer
            .await
            .map_err(|_| ApiError::unavailable(self.service))?
    }
}
