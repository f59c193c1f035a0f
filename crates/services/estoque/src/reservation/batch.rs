//! Group commit ([`platform::batch`]) of the reservation hot path. Concurrent holds, and concurrent commits
//! or releases, are gathered while the previous batch runs and applied in ONE
//! transaction that locks each item row once, in item-id order.
//!
//! Why: every order changes its items' rows twice (hold, then commit). Done one
//! request at a time, a hot item's row lock is held across each transaction's commit
//! (and its log flush on PostgreSQL), so the item serialises every order in the shop
//! whatever the pool size. In a batch, that lock and that flush are paid once for up
//! to [`MAX_BATCH`] requests. With one request in flight a batch is that one request,
//! so nothing waits for a batch to fill.
//!
//! Each request keeps its own all-or-nothing outcome: a hold that does not fit is
//! refused (its reservation row is removed in the same transaction) while the others
//! in its batch are held, in arrival order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use contracts::inventory::{Reservation, ReservationLine, ReservationStatus};
use platform::batch::Batches;
use platform::db::{Backend, Db};
use platform::money::Money;
use platform::worker::Workers;
use platform::{names, with_conn, ApiError};
use sqlx::{Connection, QueryBuilder};

use super::store::{total_of, LineRow};
use crate::metrics::InventoryMetrics;
use crate::stock::{insufficient_stock, item_not_found};

/// Most requests in one batch: bounds the bind parameters of a statement (32 holds of
/// at most 100 lines, 5 parameters a line, stay under SQLite's 32,766) and how long a
/// batch keeps its locks.
pub const MAX_BATCH: usize = 32;
/// Batches in flight at once per kind: while one waits for its commit, the next one
/// gathers its requests and does the work that takes no item lock.
const CONCURRENCY: usize = 2;

/// A hold to apply: the caller's reference and its merged lines (item id → units).
pub struct HoldRequest {
    pub reference: String,
    pub lines: BTreeMap<i64, i64>,
}

pub enum Hold {
    Held(Reservation),
    /// Too little stock or no such item: nothing is held for this request.
    Refused(ApiError),
    /// A reservation with this reference exists already (possibly from the same batch).
    Exists,
}

pub enum Settle {
    Done(Reservation),
    /// Not held (already settled, unknown id), or its items no longer hold the units:
    /// the caller's one-at-a-time path gives the precise answer.
    NotHeld,
}

/// The entry points of the batch workers; cheap to clone. The workers stop when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Batcher {
    holds: Batches<HoldRequest, Hold>,
    commits: Batches<i64, Settle>,
    releases: Batches<i64, Settle>,
}

impl Batcher {
    /// Starts the batch workers on the component's `workers`; needs a Tokio runtime.
    pub fn start(workers: &Workers, db: Db, metrics: InventoryMetrics) -> Self {
        let (service, concurrency, max) = (names::ESTOQUE, CONCURRENCY, MAX_BATCH);
        let holds = {
            let (db, metrics) = (db.clone(), metrics.clone());
            let sizes = metrics.batch_sizes("hold");
            Batches::start(workers, service, concurrency, max, sizes, move |requests| {
                hold_batch(db.clone(), metrics.clone(), requests)
            })
        };
        let commits = {
            let db = db.clone();
            let sizes = metrics.batch_sizes("commit");
            Batches::start(workers, service, concurrency, max, sizes, move |ids| {
                settle_batch(db.clone(), ReservationStatus::Committed, ids)
            })
        };
        let sizes = metrics.batch_sizes("release");
        let releases = Batches::start(workers, service, concurrency, max, sizes, move |ids| {
            settle_batch(db.clone(), ReservationStatus::Released, ids)
        });
        Self {
            holds,
            commits,
            releases,
        }
    }

    pub async fn hold(&self, request: HoldRequest) -> Result<Hold, ApiError> {
        self.holds.submit(request).await
    }

    pub async fn settle(&self, id: i64, target: ReservationStatus) -> Result<Settle, ApiError> {
        match target {
            ReservationStatus::Committed => self.commits.submit(id).await,
            ReservationStatus::Released => self.releases.submit(id).await,
            ReservationStatus::Held => Ok(Settle::NotHeld),
        }
    }
}

/// `FOR UPDATE` where row locks exist; SQLite has one writer at a time anyway.
fn row_lock(db: &Db) -> &'static str {
    match db.backend() {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

/// `CASE id WHEN <id> THEN <units> ... END`: one statement changes each item by its own amount.
fn push_case<'a, DB: sqlx::Database>(qb: &mut QueryBuilder<'a, DB>, units: &BTreeMap<i64, i64>)
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push("CASE id");
    for (&item_id, &quantity) in units {
        qb.push(" WHEN ").push_bind(item_id);
        qb.push(" THEN ").push_bind(quantity);
    }
    qb.push(" END");
}

/// `(<id>, <id>, ...)`
fn push_ids<'a, DB: sqlx::Database>(
    qb: &mut QueryBuilder<'a, DB>,
    ids: impl IntoIterator<Item = i64>,
) where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    qb.push("(");
    let mut list = qb.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    qb.push(")");
}

