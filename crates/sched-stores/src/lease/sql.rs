//! [`LeaseStore`] for PostgreSQL and MySQL/MariaDB.
//!
//! # Tables
//! Migration 2:
//! - `<prefix>leases`: `job_id` (primary key), `node` (the last holder), `until_us` (the
//!   lease deadline, µs on the store's clock; `0` when released) and `epoch` (the claim
//!   counter; a released row keeps it, so an epoch is not reused while the job exists).
//!   On PostgreSQL, releasing only zeroes `until_us`, leaving the indexed `node` as it is,
//!   so a node that claims the same jobs again and again updates its lease rows in place
//!   (HOT updates) without touching the `node` index. MySQL/MariaDB also clear `node`: an
//!   InnoDB `UPDATE … WHERE node = ?` (renew) locks every index entry it scans, and
//!   released rows left under a node's name made each renewal lock all the leases that node
//!   ever held.
//! - `<prefix>fires`: primary key `(job_id, slot_us)` — the fire identity — with the node
//!   that holds it (`''` while it waits for adoption) and its epoch, `created_us`, and
//!   `finished_us`/`outcome` once recorded.
//!
//! Migration 3:
//! - `<prefix>nodes`: `id` (primary key), `host`, `pid`, `started_us` (the node's clock),
//!   `heartbeat_us` and `expires_us` (the store's clock), `skew_us` (node minus store).
//! - Indexes on the fires: PostgreSQL has partial ones, `(job_id, node) WHERE finished_us
//!   IS NULL` (max_instances counts, running fires, adoption: only unfinished fires are in
//!   it) and `(finished_us) WHERE finished_us IS NOT NULL` (pruning); MySQL/MariaDB have
//!   none, so `(finished_us, node)` (running fires, adoption, pruning) and
//!   `(job_id, finished_us)` (max_instances counts).
//!
//! The jobs table is not changed: the single-node statements never see these tables. Every
//! migration only creates (`IF NOT EXISTS`; on MySQL an index that exists already, error
//! 1061, counts as created), so a connector that died halfway can run it again.
//!
//! # Claims
//! PostgreSQL claims in one statement: a `SELECT … FOR UPDATE OF j SKIP LOCKED LIMIT n` of
//! due jobs without a live lease, feeding an upsert of their leases that only takes over a
//! lease that has ended (`ON CONFLICT … DO UPDATE … WHERE until_us <= now`), so a claim that
//! raced another one returns nothing for that job. The existing lease rows are locked with
//! `SKIP LOCKED` first and a job whose lease row is locked is left out: a claim never waits
//! for a lease row, so it cannot deadlock with a commit, which locks the lease rows before
//! the job rows (the claim's snapshot can predate another node's claim of a job whose row it
//! then locks, and that node's commit waits for the job row). MySQL/MariaDB (no `UPDATE … RETURNING`)
//! does the same in a `READ COMMITTED` transaction: the `SELECT … FOR UPDATE SKIP LOCKED`,
//! the same conditional upsert (`ON DUPLICATE KEY UPDATE` with `IF(until_us <= now, …)`),
//! then a read of which leases are now this claim's.
//!
//! # Batches
//! PostgreSQL commits a whole [`commit_many`](LeaseStore::commit_many) batch in one
//! statement (arrays bound with `UNNEST`; data-modifying CTEs lock the held leases, count
//! the unfinished fires, insert the fires, write the jobs and release the leases) and
//! finishes a batch with one `UPDATE … FROM UNNEST(…)`. MySQL/MariaDB commit a batch in one
//! `READ COMMITTED` transaction of a fixed number of statements (lock the held leases, count
//! the unfinished fires, insert the fires — row by row only when a slot exists already —,
//! write the jobs from a derived table, release the leases), whatever its size.
//!
//! # Deadlocks
//! Under `SKIP LOCKED` with concurrent upserts, InnoDB sometimes picks a claim or commit
//! as a deadlock victim (error 1213) or times out a lock wait (1205), and PostgreSQL can
//! report a deadlock (`40P01`) when a claim and a commit meet on a lease that just ended.
//! Such a transaction wrote nothing; the store runs it again, up to 5 times, after a
//! randomized pause of a few milliseconds (growing with each attempt), before reporting
//! [`StoreError::Unavailable`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sched_core::job::{Job, JobId};
use sqlx::AssertSqlSafe;

use super::{
    Adopted, Claim, Commit, CommitRequest, Finished, FireId, Heartbeat, LeaseStore, NodeInfo,
    NodeRecord, RunningFire, check_node, from_micros, lease_micros,
};
use crate::sql::{self, Dialect, Migration, Names};
use crate::{JobCodec, StoreError};

/// The version of the first lease migration (leases and fires) in the SQL migration list.
pub(crate) const VERSION: i64 = 2;
/// The version of the second one (nodes, fire indexes).
pub(crate) const VERSION_NODES: i64 = 3;

/// How many times a transaction that met a deadlock or lock timeout is run.
const ATTEMPTS: u32 = 5;

/// The quoted, qualified name of a sibling of the jobs table (`…jobs` → `…{name}`).
fn sibling(jobs: &str, name: &str) -> String {
    // `jobs` ends with `jobs"` (PostgreSQL) or ``jobs` `` (MySQL): swap the last word.
    let quote = &jobs[jobs.len() - 1..];
    format!("{}{name}{quote}", &jobs[..jobs.len() - 5])
}

/// The tables of the lease capability.
#[derive(Clone, Debug)]
pub(crate) struct LeaseNames {
    jobs: String,
    leases: String,
    fires: String,
    nodes: String,
}

impl LeaseNames {
    pub(crate) fn new(n: &Names) -> LeaseNames {
        LeaseNames {
            jobs: n.jobs.clone(),
            leases: sibling(&n.jobs, "leases"),
            fires: sibling(&n.jobs, "fires"),
            nodes: sibling(&n.jobs, "nodes"),
        }
    }
}

/// Migration 2: the leases and fires tables. Only creates tables (`IF NOT EXISTS`, so a
/// MySQL connector that died between a DDL statement and the version record can run it
/// again); nodes of the previous release keep working beside it.
pub(crate) fn migration(d: Dialect, n: &Names) -> Option<Migration> {
    let l = LeaseNames::new(n);
    let (leases, fires) = (&l.leases, &l.fires);
    let index = sibling(&n.index, "leases_node_idx");
    let statements = match d {
        #[cfg(feature = "postgres")]
        Dialect::Postgres => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {leases} (job_id TEXT COLLATE \"C\" PRIMARY KEY, \
                 node TEXT NOT NULL, until_us BIGINT NOT NULL, epoch BIGINT NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {index} ON {leases} (node)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {fires} (job_id TEXT COLLATE \"C\" NOT NULL, \
                 slot_us BIGINT NOT NULL, node TEXT NOT NULL, epoch BIGINT NOT NULL, \
                 created_us BIGINT NOT NULL, finished_us BIGINT NULL, outcome TEXT NULL, \
                 PRIMARY KEY (job_id, slot_us))"
            ),
        ],
        #[cfg(feature = "mysql")]
        Dialect::MySql => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {leases} (job_id VARCHAR(255) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, node VARCHAR(255) NOT NULL, \
                 until_us BIGINT NOT NULL, epoch BIGINT NOT NULL, INDEX {index} (node)) \
                 ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {fires} (job_id VARCHAR(255) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_bin NOT NULL, slot_us BIGINT NOT NULL, node VARCHAR(255) NOT NULL, \
                 epoch BIGINT NOT NULL, created_us BIGINT NOT NULL, finished_us BIGINT NULL, \
                 outcome TEXT NULL, PRIMARY KEY (job_id, slot_us)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            ),
        ],
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    Some(Migration {
        version: VERSION,
        description: "leases and fires tables for several nodes",
        statements,
    })
}

