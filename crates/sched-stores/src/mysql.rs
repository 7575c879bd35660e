//! [`MySqlStore`]: jobs in a MySQL 8 or MariaDB (10.11 and later) table.
//!
//! The tables are created and migrated on connect while holding the named lock
//! `GET_LOCK('sched-migrate:<database>.<prefix>')`, so nodes starting at once migrate
//! exactly once (MySQL commits DDL statement by statement, so the lock, not a transaction,
//! is what serializes them). [`StoreOptions::schema`] names the database holding the tables
//! (which must exist); [`StoreOptions::prefix`] names them.
//!
//! ```no_run
//! use sched_stores::{JobStore, StoreOptions};
//! use sched_stores::mysql::MySqlStore;
//!
//! # async fn demo() -> Result<(), sched_stores::StoreError> {
//! let store = MySqlStore::connect("mysql://root@127.0.0.1/app").await?;
//! println!("next run at {:?}", store.next_run_time().await?);
//! # Ok(())
//! # }
//! ```

use std::fmt;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};
use sqlx::mysql::MySqlPool;
use sqlx::{AssertSqlSafe, MySql};

use crate::sql::{
    self, Dialect, Engine, Names, NewRow, RowChange, Statements, delegate_job_store, sql_backend,
};
use crate::{QuarantinedJob, StoreError, StoreOptions};

/// Rows per multi-row `INSERT` in a batch.
const INSERT_CHUNK: usize = 500;
/// Bytes of job text per multi-row `INSERT`, well under the servers' default packet limits.
const INSERT_BYTES: usize = 4 << 20;
/// How long a connector waits for another one's migration.
const LOCK_WAIT_SECS: i64 = 60;

/// A persistent store in MySQL 8 or MariaDB.
///
/// Jobs are the JSON of their [`StoredJob`](sched_core::job::StoredJob) form in a
/// `LONGTEXT` column, with the id (`utf8mb4_bin`, so ids compare byte-wise and `"a"` and
/// `"A"` are different jobs, as in every store; at most 255 characters), the next run time
/// in microseconds and the quarantine reason in columns of their own; an index on
/// `(next_run_time, id)` serves due jobs and the next run time.
pub struct MySqlStore {
    engine: Engine<MySqlBackend>,
}

struct MySqlBackend {
    pool: MySqlPool,
    sql: Statements,
    names: Names,
}

impl MySqlStore {
    /// Connects to `url` (`mysql://user:password@host/db`) with default options.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached or the migration fails.
    pub async fn connect(url: &str) -> Result<MySqlStore, StoreError> {
        MySqlStore::connect_with(url, StoreOptions::new()).await
    }

    /// Connects to `url` with `options` (database, table prefix, codec).
    ///
    /// # Errors
    /// As [`connect`](MySqlStore::connect).
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<MySqlStore, StoreError> {
        let pool = sql::server_pool::<MySql>(url).await?;
        MySqlStore::from_pool(pool, options).await
    }

    /// A store on a pool you configured, migrating its tables first.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the migration fails.
    pub async fn from_pool(
        pool: MySqlPool,
        options: StoreOptions,
    ) -> Result<MySqlStore, StoreError> {
        let names = Names::new(
            Dialect::MySql,
            options.schema_name(),
            options.prefix_or("sched_"),
        );
        let backend = MySqlBackend {
            sql: Statements::new(Dialect::MySql, &names),
            pool,
            names,
        };
        backend.migrate().await?;
        Ok(MySqlStore {
            engine: Engine {
                backend,
                codec: options.job_codec().clone(),
                max_id_chars: Some(255),
            },
        })
    }

    /// The connection pool, to share or to run queries of your own.
    pub fn pool(&self) -> &MySqlPool {
        &self.engine.backend.pool
    }

    /// The pool, table names and codec, for the lease capability (`crate::lease::sql`).
    pub(crate) fn lease_parts(&self) -> (&MySqlPool, &Names, &std::sync::Arc<dyn crate::JobCodec>) {
        let b = &self.engine.backend;
        (&b.pool, &b.names, &self.engine.codec)
    }

    /// The quoted, qualified name of the jobs table.
    pub fn jobs_table(&self) -> &str {
        &self.engine.backend.names.jobs
    }

