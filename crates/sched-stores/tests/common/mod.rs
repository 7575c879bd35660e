//! Helpers shared by the backend tests: which codec and trigger the suite uses, server
//! URLs from the environment, unique names.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, Utc};
use sched_core::job::{Coalesce, Job, JobId, JobTrigger, TaskRef};
use sched_core::trigger::AnyTrigger;
use sched_core::{Trigger, Zone};
use sched_stores::{JobCodec, StoreError, StoredJobCodec};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The spec trigger persistent test jobs carry, when this build's triggers can parse it.
const SPEC: &str =
    r#"{"type": "interval", "hours": 1, "start_date": "2026-01-01T00:00:00Z", "timezone": "UTC"}"#;

/// The codec and trigger the suite runs a persistent store with.
///
/// With the real trigger kinds built in, that is the default [`StoredJobCodec`] and an
/// interval spec trigger: exactly what users get. While the trigger kinds of this tree are
/// placeholders that parse nothing, no job is persistable by the default codec, so the
/// suite runs with [`NeverCodec`], which stores the same fields with a marker trigger.
/// Either way every check runs against the real backend.
pub fn codec_and_trigger() -> (Arc<dyn JobCodec>, fn() -> JobTrigger) {
    match AnyTrigger::from_json(SPEC) {
        Ok(_) => (Arc::new(StoredJobCodec), spec_trigger),
        Err(_) => (Arc::new(NeverCodec), never_trigger),
    }
}

fn spec_trigger() -> JobTrigger {
    JobTrigger::from(AnyTrigger::from_json(SPEC).expect("checked by codec_and_trigger"))
}

pub fn never_trigger() -> JobTrigger {
    JobTrigger::dynamic(Never)
}

/// A trigger that never fires again.
#[derive(Debug)]
pub struct Never;

impl Trigger for Never {
    fn next_fire_time(&self, _: Option<DateTime<Utc>>, _: DateTime<Utc>) -> Option<DateTime<Utc>> {
        None
    }
    fn zone(&self) -> Zone {
        Zone::UTC
    }
}

/// A codec for jobs whose trigger is [`Never`]: every other field as [`StoredJobCodec`]
/// writes it, the trigger as `{"type": "never"}`; closures refused, format checked.
#[derive(Debug)]
pub struct NeverCodec;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    format: u32,
    id: String,
    name: String,
    task: String,
    args: Value,
    trigger: Value,
    executor: String,
    store: String,
    misfire_grace_time: Option<f64>,
    coalesce: Coalesce,
    max_instances: u32,
    next_run_time: Option<DateTime<Utc>>,
    jitter: Option<f64>,
    timeout: Option<f64>,
}

fn bad(id: Option<JobId>, message: impl Into<String>) -> StoreError {
    StoreError::serialization(id, message, None)
}

impl JobCodec for NeverCodec {
    fn encode(&self, job: &Job) -> Result<String, StoreError> {
        let TaskRef::Named { name, args } = &job.task else {
            return Err(bad(Some(job.id.clone()), "its task is a closure"));
        };
        let record = Record {
            format: 1,
            id: job.id.to_string(),
            name: job.name.to_string(),
            task: name.to_string(),
            args: args.clone(),
            trigger: json!({"type": "never"}),
            executor: job.executor.to_string(),
            store: job.store.to_string(),
            misfire_grace_time: job.misfire_grace_time.map(|d| d.as_secs_f64()),
            coalesce: job.coalesce,
            max_instances: job.max_instances,
            next_run_time: job.next_run_time,
            jitter: job.jitter.map(|d| d.as_secs_f64()),
            timeout: job.timeout.map(|d| d.as_secs_f64()),
        };
        serde_json::to_string(&record).map_err(|e| bad(Some(job.id.clone()), e.to_string()))
    }

