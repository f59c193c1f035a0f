//! The invariants of SPEC section 5, read from the databases and through the API.

use std::collections::HashMap;

use pedidos_veloz::ComponentKind;
use serde_json::Value;
use sqlx::Connection;

use super::{Backend, Platform};

impl Platform {
    /// Stock counters straight from the inventory database: (quantity, reserved, sold).
    pub async fn stock(&self, item_id: i64) -> (i64, i64, i64) {
        let q = "SELECT quantity, reserved, sold FROM items WHERE id = $1";
        let url = self.database_url(ComponentKind::Estoque);
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
                sqlx::query_as(q)
                    .bind(item_id)
                    .fetch_one(&mut c)
                    .await
                    .expect("stock")
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.expect("pg");
                sqlx::query_as(q)
                    .bind(item_id)
                    .fetch_one(&mut c)
                    .await
                    .expect("stock")
            }
        }
    }

    /// Counts of rows by a query that returns one integer.
    pub async fn count(&self, database: ComponentKind, sql: &str) -> i64 {
        let url = self.database_url(database);
        match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.expect("pg");
                sqlx::query_scalar(sql)
                    .fetch_one(&mut c)
                    .await
                    .expect("count")
            }
        }
    }

    /// Rows of the inventory database: `(reference, status)` of every reservation,
    /// and units in committed reservations per item.
    async fn reservations(&self) -> (HashMap<String, String>, HashMap<i64, i64>) {
        let q1 = "SELECT reference, status FROM reservations";
        let q2 = "SELECT l.item_id, CAST(SUM(l.quantity) AS BIGINT) FROM reservation_lines l \
                  JOIN reservations r ON r.id = l.reservation_id WHERE r.status = 'committed' GROUP BY l.item_id";
        let url = self.database_url(ComponentKind::Estoque);
        type Rows = (Vec<(String, String)>, Vec<(i64, i64)>);
        let (refs, committed): Rows = match self.backend {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
                (
                    sqlx::query_as(q1).fetch_all(&mut c).await.expect("q1"),
                    sqlx::query_as(q2).fetch_all(&mut c).await.expect("q2"),
                )
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.expect("pg");
                (
                    sqlx::query_as(q1).fetch_all(&mut c).await.expect("q1"),
                    sqlx::query_as(q2).fetch_all(&mut c).await.expect("q2"),
                )
            }
        };
        (refs.into_iter().collect(), committed.into_iter().collect())
    }

    /// The invariants of SPEC section 5, once the recovery worker has caught up:
    /// for every item, stock ever added (`added`) = quantity + reserved + sold; every
    /// paid order has one approved payment of its total and a committed reservation;
    /// no other order has an approved payment or held stock; nothing is pending.
    pub async fn assert_invariants(&self, added: &[(i64, i64)]) {
        let violations = self.invariant_violations(added).await;
        assert!(
            violations.is_empty(),
            "{} invariant violations:\n{}",
            violations.len(),
            violations.join("\n")
        );
    }

    /// The invariants of [`Platform::assert_invariants`], each broken one described.
    pub async fn invariant_violations(&self, added: &[(i64, i64)]) -> Vec<String> {
        let mut out = Vec::new();
        let orders = self.all("/orders").await;
        let payments = self.all("/payments").await;
        let (reservations, committed) = self.reservations().await;
        let mut by_order: HashMap<i64, &Value> = HashMap::new();
        for p in &payments {
            let order_id = p["order_id"].as_i64().unwrap_or(0);
            if by_order.insert(order_id, p).is_some() {
                out.push(format!("two payments for order {order_id}"));
            }
        }
        for order in &orders {
            let id = order["id"].as_i64().unwrap_or(0);
            let status = order["status"].as_str().unwrap_or("");
            if status == "pending" {
                out.push(format!("order {id} still pending"));
            }
            let payment = by_order
                .get(&id)
                .map(|p| p["status"].as_str().unwrap_or(""));
            let reservation = reservations.get(&format!("order-{id}")).map(String::as_str);
            if reservation == Some("held") {
                out.push(format!("order {id} is {status} but still holds stock"));
            }
            if status == "paid" {
                if reservation != Some("committed") {
                    out.push(format!(
                        "paid order {id}: reservation {reservation:?}, not committed"
                    ));
                }
                if order["total"].as_f64().unwrap_or(0.0) > 0.0 {
                    match by_order.get(&id) {
                        None => out.push(format!("paid order {id} has no payment")),
                        Some(p) => {
                            if p["status"] != "approved" {
                                out.push(format!("paid order {id}: payment {p}"));
                            }
                            if p["amount"] != order["total"] {
                                out.push(format!("paid order {id}: amount differs from total"));
                            }
                        }
                    }
                }
            } else if payment == Some("approved") {
                out.push(format!(
                    "order {id} is {status} but has an approved payment"
                ));
            }
        }
        let known: std::collections::HashSet<i64> =
            orders.iter().filter_map(|o| o["id"].as_i64()).collect();
        for (order_id, p) in &by_order {
            if p["status"] == "approved" && !known.contains(order_id) {
                out.push(format!(
                    "approved payment {} for unknown order {order_id}",
                    p["id"]
                ));
            }
        }
        for &(item_id, stock_added) in added {
            let (quantity, reserved, sold) = self.stock(item_id).await;
            if reserved != 0 {
                out.push(format!("item {item_id}: {reserved} units still held"));
            }
            if quantity + reserved + sold != stock_added {
                out.push(format!(
                    "item {item_id}: stock lost or created: {quantity} + {reserved} + {sold} != {stock_added}"
                ));
            }
            let in_committed = committed.get(&item_id).copied().unwrap_or(0);
            if sold != in_committed {
                out.push(format!(
                    "item {item_id}: sold {sold} differs from committed reservations {in_committed}"
                ));
            }
        }
        let held = reservations.values().filter(|s| *s == "held").count();
        if held > 0 {
            out.push(format!("{held} reservations still held"));
        }
        out
    }
}
