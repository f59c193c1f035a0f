//! Database pools for the two backends, and the migrations of each service.
//!
//! Why not sqlx's `Any` driver: it only carries integers, floats, text and blobs,
//! so timestamps would be strings on PostgreSQL too, and every row would be copied
//! through an intermediate representation. Instead a [`Pool`] is an enum over the
//! two native pools, and [`with_conn!`](crate::with_conn) expands the *same* query
//! code once per backend: each arm is monomorphised and typed natively (TIMESTAMPTZ
//! on PostgreSQL, TEXT on SQLite). The SQL text itself is shared: both dialects take
//! `$N` parameters, `RETURNING` and `ON CONFLICT`. What differs (DDL, types) lives in
//! the per-dialect migrations of each service.
//!
//! SQLite allows one writer at a time, so its writes go through a pool of one
//! connection (requests queue in the application, fairly, instead of spinning on
//! `SQLITE_BUSY`) while reads use a separate pool.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Database;

use crate::faults::{Fault, Faults};

/// Which SQL dialect a database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone)]
pub enum PoolKind {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// The faults of the component a database serves, set once it is built.
type FaultHook = Arc<OnceLock<Faults>>;

/// One connection pool and the histogram of the time spent waiting for its connections.
#[derive(Debug, Clone)]
pub struct Pool {
    pub kind: PoolKind,
    acquire_seconds: Histogram,
    faults: FaultHook,
}

impl Pool {
    fn new(kind: PoolKind, acquire_seconds: Histogram, faults: FaultHook) -> Self {
        Self {
            kind,
            acquire_seconds,
            faults,
        }
    }

    /// Takes a connection, recording how long the caller waited for it (and, with the
    /// `database_latency_ms` fault on, waits that much more before the statement).
    pub async fn timed_acquire<DB: Database>(
        &self,
        pool: &sqlx::Pool<DB>,
    ) -> Result<PoolConnection<DB>, sqlx::Error> {
        let started = Instant::now();
        let conn = pool.acquire().await;
        self.acquire_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Some(faults) = self.faults.get() {
            faults.wait(Fault::DatabaseLatencyMs).await;
        }
        conn
    }

    fn stats(&self) -> PoolStats {
        let (size, idle, max) = match &self.kind {
            PoolKind::Postgres(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
            PoolKind::Sqlite(p) => (p.size(), p.num_idle(), p.options().get_max_connections()),
        };
        let idle = u32::try_from(idle).unwrap_or(u32::MAX).min(size);
        PoolStats {
            idle,
            in_use: size - idle,
            max,
        }
    }
}

/// Runs `$body` with `$conn` bound to a `&mut` connection of `$pool`, once per backend.
///
/// ```ignore
/// let item = with_conn!(db.reader(), |conn| {
///     sqlx::query_as::<_, ItemRow>(SELECT_ITEM).bind(id).fetch_optional(&mut *conn).await?
/// });
/// ```
#[macro_export]
macro_rules! with_conn {
    ($pool:expr, |$conn:ident| $body:expr) => {{
        let pool: &$crate::db::Pool = $pool;
        match &pool.kind {
            $crate::db::PoolKind::Postgres(p) => {
                let mut guard = pool.timed_acquire(p).await?;
                let $conn = &mut *guard;
                $body
            }
            $crate::db::PoolKind::Sqlite(p) => {
                let mut guard = pool.timed_acquire(p).await?;
                let $conn = &mut *guard;
                $body
            }
        }
    }};
}

#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub idle: u32,
    pub in_use: u32,
    pub max: u32,
}

#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Largest PostgreSQL pool, and size of the SQLite read pool.
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Shown in `pg_stat_activity`.
    pub application_name: String,
}

/// The versioned migrations of one service, one set per dialect (embedded at build
/// time by `sqlx::migrate!`). Versions are disjoint across services (estoque 1xxxx,
/// pagamentos 2xxxx, pedidos 3xxxx), so the three may also share one database.
pub struct Migrations {
    pub postgres: fn() -> Migrator,
    pub sqlite: fn() -> Migrator,
}

/// The [`Migrations`] of the calling service crate, embedded from its
/// `migrations/postgres` and `migrations/sqlite` folders.
#[macro_export]
macro_rules! service_migrations {
    () => {
        $crate::db::Migrations {
            postgres: || ::sqlx::migrate!("migrations/postgres"),
            sqlite: || ::sqlx::migrate!("migrations/sqlite"),
        }
    };
}

/// A service's database: a writer pool and a reader pool (the same pool on PostgreSQL).
#[derive(Debug, Clone)]
pub struct Db {
    backend: Backend,
    write: Pool,
    read: Pool,
    acquire_seconds: Histogram,
    faults: FaultHook,
}

