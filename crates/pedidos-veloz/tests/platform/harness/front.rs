//! A connection balancer in front of several gateways, as a Kubernetes Service's
//! kube-proxy is: it probes every backend's `/readyz` and sends each new client
//! connection to the next ready one, then copies bytes both ways until either side
//! closes. A connection stays on its backend for its whole life; only new ones
//! follow readiness. A backend that refuses the connection is skipped for that
//! connection (kube-proxy in IPVS mode does the same on a refused SYN).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use super::Http;

/// How often each backend's readiness is read: far below the drain delay the tests
/// give (`SHUTDOWN_DELAY_MS`), as an operator sets the readiness probe's period.
const PROBE_EVERY: Duration = Duration::from_millis(50);

pub struct Front {
    addr: SocketAddr,
    backends: Arc<Backends>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Backends {
    addrs: Vec<SocketAddr>,
    ready: Mutex<Vec<bool>>,
    next: AtomicUsize,
}

impl Backends {
    /// The ready backends, starting with the next in turn.
    fn in_turn(&self) -> Vec<SocketAddr> {
        let ready = self.ready.lock().map(|r| r.clone()).unwrap_or_default();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.addrs.len())
            .map(|n| (start + n) % self.addrs.len())
            .filter(|&i| ready.get(i).copied().unwrap_or(false))
            .map(|i| self.addrs[i])
            .collect()
    }
}

impl Front {
    /// Listens on a new port of `bind`'s address and balances over `backends`.
    pub async fn start(bind: SocketAddr, backends: Vec<SocketAddr>) -> Front {
        let listener = TcpListener::bind(bind).await.expect("bind the front");
        let addr = listener.local_addr().expect("front address");
        let backends = Arc::new(Backends {
            ready: Mutex::new(vec![false; backends.len()]),
            addrs: backends,
            next: AtomicUsize::new(0),
        });
        let probe = tokio::spawn(probe(backends.clone()));
        let accepting = backends.clone();
        let accept = tokio::spawn(async move {
            let backends = accepting;
            while let Ok((client, _)) = listener.accept().await {
                let backends = backends.clone();
                tokio::spawn(async move {
                    let _ = client.set_nodelay(true);
                    for backend in backends.in_turn() {
                        let connect = tokio::time::timeout(
                            Duration::from_secs(1),
                            TcpStream::connect(backend),
                        );
                        if let Ok(Ok(mut upstream)) = connect.await {
                            let _ = upstream.set_nodelay(true);
                            let mut client = client;
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            return;
                        }
                    }
                    // No ready backend: the client's connection is closed unanswered.
                });
            }
        });
        Front {
            addr,
            backends,
            tasks: vec![probe, accept],
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until a probe has found a backend ready: before it, the front closes every
    /// connection unanswered (as a Service with no ready endpoint does).
    pub async fn until_a_backend_is_ready(&self, within: Duration) {
        let started = std::time::Instant::now();
        while !self
            .backends
            .ready
            .lock()
            .is_ok_and(|ready| ready.iter().any(|&r| r))
        {
            assert!(
                started.elapsed() < within,
                "no gateway behind the front became ready in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn probe(backends: Arc<Backends>) {
    loop {
        for (i, addr) in backends.addrs.iter().enumerate() {
            // A new connection per probe: a pooled one would outlive a stopped listener.
            let answer = tokio::time::timeout(
                Duration::from_millis(500),
                Http::new().try_send("GET", &format!("http://{addr}/readyz")),
            )
            .await;
            let ready = matches!(answer, Ok(Ok(200)));
            if let Ok(mut states) = backends.ready.lock() {
                states[i] = ready;
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