/// `<select> WHERE id IN (...) ORDER BY id<lock>`: rows taken in id order, so that two
/// batches locking some of the same rows cannot deadlock.
fn in_id_order<'a, DB: sqlx::Database>(
    select: &str,
    ids: impl IntoIterator<Item = i64>,
    lock: &str,
) -> QueryBuilder<'a, DB>
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut query = QueryBuilder::new(select);
    query.push(" WHERE id IN ");
    push_ids(&mut query, ids);
    query.push(" ORDER BY id").push(lock);
    query
}

/// What a hold found of an item under its lock.
struct Stock {
    name: String,
    available: i64,
    price_cents: i64,
}

/// Checks every line of one hold against what is left and, if all fit, takes them.
fn allocate(
    lines: &BTreeMap<i64, i64>,
    stock: &mut HashMap<i64, Stock>,
    metrics: &InventoryMetrics,
) -> Result<(Vec<ReservationLine>, Money), ApiError> {
    let mut held = Vec::with_capacity(lines.len());
    for (&item_id, &quantity) in lines {
        let Some(item) = stock.get(&item_id) else {
            return Err(item_not_found(item_id));
        };
        if item.available < quantity {
            metrics.stock_conflict();
            return Err(insufficient_stock(item_id, item.available, quantity));
        }
        held.push(ReservationLine {
            item_id,
            item_name: item.name.clone(),
            quantity,
            unit_price: Money::try_from(item.price_cents).map_err(|_| ApiError::internal())?,
        });
    }
    let total = total_of(&held)?;
    for line in &held {
        if let Some(item) = stock.get_mut(&line.item_id) {
            item.available -= line.quantity;
        }
    }
    Ok((held, total))
}