    fn decode(&self, text: &str) -> Result<Job, StoreError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| bad(None, format!("not valid JSON: {e}")))?;
        if value.get("format") != Some(&json!(1)) {
            return Err(bad(
                None,
                format!("unsupported format version {}", value["format"]),
            ));
        }
        let r: Record = serde_json::from_value(value).map_err(|e| bad(None, e.to_string()))?;
        if r.trigger != json!({"type": "never"}) {
            return Err(bad(None, format!("unknown trigger {}", r.trigger)));
        }
        let id = JobId::new(&r.id).map_err(|e| bad(None, e.to_string()))?;
        let mut job = Job::new(id, TaskRef::named(r.task, r.args), never_trigger());
        job.name = r.name.into();
        job.executor = r.executor.into();
        job.store = r.store.into();
        job.misfire_grace_time = r.misfire_grace_time.map(std::time::Duration::from_secs_f64);
        job.coalesce = r.coalesce;
        job.max_instances = r.max_instances;
        job.next_run_time = r.next_run_time;
        job.jitter = r.jitter.map(std::time::Duration::from_secs_f64);
        job.timeout = r.timeout.map(std::time::Duration::from_secs_f64);
        Ok(job)
    }
}

/// The server URL in `var`, or `None` after saying the tests are skipped.
///
/// # Panics
/// When `var` is unset and `SCHED_TEST_REQUIRE_ALL` is set (CI), so that no backend is
/// skipped there.
pub fn server_url(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required =
                std::env::var("SCHED_TEST_REQUIRE_ALL").is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(
                !required,
                "{var} is not set, and SCHED_TEST_REQUIRE_ALL says no backend may be skipped"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// A name no other test (in this or another process) uses: `base` with the process id, a
/// counter and a random part.
pub fn unique(base: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{base}{}_{}_{:06x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..0x100_0000)
    )
}

/// A job for backend-specific tests.
pub fn job(id: &str, next: Option<DateTime<Utc>>, trigger: fn() -> JobTrigger) -> Job {
    let mut job = Job::new(
        JobId::new(id).expect("non-empty"),
        TaskRef::named("task", json!({"id": id})),
        trigger(),
    );
    job.next_run_time = next;
    job
}

/// Deletes every Redis key that starts with `prefix` (what a test's store wrote there).
pub async fn delete_redis_keys(conn: &mut redis::aio::ConnectionManager, prefix: &str) {
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await
        .expect("keys");
    if !keys.is_empty() {
        let () = redis::cmd("DEL")
            .arg(keys)
            .query_async(conn)
            .await
            .expect("del");
    }
}

/// Creates the schema `name` on a PostgreSQL server (a test's or a bench's own space).
pub async fn create_pg_schema(pool: &sqlx::PgPool, name: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{name}\"")))
        .execute(pool)
        .await
        .expect("create schema");
}

/// Drops the schema `name` and everything in it.
pub async fn drop_pg_schema(pool: &sqlx::PgPool, name: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{name}\" CASCADE"
    )))
    .execute(pool)
    .await
    .expect("drop schema");
}

/// Creates the database `name` on a MySQL/MariaDB server (a test's or a bench's own space).
pub async fn create_mysql_database(pool: &sqlx::MySqlPool, name: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE `{name}`")))
        .execute(pool)
        .await
        .expect("create database");
}

/// Drops the database `name`.
pub async fn drop_mysql_database(pool: &sqlx::MySqlPool, name: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE `{name}`")))
        .execute(pool)
        .await
        .expect("drop database");
}

/// What committing each claim's stored slot takes: the slot (the job's next run time) and
/// the job with the next run time `next` gives for it.
pub fn stored_slots(
    claims: &[sched_stores::Claim],
    next: impl Fn(DateTime<Utc>) -> Option<DateTime<Utc>>,
) -> (Vec<[DateTime<Utc>; 1]>, Vec<Job>) {
    claims
        .iter()
        .map(|c| {
            let slot = c.job.next_run_time.expect("a claimed job is due");
            let mut job = c.job.clone();
            job.next_run_time = next(slot);
            ([slot], job)
        })
        .unzip()
}

/// The `commit_many` requests of `claims` with their `slots` and advanced `jobs` (as
/// [`stored_slots`] makes them).
pub fn commit_requests<'a>(
    claims: &[sched_stores::Claim],
    slots: &'a [[DateTime<Utc>; 1]],
    jobs: &'a [Job],
) -> Vec<sched_stores::CommitRequest<'a>> {
    claims
        .iter()
        .zip(slots)
        .zip(jobs)
        .map(|((c, slots), job)| sched_stores::CommitRequest {
            epoch: c.epoch,
            slots,
            job,
        })
        .collect()
}
