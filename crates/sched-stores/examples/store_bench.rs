//! Store speed: adding jobs in batches, and fetching due jobs from a large store, per backend,
//! with the plan of the due-jobs query.
//!
//! ```text
//! SCHED_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1/test \
//! SCHED_TEST_MYSQL_URL=mysql://root@127.0.0.1/test \
//! SCHED_TEST_REDIS_URL=redis://127.0.0.1/ \
//!     cargo run --release -p sched-stores --example store_bench -- [ADD_JOBS] [STORED_JOBS]
//! ```
//!
//! For each backend (memory and SQLite always, the servers whose URL is set): add
//! `ADD_JOBS` (default 100,000) jobs with `add_jobs` in batches of 1,000 and report jobs/s;
//! then fill SQLite and PostgreSQL up to `STORED_JOBS` (default 1,000,000) and time
//! `due_jobs(now, 100)` and `next_run_time()` (median of 200 calls), printing the query
//! plan. Server backends work in a schema, database or key prefix of their own, dropped at
//! the end.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sched_core::job::{Job, JobId, JobTrigger, TaskRef};
use sched_stores::mysql::MySqlStore;
use sched_stores::postgres::PostgresStore;
use sched_stores::redis::RedisStore;
use sched_stores::sqlite::SqliteStore;
use sched_stores::{JobStore, MemoryStore, StoreOptions};
use serde_json::json;

const BATCH: usize = 1_000;
const DUE_CALLS: usize = 200;

fn make_jobs(
    from: usize,
    to: usize,
    total: usize,
    base: DateTime<Utc>,
    trigger: fn() -> JobTrigger,
) -> Vec<Job> {
    // Next run times spread over one day from `base`.
    let step_us = 86_400_000_000 / total as i64;
    (from..to)
        .map(|i| {
            let mut job = Job::new(
                JobId::new(format!("job-{i:08}")).expect("id"),
                TaskRef::named("send_report", json!({"to": "ops", "n": i})),
                trigger(),
            );
            job.next_run_time = Some(base + chrono::Duration::microseconds(i as i64 * step_us));
            job
        })
        .collect()
}

