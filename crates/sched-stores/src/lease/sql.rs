//! [`LeaseStore`] for PostgreSQL and MySQL/MariaDB.
//!
//! # Tables (migration 2)
//! - `<prefix>leases`: `job_id` (primary key), `node` (`''` when released), `until_us` (the
//!   lease deadline, µs on the store's clock; `0` when released) and `epoch` (the claim
//!   counter; a released row keeps it, so an epoch is never reused).
//! - `<prefix>fires`: primary key `(job_id, slot_us)` — the fire identity — with the node and
//!   epoch that created it, `created_us`, and `finished_us`/`outcome` once recorded.
//!
//! The jobs table is not changed: the single-node statements never see the leases.
//!
//! # Claims
//! PostgreSQL claims in one statement: a `SELECT … FOR UPDATE OF j SKIP LOCKED LIMIT n` of
//! due jobs without a live lease, feeding an upsert of their leases that only takes over a
//! lease that has ended (`ON CONFLICT … DO UPDATE … WHERE until_us <= now`), so a claim that
//! raced another one returns nothing for that job. MySQL/MariaDB (no `UPDATE … RETURNING`)
//! does the same in a `READ COMMITTED` transaction: the `SELECT … FOR UPDATE SKIP LOCKED`,
//! the same conditional upsert (`ON DUPLICATE KEY UPDATE` with `IF(until_us <= now, …)`),
//! then a read of which leases are now this claim's.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId};
use sqlx::AssertSqlSafe;

use super::{Claim, Commit, FireId, LeaseStore, from_micros, lease_micros};
use crate::sql::{self, Dialect, Migration, Names};
use crate::{JobCodec, StoreError};

/// The version of the lease migration in the SQL migration list.
pub(crate) const VERSION: i64 = 2;

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
}

impl LeaseNames {
    pub(crate) fn new(n: &Names) -> LeaseNames {
        LeaseNames {
            jobs: n.jobs.clone(),
            leases: sibling(&n.jobs, "leases"),
            fires: sibling(&n.jobs, "fires"),
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

fn slot_micros(slots: &[DateTime<Utc>]) -> Vec<i64> {
    slots.iter().map(|t| t.timestamp_micros()).collect()
}

fn err(e: sqlx::Error) -> StoreError {
    sql::map_err(e, None)
}

#[cfg(feature = "postgres")]
mod pg {
    use super::*;
    use crate::postgres::PostgresStore;

    /// The store's clock in µs, at the moment the expression is evaluated.
    const NOW: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::int8";

    impl LeaseStore for PostgresStore {
        async fn store_time(&self) -> Result<DateTime<Utc>, StoreError> {
            let (pool, _, _) = self.lease_parts();
            let us: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT {NOW}")))
                .fetch_one(pool)
                .await
                .map_err(err)?;
            Ok(from_micros(us))
        }

        async fn claim_due(
            &self,
            node: &str,
            up_to: DateTime<Utc>,
            lease: Duration,
            limit: usize,
        ) -> Result<Vec<Claim>, StoreError> {
            let (pool, names, codec) = self.lease_parts();
            let LeaseNames { jobs, leases, .. } = LeaseNames::new(names);
            let statement = format!(
                "WITH t AS (SELECT {NOW} AS now_us), \
                 due AS (SELECT j.id, j.data FROM {jobs} j, t \
                   WHERE j.next_run_time <= $1 AND j.quarantine IS NULL \
                   AND NOT EXISTS (SELECT 1 FROM {leases} l WHERE l.job_id = j.id \
                     AND l.until_us > t.now_us) \
                   ORDER BY j.next_run_time, j.id LIMIT $2 FOR UPDATE OF j SKIP LOCKED), \
                 claimed AS (INSERT INTO {leases} AS l (job_id, node, until_us, epoch) \
                   SELECT due.id, $3, t.now_us + $4, 1 FROM due, t \
                   ON CONFLICT (job_id) DO UPDATE SET node = EXCLUDED.node, \
                     until_us = EXCLUDED.until_us, epoch = l.epoch + 1 \
                   WHERE l.until_us <= EXCLUDED.until_us - $4 \
                   RETURNING l.job_id, l.epoch, l.until_us) \
                 SELECT c.job_id, c.epoch, c.until_us, due.data \
                 FROM claimed c JOIN due ON due.id = c.job_id"
            );
            let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(AssertSqlSafe(statement))
                .bind(sql::micros_floor(up_to))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .bind(node)
                .bind(lease_micros(lease))
                .fetch_all(pool)
                .await
                .map_err(err)?;
            let mut claims = decode_claims(codec, rows);
            claims.sort_by(|a, b| {
                (a.job.next_run_time, &a.job.id).cmp(&(b.job.next_run_time, &b.job.id))
            });
            Ok(claims)
        }

        async fn renew(&self, node: &str, lease: Duration) -> Result<u64, StoreError> {
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

        async fn commit_fires(
            &self,
            node: &str,
            epoch: i64,
            slots: &[DateTime<Utc>],
            job: &Job,
        ) -> Result<Commit, StoreError> {
            let (pool, names, codec) = self.lease_parts();
            let LeaseNames {
                jobs,
                leases,
                fires,
            } = LeaseNames::new(names);
            let data = codec.encode(job)?;
            let id = job.id.as_str();
            let mut tx = pool.begin().await.map_err(err)?;
            let held: Option<i32> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT 1 FROM {leases} WHERE job_id = $1 AND node = $2 AND epoch = $3 \
                 AND until_us > {NOW} FOR UPDATE"
            )))
            .bind(id)
            .bind(node)
            .bind(epoch)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
            if held.is_none() {
                return Ok(Commit::Lost);
            }
            let created: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "INSERT INTO {fires} (job_id, slot_us, node, epoch, created_us) \
                 SELECT $1, s, $2, $3, {NOW} FROM UNNEST($4::int8[]) AS s \
                 ON CONFLICT (job_id, slot_us) DO NOTHING RETURNING slot_us"
            )))
            .bind(id)
            .bind(node)
            .bind(epoch)
            .bind(slot_micros(slots))
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {jobs} SET next_run_time = CASE WHEN quarantine IS NULL THEN $1 END, \
                 data = $2 WHERE id = $3"
            )))
            .bind(job.next_run_time.map(sql::micros_ceil))
            .bind(data)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET node = '', until_us = 0 WHERE job_id = $1"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(Commit::Committed {
                created: in_order(&job.id, slots, &created),
            })
        }

        async fn finish_fire(
            &self,
            node: &str,
            epoch: i64,
            fire: &FireId,
            outcome: &str,
        ) -> Result<bool, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let fires = LeaseNames::new(names).fires;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {fires} SET finished_us = {NOW}, outcome = $1 \
                 WHERE job_id = $2 AND slot_us = $3 AND node = $4 AND epoch = $5"
            )))
            .bind(outcome)
            .bind(fire.job.as_str())
            .bind(fire.scheduled.timestamp_micros())
            .bind(node)
            .bind(epoch)
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(done.rows_affected() > 0)
        }

        async fn release(&self, node: &str, id: &JobId, epoch: i64) -> Result<bool, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET node = '', until_us = 0 \
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
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET node = '', until_us = 0 WHERE node = $1 AND until_us > 0"
            )))
            .bind(node)
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(done.rows_affected())
        }
    }
}

