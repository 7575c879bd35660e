//! [`SqliteStore`]: jobs in one SQLite file, the embedded default for persistence.
//!
//! The file is opened in WAL mode with a busy timeout, so several processes on one machine
//! can share it (readers never block the writer; writers wait their turn). The schema is
//! created and migrated when the store is opened, under `BEGIN IMMEDIATE`, so processes
//! starting at once migrate it exactly once.
//!
//! ```
//! use sched_stores::JobStore;
//! use sched_stores::sqlite::SqliteStore;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let dir = std::env::temp_dir().join(format!("sched-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let store = SqliteStore::open(dir.join("jobs.db")).await?;
//! assert!(store.is_persistent());
//! assert_eq!(store.schema_version().await?, 1);
//! assert!(store.all_jobs().await?.is_empty());
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Sqlite, SqliteExecutor};

use crate::sql::{
    self, Dialect, Engine, Names, NewRow, RowChange, Statements, delegate_job_store, sql_backend,
};
use crate::{QuarantinedJob, StoreError, StoreOptions};

/// How long a connection waits for another writer before the call fails as unavailable.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Rows per `INSERT` statement in a batch (three binds each, under SQLite's 32,766).
const INSERT_CHUNK: usize = 500;

/// Runs a batch statement of [`SqliteBackend::write_changes`] on its rows; the ids it
/// matched.
async fn matched<'c>(
    on: impl SqliteExecutor<'c>,
    statement: &Arc<str>,
    rows: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(AssertSqlSafe(statement.clone()))
        .bind(rows)
        .fetch_all(on)
        .await
}

/// Job text per statement of a batch of schedule changes, well under SQLite's limit of a
/// value's length (1 GB).
const WRITE_BYTES: usize = 16 << 20;

/// A persistent store in one SQLite file (or in memory, for tests).
///
/// Jobs are the JSON of their [`StoredJob`](sched_core::job::StoredJob) form (see
/// [`StoredJobCodec`](crate::StoredJobCodec)), with the id, next run time and quarantine
/// reason in indexed columns: due jobs and the next run time are index range scans.
/// A job whose task is a closure, or whose trigger has no JSON spec, is refused with
/// [`StoreError::Serialization`] naming the job.
///
/// The file is opened with `journal_mode=WAL` and `synchronous=NORMAL`: a committed write
/// survives the process crashing; a power loss may roll back the last commits before a
/// checkpoint (never corrupting the file). For durability across power loss as well, open
/// a pool with `synchronous=FULL` and pass it to [`from_pool`](SqliteStore::from_pool).
///
/// Cloning is not offered; share a store behind an `Arc` or a
/// [`BoxJobStore`](crate::BoxJobStore). Every write is one statement or one transaction,
/// so every method is cancel safe in the sense of [`JobStore`](crate::JobStore).
pub struct SqliteStore {
    engine: Engine<SqliteBackend>,
}

struct SqliteBackend {
    pool: SqlitePool,
    sql: Statements,
    names: Names,
    /// The advances of a batch: `UPDATE` from a JSON array of `[id, time, text]`,
    /// returning the ids it matched. A quarantined row keeps `next_run_time` `NULL`.
    advance: Arc<str>,
    /// The removals of a batch: `DELETE` of a JSON array of ids, returning those it matched.
    remove: Arc<str>,
}