/// Migration 3: the nodes table and the indexes that keep max_instances counts, running
/// fires, adoption and pruning off full scans of the fires. Only creates (see the module
/// docs for re-running it).
pub(crate) fn migration_nodes(d: Dialect, n: &Names) -> Option<Migration> {
    let l = LeaseNames::new(n);
    let (nodes, fires) = (&l.nodes, &l.fires);
    let running = sibling(&n.index, "fires_running_idx");
    let finished = sibling(&n.index, "fires_finished_idx");
    let statements = match d {
        #[cfg(feature = "postgres")]
        Dialect::Postgres => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {nodes} (id TEXT COLLATE \"C\" PRIMARY KEY, \
                 host TEXT NOT NULL, pid BIGINT NOT NULL, started_us BIGINT NOT NULL, \
                 heartbeat_us BIGINT NOT NULL, expires_us BIGINT NOT NULL, skew_us BIGINT NOT NULL)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {running} ON {fires} (job_id, node) \
                 WHERE finished_us IS NULL"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {finished} ON {fires} (finished_us) \
                 WHERE finished_us IS NOT NULL"
            ),
        ],
        #[cfg(feature = "mysql")]
        Dialect::MySql => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {nodes} (id VARCHAR(255) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY, host VARCHAR(255) NOT NULL, \
                 pid BIGINT NOT NULL, started_us BIGINT NOT NULL, heartbeat_us BIGINT NOT NULL, \
                 expires_us BIGINT NOT NULL, skew_us BIGINT NOT NULL) \
                 ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
            ),
            format!("ALTER TABLE {fires} ADD INDEX {finished} (finished_us, node)"),
            format!("ALTER TABLE {fires} ADD INDEX {running} (job_id, finished_us)"),
        ],
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    Some(Migration {
        version: VERSION_NODES,
        description: "nodes table; fire indexes for running fires, adoption and pruning",
        statements,
    })
}

/// Decodes claimed rows, leaving out those whose text cannot be read (their lease expires).
fn decode_claims(codec: &Arc<dyn JobCodec>, rows: Vec<(String, i64, i64, String)>) -> Vec<Claim> {
    rows.into_iter()
        .filter_map(|(id, epoch, until, data)| {
            let job = codec.decode(&data).ok()?;
            (job.id.as_str() == id).then(|| Claim {
                job,
                epoch,
                expires_at: from_micros(until),
            })
        })
        .collect()
}

/// A job's text as stored, decoded; `None` when it cannot be read or is not that job.
fn decode_job(codec: &Arc<dyn JobCodec>, id: &str, data: Option<&str>) -> Option<Job> {
    let job = codec.decode(data?).ok()?;
    (job.id.as_str() == id).then_some(job)
}

fn err(e: sqlx::Error) -> StoreError {
    sql::map_err(e, None)
}

/// Whether `e` is a deadlock or lock timeout after which the transaction wrote nothing and
/// can run again (PostgreSQL `40P01`/`40001`, MySQL 1213/1205).
fn is_retryable(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = e else {
        return false;
    };
    #[cfg(feature = "mysql")]
    if let Some(my) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
        return matches!(my.number(), 1213 | 1205);
    }
    matches!(db.code().as_deref(), Some("40P01" | "40001"))
}

/// Runs the transaction `attempt` again after a deadlock or lock timeout, up to
/// [`ATTEMPTS`] times, with a short randomized pause.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut n = 1;
    loop {
        match attempt().await {
            Err(e) if n < ATTEMPTS && is_retryable(&e) => {
                let ms = fastrand::u64(2..10) * u64::from(n);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                n += 1;
            }
            other => return other.map_err(err),
        }
    }
}

/// A job id read back, for a fire (an empty one cannot be a fire's).
fn fire_id(job: &str, slot_us: i64) -> Option<FireId> {
    Some(FireId::new(JobId::new(job).ok()?, from_micros(slot_us)))
}

/// A `usize` limit as an SQL bind.
fn limit_bind(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// One commit item after removing repeats, encoded.
struct Item<'a> {
    /// Its position in the batch.
    at: usize,
    req: &'a CommitRequest<'a>,
    data: String,
}

/// The items of a batch to send: the first of each job id, encoded. Later repeats answer
/// [`Commit::Lost`] (the first releases the lease).
fn unique_items<'a>(
    codec: &Arc<dyn JobCodec>,
    batch: &'a [CommitRequest<'a>],
    max_id_chars: Option<usize>,
) -> Result<Vec<Item<'a>>, StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    let mut items = Vec::with_capacity(batch.len());
    for (at, req) in batch.iter().enumerate() {
        if !seen.insert(req.job.id.as_str()) {
            continue;
        }
        if let Some(max) = max_id_chars {
            let chars = req.job.id.as_str().chars().count();
            if chars > max {
                return Err(StoreError::serialization(
                    Some(req.job.id.clone()),
                    format!(
                        "its id is {chars} characters long; this store keeps ids of at most {max}"
                    ),
                    None,
                ));
            }
        }
        items.push(Item {
            at,
            req,
            data: codec.encode(req.job)?,
        });
    }
    Ok(items)
}

/// What the store said about one unique item: whether the lease was held, whether fires
/// could be created (max_instances), and the slots created.
struct Outcome {
    held: bool,
    admitted: bool,
    created: Vec<i64>,
}

/// The answers of a whole batch, in order, from the outcomes of its unique items.
fn answers(
    batch: &[CommitRequest<'_>],
    items: &[Item<'_>],
    mut outcomes: Vec<Outcome>,
) -> Vec<Commit> {
    let mut out = vec![Commit::Lost; batch.len()];
    for (item, o) in items.iter().zip(outcomes.drain(..)) {
        out[item.at] = match (o.held, o.admitted) {
            (false, _) => Commit::Lost,
            (true, false) => Commit::Refused,
            (true, true) => Commit::Committed {
                created: in_order(&item.req.job.id, item.req.slots, &o.created),
            },
        };
    }
    out
}

/// The created slots as fire ids, in the order `slots` gave them.
fn in_order(job: &JobId, slots: &[DateTime<Utc>], created: &[i64]) -> Vec<FireId> {
    slots
        .iter()
        .filter(|t| created.contains(&t.timestamp_micros()))
        .map(|t| FireId::new(job.clone(), *t))
        .collect()
}

/// A node record from its row: id, host, pid, started, heartbeat, expires, skew (µs), and
/// the store's now (µs).
type NodeRow = (String, String, i64, i64, i64, i64, i64, i64);

fn node_record(r: NodeRow) -> NodeRecord {
    let (id, host, pid, started, heartbeat, expires, skew, now) = r;
    NodeRecord {
        id,
        host,
        pid: u32::try_from(pid).unwrap_or(0),
        started_at: from_micros(started),
        heartbeat_at: from_micros(heartbeat),
        expires_at: from_micros(expires),
        clock_skew: TimeDelta::microseconds(skew),
        alive: expires > now,
    }
}

/// A running fire from its row: job, slot, node, epoch, created (µs).
fn running_fire(
    (job, slot, node, epoch, created): (String, i64, String, i64, i64),
) -> Option<RunningFire> {
    Some(RunningFire {
        fire: fire_id(&job, slot)?,
        node,
        epoch,
        created_at: from_micros(created),
    })
}

/// Adopted fires from their rows: job, slot, new epoch, job text (if the job exists).
fn adopted(
    codec: &Arc<dyn JobCodec>,
    rows: Vec<(String, i64, i64, Option<String>)>,
) -> Vec<Adopted> {
    rows.into_iter()
        .filter_map(|(job, slot, epoch, data)| {
            Some(Adopted {
                job: decode_job(codec, &job, data.as_deref()),
                fire: fire_id(&job, slot)?,
                epoch,
            })
        })
        .collect()
}

/// The name of the notification channel of a store (PostgreSQL channel names are
/// identifiers of at most 63 bytes: a longer one is replaced by a hash).
#[cfg(feature = "postgres")]
pub(crate) fn channel_name(n: &Names) -> String {
    let name = format!("sched_changes:{}", n.lock_name);
    if name.len() <= 63 {
        return name;
    }
    format!(
        "sched_changes:{:016x}",
        sql::lock_key(&format!("changes:{}", n.lock_name))
    )
}

#[cfg(feature = "postgres")]
/// The `LeaseStore` methods whose SQL is the same in both dialects, written once for the
/// two impls (each module's `NOW` is its dialect's store clock).
macro_rules! same_on_both {
    (store_time) => {
        async fn store_time(&self) -> Result<DateTime<Utc>, StoreError> {
            let (pool, _, _) = self.lease_parts();
            let us: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT {NOW}")))
                .fetch_one(pool)
                .await
                .map_err(err)?;
            Ok(from_micros(us))
        }
    };
    (running_fires) => {
        async fn running_fires(&self) -> Result<Vec<RunningFire>, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let fires = LeaseNames::new(names).fires;
            let rows: Vec<(String, i64, String, i64, i64)> =
                sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT job_id, slot_us, node, epoch, created_us FROM {fires} \
                     WHERE finished_us IS NULL ORDER BY created_us, job_id, slot_us"
                )))
                .fetch_all(pool)
                .await
                .map_err(err)?;
            Ok(rows.into_iter().filter_map(running_fire).collect())
        }
    };
}

