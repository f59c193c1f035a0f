//! `loadgen alert-log`: the webhook receiver of the local Alertmanager. Each
//! notification it is sent (`POST /alerts/<receiver>`, Alertmanager's webhook JSON)
//! becomes one log line per alert, so that `docker compose logs -f alert-log` is the
//! alert feed; `GET /alerts` answers every notification received so far, as JSON.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Most notifications kept for `GET /alerts`.
const KEEP: usize = 1000;

/// One log line per alert of a notification.
pub fn lines(receiver: &str, notification: &Value) -> Vec<String> {
    notification["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|alert| {
            let label = |name: &str| alert["labels"][name].as_str().unwrap_or("-").to_owned();
            format!(
                "ALERT receiver={receiver} status={} alertname={} severity={} component={} summary={:?}",
                alert["status"].as_str().unwrap_or("-"),
                label("alertname"),
                label("severity"),
                label("component"),
                alert["annotations"]["summary"].as_str().unwrap_or(""),
            )
        })
        .collect()
}

type Store = Arc<Mutex<Vec<Value>>>;

async fn handle(
    store: Store,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req.into_body().collect().await?.to_bytes();
    let (status, answer) = match (method, path.strip_prefix("/alerts")) {
        (Method::POST, Some(rest)) => match serde_json::from_slice::<Value>(&body) {
            Ok(notification) => {
                let receiver = rest.trim_start_matches('/');
                let receiver = if receiver.is_empty() {
                    notification["receiver"].as_str().unwrap_or("-").to_owned()
                } else {
                    receiver.to_owned()
                };
                for line in lines(&receiver, &notification) {
                    println!("{line}");
                }
                if let Ok(mut kept) = store.lock() {
                    kept.push(
                        serde_json::json!({"receiver": receiver, "notification": notification}),
                    );
                    let over = kept.len().saturating_sub(KEEP);
                    kept.drain(..over);
                }
                (StatusCode::OK, Bytes::from_static(b"{}"))
            }
            Err(err) => (
                StatusCode::BAD_REQUEST,
                Bytes::from(serde_json::json!({"error": err.to_string()}).to_string()),
            ),
        },
        (Method::GET, Some("")) => {
            let kept = store.lock().map(|k| k.clone()).unwrap_or_default();
            (StatusCode::OK, Bytes::from(Value::Array(kept).to_string()))
        }
        _ => (
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"{\"error\":\"not found\"}"),
        ),
    };
    Ok(Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(answer))
        .unwrap_or_default())
}

/// Serves on `listen` until `stop`.
pub async fn serve(listen: SocketAddr, stop: CancellationToken) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("loadgen alert-log: listening on {listen}");
    let store: Store = Arc::default();
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(_) => continue,
            },
            () = stop.cancelled() => return Ok(()),
        };
        let store = store.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(store.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::lines;

    #[test]
    fn one_line_per_alert() {
        let notification = serde_json::json!({
            "receiver": "oncall", "status": "firing",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "PedidosComponentDown", "severity": "critical", "component": "estoque-service"},
                 "annotations": {"summary": "estoque-service is down"}},
                {"status": "resolved", "labels": {"alertname": "PedidosFaultActive", "severity": "info"}, "annotations": {}}
            ]
        });
        let got = lines("oncall", &notification);
        assert_eq!(
            got,
            [
                r#"ALERT receiver=oncall status=firing alertname=PedidosComponentDown severity=critical component=estoque-service summary="estoque-service is down""#,
                r#"ALERT receiver=oncall status=resolved alertname=PedidosFaultActive severity=info component=- summary="""#,
            ]
        );
    }
}
