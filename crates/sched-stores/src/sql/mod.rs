//! What the SQL stores share: the table layout, the statements of each dialect, the
//! migrations, error mapping, and the store logic on top of a few raw row operations.
//!
//! # Ground rules
//! - One table holds the jobs: `id` (primary key, compared byte-wise), `next_run_time`
//!   (microseconds since the Unix epoch, rounded up, so a job is never due early; `NULL`
//!   when paused), `quarantine` (`NULL`, or why the job is set aside) and `data` (the
//!   codec's text). An index on `(next_run_time, id)` serves due jobs and the next run time.
//! - The codec's text is the truth about a job; the `next_run_time` column is written from
//!   the same job in the same statement.
//! - A quarantined row has `next_run_time` `NULL`, like a paused one, so the index never
//!   holds quarantined rows and due-jobs scans never step over them however many there
//!   are; its next run time stays in its text, and release writes it back.
//! - A row that cannot be decoded is quarantined where it is found (one `UPDATE` that sets
//!   `quarantine` and clears `next_run_time`) and skipped; nothing here ever deletes a row
//!   except `remove_job` and `remove_all_jobs`.
//! - Every write is one statement or one transaction, so a dropped future leaves a job
//!   either written whole or not at all.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};

use crate::{JobCodec, QuarantinedJob, ScheduleChange, ScheduleWrite, StoreError};

/// A row as read back.
#[derive(Debug)]
pub(crate) struct Row {
    pub(crate) id: String,
    /// The id's bytes, when they are not text (only in SQLite, written behind our back).
    pub(crate) id_bytes: Option<Vec<u8>>,
    pub(crate) quarantine: Option<String>,
    pub(crate) data: String,
}

/// A row to write.
#[derive(Debug)]
pub(crate) struct NewRow {
    pub(crate) id: String,
    pub(crate) next_run_time: Option<i64>,
    pub(crate) data: String,
}

/// A schedule change to write, one of a batch (see [`Backend::write_schedules`]).
#[derive(Debug)]
pub(crate) enum RowChange<'a> {
    /// Rewrites `next_run_time` and `data`, as [`Backend::update`].
    Update(NewRow),
    /// Deletes the row with this id, as [`Backend::delete`].
    Delete(&'a str),
}

impl RowChange<'_> {
    /// The id of the row the change is for.
    #[cfg_attr(not(any(feature = "postgres", feature = "sqlite")), allow(dead_code))]
    pub(crate) fn id(&self) -> &str {
        match self {
            RowChange::Update(row) => &row.id,
            RowChange::Delete(id) => id,
        }
    }
}

