//! PostgreSQL under pressure from another client while orders and reads run at fixed
//! rates: every connection the database allows taken, a row lock held on the hot
//! item, and a lock that stalls every statement on the items table (what a careless
//! migration does). Each for 10 s; the platform must answer every request within its
//! timeouts with a clear status (503 when the database cannot serve it, 202 for an
//! order it could not finish yet) and recover when the pressure ends
//! ([`Cluster::judge_after_heal`]).

use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

use super::cluster::Cluster;
use super::options;
use crate::harness::{with_user, Options};

/// How long each pressure lasts.
const PRESSURE: Duration = Duration::from_secs(10);
/// The database's connection limit while it is exhausted: above what the platform's
/// three pools hold (8 each), so the other client takes the rest.
const CONNECTION_LIMIT: usize = 30;

/// The platform as production runs it: a role of its own, not a superuser, so the
/// database's limits apply to it.
pub(super) fn own_role() -> Options {
    Options {
        own_role: true,
        ..options()
    }
}

/// Another client of the platform's database, as the admin URL's superuser.
async fn other_session(c: &Cluster) -> PgConnection {
    let (url, _) = c.p.admin_database();
    PgConnection::connect(&url)
        .await
        .expect("connect to the platform's database")
}

/// Another client takes every connection the platform's database allows (its
/// limit lowered to [`CONNECTION_LIMIT`]) for `lasts`, and the platform's open
/// connections are terminated, so its pools must open new ones. Returns a note.
pub(super) async fn exhaust_connections(c: &Cluster, lasts: Duration) -> String {
    let mut admin = other_session(c).await;
    let (_, db) = c.p.admin_database();
    let db = db.to_owned();
    let hog_role = format!("{db}_hog");
    for sql in [
        format!("ALTER DATABASE {db} CONNECTION LIMIT {CONNECTION_LIMIT}"),
        format!("CREATE ROLE {hog_role} LOGIN"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.expect(&sql);
    }
    let hog_url = with_user(&c.p.admin_database().0, &hog_role);
    let started = Instant::now();
    let hog = tokio::spawn(async move {
        // A greedy client: takes every connection it can get, and any that frees up.
        let mut held = Vec::new();
        let mut most = 0;
        while started.elapsed() < lasts {
            match PgConnection::connect(&hog_url).await {
                Ok(conn) => held.push(conn),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
            most = most.max(held.len());
        }
        for conn in held {
            let _ = conn.close().await;
        }
        most
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let terminated: i64 = sqlx::query_scalar(
        "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1 AND usename = $1",
    )
    .bind(&db)
    .fetch_one(&mut admin)
    .await
    .expect("terminate the platform's connections");
    let most = hog.await.expect("the other client");
    for sql in [
        format!("ALTER DATABASE {db} CONNECTION LIMIT -1"),
        format!("DROP ROLE {hog_role}"),
    ] {
        sqlx::query(&sql).execute(&mut admin).await.expect(&sql);
    }
    format!(
        "connection limit {CONNECTION_LIMIT}: the other client held up to {most}, \
         {terminated} of the platform's connections terminated"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn p1_connections_exhausted_by_another_client() {
    let c = Cluster::start(own_role()).await;
    let note = exhaust_connections(&c, PRESSURE).await;
    c.judge_after_heal("connections exhausted", &[note], 0)
        .await;
}

/// Holds `lock` (a statement that takes a lock) in a transaction of another session
/// for `lasts`, then rolls it back. Returns a note.
pub(super) async fn hold_lock(
    c: &Cluster,
    lock: &str,
    bind: Option<i64>,
    lasts: Duration,
) -> String {
    let mut session = other_session(c).await;
    let mut tx = session.begin().await.expect("begin");
    let mut query = sqlx::query(lock);
    if let Some(id) = bind {
        query = query.bind(id);
    }
    query.execute(&mut *tx).await.expect(lock);
    tokio::time::sleep(lasts).await;
    tx.rollback().await.expect("rollback");
    format!("{lock} held {:.0}s", lasts.as_secs_f64())
}

/// The row lock of [`hold_lock`] on one item.
pub(super) const ROW_LOCK: &str = "SELECT id FROM items WHERE id = $1 FOR UPDATE";
/// The table lock of [`hold_lock`] that stalls every statement on items.
pub(super) const TABLE_LOCK: &str = "LOCK TABLE items IN ACCESS EXCLUSIVE MODE";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn p2_row_lock_held_on_the_hot_item() {
    let c = Cluster::start(own_role()).await;
    let hot = c.item_ids()[0];
    let note = hold_lock(&c, ROW_LOCK, Some(hot), PRESSURE).await;
    c.judge_after_heal("row lock on the hot item", &[note], 0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fault injection: minutes, PostgreSQL; run with --ignored"]
async fn p3_every_statement_on_items_stalled() {
    let c = Cluster::start(own_role()).await;
    let note = hold_lock(&c, TABLE_LOCK, None, PRESSURE).await;
    c.judge_after_heal("items table locked", &[note], 0).await;
}