impl SqliteStore {
    /// Opens (creating it when missing) the database file at `path`, with default options.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened or migrated.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, StoreOptions::new()).await
    }

    /// Opens the database file at `path` with `options` (table prefix, codec).
    ///
    /// # Errors
    /// As [`open`](SqliteStore::open).
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<SqliteStore, StoreError> {
        let connect = SqliteConnectOptions::new()
            .filename(path.as_ref())
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        // Switching a new file to WAL needs a moment alone with it, and SQLite answers
        // "busy" at once instead of waiting when several processes open it together:
        // retry until the busy timeout.
        let deadline = tokio::time::Instant::now() + BUSY_TIMEOUT;
        let pool = loop {
            let attempt = SqlitePoolOptions::new()
                .max_connections(4)
                .acquire_timeout(BUSY_TIMEOUT)
                .connect_with(connect.clone())
                .await;
            match attempt {
                Ok(pool) => break pool,
                Err(e) if is_busy(&e) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(5 + fastrand::u64(..20))).await;
                }
                Err(e) => {
                    let message = format!("cannot open {}: {e}", path.as_ref().display());
                    return Err(StoreError::unavailable(message, Some(Box::new(e))));
                }
            }
        };
        SqliteStore::from_pool(pool, options).await
    }

    /// A store in a private in-memory database, gone when the store is dropped: for tests.
    ///
    /// # Errors
    /// As [`open`](SqliteStore::open).
    pub async fn open_in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::open_in_memory_with(StoreOptions::new()).await
    }

    /// [`open_in_memory`](SqliteStore::open_in_memory) with `options`.
    ///
    /// # Errors
    /// As [`open`](SqliteStore::open).
    pub async fn open_in_memory_with(options: StoreOptions) -> Result<SqliteStore, StoreError> {
        let connect =
            SqliteConnectOptions::from_str("sqlite::memory:").map_err(|e| sql::map_err(e, None))?;
        // One connection that never closes: each connection to `:memory:` is its own
        // database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(connect)
            .await
            .map_err(|e| sql::map_err(e, None))?;
        SqliteStore::from_pool(pool, options).await
    }

    /// A store on a pool you configured, migrating its tables first.
    ///
    /// Use WAL mode and a busy timeout on the pool's connections when several processes
    /// share the file, as [`open`](SqliteStore::open) does.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the migration fails.
    pub async fn from_pool(
        pool: SqlitePool,
        options: StoreOptions,
    ) -> Result<SqliteStore, StoreError> {
        let names = Names::new(Dialect::Sqlite, None, options.prefix_or("sched_"));
        let t = &names.jobs;
        let backend = SqliteBackend {
            sql: Statements::new(Dialect::Sqlite, &names),
            // The rows' columns are renamed: json_each has an `id` column of its own.
            advance: Arc::from(format!(
                "UPDATE {t} SET \
                 next_run_time = CASE WHEN quarantine IS NULL THEN v.at END, data = v.text \
                 FROM (SELECT value ->> 0 AS job, value ->> 1 AS at, value ->> 2 AS text \
                 FROM json_each(?1)) AS v WHERE id = v.job RETURNING id"
            )),
            remove: Arc::from(format!(
                "DELETE FROM {t} WHERE id IN (SELECT value FROM json_each(?1)) RETURNING id"
            )),
            pool,
            names,
        };
        backend.migrate().await.map_err(|e| sql::map_err(e, None))?;
        Ok(SqliteStore {
            engine: Engine {
                backend,
                codec: options.job_codec().clone(),
                max_id_chars: None,
            },
        })
    }

    /// The connection pool, to share or to run queries of your own.
    pub fn pool(&self) -> &SqlitePool {
        &self.engine.backend.pool
    }

    /// The quoted name of the jobs table.
    pub fn jobs_table(&self) -> &str {
        &self.engine.backend.names.jobs
    }

    /// The query plan of the due-jobs query (`EXPLAIN QUERY PLAN`), one step per line: it
    /// shows the `(next_run_time, id)` index at work.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be read.
    pub async fn due_jobs_plan(&self) -> Result<String, StoreError> {
        use sqlx::Row as _;
        let b = &self.engine.backend;
        let rows = sqlx::query(AssertSqlSafe(format!("EXPLAIN QUERY PLAN {}", b.sql.due)))
            .bind(sql::micros_floor(Utc::now()))
            .bind(100_i64)
            .fetch_all(&b.pool)
            .await
            .map_err(|e| sql::map_err(e, None))?;
        let steps: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>("detail"))
            .collect::<Result<_, _>>()
            .map_err(|e| sql::map_err(e, None))?;
        Ok(steps.join("\n"))
    }

    /// The schema version recorded in the database (the newest migration applied).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be read.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(AssertSqlSafe(
            self.engine.backend.sql.current_version.clone(),
        ))
        .fetch_one(&self.engine.backend.pool)
        .await
        .map_err(|e| sql::map_err(e, None))
    }
}