/// The raw operations a SQL backend provides; everything else is [`Engine`]'s.
pub(crate) trait Backend: Send + Sync + 'static {
    /// Inserts every row in one transaction.
    fn insert(&self, rows: &[NewRow]) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Rewrites `next_run_time` and `data` of a row; the number of rows matched.
    fn update(&self, row: &NewRow) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
    fn delete(&self, id: &str) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
    /// Applies the changes in order in one transaction; for each, whether its row exists.
    fn write_schedules(
        &self,
        changes: &[RowChange<'_>],
    ) -> impl Future<Output = Result<Vec<bool>, sqlx::Error>> + Send;
    fn delete_all(&self) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn exists(&self, id: &str) -> impl Future<Output = Result<bool, sqlx::Error>> + Send;
    fn select(&self, id: &str) -> impl Future<Output = Result<Option<Row>, sqlx::Error>> + Send;
    /// Rows not quarantined with `next_run_time <= up_to`, by `(next_run_time, id)`.
    fn select_due(
        &self,
        up_to: i64,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Row>, sqlx::Error>> + Send;
    fn select_next(&self) -> impl Future<Output = Result<Option<i64>, sqlx::Error>> + Send;
    /// Rows not quarantined: scheduled by `(next_run_time, id)`, then paused by id.
    fn select_all(&self) -> impl Future<Output = Result<Vec<Row>, sqlx::Error>> + Send;
    /// Quarantined rows by id.
    fn select_quarantined(&self) -> impl Future<Output = Result<Vec<Row>, sqlx::Error>> + Send;
    /// Sets the quarantine reason and clears `next_run_time`; the number of rows matched.
    /// With `only_if_clear`, leaves a row that is quarantined already as it is.
    fn set_quarantine(
        &self,
        id: &str,
        reason: &str,
        only_if_clear: bool,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
    /// [`set_quarantine`](Backend::set_quarantine) (only if clear) for a row whose id is
    /// not text.
    fn set_quarantine_by_bytes(
        &self,
        id: &[u8],
        reason: &str,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
    /// Clears the quarantine reason and writes `next_run_time` back.
    fn release(
        &self,
        id: &str,
        next_run_time: Option<i64>,
    ) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;
}

/// The SQL dialects, for quoting and placeholders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
    #[cfg(feature = "mysql")]
    MySql,
}

impl Dialect {
    /// `name` as a quoted identifier; any text is safe.
    pub(crate) fn quote(self, name: &str) -> String {
        match self {
            #[cfg(feature = "mysql")]
            Dialect::MySql => format!("`{}`", name.replace('`', "``")),
            #[allow(unreachable_patterns)]
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    /// The placeholder of the `n`th bind (from 1).
    pub(crate) fn ph(self, n: usize) -> String {
        match self {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => format!("${n}"),
            #[allow(unreachable_patterns)]
            _ => {
                let _ = n;
                "?".to_owned()
            }
        }
    }
}

/// The names of the store's tables and index.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    /// The jobs table, quoted and qualified.
    pub(crate) jobs: String,
    /// The schema version table, quoted and qualified.
    pub(crate) versions: String,
    /// The index on `(next_run_time, id)`, quoted, not qualified.
    pub(crate) index: String,
    /// `schema.prefix`, unquoted: what the migration lock is named after.
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) lock_name: String,
}

impl Names {
    pub(crate) fn new(dialect: Dialect, schema: Option<&str>, prefix: &str) -> Names {
        let qualify = |table: &str| match schema {
            Some(s) => format!("{}.{}", dialect.quote(s), dialect.quote(table)),
            None => dialect.quote(table),
        };
        Names {
            jobs: qualify(&format!("{prefix}jobs")),
            versions: qualify(&format!("{prefix}schema_version")),
            index: dialect.quote(&format!("{prefix}jobs_next_run_time")),
            lock_name: format!("{}.{prefix}", schema.unwrap_or("")),
        }
    }
}

/// The statements of one store, built once.
#[derive(Clone, Debug)]
pub(crate) struct Statements {
    pub(crate) update: Arc<str>,
    pub(crate) delete: Arc<str>,
    pub(crate) delete_all: Arc<str>,
    pub(crate) exists: Arc<str>,
    pub(crate) select: Arc<str>,
    pub(crate) due: Arc<str>,
    pub(crate) next: Arc<str>,
    pub(crate) all: Arc<str>,
    pub(crate) quarantined: Arc<str>,
    pub(crate) set_quarantine: Arc<str>,
    pub(crate) set_quarantine_if_clear: Arc<str>,
    pub(crate) release: Arc<str>,
    pub(crate) current_version: Arc<str>,
    pub(crate) record_version: Arc<str>,
}

impl Statements {
    pub(crate) fn new(d: Dialect, n: &Names) -> Statements {
        let t = &n.jobs;
        let cols = "id, quarantine, data";
        let s = |sql: String| Arc::<str>::from(sql);
        Statements {
            // A quarantined row keeps next_run_time NULL (see the ground rules).
            update: s(format!(
                "UPDATE {t} SET next_run_time = CASE WHEN quarantine IS NULL THEN {} END, \
                 data = {} WHERE id = {}",
                d.ph(1),
                d.ph(2),
                d.ph(3)
            )),
            delete: s(format!("DELETE FROM {t} WHERE id = {}", d.ph(1))),
            delete_all: s(format!("DELETE FROM {t}")),
            exists: s(format!("SELECT 1 FROM {t} WHERE id = {}", d.ph(1))),
            select: s(format!("SELECT {cols} FROM {t} WHERE id = {}", d.ph(1))),
            due: s(format!(
                "SELECT {cols} FROM {t} WHERE next_run_time <= {} AND quarantine IS NULL \
                 ORDER BY next_run_time, id LIMIT {}",
                d.ph(1),
                d.ph(2)
            )),
            next: s(format!(
                "SELECT next_run_time FROM {t} WHERE next_run_time IS NOT NULL \
                 AND quarantine IS NULL ORDER BY next_run_time LIMIT 1"
            )),
            all: s(format!(
                "SELECT {cols} FROM {t} WHERE quarantine IS NULL \
                 ORDER BY next_run_time IS NULL, next_run_time, id"
            )),
            quarantined: s(format!(
                "SELECT {cols} FROM {t} WHERE quarantine IS NOT NULL ORDER BY id"
            )),
            set_quarantine: s(format!(
                "UPDATE {t} SET quarantine = {}, next_run_time = NULL WHERE id = {}",
                d.ph(1),
                d.ph(2)
            )),
            set_quarantine_if_clear: s(format!(
                "UPDATE {t} SET quarantine = {}, next_run_time = NULL \
                 WHERE id = {} AND quarantine IS NULL",
                d.ph(1),
                d.ph(2)
            )),
            release: s(format!(
                "UPDATE {t} SET quarantine = NULL, next_run_time = {} WHERE id = {}",
                d.ph(1),
                d.ph(2)
            )),
            current_version: s(format!(
                "SELECT COALESCE(MAX(version), 0) FROM {}",
                n.versions
            )),
            record_version: s(format!(
                "INSERT INTO {} (version, description, applied_at) VALUES ({}, {}, {})",
                n.versions,
                d.ph(1),
                d.ph(2),
                d.ph(3)
            )),
        }
    }

    /// `INSERT` of `rows` rows with `(id, next_run_time, data)` placeholders.
    pub(crate) fn insert(d: Dialect, n: &Names, rows: usize) -> String {
        let mut sql = format!("INSERT INTO {} (id, next_run_time, data) VALUES ", n.jobs);
        for r in 0..rows {
            if r > 0 {
                sql.push_str(", ");
            }
            let b = r * 3;
            sql.push_str(&format!(
                "({}, {}, {})",
                d.ph(b + 1),
                d.ph(b + 2),
                d.ph(b + 3)
            ));
        }
        sql
    }
}

/// One schema migration: a version, what it does, and its statements.
#[derive(Debug)]
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    pub(crate) statements: Vec<String>,
}

/// The statement creating the schema version table.
pub(crate) fn versions_table(d: Dialect, n: &Names) -> String {
    let v = &n.versions;
    match d {
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => format!(
            "CREATE TABLE IF NOT EXISTS {v} (version INTEGER PRIMARY KEY NOT NULL, \
             description TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        ),
        #[cfg(feature = "postgres")]
        Dialect::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {v} (version BIGINT PRIMARY KEY, \
             description TEXT NOT NULL, applied_at BIGINT NOT NULL)"
        ),
        #[cfg(feature = "mysql")]
        Dialect::MySql => format!(
            "CREATE TABLE IF NOT EXISTS {v} (version BIGINT NOT NULL PRIMARY KEY, \
             description VARCHAR(255) NOT NULL, applied_at BIGINT NOT NULL) ENGINE=InnoDB"
        ),
    }
}

/// Every migration, oldest first. A release only ever appends to this list, and a
/// migration only adds (tables, columns, indexes), so a node of the previous release keeps
/// working on a schema migrated by a newer one during a rolling upgrade.
pub(crate) fn migrations(d: Dialect, n: &Names) -> Vec<Migration> {
    let (t, i) = (&n.jobs, &n.index);
    let v1 = match d {
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => vec![
            format!(
                "CREATE TABLE {t} (id TEXT PRIMARY KEY NOT NULL, next_run_time INTEGER, \
                 quarantine TEXT, data TEXT NOT NULL)"
            ),
            format!("CREATE INDEX {i} ON {t} (next_run_time, id)"),
        ],
        #[cfg(feature = "postgres")]
        Dialect::Postgres => vec![
            format!(
                "CREATE TABLE {t} (id TEXT COLLATE \"C\" PRIMARY KEY, next_run_time BIGINT, \
                 quarantine TEXT, data TEXT NOT NULL)"
            ),
            format!("CREATE INDEX {i} ON {t} (next_run_time, id)"),
        ],
        // MySQL commits each DDL statement by itself: a connector that dies before the
        // version is recorded leaves the table behind, so this migration must be able to
        // run again.
        #[cfg(feature = "mysql")]
        Dialect::MySql => vec![format!(
            "CREATE TABLE IF NOT EXISTS {t} (id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL \
             PRIMARY KEY, next_run_time BIGINT NULL, quarantine TEXT NULL, data LONGTEXT NOT NULL, \
             INDEX {i} (next_run_time, id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        )],
    };
    // Several nodes (PostgreSQL and MySQL only): the leases and fires tables (2), the
    // nodes table and the fire indexes (3).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    let leases = [
        crate::lease::sql::migration(d, n),
        crate::lease::sql::migration_nodes(d, n),
    ];
    #[cfg(not(any(feature = "postgres", feature = "mysql")))]
    let leases: [Option<Migration>; 0] = [];
    std::iter::once(Migration {
        version: 1,
        description: "jobs table with the (next_run_time, id) index and quarantine column",
        statements: v1,
    })
    .chain(leases.into_iter().flatten())
    .collect()
}

/// How long a call waits for a pooled connection (or for a server to come back).
#[cfg(any(feature = "postgres", feature = "mysql"))]
const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A lazy pool for a database server at `url`, after one direct connection, so that an
/// unreachable server is reported at once with its cause rather than as a pool timeout.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) async fn server_pool<DB: sqlx::Database>(url: &str) -> Result<sqlx::Pool<DB>, StoreError>
where
    <DB::Connection as sqlx::Connection>::Options: std::str::FromStr<Err = sqlx::Error>,
{
    use sqlx::{ConnectOptions, Connection};
    let connect: <DB::Connection as Connection>::Options =
        url.parse().map_err(|e| map_err(e, None))?;
    connect
        .connect()
        .await
        .map_err(|e| map_err(e, None))?
        .close()
        .await
        .map_err(|e| map_err(e, None))?;
    Ok(sqlx::pool::PoolOptions::<DB>::new()
        .max_connections(10)
        // While the server is down, sqlx retries connecting until this timeout: it bounds
        // how long one store call (and so one dispatcher pass, which goes through the
        // stores in turn) is held up by an outage before the error.
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_lazy_with(connect))
}

/// A 63-bit key for a lock name (FNV-1a), for PostgreSQL advisory locks.
#[cfg(feature = "postgres")]
pub(crate) fn lock_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "sched-migrate:".bytes().chain(name.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 1) as i64
}

/// Now, in microseconds since the epoch, for `applied_at`.
pub(crate) fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

/// A time as whole microseconds since the epoch, rounded up: what is stored.
pub(crate) fn micros_ceil(t: DateTime<Utc>) -> i64 {
    let floor = t.timestamp_micros();
    if t.timestamp_subsec_nanos().is_multiple_of(1000) {
        floor
    } else {
        floor.saturating_add(1)
    }
}

/// A time as whole microseconds since the epoch, rounded down: what is compared.
pub(crate) fn micros_floor(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// Maps a driver error to the store's kinds, the same way for every SQL backend.
pub(crate) fn map_err(e: sqlx::Error, id: Option<&JobId>) -> StoreError {
    use sqlx::error::ErrorKind;
    match e {
        sqlx::Error::Database(db) => {
            if let (ErrorKind::UniqueViolation, Some(id)) = (db.kind(), id) {
                return StoreError::Conflict { id: id.clone() };
            }
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let message = db.to_string();
            let source: crate::BoxError = db;
            // Text too long for a column (PostgreSQL 22001, MySQL 1406 / 22001): the job,
            // not the server, is the problem.
            if code == "22001" || code == "1406" {
                let message = format!("the server refused it: {message}");
                return StoreError::serialization(id.cloned(), message, Some(source));
            }
            StoreError::unavailable(format!("database error: {message}"), Some(source))
        }
        sqlx::Error::RowNotFound => match id {
            Some(id) => StoreError::NotFound { id: id.clone() },
            None => StoreError::unavailable("row not found", Some(Box::new(e))),
        },
        sqlx::Error::Decode(_)
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::TypeNotFound { .. }
        | sqlx::Error::Encode(_) => {
            StoreError::serialization(id.cloned(), e.to_string(), Some(Box::new(e)))
        }
        other => StoreError::unavailable(other.to_string(), Some(Box::new(other))),
    }
}

fn time_from_micros(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| {
        StoreError::serialization(
            None,
            format!("stored next run time {micros} µs is out of range"),
            None,
        )
    })
}

/// The message of a serialization error, without the "cannot store or load job" frame.
fn reason_of(e: &StoreError) -> String {
    match e {
        StoreError::Serialization { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// The store logic shared by the SQL backends.
#[derive(Debug)]
pub(crate) struct Engine<B> {
    pub(crate) backend: B,
    pub(crate) codec: Arc<dyn JobCodec>,
    /// The longest id the id column holds, in characters, when it is limited.
    pub(crate) max_id_chars: Option<usize>,
}

impl<B: Backend> Engine<B> {
    fn encode(&self, job: &Job) -> Result<NewRow, StoreError> {
        if let Some(max) = self.max_id_chars {
            let chars = job.id.as_str().chars().count();
            if chars > max {
                return Err(StoreError::serialization(
                    Some(job.id.clone()),
                    format!(
                        "its id is {chars} characters long; this store keeps ids of at most {max}"
                    ),
                    None,
                ));
            }
        }
        Ok(NewRow {
            id: job.id.as_str().to_owned(),
            next_run_time: job.next_run_time.map(micros_ceil),
            data: self.codec.encode(job)?,
        })
    }

    /// Decodes a row, checking that the job it holds has the row's id.
    fn decode(&self, row: &Row) -> Result<Job, StoreError> {
        let id = JobId::new(&row.id).ok();
        let job = self.codec.decode(&row.data).map_err(|e| {
            StoreError::serialization(
                id.clone(),
                format!("cannot read the stored job: {}", reason_of(&e)),
                Some(Box::new(e)),
            )
        })?;
        if job.id.as_str() != row.id {
            return Err(StoreError::serialization(
                id,
                format!("the stored job says its id is {:?}", job.id.as_str()),
                None,
            ));
        }
        Ok(job)
    }

    /// Decodes a row; a row that fails is quarantined (unless it is already) and the
    /// error returned.
    async fn decode_or_quarantine(&self, row: &Row) -> Result<Job, StoreError> {
        match self.decode(row) {
            Ok(job) => Ok(job),
            Err(e) => {
                self.quarantine_unreadable(row, &e).await?;
                Err(e)
            }
        }
    }

    /// Quarantines a row that failed to decode; whether it is quarantined now (a row whose
    /// id was not text cannot be matched by id, and stays as it is).
    async fn quarantine_unreadable(&self, row: &Row, e: &StoreError) -> Result<bool, StoreError> {
        if row.quarantine.is_some() {
            return Ok(true);
        }
        let n = match &row.id_bytes {
            Some(bytes) => {
                self.backend
                    .set_quarantine_by_bytes(bytes, &reason_of(e))
                    .await
            }
            None => {
                self.backend
                    .set_quarantine(&row.id, &reason_of(e), true)
                    .await
            }
        }
        .map_err(|e| map_err(e, None))?;
        Ok(n > 0)
    }

    /// Decodes rows, quarantining and skipping those that fail. Also says whether any was
    /// skipped, and whether every skipped row is quarantined now (so a new query will not
    /// return it again).
    async fn decode_rows(&self, rows: Vec<Row>) -> Result<(Vec<Job>, bool, bool), StoreError> {
        let mut jobs = Vec::with_capacity(rows.len());
        let (mut skipped, mut all_quarantined) = (false, true);
        for row in &rows {
            match self.decode(row) {
                Ok(job) => jobs.push(job),
                Err(e) => {
                    skipped = true;
                    all_quarantined &= self.quarantine_unreadable(row, &e).await?;
                }
            }
        }
        Ok((jobs, skipped, all_quarantined))
    }

    pub(crate) async fn add_job(&self, job: Job) -> Result<(), StoreError> {
        let row = self.encode(&job)?;
        self.backend
            .insert(std::slice::from_ref(&row))
            .await
            .map_err(|e| map_err(e, Some(&job.id)))
    }

    pub(crate) async fn add_jobs(&self, jobs: Vec<Job>) -> Result<(), StoreError> {
        let mut seen = HashSet::with_capacity(jobs.len());
        for job in &jobs {
            if !seen.insert(job.id.as_str()) {
                return Err(StoreError::Conflict { id: job.id.clone() });
            }
        }
        let rows = jobs
            .iter()
            .map(|j| self.encode(j))
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        match self.backend.insert(&rows).await {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                // Name the id that is stored already (rare path: one lookup per id).
                for job in &jobs {
                    if self
                        .backend
                        .exists(job.id.as_str())
                        .await
                        .map_err(|e| map_err(e, None))?
                    {
                        return Err(StoreError::Conflict { id: job.id.clone() });
                    }
                }
                Err(StoreError::Conflict {
                    id: jobs[0].id.clone(),
                })
            }
            Err(e) => Err(map_err(e, None)),
        }
    }

    pub(crate) async fn update_job(&self, job: Job) -> Result<(), StoreError> {
        let row = self.encode(&job)?;
        let n = self
            .backend
            .update(&row)
            .await
            .map_err(|e| map_err(e, Some(&job.id)))?;
        // MySQL counts changed rows only: an update that changes nothing matches 0.
        if n == 0
            && !self
                .backend
                .exists(&row.id)
                .await
                .map_err(|e| map_err(e, Some(&job.id)))?
        {
            return Err(StoreError::NotFound { id: job.id });
        }
        Ok(())
    }

    /// The batch in one transaction: each advance rewrites the job's row (its text holds
    /// the next run time too, see the ground rules), each removal deletes it. A job that
    /// cannot be encoded stops the batch there; the changes before it are written.
    pub(crate) async fn advance_jobs(&self, changes: &[ScheduleChange<'_>]) -> ScheduleWrite {
        let mut rows = Vec::with_capacity(changes.len());
        let mut error = None;
        for change in changes {
            rows.push(match *change {
                ScheduleChange::Advance { job, next_run_time } => {
                    let mut job = job.clone();
                    job.next_run_time = next_run_time;
                    match self.encode(&job) {
                        Ok(row) => RowChange::Update(row),
                        Err(e) => {
                            error = Some(e);
                            break;
                        }
                    }
                }
                ScheduleChange::Remove(id) => RowChange::Delete(id.as_str()),
            });
        }
        if rows.is_empty() {
            return ScheduleWrite {
                found: Vec::new(),
                error,
            };
        }
        match self.backend.write_schedules(&rows).await {
            Ok(found) => ScheduleWrite { found, error },
            Err(e) => ScheduleWrite {
                found: Vec::new(),
                error: Some(map_err(e, None)),
            },
        }
    }

    pub(crate) async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
        let n = self
            .backend
            .delete(id.as_str())
            .await
            .map_err(|e| map_err(e, Some(id)))?;
        if n == 0 {
            return Err(StoreError::NotFound { id: id.clone() });
        }
        Ok(())
    }

    pub(crate) async fn remove_all_jobs(&self) -> Result<(), StoreError> {
        self.backend
            .delete_all()
            .await
            .map_err(|e| map_err(e, None))
    }

    pub(crate) async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let Some(row) = self
            .backend
            .select(id.as_str())
            .await
            .map_err(|e| map_err(e, Some(id)))?
        else {
            return Ok(None);
        };
        self.decode_or_quarantine(&row).await.map(Some)
    }

    pub(crate) async fn due_jobs(
        &self,
        up_to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Job>, StoreError> {
        let up_to = micros_floor(up_to);
        let mut out = Vec::new();
        // Rows that fail to decode are quarantined as they are met, so they drop out of
        // the next query: loop until the limit is filled or no row was skipped.
        while out.len() < limit {
            let want = limit - out.len();
            let rows = self
                .backend
                .select_due(up_to, i64::try_from(want).unwrap_or(i64::MAX))
                .await
                .map_err(|e| map_err(e, None))?;
            let fetched = rows.len();
            let (jobs, skipped, all_quarantined) = self.decode_rows(rows).await?;
            out.extend(jobs);
            // Query again only when that makes progress: every skipped row is out of the
            // due set now.
            if !skipped || fetched < want || !all_quarantined {
                break;
            }
        }
        Ok(out)
    }

    pub(crate) async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let micros = self
            .backend
            .select_next()
            .await
            .map_err(|e| map_err(e, None))?;
        micros.map(time_from_micros).transpose()
    }

    pub(crate) async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
        let rows = self
            .backend
            .select_all()
            .await
            .map_err(|e| map_err(e, None))?;
        Ok(self.decode_rows(rows).await?.0)
    }

    pub(crate) async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
        let n = self
            .backend
            .set_quarantine(id.as_str(), reason, false)
            .await
            .map_err(|e| map_err(e, Some(id)))?;
        if n == 0
            && !self
                .backend
                .exists(id.as_str())
                .await
                .map_err(|e| map_err(e, Some(id)))?
        {
            return Err(StoreError::NotFound { id: id.clone() });
        }
        Ok(())
    }

    pub(crate) async fn quarantined_jobs(&self) -> Result<Vec<QuarantinedJob>, StoreError> {
        let rows = self
            .backend
            .select_quarantined()
            .await
            .map_err(|e| map_err(e, None))?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                // An empty id cannot be a JobId; such a row was not written by a store.
                let id = JobId::new(&row.id).ok()?;
                Some(QuarantinedJob::new(
                    id,
                    row.quarantine.unwrap_or_default(),
                    row.data,
                ))
            })
            .collect())
    }

    pub(crate) async fn release_job(&self, id: &JobId) -> Result<Job, StoreError> {
        let Some(row) = self
            .backend
            .select(id.as_str())
            .await
            .map_err(|e| map_err(e, Some(id)))?
        else {
            return Err(StoreError::NotFound { id: id.clone() });
        };
        match self.decode(&row) {
            Ok(job) => {
                if row.quarantine.is_some() {
                    self.backend
                        .release(id.as_str(), job.next_run_time.map(micros_ceil))
                        .await
                        .map_err(|e| map_err(e, Some(id)))?;
                }
                Ok(job)
            }
            Err(e) => {
                self.backend
                    .set_quarantine(id.as_str(), &reason_of(&e), false)
                    .await
                    .map_err(|e| map_err(e, Some(id)))?;
                Err(e)
            }
        }
    }
}