mod pg {
    use sqlx::postgres::{PgListener, PgPoolOptions};

    use super::*;
    use crate::lease::feed;
    use crate::postgres::PostgresStore;

    /// The store's clock in µs, at the moment the expression is evaluated.
    const NOW: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::int8";

    /// Batches up to this size run as prepared statements; larger ones unprepared.
    ///
    /// A large batch statement (commit, finish) runs as an unnamed statement
    /// (`persistent(false)`), so PostgreSQL plans it with its actual arrays: a cached
    /// generic plan of it, which the server switches to after five runs, measured up to a
    /// second per batch of 1,000 against some 50 ms for a custom plan. A small one (a single
    /// `commit_fires` or `finish_fire`) keeps the prepared statement: planning the commit
    /// statement costs some 10 ms of server CPU, which at hundreds of single commits a
    /// second starved the proof test's connection pools.
    const SMALL_BATCH: usize = 16;

    impl LeaseStore for PostgresStore {
        same_on_both!(store_time);

        async fn claim_due(
            &self,
            node: &str,
            up_to: DateTime<Utc>,
            lease: Duration,
            limit: usize,
        ) -> Result<Vec<Claim>, StoreError> {
            check_node(node)?;
            let (pool, names, codec) = self.lease_parts();
            let LeaseNames { jobs, leases, .. } = LeaseNames::new(names);
            let statement = format!(
                "WITH t AS (SELECT {NOW} AS now_us), \
                 due AS (SELECT j.id, j.data FROM {jobs} j, t \
                   WHERE j.next_run_time <= $1 AND j.quarantine IS NULL \
                   AND NOT EXISTS (SELECT 1 FROM {leases} l WHERE l.job_id = j.id \
                     AND l.until_us > t.now_us) \
                   ORDER BY j.next_run_time, j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED), \
                 lockable AS (SELECT l.job_id FROM {leases} l \
                   WHERE l.job_id IN (SELECT id FROM due) FOR UPDATE SKIP LOCKED), \
                 free AS (SELECT due.id FROM due WHERE due.id IN (SELECT job_id FROM lockable) \
                   OR NOT EXISTS (SELECT 1 FROM {leases} x WHERE x.job_id = due.id)), \
                 claimed AS (INSERT INTO {leases} AS l (job_id, node, until_us, epoch) \
                   SELECT free.id, $3, t.now_us + $4, 1 FROM free, t \
                   ON CONFLICT (job_id) DO UPDATE SET node = EXCLUDED.node, \
                     until_us = EXCLUDED.until_us, epoch = l.epoch + 1 \
                   WHERE l.until_us <= EXCLUDED.until_us - $4 \
                   RETURNING l.job_id, l.epoch, l.until_us) \
                 SELECT c.job_id, c.epoch, c.until_us, due.data \
                 FROM claimed c JOIN due ON due.id = c.job_id"
            );
            let rows: Vec<(String, i64, i64, String)> = retrying(|| {
                sqlx::query_as(AssertSqlSafe(statement.clone()))
                    .bind(sql::micros_floor(up_to))
                    .bind(limit_bind(limit))
                    .bind(node)
                    .bind(lease_micros(lease))
                    .fetch_all(pool)
            })
            .await?;
            let mut claims = decode_claims(codec, rows);
            claims.sort_by(|a, b| {
                (a.job.next_run_time, &a.job.id).cmp(&(b.job.next_run_time, &b.job.id))
            });
            Ok(claims)
        }

