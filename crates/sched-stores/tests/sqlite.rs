//! SqliteStore: the conformance suite on files and in memory, undecodable rows, migrations
//! run by several openers at once, reopening, prefixes, and the due-jobs plan.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{TimeZone, Utc};
use common::{codec_and_trigger, job, never_trigger, unique};
use sched_core::job::{JobId, LocalTask, TaskRef};
use sched_stores::sqlite::SqliteStore;
use sched_stores::{JobStore, StoreErrorKind, StoreOptions, conformance};

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(unique("sched-sqlite-test-"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options() -> StoreOptions {
    StoreOptions::new().shared_codec(codec_and_trigger().0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_passes_the_suite() {
    let dir = TempDir::new();
    let n = AtomicU32::new(0);
    conformance::run(
        || {
            let path = dir
                .path()
                .join(format!("s{}.db", n.fetch_add(1, Ordering::Relaxed)));
            async move { SqliteStore::open_with(path, options()).await.expect("open") }
        },
        codec_and_trigger().1,
    )
    .await;
}

#[tokio::test]
async fn memory_database_passes_the_suite() {
    conformance::run(
        || async {
            SqliteStore::open_in_memory_with(options())
                .await
                .expect("open")
        },
        codec_and_trigger().1,
    )
    .await;
}

#[tokio::test]
async fn undecodable_rows_are_quarantined_never_lost() {
    let dir = TempDir::new();
    let store = SqliteStore::open_with(dir.path().join("q.db"), options())
        .await
        .expect("open");
    let insert = format!(
        "INSERT INTO {} (id, next_run_time, data) VALUES (?, ?, ?)",
        store.jobs_table()
    );
    conformance::run_undecodable(
        &store,
        |id, next, text| {
            let insert = insert.clone();
            let pool = store.pool().clone();
            async move {
                sqlx::query(sqlx::AssertSqlSafe(insert))
                    .bind(id)
                    .bind(next.map(|t| t.timestamp_micros()))
                    .bind(text)
                    .execute(&pool)
                    .await
                    .expect("raw insert");
            }
        },
        codec_and_trigger().1,
    )
    .await;
}

#[tokio::test]
async fn default_codec_refuses_jobs_it_cannot_persist_naming_them() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    let mut closure = job("closure-job", None, never_trigger);
    closure.task = TaskRef::Local(LocalTask::new("tick", ()));
    let err = store.add_job(closure).await.expect_err("closure");
    assert_eq!(err.kind(), StoreErrorKind::Serialization);
    assert!(err.to_string().contains("job closure-job"), "{err}");
    assert!(err.to_string().contains("closure (tick)"), "{err}");

    let dynamic = job("dynamic-job", None, never_trigger);
    let err = store.add_job(dynamic).await.expect_err("dynamic trigger");
    assert_eq!(err.kind(), StoreErrorKind::Serialization);
    assert!(err.to_string().contains("job dynamic-job"), "{err}");
    assert!(store.all_jobs().await.expect("all").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openers_at_once_migrate_once() {
    let dir = TempDir::new();
    let path = dir.path().join("m.db");
    let opens: Vec<_> = (0..8)
        .map(|_| tokio::spawn(SqliteStore::open_with(path.clone(), options())))
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.expect("join").expect("open"));
    }
    assert_eq!(stores[0].schema_version().await.expect("version"), 1);
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sched_schema_version")
        .fetch_one(stores[0].pool())
        .await
        .expect("count");
    assert_eq!(rows, 1, "migration 1 recorded once");
}

#[tokio::test]
async fn jobs_and_quarantine_survive_reopening() {
    let dir = TempDir::new();
    let path = dir.path().join("r.db");
    let trigger = codec_and_trigger().1;
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 8, 30, 0).unwrap();
    {
        let store = SqliteStore::open_with(&path, options())
            .await
            .expect("open");
        store
            .add_jobs(vec![
                job("a", Some(at), trigger),
                job("p", None, trigger),
                job("q", Some(at), trigger),
            ])
            .await
            .expect("add");
        store
            .quarantine_job(&JobId::new("q").unwrap(), "task gone")
            .await
            .expect("quarantine");
        store.pool().close().await;
    }
    let store = SqliteStore::open_with(&path, options())
        .await
        .expect("reopen");
    let all = store.all_jobs().await.expect("all");
    let ids: Vec<&str> = all.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["a", "p"]);
    assert_eq!(all[0].next_run_time, Some(at));
    let q = store.quarantined_jobs().await.expect("quarantined");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].reason, "task gone");
}

#[tokio::test]
async fn prefixes_keep_stores_apart_in_one_file() {
    let dir = TempDir::new();
    let path = dir.path().join("p.db");
    let trigger = codec_and_trigger().1;
    let a = SqliteStore::open_with(&path, options().prefix("a_"))
        .await
        .expect("a");
    let b = SqliteStore::open_with(&path, options().prefix("b_"))
        .await
        .expect("b");
    a.add_job(job("same", None, trigger)).await.expect("add a");
    b.add_job(job("same", None, trigger)).await.expect("add b");
    a.remove_job(&JobId::new("same").unwrap())
        .await
        .expect("remove a");
    assert_eq!(b.all_jobs().await.expect("b").len(), 1);
    assert_eq!(a.jobs_table(), "\"a_jobs\"");
}