/// Implements the raw operations of [`Backend`] (all but `insert` and `write_schedules`,
/// which the backend writes as `insert_rows` and `write_changes`) for `$backend`, a struct
/// with `pool: Pool<$db>` and `sql: Statements`, and a method `begin_write` that opens a
/// transaction to write in. Also gives the backend `write_each`, which writes a batch of
/// schedule changes one statement per change in one transaction.
macro_rules! sql_backend {
    ($backend:ty, $db:ty) => {
        impl $crate::sql::Backend for $backend {
            async fn insert(&self, rows: &[$crate::sql::NewRow]) -> Result<(), sqlx::Error> {
                self.insert_rows(rows).await
            }

            async fn update(&self, row: &$crate::sql::NewRow) -> Result<u64, sqlx::Error> {
                let r = sqlx::query(sqlx::AssertSqlSafe(self.sql.update.clone()))
                    .bind(row.next_run_time)
                    .bind(row.data.as_str())
                    .bind(row.id.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }

            async fn delete(&self, id: &str) -> Result<u64, sqlx::Error> {
                let r = sqlx::query(sqlx::AssertSqlSafe(self.sql.delete.clone()))
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }

            async fn write_schedules(
                &self,
                changes: &[$crate::sql::RowChange<'_>],
            ) -> Result<Vec<bool>, sqlx::Error> {
                self.write_changes(changes).await
            }

            async fn delete_all(&self) -> Result<(), sqlx::Error> {
                sqlx::query(sqlx::AssertSqlSafe(self.sql.delete_all.clone()))
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn exists(&self, id: &str) -> Result<bool, sqlx::Error> {
                let row = sqlx::query(sqlx::AssertSqlSafe(self.sql.exists.clone()))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                Ok(row.is_some())
            }

            async fn select(&self, id: &str) -> Result<Option<$crate::sql::Row>, sqlx::Error> {
                let row = sqlx::query(sqlx::AssertSqlSafe(self.sql.select.clone()))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| read_row(&r)).transpose()
            }

            async fn select_due(
                &self,
                up_to: i64,
                limit: i64,
            ) -> Result<Vec<$crate::sql::Row>, sqlx::Error> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(self.sql.due.clone()))
                    .bind(up_to)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(read_row).collect()
            }

            async fn select_next(&self) -> Result<Option<i64>, sqlx::Error> {
                use sqlx::Row as _;
                let row = sqlx::query(sqlx::AssertSqlSafe(self.sql.next.clone()))
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| r.try_get::<i64, _>(0)).transpose()
            }

            async fn select_all(&self) -> Result<Vec<$crate::sql::Row>, sqlx::Error> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(self.sql.all.clone()))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(read_row).collect()
            }

            async fn select_quarantined(&self) -> Result<Vec<$crate::sql::Row>, sqlx::Error> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(self.sql.quarantined.clone()))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(read_row).collect()
            }

            async fn set_quarantine(
                &self,
                id: &str,
                reason: &str,
                only_if_clear: bool,
            ) -> Result<u64, sqlx::Error> {
                let sql = if only_if_clear {
                    self.sql.set_quarantine_if_clear.clone()
                } else {
                    self.sql.set_quarantine.clone()
                };
                let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(reason)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }

            async fn set_quarantine_by_bytes(
                &self,
                id: &[u8],
                reason: &str,
            ) -> Result<u64, sqlx::Error> {
                let r = sqlx::query(sqlx::AssertSqlSafe(
                    self.sql.set_quarantine_if_clear.clone(),
                ))
                .bind(reason)
                .bind(id)
                .execute(&self.pool)
                .await?;
                Ok(r.rows_affected())
            }

            async fn release(
                &self,
                id: &str,
                next_run_time: Option<i64>,
            ) -> Result<u64, sqlx::Error> {
                let r = sqlx::query(sqlx::AssertSqlSafe(self.sql.release.clone()))
                    .bind(next_run_time)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(r.rows_affected())
            }
        }

        impl $backend {
            /// The changes in order, one statement each, in one transaction; for each,
            /// whether its row exists.
            async fn write_each(
                &self,
                changes: &[$crate::sql::RowChange<'_>],
            ) -> Result<Vec<bool>, sqlx::Error> {
                use $crate::sql::RowChange;
                let mut tx = self.begin_write().await?;
                let mut found = Vec::with_capacity(changes.len());
                for change in changes {
                    let matched = match change {
                        RowChange::Update(row) => {
                            let n = sqlx::query(sqlx::AssertSqlSafe(self.sql.update.clone()))
                                .bind(row.next_run_time)
                                .bind(row.data.as_str())
                                .bind(row.id.as_str())
                                .execute(&mut *tx)
                                .await?
                                .rows_affected();
                            // MySQL counts changed rows only: an update that changes
                            // nothing matches 0.
                            n > 0
                                || sqlx::query(sqlx::AssertSqlSafe(self.sql.exists.clone()))
                                    .bind(row.id.as_str())
                                    .fetch_optional(&mut *tx)
                                    .await?
                                    .is_some()
                        }
                        RowChange::Delete(id) => {
                            sqlx::query(sqlx::AssertSqlSafe(self.sql.delete.clone()))
                                .bind(*id)
                                .execute(&mut *tx)
                                .await?
                                .rows_affected()
                                > 0
                        }
                    };
                    found.push(matched);
                }
                tx.commit().await?;
                Ok(found)
            }
        }

        /// Reads a row. Text that is not valid UTF-8 (only SQLite, whose columns take any
        /// value, can hold it) is read lossily, so that the row is quarantined by the codec
        /// rather than failing the whole query.
        fn read_row(r: &<$db as sqlx::Database>::Row) -> Result<$crate::sql::Row, sqlx::Error> {
            use sqlx::Row as _;
            let text = |i: usize| -> Result<Option<String>, sqlx::Error> {
                match r.try_get::<Option<String>, _>(i) {
                    Ok(v) => Ok(v),
                    Err(e) => match r.try_get::<Option<Vec<u8>>, _>(i) {
                        Ok(bytes) => Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned())),
                        Err(_) => Err(e),
                    },
                }
            };
            let id_bytes = match r.try_get::<String, _>(0) {
                Ok(_) => None,
                Err(_) => r.try_get::<Vec<u8>, _>(0).ok(),
            };
            Ok($crate::sql::Row {
                id_bytes,
                id: text(0)?.unwrap_or_default(),
                quarantine: text(1)?,
                data: text(2)?.unwrap_or_default(),
            })
        }
    };
}

