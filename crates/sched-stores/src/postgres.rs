//! [`PostgresStore`]: jobs in a PostgreSQL table.
//!
//! The tables are created and migrated on connect, inside one transaction that first takes
//! a transaction-level advisory lock (`pg_advisory_xact_lock`) named after the schema and
//! prefix, so nodes starting at once migrate exactly once. [`StoreOptions::schema`] puts the
//! tables in a schema of their own (which must exist); [`StoreOptions::prefix`] names them.
//!
//! ```no_run
//! use sched_stores::{JobStore, StoreOptions};
//! use sched_stores::postgres::PostgresStore;
//!
//! # async fn demo() -> Result<(), sched_stores::StoreError> {
//! let store = PostgresStore::connect_with(
//!     "postgres://postgres@127.0.0.1/app",
//!     StoreOptions::new().schema("scheduler"),
//! )
//! .await?;
//! println!("{} jobs", store.all_jobs().await?.len());
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};
use sqlx::postgres::{PgExecutor, PgPool};
use sqlx::{AssertSqlSafe, Postgres};

use crate::sql::{
    self, Dialect, Engine, Names, NewRow, RowChange, Statements, delegate_job_store, sql_backend,
};
use crate::{QuarantinedJob, StoreError, StoreOptions};

/// Rows per `INSERT ... SELECT FROM UNNEST(...)` statement in a batch.
const INSERT_CHUNK: usize = 5_000;

/// A persistent store in PostgreSQL.
///
/// Jobs are the JSON of their [`StoredJob`](sched_core::job::StoredJob) form in a `TEXT`
/// column, with the id (`COLLATE "C"`, so ids order byte-wise as in every store), the next
/// run time in microseconds and the quarantine reason in columns of their own; an index on
/// `(next_run_time, id)` serves due jobs and the next run time. Batches are inserted with
/// one `UNNEST` statement per 5,000 jobs in one transaction.
pub struct PostgresStore {
    engine: Engine<PgBackend>,
}

