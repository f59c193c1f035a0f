//! Turning SIGTERM / Ctrl-C into two steps: first readiness goes false (so load
//! balancers stop sending), then, after an optional delay, the servers stop accepting.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Tokens a process's components watch.
#[derive(Clone, Default)]
pub struct Shutdown {
    /// Cancelled when the signal arrives: `/readyz` answers 503 from then on.
    pub draining: CancellationToken,
    /// Cancelled when the servers must stop accepting and finish in-flight requests.
    pub stop: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts draining now and stops after `delay`.
    pub fn trigger(&self, delay: Duration) {
        self.draining.cancel();
        let stop = self.stop.clone();
        if delay.is_zero() {
            stop.cancel();
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                stop.cancel();
            });
        }
    }

    /// Waits for SIGTERM or Ctrl-C in the background and then triggers.
    pub fn listen_for_signals(&self, delay: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "shutdown signal received: draining"
            );
            this.trigger(delay);
        });
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
