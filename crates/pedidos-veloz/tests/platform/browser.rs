//! The web console in a real browser: headless Chromium driven over WebDriver
//! (chromedriver) against the running platform, as a shopper and an operator use it.
//! Each test saves a screenshot under `target/screenshots/`.
//!
//! They need Chromium and chromedriver: build the tests with `PV_TEST_CHROMEDRIVER` set
//! (the chromedriver binary; build.rs turns on `cfg(pv_browser)`), else they are
//! reported as ignored. `PV_TEST_CHROMIUM` names the browser (default /usr/bin/chromium).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::harness::{sha256_hex, Backend, Options, Platform};

/// A chromedriver process and a headless Chromium session driven through it.
struct Browser {
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Self {
        let chromedriver = std::env::var("PV_TEST_CHROMEDRIVER")
            .ok()
            .or_else(|| option_env!("PV_TEST_CHROMEDRIVER").map(str::to_owned))
            .expect("PV_TEST_CHROMEDRIVER: the chromedriver binary");
        let chromium =
            std::env::var("PV_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {chromedriver}: {e}"));
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1280,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            json!({"binary": chromium, "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(err) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = err;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(err) => panic!("no WebDriver session from {chromedriver}: {err}"),
            }
        };
        Self {
            client,
            driver,
            _profile: profile,
        }
    }

    async fn css(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(selector))
            .await
            .unwrap_or_else(|e| panic!("no element {selector}: {e}"))
    }

    async fn click(&self, selector: &str) {
        self.css(selector)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {selector}: {e}"));
    }

    async fn type_into(&self, selector: &str, text: &str) {
        let field = self.css(selector).await;
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Waits until the element's text contains `wanted`; returns the text.
    async fn wait_text(&self, selector: &str, wanted: &str) -> String {
        let started = Instant::now();
        loop {
            let text = match self.client.find(Locator::Css(selector)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(wanted) {
                return text;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{selector} never showed {wanted:?}; it shows {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Saves the page as target/screenshots/<name>.png.
    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn sign_in(&self, credential: &str) {
        self.type_into("#credential", credential).await;
        self.click("#sign-in button[type=submit]").await;
        self.wait_text("#who", "Signed in as").await;
    }

    async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn lines(body: &Value) -> usize {
    body.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pv_browser),
    ignore = "set PV_TEST_CHROMEDRIVER to run the browser tests"
)]
async fn a_customer_orders_and_sees_it_paid() {
    let p = Platform::start(Backend::Sqlite).await;
    let item = p.item("Camiseta", 50, 59.9).await;
    p.item("Caneca", 12, 25.0).await;
    let b = Browser::start().await;
    b.client.goto(&p.url("/")).await.expect("open /");
    // A browser asking for `/` lands on the console.
    b.wait_text("h1", "Pedidos Veloz").await;
    b.wait_text("#mode", "Open mode").await;
    b.wait_text(&format!("tr[data-item-id='{item}'] .stock"), "50")
        .await;
    b.type_into(&format!("#qty-{item}"), "2").await;
    b.click(&format!("tr[data-item-id='{item}'] button.add"))
        .await;
    b.wait_text("#cart", "2 × Camiseta").await;
    b.wait_text("#cart-total", "119.80").await;
    b.type_into("#customer-name", "João Silva").await;
    b.click("#place-order").await;
    let outcome = b.wait_text("#outcome", "Paid").await;
    assert!(outcome.contains("119.80"), "{outcome}");
    b.wait_text(&format!("tr[data-item-id='{item}'] .stock"), "48")
        .await;
    b.screenshot("shop-order-paid").await;
    b.click("nav button[data-view=orders]").await;
    b.wait_text("#my-orders tbody", "paid").await;
    b.screenshot("my-orders").await;
    assert_eq!(p.stock(item).await, (48, 0, 2));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pv_browser),
    ignore = "set PV_TEST_CHROMEDRIVER to run the browser tests"
)]
async fn an_order_beyond_stock_shows_the_stock_error_and_changes_nothing() {
    let p = Platform::start(Backend::Sqlite).await;
    let item = p.item("Vaso raro", 3, 80.0).await;
    let b = Browser::start().await;
    b.client.goto(&p.url("/console")).await.expect("open");
    b.type_into(&format!("#qty-{item}"), "5").await;
    b.click(&format!("tr[data-item-id='{item}'] button.add"))
        .await;
    b.type_into("#customer-name", "Lia").await;
    b.click("#place-order").await;
    let message = format!("insufficient stock for item {item}: 3 available, 5 requested");
    b.wait_text("#outcome", &message).await;
    b.wait_text("#error", &message).await;
    b.screenshot("shop-insufficient-stock").await;
    assert_eq!(p.stock(item).await, (3, 0, 0), "nothing held or sold");
    assert_eq!(lines(&p.get("/payments").await.body), 0, "nothing charged");
    let orders = p.get("/orders").await.body;
    assert!(
        orders
            .as_array()
            .is_some_and(|o| o.iter().all(|o| o["status"] == "rejected")),
        "{orders}"
    );
    b.close().await;
}

fn keys() -> String {
    format!(
        "admin:{},client:{}:Ana,client:{}:Bia",
        sha256_hex("console-admin"),
        sha256_hex("console-ana"),
        sha256_hex("console-bia")
    )
}

async fn order_as(p: &Platform, key: &str, customer: &str, item: i64) -> i64 {
    let r = p
        .http
        .send(
            "POST",
            &p.url("/orders"),
            Some(json!({"customer": customer, "items": [{"item_id": item, "quantity": 1}]})),
            &[("x-api-key", key)],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["order"]["id"].as_i64().expect("order id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pv_browser),
    ignore = "set PV_TEST_CHROMEDRIVER to run the browser tests"
)]
async fn a_customer_cannot_see_another_customers_orders() {
    let options = Options {
        api_keys: Some(keys()),
        ..Default::default()
    };
    let p = Platform::start_with(Backend::Sqlite, options).await;
    let created = p
        .http
        .send(
            "POST",
            &p.url("/items"),
            Some(json!({"name": "Livro", "quantity": 20, "price": 42})),
            &[("x-api-key", "console-admin")],
        )
        .await;
    let item = created.body["id"].as_i64().expect("item");
    let bia_order = order_as(&p, "console-bia", "Bia", item).await;
    let ana_order = order_as(&p, "console-ana", "Ana", item).await;
    let b = Browser::start().await;
    b.client.goto(&p.url("/console")).await.expect("open");
    b.wait_text("#who", "Not signed in").await;
    b.sign_in("console-ana").await;
    b.wait_text("#who", "customer (Ana)").await;
    b.click("nav button[data-view=orders]").await;
    let mine = b
        .wait_text("#my-orders tbody", &format!("#{ana_order}"))
        .await;
    assert!(
        !mine.contains(&format!("#{bia_order}")),
        "Bia's order shown to Ana: {mine}"
    );
    let operator_hidden = b
        .css("#operator-tab")
        .await
        .attr("hidden")
        .await
        .expect("attr");
    assert!(operator_hidden.is_some(), "a customer has no operator view");
    b.screenshot("customer-own-orders").await;
    // Ordering under another's name is refused, with the API's message.
    b.click("nav button[data-view=shop]").await;
    let readonly = b
        .css("#customer-name")
        .await
        .attr("readonly")
        .await
        .expect("attr");
    assert!(
        readonly.is_some(),
        "a signed-in customer's name comes from the identity"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(pv_browser),
    ignore = "set PV_TEST_CHROMEDRIVER to run the browser tests"
)]
async fn an_admin_restocks_and_the_shop_shows_it() {
    let options = Options {
        api_keys: Some(keys()),
        env: vec![("FAULTS_ENABLED".to_owned(), "true".to_owned())],
        ..Default::default()
    };
    let p = Platform::start_with(Backend::Sqlite, options).await;
    let b = Browser::start().await;
    b.client.goto(&p.url("/console")).await.expect("open");
    b.sign_in("console-admin").await;
    b.click("#operator-tab").await;
    b.type_into("#new-name", "Chaleira").await;
    b.type_into("#new-price", "120.50").await;
    b.type_into("#new-quantity", "4").await;
    b.click("#new-item button[type=submit]").await;
    b.wait_text("#items-admin tbody", "Chaleira").await;
    let item = p.all("/items").await[0]["id"].as_i64().expect("item");
    b.type_into(&format!("#restock-{item}"), "7").await;
    b.click(&format!(
        "#items-admin tr[data-item-id='{item}'] button.restock"
    ))
    .await;
    b.wait_text(
        &format!("#items-admin tr[data-item-id='{item}'] .stock"),
        "11",
    )
    .await;
    b.wait_text("#live-state", "healthy").await;
    // The fault switches of the platform (FAULTS_ENABLED), on and off again.
    let row = "#faults-admin tr[data-fault='payment_decline_rate']";
    b.type_into("#fault-payment_decline_rate", "1").await;
    b.click(&format!("{row} button.switch-on")).await;
    b.wait_text(&format!("{row} .state"), "on: 1").await;
    b.screenshot("operator").await;
    b.click(&format!("{row} button.switch-off")).await;
    b.wait_text(&format!("{row} .state"), "off").await;
    b.click("nav button[data-view=shop]").await;
    b.wait_text(
        &format!("#catalogue tr[data-item-id='{item}'] .stock"),
        "11",
    )
    .await;
    assert_eq!(p.stock(item).await, (11, 0, 0));
    b.close().await;
}

// Without a browser: what the console is served with, and the seed's `GET /` kept.
crate::on_both_backends!(
    the_console_is_served_with_a_strict_policy,
    |backend: Backend| async move {
        let p = Platform::start(backend).await;
        for path in ["/console", "/console/app.js", "/console/app.css"] {
            let r = p.get(path).await;
            assert_eq!(r.status, 200, "{path}");
            let csp = r.headers["content-security-policy"].to_str().expect("csp");
            for rule in [
                "default-src 'none'",
                "script-src 'self'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(rule), "{path}: {csp}");
            }
            assert_eq!(r.headers["x-content-type-options"], "nosniff");
            assert_eq!(r.headers["x-frame-options"], "DENY");
        }
        let page = p.get("/console").await;
        assert!(page.headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html"));
        // API clients keep the seed's JSON; a browser is sent to the console.
        let seed = p.get("/").await;
        assert_eq!(seed.body["service"], "Pedidos Veloz - API Gateway");
        let browser = p
            .http
            .send(
                "GET",
                &p.url("/"),
                None,
                &[("accept", "text/html,application/xhtml+xml")],
            )
            .await;
        assert_eq!(browser.status, 303);
        assert_eq!(browser.headers["location"], "/console");
        let me = p.get("/me").await;
        assert_eq!(
            me.body,
            json!({"mode": "open", "role": null, "customer": null, "oidc_issuer": null})
        );
    }
);