struct PgBackend {
    pool: PgPool,
    sql: Statements,
    names: Names,
    /// The advances of a batch: `UPDATE` from three arrays (ids, times, texts), returning
    /// the ids it matched. A quarantined row keeps `next_run_time` `NULL`.
    advance: Arc<str>,
    /// The removals of a batch: `DELETE` of an array of ids, returning those it matched.
    remove: Arc<str>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user@host/db`) with default options.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached or the migration fails.
    pub async fn connect(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::connect_with(url, StoreOptions::new()).await
    }

    /// Connects to `url` with `options` (schema, table prefix, codec).
    ///
    /// # Errors
    /// As [`connect`](PostgresStore::connect).
    pub async fn connect_with(
        url: &str,
        options: StoreOptions,
    ) -> Result<PostgresStore, StoreError> {
        let pool = sql::server_pool::<Postgres>(url).await?;
        PostgresStore::from_pool(pool, options).await
    }

    /// A store on a pool you configured, migrating its tables first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the migration fails.
    pub async fn from_pool(
        pool: PgPool,
        options: StoreOptions,
    ) -> Result<PostgresStore, StoreError> {
        let names = Names::new(
            Dialect::Postgres,
            options.schema_name(),
            options.prefix_or("sched_"),
        );
        let t = &names.jobs;
        let backend = PgBackend {
            sql: Statements::new(Dialect::Postgres, &names),
            advance: Arc::from(format!(
                "UPDATE {t} AS j SET \
                 next_run_time = CASE WHEN j.quarantine IS NULL THEN v.next_run_time END, \
                 data = v.data \
                 FROM UNNEST($1::text[], $2::int8[], $3::text[]) AS v(id, next_run_time, data) \
                 WHERE j.id = v.id RETURNING j.id"
            )),
            remove: Arc::from(format!(
                "DELETE FROM {t} WHERE id = ANY($1::text[]) RETURNING id"
            )),
            pool,
            names,
        };
        backend.migrate().await.map_err(|e| sql::map_err(e, None))?;
        Ok(PostgresStore {
            engine: Engine {
                backend,
                codec: options.job_codec().clone(),
                max_id_chars: None,
            },
        })
    }

    /// The connection pool, to share or to run queries of your own.
    pub fn pool(&self) -> &PgPool {
        &self.engine.backend.pool
    }

    /// The pool, table names and codec, for the lease capability (`crate::lease::sql`).
    pub(crate) fn lease_parts(&self) -> (&PgPool, &Names, &std::sync::Arc<dyn crate::JobCodec>) {
        let b = &self.engine.backend;
        (&b.pool, &b.names, &self.engine.codec)
    }

    /// The quoted, qualified name of the jobs table.
    pub fn jobs_table(&self) -> &str {
        &self.engine.backend.names.jobs
    }

    /// The plan of the due-jobs query (`EXPLAIN`), one line per node: it shows the
    /// `(next_run_time, id)` index at work.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn due_jobs_plan(&self) -> Result<String, StoreError> {
        let b = &self.engine.backend;
        let lines: Vec<String> =
            sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN {}", b.sql.due)))
                .bind(sql::micros_floor(Utc::now()))
                .bind(100_i64)
                .fetch_all(&b.pool)
                .await
                .map_err(|e| sql::map_err(e, None))?;
        Ok(lines.join("\n"))
    }

    /// The schema version recorded in the database (the newest migration applied).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar(AssertSqlSafe(
            self.engine.backend.sql.current_version.clone(),
        ))
        .fetch_one(&self.engine.backend.pool)
        .await
        .map_err(|e| sql::map_err(e, None))
    }
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("table", &self.engine.backend.names.jobs)
            .field("codec", &self.engine.codec)
            .finish_non_exhaustive()
    }
}

impl PgBackend {
    /// Creates or upgrades the tables in one transaction, after taking the advisory lock of
    /// this schema and prefix: concurrent connectors wait, then find the work done.
    async fn migrate(&self) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(sql::lock_key(&self.names.lock_name))
            .execute(&mut *tx)
            .await?;
        sqlx::query(AssertSqlSafe(sql::versions_table(
            Dialect::Postgres,
            &self.names,
        )))
        .execute(&mut *tx)
        .await?;
        let current: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.current_version.clone()))
            .fetch_one(&mut *tx)
            .await?;
        for m in sql::migrations(Dialect::Postgres, &self.names) {
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

    /// The changes in at most four round trips whatever their number: one `UPDATE`
    /// joined to the unnested rows of the advances and one `DELETE` of the removed ids,
    /// each returning the ids it matched, in one transaction when both are needed. A batch that names an id twice is
    /// written one change after the other instead, as their order then matters.
    async fn write_changes(&self, changes: &[RowChange<'_>]) -> Result<Vec<bool>, sqlx::Error> {
        let mut seen = HashSet::with_capacity(changes.len());
        if !changes.iter().all(|c| seen.insert(c.id())) {
            return self.write_each(changes).await;
        }
        let (mut ids, mut times, mut data, mut removed) = (vec![], vec![], vec![], vec![]);
        for change in changes {
            match change {
                RowChange::Update(row) => {
                    ids.push(row.id.as_str());
                    times.push(row.next_run_time);
                    data.push(row.data.as_str());
                }
                RowChange::Delete(id) => removed.push(*id),
            }
        }
        let matched = match (ids.is_empty(), removed.is_empty()) {
            // One statement is atomic by itself: no transaction, two round trips fewer.
            (false, true) => self.advance_rows(&self.pool, ids, times, data).await?,
            (true, false) => self.remove_rows(&self.pool, removed).await?,
            _ => {
                let mut tx = self.pool.begin().await?;
                let mut matched = self.advance_rows(&mut *tx, ids, times, data).await?;
                matched.extend(self.remove_rows(&mut *tx, removed).await?);
                tx.commit().await?;
                matched
            }
        };
        let found: HashSet<String> = matched.into_iter().collect();
        Ok(changes.iter().map(|c| found.contains(c.id())).collect())
    }

    /// The advances of a batch (one `UPDATE`); the ids it matched.
    async fn advance_rows<'c>(
        &self,
        on: impl PgExecutor<'c>,
        ids: Vec<&str>,
        times: Vec<Option<i64>>,
        data: Vec<&str>,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(AssertSqlSafe(self.advance.clone()))
            .bind(ids)
            .bind(times)
            .bind(data)
            .fetch_all(on)
            .await
    }

    /// The removals of a batch (one `DELETE`); the ids it matched.
    async fn remove_rows<'c>(
        &self,
        on: impl PgExecutor<'c>,
        ids: Vec<&str>,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(AssertSqlSafe(self.remove.clone()))
            .bind(ids)
            .fetch_all(on)
            .await
    }

    /// A transaction to write in.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    async fn insert_rows(&self, rows: &[NewRow]) -> Result<(), sqlx::Error> {
        if let [row] = rows {
            sqlx::query(AssertSqlSafe(Statements::insert(
                Dialect::Postgres,
                &self.names,
                1,
            )))
            .bind(row.id.as_str())
            .bind(row.next_run_time)
            .bind(row.data.as_str())
            .execute(&self.pool)
            .await?;
            return Ok(());
        }
        let statement = format!(
            "INSERT INTO {} (id, next_run_time, data) \
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[])",
            self.names.jobs
        );
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(INSERT_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
            let times: Vec<Option<i64>> = chunk.iter().map(|r| r.next_run_time).collect();
            let data: Vec<&str> = chunk.iter().map(|r| r.data.as_str()).collect();
            sqlx::query(AssertSqlSafe(statement.clone()))
                .bind(ids)
                .bind(times)
                .bind(data)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await
    }
}

sql_backend!(PgBackend, Postgres);
delegate_job_store!(PostgresStore);
