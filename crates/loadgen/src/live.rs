//! Live traffic: a low, steady stream of shoppers against a running platform, for
//! dashboards that move and alerts that can fire (`loadgen live`, the `traffic`
//! service of the compose stack). Not a benchmark: requests follow one another at
//! `rate` a second whatever their latency, and every answer is counted by kind and
//! status in a summary line printed every `report_every`.
//!
//! The mix, per request drawn: browsing (the list, a page, one item), orders of one or
//! several items (some beyond the stock, answered 409), idempotent retries of an order
//! with its key, cancels of a recent order, reads of one's orders, and a small share of
//! malformed requests (answered 4xx). Items that run low are restocked (with the
//! admin key, when the gateway has keys), so the shop never sells out.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::client::uri;
use crate::{http_client, HttpClient};

/// The catalogue created when the shop is empty.
const CATALOGUE: [(&str, f64); 12] = [
    ("Camiseta", 59.90),
    ("Calça jeans", 149.90),
    ("Tênis de corrida", 399.00),
    ("Boné", 39.90),
    ("Meias (3 pares)", 29.90),
    ("Jaqueta corta-vento", 249.00),
    ("Mochila", 189.90),
    ("Garrafa térmica", 79.90),
    ("Óculos de sol", 129.00),
    ("Relógio", 459.00),
    ("Cinto de couro", 89.90),
    ("Cachecol", 49.90),
];
/// Stock an item is brought back to when it runs low.
const RESTOCK_TO: i64 = 500;
const LOW_STOCK: i64 = 20;
/// Recent orders kept to cancel, read and retry.
const RECENT: usize = 64;

#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub base_url: String,
    /// Requests a second (0: the traffic is off and [`live`] returns at once).
    pub rate: f64,
    /// Admin key for creating and restocking items, when the gateway has keys.
    pub admin_key: Option<String>,
    /// Key for orders, when the gateway has keys (the admin key otherwise).
    pub client_key: Option<String>,
    pub report_every: Duration,
    pub request_timeout: Duration,
    pub seed: u64,
}

/// What one kind of request got back.
#[derive(Default)]
struct Tally {
    by_kind: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

impl Tally {
    fn count(&mut self, kind: &'static str, outcome: String) {
        *self
            .by_kind
            .entry(kind)
            .or_default()
            .entry(outcome)
            .or_default() += 1;
    }