/// Whether SQLite answered `SQLITE_BUSY` or `SQLITE_LOCKED` (primary or extended code).
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6)),
        _ => false,
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("table", &self.engine.backend.names.jobs)
            .field("codec", &self.engine.codec)
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Creates or upgrades the tables. `BEGIN IMMEDIATE` takes the database's write lock
    /// first, so concurrent openers run one after another and the second finds the work
    /// done.
    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(AssertSqlSafe(sql::versions_table(
            Dialect::Sqlite,
            &self.names,
        )))
        .execute(&mut *tx)
        .await?;
        let current: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.current_version.clone()))
            .fetch_one(&mut *tx)
            .await?;
        for m in sql::migrations(Dialect::Sqlite, &self.names) {
            if m.version <= current {
                continue;
            }
            for statement in m.statements {
                sqlx::query(AssertSqlSafe(statement))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(AssertSqlSafe(self.sql.record_version.clone()))
                .bind(m.version)
                .bind(m.description)
                .bind(sql::now_micros())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }

    /// A write transaction, taking the write lock at once (`BEGIN IMMEDIATE`), so it never
    /// has to upgrade a read lock and fail as busy half-way.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// The changes in few statements: one `UPDATE` joined to the advances and one
    /// `DELETE` of the removed ids per [`WRITE_BYTES`] of text, each given its rows as one
    /// JSON array (`json_each`) and returning the ids it matched, so the statement text is
    /// the same for every batch and a batch costs a few hand-offs to the connection's
    /// thread instead of one per job. Several statements run in one transaction. A batch that names an id twice is
    /// written one change after the other instead, as their order then matters.
    async fn write_changes(&self, changes: &[RowChange<'_>]) -> Result<Vec<bool>, sqlx::Error> {
        let mut seen = HashSet::with_capacity(changes.len());
        if !changes.iter().all(|c| seen.insert(c.id())) {
            return self.write_each(changes).await;
        }
        // The statements to run, each with its rows as JSON.
        let mut statements = Vec::new();
        let (mut advances, mut removals, mut bytes) = (Vec::new(), Vec::new(), 0);
        for (i, change) in changes.iter().enumerate() {
            match change {
                RowChange::Update(row) => {
                    bytes += row.data.len();
                    advances.push((row.id.as_str(), row.next_run_time, row.data.as_str()));
                }
                RowChange::Delete(id) => removals.push(*id),
            }
            if bytes >= WRITE_BYTES || i + 1 == changes.len() {
                let json = |e: serde_json::Error| sqlx::Error::Encode(Box::new(e));
                if !advances.is_empty() {
                    statements.push((
                        &self.advance,
                        serde_json::to_string(&advances).map_err(json)?,
                    ));
                }
                if !removals.is_empty() {
                    statements.push((
                        &self.remove,
                        serde_json::to_string(&removals).map_err(json)?,
                    ));
                }
                advances.clear();
                removals.clear();
                bytes = 0;
            }
        }
        let mut found: HashSet<String> = HashSet::with_capacity(changes.len());
        if let [(statement, rows)] = statements.as_slice() {
            // One statement is atomic by itself: no transaction, two hand-offs fewer.
            found.extend(matched(&self.pool, statement, rows).await?);
        } else {
            let mut tx = self.begin_write().await?;
            for (statement, rows) in &statements {
                found.extend(matched(&mut *tx, statement, rows).await?);
            }
            tx.commit().await?;
        }
        Ok(changes.iter().map(|c| found.contains(c.id())).collect())
    }

    async fn insert_rows(&self, rows: &[NewRow]) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let statement = Statements::insert(Dialect::Sqlite, &self.names, chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(statement));
            for row in chunk {
                query = query
                    .bind(row.id.as_str())
                    .bind(row.next_run_time)
                    .bind(row.data.as_str());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await
    }
}

sql_backend!(SqliteBackend, Sqlite);
delegate_job_store!(SqliteStore);
