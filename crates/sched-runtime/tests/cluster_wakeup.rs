//! Wake-ups between nodes: a job added on node A to run in 100 ms runs on time on node B,
//! whose poll interval is 30 s, because A's change notification (PostgreSQL NOTIFY, Redis
//! PUBLISH) wakes B's dispatcher. A is started paused, so only B can run it.
//!
//! Two schedulers in this process, each with its own connections, on a schema or key
//! prefix of their own. Skipped when the backend's URL is unset, unless
//! `SCHED_TEST_REQUIRE_ALL` is set. (MySQL/MariaDB have no notifications: polling only.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sched_core::job::{JobSpec, TaskRef};
use sched_core::trigger::AnyTrigger;
use sched_runtime::{ClusterOptions, JobContext, Scheduler, ShutdownMode};
use sched_stores::postgres::PostgresStore;
use sched_stores::redis::RedisStore;
use sched_stores::{LeaseStore, StoreOptions};
use serde_json::json;

const POLL: Duration = Duration::from_secs(30);

fn server_url(var: &str) -> Option<String> {
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

/// Runs of the `mark` task: (job id, scheduled time, node, started at).
type Marks = Arc<Mutex<Vec<(String, DateTime<Utc>, String, DateTime<Utc>)>>>;

fn node<S: LeaseStore>(store: S, name: &str, marks: &Marks) -> Scheduler {
    let options = ClusterOptions::default()
        .node_id(name)
        .lease(Duration::from_secs(3))
        .renew_every(Duration::from_secs(1))
        .poll_interval(POLL);
    let scheduler = Scheduler::builder()
        .cluster_store("default", store, options)
        .build();
    let (marks, name) = (marks.clone(), name.to_owned());
    scheduler.register_task("mark", move |ctx: JobContext, _: serde_json::Value| {
        marks.lock().unwrap().push((
            ctx.job_id().to_string(),
            ctx.scheduled_run_time(),
            name.clone(),
            Utc::now(),
        ));
        async { Ok::<_, String>(()) }
    });
    scheduler
}

/// A date job `id` due `in_ms` from now.
fn soon(id: &str, in_ms: i64) -> (JobSpec, DateTime<Utc>) {
    let at = Utc::now() + TimeDelta::milliseconds(in_ms);
    let trigger = AnyTrigger::from_json(
        &json!({"type": "date", "run_date": at.to_rfc3339(), "timezone": "UTC"}).to_string(),
    )
    .expect("date spec");
    let spec = JobSpec::new(TaskRef::named("mark", json!({})), trigger)
        .id(id)
        .expect("id");
    (spec, at)
}

async fn wait_for(what: &str, limit: Duration, marks: &Marks, id: &str) {
    let deadline = std::time::Instant::now() + limit;
    while !marks.lock().unwrap().iter().any(|m| m.0 == id) {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wake_up(a: Scheduler, b: Scheduler, marks: &Marks) {
    a.start_paused().await.expect("start a");
    b.start().await.expect("start b");
    // Warm-up: B's change feed subscribes at start; this job runs once it is listening
    // (or, should it not be yet, at B's next poll).
    let (warm, _) = soon("warm", 100);
    a.add_job(warm).await.expect("add warm");
    wait_for(
        "the warm-up job",
        POLL + Duration::from_secs(10),
        marks,
        "warm",
    )
    .await;

    let (spec, at) = soon("soon", 100);
    a.add_job(spec).await.expect("add");
    wait_for("the job added on A", POLL, marks, "soon").await;
    let (_, scheduled, node, started) = marks
        .lock()
        .unwrap()
        .iter()
        .find(|m| m.0 == "soon")
        .cloned()
        .expect("ran");
    assert_eq!(node, "node-b", "A is paused: only B can run it");
    assert_eq!(scheduled, at.trunc_micros());
    let late = started - at;
    eprintln!(
        "the job added on A ran on B {} ms after its time",
        late.num_milliseconds()
    );
    assert!(
        late < TimeDelta::seconds(2),
        "ran {late} late: B was not woken by A's notification (its poll interval is {POLL:?})"
    );
    a.shutdown(ShutdownMode::Wait).await;
    b.shutdown(ShutdownMode::Wait).await;
}

trait TruncMicros {
    fn trunc_micros(self) -> Self;
}

impl TruncMicros for DateTime<Utc> {
    fn trunc_micros(self) -> Self {
        DateTime::from_timestamp_micros(self.timestamp_micros()).expect("in range")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_job_added_on_one_node_runs_on_time_on_another() {
    let Some(url) = server_url("SCHED_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = format!(
        "sched_wake_{}_{:06x}",
        std::process::id(),
        fastrand::u32(..0x100_0000)
    );
    let admin = sqlx::PgPool::connect(&url).await.expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&admin)
        .await
        .expect("schema");
    let open = || PostgresStore::connect_with(&url, StoreOptions::new().schema(schema.clone()));
    let marks = Marks::default();
    let a = node(open().await.expect("a"), "node-a", &marks);
    let b = node(open().await.expect("b"), "node-b", &marks);
    wake_up(a, b, &marks).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&admin)
    .await
    .expect("drop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_a_job_added_on_one_node_runs_on_time_on_another() {
    let Some(url) = server_url("SCHED_TEST_REDIS_URL") else {
        return;
    };
    let prefix = format!(
        "sched_wake_{}_{:06x}:",
        std::process::id(),
        fastrand::u32(..0x100_0000)
    );
    let open = || RedisStore::connect_with(&url, StoreOptions::new().prefix(prefix.clone()));
    let marks = Marks::default();
    let cleanup = open().await.expect("redis");
    let a = node(open().await.expect("a"), "node-a", &marks);
    let b = node(open().await.expect("b"), "node-b", &marks);
    wake_up(a, b, &marks).await;
    let mut conn = cleanup.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("keys");
    if !keys.is_empty() {
        let () = redis::cmd("DEL")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .expect("del");
    }
}