    /// `browse=200:41 order=201:9,409:1 …`, then cleared.
    fn take_line(&mut self) -> String {
        let line = self
            .by_kind
            .iter()
            .map(|(kind, outcomes)| {
                let outcomes: Vec<String> =
                    outcomes.iter().map(|(o, n)| format!("{o}:{n}")).collect();
                format!("{kind}={}", outcomes.join(","))
            })
            .collect::<Vec<_>>()
            .join(" ");
        self.by_kind.clear();
        line
    }
}

struct Shop {
    client: HttpClient,
    config: LiveConfig,
    items: Vec<i64>,
    recent: VecDeque<(i64, String, Value)>,
    tally: Tally,
    orders: u64,
}

impl Shop {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value), String> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri(&self.config.base_url, path)?);
        if body.is_some() {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        if let Some(key) = key {
            req = req.header("x-api-key", key);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let bytes = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let req = req
            .body(http_body_util::Full::new(bytes))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
        };
        tokio::time::timeout(self.config.request_timeout, exchange)
            .await
            .map_err(|_| "timeout".to_owned())?
    }

    fn admin(&self) -> Option<&str> {
        self.config.admin_key.as_deref()
    }

    fn client_key(&self) -> Option<&str> {
        self.config.client_key.as_deref().or(self.admin())
    }

    /// The items on sale, creating the catalogue if the shop has none.
    async fn stock_the_shop(&mut self) -> Result<(), String> {
        let (status, list) = self
            .call(Method::GET, "/items?limit=1000", None, None, &[])
            .await?;
        if status != 200 {
            return Err(format!("GET /items answered {status}"));
        }
        self.items = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["id"].as_i64())
            .collect();
        if self.items.is_empty() {
            for (name, price) in CATALOGUE {
                let body = json!({"name": name, "quantity": RESTOCK_TO, "price": price});
                let admin = self.admin().map(str::to_owned);
                let (status, item) = self
                    .call(Method::POST, "/items", Some(body), admin.as_deref(), &[])
                    .await?;
                if status != 201 {
                    return Err(format!("POST /items answered {status}: {item}"));
                }
                self.items.extend(item["id"].as_i64());
            }
        }
        Ok(())
    }

    fn item(&self, rng: &mut SmallRng) -> i64 {
        self.items[rng.random_range(0..self.items.len())]
    }

    fn outcome(result: &Result<(u16, Value), String>) -> String {
        match result {
            Ok((status, _)) => status.to_string(),
            Err(err) if err == "timeout" => "timeout".to_owned(),
            Err(_) => "error".to_owned(),
        }
    }

    /// One request of the mix.
    async fn step(&mut self, rng: &mut SmallRng) {
        let draw: f64 = rng.random();
        let (kind, result) = if draw < 0.45 {
            let path = match rng.random_range(0..3) {
                0 => "/items".to_owned(),
                1 => format!("/items?limit=5&after={}", rng.random_range(0..8)),
                _ => format!("/items/{}", self.item(rng)),
            };
            (
                "browse",
                self.call(Method::GET, &path, None, None, &[]).await,
            )
        } else if draw < 0.70 {
            ("order", self.order(rng).await)
        } else if draw < 0.78 {
            ("retry", self.retry(rng).await)
        } else if draw < 0.86 {
            ("read_order", self.read_order(rng).await)
        } else if draw < 0.92 {
            ("cancel", self.cancel(rng).await)
        } else if draw < 0.96 {
            ("restock", self.restock(rng).await)
        } else {
            ("bad_request", self.bad_request(rng).await)
        };
        let outcome = Self::outcome(&result);
        self.tally.count(kind, outcome);
    }

    async fn order(&mut self, rng: &mut SmallRng) -> Result<(u16, Value), String> {
        let lines = if rng.random::<f64>() < 0.7 {
            1
        } else {
            rng.random_range(2..=4)
        };
        let mut items = Vec::new();
        for _ in 0..lines {
            // One order in twenty asks for more than any item holds: a 409.
            let quantity = if rng.random::<f64>() < 0.05 {
                10_000
            } else {
                rng.random_range(1..=3)
            };
            items.push(json!({"item_id": self.item(rng), "quantity": quantity}));
        }
        let method = ["credit_card", "debit_card", "pix", "boleto"][rng.random_range(0..4)];
        let customer = format!("cliente-{}", rng.random_range(1..=50));
        let body = json!({"customer": customer, "items": items, "payment_method": method});
        self.orders += 1;
        let key = format!("live-{}-{}", self.config.seed, self.orders);
        let client = self.client_key().map(str::to_owned);
        let result = self
            .call(
                Method::POST,
                "/orders",
                Some(body.clone()),
                client.as_deref(),
                &[("idempotency-key", &key)],
            )
            .await;
        if let Ok((201 | 202, answer)) = &result {
            if let Some(id) = answer["order"]["id"].as_i64() {
                self.recent.push_back((id, key, body));
                if self.recent.len() > RECENT {
                    self.recent.pop_front();
                }
            }
        }
        result
    }

    fn recent(&self, rng: &mut SmallRng) -> Option<(i64, String, Value)> {
        (!self.recent.is_empty())
            .then(|| self.recent[rng.random_range(0..self.recent.len())].clone())
    }

    /// The same order again with its key: the first answer, nothing charged twice.
    async fn retry(&mut self, rng: &mut SmallRng) -> Result<(u16, Value), String> {
        let Some((_, key, body)) = self.recent(rng) else {
            return self.order(rng).await;
        };
        let client = self.client_key().map(str::to_owned);
        self.call(
            Method::POST,
            "/orders",
            Some(body),
            client.as_deref(),
            &[("idempotency-key", &key)],
        )
        .await
    }

    async fn read_order(&mut self, rng: &mut SmallRng) -> Result<(u16, Value), String> {
        let Some((id, ..)) = self.recent(rng) else {
            return self.call(Method::GET, "/items", None, None, &[]).await;
        };
        let client = self.client_key().map(str::to_owned);
        self.call(
            Method::GET,
            &format!("/orders/{id}"),
            None,
            client.as_deref(),
            &[],
        )
        .await
    }

    async fn cancel(&mut self, rng: &mut SmallRng) -> Result<(u16, Value), String> {
        let Some((id, ..)) = self.recent(rng) else {
            return self.order(rng).await;
        };
        self.recent.retain(|(o, ..)| *o != id);
        let client = self.client_key().map(str::to_owned);
        self.call(
            Method::POST,
            &format!("/orders/{id}/cancel"),
            None,
            client.as_deref(),
            &[],
        )
        .await
    }

    /// Brings an item that runs low back to its stock.
    async fn restock(&mut self, rng: &mut SmallRng) -> Result<(u16, Value), String> {
        let id = self.item(rng);
        let (status, item) = self
            .call(Method::GET, &format!("/items/{id}"), None, None, &[])
            .await?;
        let quantity = item["quantity"].as_i64().unwrap_or(RESTOCK_TO);
        if status != 200 || quantity >= LOW_STOCK {
            return Ok((status, item));
        }
        let admin = self.admin().map(str::to_owned);
        self.call(
            Method::PATCH,
            &format!("/items/{id}"),
            Some(json!({"quantity": RESTOCK_TO})),
            admin.as_deref(),
            &[],
        )
        .await
    }

    async fn bad_request(&mut self, rng: &mut SmallRng) -> Result<(u16, Value), String> {
        let client = self.client_key().map(str::to_owned);
        let key = client.as_deref();
        match rng.random_range(0..4) {
            0 => {
                self.call(Method::GET, "/items/not-a-number", None, None, &[])
                    .await
            }
            1 => {
                let body = json!({"customer": "", "items": []});
                self.call(Method::POST, "/orders", Some(body), key, &[])
                    .await
            }
            2 => {
                let body =
                    json!({"customer": "x", "items": [{"item_id": 999_999_999, "quantity": 1}]});
                self.call(Method::POST, "/orders", Some(body), key, &[])
                    .await
            }
            _ => {
                let body = json!([{"item_id": 1}]);
                self.call(Method::POST, "/orders", Some(body), key, &[])
                    .await
            }
        }
    }
}