    /// The plan of the due-jobs query (`EXPLAIN FORMAT=JSON`): it shows the
    /// `(next_run_time, id)` index at work.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the server cannot be reached.
    pub async fn due_jobs_plan(&self) -> Result<String, StoreError> {
        let b = &self.engine.backend;
        let plan: String =
            sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN FORMAT=JSON {}", b.sql.due)))
                .bind(sql::micros_floor(Utc::now()))
                .bind(100_i64)
                .fetch_one(&b.pool)
                .await
                .map_err(|e| sql::map_err(e, None))?;
        Ok(plan)
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

impl fmt::Debug for MySqlStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MySqlStore")
            .field("table", &self.engine.backend.names.jobs)
            .field("codec", &self.engine.codec)
            .finish_non_exhaustive()
    }
}

/// The name of the migration lock (MySQL allows 64 characters).
fn lock_name(names: &Names) -> String {
    let name = format!("sched-migrate:{}", names.lock_name);
    if name.len() <= 64 {
        return name;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("sched-migrate:{h:016x}")
}

impl MySqlBackend {
    /// Creates or upgrades the tables while holding the named migration lock, on one
    /// connection that is closed afterwards (closing releases the lock whatever happens,
    /// a dropped future included).
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| sql::map_err(e, None))?;
        conn.close_on_drop();
        let lock = lock_name(&self.names);
        let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&lock)
            .bind(LOCK_WAIT_SECS)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| sql::map_err(e, None))?;
        if got != Some(1) {
            return Err(StoreError::unavailable(
                format!("timed out after {LOCK_WAIT_SECS} s waiting for the migration lock {lock}"),
                None,
            ));
        }
        let result = async {
            sqlx::query(AssertSqlSafe(sql::versions_table(
                Dialect::MySql,
                &self.names,
            )))
            .execute(&mut *conn)
            .await?;
            let current: i64 = sqlx::query_scalar(AssertSqlSafe(self.sql.current_version.clone()))
                .fetch_one(&mut *conn)
                .await?;
            for m in sql::migrations(Dialect::MySql, &self.names) {
                if m.version <= current {
                    continue;
                }
                for statement in m.statements {
                    match sqlx::query(AssertSqlSafe(statement))
                        .execute(&mut *conn)
                        .await
                    {
                        Ok(_) => {}
                        // MySQL has no `ADD INDEX IF NOT EXISTS`: an index that exists
                        // already (error 1061) was created by an earlier run of this
                        // migration that died before recording its version.
                        Err(sqlx::Error::Database(db))
                            if db
                                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                                .is_some_and(|e| e.number() == 1061) => {}
                        Err(e) => return Err(e),
                    }
                }
                sqlx::query(AssertSqlSafe(self.sql.record_version.clone()))
                    .bind(m.version)
                    .bind(m.description)
                    .bind(sql::now_micros())
                    .execute(&mut *conn)
                    .await?;
            }
            Ok::<(), sqlx::Error>(())
        }
        .await;
        let released = sqlx::query("SELECT RELEASE_LOCK(?)")
            .bind(&lock)
            .execute(&mut *conn)
            .await;
        result.map_err(|e| sql::map_err(e, None))?;
        released.map_err(|e| sql::map_err(e, None))?;
        Ok(())
    }

    /// A transaction to write in.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'_, MySql>, sqlx::Error> {
        self.pool.begin().await
    }

    /// The changes one statement each, in one transaction.
    async fn write_changes(&self, changes: &[RowChange<'_>]) -> Result<Vec<bool>, sqlx::Error> {
        self.write_each(changes).await
    }

    async fn insert_rows(&self, rows: &[NewRow]) -> Result<(), sqlx::Error> {
        if let [row] = rows {
            sqlx::query(AssertSqlSafe(Statements::insert(
                Dialect::MySql,
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
        let mut tx = self.pool.begin().await?;
        let mut start = 0;
        while start < rows.len() {
            // Up to INSERT_CHUNK rows, fewer when their text passes INSERT_BYTES.
            let mut end = start;
            let mut bytes = 0;
            while end < rows.len()
                && end - start < INSERT_CHUNK
                && (end == start || bytes < INSERT_BYTES)
            {
                bytes += rows[end].data.len();
                end += 1;
            }
            let chunk = &rows[start..end];
            let statement = Statements::insert(Dialect::MySql, &self.names, chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(statement));
            for row in chunk {
                query = query
                    .bind(row.id.as_str())
                    .bind(row.next_run_time)
                    .bind(row.data.as_str());
            }
            query.execute(&mut *tx).await?;
            start = end;
        }
        tx.commit().await
    }
}

sql_backend!(MySqlBackend, MySql);
delegate_job_store!(MySqlStore);
