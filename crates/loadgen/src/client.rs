//! The HTTP side of the load generator: one pooled keep-alive client, whole-answer
//! requests, and the set-up calls (seeding items, listing them).

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One pooled keep-alive HTTP/1.1 client. A connection idle for a second is not
/// reused, as the platform's own clients do: a server that drains closes its idle
/// connections, and reusing one at that instant would fail a request for nothing.
pub fn http_client(max_idle_per_host: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_keepalive(Some(Duration::from_secs(60)));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_idle_per_host.max(1))
        .pool_idle_timeout(Duration::from_secs(1))
        .build(connector)
}

pub(crate) fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

pub(crate) fn uri(base_url: &str, path: &str) -> Result<Uri, String> {
    format!("{}{}", base(base_url), path)
        .parse()
        .map_err(|e| format!("bad URL {base_url}{path}: {e}"))
}

/// Sends one request and reads its whole answer: the status and the body.
pub async fn send(
    client: &HttpClient,
    method: Method,
    uri: Uri,
    body: Option<Bytes>,
) -> Result<(u16, Bytes), String> {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header(http::header::CONTENT_TYPE, "application/json");
    }
    let req = req
        .body(Full::new(body.unwrap_or_default()))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, body))
}

/// Creates `count` items (`quantity` = `stock`, price 10.00) through `base_url` and
/// returns their ids. `api_key`, when the gateway has keys, must be an admin key.
pub async fn seed(
    base_url: &str,
    count: usize,
    stock: i64,
    api_key: Option<&str>,
) -> Result<Vec<i64>, String> {
    let client = http_client(8);
    let target = uri(base_url, "/items")?;
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let body = serde_json::json!({
            "name": format!("loadgen item {n}"),
            "description": "created by loadgen seed",
            "quantity": stock,
            "price": 10.0,
        });
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(target.clone())
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(key) = api_key {
            req = req.header("x-api-key", key);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status != 201 {
            return Err(format!(
                "POST /items answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        let item: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        let id = item["id"]
            .as_i64()
            .ok_or_else(|| format!("POST /items answered no id: {item}"))?;
        ids.push(id);
    }
    Ok(ids)
}

/// The ids of the first page of `GET /items`.
pub async fn list_item_ids(base_url: &str) -> Result<Vec<i64>, String> {
    let client = http_client(1);
    let (status, body) = send(&client, Method::GET, uri(base_url, "/items")?, None).await?;
    if status != 200 {
        return Err(format!("GET /items answered {status}"));
    }
    let value: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let list = match &value {
        serde_json::Value::Array(list) => list.clone(),
        other => other["items"].as_array().cloned().unwrap_or_default(),
    };
    Ok(list.iter().filter_map(|i| i["id"].as_i64()).collect())
}
