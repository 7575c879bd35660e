//! The store conformance suite: one set of checks every [`JobStore`] backend must pass.
//!
//! A backend's test calls [`run`] with a function that makes a fresh, empty store (a new
//! schema, database number or key prefix for a server backend) and a function that makes
//! the trigger to put in test jobs (a spec trigger for a persistent store). Each check gets
//! its own store. A failed check panics with a message naming the check.
//!
//! ```
//! use chrono::{DateTime, Utc};
//! use sched_core::job::JobTrigger;
//! use sched_core::{Trigger, Zone};
//! use sched_stores::{conformance, MemoryStore};
//!
//! #[derive(Debug)]
//! struct Never;
//! impl Trigger for Never {
//!     fn next_fire_time(&self, _: Option<DateTime<Utc>>, _: DateTime<Utc>) -> Option<DateTime<Utc>> {
//!         None
//!     }
//!     fn zone(&self) -> Zone {
//!         Zone::UTC
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! conformance::run(|| async { MemoryStore::new() }, || JobTrigger::dynamic(Never)).await;
//! # });
//! ```

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sched_core::job::{Coalesce, Job, JobId, JobTrigger, TaskRef};
use serde_json::json;

use crate::{JobStore, StoreErrorKind};

/// Runs every check against fresh stores from `new_store`; test jobs carry triggers from
/// `trigger`.
///
/// # Panics
/// When the store breaks the contract, with a message naming the check.
pub async fn run<S, F, Fut, T>(mut new_store: F, trigger: T)
where
    S: JobStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
    T: Fn() -> JobTrigger,
{
    add_and_lookup(&new_store().await, &trigger).await;
    add_conflict(&new_store().await, &trigger).await;
    update(&new_store().await, &trigger).await;
    remove(&new_store().await, &trigger).await;
    remove_all(&new_store().await, &trigger).await;
    due_ordering(&new_store().await, &trigger).await;
    due_limit_and_bound(&new_store().await, &trigger).await;
    next_run_time(&new_store().await, &trigger).await;
    all_jobs_order(&new_store().await, &trigger).await;
}

fn t(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 12, minute, 0).unwrap()
}

fn id(s: &str) -> JobId {
    JobId::new(s).expect("non-empty id")
}

fn job(name: &str, next: Option<DateTime<Utc>>, trigger: &impl Fn() -> JobTrigger) -> Job {
    let mut j = Job::new(
        id(name),
        TaskRef::named("task", json!({ "job": name })),
        trigger(),
    );
    j.next_run_time = next;
    j
}

fn ids(jobs: &[Job]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

async fn add_and_lookup(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let mut j = job("a", Some(t(5)), trigger);
    j.name = "A job".into();
    j.executor = "pool".into();
    j.misfire_grace_time = None;
    j.coalesce = Coalesce::All;
    j.max_instances = 3;
    j.timeout = Some(Duration::from_millis(1500));
    store.add_job(j).await.expect("add_and_lookup: add");
    let got = store
        .lookup_job(&id("a"))
        .await
        .expect("add_and_lookup: lookup")
        .expect("add_and_lookup: the added job is found");
    assert_eq!(got.id, id("a"), "add_and_lookup: id");
    assert_eq!(got.name, "A job", "add_and_lookup: name");
    assert_eq!(got.executor, "pool", "add_and_lookup: executor");
    assert_eq!(
        got.misfire_grace_time, None,
        "add_and_lookup: misfire_grace_time"
    );
    assert_eq!(got.coalesce, Coalesce::All, "add_and_lookup: coalesce");
    assert_eq!(got.max_instances, 3, "add_and_lookup: max_instances");
    assert_eq!(
        got.timeout,
        Some(Duration::from_millis(1500)),
        "add_and_lookup: timeout"
    );
    assert_eq!(
        got.next_run_time,
        Some(t(5)),
        "add_and_lookup: next_run_time"
    );
    match &got.task {
        TaskRef::Named { name, args } => {
            assert_eq!(name, "task", "add_and_lookup: task name");
            assert_eq!(args, &json!({"job": "a"}), "add_and_lookup: args");
        }
        other => panic!("add_and_lookup: task came back as {other:?}"),
    }
    assert!(
        store.lookup_job(&id("zz")).await.expect("lookup").is_none(),
        "add_and_lookup: an unknown id is None"
    );
}

async fn add_conflict(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    store
        .add_job(job("a", Some(t(5)), trigger))
        .await
        .expect("add_conflict: first add");
    let err = store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect_err("add_conflict: a second add with the same id fails");
    assert_eq!(
        err.kind(),
        StoreErrorKind::Conflict,
        "add_conflict: kind ({err})"
    );
    let kept = store
        .lookup_job(&id("a"))
        .await
        .expect("lookup")
        .expect("kept");
    assert_eq!(
        kept.next_run_time,
        Some(t(5)),
        "add_conflict: the first job is unchanged"
    );
}

async fn update(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let err = store
        .update_job(job("a", Some(t(1)), trigger))
        .await
        .expect_err("update: updating a missing job fails");
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "update: kind ({err})");
    store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect("update: add a");
    store
        .add_job(job("b", Some(t(2)), trigger))
        .await
        .expect("update: add b");
    let mut a = job("a", Some(t(3)), trigger);
    a.name = "renamed".into();
    store.update_job(a).await.expect("update: update a");
    let got = store
        .lookup_job(&id("a"))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(got.name, "renamed", "update: the new fields are stored");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(
        ids(&due),
        ["b", "a"],
        "update: the index follows the new next run time"
    );
    store
        .update_job(job("a", None, trigger))
        .await
        .expect("update: pause a");
    let due = store.due_jobs(t(59), 10).await.expect("due");
    assert_eq!(ids(&due), ["b"], "update: a paused job is no longer due");
}