/// The created slots as fire ids, in the order `slots` gave them.
fn in_order(job: &JobId, slots: &[DateTime<Utc>], created: &[i64]) -> Vec<FireId> {
    slots
        .iter()
        .filter(|t| created.contains(&t.timestamp_micros()))
        .map(|t| FireId::new(job.clone(), *t))
        .collect()
}

#[cfg(feature = "mysql")]
mod my {
    use sqlx::Connection;

    use super::*;
    use crate::mysql::MySqlStore;

    /// The store's clock in µs (the statement's start).
    const NOW: &str = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)";

    impl LeaseStore for MySqlStore {
        async fn store_time(&self) -> Result<DateTime<Utc>, StoreError> {
            let (pool, _, _) = self.lease_parts();
            let us: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT {NOW}")))
                .fetch_one(pool)
                .await
                .map_err(err)?;
            Ok(from_micros(us))
        }

        async fn claim_due(
            &self,
            node: &str,
            up_to: DateTime<Utc>,
            lease: Duration,
            limit: usize,
        ) -> Result<Vec<Claim>, StoreError> {
            let (pool, names, codec) = self.lease_parts();
            let LeaseNames { jobs, leases, .. } = LeaseNames::new(names);
            let mut conn = pool.acquire().await.map_err(err)?;
            // Read committed: the locking read takes no gap locks on absent lease rows, and
            // each statement sees what other claims committed.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
                .execute(&mut *conn)
                .await
                .map_err(err)?;
            let mut tx = conn.begin().await.map_err(err)?;
            let now: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT {NOW}")))
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?;
            let due: Vec<(String, String)> = sqlx::query_as(AssertSqlSafe(format!(
                "SELECT j.id, j.data FROM {jobs} j \
                 WHERE j.next_run_time <= ? AND j.quarantine IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM {leases} l WHERE l.job_id = j.id \
                   AND l.until_us > ?) \
                 ORDER BY j.next_run_time, j.id LIMIT ? FOR UPDATE SKIP LOCKED"
            )))
            .bind(sql::micros_floor(up_to))
            .bind(now)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await
            .map_err(err)?;
            if due.is_empty() {
                tx.commit().await.map_err(err)?;
                return Ok(Vec::new());
            }
            let until = now.saturating_add(lease_micros(lease));
            let values = vec!["(?, ?, ?, 1)"; due.len()].join(", ");
            // Assignments run left to right: `until_us` last, so the conditions before it
            // still see the old deadline.
            let mut upsert = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {leases} (job_id, node, until_us, epoch) VALUES {values} \
                 ON DUPLICATE KEY UPDATE \
                 epoch = IF(until_us <= {now}, epoch + 1, epoch), \
                 node = IF(until_us <= {now}, VALUES(node), node), \
                 until_us = IF(until_us <= {now}, VALUES(until_us), until_us)"
            )));
            for (id, _) in &due {
                upsert = upsert.bind(id.as_str()).bind(node).bind(until);
            }
            upsert.execute(&mut *tx).await.map_err(err)?;
            let marks = vec!["?"; due.len()].join(", ");
            let mut read = sqlx::query_as::<_, (String, i64)>(AssertSqlSafe(format!(
                "SELECT job_id, epoch FROM {leases} WHERE node = ? AND until_us = ? \
                 AND job_id IN ({marks})"
            )))
            .bind(node)
            .bind(until);
            for (id, _) in &due {
                read = read.bind(id.as_str());
            }
            let mine = read.fetch_all(&mut *tx).await.map_err(err)?;
            tx.commit().await.map_err(err)?;
            let rows = due
                .into_iter()
                .filter_map(|(id, data)| {
                    let epoch = mine.iter().find(|(m, _)| *m == id)?.1;
                    Some((id, epoch, until, data))
                })
                .collect();
            Ok(decode_claims(codec, rows))
        }

        async fn renew(&self, node: &str, lease: Duration) -> Result<u64, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET until_us = {NOW} + ? WHERE node = ? AND until_us > {NOW}"
            )))
            .bind(lease_micros(lease))
            .bind(node)
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(done.rows_affected())
        }

        async fn commit_fires(
            &self,
            node: &str,
            epoch: i64,
            slots: &[DateTime<Utc>],
            job: &Job,
        ) -> Result<Commit, StoreError> {
            let (pool, names, codec) = self.lease_parts();
            let LeaseNames {
                jobs,
                leases,
                fires,
            } = LeaseNames::new(names);
            let data = codec.encode(job)?;
            let id = job.id.as_str();
            let mut tx = pool.begin().await.map_err(err)?;
            let held: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT 1 FROM {leases} WHERE job_id = ? AND node = ? AND epoch = ? \
                 AND until_us > {NOW} FOR UPDATE"
            )))
            .bind(id)
            .bind(node)
            .bind(epoch)
            .fetch_optional(&mut *tx)
            .await
            .map_err(err)?;
            if held.is_none() {
                return Ok(Commit::Lost);
            }
            // Not `INSERT IGNORE`: its downgrading of errors to warnings must never hide a
            // deadlock (after which InnoDB has rolled the transaction back, so the writes
            // below would run on their own, advancing the job without its fire). A
            // duplicate key fails only its statement; that slot was created before.
            let mut created = Vec::new();
            for slot in slot_micros(slots) {
                let inserted = sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {fires} (job_id, slot_us, node, epoch, created_us) \
                     VALUES (?, ?, ?, ?, {NOW})"
                )))
                .bind(id)
                .bind(slot)
                .bind(node)
                .bind(epoch)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => created.push(slot),
                    Err(sqlx::Error::Database(db))
                        if db.kind() == sqlx::error::ErrorKind::UniqueViolation => {}
                    Err(e) => return Err(err(e)),
                }
            }
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {jobs} SET next_run_time = CASE WHEN quarantine IS NULL THEN ? END, \
                 data = ? WHERE id = ?"
            )))
            .bind(job.next_run_time.map(sql::micros_ceil))
            .bind(data)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET node = '', until_us = 0 WHERE job_id = ?"
            )))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
            tx.commit().await.map_err(err)?;
            Ok(Commit::Committed {
                created: in_order(&job.id, slots, &created),
            })
        }

        async fn finish_fire(
            &self,
            node: &str,
            epoch: i64,
            fire: &FireId,
            outcome: &str,
        ) -> Result<bool, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let fires = LeaseNames::new(names).fires;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {fires} SET finished_us = {NOW}, outcome = ? \
                 WHERE job_id = ? AND slot_us = ? AND node = ? AND epoch = ?"
            )))
            .bind(outcome)
            .bind(fire.job.as_str())
            .bind(fire.scheduled.timestamp_micros())
            .bind(node)
            .bind(epoch)
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(done.rows_affected() > 0)
        }

        async fn release(&self, node: &str, id: &JobId, epoch: i64) -> Result<bool, StoreError> {
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET node = '', until_us = 0 \
                 WHERE job_id = ? AND node = ? AND epoch = ? AND until_us > {NOW}"
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
            let (pool, names, _) = self.lease_parts();
            let leases = LeaseNames::new(names).leases;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE {leases} SET node = '', until_us = 0 WHERE node = ? AND until_us > 0"
            )))
            .bind(node)
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(done.rows_affected())
        }
    }
}
