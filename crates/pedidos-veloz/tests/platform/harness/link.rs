//! A TCP relay that a test can slow down: it listens on one address and copies every
//! connection to an upstream, holding each chunk of data for a random delay within
//! the link's current range, in both directions (what toxiproxy's latency toxic does;
//! this kernel has no netem). With no delay set it is a plain relay: how processes in
//! the test hosts reach PostgreSQL on this machine's loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

pub struct Link {
    addr: SocketAddr,
    delay: Arc<Delay>,
    stop: CancellationToken,
}

/// The delay range of a link, in milliseconds (0..0: none).
#[derive(Default)]
struct Delay {
    min_ms: AtomicU64,
    max_ms: AtomicU64,
}

impl Delay {
    fn sample(&self) -> Duration {
        let min = self.min_ms.load(Ordering::Relaxed);
        let max = self.max_ms.load(Ordering::Relaxed).max(min);
        if max == 0 {
            return Duration::ZERO;
        }
        Duration::from_millis(rand::rng().random_range(min..=max))
    }
}

impl Link {
    /// Listens on `bind` (port 0: any free one) and relays to `upstream`.
    pub async fn start(bind: SocketAddr, upstream: SocketAddr) -> Link {
        let listener = TcpListener::bind(bind).await.expect("bind a link");
        let addr = listener.local_addr().expect("link address");
        let delay = Arc::new(Delay::default());
        let stop = CancellationToken::new();
        let (d, s) = (delay.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = s.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                let (d, s) = (d.clone(), s.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return; // the client sees its connection closed
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        _ = s.cancelled() => {}
                        _ = async {
                            tokio::join!(
                                pump(client_read, server_write, &d),
                                pump(server_read, client_write, &d)
                            )
                        } => {}
                    }
                });
            }
        });
        Link { addr, delay, stop }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Holds every chunk, from now on, for a uniform random time in `min..=max`.
    pub fn set_delay(&self, min: Duration, max: Duration) {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        self.delay.min_ms.store(ms(min), Ordering::Relaxed);
        self.delay.max_ms.store(ms(max), Ordering::Relaxed);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Copies one direction, each chunk after the link's delay; passes the end of the
/// stream on as a half-close.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: &Delay) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let wait = delay.sample();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
