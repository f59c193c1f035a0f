//! `loadgen otlp-sink`: an OTLP/HTTP endpoint that accepts every export and keeps
//! nothing but counts, so that a benchmark measures what exporting traces costs the
//! platform without a collector's own work on the same machine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Counts {
    pub exports: AtomicU64,
    pub bytes: AtomicU64,
}

/// Serves on `listen` until `stop`; returns what it received.
pub async fn serve(listen: SocketAddr, stop: CancellationToken) -> Result<Arc<Counts>, String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("loadgen otlp-sink: listening on {listen}");
    let counts = Arc::new(Counts::default());
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            () = stop.cancelled() => return Ok(counts),
        };
        let counts = counts.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let counts = counts.clone();
                    async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        counts.exports.fetch_add(1, Ordering::Relaxed);
                        counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                        Ok::<_, hyper::Error>(
                            Response::builder()
                                .status(StatusCode::OK)
                                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                                .body(Full::new(Bytes::new()))
                                .unwrap_or_default(),
                        )
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .await;
        });
    }
}