        async fn renew(&self, node: &str, lease: Duration) -> Result<u64, StoreError> {
            check_node(node)?;
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET until_us = {NOW} + $2 WHERE node = $1 AND until_us > {NOW}"
            )))
            .bind(node)
            .bind(lease_micros(lease))
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(done.rows_affected())
        }

        async fn release(&self, node: &str, id: &JobId, epoch: i64) -> Result<bool, StoreError> {
            check_node(node)?;
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET until_us = 0 \
                 WHERE job_id = $1 AND node = $2 AND epoch = $3 AND until_us > {NOW}"
            )))
            .bind(id.as_str())
            .bind(node)
            .bind(epoch)
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(done.rows_affected() > 0)
        }

        async fn release_all(&self, node: &str) -> Result<u64, StoreError> {
            check_node(node)?;
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET until_us = 0 WHERE node = $1 AND until_us > 0"
            )))
            .bind(node)
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(done.rows_affected())
        }

        async fn commit_many(
            &self,
            node: &str,
            batch: &[CommitRequest<'_>],
        ) -> Result<Vec<Commit>, StoreError> {
            check_node(node)?;
            let (pool, names, codec) = self.lease_parts();
            let items = unique_items(codec, batch, None)?;
            if items.is_empty() {
                return Ok(Vec::new());
            }
            let LeaseNames {
                jobs,
                leases,
                fires,
                ..
            } = LeaseNames::new(names);
            let ids: Vec<&str> = items.iter().map(|i| i.req.job.id.as_str()).collect();
            let epochs: Vec<i64> = items.iter().map(|i| i.req.epoch).collect();
            let next: Vec<Option<i64>> = items
                .iter()
                .map(|i| i.req.job.next_run_time.map(sql::micros_ceil))
                .collect();
            let data: Vec<&str> = items.iter().map(|i| i.data.as_str()).collect();
            let max: Vec<i64> = items
                .iter()
                .map(|i| i64::from(i.req.job.max_instances))
                .collect();
            let counts: Vec<i32> = items
                .iter()
                .map(|i| i32::try_from(i.req.slots.len()).unwrap_or(i32::MAX))
                .collect();
            let (slot_ids, slots): (Vec<&str>, Vec<i64>) = items
                .iter()
                .flat_map(|i| {
                    i.req
                        .slots
                        .iter()
                        .map(|t| (i.req.job.id.as_str(), t.timestamp_micros()))
                })
                .unzip();
            // One statement: `held` locks the leases still this node's at the named epoch,
            // `busy` counts the unfinished fires of the batch's jobs (`= ANY` of the id
            // array: index probes of the partial index, whatever the planner guesses of the
            // CTEs' sizes), `ok` admits the held items below
            // max_instances (or without slots), then the fires, jobs and lease releases.
            let statement = format!(
                "WITH t AS (SELECT {NOW} AS now_us), \
                 req AS (SELECT * FROM UNNEST($2::text[], $3::int8[], $4::int8[], $5::text[], \
                   $6::int8[], $7::int4[]) AS r(id, epoch, next_us, data, max_n, slot_n)), \
                 held AS (SELECT l.job_id FROM {leases} l JOIN req ON req.id = l.job_id, t \
                   WHERE l.node = $1 AND l.epoch = req.epoch AND l.until_us > t.now_us \
                   FOR UPDATE OF l), \
                 busy AS (SELECT f.job_id, count(*) AS n FROM {fires} f \
                   WHERE f.job_id = ANY($2::text[]) AND f.finished_us IS NULL \
                   GROUP BY f.job_id), \
                 ok AS (SELECT req.id, req.epoch FROM req JOIN held ON held.job_id = req.id \
                   LEFT JOIN busy ON busy.job_id = req.id \
                   WHERE req.slot_n = 0 OR COALESCE(busy.n, 0) < req.max_n), \
                 ins AS (INSERT INTO {fires} (job_id, slot_us, node, epoch, created_us) \
                   SELECT s.id, s.slot, $1, ok.epoch, t.now_us \
                   FROM UNNEST($8::text[], $9::int8[]) AS s(id, slot) JOIN ok ON ok.id = s.id, t \
                   ON CONFLICT (job_id, slot_us) DO NOTHING RETURNING job_id, slot_us), \
                 upd AS (UPDATE {jobs} j SET \
                   next_run_time = CASE WHEN j.quarantine IS NULL THEN req.next_us END, \
                   data = req.data FROM req JOIN held ON held.job_id = req.id \
                   WHERE j.id = req.id), \
                 rel AS (UPDATE {leases} l SET until_us = 0 FROM held \
                   WHERE l.job_id = held.job_id), \
                 made AS (SELECT job_id, array_agg(slot_us) AS slots FROM ins GROUP BY job_id) \
                 SELECT req.id, held.job_id IS NOT NULL, ok.id IS NOT NULL, \
                   COALESCE(made.slots, '{{}}'::int8[]) \
                 FROM req LEFT JOIN held ON held.job_id = req.id LEFT JOIN ok ON ok.id = req.id \
                 LEFT JOIN made ON made.job_id = req.id"
            );
            let rows: Vec<(String, bool, bool, Vec<i64>)> = retrying(|| {
                sqlx::query_as(AssertSqlSafe(statement.clone()))
                    .persistent(items.len() <= SMALL_BATCH)
                    .bind(node)
                    .bind(&ids)
                    .bind(&epochs)
                    .bind(&next)
                    .bind(&data)
                    .bind(&max)
                    .bind(&counts)
                    .bind(&slot_ids)
                    .bind(&slots)
                    .fetch_all(pool)
            })
            .await?;
            let mut by_id: HashMap<String, Outcome> = rows
                .into_iter()
                .map(|(id, held, admitted, created)| {
                    (
                        id,
                        Outcome {
                            held,
                            admitted,
                            created,
                        },
                    )
                })
                .collect();
            let outcomes = items
                .iter()
                .map(|i| {
                    by_id.remove(i.req.job.id.as_str()).unwrap_or(Outcome {
                        held: false,
                        admitted: false,
                        created: Vec::new(),
                    })
                })
                .collect();
            Ok(answers(batch, &items, outcomes))
        }

        async fn finish_fires(&self, node: &str, done: &[Finished]) -> Result<u64, StoreError> {
            check_node(node)?;
            if done.is_empty() {
                return Ok(0);
            }
            let (pool, names, _) = self.lease_parts();
            let fires = LeaseNames::new(names).fires;
            let jobs: Vec<&str> = done.iter().map(|d| d.fire.job.as_str()).collect();
            let slots: Vec<i64> = done
                .iter()
                .map(|d| d.fire.scheduled.timestamp_micros())
                .collect();
            let epochs: Vec<i64> = done.iter().map(|d| d.epoch).collect();
            let outcomes: Vec<&str> = done.iter().map(|d| d.outcome.as_str()).collect();
            let statement = format!(
                "UPDATE {fires} f SET finished_us = {NOW}, outcome = d.outcome \
                 FROM UNNEST($2::text[], $3::int8[], $4::int8[], $5::text[]) \
                   AS d(job_id, slot_us, epoch, outcome) \
                 WHERE f.job_id = d.job_id AND f.slot_us = d.slot_us AND f.epoch = d.epoch \
                 AND f.node = $1 AND f.finished_us IS NULL"
            );
            let result = retrying(|| {
                sqlx::query(AssertSqlSafe(statement.clone()))
                    .persistent(done.len() <= SMALL_BATCH)
                    .bind(node)
                    .bind(&jobs)
                    .bind(&slots)
                    .bind(&epochs)
                    .bind(&outcomes)
                    .execute(pool)
            })
            .await?;
            Ok(result.rows_affected())
        }

        async fn heartbeat(
            &self,
            node: &NodeInfo,
            node_now: DateTime<Utc>,
            ttl: Duration,
        ) -> Result<Heartbeat, StoreError> {
            check_node(&node.id)?;
            let (pool, names, _) = self.lease_parts();
            let LeaseNames { nodes, fires, .. } = LeaseNames::new(names);
            let lock = format!("SELECT expires_us FROM {nodes} WHERE id = $1 FOR UPDATE");
            let upsert = format!(
                "WITH t AS (SELECT {NOW} AS now_us) \
                 INSERT INTO {nodes} AS n (id, host, pid, started_us, heartbeat_us, expires_us, \
                   skew_us) SELECT $1, $2, $3, $4, t.now_us, t.now_us + $5, $6 - t.now_us FROM t \
                 ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, \
                   started_us = EXCLUDED.started_us, heartbeat_us = EXCLUDED.heartbeat_us, \
                   expires_us = EXCLUDED.expires_us, skew_us = EXCLUDED.skew_us \
                 RETURNING n.heartbeat_us, n.expires_us"
            );
            let orphan =
                format!("UPDATE {fires} SET node = '' WHERE node = $1 AND finished_us IS NULL");
            let (now, expires, lapsed) = retrying(|| async {
                let mut tx = pool.begin().await?;
                let old: Option<i64> = sqlx::query_scalar(AssertSqlSafe(lock.clone()))
                    .bind(&node.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                let (now, expires): (i64, i64) = sqlx::query_as(AssertSqlSafe(upsert.clone()))
                    .bind(&node.id)
                    .bind(&node.host)
                    .bind(i64::from(node.pid))
                    .bind(node.started_at.timestamp_micros())
                    .bind(lease_micros(ttl))
                    .bind(node_now.timestamp_micros())
                    .fetch_one(&mut *tx)
                    .await?;
                let lapsed = old.is_none_or(|until| until <= now);
                if lapsed {
                    sqlx::query(AssertSqlSafe(orphan.clone()))
                        .bind(&node.id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok((now, expires, lapsed))
            })
            .await?;
            Ok(Heartbeat {
                store_time: from_micros(now),
                expires_at: from_micros(expires),
                lapsed,
            })
        }

        async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let nodes = LeaseNames::new(names).nodes;
            let rows: Vec<NodeRow> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT n.id, n.host, n.pid, n.started_us, n.heartbeat_us, n.expires_us, \
                 n.skew_us, t.now_us FROM {nodes} n, (SELECT {NOW} AS now_us) t ORDER BY n.id"
            )))
            .fetch_all(pool)
            .await
            .map_err(err)?;
            Ok(rows.into_iter().map(node_record).collect())
        }

        async fn unregister_node(&self, node: &str) -> Result<bool, StoreError> {
            check_node(node)?;
            let (pool, names, _) = self.lease_parts();
            let LeaseNames { nodes, fires, .. } = LeaseNames::new(names);
            let statement = format!(
                "WITH orphaned AS (UPDATE {fires} SET node = '' \
                   WHERE node = $1 AND finished_us IS NULL), \
                 gone AS (DELETE FROM {nodes} WHERE id = $1 RETURNING 1) \
                 SELECT count(*) FROM gone"
            );
            let n: i64 = retrying(|| {
                sqlx::query_scalar(AssertSqlSafe(statement.clone()))
                    .bind(node)
                    .fetch_one(pool)
            })
            .await?;
            Ok(n > 0)
        }

        same_on_both!(running_fires);

        async fn adopt_fires(&self, node: &str, limit: usize) -> Result<Vec<Adopted>, StoreError> {
            check_node(node)?;
            if limit == 0 {
                return Ok(Vec::new());
            }
            let (pool, names, codec) = self.lease_parts();
            let LeaseNames {
                jobs, fires, nodes, ..
            } = LeaseNames::new(names);
            // The adopter must be alive; a fire is taken when it waits for adoption ('') or
            // its node's registration has expired. FOR UPDATE rechecks a row a concurrent
            // adopter changed, SKIP LOCKED passes over one it holds.
            let statement = format!(
                "WITH t AS (SELECT {NOW} AS now_us), \
                 victim AS (SELECT f.job_id, f.slot_us FROM {fires} f, t \
                   WHERE f.finished_us IS NULL \
                   AND EXISTS (SELECT 1 FROM {nodes} me WHERE me.id = $1 \
                     AND me.expires_us > t.now_us) \
                   AND (f.node = '' OR EXISTS (SELECT 1 FROM {nodes} n WHERE n.id = f.node \
                     AND n.expires_us <= t.now_us)) \
                   ORDER BY f.created_us, f.job_id, f.slot_us LIMIT $2 FOR UPDATE OF f SKIP LOCKED), \
                 moved AS (UPDATE {fires} f SET node = $1, epoch = f.epoch + 1 FROM victim \
                   WHERE f.job_id = victim.job_id AND f.slot_us = victim.slot_us \
                   RETURNING f.job_id, f.slot_us, f.epoch, f.created_us) \
                 SELECT m.job_id, m.slot_us, m.epoch, j.data FROM moved m \
                 LEFT JOIN {jobs} j ON j.id = m.job_id \
                 ORDER BY m.created_us, m.job_id, m.slot_us"
            );
            let rows: Vec<(String, i64, i64, Option<String>)> = retrying(|| {
                sqlx::query_as(AssertSqlSafe(statement.clone()))
                    .bind(node)
                    .bind(limit_bind(limit))
                    .fetch_all(pool)
            })
            .await?;
            Ok(adopted(codec, rows))
        }

        async fn prune(
            &self,
            finished_before: DateTime<Utc>,
            limit: usize,
        ) -> Result<u64, StoreError> {
            if limit == 0 {
                return Ok(0);
            }
            let (pool, names, _) = self.lease_parts();
            let LeaseNames {
                jobs,
                leases,
                fires,
                nodes,
            } = LeaseNames::new(names);
            let statement = format!(
                "WITH t AS (SELECT {NOW} AS now_us), \
                 f AS (DELETE FROM {fires} WHERE (job_id, slot_us) IN (SELECT job_id, slot_us \
                   FROM {fires} WHERE finished_us < $1 LIMIT $2) RETURNING 1), \
                 l AS (DELETE FROM {leases} WHERE job_id IN (SELECT x.job_id FROM {leases} x, t \
                   WHERE x.until_us <= t.now_us \
                   AND NOT EXISTS (SELECT 1 FROM {jobs} j WHERE j.id = x.job_id) LIMIT $2) \
                   RETURNING 1), \
                 n AS (DELETE FROM {nodes} WHERE id IN (SELECT y.id FROM {nodes} y \
                   WHERE y.expires_us < $1 AND NOT EXISTS (SELECT 1 FROM {fires} z \
                     WHERE z.node = y.id AND z.finished_us IS NULL) LIMIT $2) RETURNING 1) \
                 SELECT (SELECT count(*) FROM f) + (SELECT count(*) FROM l) \
                   + (SELECT count(*) FROM n)"
            );
            let n: i64 = retrying(|| {
                sqlx::query_scalar(AssertSqlSafe(statement.clone()))
                    .bind(finished_before.timestamp_micros())
                    .bind(limit_bind(limit))
                    .fetch_one(pool)
            })
            .await?;
            Ok(u64::try_from(n).unwrap_or(0))
        }

        async fn notify_changed(&self) -> Result<(), StoreError> {
            let (pool, names, _) = self.lease_parts();
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(channel_name(names))
                .execute(pool)
                .await
                .map_err(err)?;
            Ok(())
        }

        async fn changes(&self) -> Result<Option<super::super::ChangeFeed>, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let channel = channel_name(names);
            // A pool of its own for the listening connection, so that it never takes one
            // of the store's connections and reconnects on the store's options.
            let own = PgPoolOptions::new()
                .max_connections(1)
                .min_connections(0)
                .max_lifetime(None)
                .idle_timeout(None)
                .acquire_timeout(Duration::from_secs(3))
                .connect_lazy_with((*pool.connect_options()).clone());
            let mut listener = PgListener::connect_with(&own).await.map_err(err)?;
            listener.ignore_pool_close_event(true);
            listener.listen(&channel).await.map_err(err)?;
            let (feed, waker) = feed::channel();
            tokio::spawn(async move {
                loop {
                    match waker.or_closed(listener.try_recv()).await {
                        None => return,
                        // A notification, or a lost connection that was re-established
                        // at once (notifications may have been missed): wake either way.
                        Some(Ok(_)) => waker.wake(),
                        Some(Err(_)) => {
                            // Reconnect by running a statement through the listener, which
                            // connects and listens again.
                            let mut backoff = feed::Backoff::new();
                            loop {
                                let ping = sqlx::query("SELECT 1").execute(&mut listener);
                                match waker.or_closed(ping).await {
                                    None => return,
                                    Some(Ok(_)) => break,
                                    Some(Err(_)) => {
                                        if waker.or_closed(backoff.sleep()).await.is_none() {
                                            return;
                                        }
                                    }
                                }
                            }
                            waker.wake();
                        }
                    }
                }
            });
            Ok(Some(feed))
        }
    }
}