/// Buckets of the pool wait histogram: 0.1 ms to 5 s.
pub const ACQUIRE_BUCKETS: [f64; 10] =
    [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

impl Db {
    /// Opens the pools for `url` (`postgres://…` or `sqlite://…`). PostgreSQL
    /// connections are made lazily, so a component starts (and answers 503)
    /// while its database is down; SQLite files are created on first use.
    pub async fn connect(url: &str, options: &DbOptions) -> Result<Self, sqlx::Error> {
        let acquire_seconds = Histogram::new(ACQUIRE_BUCKETS);
        let faults = FaultHook::default();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)?
                .application_name(&options.application_name)
                // Bounded waits: a stuck lock or query fails as 503 instead of hanging.
                .options([("lock_timeout", "5s"), ("statement_timeout", "15s")]);
            // No ping before every acquisition (sqlx's default): it was one extra round
            // trip per statement on the order path. A connection that died meanwhile
            // (a database restart) fails its statement once with a 503 and is dropped.
            let pool = PgPoolOptions::new()
                .test_before_acquire(false)
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect);
            let pool = Pool::new(
                PoolKind::Postgres(pool),
                acquire_seconds.clone(),
                faults.clone(),
            );
            return Ok(Self {
                backend: Backend::Postgres,
                write: pool.clone(),
                read: pool,
                acquire_seconds,
                faults,
            });
        }
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            if let Some(dir) = connect.get_filename().parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)?;
                }
            }
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(connect.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect_lazy_with(connect);
            return Ok(Self {
                backend: Backend::Sqlite,
                write: Pool::new(
                    PoolKind::Sqlite(write),
                    acquire_seconds.clone(),
                    faults.clone(),
                ),
                read: Pool::new(
                    PoolKind::Sqlite(read),
                    acquire_seconds.clone(),
                    faults.clone(),
                ),
                acquire_seconds,
                faults,
            });
        }
        Err(sqlx::Error::Configuration(
            format!(
                "unsupported database url scheme (expected postgres:// or sqlite://): {}",
                redact(url)
            )
            .into(),
        ))
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the component's faults (`database_latency_ms`) to every statement; the
    /// first call wins, later ones are ignored.
    pub fn apply_faults(&self, faults: &Faults) {
        if faults.is_enabled() {
            let _ = self.faults.set(faults.clone());
        }
    }

    /// The pool for statements that write (and for reads that must see the latest write).
    pub fn writer(&self) -> &Pool {
        &self.write
    }

    /// The pool for plain reads.
    pub fn reader(&self) -> &Pool {
        &self.read
    }

    /// Applies the service's migrations. On PostgreSQL sqlx holds an advisory lock
    /// meanwhile, so replicas starting together do not race.
    pub async fn migrate(
        &self,
        migrations: &Migrations,
    ) -> Result<(), sqlx::migrate::MigrateError> {
        // Another service's migrations in a shared database are not ours to judge.
        match &self.write.kind {
            PoolKind::Postgres(p) => {
                let mut migrator = (migrations.postgres)();
                migrator.set_ignore_missing(true);
                migrator.run(p).await
            }
            PoolKind::Sqlite(p) => {
                let mut migrator = (migrations.sqlite)();
                migrator.set_ignore_missing(true);
                migrator.run(p).await
            }
        }
    }

    /// `SELECT 1` on the writer pool: the readiness check.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match &self.write.kind {
            PoolKind::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
            PoolKind::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
        }
    }

    pub async fn close(&self) {
        for pool in [&self.write, &self.read] {
            match &pool.kind {
                PoolKind::Postgres(p) => p.close().await,
                PoolKind::Sqlite(p) => p.close().await,
            }
        }
    }

    /// Connections idle, in use and allowed, over both pools.
    pub fn stats(&self) -> PoolStats {
        let w = self.write.stats();
        if self.backend == Backend::Postgres {
            return w;
        }
        let r = self.read.stats();
        PoolStats {
            idle: w.idle + r.idle,
            in_use: w.in_use + r.in_use,
            max: w.max + r.max,
        }
    }

    pub fn acquire_histogram(&self) -> Histogram {
        self.acquire_seconds.clone()
    }
}

/// Errors that mean "the database cannot serve now" (503, retry) rather than a bug.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // PostgreSQL: connection exceptions (08), shutdown / cannot connect now (57P),
            // too many connections, lock timeout, serialization failure, deadlock.
            // SQLite: BUSY (5) and LOCKED (6).
            code.starts_with("08")
                || code.starts_with("57P")
                || matches!(
                    &*code,
                    "53300" | "55P03" | "40001" | "40P01" | "5" | "6" | "517"
                )
        }
        _ => false,
    }
}

/// Reads back an enum stored as text (a status, a method): a value the code does not
/// know means the row was written by something else, which is a bug, not bad input.
pub fn decode_text<T: std::str::FromStr>(column: &str, value: &str) -> Result<T, crate::ApiError> {
    value.parse().map_err(|_| {
        tracing::error!(column, value, "unknown value in the database");
        crate::ApiError::internal()
    })
}

/// A database URL with its password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_hides_the_password_only() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/pedidos_db"),
            "postgres://app:***@db:5432/pedidos_db"
        );
        assert_eq!(redact("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(
            redact("sqlite://data/estoque.db"),
            "sqlite://data/estoque.db"
        );
    }
}