#[tokio::test]
async fn due_jobs_query_uses_the_index() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    let plan = store.due_jobs_plan().await.expect("plan");
    assert!(plan.contains("sched_jobs_next_run_time"), "{plan}");
    assert!(!plan.contains("USE TEMP B-TREE"), "no sort step: {plan}");
}

#[tokio::test]
async fn shared_through_an_arc_by_tasks() {
    let store = Arc::new(
        SqliteStore::open_in_memory_with(options())
            .await
            .expect("open"),
    );
    let trigger = codec_and_trigger().1;
    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .add_job(job(&format!("t{i}"), None, trigger))
                    .await
                    .expect("add");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join");
    }
    assert_eq!(store.all_jobs().await.expect("all").len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_file_write_at_once() {
    // Two stores with pools of their own stand for two processes sharing the file: WAL
    // and the busy timeout let both write without errors.
    let dir = TempDir::new();
    let path = dir.path().join("two.db");
    let trigger = codec_and_trigger().1;
    let a = Arc::new(SqliteStore::open_with(&path, options()).await.expect("a"));
    let b = Arc::new(SqliteStore::open_with(&path, options()).await.expect("b"));
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 8, 30, 0).unwrap();
    let writers: Vec<_> = [("a", Arc::clone(&a)), ("b", Arc::clone(&b))]
        .into_iter()
        .map(|(name, store)| {
            tokio::spawn(async move {
                for i in 0..200 {
                    store
                        .add_job(job(&format!("{name}{i:03}"), Some(at), trigger))
                        .await
                        .expect("add");
                }
                let batch = (0..300)
                    .map(|i| job(&format!("{name}-batch{i:03}"), None, trigger))
                    .collect();
                store.add_jobs(batch).await.expect("add_jobs");
            })
        })
        .collect();
    for w in writers {
        w.await.expect("join");
    }
    assert_eq!(a.all_jobs().await.expect("all").len(), 1000);
    assert_eq!(b.due_jobs(at, 1000).await.expect("due").len(), 400);
}

#[tokio::test]
async fn a_file_that_cannot_be_opened_is_unavailable_naming_it() {
    let dir = TempDir::new();
    let path = dir.path().join("missing-dir").join("jobs.db");
    let err = SqliteStore::open(&path)
        .await
        .expect_err("no such directory");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable, "{err}");
    assert!(err.to_string().contains("missing-dir"), "{err}");
}

#[tokio::test]
async fn quarantined_rows_leave_the_run_time_index() {
    // However many jobs are quarantined, due-jobs scans never step over them: their
    // indexed next run time is cleared, and written back on release.
    let store = SqliteStore::open_in_memory_with(options())
        .await
        .expect("open");
    let trigger = codec_and_trigger().1;
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 8, 30, 0).unwrap();
    let jobs = (0..50)
        .map(|i| job(&format!("j{i:02}"), Some(at), trigger))
        .collect();
    store.add_jobs(jobs).await.expect("add");
    for i in 0..40 {
        store
            .quarantine_job(&JobId::new(format!("j{i:02}")).unwrap(), "task gone")
            .await
            .expect("quarantine");
    }
    let indexed = format!(
        "SELECT COUNT(*) FROM {} WHERE next_run_time IS NOT NULL",
        store.jobs_table()
    );
    let count = |sql: String| {
        let pool = store.pool().clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                .fetch_one(&pool)
                .await
                .expect("count")
        }
    };
    assert_eq!(count(indexed.clone()).await, 10);
    let released = store
        .release_job(&JobId::new("j00").unwrap())
        .await
        .expect("release");
    assert_eq!(released.next_run_time, Some(at));
    assert_eq!(count(indexed).await, 11);
    assert_eq!(store.due_jobs(at, 100).await.expect("due").len(), 11);
}

#[tokio::test]
async fn a_row_that_is_not_even_text_is_quarantined() {
    // SQLite columns take any value: a BLOB of invalid UTF-8 where the job's text belongs
    // must not fail due_jobs for the others.
    let store = SqliteStore::open_in_memory_with(options())
        .await
        .expect("open");
    let trigger = codec_and_trigger().1;
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 8, 30, 0).unwrap();
    store
        .add_job(job("good", Some(at), trigger))
        .await
        .expect("add");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} (id, next_run_time, data) VALUES ('blob', ?, x'ff00fe')",
        store.jobs_table()
    )))
    .bind(at.timestamp_micros())
    .execute(store.pool())
    .await
    .expect("raw insert");
    let due = store.due_jobs(at, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id.as_str(), "good");
    let q = store.quarantined_jobs().await.expect("quarantined");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].id.as_str(), "blob");
}

#[tokio::test]
async fn a_row_whose_id_is_not_text_is_quarantined_and_due_jobs_goes_on() {
    let store = SqliteStore::open_in_memory_with(options())
        .await
        .expect("open");
    let trigger = codec_and_trigger().1;
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 8, 30, 0).unwrap();
    store
        .add_job(job("good", Some(at), trigger))
        .await
        .expect("add");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {} (id, next_run_time, data) VALUES (x'ff', ?, 'junk')",
        store.jobs_table()
    )))
    .bind(at.timestamp_micros() - 1)
    .execute(store.pool())
    .await
    .expect("raw insert");
    // The broken row comes first; with a limit of 1 the store must quarantine it and go
    // on to the good one.
    let due = store.due_jobs(at, 1).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id.as_str(), "good");
    assert_eq!(store.next_run_time().await.expect("next"), Some(at));
}