#[cfg(feature = "mysql")]
mod my {
    use sqlx::mysql::{MySql, MySqlPool};
    use sqlx::pool::PoolConnection;
    use sqlx::{Connection, MySqlConnection};

    use super::*;
    use crate::mysql::MySqlStore;

    /// The store's clock in µs (the statement's start).
    const NOW: &str = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)";
    /// The longest node id, host and job id the columns hold, in characters.
    const MAX_CHARS: usize = 255;
    /// Rows per statement when a batch is written in several.
    const CHUNK: usize = 1_000;

    /// `node` as a node id of this store: not empty, at most 255 characters.
    fn check(node: &str) -> Result<(), StoreError> {
        check_node(node)?;
        let chars = node.chars().count();
        if chars > MAX_CHARS {
            return Err(StoreError::invalid_argument(format!(
                "node id {node:?} is {chars} characters long; this store keeps at most {MAX_CHARS}"
            )));
        }
        Ok(())
    }

    /// `n` comma-separated groups `group`.
    fn marks(group: &str, n: usize) -> String {
        vec![group; n].join(", ")
    }

    /// A derived table of `n` rows with the named columns bound in order (`SELECT ? AS a,
    /// ? AS b UNION ALL SELECT ?, ? …`).
    fn rows_table(columns: &[&str], n: usize) -> String {
        let first: Vec<String> = columns.iter().map(|c| format!("? AS {c}")).collect();
        let rest = format!(" UNION ALL SELECT {}", vec!["?"; columns.len()].join(", "));
        format!(
            "SELECT {}{}",
            first.join(", "),
            rest.repeat(n.saturating_sub(1))
        )
    }

    /// A pooled connection whose next transaction runs at `READ COMMITTED` (each statement
    /// sees what others committed; locking reads take no gap locks on absent rows).
    async fn read_committed(pool: &MySqlPool) -> Result<PoolConnection<MySql>, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .execute(&mut *conn)
            .await?;
        Ok(conn)
    }

    async fn now_us(conn: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(AssertSqlSafe(format!("SELECT {NOW}")))
            .fetch_one(conn)
            .await
    }

    impl LeaseStore for MySqlStore {
        same_on_both!(store_time);

        async fn claim_due(
            &self,
            node: &str,
            up_to: DateTime<Utc>,
            lease: Duration,
            limit: usize,
        ) -> Result<Vec<Claim>, StoreError> {
            check(node)?;
            let (pool, names, codec) = self.lease_parts();
            let LeaseNames { jobs, leases, .. } = LeaseNames::new(names);
            let rows = retrying(|| async {
                let mut conn = read_committed(pool).await?;
                let mut tx = conn.begin().await?;
                let now = now_us(&mut tx).await?;
                let due: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT j.id, j.data FROM {jobs} j \
                     WHERE j.next_run_time <= ? AND j.quarantine IS NULL \
                     AND NOT EXISTS (SELECT 1 FROM {leases} l WHERE l.job_id = j.id \
                       AND l.until_us > ?) \
                     ORDER BY j.next_run_time, j.id LIMIT ? FOR UPDATE SKIP LOCKED"
                )))
                .bind(sql::micros_floor(up_to))
                .bind(now)
                .bind(limit_bind(limit))
                .fetch_all(&mut *tx)
                .await?;
                if due.is_empty() {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                let until = now.saturating_add(lease_micros(lease));
                // Assignments run left to right: `until_us` last, so the conditions before
                // it still see the old deadline.
                let mut upsert = sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {leases} (job_id, node, until_us, epoch) VALUES {} \
                     ON DUPLICATE KEY UPDATE \
                     epoch = IF(until_us <= {now}, epoch + 1, epoch), \
                     node = IF(until_us <= {now}, VALUES(node), node), \
                     until_us = IF(until_us <= {now}, VALUES(until_us), until_us)",
                    marks("(?, ?, ?, 1)", due.len())
                )));
                for (id, _) in &due {
                    upsert = upsert.bind(id.as_str()).bind(node).bind(until);
                }
                upsert.execute(&mut *tx).await?;
                let mut read = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(format!(
                    "SELECT job_id, epoch FROM {leases} WHERE node = ? AND until_us = ? \
                     AND job_id IN ({})",
                    marks("?", due.len())
                )))
                .bind(node)
                .bind(until);
                for (id, _) in &due {
                    read = read.bind(id.as_str());
                }
                let mine = read.fetch_all(&mut *tx).await?;
                tx.commit().await?;
                let mine: HashMap<String, i64> = mine.into_iter().collect();
                Ok(due
                    .into_iter()
                    .filter_map(|(id, data)| {
                        let epoch = *mine.get(&id)?;
                        Some((id, epoch, until, data))
                    })
                    .collect())
            })
            .await?;
            Ok(decode_claims(codec, rows))
        }

        async fn renew(&self, node: &str, lease: Duration) -> Result<u64, StoreError> {
            check(node)?;
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = retrying(|| {
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE {leases} SET until_us = {NOW} + ? WHERE node = ? AND until_us > {NOW}"
                )))
                .bind(lease_micros(lease))
                .bind(node)
                .execute(pool)
            })
            .await?;
            Ok(done.rows_affected())
        }

        async fn release(&self, node: &str, id: &JobId, epoch: i64) -> Result<bool, StoreError> {
            check(node)?;
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = retrying(|| {
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE {leases} SET node = '', until_us = 0 \
                     WHERE job_id = ? AND node = ? AND epoch = ? AND until_us > {NOW}"
                )))
                .bind(id.as_str())
                .bind(node)
                .bind(epoch)
                .execute(pool)
            })
            .await?;
            Ok(done.rows_affected() > 0)
        }

        async fn release_all(&self, node: &str) -> Result<u64, StoreError> {
            check(node)?;
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = retrying(|| {
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE {leases} SET node = '', until_us = 0 WHERE node = ? AND until_us > 0"
                )))
                .bind(node)
                .execute(pool)
            })
            .await?;
            Ok(done.rows_affected())
        }

        async fn commit_many(
            &self,
            node: &str,
            batch: &[CommitRequest<'_>],
        ) -> Result<Vec<Commit>, StoreError> {
            check(node)?;
            let (pool, names, codec) = self.lease_parts();
            let items = unique_items(codec, batch, Some(MAX_CHARS))?;
            if items.is_empty() {
                return Ok(Vec::new());
            }
            let names = LeaseNames::new(names);
            let outcomes = retrying(|| commit_items(pool, &names, node, &items)).await?;
            Ok(answers(batch, &items, outcomes))
        }

        async fn finish_fires(&self, node: &str, done: &[Finished]) -> Result<u64, StoreError> {
            check(node)?;
            if done.is_empty() {
                return Ok(0);
            }
            let (pool, names, _) = self.lease_parts();
            let fires = LeaseNames::new(names).fires;
            let statement = |rows: usize| {
                let table = rows_table(&["job_id", "slot_us", "epoch", "outcome"], rows);
                format!(
                    "UPDATE {fires} f JOIN ({table}) d \
                     ON f.job_id = d.job_id COLLATE utf8mb4_bin AND f.slot_us = d.slot_us \
                     AND f.epoch = d.epoch \
                     SET f.finished_us = {NOW}, f.outcome = d.outcome \
                     WHERE f.node = ? AND f.finished_us IS NULL"
                )
            };
            let update = |sql: &str, chunk: &[Finished]| {
                let mut update = sqlx::query(AssertSqlSafe(sql.to_owned()));
                for d in chunk {
                    update = update
                        .bind(d.fire.job.as_str())
                        .bind(d.fire.scheduled.timestamp_micros())
                        .bind(d.epoch)
                        .bind(d.outcome.as_str());
                }
                update.bind(node)
            };
            if done.len() <= CHUNK {
                // One statement, one round trip.
                let sql = statement(done.len());
                let result = retrying(|| update(&sql, done).execute(pool)).await?;
                return Ok(result.rows_affected());
            }
            retrying(|| async {
                let mut tx = pool.begin().await?;
                let mut n = 0;
                for chunk in done.chunks(CHUNK) {
                    let sql = statement(chunk.len());
                    n += update(&sql, chunk).execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            })
            .await
        }

        async fn heartbeat(
            &self,
            node: &NodeInfo,
            node_now: DateTime<Utc>,
            ttl: Duration,
        ) -> Result<Heartbeat, StoreError> {
            check(&node.id)?;
            let host_chars = node.host.chars().count();
            if host_chars > MAX_CHARS {
                return Err(StoreError::invalid_argument(format!(
                    "host of node {:?} is {host_chars} characters long; this store keeps at most {MAX_CHARS}",
                    node.id
                )));
            }
            let (pool, names, _) = self.lease_parts();
            let LeaseNames { nodes, fires, .. } = LeaseNames::new(names);
            let (now, expires, lapsed) = retrying(|| async {
                let mut conn = read_committed(pool).await?;
                let mut tx = conn.begin().await?;
                let old: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT expires_us FROM {nodes} WHERE id = ? FOR UPDATE"
                )))
                .bind(&node.id)
                .fetch_optional(&mut *tx)
                .await?;
                let now = now_us(&mut tx).await?;
                let expires = now.saturating_add(lease_micros(ttl));
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {nodes} (id, host, pid, started_us, heartbeat_us, expires_us, \
                     skew_us) VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE \
                     host = VALUES(host), pid = VALUES(pid), started_us = VALUES(started_us), \
                     heartbeat_us = VALUES(heartbeat_us), expires_us = VALUES(expires_us), \
                     skew_us = VALUES(skew_us)"
                )))
                .bind(&node.id)
                .bind(&node.host)
                .bind(i64::from(node.pid))
                .bind(node.started_at.timestamp_micros())
                .bind(now)
                .bind(expires)
                .bind(node_now.timestamp_micros().saturating_sub(now))
                .execute(&mut *tx)
                .await?;
                let lapsed = old.is_none_or(|until| until <= now);
                if lapsed {
                    sqlx::query(AssertSqlSafe(format!(
                        "UPDATE {fires} SET node = '' WHERE node = ? AND finished_us IS NULL"
                    )))
                    .bind(&node.id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok((now, expires, lapsed))
            })
            .await?;
            Ok(Heartbeat {
                store_time: from_micros(now),
                expires_at: from_micros(expires),
                lapsed,
            })
        }

        async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let nodes = LeaseNames::new(names).nodes;
            let rows: Vec<NodeRow> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT id, host, pid, started_us, heartbeat_us, expires_us, skew_us, {NOW} \
                 FROM {nodes} ORDER BY id"
            )))
            .fetch_all(pool)
            .await
            .map_err(err)?;
            Ok(rows.into_iter().map(node_record).collect())
        }

        async fn unregister_node(&self, node: &str) -> Result<bool, StoreError> {
            check(node)?;
            let (pool, names, _) = self.lease_parts();
            let LeaseNames { nodes, fires, .. } = LeaseNames::new(names);
            retrying(|| async {
                let mut tx = pool.begin().await?;
                sqlx::query(AssertSqlSafe(format!(
                    "UPDATE {fires} SET node = '' WHERE node = ? AND finished_us IS NULL"
                )))
                .bind(node)
                .execute(&mut *tx)
                .await?;
                let gone = sqlx::query(AssertSqlSafe(format!("DELETE FROM {nodes} WHERE id = ?")))
                    .bind(node)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(gone.rows_affected() > 0)
            })
            .await
        }

        same_on_both!(running_fires);

        async fn adopt_fires(&self, node: &str, limit: usize) -> Result<Vec<Adopted>, StoreError> {
            check(node)?;
            if limit == 0 {
                return Ok(Vec::new());
            }
            let (pool, names, codec) = self.lease_parts();
            let LeaseNames {
                jobs, fires, nodes, ..
            } = LeaseNames::new(names);
            let rows = retrying(|| async {
                let mut conn = read_committed(pool).await?;
                let mut tx = conn.begin().await?;
                let now = now_us(&mut tx).await?;
                let alive: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT 1 FROM {nodes} WHERE id = ? AND expires_us > ?"
                )))
                .bind(node)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if alive.is_none() {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                let mut expired: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
                    "SELECT id FROM {nodes} WHERE expires_us <= ?"
                )))
                .bind(now)
                .fetch_all(&mut *tx)
                .await?;
                expired.push(String::new());
                // A locking read sees the latest committed rows: a fire another adopter
                // took meanwhile no longer matches, one it holds is skipped.
                let mut select = sqlx::query_as::<_, (String, i64, i64)>(AssertSqlSafe(format!(
                    "SELECT job_id, slot_us, epoch FROM {fires} \
                     WHERE finished_us IS NULL AND node IN ({}) \
                     ORDER BY created_us, job_id, slot_us LIMIT ? FOR UPDATE SKIP LOCKED",
                    marks("?", expired.len())
                )));
                for id in &expired {
                    select = select.bind(id.as_str());
                }
                let victims = select.bind(limit_bind(limit)).fetch_all(&mut *tx).await?;
                if victims.is_empty() {
                    tx.commit().await?;
                    return Ok(Vec::new());
                }
                let table = rows_table(&["job_id", "slot_us"], victims.len());
                let mut update = sqlx::query(AssertSqlSafe(format!(
                    "UPDATE {fires} f JOIN ({table}) v \
                     ON f.job_id = v.job_id COLLATE utf8mb4_bin AND f.slot_us = v.slot_us \
                     SET f.node = ?, f.epoch = f.epoch + 1"
                )));
                for (job, slot, _) in &victims {
                    update = update.bind(job.as_str()).bind(*slot);
                }
                update.bind(node).execute(&mut *tx).await?;
                let mut ids: Vec<&str> = victims.iter().map(|v| v.0.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                let mut read = sqlx::query_as::<_, (String, String)>(AssertSqlSafe(format!(
                    "SELECT id, data FROM {jobs} WHERE id IN ({})",
                    marks("?", ids.len())
                )));
                for id in &ids {
                    read = read.bind(*id);
                }
                let data: HashMap<String, String> =
                    read.fetch_all(&mut *tx).await?.into_iter().collect();
                tx.commit().await?;
                Ok(victims
                    .into_iter()
                    .map(|(job, slot, epoch)| {
                        let text = data.get(&job).cloned();
                        (job, slot, epoch + 1, text)
                    })
                    .collect())
            })
            .await?;
            Ok(adopted(codec, rows))
        }

        async fn prune(
            &self,
            finished_before: DateTime<Utc>,
            limit: usize,
        ) -> Result<u64, StoreError> {
            if limit == 0 {
                return Ok(0);
            }
            let (pool, names, _) = self.lease_parts();
            let LeaseNames {
                jobs,
                leases,
                fires,
                nodes,
            } = LeaseNames::new(names);
            let cutoff = finished_before.timestamp_micros();
            let limit = limit_bind(limit);
            let statements = [
                (
                    format!(
                        "DELETE FROM {fires} WHERE finished_us < ? ORDER BY finished_us LIMIT ?"
                    ),
                    true,
                ),
                (
                    format!(
                        "DELETE FROM {leases} WHERE until_us <= {NOW} AND NOT EXISTS \
                         (SELECT 1 FROM {jobs} j WHERE j.id = {leases}.job_id) LIMIT ?"
                    ),
                    false,
                ),
                (
                    format!(
                        "DELETE FROM {nodes} WHERE expires_us < ? AND NOT EXISTS \
                         (SELECT 1 FROM {fires} f WHERE f.node = {nodes}.id \
                           AND f.finished_us IS NULL) LIMIT ?"
                    ),
                    true,
                ),
            ];
            let mut n = 0;
            for (statement, with_cutoff) in &statements {
                let done = retrying(|| {
                    let query = sqlx::query(AssertSqlSafe(statement.clone()));
                    let query = if *with_cutoff {
                        query.bind(cutoff)
                    } else {
                        query
                    };
                    query.bind(limit).execute(pool)
                })
                .await?;
                n += done.rows_affected();
            }
            Ok(n)
        }

        /// MySQL and MariaDB have no notifications: nothing happens (polling only).
        async fn notify_changed(&self) -> Result<(), StoreError> {
            Ok(())
        }

        /// MySQL and MariaDB have no notifications: `None` (polling only).
        async fn changes(&self) -> Result<Option<super::super::ChangeFeed>, StoreError> {
            Ok(None)
        }
    }

    /// One attempt at committing `items` in one `READ COMMITTED` transaction.
    async fn commit_items(
        pool: &MySqlPool,
        names: &LeaseNames,
        node: &str,
        items: &[Item<'_>],
    ) -> Result<Vec<Outcome>, sqlx::Error> {
        let LeaseNames {
            jobs,
            leases,
            fires,
            ..
        } = names;
        let mut conn = read_committed(pool).await?;
        let mut tx = conn.begin().await?;
        // The leases still this node's, locked until the commit.
        let mut held: HashMap<&str, i64> = HashMap::with_capacity(items.len());
        for chunk in items.chunks(CHUNK) {
            let mut lock = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(format!(
                "SELECT job_id, epoch FROM {leases} WHERE node = ? AND until_us > {NOW} \
                 AND job_id IN ({}) FOR UPDATE",
                marks("?", chunk.len())
            )))
            .bind(node);
            for i in chunk {
                lock = lock.bind(i.req.job.id.as_str());
            }
            let epochs: HashMap<&str, i64> = chunk
                .iter()
                .map(|i| (i.req.job.id.as_str(), i.req.epoch))
                .collect();
            for (id, epoch) in lock.fetch_all(&mut *tx).await? {
                if let Some((&mine, _)) =
                    epochs.get_key_value(id.as_str()).filter(|e| *e.1 == epoch)
                {
                    held.insert(mine, epoch);
                }
            }
        }
        let mine: Vec<&Item<'_>> = items
            .iter()
            .filter(|i| held.contains_key(i.req.job.id.as_str()))
            .collect();
        if mine.is_empty() {
            tx.commit().await?;
            return Ok(items
                .iter()
                .map(|_| Outcome {
                    held: false,
                    admitted: false,
                    created: Vec::new(),
                })
                .collect());
        }
        // Unfinished fires of the held jobs that want to create some (max_instances).
        let wanting: Vec<&&Item<'_>> = mine.iter().filter(|i| !i.req.slots.is_empty()).collect();
        let mut busy: HashMap<String, i64> = HashMap::new();
        for chunk in wanting.chunks(CHUNK) {
            let mut count = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(format!(
                "SELECT job_id, COUNT(*) FROM {fires} WHERE finished_us IS NULL \
                 AND job_id IN ({}) GROUP BY job_id",
                marks("?", chunk.len())
            )));
            for i in chunk {
                count = count.bind(i.req.job.id.as_str());
            }
            busy.extend(count.fetch_all(&mut *tx).await?);
        }
        let admitted = |i: &Item<'_>| {
            i.req.slots.is_empty()
                || busy.get(i.req.job.id.as_str()).copied().unwrap_or(0)
                    < i64::from(i.req.job.max_instances)
        };
        // The slots to create: those of admitted items. Existing fires are rare (a stale
        // commit), so the multi-row insert is tried first and falls back to one row at a
        // time only when it meets one.
        let wanted: Vec<(&str, i64, i64)> = mine
            .iter()
            .filter(|i| admitted(i))
            .flat_map(|i| {
                i.req
                    .slots
                    .iter()
                    .map(|t| (i.req.job.id.as_str(), t.timestamp_micros(), i.req.epoch))
            })
            .collect();
        let mut created: std::collections::HashSet<(&str, i64)> = Default::default();
        for chunk in wanted.chunks(CHUNK) {
            // Not `INSERT IGNORE`: its downgrading of errors to warnings must never hide a
            // deadlock (after which InnoDB has rolled the transaction back).
            let mut insert = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {fires} (job_id, slot_us, node, epoch, created_us) VALUES {}",
                marks(&format!("(?, ?, ?, ?, {NOW})"), chunk.len())
            )));
            for (id, slot, epoch) in chunk {
                insert = insert.bind(*id).bind(*slot).bind(node).bind(*epoch);
            }
            match insert.execute(&mut *tx).await {
                Ok(_) => created.extend(chunk.iter().map(|(id, slot, _)| (*id, *slot))),
                // A slot created before (a node committing a stale next run time): one by
                // one, a duplicate failing only its own statement.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    for (id, slot, epoch) in chunk {
                        let one = sqlx::query(AssertSqlSafe(format!(
                            "INSERT INTO {fires} (job_id, slot_us, node, epoch, created_us) \
                             VALUES (?, ?, ?, ?, {NOW})"
                        )))
                        .bind(*id)
                        .bind(*slot)
                        .bind(node)
                        .bind(*epoch)
                        .execute(&mut *tx)
                        .await;
                        match one {
                            Ok(_) => {
                                created.insert((*id, *slot));
                            }
                            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
        // The jobs, with their advanced next run times.
        for chunk in mine.chunks(CHUNK) {
            let table = rows_table(&["id", "next_us", "data"], chunk.len());
            let mut update = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {jobs} j JOIN ({table}) v ON j.id = v.id COLLATE utf8mb4_bin \
                 SET j.next_run_time = CASE WHEN j.quarantine IS NULL THEN v.next_us END, \
                 j.data = v.data"
            )));
            for i in chunk {
                update = update
                    .bind(i.req.job.id.as_str())
                    .bind(i.req.job.next_run_time.map(sql::micros_ceil))
                    .bind(i.data.as_str());
            }
            update.execute(&mut *tx).await?;
        }
        for chunk in mine.chunks(CHUNK) {
            let mut release = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET node = '', until_us = 0 WHERE job_id IN ({})",
                marks("?", chunk.len())
            )));
            for i in chunk {
                release = release.bind(i.req.job.id.as_str());
            }
            release.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(items
            .iter()
            .map(|i| {
                let id = i.req.job.id.as_str();
                let held = held.contains_key(id);
                let admitted = held && admitted(i);
                Outcome {
                    held,
                    admitted,
                    created: i
                        .req
                        .slots
                        .iter()
                        .map(|t| t.timestamp_micros())
                        .filter(|s| admitted && created.contains(&(id, *s)))
                        .collect(),
                }
            })
            .collect())
    }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn channel_names_fit_postgres_identifiers() {
        let short = Names::new(Dialect::Postgres, Some("app"), "sched_");
        assert_eq!(channel_name(&short), "sched_changes:app.sched_");
        let long = Names::new(Dialect::Postgres, Some(&"s".repeat(60)), "sched_");
        let name = channel_name(&long);
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with("sched_changes:"));
        let other = Names::new(Dialect::Postgres, Some(&"t".repeat(60)), "sched_");
        assert_ne!(
            channel_name(&other),
            name,
            "different stores, different channels"
        );
    }

    #[test]
    fn lease_tables_sit_beside_the_jobs_table() {
        let n = Names::new(Dialect::Postgres, Some("app"), "x_");
        let l = LeaseNames::new(&n);
        assert_eq!(l.leases, "\"app\".\"x_leases\"");
        assert_eq!(l.fires, "\"app\".\"x_fires\"");
        assert_eq!(l.nodes, "\"app\".\"x_nodes\"");
    }
}