async fn hold_batch(
    db: Db,
    metrics: InventoryMetrics,
    requests: Vec<HoldRequest>,
) -> Result<Vec<Hold>, ApiError> {
    let now = platform::now();
    let lock = row_lock(&db);
    let mut outcomes = Vec::with_capacity(requests.len());
    with_conn!(db.writer(), |conn| {
        let mut tx = conn.begin().await?;
        let mut insert = QueryBuilder::new(
            "INSERT INTO reservations (reference, status, created_at, updated_at) ",
        );
        insert.push_values(&requests, |mut row, request| {
            row.push_bind(request.reference.as_str())
                .push_bind(ReservationStatus::Held.as_str())
                .push_bind(now)
                .push_bind(now);
        });
        insert.push(" ON CONFLICT (reference) DO NOTHING RETURNING id, reference");
        let inserted: Vec<(i64, String)> = insert.build_query_as().fetch_all(&mut *tx).await?;
        let mut new_ids: HashMap<String, i64> = inserted
            .into_iter()
            .map(|(id, reference)| (reference, id))
            .collect();
        // A reference twice in one batch: the first request holds, the others find it.
        let ids: Vec<Option<i64>> = requests
            .iter()
            .map(|request| new_ids.remove(&request.reference))
            .collect();

        let item_ids: BTreeSet<i64> = requests
            .iter()
            .zip(&ids)
            .filter(|(_, id)| id.is_some())
            .flat_map(|(request, _)| request.lines.keys().copied())
            .collect();
        let mut stock = HashMap::with_capacity(item_ids.len());
        if !item_ids.is_empty() {
            let mut select = in_id_order(
                "SELECT id, name, quantity, price_cents FROM items",
                item_ids.iter().copied(),
                lock,
            );
            let rows: Vec<(i64, String, i64, i64)> =
                select.build_query_as().fetch_all(&mut *tx).await?;
            for (id, name, available, price_cents) in rows {
                stock.insert(
                    id,
                    Stock {
                        name,
                        available,
                        price_cents,
                    },
                );
            }
        }

        let mut refused = Vec::new();
        let mut taken: BTreeMap<i64, i64> = BTreeMap::new();
        let mut new_lines: Vec<(i64, ReservationLine)> = Vec::new();
        for (request, id) in requests.iter().zip(&ids) {
            let Some(id) = *id else {
                outcomes.push(Hold::Exists);
                continue;
            };
            match allocate(&request.lines, &mut stock, &metrics) {
                Err(err) => {
                    refused.push(id);
                    outcomes.push(Hold::Refused(err));
                }
                Ok((held, total)) => {
                    for line in &held {
                        *taken.entry(line.item_id).or_default() += line.quantity;
                        new_lines.push((id, line.clone()));
                    }
                    outcomes.push(Hold::Held(Reservation {
                        id,
                        reference: request.reference.clone(),
                        status: ReservationStatus::Held,
                        total,
                        items: held,
                        created_at: now,
                        updated_at: now,
                    }));
                }
            }
        }

        if !refused.is_empty() {
            let mut delete = QueryBuilder::new("DELETE FROM reservations WHERE id IN ");
            push_ids(&mut delete, refused);
            delete.build().execute(&mut *tx).await?;
        }
        if !taken.is_empty() {
            let mut update = QueryBuilder::new("UPDATE items SET quantity = quantity - ");
            push_case(&mut update, &taken);
            update.push(", reserved = reserved + ");
            push_case(&mut update, &taken);
            update.push(", updated_at = ").push_bind(now);
            update.push(" WHERE id IN ");
            push_ids(&mut update, taken.keys().copied());
            update.build().execute(&mut *tx).await?;

            let mut lines = QueryBuilder::new(
                "INSERT INTO reservation_lines (reservation_id, item_id, item_name, quantity, unit_price_cents) ",
            );
            lines.push_values(&new_lines, |mut row, (id, line)| {
                row.push_bind(*id)
                    .push_bind(line.item_id)
                    .push_bind(line.item_name.as_str())
                    .push_bind(line.quantity)
                    .push_bind(line.unit_price.cents());
            });
            lines.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(outcomes)
}

#[derive(sqlx::FromRow)]
struct SettledRow {
    id: i64,
    reference: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SettledLineRow {
    reservation_id: i64,
    #[sqlx(flatten)]
    line: LineRow,
}

async fn settle_batch(
    db: Db,
    target: ReservationStatus,
    ids: Vec<i64>,
) -> Result<Vec<Settle>, ApiError> {
    let now = platform::now();
    let lock = row_lock(&db);
    let stock_change = match target {
        ReservationStatus::Committed => "sold = sold + ",
        _ => "quantity = quantity + ",
    };
    let distinct: BTreeSet<i64> = ids.iter().copied().collect();
    let settled: Option<HashMap<i64, Reservation>> = with_conn!(db.writer(), |conn| {
        let mut tx = conn.begin().await?;
        if !lock.is_empty() {
            // Reservation rows in id order first, so that two batches settling the
            // same reservations (a retry beside the recovery worker) cannot deadlock.
            in_id_order(
                "SELECT id FROM reservations",
                distinct.iter().copied(),
                lock,
            )
            .build()
            .fetch_all(&mut *tx)
            .await?;
        }
        let mut update = QueryBuilder::new("UPDATE reservations SET status = ");
        update.push_bind(target.as_str());
        update.push(", updated_at = ").push_bind(now);
        update.push(" WHERE status = 'held' AND id IN ");
        push_ids(&mut update, distinct.iter().copied());
        update.push(" RETURNING id, reference, created_at, updated_at");
        let rows: Vec<SettledRow> = update.build_query_as().fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            None
        } else {
            let mut select = QueryBuilder::new(
                "SELECT reservation_id, item_id, item_name, quantity, unit_price_cents \
                 FROM reservation_lines WHERE reservation_id IN ",
            );
            push_ids(&mut select, rows.iter().map(|row| row.id));
            select.push(" ORDER BY reservation_id, item_id");
            let lines: Vec<SettledLineRow> = select.build_query_as().fetch_all(&mut *tx).await?;
            let mut units: BTreeMap<i64, i64> = BTreeMap::new();
            let mut by_reservation: HashMap<i64, Vec<ReservationLine>> = HashMap::new();
            for row in lines {
                let line = row.line.into_line()?;
                *units.entry(line.item_id).or_default() += line.quantity;
                by_reservation
                    .entry(row.reservation_id)
                    .or_default()
                    .push(line);
            }
            let mut consistent = true;
            if !units.is_empty() {
                if !lock.is_empty() {
                    in_id_order("SELECT id FROM items", units.keys().copied(), lock)
                        .build()
                        .fetch_all(&mut *tx)
                        .await?;
                }
                let mut update = QueryBuilder::new("UPDATE items SET reserved = reserved - ");
                push_case(&mut update, &units);
                update.push(", ").push(stock_change);
                push_case(&mut update, &units);
                update.push(", updated_at = ").push_bind(now);
                update.push(" WHERE reserved >= ");
                push_case(&mut update, &units);
                update.push(" AND id IN ");
                push_ids(&mut update, units.keys().copied());
                let moved = update.build().execute(&mut *tx).await?.rows_affected();
                // Units released through the per-item seed calls meanwhile: undo the
                // batch; one at a time, the reservation concerned is reported.
                consistent = moved == units.len() as u64;
            }
            if consistent {
                tx.commit().await?;
                let mut settled = HashMap::with_capacity(rows.len());
                for row in rows {
                    let items = by_reservation.remove(&row.id).unwrap_or_default();
                    settled.insert(
                        row.id,
                        Reservation {
                            id: row.id,
                            reference: row.reference,
                            status: target,
                            total: total_of(&items)?,
                            items,
                            created_at: row.created_at,
                            updated_at: row.updated_at,
                        },
                    );
                }
                Some(settled)
            } else {
                None
            }
        }
    });
    let mut settled = settled.unwrap_or_default();
    Ok(ids
        .into_iter()
        .map(|id| match settled.remove(&id) {
            Some(reservation) => Settle::Done(reservation),
            None => Settle::NotHeld,
        })
        .collect())
}