/// Waits until `base_url/readyz` answers 200, or `stop`.
async fn until_ready(client: &HttpClient, base_url: &str, stop: &CancellationToken) -> bool {
    let Ok(ready) = uri(base_url, "/readyz") else {
        return false;
    };
    loop {
        if let Ok((200, _)) = crate::send(client, Method::GET, ready.clone(), None).await {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = stop.cancelled() => return false,
        }
    }
}

/// Runs the traffic until `stop`; returns the requests sent. At rate 0 the traffic is
/// off: it waits for `stop` and sends nothing (a container with the traffic turned off
/// stays up, so `docker compose up --wait` does not see it exit).
pub async fn live(config: LiveConfig, stop: CancellationToken) -> Result<u64, String> {
    if config.rate <= 0.0 {
        println!("loadgen live: rate 0, traffic off");
        stop.cancelled().await;
        return Ok(0);
    }
    let client = http_client(8);
    if !until_ready(&client, &config.base_url, &stop).await {
        return Ok(0);
    }
    let shop = Arc::new(Mutex::new(Shop {
        client,
        config: config.clone(),
        items: Vec::new(),
        recent: VecDeque::new(),
        tally: Tally::default(),
        orders: 0,
    }));
    // The gateway may be up before its backends: try again until the catalogue loads.
    loop {
        match shop.lock().await.stock_the_shop().await {
            Ok(()) => break,
            Err(err) => eprintln!("loadgen live: waiting for the shop: {err}"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(2)) => {}
            () = stop.cancelled() => return Ok(0),
        }
    }
    println!(
        "loadgen live: {} req/s against {}, {} items",
        config.rate,
        config.base_url,
        shop.lock().await.items.len()
    );
    let mut rng = SmallRng::seed_from_u64(config.seed);
    let interval = Duration::from_secs_f64(1.0 / config.rate);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_report = Instant::now();
    let mut sent = 0u64;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = stop.cancelled() => break,
        }
        // One shopper at a time: at a few requests a second, latency never adds up.
        let mut shop = shop.lock().await;
        shop.step(&mut rng).await;
        sent += 1;
        if last_report.elapsed() >= config.report_every {
            println!("loadgen live: {}", shop.tally.take_line());
            last_report = Instant::now();
        }
    }
    Ok(sent)
}