async fn remove(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    let err = store
        .remove_job(&id("a"))
        .await
        .expect_err("remove: a missing job");
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "remove: kind ({err})");
    store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect("remove: add");
    store
        .add_job(job("p", None, trigger))
        .await
        .expect("remove: add paused");
    store.remove_job(&id("a")).await.expect("remove: remove a");
    store
        .remove_job(&id("p"))
        .await
        .expect("remove: remove paused");
    assert!(
        store.lookup_job(&id("a")).await.expect("lookup").is_none(),
        "remove: gone"
    );
    assert!(
        store.due_jobs(t(59), 10).await.expect("due").is_empty(),
        "remove: not due"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        None,
        "remove: no next run"
    );
}

async fn remove_all(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect("remove_all: add");
    store
        .add_job(job("b", None, trigger))
        .await
        .expect("remove_all: add");
    store.remove_all_jobs().await.expect("remove_all");
    assert!(
        store.all_jobs().await.expect("all").is_empty(),
        "remove_all: empty"
    );
    assert_eq!(
        store.next_run_time().await.expect("next"),
        None,
        "remove_all: no next"
    );
    store
        .add_job(job("a", Some(t(1)), trigger))
        .await
        .expect("remove_all: id reusable");
}

async fn due_ordering(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    for (name, minute) in [
        ("c", Some(3)),
        ("b", Some(1)),
        ("a", Some(3)),
        ("p", None),
        ("d", Some(2)),
    ] {
        store
            .add_job(job(name, minute.map(t), trigger))
            .await
            .expect("due_ordering: add");
    }
    let due = store.due_jobs(t(59), 100).await.expect("due");
    assert_eq!(
        ids(&due),
        ["b", "d", "a", "c"],
        "due_ordering: by (next_run_time, id), paused excluded"
    );
}

async fn due_limit_and_bound(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    for (name, minute) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        store
            .add_job(job(name, Some(t(minute)), trigger))
            .await
            .expect("add");
    }
    let due = store.due_jobs(t(3), 100).await.expect("due");
    assert_eq!(
        ids(&due),
        ["a", "b", "c"],
        "due_limit_and_bound: up_to is inclusive"
    );
    let due = store.due_jobs(t(3), 2).await.expect("due");
    assert_eq!(
        ids(&due),
        ["a", "b"],
        "due_limit_and_bound: limit keeps the earliest"
    );
    let due = store.due_jobs(t(0), 100).await.expect("due");
    assert!(
        due.is_empty(),
        "due_limit_and_bound: nothing before the first"
    );
}

async fn next_run_time(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    assert_eq!(
        store.next_run_time().await.expect("next"),
        None,
        "next_run_time: empty"
    );
    store.add_job(job("p", None, trigger)).await.expect("add");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        None,
        "next_run_time: paused only"
    );
    store
        .add_job(job("a", Some(t(7)), trigger))
        .await
        .expect("add");
    store
        .add_job(job("b", Some(t(4)), trigger))
        .await
        .expect("add");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(4)),
        "next_run_time: earliest"
    );
    store.remove_job(&id("b")).await.expect("remove");
    assert_eq!(
        store.next_run_time().await.expect("next"),
        Some(t(7)),
        "next_run_time: after remove"
    );
}

async fn all_jobs_order(store: &impl JobStore, trigger: &impl Fn() -> JobTrigger) {
    for (name, minute) in [("z", None), ("b", Some(2)), ("y", None), ("a", Some(9))] {
        store
            .add_job(job(name, minute.map(t), trigger))
            .await
            .expect("add");
    }
    let all = store.all_jobs().await.expect("all");
    assert_eq!(
        ids(&all),
        ["b", "a", "y", "z"],
        "all_jobs: scheduled by time, then paused by id"
    );
}