/// Adds jobs `from..to` in batches; the rate in jobs per second.
async fn add(
    store: &impl JobStore,
    from: usize,
    to: usize,
    total: usize,
    base: DateTime<Utc>,
) -> f64 {
    let trigger = common::codec_and_trigger().1;
    let start = Instant::now();
    let mut i = from;
    while i < to {
        let end = (i + BATCH).min(to);
        store
            .add_jobs(make_jobs(i, end, total, base, trigger))
            .await
            .expect("add_jobs");
        i = end;
    }
    (to - from) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median time of `due_jobs(base + 1 min, 100)` and of `next_run_time()`.
async fn due(store: &impl JobStore, base: DateTime<Utc>) -> (Duration, Duration, usize) {
    let up_to = base + chrono::Duration::minutes(1);
    let mut due_times = Vec::with_capacity(DUE_CALLS);
    let mut got = 0;
    for _ in 0..DUE_CALLS {
        let start = Instant::now();
        got = store.due_jobs(up_to, 100).await.expect("due").len();
        due_times.push(start.elapsed());
    }
    let mut next_times = Vec::with_capacity(DUE_CALLS);
    for _ in 0..DUE_CALLS {
        let start = Instant::now();
        store.next_run_time().await.expect("next");
        next_times.push(start.elapsed());
    }
    (median(due_times), median(next_times), got)
}

fn report_add(name: &str, n: usize, rate: f64) {
    println!("{name:<10} add {n} jobs in batches of {BATCH}: {rate:>9.0} jobs/s");
}

fn report_due(name: &str, stored: usize, (due, next, got): (Duration, Duration, usize)) {
    println!(
        "{name:<10} {stored} stored: due_jobs(limit 100) -> {got} jobs in {:.3} ms, next_run_time in {:.3} ms (medians of {DUE_CALLS})",
        due.as_secs_f64() * 1e3,
        next.as_secs_f64() * 1e3
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let add_n: usize = args
        .next()
        .map_or(100_000, |a| a.parse().expect("ADD_JOBS"));
    let stored_n: usize = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("STORED_JOBS"));
    let base = Utc::now();
    let options = || StoreOptions::new().shared_codec(common::codec_and_trigger().0);
    println!(
        "codec: {:?}; {add_n} jobs added, {stored_n} stored for the due query",
        common::codec_and_trigger().0
    );

    let memory = MemoryStore::new();
    report_add(
        "memory",
        add_n,
        add(&memory, 0, add_n, stored_n, base).await,
    );

    // SQLite, one file.
    let dir = std::env::temp_dir().join(common::unique("sched-bench-"));
    std::fs::create_dir_all(&dir).expect("dir");
    let sqlite = SqliteStore::open_with(dir.join("bench.db"), options())
        .await
        .expect("sqlite");
    report_add(
        "sqlite",
        add_n,
        add(&sqlite, 0, add_n, stored_n, base).await,
    );
    let rate = add(&sqlite, add_n, stored_n, stored_n, base).await;
    println!("sqlite     filled to {stored_n} at {rate:.0} jobs/s");
    sqlx::query("ANALYZE")
        .execute(sqlite.pool())
        .await
        .expect("analyze");
    report_due("sqlite", stored_n, due(&sqlite, base).await);
    println!(
        "sqlite     EXPLAIN QUERY PLAN of due_jobs:\n  {}",
        sqlite.due_jobs_plan().await.expect("plan")
    );
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&dir);

    if let Ok(url) = std::env::var("SCHED_TEST_POSTGRES_URL") {
        let admin = sqlx::PgPool::connect(&url).await.expect("postgres");
        let schema = common::unique("sched_bench_");
        common::create_pg_schema(&admin, &schema).await;
        let pg = PostgresStore::connect_with(&url, options().schema(&schema))
            .await
            .expect("postgres store");
        report_add("postgres", add_n, add(&pg, 0, add_n, stored_n, base).await);
        let rate = add(&pg, add_n, stored_n, stored_n, base).await;
        println!("postgres   filled to {stored_n} at {rate:.0} jobs/s");
        sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {}", pg.jobs_table())))
            .execute(&admin)
            .await
            .expect("analyze");
        report_due("postgres", stored_n, due(&pg, base).await);
        println!(
            "postgres   EXPLAIN of due_jobs:\n  {}",
            pg.due_jobs_plan()
                .await
                .expect("plan")
                .replace('\n', "\n  ")
        );
        common::drop_pg_schema(&admin, &schema).await;
    }

    if let Ok(url) = std::env::var("SCHED_TEST_MYSQL_URL") {
        let admin = sqlx::MySqlPool::connect(&url).await.expect("mysql");
        let db = common::unique("sched_bench_");
        common::create_mysql_database(&admin, &db).await;
        let my = MySqlStore::connect_with(&url, options().schema(&db))
            .await
            .expect("mysql store");
        report_add("mysql", add_n, add(&my, 0, add_n, add_n, base).await);
        report_due("mysql", add_n, due(&my, base).await);
        println!(
            "mysql      EXPLAIN of due_jobs: {}",
            my.due_jobs_plan()
                .await
                .expect("plan")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        );
        common::drop_mysql_database(&admin, &db).await;
    }

    if let Ok(url) = std::env::var("SCHED_TEST_REDIS_URL") {
        let prefix = format!("{}:", common::unique("sched-bench-"));
        let redis = RedisStore::connect_with(&url, options().prefix(&prefix))
            .await
            .expect("redis store");
        report_add("redis", add_n, add(&redis, 0, add_n, add_n, base).await);
        report_due("redis", add_n, due(&redis, base).await);
        redis.remove_all_jobs().await.expect("clean");
        let mut conn = redis.connection();
        let _: i64 = redis::AsyncCommands::del(
            &mut conn,
            &[
                format!("{prefix}schema_version"),
                format!("{prefix}migrate_lock"),
            ],
        )
        .await
        .expect("clean");
    }
}