pub(crate) use sql_backend;

/// Implements [`JobStore`](crate::JobStore) for `$store`, a struct with
/// `engine: Engine<_>`, by handing every call to the engine.
macro_rules! delegate_job_store {
    ($store:ty) => {
        impl $crate::JobStore for $store {
            async fn add_job(&self, job: Job) -> Result<(), StoreError> {
                self.engine.add_job(job).await
            }
            async fn update_job(&self, job: Job) -> Result<(), StoreError> {
                self.engine.update_job(job).await
            }
            async fn remove_job(&self, id: &JobId) -> Result<(), StoreError> {
                self.engine.remove_job(id).await
            }
            async fn advance_jobs(
                &self,
                changes: &[$crate::ScheduleChange<'_>],
            ) -> $crate::ScheduleWrite {
                self.engine.advance_jobs(changes).await
            }
            async fn remove_all_jobs(&self) -> Result<(), StoreError> {
                self.engine.remove_all_jobs().await
            }
            async fn lookup_job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
                self.engine.lookup_job(id).await
            }
            async fn due_jobs(
                &self,
                up_to: DateTime<Utc>,
                limit: usize,
            ) -> Result<Vec<Job>, StoreError> {
                self.engine.due_jobs(up_to, limit).await
            }
            async fn next_run_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
                self.engine.next_run_time().await
            }
            async fn all_jobs(&self) -> Result<Vec<Job>, StoreError> {
                self.engine.all_jobs().await
            }
            fn is_persistent(&self) -> bool {
                true
            }
            async fn add_jobs(&self, jobs: Vec<Job>) -> Result<(), StoreError> {
                self.engine.add_jobs(jobs).await
            }
            async fn quarantine_job(&self, id: &JobId, reason: &str) -> Result<(), StoreError> {
                self.engine.quarantine_job(id, reason).await
            }
            async fn quarantined_jobs(&self) -> Result<Vec<QuarantinedJob>, StoreError> {
                self.engine.quarantined_jobs().await
            }
            async fn release_job(&self, id: &JobId) -> Result<Job, StoreError> {
                self.engine.release_job(id).await
            }
        }
    };
}

pub(crate) use delegate_job_store;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn micros_round_up_when_stored_and_down_when_compared() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let exact = t + chrono::Duration::microseconds(5);
        assert_eq!(micros_ceil(exact), micros_floor(exact));
        let between = t + chrono::Duration::nanoseconds(5_500);
        assert_eq!(micros_ceil(between), micros_floor(t) + 6);
        assert_eq!(micros_floor(between), micros_floor(t) + 5);
        assert_eq!(time_from_micros(micros_floor(exact)).unwrap(), exact);
        assert!(time_from_micros(i64::MAX).is_err());
    }
}
